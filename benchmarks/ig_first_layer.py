"""#20's exact saving for path methods, measured: Σₖ wₖ ∇ₓF(xₖ) = W₁ᵀ(Σₖ wₖ g₁ₖ), so IG's
path gradients can stop at the first convolution's output and conv1ᵀ run once per image.
Today's ``path_gradient_sum`` ("old") against that ("new"), alternating in one process:
5 course images at 224, 50 Gauss–Legendre steps, 25 steps per evaluation.  Not used by
the library: it was slower (benchmarks/results/design-notes.md).

    PYTHONPATH=. python -m benchmarks.ig_first_layer [ARCH]
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz
from jaxviz import scoring
from jaxviz.attribution import _paths
from jaxviz.attribution.integrated_gradients import path_gradient_sum

SHARED = Path(os.environ.get("JAXVIZ_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def first_layer_gradient_sum(model, x, target, baselines, alphas, weights, chunk: int):
    """What :func:`path_gradient_sum` returns, from the first layer's output gradients."""
    first = model.architecture.layer_names[0]
    diff = x - baselines

    def weighted(group):
        a, w = group
        points = _paths.path_points(baselines, diff, a)
        c, n = points.shape[:2]
        flat = points.reshape((c * n,) + x.shape[1:])
        (_,), (g,) = scoring.gradient_pass(model, flat, scoring.repeat_targets(target, c), (first,))
        return jnp.tensordot(w, g.reshape((c, n) + g.shape[1:]), axes=1)

    groups = (_paths.split_chunks(alphas, chunk), _paths.split_chunks(weights, chunk))
    shape = jax.eval_shape(lambda: scoring.layer_outputs(model, x, (first,))[0]).shape
    summed, _ = jax.lax.scan(lambda acc, g: (acc + weighted(g), None), jnp.zeros(shape, x.dtype), groups)
    _, transpose = jax.vjp(lambda v: scoring.layer_outputs(model, v, (first,))[0], x)  # affine: any point
    return transpose(summed)[0]


def main(arch: str = "squeezenet1_1", repeats: int = 5, chunk: int = 25) -> None:
    model = jaxviz.load_model() if arch == "squeezenet1_1" else jaxviz.init_model(jax.random.key(0), arch)
    data = np.load(SHARED / "data" / "imagenet_val_25.npz", allow_pickle=False)
    x, y = jaxviz.preprocess(data["X"][:5]), jnp.asarray(data["y"][:5])
    baselines = jnp.zeros_like(x)
    sums = {"old": path_gradient_sum, "new": first_layer_gradient_sum}

    @functools.partial(jax.jit, static_argnames="which")
    def integrated_gradients(x, which):
        alphas, weights = _paths.quadrature("gausslegendre", 50)
        summed = sums[which](model, x, y, baselines, jnp.asarray(alphas, x.dtype), jnp.asarray(weights, x.dtype),
                             chunk)
        return (x - baselines) * summed

    old, new = (integrated_gradients(x, k).block_until_ready() for k in sums)
    print(arch, model.architecture.layer_names[0], "max |new − old| / max |old|:",
          float(jnp.abs(old - new).max() / jnp.abs(old).max()))
    times = {k: [] for k in sums}
    for _ in range(repeats):
        for k in sums:
            start = time.perf_counter()
            integrated_gradients(x, k).block_until_ready()
            times[k].append(time.perf_counter() - start)
    medians = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(f"{k}: median {medians[k]:.2f} s, runs {', '.join(f'{t:.2f}' for t in v)}")
    print(f"old / new: {medians['old'] / medians['new']:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
