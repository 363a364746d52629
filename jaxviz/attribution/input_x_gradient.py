"""Input × gradient: each input value times the target score's gradient there."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import scoring


@jax.jit
def _input_x_gradient(model, x, target, repeats):
    return scoring.per_image(lambda v, t: scoring.input_gradients(model, v, t, then=jnp.multiply), repeats, x, target)


def input_x_gradient(model, x, target):
    """The input times the input gradient of each image's target score (Captum
    ``InputXGradient``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices (or one int for all).

    Returns:
      (N, H, W, 3) attributions.

    References:
      Shrikumar et al. Not Just a Black Box: Learning Important Features Through
      Propagating Activation Differences (2016).
    """
    x, target = scoring.prepare(model, x, target)
    return _input_x_gradient(model, x, target, scoring.find_repeats(x, target))
