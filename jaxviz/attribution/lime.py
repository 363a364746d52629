"""Lime (Captum ``Lime``): a sparse linear model of the target score over random feature
coalitions, weighted by their similarity to the image, fitted by coordinate descent."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths, _perturbations
from jaxviz.errors import InputError

DEFAULT_PERTURBATIONS_PER_EVAL = 16


def sample_coalitions(key, n_samples: int, features_per_image) -> jax.Array:
    """(n_samples, N, F) 0/1 coalitions: each of image n's Mₙ features in with chance ½
    (Captum's ``default_perturb_func``); F is the largest count, the rest 0."""
    counts = np.asarray(features_per_image)
    present = jnp.asarray(np.arange(counts.max())[None, :] < counts[:, None])
    draws = jax.random.bernoulli(key, 0.5, (n_samples,) + present.shape)
    return (draws & present[None]).astype(jnp.int32)


def lasso(z, y, weights, alpha, max_sweeps: int, tol: float):
    """sklearn's ``Lasso(alpha)`` with sample weights and an intercept, by cyclic
    coordinate descent: min (1/2Σw) Σ w (y − b − z·β)² + α‖β‖₁.  Sweeps stop when no
    coefficient moves by more than ``tol`` times the largest, or after ``max_sweeps``.
    Returns β."""
    n = z.shape[0]
    weights = weights * (n / weights.sum())  # sklearn rescales the weights to sum to n
    root = jnp.sqrt(weights)
    a = (z - jnp.average(z, axis=0, weights=weights)[None]) * root[:, None]
    r0 = (y - jnp.average(y, weights=weights)) * root
    norms = (a * a).sum(axis=0)
    threshold = n * alpha

    def sweep(state):
        beta, residual, _, count = state

        def coordinate(j, carry):
            beta, residual, moved = carry
            rho = a[:, j] @ residual + norms[j] * beta[j]
            new = jnp.where(norms[j] > 0, jnp.sign(rho) * jnp.maximum(jnp.abs(rho) - threshold, 0)
                            / jnp.where(norms[j] > 0, norms[j], 1), 0.0)
            residual = residual - a[:, j] * (new - beta[j])
            return beta.at[j].set(new), residual, jnp.maximum(moved, jnp.abs(new - beta[j]))

        beta, residual, moved = jax.lax.fori_loop(0, z.shape[1], coordinate, (beta, residual, jnp.zeros((), y.dtype)))
        return beta, residual, moved, count + 1

    def going(state):
        beta, _, moved, count = state
        return (count < max_sweeps) & ((count == 0) | (moved > tol * jnp.maximum(jnp.abs(beta).max(), 1e-30)))

    start = (jnp.zeros(z.shape[1], y.dtype), r0, jnp.zeros((), y.dtype), 0)
    return jax.lax.while_loop(going, sweep, start)[0]


@functools.partial(jax.jit, static_argnames=("chunk", "max_sweeps", "tol"))
def _lime(model, x, target, baselines, mask, coalitions, alpha, kernel_width, chunk, max_sweeps, tol):
    n_samples, n, _ = coalitions.shape
    keeps = _perturbations.coalition_states(coalitions, mask)
    scores = _perturbations.mixture_scores(model, x, target, baselines, n_samples, keeps, chunk)  # (S, N)
    # each coalition's weight: exp(−d²/2w²), d the cosine distance of its input from the image
    flat_x, flat_b = x.reshape(n, -1), baselines.reshape(n, -1)

    def cosine(ids):  # (k,) ids → (k, N) cosine similarity of each state with its image
        state = jnp.where(keeps(ids).reshape(ids.shape[0], n, -1), flat_x[None], flat_b[None])
        dot = (state * flat_x[None]).sum(-1)
        return dot / jnp.maximum(jnp.linalg.norm(state, axis=-1) * jnp.linalg.norm(flat_x, axis=-1)[None], 1e-8)

    ids = _paths.split_chunks(jnp.arange(n_samples), chunk, fill=n_samples)
    similarity = jax.lax.map(cosine, ids).reshape(-1, n)[:n_samples]
    weights = jnp.exp(-((1 - similarity) ** 2) / (2 * kernel_width ** 2))
    z = jnp.swapaxes(coalitions, 0, 1).astype(x.dtype)
    coefficients = jax.vmap(lambda zi, yi, wi: lasso(zi, yi, wi, alpha, max_sweeps, tol))(z, scores.T, weights.T)
    return _perturbations.spread(coefficients.T, mask)


def lime(model, x, target, *, feature_mask=None, baselines=0.0, n_samples: int = 50, key=None, coalitions=None,
         alpha: float = 0.01, kernel_width: float = 1.0, perturbations_per_eval: int = DEFAULT_PERTURBATIONS_PER_EVAL,
         max_sweeps: int = 10000, tol: float | None = None):
    """Lime (Captum ``Lime`` with its defaults): each feature's coefficient in a Lasso
    model of the target score over ``n_samples`` random coalitions (each feature in with
    chance ½; the image where a coalition's features are, the baseline elsewhere), each
    weighted by exp(−d²/2·kernel_width²), d the cosine distance between the coalition's
    input and the image.

    Captum fits sklearn's ``Lasso(alpha=0.01)`` (coordinate descent to its tolerance 1e-4,
    on float32 data); jaxviz runs the same coordinate descent, for every image at once,
    until no coefficient moves by more than ``tol`` of the largest.  All coalitions of
    every image are evaluated inside one compiled program.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      feature_mask: integer feature ids, as for :func:`jaxviz.feature_ablation`.
      baselines: scalar or array as for :func:`jaxviz.integrated_gradients`.
      n_samples: coalitions per image.
      key: a ``jax.random`` key; required unless ``coalitions`` is given.
      coalitions: (n_samples, N, F) 0/1 coalitions (F the number of features).
      alpha: the Lasso penalty.
      kernel_width: the similarity kernel's width.
      perturbations_per_eval: coalitions per forward pass (memory bound).
      max_sweeps, tol: coordinate descent's limits; ``tol`` defaults to 1e-10 in float64
        and 1e-6 in float32 (a few units of rounding).

    Returns:
      (N, H, W, 3) attributions, constant over each feature.

    References:
      Ribeiro, Singh, Guestrin. "Why Should I Trust You?": Explaining the Predictions of
      Any Classifier (2016).
    """
    n_samples = _checks.check_positive_int(n_samples, "n_samples")
    x, target = scoring.prepare(model, x, target)
    mask, n_features, counts = _perturbations.check_feature_mask(feature_mask, x)
    most = _checks.check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    _checks.check_positive_int(max_sweeps, "max_sweeps")
    if tol is None:
        tol = 1e-10 if x.dtype == jnp.float64 else 1e-6
    if not alpha >= 0 or not kernel_width > 0 or not tol > 0:
        raise InputError(f"`alpha` must be >= 0, `kernel_width` and `tol` > 0, got {alpha}, {kernel_width}, {tol}")
    baselines = _paths.broadcast_baselines(baselines, x)
    coalitions = _perturbations.coalitions_for(coalitions, key, sample_coalitions, n_samples, x, n_features, counts)
    chunk = _paths.balanced_chunk(n_samples, most)
    return _lime(model, x, target, baselines, mask, coalitions, jnp.asarray(alpha, x.dtype),
                 jnp.asarray(kernel_width, x.dtype), chunk, int(max_sweeps), float(tol))
