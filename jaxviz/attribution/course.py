"""The course's presentations of two methods: one computation each, another output.

``saliency_map`` is :func:`~jaxviz.attribution.saliency.saliency` reduced to the course's
(N, H, W) map; ``gradcam`` is :func:`~jaxviz.attribution.gradcam.layer_gradcam` with
ReLU, squeezed to the course's (N, h, w) map.  Neither is a method of its own.
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxviz import _deprecation
from jaxviz.attribution.gradcam import layer_gradcam
from jaxviz.attribution.saliency import saliency


def saliency_map(model, x, target):
    """The course's saliency map: max over channels of |∇ₓ target score|, (N, H, W)."""
    return jnp.max(saliency(model, x, target, absolute=True), axis=-1)


@_deprecation.positional_keywords("layer")
def gradcam(model, x, target, *, layer: str | None = None):
    """The course's manual GradCAM: ReLU(Σ_k α_k A_k), (N, h, w) at the layer's resolution
    (default: the model's last convolutional block)."""
    return layer_gradcam(model, x, target, layer=layer, relu_attributions=True)[..., 0]
