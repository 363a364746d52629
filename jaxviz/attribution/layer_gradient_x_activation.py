"""A layer's activation times the target score's gradient there (Captum ``LayerGradientXActivation``)."""

from __future__ import annotations

import functools

import jax

from jaxviz import scoring


@functools.partial(jax.jit, static_argnames=("layer", "multiply_by_inputs"))
def _layer_gradient_x_activation(model, x, target, layer, multiply_by_inputs):
    activation, gradient = scoring.layer_gradients_and_eval(model, x, target, layer)
    return activation * gradient if multiply_by_inputs else gradient


def layer_gradient_x_activation(model, x, target, *, layer: str | None = None, multiply_by_inputs: bool = True):
    """Each unit of ``layer``: its output times the gradient of the target score with respect
    to it (Captum ``LayerGradientXActivation``), from one forward and one backward pass.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      multiply_by_inputs: ``False`` returns the layer gradient alone.

    Returns:
      layer-shaped (N, h, w, c) attributions.

    References:
      Shrikumar et al. Not Just a Black Box: Learning Important Features Through
      Propagating Activation Differences (2016); Kokhlikyan et al. Captum: A Unified
      and Generic Model Interpretability Library for PyTorch (2020).
    """
    layer = model.architecture.default_layer if layer is None else layer
    x, target = scoring.prepare(model, x, target, layers=(layer,))
    return _layer_gradient_x_activation(model, x, target, layer, bool(multiply_by_inputs))
