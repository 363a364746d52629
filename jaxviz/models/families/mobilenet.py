"""MobileNetV2 (ReLU6) and MobileNetV3 small / large (Hardswish, squeeze-excitation), as
torchvision's."""

from __future__ import annotations

from jaxviz.models.network import Network, flatten

ARCHITECTURES = ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")
_CONV = "kaiming_normal_fan_out"


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _conv_norm_activation(f, name, x, out, kernel, *, stride=1, groups=1, activation=None, eps=1e-5):
    """torchvision's Conv2dNormActivation: ``name.0`` conv, ``name.1`` BN, ``name.2`` activation."""
    x = f.conv(f"{name}.0", x, out, kernel, stride=stride, padding=(kernel - 1) // 2, groups=groups, bias=False,
               init=_CONV)
    x = f.bn(f"{name}.1", x, eps=eps)
    if activation is not None:
        x = getattr(f, activation)(f"{name}.2", x)
    return f.output(name, x)


# MobileNetV2: (expansion t, channels c, repeats n, stride s)
_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _v2_body(f, x):
    x = _conv_norm_activation(f, "features.0", x, 32, 3, stride=2, activation="relu6")
    index = 1
    for t, c, n, s in _V2:
        for i in range(n):
            name, stride, inp = f"features.{index}", s if i == 0 else 1, x.shape[-1]
            hidden = int(round(inp * t))
            y, j = x, 0
            if t != 1:
                y = _conv_norm_activation(f, f"{name}.conv.0", y, hidden, 1, activation="relu6")
                j = 1
            y = _conv_norm_activation(f, f"{name}.conv.{j}", y, hidden, 3, stride=stride, groups=hidden,
                                      activation="relu6")
            y = f.conv(f"{name}.conv.{j + 1}", y, c, 1, bias=False, init=_CONV)
            y = f.output(f"{name}.conv", f.bn(f"{name}.conv.{j + 2}", y))
            x = f.output(name, f.add(x, y) if stride == 1 and inp == c else y)
            index += 1
    x = _conv_norm_activation(f, f"features.{index}", x, 1280, 1, activation="relu6")
    x = f.output("features", x)
    # functional adaptive_avg_pool2d and flatten, then classifier.0 (Dropout)
    return f.identity("classifier.0", flatten(f.adaptive_avg_pool(None, x, 1)))


def _v2_head(f, x):
    return f.linear("classifier.1", x, 1000, init="normal:0.01")


# MobileNetV3: (kernel, expanded, out, squeeze-excitation, activation, stride), input 16
_V3 = {
    "mobilenet_v3_large": ((
        (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2), (3, 72, 24, False, "relu", 1),
        (5, 72, 40, True, "relu", 2), (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
        (3, 240, 80, False, "hardswish", 2), (3, 200, 80, False, "hardswish", 1),
        (3, 184, 80, False, "hardswish", 1), (3, 184, 80, False, "hardswish", 1),
        (3, 480, 112, True, "hardswish", 1), (3, 672, 112, True, "hardswish", 1),
        (5, 672, 160, True, "hardswish", 2), (5, 960, 160, True, "hardswish", 1),
        (5, 960, 160, True, "hardswish", 1)), 1280),
    "mobilenet_v3_small": ((
        (3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2), (3, 88, 24, False, "relu", 1),
        (5, 96, 40, True, "hardswish", 2), (5, 240, 40, True, "hardswish", 1), (5, 240, 40, True, "hardswish", 1),
        (5, 120, 48, True, "hardswish", 1), (5, 144, 48, True, "hardswish", 1), (5, 288, 96, True, "hardswish", 2),
        (5, 576, 96, True, "hardswish", 1), (5, 576, 96, True, "hardswish", 1)), 1024),
}
_V3_EPS = 0.001


def _squeeze_excitation(f, name, x):
    squeeze = _make_divisible(x.shape[-1] // 4, 8)
    scale = f.adaptive_avg_pool(f"{name}.avgpool", x, 1)
    scale = f.relu(f"{name}.activation", f.conv(f"{name}.fc1", scale, squeeze, 1, init=_CONV))
    scale = f.hardsigmoid(f"{name}.scale_activation", f.conv(f"{name}.fc2", scale, x.shape[-1], 1, init=_CONV))
    return f.output(name, scale * x)


def _v3_body(arch):
    blocks, _ = _V3[arch]

    def body(f, x):
        x = _conv_norm_activation(f, "features.0", x, 16, 3, stride=2, activation="hardswish", eps=_V3_EPS)
        for index, (kernel, expanded, out, se, activation, stride) in enumerate(blocks, start=1):
            name, inp, y, j = f"features.{index}", x.shape[-1], x, 0
            if expanded != inp:
                y = _conv_norm_activation(f, f"{name}.block.0", y, expanded, 1, activation=activation, eps=_V3_EPS)
                j = 1
            y = _conv_norm_activation(f, f"{name}.block.{j}", y, expanded, kernel, stride=stride, groups=expanded,
                                      activation=activation, eps=_V3_EPS)
            if se:
                j += 1
                y = _squeeze_excitation(f, f"{name}.block.{j}", y)
            y = _conv_norm_activation(f, f"{name}.block.{j + 1}", y, out, 1, eps=_V3_EPS)
            y = f.output(f"{name}.block", y)
            x = f.output(name, f.add(x, y) if stride == 1 and inp == out else y)
        x = _conv_norm_activation(f, f"features.{len(blocks) + 1}", x, 6 * x.shape[-1], 1, activation="hardswish",
                                  eps=_V3_EPS)
        x = f.adaptive_avg_pool("avgpool", f.output("features", x), 1)
        x = f.hardswish("classifier.1", f.linear("classifier.0", flatten(x), _V3[arch][1], init="normal:0.01"))
        return f.identity("classifier.2", x)

    return body


def _v3_head(f, x):
    return f.linear("classifier.3", x, 1000, init="normal:0.01")


def network(arch: str) -> Network:
    if arch == "mobilenet_v2":
        return Network(name=arch, body=_v2_body, head=_v2_head, head_input="classifier.0",
                       class_layer="classifier.1", default_layer="features",
                       layers_hint="features.0 … features.18 (and their sub-modules: features.i.conv.j), features, "
                                   "classifier.0, classifier.1")
    return Network(name=arch, body=_v3_body(arch), head=_v3_head, head_input="classifier.2",
                   class_layer="classifier.3", default_layer="features",
                   layers_hint="features.0 … features.N (and features.i.block.j), features, avgpool, "
                               "classifier.0 … classifier.3")
