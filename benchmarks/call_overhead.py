"""Where one public call's time goes, beside its compiled program.

On the H200 (benchmarks/results/gpu-h200/notes.md), saliency's compiled program took 1.5 ms
for 25 images at 224 and the public ``saliency_map`` call 5.5 ms.  For each method this
prints the public call; the same call inside ``jax.jit`` with the model as an argument (the
value checks skipped, one dispatch); and the host-side steps every call takes before its
program runs.  Saliency also runs with the weights closed over, as constants of the
program.  Random weights and images, numpy targets (as the harness and most users pass
them); the median of ``CALLS`` calls after a warm one.

    PYTHONPATH=. python -m benchmarks.call_overhead [ARCH BATCH SIZE [CALLS]]
"""

from __future__ import annotations

import sys

import jax
import numpy as np

import jaxviz
from benchmarks.conv_library import _seconds
from jaxviz import _checks, scoring

METHODS = {
    "saliency_map": lambda m, x, t: jaxviz.saliency_map(m, x, t),
    "saliency": lambda m, x, t: jaxviz.saliency(m, x, t),
    "guided_gradcam": lambda m, x, t: jaxviz.guided_gradcam(m, x, t),
    "deeplift": lambda m, x, t: jaxviz.deeplift(m, x, t),
    "gradient_shap (20 samples)": lambda m, x, t: jaxviz.gradient_shap(m, x, t, n_samples=20, key=jax.random.key(0)),
    "lrp": lambda m, x, t: jaxviz.lrp(m, x, t),
}


def median_ms(call, calls: int) -> float:
    return _seconds(call, calls=calls) * 1e3


def main(arch: str = "squeezenet1_1", batch: int = 25, size: int = 224, calls: int = 20) -> None:
    model = jaxviz.init_model(jax.random.key(0), arch)
    x = jax.device_put(np.asarray(jax.random.normal(jax.random.key(1), (batch, size, size, 3))))
    target = np.arange(batch) % model.architecture.num_classes
    print(f"{arch}, {batch} images at {size} on {jax.default_backend()}, median of {calls} calls (ms)", flush=True)
    steps = {
        "check_images": lambda: _checks.check_images(x, architecture=model.architecture),
        "check_target": lambda: _checks.check_target(target, batch, num_classes=model.architecture.num_classes),
        "scoring.prepare (both)": lambda: scoring.prepare(model, x, target),
        "scoring.find_repeats": lambda: scoring.find_repeats(x, target),
    }
    for name, step in steps.items():
        print(f"  {name}: {median_ms(step, calls):.3f}", flush=True)
    for name, method in METHODS.items():
        public = median_ms(lambda method=method: method(model, x, target), calls)
        compiled = jax.jit(method)
        inside = median_ms(lambda compiled=compiled: compiled(model, x, target), calls)
        print(f"  {name}: public {public:.3f}, inside jit {inside:.3f}, difference {public - inside:.3f}", flush=True)
    # the weights as the program's constants (benchmarks/conv_library.py times it so): what
    # passing them as arguments costs inside the program
    closed = jax.jit(lambda v, t: jaxviz.saliency(model, v, t))
    print(f"  saliency inside jit, the weights constants: {median_ms(lambda: closed(x, target), calls):.3f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:2], *map(int, sys.argv[2:5]))
