"""GradCAM: pytorch-grad-cam's ``GradCAM`` (the course's), Captum's ``LayerGradCam`` at any layer,
and Guided GradCAM."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, _deprecation, scoring
from jaxviz.attribution import _cam
from jaxviz.interpolation import INTERPOLATE_MODES, interpolate
from jaxviz.models.network import GUIDED_RULES


def _layer_map(model, x, target, layer):
    return _weighted_sum(*scoring.layer_gradients_and_eval(model, x, target, layer))


def _channel_weights(activation, grads):
    return jnp.mean(grads, axis=(1, 2))  # α_k: the spatial mean of the gradient


_rule = _cam.weighted(_channel_weights)


def _weighted_sum(activation, grads):
    return _rule(activation, grads, False)[..., None]


gradcam = _deprecation.positional_keywords("layer")(_cam.cam_method(
    _cam.gradient_rule(_rule), name="gradcam", doc="""GradCAM: ReLU(Σ_k α_k A_k) with α_k the spatial
    mean of ∂y/∂A_k; by default (N, h, w) at the layer's resolution, the course's manual
    GradCAM, and pytorch-grad-cam's ``GradCAM`` with ``resolution="input"``.

    References:
      Selvaraju et al. Grad-CAM: visual explanations from deep networks via
      gradient-based localization (ICCV 2017).
"""))


@functools.partial(jax.jit, static_argnames=("layer", "relu_attributions"))
def _layer_gradcam(model, x, target, layer, relu_attributions, repeats):
    cam = scoring.per_image(lambda v, t: _layer_map(model, v, t, layer), repeats, x, target)
    return jax.nn.relu(cam) if relu_attributions else cam


@_deprecation.positional_keywords("layer")
def layer_gradcam(model, x, target, *, layer: str | None = None, relu_attributions: bool = False):
    """Captum ``LayerGradCam``: Σ_k mean(∂score/∂A_k)·A_k at ``layer``, (N, h, w, 1).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path of the layer; default: the model's last
        convolutional block (``model.architecture.default_layer``).
      relu_attributions: apply ReLU to the map.

    Returns:
      (N, h, w, 1) maps at the layer's resolution.  The course's (N, h, w) GradCAM is
      :func:`jaxviz.gradcam`, this map with ``relu_attributions=True``, squeezed.

    References:
      Selvaraju et al. Grad-CAM (2017).
    """
    layer = model.architecture.default_layer if layer is None else layer
    x, target = scoring.prepare(model, x, target, layers=(layer,))
    return _layer_gradcam(model, x, target, layer, bool(relu_attributions), scoring.find_repeats(x, target))


@functools.partial(jax.jit, static_argnames=("layer", "mode", "rule"))
def _guided_gradcam(model, x, target, layer, mode, rule, repeats):
    return scoring.per_image(functools.partial(_guided_gradcam_body, model, layer=layer, mode=mode, rule=rule),
                             repeats, x, target)


def _guided_gradcam_body(model, x, target, *, layer, mode, rule):
    architecture = model.architecture
    if rule == "modules" and set(architecture.relus_after(layer)) <= architecture.monotone_relus:
        # Above the layer every ReLU's upstream gradient is never negative: there the
        # guided backward 1[x>0]·max(g, 0) is the standard one, so a single guided pass
        # gives both GradCAM's layer gradient and the guided input gradient.
        activation, grads, guided = scoring.layer_and_input_gradients(model, x, target, layer, guided=rule)
        cam = _weighted_sum(activation, grads)
    else:
        cam = _layer_map(model, x, target, layer)
        guided = scoring.input_gradients(model, x, target, guided=rule)
    return guided * interpolate(jax.nn.relu(cam), x.shape[1:3], mode)


@_deprecation.positional_keywords("layer")
def guided_gradcam(model, x, target, *, layer: str | None = None, interpolate_mode: str = "nearest",
                   rule: str = "modules"):
    """Captum ``GuidedGradCam``: ReLU'd GradCAM upsampled to the input × guided backprop.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: GradCAM layer; default: the model's last convolutional block.
      interpolate_mode: ``"nearest"`` (Captum's default), ``"bilinear"`` or ``"bicubic"``,
        as ``F.interpolate`` with ``align_corners=False``.
      rule: guided backprop's rule (:func:`jaxviz.guided_backprop`): ``"modules"``
        (Captum's, the ``nn.ReLU`` modules) or ``"all"`` (every ReLU-like activation).

    Returns:
      (N, H, W, 3) attributions.

    Caution: like guided backprop, guided GradCAM fails the sanity check of Adebayo et al.
    (2018): with the logits' layer randomised its maps keep their look (SSIM 0.82 on
    pretrained SqueezeNet 1.1, 0.69 on MobileNetV2 with ``rule="all"``, where saliency
    keeps 0.59 and 0.48 and GradCAM 0.17; tests/test_sanity_checks.py,
    :func:`jaxviz.metrics.mprt`).

    References:
      Selvaraju et al. Grad-CAM (2017).  Adebayo et al. Sanity Checks for Saliency Maps
      (NeurIPS 2018).
    """
    _checks.check_choice(interpolate_mode, "interpolate_mode", INTERPOLATE_MODES)
    _checks.check_choice(rule, "rule", GUIDED_RULES)
    layer = model.architecture.default_layer if layer is None else layer
    x, target = scoring.prepare(model, x, target, layers=(layer,))
    return _guided_gradcam(model, x, target, layer, interpolate_mode, rule, scoring.find_repeats(x, target))
