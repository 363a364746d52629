"""The sanity check of Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS 2018) on
the real pretrained networks: randomise the logits' layer (the top step of the cascading
model-parameter randomisation test) and compare each method's maps with the trained
model's.  Guided backprop and guided GradCAM barely change — they show the image's edges
more than what the network uses — while saliency and GradCAM do change.

Measured (5 course images at 224, key 0; Spearman of |map| / SSIM, means):

=================  ===========================  ===========================
method             SqueezeNet 1.1               MobileNetV2
=================  ===========================  ===========================
saliency           0.64 / 0.59                  0.57 / 0.48
GradCAM            0.14 / 0.17                  0.24 / 0.17
guided backprop    0.96 / 0.93                  1.00 / 1.00 (``rule="all"``)
guided GradCAM     0.25 / 0.82                  0.29 / 0.69 (``rule="all"``)
=================  ===========================  ===========================

Guided GradCAM's ranks follow GradCAM's coarse map, which changes, but its picture (SSIM)
keeps guided backprop's edges.  On MobileNetV2 the textbook guided backprop is used
(``rule="all"``): its activations are ``ReLU6`` modules, which Captum's ``GuidedBackprop``
(jaxviz's default, ``rule="modules"``) leaves alone, so there the default is the plain
gradient.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

import jaxviz
from jaxviz.metrics.mprt import parameter_layers
from parity_tests import helpers as h

RULES = {"squeezenet1_1": "modules", "mobilenet_v2": "all"}


@pytest.mark.parametrize("arch", sorted(RULES))
def test_guided_methods_barely_change_when_the_top_layer_is_randomised(arch):
    model = jaxviz.from_torchvision(h.pretrained_state_dict(arch), arch)
    X, y = h.course_images(3)
    x = jaxviz.preprocess(X)
    top = tuple(reversed(parameter_layers(model)))[:1]
    methods = {"saliency": jaxviz.saliency, "gradcam": jaxviz.gradcam,
               "guided_backprop": functools.partial(jaxviz.guided_backprop, rule=RULES[arch]),
               "guided_gradcam": functools.partial(jaxviz.guided_gradcam, rule=RULES[arch])}
    scores = {}
    for name, method in methods.items():
        result = jaxviz.metrics.mprt(model, x, y, method, key=jax.random.key(0), layers=top,
                                     measures=("spearman_abs", "ssim"))
        scores[name] = {m: float(np.nanmean(np.asarray(v)[1])) for m, v in result.similarity.items()}
    print(arch, {k: {m: round(v, 2) for m, v in s.items()} for k, s in scores.items()})
    changed = {m: max(scores["saliency"][m], scores["gradcam"][m]) for m in ("spearman_abs", "ssim")}
    assert scores["guided_backprop"]["spearman_abs"] > changed["spearman_abs"] + 0.25
    assert scores["guided_backprop"]["ssim"] > changed["ssim"] + 0.25
    assert scores["guided_gradcam"]["ssim"] > changed["ssim"] + 0.15
