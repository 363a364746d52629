"""Evaluating a batch a few images at a time, so that on a CPU each image's activations are
still in cache when its backward pass reads them.

A chunk holds about five 224×224 images' worth of pixels, which keeps a CPU's gradient
and forward passes in cache (the measurements are in benchmarks/results/design-notes.md).
Accelerators get the whole batch at once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

PIXELS_PER_CHUNK = 5 * 224 * 224


def chunk_size(n: int, height: int, width: int) -> int:
    """Images per evaluation for a batch of ``n`` images of ``height``×``width``.

    ``n`` on accelerators.  On CPU, at most ``PIXELS_PER_CHUNK`` pixels per chunk, the
    chunks balanced (25 images at 224 → 5 chunks of 5, 6 → 2 of 3) and a multiple of the
    local device count, so that a batch sharded over host devices stays sharded per chunk.
    """
    if jax.default_backend() != "cpu":
        return n
    most = max(1, PIXELS_PER_CHUNK // (height * width))
    if most >= n:
        return n
    chunks = -(-n // most)
    size = -(-n // chunks)
    devices = jax.local_device_count()
    size = -(-size // devices) * devices
    return min(size, n)


def copies_per_eval(n: int, height: int, width: int, *, chunks: int = 4) -> int:
    """How many copies of an (n, height, width) batch one evaluation takes by default: as
    many as hold about ``chunks·PIXELS_PER_CHUNK`` pixels on a CPU (4 for forward passes
    alone), 64 on an accelerator."""
    if jax.default_backend() != "cpu":
        return 64
    return max(1, chunks * PIXELS_PER_CHUNK // (n * height * width))


def map_chunks(fn, *args, chunk: int | None = None, interleave: bool | None = None):
    """``fn(*args)`` evaluated ``chunk`` images at a time in one ``lax.map``.

    Every leaf of ``args`` and of ``fn``'s result has the batch on its leading axis, and
    ``fn`` treats images independently (as a per-image gradient does).  The batch is padded
    with copies of its last image to ``k·chunk``.  On one device chunk ``m`` holds images
    ``m·chunk, …, (m+1)·chunk − 1``, so splitting and joining move no data; on several,
    chunk ``m`` holds images ``m, m+k, …``, so a batch sharded along its leading axis splits
    evenly within every chunk.

    Args:
      fn: per-image function of ``args``.
      *args: pytrees of (N, ...) arrays.
      chunk: images per evaluation; default :func:`chunk_size` of the first image-shaped
        (4-D) leaf, or the whole batch when there is none.
      interleave: chunk ``m`` holds images ``m, m+k, …``; default: when there are several
        devices.
    """
    leaves = jax.tree_util.tree_leaves(args)
    n = leaves[0].shape[0]
    if chunk is None:
        images = [leaf for leaf in leaves if leaf.ndim == 4]
        chunk = chunk_size(n, *images[0].shape[1:3]) if images else n
    if chunk >= n:
        return fn(*args)
    count = -(-n // chunk)
    pad = count * chunk - n

    if interleave is None:  # interleaving copies the batch in and out (a tenth of a SqueezeNet gradient's time)
        interleave = jax.device_count() > 1

    def split(a):  # (N, ...) → (count, chunk, ...)
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[-1:], pad, axis=0)])
        if interleave:  # chunk m = images m, m+count, …
            return jnp.swapaxes(a.reshape((chunk, count) + a.shape[1:]), 0, 1)
        return a.reshape((count, chunk) + a.shape[1:])

    def join(a):
        if interleave:
            a = jnp.swapaxes(a, 0, 1)
        return a.reshape((count * chunk,) + a.shape[2:])[:n]

    out = jax.lax.map(lambda group: fn(*group), jax.tree_util.tree_map(split, args))
    return jax.tree_util.tree_map(join, out)
