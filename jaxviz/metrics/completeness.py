"""Completeness (Sundararajan et al.'s axiom): do the attributions add up to the change of
the score from a baseline to the image?"""

from __future__ import annotations


import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths
from jaxviz.metrics import _common

BASELINES = ("black",)


@jax.jit
def _completeness(model, x, target, a, baselines):
    scores = scoring.batch_target_logits(model, jnp.concatenate([x, baselines]), jnp.concatenate([target, target]))
    n = x.shape[0]
    return a.reshape(n, -1).sum(axis=1) - (scores[:n] - scores[n:])


def completeness(model, x, target, attributions, *, baselines="black"):
    """Σ attributions − (F(x) − F(baseline)) per image, F the target logit: 0 for a
    complete method (Integrated Gradients, DeepLift, LRP without biases, up to their
    approximations).

    Quantus ``Completeness`` returns whether this residual is exactly 0, after dividing the
    attributions by their maximum by default — a float comparison that rounding alone
    makes ``False``, on attributions whose scale the normalisation has changed; the
    residual itself is what it compares.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W), (N, H, W, 1) or (N, H, W, 3), the attributions of x against
        ``baselines``.
      baselines: ``"black"`` (Quantus' default: every element set to the image's own
        minimum), a scalar or an array broadcastable to x.

    Returns:
      (N,) residuals, in logits.

    References:
      Sundararajan, Taly, Yan. Axiomatic Attribution for Deep Networks (ICML 2017).
    """
    x, target = scoring.prepare(model, x, target)
    a = _common.check_attributions(attributions, x=x).astype(x.dtype)
    if isinstance(baselines, str):
        _checks.check_choice(baselines, "baselines", BASELINES)
        baselines = jnp.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)
    else:
        baselines = _paths.broadcast_baselines(baselines, x)
    return _completeness(model, x, target, a, baselines)
