"""Saliency: the gradient of the target score with respect to the input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _deprecation, scoring


@functools.partial(jax.jit, static_argnames=("absolute",))
def _saliency(model, x, target, absolute: bool, repeats):
    grads = scoring.per_image(lambda v, t: scoring.input_gradients(model, v, t), repeats, x, target)
    return jnp.abs(grads) if absolute else grads


@_deprecation.renamed_keyword("abs", "absolute")
def saliency(model, x, target, *, absolute: bool = True):
    """Input gradients of each image's target score (Captum ``Saliency``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices (or one int for all).
      absolute: return ``|gradient|`` (Captum's ``abs=True``, its default).

    Returns:
      (N, H, W, 3) attributions.  The course's (N, H, W) map is
      :func:`jaxviz.saliency_map`, this map's maximum over channels.

    References:
      Simonyan, Vedaldi, Zisserman. Deep Inside Convolutional Networks (2014).

    Example:
      >>> attr = jaxviz.saliency(model, x, target=jnp.array([958, 85]))
    """
    x, target = scoring.prepare(model, x, target)
    return _saliency(model, x, target, bool(absolute), scoring.find_repeats(x, target))
