"""W34's and W25's network passes timed apart from the rest of the method (bounds.md).
Run from the repository root: python benchmarks/results/status-2026-12-05/passes_apart.py"""
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz
from benchmarks.run import _targets_and_images, pair
from jaxviz import scoring


def best_of(f, repeats=3):
    jax.block_until_ready(f())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(f())
        times.append(round(time.perf_counter() - start, 3))
    return sorted(times)


model, _ = pair("squeezenet1_1")

# W34: Guided IG's 200 steps of 4 images, and the same 800 input gradients without the selection
x, y, _, _ = _targets_and_images(4)
x, y = scoring.prepare(model, x, y)
steps = 200


@jax.jit
def gradients_only(x, y):
    def step(total, i):
        return total + scoring.input_gradients(model, x * (i / steps), y), None
    return jax.lax.scan(step, jnp.zeros_like(x), jnp.arange(steps, dtype=x.dtype))[0]


print("W34 800 input gradients alone", best_of(lambda: gradients_only(x, y)))
print("W34 guided_ig", best_of(lambda: jaxviz.guided_ig(model, x, y, steps=steps)))

# W25: deletion and insertion of 8 images, and 3600 forward passes at batch 16 in a bare scan
x, y, _, _ = _targets_and_images(8)
maps = np.asarray(jaxviz.saliency(model, x, y)).sum(-1)
print("W25 deletion", best_of(lambda: jaxviz.metrics.deletion(model, x, y, maps, step=224).auc))
print("W25 insertion", best_of(lambda: jaxviz.metrics.insertion(model, x, y, maps, step=224).auc))
x, y = scoring.prepare(model, x, y)
pairs = jnp.concatenate([y, y])


@jax.jit
def forwards_only(x):
    def step(total, i):
        batch = jnp.concatenate([x * (1 - i / 450.0), x * (i / 450.0)])
        return total + scoring.target_probabilities(model, batch, pairs).sum(), None
    return jax.lax.scan(step, 0.0, jnp.arange(225.0))[0]


print("W25 3600 forward passes alone", best_of(lambda: forwards_only(x)))
