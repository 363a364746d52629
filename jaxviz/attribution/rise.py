"""RISE (Petsiuk et al.): the class probability under random smooth masks, each mask weighted
by what it kept — black-box saliency, every mask of every image in one compiled loop."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _chunks, scoring
from jaxviz.attribution import _paths
from jaxviz.errors import InputError

DEFAULT_N_MASKS = 4000  # the paper's for ResNet-50 (and its code's default)
DEFAULT_CELLS = 7
DEFAULT_P = 0.5


@functools.cache
def upsampling_matrix(cells: int, size: int, dtype: str = "float32") -> np.ndarray:
    """(size, cells) weights of scikit-image's ``resize(order=1, mode="reflect",
    anti_aliasing=False)`` from ``cells`` to ``size`` on one axis: linear interpolation at
    source ``(dst + ½)·cells/size − ½``, mirrored at the ends (what RISE upsamples its grids
    with)."""
    dst = np.arange(size)
    src = (dst + 0.5) * cells / size - 0.5
    below = np.floor(src).astype(np.int64)
    t = src - below

    def mirrored(i):
        i = np.abs(i)
        return np.where(i > cells - 1, 2 * (cells - 1) - i, i)

    m = np.zeros((size, cells), np.float64)
    np.add.at(m, (dst, mirrored(below)), 1 - t)
    np.add.at(m, (dst, mirrored(below + 1)), t)
    return m.astype(dtype)


def cell_sizes(height: int, width: int, cells: int) -> tuple[int, int]:
    """RISE's cell: ⌈size / cells⌉ pixels on each axis."""
    return -(-height // cells), -(-width // cells)


def masks_from(grids, shifts, height: int, width: int):
    """RISE's masks from their binary grids (n, s, s) and shifts (n, 2): each grid upsampled
    bilinearly to (s + 1)·cell pixels a side, then cropped at the shift (an (H, W) window).

    This is RISE's ``generate_masks`` given its draws; :func:`rise_masks` draws them."""
    grids = jnp.asarray(grids)
    cells = grids.shape[-1]
    cell_h, cell_w = cell_sizes(height, width, cells)
    dtype = "float64" if grids.dtype == jnp.float64 else "float32"
    rows = jnp.asarray(upsampling_matrix(cells, (cells + 1) * cell_h, dtype))
    cols = jnp.asarray(upsampling_matrix(cells, (cells + 1) * cell_w, dtype))
    shifts = jnp.asarray(shifts)
    row_windows = rows[shifts[:, :1] + jnp.arange(height)[None]]  # (n, H, s)
    col_windows = cols[shifts[:, 1:] + jnp.arange(width)[None]]  # (n, W, s)
    return jnp.einsum("nHs,nst,nWt->nHW", row_windows, grids, col_windows, precision=jax.lax.Precision.HIGHEST)


def _draws(key, cells: int, p: float, cell_h: int, cell_w: int, dtype):
    """One mask's grid (cells, cells) and shift (2,) from its key."""
    grid_key, shift_key = jax.random.split(key)
    grid = jax.random.bernoulli(grid_key, p, (cells, cells)).astype(dtype)
    shift = jax.random.randint(shift_key, (2,), 0, jnp.array([cell_h, cell_w]))
    return grid, shift


def rise_masks(key, n_masks: int, height: int, width: int, *, cells: int = DEFAULT_CELLS, p: float = DEFAULT_P,
               dtype=jnp.float32):
    """(n_masks, H, W) RISE masks: mask i from ``jax.random.fold_in(key, i)`` (its grid of
    ``cells``×``cells`` cells, each kept with probability ``p``, and its shift), as
    :func:`rise` draws them."""
    return rise_masks_at(key, jnp.arange(n_masks), height, width, cells, p, dtype)


def rise_masks_at(key, ids, height, width, cells, p, dtype):
    """The masks of :func:`rise_masks` with ids ``ids`` (k,), (k, H, W)."""
    cell_h, cell_w = cell_sizes(height, width, cells)
    grids, shifts = jax.vmap(lambda i: _draws(jax.random.fold_in(key, i), cells, p, cell_h, cell_w, dtype))(ids)
    return masks_from(grids, shifts, height, width)


@functools.partial(jax.jit, static_argnames=("n_masks", "cells", "p", "chunk"))
def _rise(model, x, target, key, masks, n_masks, cells, p, chunk):
    n, height, width = x.shape[:3]

    def masks_for(ids):
        if masks is not None:
            return masks[jnp.minimum(ids, n_masks - 1)]
        return rise_masks_at(key, ids, height, width, cells, p, x.dtype)

    def evaluate(total, ids):  # k masks, all images: Σ_k P(target | x ⊙ M_k) M_k
        m = masks_for(ids) * (ids < n_masks)[:, None, None].astype(x.dtype)  # padded ids add nothing
        k = ids.shape[0]
        masked = (m[:, None, :, :, None] * x[None]).reshape((k * n,) + x.shape[1:])
        probabilities = scoring.batch_target_probabilities(model, masked, jnp.tile(target, k)).reshape(k, n)
        return total + jnp.einsum("kn,khw->nhw", probabilities, m, precision=jax.lax.Precision.HIGHEST), None

    ids = _paths.split_chunks(jnp.arange(n_masks), chunk, fill=n_masks)
    total, _ = jax.lax.scan(evaluate, jnp.zeros((n, height, width), x.dtype), ids)
    return total / (n_masks * p)


def rise(model, x, target, *, n_masks: int = DEFAULT_N_MASKS, cells: int = DEFAULT_CELLS, p: float = DEFAULT_P,
         key=None, masks=None, masks_per_eval: int | None = None):
    """RISE saliency: Σᵢ P(target | x ⊙ Mᵢ) · Mᵢ / (n_masks · p) over random masks Mᵢ, the
    softmax probability of the masked image weighting each mask (the paper's ``RISE``
    module, its ``forward`` with the model followed by a softmax).

    Each mask is a ``cells``×``cells`` grid of cells kept with probability ``p``,
    upsampled bilinearly to (cells + 1)·⌈H / cells⌉ pixels and cropped at a random shift
    (RISE's ``generate_masks``).  The same masks serve every image.  All masks go through
    the network inside one compiled loop, ``masks_per_eval`` masks (× N images) per
    forward pass, each mask made there from its key: memory does not grow with
    ``n_masks``.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      n_masks: masks (the paper: 4000 for ResNet-50, 8000 for VGG-16).
      cells: grid cells per side (the paper's s = 7).
      p: probability that a cell is kept (the paper's p1 = 0.5).
      key: a jax.random key for the masks (required unless ``masks``): mask i is drawn
        from ``jax.random.fold_in(key, i)`` (:func:`rise_masks` makes the same masks).
      masks: (n_masks, H, W) the masks themselves (``n_masks``, ``cells`` then unused;
        ``p`` still divides).
      masks_per_eval: masks per forward pass (memory bound; default from the image size).

    Returns:
      (N, H, W) saliency.

    References:
      Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of Black-box
      Models (BMVC 2018).
    """
    x, target = scoring.prepare(model, x, target)
    height, width = x.shape[1:3]
    p = _checks.check_fraction(p, "p")
    if masks is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `masks` is given")
        n_masks = _checks.check_positive_int(n_masks, "n_masks")
        cells = _checks.check_positive_int(cells, "cells")
        if cells > min(height, width):
            raise InputError(f"`cells` ({cells}) must not exceed the image's side ({height}×{width})")
    else:
        masks = jnp.asarray(masks, x.dtype)
        if masks.ndim != 3 or masks.shape[1:] != (height, width) or masks.shape[0] < 1:
            raise InputError(f"`masks` must have shape (n_masks, {height}, {width}), got {tuple(masks.shape)}")
        if _checks.is_concrete(masks) and not _checks.all_finite(masks):
            raise InputError("`masks` contains NaN or inf values")
        n_masks, cells, key = masks.shape[0], 0, None
    if masks_per_eval is None:
        masks_per_eval = _chunks.copies_per_eval(*x.shape[:3])
    chunk = _paths.balanced_chunk(n_masks, _checks.check_positive_int(masks_per_eval, "masks_per_eval"))
    return _rise(model, x, target, key, masks, n_masks, cells, float(p), chunk)
