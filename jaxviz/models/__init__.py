"""SqueezeNet in Flax and the torchvision weight import."""

from jaxviz.models.model import Model, from_torchvision, init_model, layer_activation, load_model
from jaxviz.models.squeezenet import (
    ARCHITECTURES,
    SqueezeNet,
    architecture as describe,
    check_layers,
    layer_names,
    minimum_input_size,
    num_classes,
)

__all__ = [
    "ARCHITECTURES",
    "Model",
    "SqueezeNet",
    "check_layers",
    "describe",
    "from_torchvision",
    "init_model",
    "layer_activation",
    "layer_names",
    "load_model",
    "minimum_input_size",
    "num_classes",
]
