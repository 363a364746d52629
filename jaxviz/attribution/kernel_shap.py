"""KernelShap (Captum ``KernelShap``): a weighted linear model of the target score over
binary feature coalitions drawn from the Shapley kernel, fitted in closed form."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths, _perturbations
from jaxviz.errors import InputError

DEFAULT_PERTURBATIONS_PER_EVAL = 16
# Captum's weight of the all-features and no-features coalitions (the kernel's infinite ones)
INF_WEIGHT = 1e6


def sample_coalitions(key, n_samples: int, features_per_image) -> jax.Array:
    """(n_samples, N, F) 0/1 coalitions, F the largest count: for image n with Mₙ features,
    row 0 all Mₙ, row 1 none, then k ~ p(k) ∝ (Mₙ − 1)/(k(Mₙ − k)) on 1 … Mₙ−1 and a
    uniformly random k-subset (Captum's ``kernel_shap_perturb_generator``)."""
    counts = np.asarray(features_per_image)
    width = int(counts.max())
    k = np.arange(width)
    present = jnp.asarray(k[None, :] < counts[:, None])  # (N, F)
    possible = (k[None] >= 1) & (k[None] < counts[:, None])  # sizes 1 … Mₙ−1
    kernel = (counts[:, None] - 1) / np.where(possible, k[None] * (counts[:, None] - k[None]), 1)
    logits = jnp.asarray(np.where(possible, np.log(np.where(possible, kernel, 1)), -np.inf))
    size_key, order_key = jax.random.split(key)
    sizes = jax.random.categorical(size_key, logits, shape=(max(n_samples - 2, 0), len(counts)))  # (S−2, N)
    priorities = jnp.where(present[None], jax.random.normal(order_key, (max(n_samples - 2, 0), len(counts), width)),
                           -jnp.inf)
    ranks = jnp.argsort(jnp.argsort(-priorities, axis=-1), axis=-1)  # 0 for the largest priority
    random_rows = (ranks < sizes[..., None]) & present[None]
    rows = jnp.concatenate([present[None], jnp.zeros_like(present)[None], random_rows])[:n_samples]
    return rows.astype(jnp.int32)


def _weighted_least_squares(coalitions, scores, weights):
    """Coefficients of min Σ w (y − b − z·β)² (sklearn ``LinearRegression`` with weights:
    weighted centring, √w scaling, the minimum-norm least-squares solution)."""
    mean_z = jnp.average(coalitions, axis=0, weights=weights)
    mean_y = jnp.average(scores, weights=weights)
    root = jnp.sqrt(weights)
    solution, *_ = jnp.linalg.lstsq((coalitions - mean_z[None]) * root[:, None], (scores - mean_y) * root)
    return solution


@functools.partial(jax.jit, static_argnames=("chunk",))
def _kernel_shap(model, x, target, baselines, mask, coalitions, counts, chunk):
    n_samples = coalitions.shape[0]
    keeps_input = _perturbations.coalition_states(coalitions, mask)
    scores = _perturbations.mixture_scores(model, x, target, baselines, n_samples, keeps_input, chunk)  # (S, N)
    selected = coalitions.sum(axis=2)  # (S, N)
    weights = jnp.where((selected == 0) | (selected == counts[None]), INF_WEIGHT, 1.0).astype(x.dtype)
    z = jnp.swapaxes(coalitions, 0, 1).astype(x.dtype)  # (N, S, F)
    coefficients = jax.vmap(_weighted_least_squares)(z, scores.T, weights.T)  # (N, F)
    return _perturbations.spread(coefficients.T, mask)


def kernel_shap(model, x, target, *, feature_mask=None, baselines=0.0, n_samples: int = 25, key=None,
                coalitions=None, perturbations_per_eval: int = DEFAULT_PERTURBATIONS_PER_EVAL):
    """KernelShap (Captum ``KernelShap``): each feature's coefficient in a linear model of
    the target score over ``n_samples`` feature coalitions (the image where a coalition's
    features are, the baseline elsewhere), weighted by the Shapley kernel.

    As Captum: the coalitions are drawn from the kernel (the all and none coalitions
    first, weighted 1e6, then the others with weight 1) and the model is sklearn's
    ``LinearRegression`` with an intercept, here solved in closed form (weighted centring
    and the minimum-norm least-squares solution) for every image at once.  All coalitions
    of every image are evaluated inside one compiled program.  Each image draws over its
    own features (Captum draws the sizes over the batch's largest count).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      feature_mask: integer feature ids, as for :func:`jaxviz.feature_ablation`; each image
        needs at least two features.
      baselines: scalar or array as for :func:`jaxviz.integrated_gradients`.
      n_samples: coalitions per image (the two fixed ones included).
      key: a ``jax.random`` key; required unless ``coalitions`` is given.
      coalitions: (n_samples, N, F) 0/1 coalitions (F the number of features).
      perturbations_per_eval: coalitions per forward pass (memory bound).

    Returns:
      (N, H, W, 3) attributions, constant over each feature.

    References:
      Lundberg, Lee. A Unified Approach to Interpreting Model Predictions (2017).
    """
    n_samples = _checks.check_positive_int(n_samples, "n_samples", minimum=2)
    x, target = scoring.prepare(model, x, target)
    mask, n_features, counts = _perturbations.check_feature_mask(feature_mask, x)
    most = _checks.check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    baselines = _paths.broadcast_baselines(baselines, x)
    if counts.min() < 2:
        raise InputError("every image needs at least two features in `feature_mask`")
    coalitions = _perturbations.coalitions_for(coalitions, key, sample_coalitions, n_samples, x, n_features, counts)
    chunk = _paths.balanced_chunk(n_samples, most)
    return _kernel_shap(model, x, target, baselines, mask, coalitions, jnp.asarray(counts, jnp.int32), chunk)
