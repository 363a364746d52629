"""SqueezeNet 1.0 and 1.1, numerically torchvision's ``squeezenet1_0`` / ``squeezenet1_1``."""

from __future__ import annotations

from jaxviz.models.network import Network, flatten

# (kind, arguments) per entry of torchvision's ``features`` Sequential.
#   ("conv", out_channels, kernel, stride) · ("relu",) · ("pool",) · ("fire", squeeze, e1x1, e3x3)
_FEATURES = {
    "squeezenet1_0": (
        ("conv", 96, 7, 2), ("relu",), ("pool",),
        ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("fire", 32, 128, 128), ("pool",),
        ("fire", 32, 128, 128), ("fire", 48, 192, 192), ("fire", 48, 192, 192), ("fire", 64, 256, 256),
        ("pool",), ("fire", 64, 256, 256),
    ),
    "squeezenet1_1": (
        ("conv", 64, 3, 2), ("relu",), ("pool",),
        ("fire", 16, 64, 64), ("fire", 16, 64, 64), ("pool",),
        ("fire", 32, 128, 128), ("fire", 32, 128, 128), ("pool",),
        ("fire", 48, 192, 192), ("fire", 48, 192, 192), ("fire", 64, 256, 256), ("fire", 64, 256, 256),
    ),
}


def _body(specs):
    def body(f, x):
        for i, spec in enumerate(specs):
            name = f"features.{i}"
            if spec[0] == "conv":
                x = f.conv(name, x, spec[1], spec[2], stride=spec[3], init="kaiming_uniform")
            elif spec[0] == "relu":
                x = f.relu(name, x)
            elif spec[0] == "pool":
                x = f.max_pool(name, x, 3, 2, ceil_mode=True)
            else:
                _, squeeze, e1, e3 = spec
                s = f.conv(f"{name}.squeeze", x, squeeze, 1, init="kaiming_uniform")
                s = f.relu(f"{name}.squeeze_activation", s)
                a = f.relu(f"{name}.expand1x1_activation", f.conv(f"{name}.expand1x1", s, e1, 1, init="kaiming_uniform"))
                b = f.relu(f"{name}.expand3x3_activation",
                           f.conv(f"{name}.expand3x3", s, e3, 3, padding=1, init="kaiming_uniform"))
                x = f.output(name, f.concat([a, b]))
        return f.output("features", x)
    return body


def _head(f, x):
    x = f.identity("classifier.0", x)  # Dropout: identity in eval mode
    x = f.conv("classifier.1", x, 1000, 1, init="normal:0.01")
    x = f.relu("classifier.2", x)
    x = f.adaptive_avg_pool("classifier.3", x, 1)
    return flatten(x)


def network(arch: str) -> Network:
    specs = _FEATURES[arch]
    last = len(specs) - 1
    return Network(
        name=arch, body=_body(specs), head=_head, head_input="features", class_layer="classifier.1",
        default_layer=f"features.{last}",
        # classifier.2's upstream gradient is the target's channel averaged over positions:
        # never negative, so guided and standard backward passes agree there
        monotone_relus=frozenset({"classifier.2"}),
        feature_layers=tuple(f"features.{i}" for i in range(len(specs))),
        style_content_layer="features.3",  # the course's Gatys layers
        style_layers=("features.1", "features.4", "features.6", "features.7"),
        style_weights=(300000, 1000, 15, 3),
        layers_hint=(f"features.0 … features.{last} (Fire blocks also features.i.squeeze, .expand1x1, "
                     ".expand3x3 and their _activation), classifier.0 … classifier.3"),
    )


ARCHITECTURES = tuple(_FEATURES)
