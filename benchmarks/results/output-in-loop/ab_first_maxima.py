"""The max-pool's first-maximum taps: integers, made a buffer by an integer reduction and
padded for the routing in the backward pass (before), or floats padded in the forward pass
into one conditional buffer (now: ``layers._first_maxima``), A/B in one process.

    PYTHONPATH=. python benchmarks/results/output-in-loop/ab_first_maxima.py ARCH METHOD BATCH ROUNDS

Each variant is swapped in at trace time and compiled once; then the two programs are
called in turn.  Random weights and images at 224.
"""

from __future__ import annotations

import os
import sys

import jax
import jax.numpy as jnp

import jaxviz
from jaxviz.models import layers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from alternate import alternate  # noqa: E402


def first_maxima_before(x, kernel, stride, padding, ceil_mode):
    _, _, _, views = layers._padded_windows(x, kernel, stride, padding, ceil_mode)
    y, first = views[0][2], jnp.zeros(views[0][2].shape, jnp.int32)
    for tap, (_, _, view) in enumerate(views[1:], 1):
        larger = view > y
        y = jnp.where(larger, view, y)
        first = jnp.where(larger, jnp.int32(tap), first)
    return y, layers._computed_once(first)


def route_before(shape, first, g, kernel, stride, padding, ceil_mode):
    n, h, w, c = shape
    oh, ow, pad_h, pad_w = layers._pool_pads(shape, kernel, stride, padding, ceil_mode)
    padded_shape = (n, h + padding + pad_h, w + padding + pad_w, c)
    copies = g.shape[-1] // c
    if copies > 1:
        first = jnp.concatenate([first] * copies, axis=-1)
    zero = jnp.zeros((), g.dtype)
    rows, cols = layers._phase_extent(padded_shape, oh, ow, kernel, stride)
    most = (kernel - 1) // stride
    g, first = (layers._padded_once(a, value, (most, rows - oh), (most, cols - ow))
                for a, value in ((g, 0), (first, -1)))

    def shifted(di, dj, m, k):
        window = (slice(None), slice(most - m, most - m + rows), slice(most - k, most - k + cols))
        return jnp.where(first[window] == di * kernel + dj, g[window], zero)

    return layers._scatter_windows(shifted, tuple(shape[:-1]) + g.shape[-1:], padded_shape, oh, ow, kernel, stride,
                                   padding, g.dtype)


def main(arch: str, method: str, batch: str, rounds: str) -> None:
    model = jaxviz.init_model(jax.random.key(0), arch)
    n = int(batch)
    x = jax.random.normal(jax.random.key(1), (n, 224, 224, 3))
    target = jnp.arange(n) % model.architecture.num_classes
    function = getattr(jaxviz, method)
    today = layers._first_maxima, layers._route_to_first_maxima
    compiled = {}
    for name, (first_maxima, route) in (("old", (first_maxima_before, route_before)), ("new", today)):
        layers._first_maxima, layers._route_to_first_maxima = first_maxima, route  # looked up at trace time
        jax.clear_caches()
        compiled[name] = jax.jit(lambda model, x, t: function(model, x, t)).lower(model, x, target).compile()
    layers._first_maxima, layers._route_to_first_maxima = today
    alternate(compiled, (model, x, target), int(rounds))


if __name__ == "__main__":
    main(*sys.argv[1:])
