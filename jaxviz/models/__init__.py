"""torchvision's CNN families in JAX, and the torchvision weight import."""

from jaxviz.models.architecture import Architecture
from jaxviz.models.catalog import ARCHITECTURES, architecture as describe
from jaxviz.models.model import Model, from_torchvision, init_model, layer_activation, load_model
from jaxviz.models.traced import from_flax, from_function


def layer_names(arch: str) -> tuple[str, ...]:
    """Every capturable layer of ``arch`` in forward order (torchvision module paths)."""
    return describe(arch).layer_names


def minimum_input_size(arch: str) -> int:
    """Smallest height (and width) ``arch`` accepts, as torchvision does."""
    return describe(arch).minimum_input_size


def num_classes(arch: str) -> int:
    """How many classes ``arch`` scores (the length of its logits)."""
    return describe(arch).num_classes


def check_layers(arch: str, names) -> tuple[str, ...]:
    """Validates layer names of ``arch``; returns them as a tuple."""
    return describe(arch).check_layers(names)


__all__ = [
    "ARCHITECTURES",
    "Architecture",
    "Model",
    "check_layers",
    "describe",
    "from_flax",
    "from_function",
    "from_torchvision",
    "init_model",
    "layer_activation",
    "layer_names",
    "load_model",
    "minimum_input_size",
    "num_classes",
]
