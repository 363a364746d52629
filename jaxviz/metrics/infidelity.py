"""Infidelity (Yeh et al., Captum ``infidelity``): how well the attributions predict the
score change under random perturbations."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.metrics import _common

DEFAULT_NOISE_SCALE = 0.003  # Captum's documented example perturbation


@functools.partial(jax.jit, static_argnames=("noise_scale", "n_samples", "chunk", "normalize"))
def _infidelity(model, x, target, a, key, perturbations, noise_scale, n_samples, chunk, normalize):
    n = x.shape[0]
    scores = scoring.batch_target_logits(model, x, target)
    draw = lambda k, v: noise_scale * jax.random.normal(k, v.shape, v.dtype)  # noqa: E731
    perturbation = _common.perturbations_for(perturbations, key, draw, n_samples, x)

    def evaluate(ids):  # (k,) sample ids → the (k, N) terms summed over the samples
        k = ids.shape[0]
        noise = perturbation(ids)
        perturbed = (x[None] - noise).reshape((k * n,) + x.shape[1:])
        drops = scores[None] - scoring.batch_target_logits(model, perturbed, jnp.tile(target, k)).reshape(k, n)
        predicted = (a[None] * noise).reshape(k, n, -1).sum(axis=2)
        terms = ((predicted * predicted, predicted * drops, drops * drops) if normalize
                 else ((predicted - drops) ** 2,))
        return tuple(jnp.where((ids < n_samples)[:, None], t, 0.0) for t in terms)

    sums = tuple(t.sum(axis=(0, 1)) for t in jax.lax.map(evaluate, _common.sample_ids(n_samples, chunk)))
    if not normalize:
        return sums[0] / n_samples
    pp, pd, dd = sums  # the scale β that minimises the infidelity (Captum's safe_div: 0/0 → β = 0)
    beta = jnp.where(pp != 0, pd / jnp.where(pp != 0, pp, 1), 0.0)
    return (beta * beta * pp - 2 * beta * pd + dd) / n_samples


def infidelity(model, x, target, attributions, *, key=None, perturbations=None, n_perturb_samples: int = 10,
               noise_scale: float = DEFAULT_NOISE_SCALE, normalize: bool = False,
               samples_per_eval: int | None = None):
    """E_I[(Σ I·a − (F(x) − F(x − I)))²] per image, F the target logit (Captum
    ``infidelity``).  Lower is better.

    All samples of all images are scored inside one compiled program,
    ``samples_per_eval`` copies of the batch per forward pass; each sample's perturbation
    is drawn there from ``jax.random.fold_in(key, sample)`` (JAX's
    ``threefry_partitionable(False)`` draws, faster on a CPU).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W, 3), or (N, H, W) / (N, H, W, 1) shared by the channels.
      key: a jax.random key for the perturbations (required unless ``perturbations``).
      perturbations: (n_perturb_samples, N, H, W, 3) the perturbations I themselves (the
        perturbed inputs are x − I), instead of drawing them.
      n_perturb_samples: perturbations per image.
      noise_scale: standard deviation of the Gaussian perturbations drawn (Captum has no
        default perturbation; 0.003 is its documentation's).
      normalize: scale the attributions by the β that minimises the result first
        (Captum's ``normalize=True``).
      samples_per_eval: copies of the batch per forward pass (memory bound).

    Returns:
      (N,) infidelities.

    References:
      Yeh, Hsieh, Suggala, Inouye, Ravikumar. On the (In)fidelity and Sensitivity of
      Explanations (NeurIPS 2019).
    """
    x, target = scoring.prepare(model, x, target)
    a = _common.check_attributions(attributions, x=x).astype(x.dtype)
    n_samples = _checks.check_positive_int(n_perturb_samples, "n_perturb_samples")
    chunk = _common.states_per_eval(samples_per_eval, n_samples, x, name="samples_per_eval")
    if not float(noise_scale) > 0:
        raise _checks.InputError(f"`noise_scale` must be > 0, got {noise_scale}")
    perturbations = _common.checked_perturbations(perturbations, n_samples, x)
    return _infidelity(model, x, target, a, key, perturbations, float(noise_scale), n_samples, chunk,
                       bool(normalize))
