"""What the feature-perturbation methods share (feature ablation, Shapley value sampling,
and the sampling methods to come): feature masks, and the target scores of many
input/baseline mixtures of every image, streamed through the network in one compiled loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import scoring
from jaxviz._checks import is_concrete as _is_concrete
from jaxviz.attribution import _paths
from jaxviz.errors import InputError


def check_feature_mask(feature_mask, x) -> tuple[jax.Array, int, np.ndarray]:
    """A feature mask as (N, H, W, C) int32 ids, the number of features (max id + 1), and
    each image's (N,) (its own max id + 1).

    ``None``: every element its own feature (Captum's default).  Otherwise integer ids ≥ 0
    of shape (H, W), (N, H, W) or (N, H, W, C) (N or C may be 1), shared by the channels
    unless C is given.
    """
    n, h, w, c = x.shape
    if feature_mask is None:
        return (jnp.broadcast_to(jnp.arange(h * w * c, dtype=jnp.int32).reshape(1, h, w, c), x.shape), h * w * c,
                np.full(n, h * w * c))
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
    counts = np.broadcast_to(mask.reshape(mask.shape[0], -1).max(axis=1) + 1, (n,))
    return jnp.broadcast_to(jnp.asarray(mask, jnp.int32), x.shape), int(mask.max()) + 1, counts


def coalitions_for(coalitions, key, sample, n_samples: int, x, n_features: int, counts) -> jax.Array:
    """The (n_samples, N, F) 0/1 coalitions a sampling method uses: those given (checked),
    else ``sample(key, n_samples, counts)``."""
    if coalitions is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `coalitions` is given")
        coalitions = sample(key, n_samples, counts)
    coalitions = jnp.asarray(coalitions, jnp.int32)
    if coalitions.shape != (n_samples, x.shape[0], n_features):
        raise InputError(f"`coalitions` must have shape (n_samples, N, features) = "
                         f"{(n_samples, x.shape[0], n_features)}, got {tuple(coalitions.shape)}")
    if _is_concrete(coalitions) and not np.isin(np.asarray(coalitions), (0, 1)).all():
        raise InputError("`coalitions` must hold 0 and 1")
    return coalitions


def coalition_states(coalitions, mask):
    """``keeps_input`` for :func:`mixture_scores` of coalition states: state s of image n
    takes the image where its feature is in coalition (s, n)."""
    n_samples, n = coalitions.shape[:2]
    elements = mask.reshape(n, -1)

    def keeps_input(ids):
        rows = coalitions[jnp.minimum(ids, n_samples - 1)]  # (k, N, F)
        return jnp.take_along_axis(rows, elements[None], axis=2).reshape((ids.shape[0],) + mask.shape) > 0

    return keeps_input


def mixture_scores(model, x, target, baselines, n_states: int, keeps_input, chunk: int,
                   score=scoring.batch_target_logits):
    """(n_states, N) target scores of ``n_states`` mixtures of each image and its baseline
    (``score``: the target logits, or e.g. :func:`jaxviz.scoring.batch_target_probabilities`;
    ``baselines``: an (N, H, W, C) array, or a function of the state ids giving each state's,
    (k, N, H, W, C) or broadcastable to it).

    ``keeps_input(ids)`` gives, for a (k,) chunk of state ids, a (k, N, H, W, C) boolean:
    where the state takes the image (elsewhere the baseline).  ``chunk`` states (× N
    images) go through the network per evaluation, inside one compiled ``lax.map``;
    padded state ids (≥ n_states) are evaluated and dropped.
    """
    n = x.shape[0]

    def evaluate(ids):
        k = ids.shape[0]
        # where() is Captum's x·m + b·(1 − m) exactly, for a 0/1 m and finite values
        replacement = baselines(ids) if callable(baselines) else baselines[None]
        states = jnp.where(keeps_input(ids), x[None], replacement)
        return score(model, states.reshape((k * n,) + x.shape[1:]), jnp.tile(target, k)).reshape(k, n)

    ids = _paths.split_chunks(jnp.arange(n_states), chunk, fill=n_states)
    return jax.lax.map(evaluate, ids).reshape(-1, n)[:n_states]


def spread(values, mask):
    """(F, N) per-feature values → (N, H, W, C): each element gets its feature's value."""
    n = mask.shape[0]
    return jnp.take_along_axis(values.T, mask.reshape(n, -1), axis=1).reshape(mask.shape)
