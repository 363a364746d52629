"""How long JAX takes to draw per-pixel noise in its two threefry modes, beside PyTorch's
``randn``: 50 samples of 8 images at 224 (Captum infidelity's default 50 perturbations of
W26's batch), one process, medians of 5 after a warm-up.

    PYTHONPATH=. python -m benchmarks.noise_draws
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np
import torch

SHAPE = (50, 8, 224, 224, 3)


def _median_s(fn, repeats: int = 5) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    key = jax.random.key(0)
    draws = {"normal": lambda k: jax.random.normal(k, SHAPE),
             "normal, a fold_in per sample": lambda k: jax.vmap(
                 lambda i: jax.random.normal(jax.random.fold_in(k, i), SHAPE[1:]))(np.arange(SHAPE[0])),
             "uniform": lambda k: jax.random.uniform(k, SHAPE)}
    for partitionable in (True, False):
        with jax.threefry_partitionable(partitionable):
            for name, draw in draws.items():
                compiled = jax.jit(draw)
                print(f"jax, threefry_partitionable={partitionable}, {name}: {_median_s(lambda: compiled(key)):.3f} s")
    print(f"torch.randn: {_median_s(lambda: torch.randn(SHAPE)):.3f} s")
    print(f"torch.rand: {_median_s(lambda: torch.rand(SHAPE)):.3f} s")


if __name__ == "__main__":
    main()
