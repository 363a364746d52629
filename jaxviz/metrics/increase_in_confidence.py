"""Increase in confidence (Chattopadhay et al.; pytorch-grad-cam ``IncreaseInConfidence``)."""

from __future__ import annotations

from jaxviz.metrics import _confidence


def increase_in_confidence(model, x, target, maps, *, score: str = "probability"):
    """1 where the target's score on ``x · map`` exceeds its score on x, else 0
    (pytorch-grad-cam ``IncreaseInConfidence``); its mean over images is the fraction whose
    confidence the map raises.  Higher is better.

    Args:
      model, x, target, maps, score: as for :func:`jaxviz.metrics.drop_in_confidence`.

    Returns:
      (N,) 0/1 values in x's dtype.

    References:
      Chattopadhay, Sarkar, Howlader, Balasubramanian. Grad-CAM++: Improved Visual
      Explanations for Deep Convolutional Networks (WACV 2018).
    """
    change = _confidence.confidence_change(model, x, target, maps, score=score)
    return (change > 0).astype(change.dtype)
