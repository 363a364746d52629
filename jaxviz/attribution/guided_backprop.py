"""Guided backpropagation through the model's guided-ReLU switch (no hooks, no patching)."""

from __future__ import annotations

import jax

from jaxviz import scoring


@jax.jit
def _guided_backprop(model, x, target):
    return scoring.input_gradients(model, x, target, guided=True)


def guided_backprop(model, x, target):
    """Input gradients with every ReLU's backward replaced by ``1[x>0]·max(g, 0)``.

    Captum ``GuidedBackprop`` equivalent.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Springenberg et al. Striving for Simplicity: The All Convolutional Net (2015).
    """
    x, target = scoring.prepare(model, x, target)
    return _guided_backprop(model, x, target)
