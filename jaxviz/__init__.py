"""jaxviz: look inside an ImageNet CNN and synthesise images with it, in JAX."""

import importlib
import importlib.util

from jaxviz.choices import ARCHITECTURES
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

# Where each public function and class lives.  They load on first use, and jax with them:
# ``import jaxviz`` (and ``jaxviz --help``) does not wait for jax, flax and every method.
_HOMES = {
    "jaxviz.attribution": (
        "ablationcam", "blur_ig", "deconvolution", "deeplift", "deeplift_shap", "eigen_gradcam", "eigencam",
        "feature_ablation", "finercam", "fullgrad", "gradcam", "gradcam_elementwise", "gradcam_plus_plus",
        "gradient_shap", "guided_backprop", "guided_gradcam", "guided_ig", "hirescam", "input_x_gradient",
        "integrated_gradients", "internal_influence", "kernel_shap", "kpca_cam", "layer_conductance",
        "layer_deeplift", "layer_feature_ablation", "layer_gradcam", "layer_gradient_shap",
        "layer_gradient_x_activation", "layer_integrated_gradients", "layer_lrp", "layercam", "lime", "lrp",
        "neuron_conductance", "neuron_deconvolution", "neuron_deeplift", "neuron_gradient",
        "neuron_gradient_shap", "neuron_guided_backprop", "neuron_integrated_gradients", "noise_tunnel",
        "occlusion", "random_cam", "rise", "saliency", "saliency_map", "scorecam", "shapley_value_sampling",
        "shapleycam", "smooth", "sobel_cam", "xgradcam", "xrai",
    ),
    "jaxviz.images": (
        "deprocess", "load_image", "preprocess",
    ),
    "jaxviz.interpolation": (
        "interpolate",
    ),
    "jaxviz.models": (
        "Model", "from_flax", "from_function", "from_torchvision", "init_model", "layer_activation",
        "layer_names", "load_model",
    ),
    "jaxviz.models.architecture": (
        "Architecture",
    ),
    "jaxviz.synthesis": (
        "ClassVisualization", "ClassVisualizationResult", "FoolingResult", "StyleTransferResult",
        "class_visualization", "content_loss", "fooling_images", "gram_matrix", "make_fooling_images",
        "style_loss", "style_transfer", "tv_loss",
    ),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
_SUBMODULES = {"masks": "jaxviz.masks", "metrics": "jaxviz.metrics", "relevance": "jaxviz.models.relevance"}


def __getattr__(name: str):
    if name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULES[name])
    elif name in _HOME_OF:
        value = getattr(importlib.import_module(_HOME_OF[name]), name)
    elif not name.startswith("__") and importlib.util.find_spec(f"jaxviz.{name}") is not None:
        value = importlib.import_module(f"jaxviz.{name}")  # ``jaxviz.attribution`` and the like, as ever
    else:
        raise AttributeError(f"module 'jaxviz' has no attribute {name!r}")
    globals()[name] = value  # found once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

# deprecated names, kept for one release (each warns, or is documented as an alias):
# noise_tunnel → smooth, make_fooling_images → fooling_images,
# ClassVisualization → ClassVisualizationResult
DEPRECATED = ("ClassVisualization", "make_fooling_images", "noise_tunnel")

__all__ = [
    "ARCHITECTURES", "ArchitectureMismatchError", "ImageError", "InputError", "InputTypeError", "JaxvizError",
    "UnknownLayerError", "WeightsError", "WeightsNotFoundError",
]
__all__ += sorted([*_HOME_OF, *_SUBMODULES])
