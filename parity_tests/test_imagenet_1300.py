"""Top-1 on the 1300 ImageNet validation images: jaxviz and torchvision agree on every image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxviz
from parity_tests import helpers as h


def _load_1300():
    folder = h.shared_path("data", "imagenet_val_1300")
    rows = [line.split("\t") for line in (folder / "labels.tsv").read_text().splitlines()[1:] if line.strip()]
    images = np.stack([jaxviz.load_image(folder / name) for name, _ in rows])
    return images, np.array([int(label) for _, label in rows])


EXPECTED_TOP1 = {"squeezenet1_1": 0.685, "mobilenet_v2": 0.783}  # ../shared/README.md


@pytest.mark.runs_long
def test_top1_agrees_on_all_1300_images(record_property):
    """Both pretrained networks in one pass over the images (each batch decoded and
    resized once)."""
    images, labels = _load_1300()
    assert len(images) == 1300
    models = {}
    for arch in EXPECTED_TOP1:
        sd = h.pretrained_state_dict(arch)
        # channels_last: torchvision's fastest CPU layout (1.6-1.8x the default's speed here)
        models[arch] = (h.jax_model(arch, sd), h.torch_model(arch, sd).to(memory_format=torch.channels_last))
    ours, theirs = {arch: [] for arch in models}, {arch: [] for arch in models}
    for start in range(0, len(images), 100):
        # the course's preprocessing: short side resized to 224 (PIL bilinear), normalised
        x = jaxviz.preprocess(images[start : start + 100], size=224)
        for arch, (model, tm) in models.items():
            ours[arch].append(np.asarray(model(x)).argmax(-1))
            with torch.no_grad():
                theirs[arch].append(tm(h.nchw(x).contiguous(memory_format=torch.channels_last)).numpy().argmax(-1))
    for arch in models:
        mine, torchvision = np.concatenate(ours[arch]), np.concatenate(theirs[arch])
        disagree = np.flatnonzero(mine != torchvision)
        assert disagree.size == 0, f"{arch}: top-1 differs on images {disagree.tolist()}"
        accuracy = float((mine == labels).mean())
        record_property(f"{arch}_top1_accuracy", accuracy)
        print(f"{arch} top-1 accuracy on 1300 images: {accuracy:.4f}")
        assert abs(accuracy - EXPECTED_TOP1[arch]) <= 0.01, arch
