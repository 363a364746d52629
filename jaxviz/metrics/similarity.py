"""How alike two batches of maps are, image by image: the similarity measures of the
randomisation tests (Adebayo et al.), each (N, ...) × (N, ...) → (N,)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def _sort_keys(v):
    """Unsigned integers in the order of the float values ``v`` (−0 equal to +0): XLA's CPU
    sort of one integer array is about 6× faster than its sort of floats."""
    width = 8 * v.dtype.itemsize
    unsigned = {32: jnp.uint32, 64: jnp.uint64}[width]
    bits = jax.lax.bitcast_convert_type(jnp.where(v == 0, jnp.zeros_like(v), v), unsigned)
    top = unsigned(1) << (width - 1)
    return jnp.where((bits & top) != 0, ~bits, bits | top)


def _ranks(v):
    """(N, F) → (N, F) ranks 1…F, ties given their average rank (scipy's ``rankdata``): an
    element's equals take the places after the elements below it up to those not above it."""
    if v.dtype not in (jnp.float32, jnp.float64):
        v = v.astype(jnp.float32)
    keys = _sort_keys(v)
    ordered = jnp.sort(keys, axis=1)
    below = jax.vmap(functools.partial(jnp.searchsorted, side="left"))(ordered, keys)
    not_above = jax.vmap(functools.partial(jnp.searchsorted, side="right"))(ordered, keys)
    return (below + not_above + 1).astype(v.dtype) / 2


def pearson(a, b):
    """Pearson correlation of each pair of flattened maps (NaN where one is constant)."""
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    return (a * b).sum(axis=1) / jnp.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))


def spearman(a, b):
    """Spearman rank correlation of each pair of flattened maps (scipy's ``spearmanr``:
    the Pearson correlation of average ranks)."""
    a = a.reshape(a.shape[0], -1)
    b = b.reshape(b.shape[0], -1)
    return pearson(_ranks(a), _ranks(b))


def spearman_abs(a, b):
    """:func:`spearman` of the magnitudes (the randomisation paper's "absolute value")."""
    return spearman(jnp.abs(a), jnp.abs(b))


def ssim(a, b, *, win_size: int = 7):
    """Mean structural similarity of each pair of (N, H, W) maps, as scikit-image's
    ``structural_similarity`` computes it by default (a uniform ``win_size`` window, sample
    covariances, K₁ = 0.01, K₂ = 0.03, the mean over the windows inside the map), with
    ``data_range`` the range of both maps together (Quantus' choice)."""
    if a.ndim != 3 or a.shape != b.shape:
        raise ValueError(f"ssim compares (N, H, W) maps of one shape, got {a.shape} and {b.shape}")
    if min(a.shape[1:]) < win_size:
        raise ValueError(f"ssim needs maps of at least {win_size}×{win_size}, got {a.shape[1:]}")
    both = jnp.concatenate([a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)], axis=1)
    data_range = (both.max(axis=1) - both.min(axis=1))[:, None, None]
    k = win_size * win_size

    def window_mean(v):  # the windows whose centres lie inside by win_size // 2: no padding reached
        summed = jax.lax.reduce_window(v, 0.0, jax.lax.add, (1, win_size, win_size), (1, 1, 1), "VALID")
        return summed / k

    ux, uy = window_mean(a), window_mean(b)
    uxx, uyy, uxy = window_mean(a * a), window_mean(b * b), window_mean(a * b)
    cov_norm = k / (k - 1)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.mean(axis=(1, 2))


def hog_features(maps, *, orientations: int = 9, cell: int = 8, block: int = 3):
    """(N, H, W) → (N, features): scikit-image's ``hog`` with its defaults (9 unsigned
    orientations, 8×8-pixel cells, 3×3-cell blocks, L2-Hys), feature vectors in its order."""
    n, h, w = maps.shape
    rows, cols = h // cell, w // cell
    if rows < block or cols < block:
        raise ValueError(f"hog needs maps of at least {block * cell}×{block * cell}, got {h}×{w}")
    zero_row, zero_col = jnp.zeros((n, 1, w), maps.dtype), jnp.zeros((n, h, 1), maps.dtype)
    g_row = jnp.concatenate([zero_row, maps[:, 2:] - maps[:, :-2], zero_row], axis=1)
    g_col = jnp.concatenate([zero_col, maps[:, :, 2:] - maps[:, :, :-2], zero_col], axis=2)
    magnitude = jnp.hypot(g_col, g_row)
    angle = jnp.arctan2(g_row, g_col) * (180 / jnp.pi) % 180
    width = 180.0 / orientations
    bins = jnp.stack([(angle >= width * i) & (angle < width * (i + 1)) for i in range(orientations)], axis=-1)
    weighted = (magnitude[..., None] * bins)[:, : rows * cell, : cols * cell]
    histogram = weighted.reshape(n, rows, cell, cols, cell, orientations).sum(axis=(2, 4)) / (cell * cell)
    blocks = jnp.stack([jnp.stack([histogram[:, r:r + block, c:c + block] for c in range(cols - block + 1)], axis=1)
                        for r in range(rows - block + 1)], axis=1)  # (N, block rows, block cols, b, b, o)
    eps = 1e-5
    axes = (3, 4, 5)
    blocks = blocks / jnp.sqrt((blocks ** 2).sum(axis=axes, keepdims=True) + eps ** 2)
    blocks = jnp.minimum(blocks, 0.2)
    blocks = blocks / jnp.sqrt((blocks ** 2).sum(axis=axes, keepdims=True) + eps ** 2)
    return blocks.reshape(n, -1)


def hog(a, b):
    """Pearson correlation of the two maps' histograms of oriented gradients
    (:func:`hog_features`), the randomisation paper's third measure."""
    return pearson(hog_features(a), hog_features(b))


MEASURES = {"spearman_abs": spearman_abs, "spearman": spearman, "ssim": ssim, "hog": hog, "pearson": pearson}
