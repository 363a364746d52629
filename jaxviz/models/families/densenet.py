"""DenseNet-121/161/169/201, as torchvision's (its functional ``F.relu`` after the features)."""

from __future__ import annotations

from jaxviz.models.network import Network, flatten

# name → (growth rate, layers per block, initial features)
_CONFIGS = {
    "densenet121": (32, (6, 12, 24, 16), 64),
    "densenet161": (48, (6, 12, 36, 24), 96),
    "densenet169": (32, (6, 12, 32, 32), 64),
    "densenet201": (32, (6, 12, 48, 32), 64),
}
ARCHITECTURES = tuple(_CONFIGS)
_CONV = "kaiming_normal_fan_in"
_BN_SIZE = 4


def network(arch: str) -> Network:
    growth, blocks, initial = _CONFIGS[arch]

    def body(f, x):
        x = f.conv("features.conv0", x, initial, 7, stride=2, padding=3, bias=False, init=_CONV)
        x = f.relu("features.relu0", f.bn("features.norm0", x))
        x = f.max_pool("features.pool0", x, 3, 2, padding=1)
        for b, count in enumerate(blocks, start=1):
            block = f"features.denseblock{b}"
            features = [x]
            for i in range(1, count + 1):
                name = f"{block}.denselayer{i}"
                y = f.relu(f"{name}.relu1", f.bn(f"{name}.norm1", f.concat(features)))
                y = f.conv(f"{name}.conv1", y, _BN_SIZE * growth, 1, bias=False, init=_CONV)
                y = f.relu(f"{name}.relu2", f.bn(f"{name}.norm2", y))
                y = f.conv(f"{name}.conv2", y, growth, 3, padding=1, bias=False, init=_CONV)
                features.append(f.output(name, y))
            x = f.output(block, f.concat(features))
            if b < len(blocks):
                t = f"features.transition{b}"
                y = f.relu(f"{t}.relu", f.bn(f"{t}.norm", x))
                y = f.conv(f"{t}.conv", y, x.shape[-1] // 2, 1, bias=False, init=_CONV)
                x = f.output(t, f.avg_pool(f"{t}.pool", y, 2, 2))
        return f.output("features", f.bn("features.norm5", x))

    def head(f, x):
        x = f.relu(None, x)  # torchvision's functional F.relu: no module, no hook
        return f.linear("classifier", flatten(f.adaptive_avg_pool(None, x, 1)), 1000, init="default_zero_bias")

    return Network(
        name=arch, body=body, head=head, head_input="features", class_layer="classifier", default_layer="features",
        layers_hint="features.conv0, .norm0, .relu0, .pool0, features.denseblockB(.denselayerL(.norm1, .relu1, "
                    ".conv1, .norm2, .relu2, .conv2)), features.transitionT(.norm, .relu, .conv, .pool), "
                    "features.norm5, features, classifier",
    )
