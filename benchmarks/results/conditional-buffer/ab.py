"""A cotangent made a buffer by a conditional (today's ``layers._computed_once``) against
the older sum with a stacked zero, which XLA:CPU hands to YNNPACK.

    PYTHONPATH=. python benchmarks/results/conditional-buffer/ab.py {old,new} [ARCH:METHOD,...]

One variant per process (the model's programs are traced once per process): run the two
in turn, several rounds.  Random weights, random images at 224; prints the median and the
least of 11 steady calls, and the largest difference from the first ``old`` run's result.
"""

from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np

import jaxviz
from jaxviz.models import layers

CASES = [("mobilenet_v2", "saliency", 8), ("squeezenet1_1", "saliency", 16), ("squeezenet1_1", "deeplift", 16),
         ("densenet121", "saliency", 4), ("resnet18", "saliency", 8), ("mobilenet_v2", "integrated_gradients", 2)]


def main(variant: str, only: str = "") -> None:
    if variant == "old":  # looked up at trace time by every backward pass that calls it
        layers._computed_once = layers._summed_with_zero
    cases = [c for c in CASES if not only or f"{c[0]}:{c[1]}" in only.split(",")]
    for arch, method, n in cases:
        model = jaxviz.init_model(jax.random.key(0), arch)
        x = jax.random.normal(jax.random.key(1), (n, 224, 224, 3))
        target = np.arange(n) % model.architecture.num_classes
        function = getattr(jaxviz, method)
        result = np.asarray(function(model, x, target))
        reference = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"conditional_buffer_{arch}_{method}.npy")
        if variant == "old" and not os.path.exists(reference):
            np.save(reference, result)
        difference = float(np.abs(result - np.load(reference)).max()) if os.path.exists(reference) else float("nan")
        times = []
        for _ in range(11):
            start = time.perf_counter()
            jax.block_until_ready(function(model, x, target))
            times.append(time.perf_counter() - start)
        print(f"{variant} {arch:14s} {method:22s} n={n:2d} median {np.median(times) * 1e3:8.1f} ms  "
              f"least {min(times) * 1e3:8.1f}  largest difference {difference}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
