"""Drop in confidence (Chattopadhay et al.; pytorch-grad-cam ``DropInConfidence``)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxviz.metrics import _confidence


def drop_in_confidence(model, x, target, maps, *, score: str = "probability"):
    """max(0, score(x) − score(x · map)) per image: how much of the target's confidence is
    lost when only what the map shows is kept (pytorch-grad-cam ``DropInConfidence``).
    Lower is better.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      maps: (N, H, W) or (N, H, W, 1), usually in [0, 1] at the input's size (e.g. a CAM
        with ``resolution="input"``); each image is multiplied by its map.
      score: ``"probability"`` (the softmax, pytorch-grad-cam's
        ``ClassifierOutputSoftmaxTarget``) or ``"logit"`` (``ClassifierOutputTarget``).

    Returns:
      (N,) drops (pytorch-grad-cam reports them ×100, as percentages, in its tutorials).

    References:
      Chattopadhay, Sarkar, Howlader, Balasubramanian. Grad-CAM++: Improved Visual
      Explanations for Deep Convolutional Networks (WACV 2018).
    """
    return jnp.maximum(-_confidence.confidence_change(model, x, target, maps, score=score), 0)
