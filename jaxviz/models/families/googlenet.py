"""GoogLeNet (Inception v1) in eval mode, as torchvision's: ``transform_input`` as the
pretrained model sets it, no auxiliary heads (they run only in training)."""

from __future__ import annotations

import jax.numpy as jnp

from jaxviz.models.network import Network, flatten

ARCHITECTURES = ("googlenet",)
_INIT = "trunc_normal:0.01"
_EPS = 0.001

# name → (in, 1×1, 3×3 reduce, 3×3, "5×5" reduce, "5×5" (a 3×3 in torchvision), pool projection)
_INCEPTIONS = (
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    ("maxpool3",),
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("maxpool4",),
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
)


def _basic_conv(f, name, x, out, kernel, *, stride=1, padding=0):
    """BasicConv2d: conv, BatchNorm, then a functional ReLU (no ReLU module)."""
    x = f.bn(f"{name}.bn", f.conv(f"{name}.conv", x, out, kernel, stride=stride, padding=padding, bias=False,
                                  init=_INIT), eps=_EPS)
    return f.output(name, f.relu(None, x))


def _inception(f, name, x, c1, c3r, c3, c5r, c5, pool):
    b1 = _basic_conv(f, f"{name}.branch1", x, c1, 1)
    b2 = _basic_conv(f, f"{name}.branch2.1", _basic_conv(f, f"{name}.branch2.0", x, c3r, 1), c3, 3, padding=1)
    b2 = f.output(f"{name}.branch2", b2)
    b3 = _basic_conv(f, f"{name}.branch3.1", _basic_conv(f, f"{name}.branch3.0", x, c5r, 1), c5, 3, padding=1)
    b3 = f.output(f"{name}.branch3", b3)
    b4 = f.max_pool(f"{name}.branch4.0", x, 3, 1, padding=1, ceil_mode=True)
    b4 = f.output(f"{name}.branch4", _basic_conv(f, f"{name}.branch4.1", b4, pool, 1))
    return f.output(name, f.concat([b1, b2, b3, b4]))


def transform_input(x):
    """torchvision's ``transform_input``: ImageNet normalisation → the (x − 0.5)/0.5 the
    original Inception weights expect."""
    mean = jnp.asarray([0.485, 0.456, 0.406], x.dtype).reshape(1, 1, 1, 3)
    std = jnp.asarray([0.229, 0.224, 0.225], x.dtype).reshape(1, 1, 1, 3)
    return x * (std / 0.5) + (mean - 0.5) / 0.5


def _body(f, x):
    x = _basic_conv(f, "conv1", x, 64, 7, stride=2, padding=3)
    x = f.max_pool("maxpool1", x, 3, 2, ceil_mode=True)
    x = _basic_conv(f, "conv2", x, 64, 1)
    x = _basic_conv(f, "conv3", x, 192, 3, padding=1)
    x = f.max_pool("maxpool2", x, 3, 2, ceil_mode=True)
    for spec in _INCEPTIONS:
        if spec[0] == "maxpool3":
            x = f.max_pool("maxpool3", x, 3, 2, ceil_mode=True)
        elif spec[0] == "maxpool4":
            x = f.max_pool("maxpool4", x, 2, 2, ceil_mode=True)
        else:
            x = _inception(f, spec[0], x, *spec[1:])
    x = f.adaptive_avg_pool("avgpool", x, 1)
    return f.identity("dropout", flatten(x))


def _head(f, x):
    return f.linear("fc", x, 1000, init=_INIT, bias_init="default")  # torchvision leaves its bias alone


def network(arch: str) -> Network:
    return Network(
        name=arch, body=_body, head=_head, head_input="dropout", class_layer="fc", default_layer="inception5b",
        preprocess=transform_input,
        layers_hint="conv1, maxpool1, conv2, conv3, maxpool2, inception3a … inception5b (branch1 … branch4), "
                    "maxpool3, maxpool4, avgpool, dropout, fc",
    )
