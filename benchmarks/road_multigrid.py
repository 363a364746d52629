"""ROAD's imputation solver: conjugate-gradient iterations per solve with the multigrid
V-cycle (``jaxviz.metrics.road``) and with the diagonal alone (the solver before it,
restated here), on W51's images and GradCAM maps, every order and percentile.

    python -m benchmarks.road_multigrid [IMAGES]
"""

from __future__ import annotations

import importlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz
from benchmarks.run import _targets_and_images, pair

road = importlib.import_module("jaxviz.metrics.road")  # the module (the package exports the function)
PERCENTILES = (10, 30, 50, 70, 90)


def diagonal_cg(x, unknown, tol, max_iterations):
    """(imputed, iterations): conjugate gradients preconditioned by the diagonal alone."""
    m = unknown[..., None].astype(x.dtype)
    inside = road._neighbour_sum(jnp.ones(x.shape[:2] + (1,), x.dtype))
    known = x * (1 - m)
    b = m * road._neighbour_sum(known)
    z = b / inside
    limit = tol ** 2 * jnp.vdot(b, z)

    def step(state):
        u, r, p, rz, k = state
        ap = road._system(m, inside, p)
        alpha = rz / jnp.vdot(p, ap)
        u, r = u + alpha * p, r - alpha * ap
        z = r / inside
        rz_next = jnp.vdot(r, z)
        return u, r, z + (rz_next / rz) * p, rz_next, k + 1

    state = jax.lax.while_loop(lambda s: (s[4] < max_iterations) & (s[3] > limit), step,
                               (jnp.zeros_like(b), b, z, jnp.vdot(b, z), 0))
    return known + m * state[0], state[4]


def main(images: int = 16):
    model, _ = pair("squeezenet1_1")
    x, y, _, _ = _targets_and_images(images)
    maps = np.asarray(jaxviz.gradcam(model, x, y, resolution="input"), np.float32)
    tol, max_iterations = road._solver_settings(x, None, None)
    solvers = {"diagonal": diagonal_cg, "V-cycle": road._solve_one}
    # one image at a time, as the library runs them
    runs = {name: jax.jit(lambda a, u, f=f: jax.lax.map(lambda args: f(*args, tol, max_iterations), (a, u)))
            for name, f in solvers.items()}
    print(f"| order, percentile | {' | '.join(f'{n}: iterations (min–max)' for n in solvers)} | "
          f"{' | '.join(f'{n}: s for {images}' for n in solvers)} | max difference |")
    print("|---|" + "---|" * (2 * len(solvers) + 1))
    for order in ("morf", "lerf"):
        values = 1 - maps if order == "lerf" else maps
        thresholds = np.percentile(values.reshape(images, -1), PERCENTILES, axis=1)
        for p, threshold in zip(PERCENTILES, thresholds):
            unknown = jnp.asarray(values >= threshold[:, None, None])
            counts, seconds, filled = [], [], []
            for run in runs.values():
                out = jax.block_until_ready(run(x, unknown))  # compiles
                start = time.perf_counter()
                jax.block_until_ready(run(x, unknown))
                seconds.append(time.perf_counter() - start)
                counts.append(np.asarray(out[1]))
                filled.append(np.asarray(out[0]))
            difference = np.abs(filled[0] - filled[1]).max() / np.abs(filled[0]).max()
            print(f"| {order} {p} | " + " | ".join(f"{c.mean():.0f} ({c.min()}–{c.max()})" for c in counts) + " | "
                  + " | ".join(f"{s:.2f}" for s in seconds) + f" | {difference:.1e} |")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
