"""Image synthesis: fooling images, class visualisation, style transfer."""

from jaxviz.synthesis.class_visualization import ClassVisualization, class_visualization, gaussian_blur
from jaxviz.synthesis.fooling import FoolingResult, make_fooling_images

__all__ = ["ClassVisualization", "FoolingResult", "class_visualization", "gaussian_blur", "make_fooling_images"]
