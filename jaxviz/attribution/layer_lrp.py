"""The relevance LRP sends to a layer's output (Captum ``LayerLRP``)."""

from __future__ import annotations

import functools

import jax

from jaxviz import scoring
from jaxviz.attribution.lrp import check_composite
from jaxviz.models import relevance


@functools.partial(jax.jit, static_argnames=("layer", "composite"))
def _layer_lrp(model, x, target, layer, composite):
    _, relevance_ = scoring.layer_gradients_and_eval(model, x, target, layer, guided=("lrp", composite))
    if composite.scale_by_output:  # Captum's: from the target logit, not from 1
        logits = scoring.batch_target_logits(model, x, target)
        relevance_ = relevance_ * logits.reshape((-1,) + (1,) * (relevance_.ndim - 1))
    return relevance_


def layer_lrp(model, x, target, *, layer: str | None = None,
              composite: str | relevance.Composite = "epsilon_plus"):
    """The relevance :func:`jaxviz.lrp` sends to the output of ``layer``: what the rules of
    the layers after it pass back (Captum ``LayerLRP`` with ``composite="captum"``).

    Args:
      model: a :class:`jaxviz.Model` (your own network too: see :func:`jaxviz.lrp`).
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      composite: as :func:`jaxviz.lrp`.

    Returns:
      layer-shaped relevance, (N, h, w, c) or (N, F).

    References:
      Bach et al. On Pixel-Wise Explanations for Non-Linear Classifier Decisions by
      Layer-Wise Relevance Propagation (2015); Montavon et al. Layer-Wise Relevance
      Propagation: An Overview (2019).
    """
    layer = model.architecture.default_layer if layer is None else layer
    composite = check_composite(composite, x)
    x, target = scoring.prepare(model, x, target, layers=(layer, *(name for name, _ in composite.layers)))
    return _layer_lrp(model, x, target, layer, composite)
