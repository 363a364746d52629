"""Occlusion (Captum ``Occlusion``): the score drop when a sliding window is set to a baseline."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _deprecation, scoring
from jaxviz.attribution import _paths
from jaxviz.errors import InputError

DEFAULT_WINDOWS_PER_EVAL = 64


@functools.cache
def window_masks(size: int, window: int, stride: int) -> np.ndarray:
    """(shifts, size) 0/1 masks of the windows along one axis, as Captum places them.

    ``ceil((size − window)/stride) + 1`` shifts starting at ``k·stride``; the last window
    is cropped at the edge.
    """
    shifts = int(np.ceil((size - window) / stride)) + 1
    masks = np.zeros((shifts, size), np.float64)
    for k in range(shifts):
        masks[k, k * stride : k * stride + window] = 1.0
    return masks


def _check_triple(value, name, image_shape, *, default=None):
    if value is None:
        value = default
    if isinstance(value, (int, np.integer)):
        value = (int(value),) * 3
    value = tuple(value)
    if len(value) != 3 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in value):
        raise InputError(f"`{name}` must be 3 positive ints in (H, W, C) order, got {value}")
    return tuple(int(v) for v in value)


@functools.partial(jax.jit, static_argnames=("window", "strides", "chunk"))
def _occlusion(model, x, target, baselines, window, strides, chunk, repeats):
    body = functools.partial(_occlusion_body, model, window=window, strides=strides, chunk=chunk)
    return scoring.per_image(body, repeats, x, target, baselines)


def _occlusion_body(model, x, target, baselines, *, window, strides, chunk):
    n, h, w, c = x.shape
    mh, mw, mc = (
        window_masks(size, win, stride) for size, win, stride in zip((h, w, c), window, strides)
    )
    sh, sw, sc = mh.shape[0], mw.shape[0], mc.shape[0]
    mh_j, mw_j, mc_j = (jnp.asarray(m, x.dtype) for m in (mh, mw, mc))

    def scores(v):  # v: (k·N, H, W, C), image-major within each window
        return scoring.batch_target_logits(model, v, jnp.tile(target, v.shape[0] // n))

    base = scores(x)

    def evaluate(ids):  # (k,) window ids → (k, N) score drops
        i, rem = ids // (sw * sc), ids % (sw * sc)
        j, l = rem // sc, rem % sc
        mask = mh_j[i][:, :, None, None] * mw_j[j][:, None, :, None] * mc_j[l][:, None, None, :]
        mask = mask[:, None]  # (k, 1, H, W, C)
        ablated = x[None] * (1 - mask) + baselines[None] * mask
        k = ids.shape[0]
        drops = base[None] - scores(ablated.reshape((k * n, h, w, c))).reshape(k, n)
        return jnp.where((ids < sh * sw * sc)[:, None], drops, 0.0)

    ids = _paths.split_chunks(jnp.arange(sh * sw * sc), chunk, fill=sh * sw * sc)
    drops = jax.lax.map(evaluate, ids).reshape(-1, n)[: sh * sw * sc].reshape(sh, sw, sc, n)
    # Σ_windows drop · mask, divided by how many windows cover each element
    total = jnp.einsum("ijln,ih,jw,lc->nhwc", drops, mh_j, mw_j, mc_j, precision=jax.lax.Precision.HIGHEST)
    counts = np.einsum("ih,jw,lc->hwc", mh, mw, mc)
    # Captum divides by zero (NaN) where no window reaches; jaxviz gives those elements 0.
    return jnp.where(counts > 0, total / jnp.asarray(np.maximum(counts, 1), x.dtype)[None], 0.0)


@_deprecation.positional_keywords("sliding_window_shapes")
def occlusion(
    model,
    x,
    target,
    *,
    sliding_window_shapes,
    strides=None,
    baselines=0.0,
    windows_per_eval: int = DEFAULT_WINDOWS_PER_EVAL,
):
    """Captum ``Occlusion``: mean, over the windows covering each element, of
    F(x) − F(x with that window set to the baseline).

    Windows and strides are in (H, W, C) order (Captum's (C, H, W) transposed); the number
    of shifts per axis is ``ceil((D − w)/s) + 1`` and the last window is cropped at the
    edge.  All windows are evaluated inside one compiled ``lax.map``,
    ``windows_per_eval`` windows (× N images) per forward pass.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      sliding_window_shapes: (h, w, c) window.
      strides: int or (sh, sw, sc); default 1.
      baselines: scalar or array broadcastable as for :func:`integrated_gradients`.
      windows_per_eval: windows per forward pass (memory bound).

    Returns:
      (N, H, W, 3) attributions.

    References:
      Zeiler, Fergus. Visualizing and Understanding Convolutional Networks (2014).
    """
    x, target = scoring.prepare(model, x, target)
    window = _check_triple(sliding_window_shapes, "sliding_window_shapes", x.shape[1:])
    strides = _check_triple(strides, "strides", x.shape[1:], default=1)
    for axis, size, win in zip("HWC", x.shape[1:], window):
        if win > size:
            raise InputError(
                f"`sliding_window_shapes` {window} is larger than the image {tuple(x.shape[1:])} along {axis}"
            )
    chunk = _checks.check_positive_int(windows_per_eval, "windows_per_eval")
    baselines = _paths.broadcast_baselines(baselines, x)
    return _occlusion(model, x, target, baselines, window, strides, chunk, scoring.find_repeats(x, target, baselines))
