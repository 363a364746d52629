"""ResNet-18/34/50/101/152, ResNeXt-50 32×4d and Wide ResNet-50-2, as torchvision's."""

from __future__ import annotations

from jaxviz.models.network import Network, flatten

_CONV = "kaiming_normal_fan_out"

# name → (block, blocks per stage, groups, width per group)
_CONFIGS = {
    "resnet18": ("basic", (2, 2, 2, 2), 1, 64),
    "resnet34": ("basic", (3, 4, 6, 3), 1, 64),
    "resnet50": ("bottleneck", (3, 4, 6, 3), 1, 64),
    "resnet101": ("bottleneck", (3, 4, 23, 3), 1, 64),
    "resnet152": ("bottleneck", (3, 8, 36, 3), 1, 64),
    "resnext50_32x4d": ("bottleneck", (3, 4, 6, 3), 32, 4),
    "wide_resnet50_2": ("bottleneck", (3, 4, 6, 3), 1, 128),
}
ARCHITECTURES = tuple(_CONFIGS)


def _basic(f, name, x, planes, stride, groups, width_per_group):
    identity = x
    out = f.conv(f"{name}.conv1", x, planes, 3, stride=stride, padding=1, bias=False, init=_CONV)
    out = f.relu(f"{name}.relu", f.bn(f"{name}.bn1", out))
    out = f.bn(f"{name}.bn2", f.conv(f"{name}.conv2", out, planes, 3, padding=1, bias=False, init=_CONV))
    if stride != 1 or x.shape[-1] != planes:
        identity = _downsample(f, name, x, planes, stride)
    return f.output(name, f.relu(f"{name}.relu", f.add(out, identity)))


def _bottleneck(f, name, x, planes, stride, groups, width_per_group):
    width = int(planes * (width_per_group / 64.0)) * groups
    identity = x
    out = f.relu(f"{name}.relu", f.bn(f"{name}.bn1", f.conv(f"{name}.conv1", x, width, 1, bias=False, init=_CONV)))
    out = f.conv(f"{name}.conv2", out, width, 3, stride=stride, padding=1, groups=groups, bias=False, init=_CONV)
    out = f.relu(f"{name}.relu", f.bn(f"{name}.bn2", out))
    out = f.bn(f"{name}.bn3", f.conv(f"{name}.conv3", out, planes * 4, 1, bias=False, init=_CONV))
    if stride != 1 or x.shape[-1] != planes * 4:
        identity = _downsample(f, name, x, planes * 4, stride)
    return f.output(name, f.relu(f"{name}.relu", f.add(out, identity)))


def _downsample(f, name, x, channels, stride):
    y = f.conv(f"{name}.downsample.0", x, channels, 1, stride=stride, bias=False, init=_CONV)
    return f.output(f"{name}.downsample", f.bn(f"{name}.downsample.1", y))


def network(arch: str) -> Network:
    block, counts, groups, width_per_group = _CONFIGS[arch]
    make_block = _basic if block == "basic" else _bottleneck

    def body(f, x):
        x = f.bn("bn1", f.conv("conv1", x, 64, 7, stride=2, padding=3, bias=False, init=_CONV))
        x = f.max_pool("maxpool", f.relu("relu", x), 3, 2, padding=1)
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), counts), start=1):
            for i in range(count):
                stride = 2 if stage > 1 and i == 0 else 1
                x = make_block(f, f"layer{stage}.{i}", x, planes, stride, groups, width_per_group)
            x = f.output(f"layer{stage}", x)
        return f.adaptive_avg_pool("avgpool", x, 1)

    def head(f, x):
        return f.linear("fc", flatten(x), 1000)

    return Network(
        name=arch, body=body, head=head, head_input="avgpool", class_layer="fc", default_layer="layer4",
        layers_hint="conv1, bn1, relu, maxpool, layer1 … layer4 (blocks layerS.i and their convK, bnK, "
                    "relu, downsample.0/.1), avgpool, fc",
    )
