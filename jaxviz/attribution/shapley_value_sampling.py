"""Shapley value sampling (Captum ``ShapleyValueSampling``): each feature's mean marginal
contribution over random orders in which the features are added to the baseline."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths, _perturbations
from jaxviz.errors import InputError

DEFAULT_PERTURBATIONS_PER_EVAL = 16


@functools.partial(jax.jit, static_argnames=("chunk",))
def _shapley_value_sampling(model, x, target, baselines, mask, permutations, chunk):
    n = x.shape[0]
    if permutations.ndim == 2:  # one order per sample for the whole batch, as Captum
        permutations = jnp.broadcast_to(permutations[:, None], (permutations.shape[0], n, permutations.shape[1]))
    n_samples, _, n_features = permutations.shape
    rank = jnp.argsort(permutations, axis=2)  # rank[s, n, f]: the step at which image n's order s adds f
    elements = mask.reshape(n, -1)

    def keeps_input(ids):  # state (s, i) of id s·F + i holds the features order s adds in steps 0 … i
        order, step = jnp.minimum(ids // n_features, n_samples - 1), ids % n_features
        ranks = jnp.take_along_axis(rank[order], elements[None], axis=2)  # (k, N, H·W·C)
        return ranks.reshape((ids.shape[0],) + x.shape) <= step[:, None, None, None, None]

    # The states are independent: all S·F of them are evaluated in one loop, and the
    # marginal contributions are differences of consecutive states (Captum adds the
    # features one evaluation after another).
    scores = _perturbations.mixture_scores(model, x, target, baselines, n_samples * n_features, keeps_input,
                                           chunk).reshape(n_samples, n_features, n)
    start = jnp.broadcast_to(scoring.batch_target_logits(model, baselines, target), (n_samples, 1, n))
    gains = scores - jnp.concatenate([start, scores[:, :-1]], axis=1)  # gains[s, i, n]: order s's i-th feature
    per_feature = jnp.take_along_axis(gains, jnp.swapaxes(rank, 1, 2), axis=1)  # (S, F, N)
    return _perturbations.spread(per_feature.mean(axis=0), mask)


def sample_orders(key, n_samples: int, n_features: int):
    """(n_samples, n_features): independent uniformly random orders of the features."""
    return jax.vmap(lambda k: jax.random.permutation(k, n_features))(jax.random.split(key, n_samples))


def shapley_value_sampling(model, x, target, *, feature_mask=None, baselines=0.0, n_samples: int = 25, key=None,
                           permutations=None, perturbations_per_eval: int = DEFAULT_PERTURBATIONS_PER_EVAL):
    """Each feature's contribution F(S ∪ {f}) − F(S), averaged over ``n_samples`` random
    orders of the features, S the features added before f (Captum
    ``ShapleyValueSampling``).  Features not in S are at the baseline.

    An order drawn from ``key`` is shared by the images of the batch, as in Captum.  All n_samples × F
    states of every image are evaluated inside one compiled program,
    ``perturbations_per_eval`` states (× N images) per forward pass.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      feature_mask: integer feature ids, as for :func:`jaxviz.feature_ablation`.
      baselines: scalar or array as for :func:`jaxviz.integrated_gradients`.
      n_samples: random orders.
      key: a ``jax.random`` key for the orders; required unless ``permutations`` is given.
      permutations: (n_samples, F) orders, each row a permutation of 0 … F−1, shared by
        the images; or (n_samples, N, F), an order per image.
      perturbations_per_eval: states per forward pass (memory bound).

    Returns:
      (N, H, W, 3) attributions, constant over each feature.

    References:
      Castro, Gómez, Tejada. Polynomial calculation of the Shapley value based on
      sampling (2009).  Štrumbelj, Kononenko. Explaining prediction models and individual
      predictions with feature contributions (2014).
    """
    _checks.check_positive_int(n_samples, "n_samples")
    x, target = scoring.prepare(model, x, target)
    mask, n_features, _ = _perturbations.check_feature_mask(feature_mask, x)
    most = _checks.check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    baselines = _paths.broadcast_baselines(baselines, x)
    if permutations is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `permutations` is given")
        permutations = sample_orders(key, n_samples, n_features)
    permutations = jnp.asarray(permutations, jnp.int32)
    if permutations.shape not in ((n_samples, n_features), (n_samples, x.shape[0], n_features)):
        raise InputError(f"`permutations` must have shape (n_samples, features) = {(n_samples, n_features)} or "
                         f"(n_samples, N, features), got {tuple(permutations.shape)}")
    if _checks.is_concrete(permutations) and not (np.sort(np.asarray(permutations), axis=-1)
                                                  == np.arange(n_features)).all():
        raise InputError(f"each row of `permutations` must be a permutation of 0 … {n_features - 1}")
    chunk = _paths.balanced_chunk(n_samples * n_features, most)
    return _shapley_value_sampling(model, x, target, baselines, mask, permutations, chunk)
