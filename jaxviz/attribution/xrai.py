"""XRAI (PAIR ``saliency`` ``XRAI``): regions ranked by their density of integrated-gradients
attribution.  Each image is segmented by Felzenszwalb's algorithm at six scales (on the
host, by scikit-image, as PAIR does); the segments are dilated, and regions are added
greedily, each time the one whose not-yet-covered pixels have the highest mean
attribution.  The IG paths of every image and baseline run in one compiled program, the
dilation of every image's regions (32 masks to a word) in a second; the host groups the
pixels that lie in the same regions (atoms), and a third program ranks every image's
regions over its atoms."""

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
ATOM_BUCKET = 512  # and atom counts (:func:`atoms`) to this


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


def _shifted(a, offset: int, axis: int):
    """``a`` moved by ``offset`` along ``axis`` (out[i] = a[i + offset]), zeros entering."""
    n = a.shape[axis]
    widths = [(0, 0)] * a.ndim
    widths[axis] = (max(-offset, 0), max(offset, 0))
    return jax.lax.slice_in_dim(jnp.pad(a, widths), max(offset, 0), max(offset, 0) + n, axis=axis)


def dilate(masks, radius: int):
    """(..., H, W) masks dilated by the disk x² + y² ≤ radius² (scikit-image's
    ``dilation(mask, disk(radius))``): booleans, or unsigned integers each of whose bits is
    a mask.  For each row offset, the row's horizontal dilation by its half-width, shifted.
    Outside the image counts as empty (a reflected border, scikit-image's, gives the same
    for a symmetric convex footprint)."""
    rows = [masks]  # rows[k]: dilated by k pixels left and right
    for k in range(1, radius + 1):
        rows.append(rows[-1] | _shifted(masks, k, -1) | _shifted(masks, -k, -1))
    out = jnp.zeros_like(masks)
    for dy in range(-radius, radius + 1):
        out = out | _shifted(rows[math.isqrt(radius * radius - dy * dy)], dy, -2)
    return out


def packed_region_masks(labels, counts: tuple[int, ...], radius: int):
    """One image's (S, H, W) labels → its regions' dilated masks, 32 to a word:
    (⌈Σ counts / 32⌉, H, W) uint32, region r = bit r % 32 of word r // 32.  The regions
    go scale by scale, label by label (PAIR's ``_unpack_segs_to_masks`` order; absent
    labels give empty masks, which the ranking drops as PAIR drops them).  Each pixel
    holds one label per scale, so the words are built from the labels directly, and the
    dilation works on 32 masks per operation."""
    offsets = np.cumsum((0,) + counts[:-1])
    region = labels.astype(jnp.int32) + jnp.asarray(offsets, jnp.int32)[:, None, None]  # (S, H, W)
    bits = jnp.left_shift(jnp.uint32(1), (region % 32).astype(jnp.uint32))
    words = jnp.stack([jnp.where(region // 32 == w, bits, jnp.uint32(0)).sum(axis=0, dtype=jnp.uint32)
                       for w in range(-(-sum(counts) // 32))])  # one bit per scale: the sum is an OR
    return dilate(words, radius) if radius else words


def packed_masks(masks: np.ndarray) -> np.ndarray:
    """(N, M, H, W) boolean masks → (N, ⌈M/32⌉, H, W) uint32 in
    :func:`packed_region_masks`' layout (on the host)."""
    packed = np.packbits(masks, axis=1, bitorder="little")  # (N, ⌈M/8⌉, H, W): region r is bit r % 8 of byte r // 8
    packed = np.pad(packed, ((0, 0), (0, -packed.shape[1] % 4), (0, 0), (0, 0)))  # whole words
    return np.ascontiguousarray(packed.transpose(0, 2, 3, 1)).view("<u4").transpose(0, 3, 1, 2)


def atoms(packed: np.ndarray, n_regions: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels that every region holds or leaves together, found on the host: from
    (N, words, H, W) packed masks (:func:`packed_region_masks`' layout), each image's
    ``(regions_at_atoms, atom_of_pixel)``: (N, M, A) which regions hold each atom, and
    (N, H·W) each pixel's atom.  A (a few thousand for PAIR's 432 regions at 224×224)
    is rounded up to :data:`ATOM_BUCKET` over the batch; the padding atoms hold no pixel
    and lie in no region."""
    n, n_words = packed.shape[:2]
    signatures = np.ascontiguousarray(np.asarray(packed, np.uint32).reshape(n, n_words, -1).transpose(0, 2, 1))
    found = []
    for signature in signatures:  # (H·W, words)
        keys = signature.view(np.dtype((np.void, 4 * n_words))).ravel()
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        found.append((signature[first], inverse.reshape(-1)))
    width = -(-max(len(kinds) for kinds, _ in found) // ATOM_BUCKET) * ATOM_BUCKET
    region = np.arange(n_regions)
    regions_at_atoms = np.zeros((n, n_regions, width), bool)
    for i, (kinds, _) in enumerate(found):
        regions_at_atoms[i, :, : len(kinds)] = ((kinds[:, region // 32] >> (region % 32).astype(np.uint32)) & 1).T
    return regions_at_atoms, np.stack([inverse for _, inverse in found]).astype(np.int32)


def rank_regions(attribution, regions_at_atoms, atom_of_pixel, area_threshold, min_pixel_diff):
    """One image's XRAI map from its (H, W) attribution and its regions over atoms
    (:func:`atoms`; PAIR's ``XRAI._xrai``): while the covered fraction is at most
    ``area_threshold``, the regions adding fewer than ``min_pixel_diff`` new pixels are
    dropped and the one whose new pixels have the highest mean attribution (the first of
    equals) is added, its new pixels taking that mean; pixels left uncovered take their
    own mean.  An atom is covered whole or not at all, so each step sums over atoms (their
    pixel counts and attribution sums) rather than pixels."""
    dtype = attribution.dtype
    flat = attribution.reshape(-1)
    n_atoms = regions_at_atoms.shape[1]
    sizes = jax.ops.segment_sum(jnp.ones_like(flat), atom_of_pixel, n_atoms)
    totals = jax.ops.segment_sum(flat, atom_of_pixel, n_atoms)
    weights = regions_at_atoms.astype(dtype)

    def cond(state):
        covered, _, _, done = state
        return ~done & (jnp.where(covered, sizes, 0).sum() / flat.shape[0] <= area_threshold)

    def body(state):
        covered, alive, out, _ = state
        free = jnp.stack([jnp.where(covered, 0, sizes), jnp.where(covered, 0, totals)], axis=1)
        sums = weights @ free  # (M, 2): new pixels, their sum
        alive = alive & (sums[:, 0] >= min_pixel_diff)
        any_alive = alive.any()
        gain = jnp.where(alive, sums[:, 1] / jnp.where(alive, sums[:, 0], 1), -jnp.inf)
        best = jnp.argmax(gain)
        added = regions_at_atoms[best] & ~covered & any_alive
        return covered | added, alive.at[best].set(False), jnp.where(added, gain[best], out), ~any_alive

    start = (jnp.zeros(n_atoms, bool), jnp.ones(regions_at_atoms.shape[0], bool), jnp.full(n_atoms, -jnp.inf, dtype),
             jnp.asarray(False))
    _, _, out_of_atoms, _ = jax.lax.while_loop(cond, body, start)
    out = out_of_atoms[atom_of_pixel]
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


@functools.partial(jax.jit, static_argnames=("counts", "radius"))
def _packed_region_masks(labels, counts, radius):
    return jax.lax.map(lambda image_labels: packed_region_masks(image_labels, counts, radius), labels)


@functools.partial(jax.jit, static_argnames=("min_pixel_diff",))
def _rank(attributions, regions_at_atoms, atom_of_pixel, area_threshold, min_pixel_diff):
    return jax.lax.map(lambda args: rank_regions(*args, area_threshold, min_pixel_diff),
                       (attributions, regions_at_atoms, atom_of_pixel))


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
    evaluation; the ranking compares all regions at once in a compiled loop per image,
    over groups of pixels that lie in the same regions (:func:`atoms`).

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
        packed, n_regions = packed_masks(segments), segments.shape[1]
    else:
        labels = segment_labels(np.asarray(x))  # the host segments while the IG program runs
        counts = _label_counts(labels)
        packed, n_regions = np.asarray(_packed_region_masks(labels, counts, dilation_radius)), sum(counts)
    regions_at_atoms, atom_of_pixel = atoms(packed, n_regions)
    return _rank(attributions, regions_at_atoms, atom_of_pixel, threshold, min_pixel_diff)
