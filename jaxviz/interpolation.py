"""Resizing maps exactly as ``torch.nn.functional.interpolate`` does (``align_corners=False``):
GradCAM's upsampling, and the figures."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks
from jaxviz.choices import INTERPOLATE_MODES


@functools.cache
def interpolation_matrix(in_size: int, out_size: int, mode: str, dtype: str = "float32") -> np.ndarray:
    """(out, in) weights of ``torch.nn.functional.interpolate`` (align_corners=False) on one axis.

    Computed as PyTorch's CPU kernels compute them: ``nearest`` in float32 with
    ``floor(dst · in/out)``; ``bilinear``/``bicubic`` at source ``(dst + ½)·in/out − ½``
    (clamped at 0 for bilinear), cubic convolution with A = −0.75 and edge clamping.
    """
    _checks.check_choice(mode, "interpolate_mode", INTERPOLATE_MODES)
    ft = np.float32 if dtype == "float32" else np.float64
    m = np.zeros((out_size, in_size), np.float64)
    dst = np.arange(out_size)
    if in_size == out_size:
        return np.eye(out_size, dtype=dtype)
    if mode == "nearest":
        if out_size == 2 * in_size:
            src = dst >> 1
        else:
            scale = np.float32(in_size) / np.float32(out_size)
            src = np.minimum(np.floor(dst.astype(np.float32) * scale).astype(np.int64), in_size - 1)
        m[dst, src] = 1.0
        return m.astype(dtype)
    scale = ft(in_size) / ft(out_size)
    src = scale * (dst.astype(ft) + ft(0.5)) - ft(0.5)
    if mode == "bilinear":
        return _bilinear(np.maximum(src, ft(0.0)), in_size, ft).astype(dtype)
    i = np.floor(src).astype(np.int64)
    t = (src - i.astype(ft)).astype(ft)
    a = ft(-0.75)

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    coefficients = (far(t + 1), near(t), near(1 - t), far(2 - t))
    for offset, c in zip((-1, 0, 1, 2), coefficients):
        np.add.at(m, (dst, np.clip(i + offset, 0, in_size - 1)), c.astype(np.float64))
    return m.astype(dtype)


@functools.cache
def aligned_bilinear_matrix(in_size: int, out_size: int, dtype: str = "float32") -> np.ndarray:
    """(out, in) weights of bilinear interpolation with ``align_corners=True``
    (``nn.UpsamplingBilinear2d``): source ``dst · (in − 1)/(out − 1)``, corners on corners."""
    ft = np.float32 if dtype == "float32" else np.float64
    scale = ft(in_size - 1) / ft(out_size - 1) if out_size > 1 else ft(0.0)
    return _bilinear(scale * np.arange(out_size).astype(ft), in_size, ft).astype(dtype)


def _bilinear(src, in_size: int, ft) -> np.ndarray:
    """(out, in) weights of linear interpolation at the non-negative source positions
    ``src`` (dtype ``ft``), the neighbour clamped at the last input."""
    dst = np.arange(src.shape[0])
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = (src - i0.astype(ft)).astype(ft)
    m = np.zeros((src.shape[0], in_size), np.float64)
    np.add.at(m, (dst, i0), (ft(1.0) - lam).astype(np.float64))
    np.add.at(m, (dst, np.minimum(i0 + 1, in_size - 1)), lam.astype(np.float64))
    return m


def interpolate(maps, size: tuple[int, int], mode: str = "nearest"):
    """Resizes NHWC maps to ``size`` = (H, W) like ``F.interpolate(mode, align_corners=False)``."""
    _, h, w, _ = maps.shape
    dtype = "float64" if maps.dtype == jnp.float64 else "float32"
    mh = jnp.asarray(interpolation_matrix(h, size[0], mode, dtype), maps.dtype)
    mw = jnp.asarray(interpolation_matrix(w, size[1], mode, dtype), maps.dtype)
    return jnp.einsum("Hh,nhwc,Ww->nHWc", mh, maps, mw, precision=jax.lax.Precision.HIGHEST)
