"""Saliency's ``abs`` after the chunked gradients' loop (before) or inside it, on each
chunk (now: ``scoring.input_gradients(then=)``), A/B in one process.

    PYTHONPATH=. python benchmarks/results/output-in-loop/ab.py ARCH BATCH ROUNDS

Both programs are compiled first, then called in turn ``ROUNDS`` times each.  Random
weights and images at 224; prints the largest difference, each variant's median and least,
and the median of the per-round ratios.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp

import jaxviz
from jaxviz import _chunks, scoring

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alternate import alternate  # noqa: E402


def main(arch: str, batch: str, rounds: str) -> None:
    model = jaxviz.init_model(jax.random.key(0), arch)
    n = int(batch)
    x = jax.random.normal(jax.random.key(2), (n, 224, 224, 3))
    target = jnp.arange(n) % model.architecture.num_classes

    @jax.jit
    def after(model, x, target):  # the loop writes the gradients; abs reads and writes them again
        def grads(v, t):
            return jax.grad(lambda u: scoring.target_logits(model, u, t)[0].sum())(v)

        return jnp.abs(_chunks.map_chunks(grads, x, target))

    @jax.jit
    def inside(model, x, target):
        return scoring.input_gradients(model, x, target, then=lambda _, g: jnp.abs(g))

    alternate({"after": after, "inside": inside}, (model, x, target), int(rounds))


if __name__ == "__main__":
    main(*sys.argv[1:])
