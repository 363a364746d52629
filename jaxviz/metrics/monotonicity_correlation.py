"""Monotonicity correlation (Nguyen & Martínez; Quantus ``MonotonicityCorrelation``): do
elements with more attribution change the prediction more when they are perturbed?"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _perturbations
from jaxviz.errors import InputError
from jaxviz.metrics import _common, similarity as _similarity


@functools.partial(jax.jit, static_argnames=("step", "n_samples", "chunk", "absolute", "normalise"))
def _monotonicity_correlation(model, x, target, a, values, eps, step, n_samples, chunk, absolute, normalise):
    n = x.shape[0]
    a = _common.flat_maps(a, normalise=normalise, absolute=absolute)  # (N, F)
    n_groups = values.shape[0]
    # ascending order (Quantus' np.argsort(a)): group g holds places g·step … (g+1)·step − 1
    places = _common.relevance_ranks(-a)  # 0 = least relevant; equal values: the earlier element first
    group_of = (places // step).reshape((1,) + x.shape)
    probabilities = scoring.batch_target_probabilities(model, x, target)
    inverse = jnp.where(jnp.abs(probabilities) >= eps, 1 / jnp.abs(probabilities), 1.0) ** 2

    def keeps_input(ids):  # state g·S + s: group g set to its value of sample s
        return group_of != (ids // n_samples)[:, None, None, None, None]

    def replacement(ids):
        v = values[jnp.minimum(ids // n_samples, n_groups - 1), ids % n_samples]  # (k, N)
        return v[:, :, None, None, None]

    perturbed = _perturbations.mixture_scores(model, x, target, replacement, n_groups * n_samples, keeps_input,
                                              chunk, score=scoring.batch_target_probabilities)
    variances = ((perturbed.reshape(n_groups, n_samples, n) - probabilities[None, None]) ** 2).mean(axis=1).T
    variances = variances * inverse[:, None]
    sums = jax.vmap(lambda row, g: jax.ops.segment_sum(row, g, num_segments=n_groups))(
        a, (places // step).reshape(n, -1))
    return _similarity.spearman(sums, variances)


def monotonicity_correlation(model, x, target, attributions, *, key=None, values=None, features_in_step: int = 224 * 3,
                             n_samples: int = 100, eps: float = 1e-5, absolute: bool = True, normalise: bool = True,
                             states_per_eval: int | None = None):
    """The Spearman correlation, over groups of elements taken in the order of their
    attribution, between the group's attribution and how much setting it to a random value
    moves the target's probability: E[(p(x̃) − p(x))²] / p(x)² (Quantus
    ``MonotonicityCorrelation``: its ``"uniform"`` baseline, a U(0, 1) value per image and
    sample, magnitudes of the normalised attributions, softmax).  Higher is better.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W, 3), or (N, H, W) / (N, H, W, 1) shared by the channels.
      key: a jax.random key for the values (required unless ``values``).
      values: (groups, n_samples, N) the replacement values themselves.
      features_in_step: elements per group (Quantus' default is 1, a group per element:
        150 528 × 100 forward passes per 224 image; the default here is 672).
      n_samples: random values per group (Quantus' ``nr_samples``).
      eps: below it the probability is not divided by.
      absolute, normalise: Quantus' ``abs`` and ``normalise`` (each map by its own
        maximum).
      states_per_eval: copies of the batch per forward pass (memory bound).

    Returns:
      (N,) correlations.

    References:
      Nguyen, Martínez. On Quantitative Aspects of Model Interpretability (2020).
    """
    x, target = scoring.prepare(model, x, target)
    a = jnp.broadcast_to(_common.check_attributions(attributions, x=x), x.shape).astype(x.dtype)
    step = _checks.check_positive_int(features_in_step, "features_in_step")
    n_samples = _checks.check_positive_int(n_samples, "n_samples")
    n_groups = -(-int(np.prod(x.shape[1:])) // step)
    if n_groups < 2:
        raise InputError(f"`features_in_step` {step} leaves fewer than 2 groups to correlate")
    shape = (n_groups, n_samples, x.shape[0])
    if values is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `values` is given")
        values = jax.random.uniform(key, shape, x.dtype)
    values = jnp.asarray(values, x.dtype)
    if values.shape != shape:
        raise InputError(f"`values` must have shape (groups, n_samples, N) = {shape}, got {tuple(values.shape)}")
    chunk = _common.states_per_eval(states_per_eval, n_groups * n_samples, x)
    return _monotonicity_correlation(model, x, target, a, values, float(eps), step, n_samples, chunk,
                                     bool(absolute), bool(normalise))
