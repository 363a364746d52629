"""DeepLift with one reference for the batch against the same reference copied for each image
(and DeepLiftShap, whose every baseline is one reference for the batch in turn).

One reference (``baselines=None``, a scalar or one image) goes through the network once,
made pairs only between the first and the last max-pool and at the class layer; a
reference per image (an (N, H, W, 3) array, here N copies of the same one) takes the pairs
all through.  The numbers are the same (tests: test_deeplift_with_one_reference_for_every_image).
Random weights and images; the two alternate, median of ``REPEATS`` calls each after a
warm one.

    PYTHONPATH=. python -m benchmarks.deeplift_reference [BATCH SIZE REPEATS ARCH...]
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz

DEEPLIFT_SHAP = importlib.import_module("jaxviz.attribution.deeplift_shap")
ARCHS = ("squeezenet1_1", "resnet18", "resnet50", "mobilenet_v2")


def main(batch: int = 16, size: int = 224, repeats: int = 5, archs=ARCHS) -> None:
    print(f"{batch} images at {size} on {jax.default_backend()}, median of {repeats} alternating calls (s)")
    print("| architecture | method | one reference | a copy per image | speed-up |\n|---|---|---|---|---|")
    for arch in archs:
        model = jaxviz.init_model(jax.random.key(0), arch)
        x = jax.random.normal(jax.random.key(1), (batch, size, size, 3))
        target = np.arange(batch) % model.architecture.num_classes
        copies = jnp.zeros_like(x)
        baselines = 0.1 * jax.random.normal(jax.random.key(2), (4,) + x.shape[1:])
        calls = {"one": lambda: jaxviz.deeplift(model, x, target),
                 "copies": lambda: jaxviz.deeplift(model, x, target, baselines=copies),
                 "shap one": lambda: jaxviz.deeplift_shap(model, x, target, baselines=baselines),
                 "shap copies": lambda: DEEPLIFT_SHAP._deeplift_shap(model, x, target, baselines, "modules", True)}
        times = {name: [] for name in calls}
        for call in calls.values():
            jax.block_until_ready(call())
        for _ in range(repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                jax.block_until_ready(call())
                times[name].append(time.perf_counter() - start)
        for method, one, copied in (("deeplift", "one", "copies"), ("deeplift_shap, 4 baselines", "shap one",
                                                                     "shap copies")):
            one, copied = statistics.median(times[one]), statistics.median(times[copied])
            print(f"| {arch} | {method} | {one:.3f} | {copied:.3f} | {copied / one:.2f}× |", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    if args:
        main(int(args[0]), int(args[1]), int(args[2]), tuple(args[3:]) or ARCHS)
    else:
        main()
