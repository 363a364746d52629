"""What generic code may know about a network: its architecture description.

Attribution, synthesis, the checks, the figures and the command line ask a model's
:class:`Architecture` for layer names, defaults and limits; they never import an
architecture module and never spell a layer name themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from jaxviz.errors import InputError, UnknownLayerError


@dataclass(frozen=True)
class Architecture:
    """One network's description.

    Attributes:
      name: the architecture's name (``"squeezenet1_1"``).
      layer_names: every capturable layer, torchvision module paths, in forward order, and
        ``output``, the logits.
      num_classes: the length of the logits.
      output: the pseudo-layer holding the logits (N, num_classes).
      class_layers: layers with one channel per class: they cannot be captured or
        perturbed when the head is evaluated for each image's target alone.
      head_input: the head's input; below it every class shares the computation.
      default_layer: GradCAM's default: the output of the last convolutional block.
      feature_layers: the layers style transfer indexes by number (``features.i``).
      relus_after: ``layer`` → the ReLU layers that run after its output, in forward order.
      monotone_relus: ReLUs whose upstream gradient is never negative for a target's
        logit, so their guided and standard backward passes agree.
      minimum_input_size: the smallest height and width the network accepts.
      input_size_ok: ``(height, width)`` → whether the network accepts that size.
      style_content_layer, style_layers: the course's style-transfer layer indices.
    """

    name: str
    layer_names: tuple[str, ...]
    num_classes: int
    output: str
    class_layers: frozenset[str]
    head_input: str
    default_layer: str
    feature_layers: tuple[str, ...]
    relus_after: Callable[[str], tuple[str, ...]] = field(compare=False)
    monotone_relus: frozenset[str]
    minimum_input_size: int
    input_size_ok: Callable[[int, int], bool] = field(compare=False)
    style_content_layer: int
    style_layers: tuple[int, ...]
    layers_hint: str = ""  # how to read the layer list in an error message

    def check_layers(self, names: str | Sequence[str]) -> tuple[str, ...]:
        """Validates layer names; returns them as a tuple.

        Raises:
          UnknownLayerError: a name the network does not have; the message lists them.
        """
        names = (names,) if isinstance(names, str) else tuple(names)
        known = set(self.layer_names)
        for name in names:
            if name not in known:
                raise UnknownLayerError(
                    f"`layer` {name!r} is not a layer of {self.name}; known layers: "
                    f"{self.layers_hint or ', '.join(self.layer_names)} "
                    f"(all of them: jaxviz.load_model(...).layer_names)")
        return names

    def check_input_size(self, height: int, width: int) -> None:
        for axis, size in (("height", height), ("width", width)):
            if not self.input_size_ok(size, size):
                raise InputError(
                    f"image {axis} {size} is too small for {self.name}: it needs at least "
                    f"{self.minimum_input_size}×{self.minimum_input_size} pixels")

    def check_class(self, value, name: str = "target") -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"`{name}` must be an integer class, got {value!r}")
        if not 0 <= value < self.num_classes:
            raise InputError(f"`{name}` must be a class in 0..{self.num_classes - 1}, got {value}")
        return value
