"""Feature ablation (Captum ``FeatureAblation``): the score drop when a group of input
elements — a superpixel, a patch, any integer feature mask — is set to a baseline."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths
from jaxviz.errors import InputError

DEFAULT_PERTURBATIONS_PER_EVAL = 16


def check_feature_mask(feature_mask, x) -> tuple[jax.Array, int]:
    """A feature mask as (N, H, W, C) int32 ids, and the number of features (max id + 1).

    ``None``: every element its own feature (Captum's default).  Otherwise integer ids ≥ 0
    of shape (H, W), (N, H, W) or (N, H, W, C) (N or C may be 1), shared by the channels
    unless C is given.
    """
    n, h, w, c = x.shape
    if feature_mask is None:
        return jnp.broadcast_to(jnp.arange(h * w * c, dtype=jnp.int32).reshape(1, h, w, c), x.shape), h * w * c
    mask = np.asarray(feature_mask)
    if not np.issubdtype(mask.dtype, np.integer):
        raise InputError(f"`feature_mask` must hold integer feature ids, got {mask.dtype}")
    shape = mask.shape
    if mask.ndim == 2:
        mask = mask[None, :, :, None]
    elif mask.ndim == 3:
        mask = mask[..., None]
    if mask.ndim != 4 or mask.shape[1:3] != (h, w) or mask.shape[0] not in (1, n) or mask.shape[3] not in (1, c):
        raise InputError(f"`feature_mask` must have shape (H, W), (N, H, W) or (N, H, W, C) with H, W = {h}, {w} "
                         f"(N may be 1 and C 1), got {shape}")
    if mask.size and mask.min() < 0:
        raise InputError("`feature_mask` ids must be >= 0")
    return jnp.broadcast_to(jnp.asarray(mask, jnp.int32), x.shape), int(mask.max()) + 1


def score_drops(model, x, target, baselines, mask, n_features: int, chunk: int):
    """(n_features, N): F(x) − F(x with feature k set to the baseline), ``chunk`` features
    (× N images) per evaluation inside one compiled ``lax.map``.  A feature an image lacks
    leaves it unchanged (its drop is 0 up to rounding)."""
    n = x.shape[0]
    base = scoring.batch_target_logits(model, x, target)

    def evaluate(ids):  # (k,) feature ids → (k, N) score drops
        k = ids.shape[0]
        ablate = (mask[None] == ids[:, None, None, None, None]).astype(x.dtype)
        ablated = x[None] * (1 - ablate) + baselines[None] * ablate  # Captum's form
        scores = scoring.batch_target_logits(model, ablated.reshape((k * n,) + x.shape[1:]), jnp.tile(target, k))
        return base[None] - scores.reshape(k, n)

    ids = _paths.split_chunks(jnp.arange(n_features), chunk, fill=n_features)
    return jax.lax.map(evaluate, ids).reshape(-1, n)[:n_features]


@functools.partial(jax.jit, static_argnames=("n_features", "chunk"))
def _feature_ablation(model, x, target, baselines, mask, n_features, chunk):
    drops = score_drops(model, x, target, baselines, mask, n_features, chunk)  # (F, N)
    return jnp.take_along_axis(drops.T, mask.reshape(x.shape[0], -1), axis=1).reshape(x.shape)


def feature_ablation(model, x, target, *, feature_mask=None, baselines=0.0,
                     perturbations_per_eval: int = DEFAULT_PERTURBATIONS_PER_EVAL):
    """Each element's attribution is F(x) − F(x with its feature set to the baseline)
    (Captum ``FeatureAblation``).

    Every feature of every image is ablated inside one compiled program,
    ``perturbations_per_eval`` features (× N images) per forward pass.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      feature_mask: integer feature ids: (H, W), (N, H, W) (shared by the channels) or
        (N, H, W, C); :func:`jaxviz.masks.segments` and :func:`jaxviz.masks.patches`
        make them.  ``None``: every element alone (H·W·3 forward passes per image).
      baselines: scalar or array as for :func:`jaxviz.integrated_gradients`.
      perturbations_per_eval: features per forward pass (memory bound).

    Returns:
      (N, H, W, 3) attributions, constant over each feature.

    References:
      Zeiler, Fergus. Visualizing and Understanding Convolutional Networks (2014).
    """
    x, target = scoring.prepare(model, x, target)
    mask, n_features = check_feature_mask(feature_mask, x)
    most = _checks.check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    baselines = _paths.broadcast_baselines(baselines, x)
    chunk = _paths.balanced_chunk(n_features, most)
    return _feature_ablation(model, x, target, baselines, mask, n_features, chunk)
