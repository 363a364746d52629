"""jaxviz: look inside an ImageNet CNN and synthesise images with it, in JAX."""

from jaxviz.attribution import (
    gradcam,
    guided_backprop,
    guided_gradcam,
    integrated_gradients,
    layer_conductance,
    layer_gradcam,
    noise_tunnel,
    occlusion,
    saliency,
    saliency_map,
)
from jaxviz.errors import (
    ArchitectureMismatchError,
    ImageError,
    InputError,
    InputTypeError,
    JaxvizError,
    UnknownLayerError,
    WeightsError,
    WeightsNotFoundError,
)
from jaxviz.images import deprocess, load_image, preprocess
from jaxviz.synthesis import (
    ClassVisualization,
    FoolingResult,
    class_visualization,
    make_fooling_images,
)
from jaxviz.models import (
    Model,
    SqueezeNet,
    from_torchvision,
    init_model,
    layer_activation,
    layer_names,
    load_model,
)

__version__ = "0.1.0"

__all__ = [
    "ClassVisualization",
    "FoolingResult",
    "class_visualization",
    "make_fooling_images",
    "ArchitectureMismatchError",
    "ImageError",
    "InputError",
    "InputTypeError",
    "JaxvizError",
    "Model",
    "SqueezeNet",
    "UnknownLayerError",
    "WeightsError",
    "WeightsNotFoundError",
    "deprocess",
    "from_torchvision",
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
    "init_model",
    "layer_activation",
    "layer_names",
    "load_image",
    "load_model",
    "preprocess",
]
