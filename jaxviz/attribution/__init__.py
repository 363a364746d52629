"""Attribution methods, one per module, one signature: ``method(model, x, target, ...)``."""

from jaxviz.attribution.gradcam import gradcam, guided_gradcam, layer_gradcam
from jaxviz.attribution.guided_backprop import guided_backprop
from jaxviz.attribution.integrated_gradients import integrated_gradients
from jaxviz.attribution.layer_conductance import layer_conductance
from jaxviz.attribution.noise_tunnel import noise_tunnel
from jaxviz.attribution.occlusion import occlusion
from jaxviz.attribution.saliency import saliency, saliency_map
from jaxviz.models.model import layer_activation

__all__ = [
    "gradcam",
    "guided_backprop",
    "guided_gradcam",
    "integrated_gradients",
    "layer_activation",
    "layer_conductance",
    "layer_gradcam",
    "noise_tunnel",
    "occlusion",
    "saliency",
    "saliency_map",
]
