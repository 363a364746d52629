"""VGG-11/13/16/19 with and without BatchNorm, and AlexNet, as torchvision's."""

from __future__ import annotations

from jaxviz.models.network import Network, flatten

_CFGS = {
    "11": (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "13": (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    "16": (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"),
    "19": (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"),
}
VGG_ARCHITECTURES = tuple(f"vgg{depth}{bn}" for depth in _CFGS for bn in ("", "_bn"))
ARCHITECTURES = VGG_ARCHITECTURES + ("alexnet",)


def _vgg(arch: str) -> Network:
    depth = arch[3:5]
    batch_norm = arch.endswith("_bn")
    cfg = _CFGS[depth]

    def body(f, x):
        i = 0
        for v in cfg:
            if v == "M":
                x = f.max_pool(f"features.{i}", x, 2, 2)
                i += 1
                continue
            x = f.conv(f"features.{i}", x, v, 3, padding=1, init="kaiming_normal_fan_out")
            i += 1
            if batch_norm:
                x = f.bn(f"features.{i}", x)
                i += 1
            x = f.relu(f"features.{i}", x)
            i += 1
        x = f.adaptive_avg_pool("avgpool", f.output("features", x), 7)
        x = f.relu("classifier.1", f.linear("classifier.0", flatten(x), 4096, init="normal:0.01"))
        x = f.identity("classifier.2", x)
        x = f.relu("classifier.4", f.linear("classifier.3", x, 4096, init="normal:0.01"))
        return f.identity("classifier.5", x)

    def head(f, x):
        return f.linear("classifier.6", x, 1000, init="normal:0.01")

    # the ReLU after each convolution, by Gatys's names (conv<block>_<index>)
    names = []
    i, block, index = 0, 1, 1
    for v in cfg:
        if v == "M":
            i, block, index = i + 1, block + 1, 1
            continue
        i += 2 if batch_norm else 1
        names.append((f"conv{block}_{index}", f"features.{i}"))
        i, index = i + 1, index + 1
    gatys = dict(names)
    return Network(
        name=arch, body=body, head=head, head_input="classifier.5", class_layer="classifier.6",
        default_layer="features",  # the last max-pool's output
        style_content_layer=gatys["conv4_2"],
        style_layers=tuple(gatys[n] for n in ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1")),
        style_weights=(2e5,) * 5,  # Gatys's equal weights (w_l = 1/5), at the course's scale
        layers_hint=f"features.0 … features.{i} (conv, {'BatchNorm, ' if batch_norm else ''}ReLU, max-pool), "
                    "features, avgpool, classifier.0 … classifier.6",
    )


def _alexnet_body(f, x):
    x = f.relu("features.1", f.conv("features.0", x, 64, 11, stride=4, padding=2))
    x = f.max_pool("features.2", x, 3, 2)
    x = f.relu("features.4", f.conv("features.3", x, 192, 5, padding=2))
    x = f.max_pool("features.5", x, 3, 2)
    x = f.relu("features.7", f.conv("features.6", x, 384, 3, padding=1))
    x = f.relu("features.9", f.conv("features.8", x, 256, 3, padding=1))
    x = f.relu("features.11", f.conv("features.10", x, 256, 3, padding=1))
    x = f.output("features", f.max_pool("features.12", x, 3, 2))
    x = f.identity("classifier.0", flatten(f.adaptive_avg_pool("avgpool", x, 6)))
    x = f.relu("classifier.2", f.linear("classifier.1", x, 4096))
    x = f.identity("classifier.3", x)
    return f.relu("classifier.5", f.linear("classifier.4", x, 4096))


def _alexnet_head(f, x):
    return f.linear("classifier.6", x, 1000)


def network(arch: str) -> Network:
    if arch == "alexnet":
        return Network(
            name=arch, body=_alexnet_body, head=_alexnet_head, head_input="classifier.5", class_layer="classifier.6",
            default_layer="features",
            layers_hint="features.0 … features.12, features, avgpool, classifier.0 … classifier.6",
        )
    return _vgg(arch)
