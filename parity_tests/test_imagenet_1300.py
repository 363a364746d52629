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


@pytest.mark.parametrize("arch", list(EXPECTED_TOP1))
def test_top1_agrees_on_all_1300_images(arch, record_property):
    images, labels = _load_1300()
    assert len(images) == 1300
    sd = h.pretrained_state_dict(arch)
    model = h.jax_model(arch, sd)
    tm = h.torch_model(arch, sd)
    ours, theirs = [], []
    for start in range(0, len(images), 100):
        # the course's preprocessing: short side resized to 224 (PIL bilinear), normalised
        x = jaxviz.preprocess(images[start : start + 100], size=224)
        ours.append(np.asarray(model(x)).argmax(-1))
        with torch.no_grad():
            theirs.append(tm(h.nchw(x)).numpy().argmax(-1))
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    disagree = np.flatnonzero(ours != theirs)
    assert disagree.size == 0, f"top-1 differs on images {disagree.tolist()}"
    accuracy = float((ours == labels).mean())
    record_property("top1_accuracy", accuracy)
    print(f"{arch} top-1 accuracy on 1300 images: {accuracy:.4f}")
    assert abs(accuracy - EXPECTED_TOP1[arch]) <= 0.01
