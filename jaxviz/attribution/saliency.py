"""Saliency: the gradient of the target score with respect to the input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _deprecation, scoring


@functools.partial(jax.jit, static_argnames=("absolute", "channel_max"))
def _saliency(model, x, target, absolute: bool, repeats, channel_max: bool = False):
    def finished(_, grads):
        grads = jnp.abs(grads) if absolute else grads
        return jnp.max(grads, axis=-1) if channel_max else grads

    return scoring.per_image(lambda v, t: scoring.input_gradients(model, v, t, then=finished), repeats, x, target)


def checked_saliency(model, x, target, absolute: bool, *, channel_max: bool = False):
    """:func:`saliency` after its checks; ``channel_max``: reduced to the maximum over
    channels in the same program (the course's map: one dispatch, not two, which counts
    on a GPU)."""
    x, target = scoring.prepare(model, x, target)
    return _saliency(model, x, target, bool(absolute), scoring.find_repeats(x, target), channel_max)


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
    return checked_saliency(model, x, target, absolute)
