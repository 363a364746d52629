"""SqueezeNet 1.0 and 1.1 as a Flax module, numerically the same function as torchvision's.

Layers are named by torchvision's module paths (``features.0`` … ``features.12``,
``classifier.0`` … ``classifier.3``), and so are the sub-layers of each Fire module
(``features.3.squeeze``, ``features.3.squeeze_activation``, ``features.3.expand1x1``, …).
Parameters live under the torchvision name of their convolution, so a state_dict key
``features.3.squeeze.weight`` maps to ``params["features.3.squeeze"]["kernel"]``.

One call can return any set of layer outputs (``capture=``) without running the network
twice, and stops after the last layer it needs.  ``perturb=`` adds an array to a layer's
output, which is how attribution methods take gradients with respect to a layer.  The
``guided`` attribute selects the ReLU used everywhere: standard or guided-backprop.
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxviz.errors import InputError
from jaxviz.models import layers
from jaxviz.models.architecture import Architecture

NUM_CLASSES = 1000

# (kind, arguments) per entry of torchvision's ``features`` Sequential.
#   ("conv", out_channels, kernel, stride) · ("relu",) · ("pool",) · ("fire", squeeze, e1x1, e3x3)
_FEATURES = {
    "squeezenet1_0": (
        ("conv", 96, 7, 2),
        ("relu",),
        ("pool",),
        ("fire", 16, 64, 64),
        ("fire", 16, 64, 64),
        ("fire", 32, 128, 128),
        ("pool",),
        ("fire", 32, 128, 128),
        ("fire", 48, 192, 192),
        ("fire", 48, 192, 192),
        ("fire", 64, 256, 256),
        ("pool",),
        ("fire", 64, 256, 256),
    ),
    "squeezenet1_1": (
        ("conv", 64, 3, 2),
        ("relu",),
        ("pool",),
        ("fire", 16, 64, 64),
        ("fire", 16, 64, 64),
        ("pool",),
        ("fire", 32, 128, 128),
        ("fire", 32, 128, 128),
        ("pool",),
        ("fire", 48, 192, 192),
        ("fire", 48, 192, 192),
        ("fire", 64, 256, 256),
        ("fire", 64, 256, 256),
    ),
}

ARCHITECTURES = tuple(_FEATURES)

_FIRE_PARTS = (
    "squeeze",
    "squeeze_activation",
    "expand1x1",
    "expand1x1_activation",
    "expand3x3",
    "expand3x3_activation",
)

OUTPUT = "output"  # pseudo-layer: the flattened logits (N, 1000)
CLASS_LAYERS = ("classifier.1", "classifier.2", "classifier.3")  # a channel per class


def check_arch(arch: str) -> str:
    if arch not in _FEATURES:
        raise InputError(f"`arch` must be one of {list(ARCHITECTURES)}, got {arch!r}")
    return arch


def num_classes(arch: str) -> int:
    """How many classes ``arch`` scores (the length of its logits)."""
    check_arch(arch)
    return NUM_CLASSES


def layer_names(arch: str) -> tuple[str, ...]:
    """Every capturable layer of ``arch`` in forward order (torchvision module paths)."""
    names = []
    for i, spec in enumerate(_FEATURES[check_arch(arch)]):
        names.append(f"features.{i}")
        if spec[0] == "fire":
            names.extend(f"features.{i}.{part}" for part in _FIRE_PARTS)
    names.extend(f"classifier.{i}" for i in range(4))
    names.append(OUTPUT)
    return tuple(names)


def _forward_order(arch: str) -> dict[str, int]:
    order = {}
    for position, name in enumerate(layer_names(arch)):
        order[name] = position
    # A Fire block's own output comes after its sub-layers.
    for i, spec in enumerate(_FEATURES[arch]):
        if spec[0] == "fire":
            order[f"features.{i}"] = order[f"features.{i}.expand3x3_activation"] + 0.5
    return order


def relus_after(arch: str, layer: str) -> tuple[str, ...]:
    """The ReLU layers that run after ``layer``'s output, in forward order."""
    order = _forward_order(arch)
    relus = [f"features.{i}" for i, spec in enumerate(_FEATURES[arch]) if spec[0] == "relu"]
    relus += [name for name in layer_names(arch) if name.endswith("_activation")] + ["classifier.2"]
    return tuple(sorted((name for name in relus if order[name] > order[layer]), key=order.__getitem__))


def check_layers(arch: str, names: Sequence[str]) -> tuple[str, ...]:
    """Validates layer names; returns them as a tuple."""
    return architecture(arch).check_layers(names)


@functools.cache
def architecture(arch: str) -> Architecture:
    """The description generic code asks instead of naming SqueezeNet's layers."""
    n_features = len(_FEATURES[check_arch(arch)])
    return Architecture(
        name=arch,
        layer_names=layer_names(arch),
        num_classes=NUM_CLASSES,
        output=OUTPUT,
        class_layers=frozenset(CLASS_LAYERS) | {OUTPUT},
        head_input="classifier.0",  # Dropout (identity in eval mode) before the 1×1 convolution
        default_layer=f"features.{n_features - 1}",  # the last Fire block
        feature_layers=tuple(f"features.{i}" for i in range(n_features)),
        relus_after=functools.partial(relus_after, arch),
        # classifier.2's upstream gradient is the target's channel averaged over positions:
        # never negative, so guided and standard backward passes agree there
        monotone_relus=frozenset({"classifier.2"}),
        minimum_input_size=minimum_input_size(arch),
        input_size_ok=lambda height, width: _spatial_sizes_ok(arch, height) and _spatial_sizes_ok(arch, width),
        style_content_layer=3,  # the course's Gatys layers (features.i indices)
        style_layers=(1, 4, 6, 7),
        layers_hint=(f"features.0 … features.{n_features - 1} (Fire blocks also features.i.squeeze, "
                     f".expand1x1, .expand3x3 and their _activation), classifier.0 … classifier.3, {OUTPUT!r}"),
    )


@functools.cache
def minimum_input_size(arch: str) -> int:
    """Smallest height (and width) the network accepts, as torchvision does."""
    size = 1
    while not _spatial_sizes_ok(arch, size):
        size += 1
    return size


def _spatial_sizes_ok(arch: str, size: int) -> bool:
    for spec in _FEATURES[arch]:
        if spec[0] == "conv":
            size = layers.conv_output_size(size, spec[2], spec[3])
        elif spec[0] == "pool":
            size = layers.pool_output_size(size)
        if size < 1:
            return False
    return True


def check_input_size(arch: str, height: int, width: int) -> None:
    architecture(arch).check_input_size(height, width)


def classifier(conv, x, *, target=None, guided: bool = False, emit=lambda name, value: value):
    """classifier.1 … output from classifier.0's output (N, H, W, 512): the logits (N, 1000).

    ``conv`` holds classifier.1's ``kernel`` and ``bias``.  With ``target`` (N,), each image's
    logit for its own class, (N,): the convolution is evaluated for that class alone, the same
    numbers as that column of the logits at 1/1000 of the cost, forward and backward.
    ``emit(name, value)`` sees (and may perturb) each layer's output, as in the network.
    """
    activation = layers.guided_relu if guided else layers.relu
    if target is not None:
        z = layers.target_channel_conv1x1(x, conv["kernel"], conv["bias"], target)
        return emit(OUTPUT, jnp.mean(activation(z), axis=(1, 2)))
    x = emit("classifier.1", layers.conv2d(x, conv["kernel"], conv["bias"]))
    x = emit("classifier.2", activation(x))
    x = emit("classifier.3", jnp.mean(x, axis=(1, 2), keepdims=True))
    return emit(OUTPUT, x.reshape(x.shape[0], -1))


def _default_kernel_init(key, shape, dtype=jnp.float32):
    # torchvision's kaiming_uniform_ default (a=0, fan_in): bound = √2 · √(3/fan_in).
    fan_in = shape[0] * shape[1] * shape[2]
    bound = jnp.sqrt(6.0 / fan_in)
    return jax.random.uniform(key, shape, dtype, -bound, bound)


class Conv2d(nn.Module):
    """Convolution with an HWIO ``kernel`` and a ``bias``, NHWC in and out."""

    features: int
    kernel_size: int
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x):
        kernel = self.param(
            "kernel",
            _default_kernel_init,
            (self.kernel_size, self.kernel_size, x.shape[-1], self.features),
            x.dtype,
        )
        bias = self.param("bias", nn.initializers.zeros, (self.features,), x.dtype)
        return layers.conv2d(x, kernel, bias, stride=self.stride, padding=self.padding)


class SqueezeNet(nn.Module):
    """torchvision's SqueezeNet (eval mode) in NHWC.

    Attributes:
      arch: ``"squeezenet1_1"`` or ``"squeezenet1_0"``.
      guided: use the guided-backprop ReLU everywhere (changes only the backward pass).
    """

    arch: str = "squeezenet1_1"
    guided: bool = False

    @nn.compact
    def __call__(
        self,
        x,
        capture: Sequence[str] | None = None,
        perturb: Mapping[str, jax.Array] | None = None,
        target: jax.Array | None = None,
    ):
        """Runs the network.

        Args:
          x: (N, H, W, 3) ImageNet-normalised images.
          capture: layer names to return. ``None`` returns the logits (N, 1000).
          perturb: layer name → array added to that layer's output (for layer gradients).
          target: (N,) a class per image: the output is then each image's logit for its own
            class, (N,), and the classifier's convolution is evaluated for that class alone
            (the same numbers as that column of the logits, at 1/1000 of the cost, in the
            forward and in the backward pass).  classifier.1–3 cannot be captured with it.

        Returns:
          The logits, or a dict ``{name: output}`` for the captured layers (NHWC).
        """
        specs = _FEATURES[check_arch(self.arch)]
        perturb = dict(perturb or {})
        names = check_layers(self.arch, tuple(capture) if capture is not None else (OUTPUT,))
        check_layers(self.arch, tuple(perturb))
        if target is not None and (set(names) | set(perturb)) & set(CLASS_LAYERS):
            raise InputError("classifier.1–3 hold every class: they cannot be captured or perturbed with `target`")
        order = _forward_order(self.arch)
        last = max(order[name] for name in names)
        wanted = set(names)
        outputs = {}
        activation = layers.guided_relu if self.guided else layers.relu

        def emit(name, value):
            if name in perturb:
                value = value + perturb[name]
            if name in wanted:
                outputs[name] = value
            return value

        def done():
            return len(outputs) == len(wanted)

        for i, spec in enumerate(specs):
            name = f"features.{i}"
            kind = spec[0]
            if kind == "conv":
                x = Conv2d(spec[1], spec[2], spec[3], name=name)(x)
            elif kind == "relu":
                x = activation(x)
            elif kind == "pool":
                x = layers.max_pool_ceil(x)
            else:
                _, squeeze, e1, e3 = spec
                s = emit(f"{name}.squeeze", Conv2d(squeeze, 1, name=f"{name}.squeeze")(x))
                s = emit(f"{name}.squeeze_activation", activation(s))
                a = emit(f"{name}.expand1x1", Conv2d(e1, 1, name=f"{name}.expand1x1")(s))
                a = emit(f"{name}.expand1x1_activation", activation(a))
                b = emit(f"{name}.expand3x3", Conv2d(e3, 3, padding=1, name=f"{name}.expand3x3")(s))
                b = emit(f"{name}.expand3x3_activation", activation(b))
                x = jnp.concatenate([a, b], axis=-1)
            x = emit(name, x)
            if done() and order[name] >= last:
                break
        else:
            x = emit("classifier.0", x)  # Dropout: identity in eval mode
            if self.is_initializing():
                Conv2d(NUM_CLASSES, 1, name="classifier.1")(x)  # creates its parameters
            classifier(self.variables["params"]["classifier.1"], x, target=target, guided=self.guided, emit=emit)
        if capture is None:
            return outputs[OUTPUT]
        return {name: outputs[name] for name in names}
