"""Saliency: the gradient of the target score with respect to the input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz.attribution import _common


@functools.partial(jax.jit, static_argnames=("absolute",))
def _saliency(model, x, target, absolute: bool):
    grads = _common.input_gradients(model, x, target)
    return jnp.abs(grads) if absolute else grads


def saliency(model, x, target, *, abs: bool = True):  # noqa: A002 - Captum's name
    """Input gradients of each image's target score (Captum ``Saliency``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices (or one int for all).
      abs: return ``|gradient|`` (Captum's default).

    Returns:
      (N, H, W, 3) attributions.

    References:
      Simonyan, Vedaldi, Zisserman. Deep Inside Convolutional Networks (2014).

    Example:
      >>> attr = jaxviz.saliency(model, x, target=jnp.array([958, 85]))
    """
    x, target = _common.prepare(model, x, target)
    return _saliency(model, x, target, bool(abs))


@jax.jit
def _saliency_map(model, x, target):
    return jnp.max(jnp.abs(_common.input_gradients(model, x, target)), axis=-1)


def saliency_map(model, x, target):
    """The course's saliency map: max over channels of |∇ₓ target score|, (N, H, W)."""
    x, target = _common.prepare(model, x, target)
    return _saliency_map(model, x, target)
