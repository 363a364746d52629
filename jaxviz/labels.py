"""ImageNet class names in torchvision's order."""

from __future__ import annotations

import functools


@functools.cache
def class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names, index = class (from torchvision's weight metadata)."""
    from torchvision.models import SqueezeNet1_1_Weights

    return tuple(SqueezeNet1_1_Weights.IMAGENET1K_V1.meta["categories"])
