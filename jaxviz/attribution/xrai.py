"""XRAI (PAIR ``saliency`` ``XRAI``): regions ranked by their density of integrated-gradients
attribution.  Each image is segmented by Felzenszwalb's algorithm at six scales (on the
host, by scikit-image, as PAIR does); the segments are dilated, and regions are added
greedily, each time the one whose not-yet-covered pixels have the highest mean
attribution.  The IG paths of every image and baseline run in one compiled program, the
dilation and the greedy ranking of every image in another."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths
from jaxviz.attribution.integrated_gradients import path_gradient_sum
from jaxviz.errors import InputError

# PAIR's Felzenszwalb pyramid: scales, σ and minimum segment size, at 224×224 on [−1, 1]
SCALES = (50, 100, 150, 250, 500, 1200)
SIGMA = 0.8
MIN_SEGMENT_SIZE = 150
SEGMENTATION_SIZE = (224, 224)
DILATION_RADIUS = 5
LABEL_BUCKET = 16  # label counts are rounded up to this, so that few batches recompile


def segment_labels(x) -> np.ndarray:
    """(N, S, H, W) int32: each image's Felzenszwalb segments at PAIR's S = 6 scales (the
    host's work, with scikit-image, as ``_get_segments_felzenszwalb``): the image min–max
    scaled to [−1, 1] over all its values and resized to 224×224 (cubic, anti-aliased),
    segmented, and the labels resized back (nearest).  A constant image is one segment."""
    from skimage import segmentation, transform

    x = np.asarray(x)
    labels = np.empty((x.shape[0], len(SCALES)) + x.shape[1:3], np.int32)
    for n, image in enumerate(x):
        low, high = image.min(), image.max()
        scaled = (image - low) / (high - low) * 2.0 - 1.0 if high > low else np.zeros_like(image)
        scaled = transform.resize(scaled, SEGMENTATION_SIZE, order=3, mode="constant", preserve_range=True,
                                  anti_aliasing=True)
        for s, scale in enumerate(SCALES):
            segments = segmentation.felzenszwalb(scaled, scale=scale, sigma=SIGMA, min_size=MIN_SEGMENT_SIZE)
            labels[n, s] = transform.resize(segments, x.shape[1:3], order=0, preserve_range=True, mode="constant",
                                            anti_aliasing=False).astype(int)
    return labels


def dilate(masks, radius: int):
    """(..., H, W) boolean masks dilated by the disk x² + y² ≤ radius² (scikit-image's
    ``dilation(mask, disk(radius))``): for each row offset, the row's horizontal dilation
    by its half-width, shifted.  Outside the image counts as empty (a reflected border,
    scikit-image's, gives the same for a symmetric convex footprint)."""
    m = masks.astype(jnp.uint8)
    h = m.shape[-2]
    pad = [(0, 0)] * (m.ndim - 2)
    rows = {}
    out = jnp.zeros_like(m)
    for dy in range(-radius, radius + 1):
        half = math.isqrt(radius * radius - dy * dy)
        if half not in rows:
            window = (1,) * (m.ndim - 1) + (2 * half + 1,)
            rows[half] = jax.lax.reduce_window(m, np.uint8(0), jax.lax.max, window, (1,) * m.ndim,
                                               pad + [(0, 0), (half, half)])
        shifted = jnp.pad(rows[half], pad + [(radius, radius), (0, 0)])[..., radius + dy:radius + dy + h, :]
        out = jnp.maximum(out, shifted)
    return out.astype(bool)


def region_masks(labels, counts: tuple[int, ...], radius: int):
    """One image's (S, H, W) labels → (Σ counts, H, W) dilated masks, scale by scale,
    label by label (PAIR's ``_unpack_segs_to_masks`` order; absent labels give empty
    masks, which the ranking drops as PAIR drops them)."""
    masks = jnp.concatenate([labels[s][None] == jnp.arange(c, dtype=labels.dtype)[:, None, None]
                             for s, c in enumerate(counts)])
    return dilate(masks, radius) if radius else masks


def rank_regions(attribution, masks, area_threshold, min_pixel_diff):
    """One image's XRAI map from its (H, W) attribution and (M, H, W) boolean regions
    (PAIR's ``XRAI._xrai``): while the covered fraction is at most ``area_threshold``, the
    regions adding fewer than ``min_pixel_diff`` new pixels are dropped and the one whose
    new pixels have the highest mean attribution (the first of equals) is added, its new
    pixels taking that mean; pixels left uncovered take their own mean."""
    dtype = attribution.dtype
    flat = attribution.reshape(-1)
    regions = masks.reshape(masks.shape[0], -1)
    weights = regions.astype(dtype)

    def cond(state):
        covered, _, _, done = state
        return ~done & (covered.mean() <= area_threshold)

    def body(state):
        covered, alive, out, _ = state
        free = (~covered).astype(dtype)
        sums = weights @ jnp.stack([free, flat * free], axis=1)  # (M, 2): new pixels, their sum
        alive = alive & (sums[:, 0] >= min_pixel_diff)
        any_alive = alive.any()
        gain = jnp.where(alive, sums[:, 1] / jnp.where(alive, sums[:, 0], 1), -jnp.inf)
        best = jnp.argmax(gain)
        added = regions[best] & ~covered & any_alive
        return covered | added, alive.at[best].set(False), jnp.where(added, gain[best], out), ~any_alive

    start = (jnp.zeros_like(flat, bool), jnp.ones(regions.shape[0], bool), jnp.full_like(flat, -jnp.inf),
             jnp.asarray(False))
    _, _, out, _ = jax.lax.while_loop(cond, body, start)
    left = out == -jnp.inf
    mean_left = jnp.where(left, flat, 0).sum() / jnp.maximum(left.sum(), 1)
    return jnp.where(left, mean_left, out).reshape(attribution.shape)


@functools.partial(jax.jit, static_argnames=("n_steps", "chunk"))
def _ig_attributions(model, x, target, baselines, n_steps, chunk):
    """PAIR's ``IntegratedGradients`` from each (B, N, H, W, C) baseline, averaged over
    the baselines: (x − b)·Σ_k ∇F(b + α_k(x − b)) / n, α = linspace(0, 1, n)."""
    b, n = baselines.shape[:2]
    images = jnp.broadcast_to(x[None], baselines.shape).reshape((b * n,) + x.shape[1:])
    flat_baselines = baselines.reshape(images.shape)
    alphas = jnp.linspace(0.0, 1.0, n_steps, dtype=x.dtype)
    weights = jnp.full((n_steps,), 1.0 / n_steps, x.dtype)
    summed = path_gradient_sum(model, images, scoring.repeat_targets(target, b), flat_baselines, alphas, weights,
                               chunk)
    return ((images - flat_baselines) * summed).reshape(baselines.shape).mean(axis=0)


@functools.partial(jax.jit, static_argnames=("counts", "radius", "min_pixel_diff"))
def _rank_from_labels(attributions, labels, counts, radius, area_threshold, min_pixel_diff):
    def one(args):
        attribution, image_labels = args
        return rank_regions(attribution, region_masks(image_labels, counts, radius), area_threshold, min_pixel_diff)

    return jax.lax.map(one, (attributions, labels))


@functools.partial(jax.jit, static_argnames=("min_pixel_diff",))
def _rank_from_masks(attributions, masks, area_threshold, min_pixel_diff):
    return jax.lax.map(lambda args: rank_regions(*args, area_threshold, min_pixel_diff), (attributions, masks))


def _baseline_stack(baselines, x):
    if baselines is None:  # PAIR's: the image's minimum and its maximum everywhere
        low = x.min(axis=(1, 2, 3), keepdims=True)
        high = x.max(axis=(1, 2, 3), keepdims=True)
        return jnp.stack([jnp.broadcast_to(low, x.shape), jnp.broadcast_to(high, x.shape)])
    if isinstance(baselines, (list, tuple)):
        if not baselines:
            raise InputError("`baselines` must hold at least one baseline")
        return jnp.stack([_paths.broadcast_baselines(b, x) for b in baselines])
    return _paths.broadcast_baselines(baselines, x)[None]


def _label_counts(labels: np.ndarray) -> tuple[int, ...]:
    most = labels.max(axis=(0, 2, 3)) + 1  # per scale, over the batch
    return tuple(int(-(-c // LABEL_BUCKET) * LABEL_BUCKET) for c in most)


def xrai(model, x, target, *, baselines=None, n_steps: int = 100, attributions=None, segments=None,
         area_threshold: float = 1.0, min_pixel_diff: int = 50, dilation_radius: int = DILATION_RADIUS,
         internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE):
    """XRAI: each pixel's value is the attribution density of the region that covered it
    when regions were added greedily by density (PAIR's ``XRAI.GetMask``, algorithm
    ``"full"``).

    The attribution is PAIR's integrated gradients of the target's logit (``n_steps``
    points α = 0 … 1 inclusive, each weighted 1/n), averaged over the baselines, then its
    maximum over the colour channels.  The regions are the dilated Felzenszwalb segments
    of :func:`segment_labels` (or ``segments``).  Every image's IG steps and baselines go
    through the network in one compiled loop, ``internal_batch_size`` images per
    evaluation; the ranking compares all regions at once in a compiled loop per image.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      baselines: ``None`` (PAIR's two: each image's minimum value everywhere, and its
        maximum), or a list of baselines (each a scalar or an array of shape (H, W, 3),
        (1, H, W, 3) or (N, H, W, 3)), or one such baseline.
      n_steps: IG points per baseline (PAIR's ``XRAIParameters.steps``, default 100).
      attributions: (N, H, W, 3) or (N, H, W) attributions to rank instead of IG (PAIR's
        ``base_attribution``); ``baselines``, ``n_steps`` then unused.
      segments: (N, M, H, W) boolean regions to rank instead of the Felzenszwalb ones
        (PAIR's ``segments``: used as given, not dilated; all-False regions allowed).
      area_threshold: the ranking stops once more than this fraction of the image is
        covered (default 1: every region that adds pixels).
      min_pixel_diff: regions adding fewer new pixels are dropped (PAIR's default 50).
      dilation_radius: the Felzenszwalb segments' dilation (PAIR's 5; 0: none).
      internal_batch_size: images per gradient evaluation (steps × baselines × images);
        ``None``: every step at once.

    Returns:
      (N, H, W) XRAI maps.

    References:
      Kapishnikov, Bolukbasi, Viégas, Terry. XRAI: Better Attributions Through Regions
      (ICCV 2019).
    """
    x, target = scoring.prepare(model, x, target)
    min_pixel_diff = _checks.check_positive_int(min_pixel_diff, "min_pixel_diff")
    dilation_radius = _checks.check_positive_int(dilation_radius, "dilation_radius", minimum=0)
    area_threshold = _checks.check_fraction(area_threshold, "area_threshold")
    n, h, w = x.shape[:3]
    if attributions is None:
        n_steps = _checks.check_positive_int(n_steps, "n_steps")
        stacked = _baseline_stack(baselines, x)
        chunk = min(n_steps, _paths.steps_per_chunk(internal_batch_size, stacked.shape[0] * n, n_steps))
        attributions = _ig_attributions(model, x, target, stacked.astype(x.dtype), n_steps, chunk)
    else:
        attributions = jnp.asarray(attributions, x.dtype)
        if attributions.shape not in ((n, h, w, 3), (n, h, w)):
            raise InputError(f"`attributions` must have shape {(n, h, w, 3)} or {(n, h, w)}, got "
                             f"{attributions.shape}")
    if attributions.ndim == 4:
        attributions = attributions.max(axis=-1)
    threshold = jnp.asarray(area_threshold, x.dtype)
    if segments is not None:
        segments = np.asarray(segments)
        if segments.dtype != bool or segments.ndim != 4 or segments.shape[0] != n or segments.shape[2:] != (h, w):
            raise InputError(f"`segments` must be boolean of shape (N, M, H, W) = ({n}, M, {h}, {w}), got "
                             f"{segments.dtype} {segments.shape}")
        return _rank_from_masks(attributions, segments, threshold, min_pixel_diff)
    labels = segment_labels(np.asarray(x))  # the host segments while the IG program runs
    return _rank_from_labels(attributions, labels, _label_counts(labels), dilation_radius, threshold, min_pixel_diff)
