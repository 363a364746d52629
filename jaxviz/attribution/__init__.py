"""Attribution methods, one per module, one signature: ``method(model, x, target, *, options)``."""

from jaxviz.attribution._paths import METHODS as QUADRATURE_METHODS
from jaxviz.attribution.course import gradcam, saliency_map
from jaxviz.attribution.gradcam import guided_gradcam, layer_gradcam
from jaxviz.attribution.guided_backprop import guided_backprop
from jaxviz.attribution.integrated_gradients import integrated_gradients
from jaxviz.attribution.layer_conductance import layer_conductance
from jaxviz.attribution.occlusion import occlusion
from jaxviz.attribution.saliency import saliency
from jaxviz.attribution.smooth import NT_TYPES, noise_tunnel, smooth

# ``smooth`` wraps a method rather than being one; ``noise_tunnel`` is its deprecated form.
__all__ = [
    "NT_TYPES",
    "QUADRATURE_METHODS",
    "gradcam",
    "guided_backprop",
    "guided_gradcam",
    "integrated_gradients",
    "layer_conductance",
    "layer_gradcam",
    "noise_tunnel",
    "occlusion",
    "saliency",
    "saliency_map",
    "smooth",
]
