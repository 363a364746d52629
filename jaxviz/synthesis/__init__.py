"""Image synthesis: fooling images, class visualisation, style transfer.

Each is a noun-named function returning a ``<Noun>Result`` named tuple.
"""

from jaxviz.synthesis.class_visualization import (
    ClassVisualization,
    ClassVisualizationResult,
    class_visualization,
    gaussian_blur,
)
from jaxviz.synthesis.fooling import FoolingResult, fooling_images, make_fooling_images
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
    "ClassVisualizationResult",
    "FoolingResult",
    "StyleTransferResult",
    "class_visualization",
    "content_loss",
    "fooling_images",
    "gaussian_blur",
    "gram_matrix",
    "make_fooling_images",
    "style_loss",
    "style_transfer",
    "tv_loss",
]
