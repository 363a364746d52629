"""What generic code may know about a network: its architecture description.

Attribution, synthesis, the checks, the figures and the command line ask a model's
:class:`Architecture` for layer names, defaults and limits; they never import an
architecture module and never spell a layer name themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import jax
import jax.numpy as jnp

from jaxviz.errors import InputError, UnknownLayerError


@dataclass(frozen=True)
class Architecture:
    """One network's description, derived from its forward function.

    Attributes:
      name: the architecture's name (``"resnet50"``).
      layer_names: every capturable layer, torchvision module paths, in forward order (a
        module called several times at its last call), and ``output``, the logits.
      num_classes: the length of the logits.
      output: the pseudo-layer holding the logits (N, num_classes).
      class_layers: the class layer and what follows it: one channel per class, so they
        cannot be captured or perturbed when the head is evaluated for each image's target
        alone.
      head_input: the head's input; below it every class shares the computation (``None``
        for your own model: its head is not separated).
      class_layer: the last linear / 1×1 layer (``output`` for your own model).
      default_layer: GradCAM's default: the output of the last convolutional block (for your
        own model, the last layer with spatial axes; ``None`` if it has none).
      feature_layers: layers style transfer may index by number (SqueezeNet's ``features.i``).
      monotone_relus: activations whose upstream gradient is never negative for a target's
        logit, so their guided and standard backward passes agree.
      minimum_input_size: the smallest height and width the network accepts.
      style_content_layer, style_layers: the Gatys style-transfer preset.
      bias_layers: the convolutions with a bias and the BatchNorms, in forward order
        (FullGrad's layers; empty for your own model, whose layers jaxviz does not know).
    """

    name: str
    layer_names: tuple[str, ...]
    num_classes: int
    output: str
    class_layers: frozenset[str]
    head_input: str
    class_layer: str
    default_layer: str
    feature_layers: tuple[str, ...]
    monotone_relus: frozenset[str]
    style_content_layer: str | None
    style_layers: tuple[str, ...]
    style_weights: tuple[float, ...]
    bias_layers: tuple[str, ...]
    batch_norm_eps: dict = field(compare=False, repr=False)
    activations_after_layer: dict = field(compare=False, repr=False)
    network: object = field(compare=False, repr=False)
    layers_hint: str = ""  # how to read the layer list in an error message

    @classmethod
    def of(cls, network) -> "Architecture":
        from jaxviz.models import network as _network

        listing = _network.call_listing(network)
        names = listing.layer_names
        class_layers = frozenset({_network.OUTPUT})
        if network.class_layer is not None:
            class_index = listing.last_call[network.class_layer]
            class_layers |= {n for n in names if listing.last_call[n] >= class_index}
        default_layer = network.default_layer
        if default_layer is None:  # the last output with spatial axes
            default_layer = next((n for n in reversed(names) if len(listing.shapes[n]) == 4), None)
        after = {}
        for name in names:
            index = listing.last_call[name]
            after[name] = tuple(act_name or f"{kind} #{i}" for i, act_name, kind in listing.activations if i > index)
        return cls(
            name=network.name, layer_names=names + (_network.OUTPUT,), num_classes=listing.output_shape[-1],
            output=_network.OUTPUT, class_layers=class_layers, head_input=network.head_input,
            class_layer=network.class_layer or _network.OUTPUT, default_layer=default_layer,
            feature_layers=network.feature_layers, monotone_relus=frozenset(network.monotone_relus),
            style_content_layer=network.style_content_layer, style_layers=tuple(network.style_layers),
            style_weights=tuple(network.style_weights),
            bias_layers=tuple(n for n in names if n in listing.biases),
            batch_norm_eps={n: eps for n, eps in listing.biases.items() if eps is not None},
            activations_after_layer=after, network=network, layers_hint=network.layers_hint,
        )

    def layer_biases(self, params, names: Sequence[str]) -> tuple:
        """(C,) what each bias layer of ``names`` adds to its output: a convolution's bias,
        or a BatchNorm's β − μ·γ/√(σ² + ε) (its output is that plus a multiple of the
        input).  Your own network's are read from one forward pass of its program."""
        if self.network.params_like is not None:
            from jaxviz.models import network as _network

            values = _network.bias_values(self.network, params)
            return tuple(values[name] for name in names)
        return tuple(self._parameter_bias(params, name) for name in names)

    def _parameter_bias(self, params, name: str):
        leaves = params[name]
        if name not in self.batch_norm_eps:
            return leaves["bias"]
        eps = jnp.asarray(self.batch_norm_eps[name], leaves["var"].dtype)
        return leaves["bias"] - leaves["mean"] * leaves["scale"] * jax.lax.rsqrt(leaves["var"] + eps)

    def relus_after(self, layer: str) -> tuple[str, ...]:
        """The activations that run after ``layer``'s output, in forward order (a functional
        one, which no hook sees, as ``"<kind> #<call>"``)."""
        return self.activations_after_layer.get(layer, ())

    @property
    def minimum_input_size(self) -> int:
        from jaxviz.models import network as _network

        return _network.minimum_input_size(self.network)

    def input_size_ok(self, height: int, width: int) -> bool:
        from jaxviz.models import network as _network

        return _network.input_size_ok(self.network, int(height), int(width))

    def check_layers(self, names: str | Sequence[str]) -> tuple[str, ...]:
        """Validates layer names; returns them as a tuple.

        Raises:
          UnknownLayerError: a name the network does not have; the message lists them.
        """
        names = (names,) if isinstance(names, str) else tuple(names)
        known = set(self.layer_names)
        for name in names:
            if name not in known:
                known = (f"{self.layers_hint}, {self.output!r} (all of them: model.layer_names)"
                         if self.layers_hint else ", ".join(self.layer_names))
                raise UnknownLayerError(f"`layer` {name!r} is not a layer of {self.name}; known layers: {known}")
        return names

    def check_input_size(self, height: int, width: int) -> None:
        from jaxviz.models import network as _network

        error = _network.input_size_error(self.network, int(height), int(width))
        if error is None:
            return
        if self.network.params_like is not None:  # your own model: its sizes follow no rule we know
            raise InputError(f"{self.name} does not accept {height}×{width} images: {error}")
        minimum = self.minimum_input_size
        big = max(height, width, minimum)
        axis, size = ("height", height) if not self.input_size_ok(height, big) else ("width", width)
        raise InputError(f"image {axis} {size} is too small for {self.name}: it needs at least "
                         f"{minimum}×{minimum} pixels")

    def check_class(self, value, name: str = "target") -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"`{name}` must be an integer class, got {value!r}")
        if not 0 <= value < self.num_classes:
            raise InputError(f"`{name}` must be a class in 0..{self.num_classes - 1}, got {value}")
        return value
