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
    smooth,
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
from jaxviz.interpolation import interpolate
from jaxviz.models import (
    ARCHITECTURES,
    Model,
    from_flax,
    from_function,
    from_torchvision,
    init_model,
    layer_activation,
    layer_names,
    load_model,
)
from jaxviz.models.architecture import Architecture
from jaxviz.synthesis import (
    ClassVisualization,
    ClassVisualizationResult,
    FoolingResult,
    StyleTransferResult,
    class_visualization,
    content_loss,
    fooling_images,
    gram_matrix,
    make_fooling_images,
    style_loss,
    style_transfer,
    tv_loss,
)

__version__ = "0.1.0"

# deprecated names, kept for one release (each warns, or is documented as an alias):
# noise_tunnel → smooth, make_fooling_images → fooling_images,
# ClassVisualization → ClassVisualizationResult
DEPRECATED = ("ClassVisualization", "make_fooling_images", "noise_tunnel")

__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "ArchitectureMismatchError",
    "ClassVisualization",
    "ClassVisualizationResult",
    "FoolingResult",
    "ImageError",
    "InputError",
    "InputTypeError",
    "JaxvizError",
    "Model",
    "StyleTransferResult",
    "UnknownLayerError",
    "WeightsError",
    "WeightsNotFoundError",
    "class_visualization",
    "content_loss",
    "deprocess",
    "fooling_images",
    "from_flax",
    "from_function",
    "from_torchvision",
    "gradcam",
    "gram_matrix",
    "guided_backprop",
    "guided_gradcam",
    "init_model",
    "integrated_gradients",
    "interpolate",
    "layer_activation",
    "layer_conductance",
    "layer_gradcam",
    "layer_names",
    "load_image",
    "load_model",
    "make_fooling_images",
    "noise_tunnel",
    "occlusion",
    "preprocess",
    "saliency",
    "saliency_map",
    "smooth",
    "style_loss",
    "style_transfer",
    "tv_loss",
]
