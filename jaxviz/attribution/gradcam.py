"""GradCAM at any layer (Captum's and the course's), and Guided GradCAM."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks
from jaxviz.attribution import _common
from jaxviz.models import squeezenet


def _cam(model, x, target, layer):
    return _weighted_sum(*_common.layer_gradients_and_eval(model, x, target, layer))


def _weighted_sum(activation, grads):
    alpha = jnp.mean(grads, axis=(1, 2), keepdims=True)  # spatial mean per channel
    return jnp.sum(alpha * activation, axis=-1, keepdims=True)


@functools.partial(jax.jit, static_argnames=("layer", "relu_attributions"))
def _layer_gradcam(model, x, target, layer, relu_attributions):
    cam = _cam(model, x, target, layer)
    return jax.nn.relu(cam) if relu_attributions else cam


def layer_gradcam(model, x, target, layer: str = "features.12", *, relu_attributions: bool = False):
    """Captum ``LayerGradCam``: Σ_k mean(∂score/∂A_k)·A_k at ``layer``, (N, h, w, 1).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path of the layer.
      relu_attributions: apply ReLU to the map.

    References:
      Selvaraju et al. Grad-CAM (2017).
    """
    x, target = _common.prepare(model, x, target, layers=(layer,))
    return _layer_gradcam(model, x, target, layer, bool(relu_attributions))


def gradcam(model, x, target, layer: str = "features.12"):
    """The course's manual GradCAM: ReLU(Σ_k α_k A_k), (N, h, w); 13×13 at 224 input."""
    return layer_gradcam(model, x, target, layer, relu_attributions=True)[..., 0]


@functools.partial(jax.jit, static_argnames=("layer", "mode"))
def _guided_gradcam(model, x, target, layer, mode):
    if set(squeezenet.relus_after(model.arch, layer)) <= {"classifier.2"}:
        # Above the layer the only ReLU is classifier.2, whose upstream gradient (the
        # target's channel averaged over positions) is never negative: there the guided
        # backward 1[x>0]·max(g, 0) is the standard one, so a single guided pass gives
        # both GradCAM's layer gradient and the guided input gradient.
        activation, grads, guided = _common.layer_and_input_gradients(model, x, target, layer, guided=True)
        cam = _weighted_sum(activation, grads)
    else:
        cam = _cam(model, x, target, layer)
        guided = _common.input_gradients(model, x, target, guided=True)
    return guided * _common.interpolate(jax.nn.relu(cam), x.shape[1:3], mode)


def guided_gradcam(model, x, target, layer: str = "features.12", *, interpolate_mode: str = "nearest"):
    """Captum ``GuidedGradCam``: ReLU'd GradCAM upsampled to the input × guided backprop.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: GradCAM layer.
      interpolate_mode: ``"nearest"`` (Captum's default), ``"bilinear"`` or ``"bicubic"``,
        as ``F.interpolate`` with ``align_corners=False``.

    Returns:
      (N, H, W, 3) attributions.
    """
    _checks.check_choice(interpolate_mode, "interpolate_mode", _common.INTERPOLATE_MODES)
    x, target = _common.prepare(model, x, target, layers=(layer,))
    return _guided_gradcam(model, x, target, layer, interpolate_mode)
