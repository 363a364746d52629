"""Image synthesis: fooling images, class visualisation, style transfer."""

from jaxviz.synthesis.class_visualization import ClassVisualization, class_visualization, gaussian_blur
from jaxviz.synthesis.fooling import FoolingResult, make_fooling_images
from jaxviz.synthesis.style_transfer import (
    PRESETS,
    StyleTransferResult,
    content_loss,
    gram_matrix,
    style_loss,
    style_transfer,
    tv_loss,
)

__all__ = [
    "PRESETS",
    "ClassVisualization",
    "FoolingResult",
    "StyleTransferResult",
    "class_visualization",
    "content_loss",
    "gaussian_blur",
    "gram_matrix",
    "make_fooling_images",
    "style_loss",
    "style_transfer",
    "tv_loss",
]
