"""Pixel flipping (Bach et al.; Quantus ``PixelFlipping``): the class probability as the
most relevant input elements are set to the image's darkest value, a few at a time."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.metrics import _causal, _common

DEFAULT_FEATURES_IN_STEP = 224 * 3


@jax.jit
def _with_auc(curves):
    # Quantus' calculate_auc: the trapezoid rule with unit spacing
    return _causal.CausalCurve(jnp.trapezoid(curves, dx=1.0, axis=1), curves)


def pixel_flipping(model, x, target, attributions, *, features_in_step: int = DEFAULT_FEATURES_IN_STEP,
                   states_per_eval: int | None = None) -> _causal.CausalCurve:
    """The target's probability after each step of setting the most relevant remaining
    input elements to the image's smallest value (Quantus ``PixelFlipping`` with its
    ``"black"`` baseline, softmax and order of signed attributions).  Lower is better.

    Every step of every image goes through the network inside one compiled program.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W, 3) one value per element, or (N, H, W) / (N, H, W, 1) shared
        by a pixel's channels (as Quantus broadcasts it).  Equal values: the later element
        (NHWC order) first; Quantus' order of equal values is numpy's unstable argsort's,
        which is the same set per step when a pixel's channels share its value and the
        step is a multiple of 3.
      features_in_step: elements set per step (Quantus' default is 1: 150 528 forward
        passes per 224×224 image; the default here, 672, is 224 steps).
      states_per_eval: copies of the batch per forward pass (memory bound).

    Returns:
      :class:`jaxviz.metrics.CausalCurve`: ``probabilities`` (N, ⌈H·W·3/step⌉) after each
      step (the unchanged image not included, as in Quantus) and ``auc`` (N,) their
      trapezoid sum with unit spacing (Quantus' ``return_auc_per_sample``).

    References:
      Bach, Binder, Montavon, Klauschen, Müller, Samek. On Pixel-Wise Explanations for
      Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation (PLoS ONE 2015).
    """
    x, target = scoring.prepare(model, x, target)
    maps = jnp.broadcast_to(_common.check_attributions(attributions, x=x), x.shape).astype(x.dtype)
    step = _checks.check_positive_int(features_in_step, "features_in_step")
    black = jnp.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)
    n_states = -(-maps[0].size // step)
    chunk = _common.states_per_eval(states_per_eval, n_states, x)
    return _with_auc(_causal.moving_curves(model, x, target, maps, black, step, False, 1, chunk))
