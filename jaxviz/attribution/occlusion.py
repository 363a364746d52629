"""Occlusion (Captum ``Occlusion``): the score drop when a sliding window is set to a baseline."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _chunks, _deprecation, scoring
from jaxviz.attribution import _paths, _regions
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


@functools.partial(jax.jit, static_argnames=("window", "strides", "chunk", "plan"))
def _occlusion(model, x, target, baselines, window, strides, chunk, repeats, plan, tables):
    body = functools.partial(_occlusion_body, model, window=window, strides=strides, chunk=chunk, plan=plan,
                             tables=tables)
    return scoring.per_image(body, repeats, x, target, baselines)


def _occlusion_body(model, x, target, baselines, *, window, strides, chunk, plan, tables):
    n, h, w, c = x.shape
    mh, mw, mc = (
        window_masks(size, win, stride) for size, win, stride in zip((h, w, c), window, strides)
    )
    sh, sw, sc = mh.shape[0], mw.shape[0], mc.shape[0]
    mh_j, mw_j, mc_j = (jnp.asarray(m, x.dtype) for m in (mh, mw, mc))
    base = scoring.batch_target_logits(model, x, target)
    if plan is None:
        drops = _whole_image_drops(model, x, target, baselines, base, (mh_j, mw_j, mc_j), chunk)
    else:
        drops = _region_drops(model, x, target, baselines, base, (mh_j, mw_j, mc_j), plan, tables)
    drops = drops.reshape(sh, sw, sc, n)
    # Σ_windows drop · mask, divided by how many windows cover each element
    total = jnp.einsum("ijln,ih,jw,lc->nhwc", drops, mh_j, mw_j, mc_j, precision=jax.lax.Precision.HIGHEST)
    counts = np.einsum("ih,jw,lc->hwc", mh, mw, mc)
    # Captum divides by zero (NaN) where no window reaches; jaxviz gives those elements 0.
    return jnp.where(counts > 0, total / jnp.asarray(np.maximum(counts, 1), x.dtype)[None], 0.0)


def _window_ids(ids, shifts):
    """Window ids (row shift · columns · channels + …) as (row, column, channel) shifts."""
    _, sw, sc = shifts
    return ids // (sw * sc), ids // sc % sw, ids % sc


def _whole_image_drops(model, x, target, baselines, base, masks, chunk):
    """(windows, N) score drops, every occluded image through the whole network, ``chunk``
    windows (× N images) per evaluation."""
    n = x.shape[0]
    mh, mw, mc = masks
    shifts = (mh.shape[0], mw.shape[0], mc.shape[0])
    count = np.prod(shifts)

    def evaluate(ids):  # (k,) window ids → (k, N) score drops
        i, j, l = _window_ids(ids, shifts)
        mask = mh[i][:, :, None, None] * mw[j][:, None, :, None] * mc[l][:, None, None, :]
        mask = mask[:, None]  # (k, 1, H, W, C)
        ablated = x[None] * (1 - mask) + baselines[None] * mask
        k = ids.shape[0]
        scores = scoring.batch_target_logits(model, ablated.reshape((k * n,) + x.shape[1:]), jnp.tile(target, k))
        return jnp.where((ids < count)[:, None], base[None] - scores.reshape(k, n), 0.0)

    ids = _paths.split_chunks(jnp.arange(count), chunk, fill=count)
    return jax.lax.map(evaluate, ids).reshape(-1, n)[:count]


def _region_drops(model, x, target, baselines, base, masks, plan, tables):
    """:func:`_whole_image_drops` with each occluded image's layers below ``plan.layer``
    evaluated on a crop around its window (:mod:`jaxviz.attribution._regions`)."""
    n, h, w, c = x.shape
    mh, mw, mc = masks
    shifts = (mh.shape[0], mw.shape[0], mc.shape[0])
    count = int(np.prod(shifts))
    rows, cols = plan.rows, plan.cols
    whole = scoring.layer_outputs(model, x, (plan.layer,))[0]  # (N, h', w', c') unoccluded
    zero = jnp.zeros((), jnp.int32)

    def ablated_crop(image, crop_r, crop_c, i, j, l):
        def crop(a):
            return jax.lax.dynamic_slice(a, (crop_r, crop_c, zero), (rows.crop, cols.crop, c))

        mask = (jax.lax.dynamic_slice(mh[i], (crop_r,), (rows.crop,))[:, None, None]
                * jax.lax.dynamic_slice(mw[j], (crop_c,), (cols.crop,))[None, :, None] * mc[l][None, None, :])
        return crop(x[image]) * (1 - mask) + crop(baselines[image]) * mask

    window_ids = jnp.repeat(jnp.arange(count, dtype=jnp.int32), n)  # window-major, as the drops
    i, j, l = _window_ids(window_ids, shifts)
    images = jnp.tile(jnp.arange(n, dtype=jnp.int32), count)
    scores = _regions.scores_on_crops(model, plan, tables, whole, target, x.shape[1:], (images, i, j, i, j, l),
                                      ablated_crop, _chunks.chunk_size(count * n, h, w))
    return base[None] - scores.reshape(count, n)


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
    regions: bool | str = True,
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
      windows_per_eval: windows per forward pass (memory bound) when every occluded image
        goes through the whole network.
      regions: evaluate each occluded image's layers below a layer that cuts the network
        on a crop around its window alone, when that saves work (the same numbers: see
        :mod:`jaxviz.attribution._regions`; tried from 512 occluded images, windows ×
        images); ``False``: every occluded image whole; ``"always"``: on crops whenever
        the network allows it, even when it saves nothing (to check it).

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
    if regions not in (True, False, "always"):
        raise InputError(f"`regions` must be True, False or 'always', got {regions!r}")
    windows = math.prod(len(window_masks(size, win, step)) for size, win, step in zip(x.shape[1:], window, strides))
    plan = None
    if isinstance(target, scoring.Neuron):  # a neuron's value is read whole: no region plan
        regions = False
    if regions == "always" or (regions and windows * x.shape[0] >= _regions.PLANNING_PAYS):
        plan = _regions.window_plan(model, x.shape[1:], window, strides,
                                    most_cost=math.inf if regions == "always" else _regions.WORTH_IT)
    return _occlusion(model, x, target, baselines, window, strides, chunk, scoring.find_repeats(x, target, baselines),
                      plan, None if plan is None else plan.tables())
