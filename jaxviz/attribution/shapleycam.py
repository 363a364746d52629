"""ShapleyCAM (pytorch-grad-cam ``ShapleyCAM``): channel weights from the gradient and the
Hessian-vector product at the layer, the mean of G − ½ H·A."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxviz import _checks, _chunks, scoring
from jaxviz.attribution import _cam
from jaxviz.choices import SHAPLEYCAM_SCORES as SCORES


@dataclass(frozen=True)
class ReST:
    """``ClassifierOutputReST``: y_t − cross-entropy = y_t + log softmax(y)_t."""

    def __call__(self, logits, target):
        pick = functools.partial(jnp.take_along_axis, indices=target[:, None], axis=1)
        return (pick(logits) + pick(jax.nn.log_softmax(logits, axis=-1)))[:, 0]


def _weights(model, layer, score, x, target, activation):
    """(N, C) the spatial mean of G − ½ H·A: H·A from forward-mode over the gradient."""
    def gradient(delta):
        return jax.grad(lambda d: scoring.layer_scores(model, x, target, (layer,), (d,), score=score)[0])(delta)

    grads, hvp = jax.jvp(gradient, scoring.zero_deltas(model, x, (layer,)), (activation,))
    return (grads - 0.5 * hvp).mean(axis=(1, 2))


def _rule(model, x, target, layer, activation, grads, eigen_smooth, score):
    weights = _chunks.map_chunks(functools.partial(_weights, model, layer, score), x, target, activation)
    return _cam.channel_sum(weights[:, None, None, :] * activation, eigen_smooth)


def shapleycam(model, x, target, *, layer: str | Sequence[str] | None = None, score: str = "logit",
               eigen_smooth: bool = False, resolution: str = "layer", aug_smooth: bool = False):
    _checks.check_choice(score, "score", SCORES)
    return _cam.run(model, x, target, _rule, layer=layer, eigen_smooth=eigen_smooth, resolution=resolution,
                    aug_smooth=aug_smooth, gradients=False, rule_options=(ReST() if score == "rest" else None,))


shapleycam.__doc__ = """ShapleyCAM: Σ_k w_k A_k with w_k the spatial mean of (∂y/∂A − ½ (∂²y/∂A²)·A)_k, the
    second-order Taylor estimate of each channel's Shapley value.

    ``score="logit"`` differentiates the target's logit (the package's default target):
    where every nonlinearity after the layer is piecewise linear (ReLU, max-pool) its
    Hessian is 0 and the map is GradCAM's.  ``score="rest"`` differentiates y_t + log p_t
    (the paper's ReST, the package's ``ClassifierOutputReST``), whose softmax has a Hessian.
""" + _cam.ARGS + """      score: ``"logit"`` or ``"rest"``.

    References:
      Cai, Xu. CAMs as Shapley value-based explainers (The Visual Computer, 2025;
      arXiv:2501.06261).
    """
