"""jaxviz's SqueezeNet vs torchvision's: logits and every layer, 1.0 and 1.1, f32 and f64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxviz
from parity_tests import helpers as h

ARCHS = ["squeezenet1_1", "squeezenet1_0"]
# 224 plus sizes where ceil-mode pooling pads the bottom/right edge.
SIZES = [(224, 224), (192, 256), (227, 227), (285, 224)]


def _compare_all_layers(arch, sd, dtype, size, batch=2, seed=0):
    x = h.random_images((batch, *size, 3), seed, dtype)
    tm = h.torch_model(arch, sd, dtype)
    with h.precision(dtype):
        model = h.jax_model(arch, sd, dtype)
        names = [n for n in model.layer_names if n != "output"]
        ours = jaxviz.layer_activation(model, x, names + ["output"])
        ours = {k: np.asarray(v) for k, v in ours.items()}
    theirs = h.torch_layer_outputs(tm, h.nchw(x), names)
    with torch.no_grad():
        theirs["output"] = tm(h.nchw(x)).numpy()
    errors = {name: h.rel_err(ours[name], theirs[name]) for name in names + ["output"]}
    worst = max(errors, key=errors.get)
    assert errors[worst] <= h.TOL[dtype], f"{worst}: {errors[worst]:.3g} > {h.TOL[dtype]}"
    return errors


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", SIZES)
def test_every_layer_random_weights(arch, size, dtype):
    for seed in (0, 1):
        _compare_all_layers(arch, h.random_state_dict(arch, seed), dtype, size, seed=seed)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("arch", ARCHS)
def test_every_layer_pretrained(arch, dtype):
    _compare_all_layers(arch, h.pretrained_state_dict(arch), dtype, (224, 224), batch=3)


@pytest.mark.parametrize("arch", ARCHS)
def test_large_odd_size(arch):
    # 512×770: every pool pads on the right in ceil mode
    _compare_all_layers(arch, h.pretrained_state_dict(arch), "float64", (512, 770), batch=1)


@pytest.mark.parametrize("arch", ARCHS)
def test_minimum_size_matches_torchvision(arch):
    tm = h.torch_model(arch, h.random_state_dict(arch, 0))
    accepted = []
    for s in range(1, 30):
        try:
            with torch.no_grad():
                tm(torch.zeros(1, 3, s, s))
            accepted.append(s)
        except RuntimeError:
            pass
    assert jaxviz.models.minimum_input_size(arch) == min(accepted)
    # and at that size the numbers agree
    _compare_all_layers(arch, h.pretrained_state_dict(arch), "float64", (min(accepted),) * 2, batch=1)


def test_pretrained_real_images_logits():
    X, _ = h.course_images(8)
    x = jaxviz.preprocess(X)
    sd = h.pretrained_state_dict()
    tm = h.torch_model("squeezenet1_1", sd)
    with torch.no_grad():
        ref = tm(h.nchw(x)).numpy()
    model = h.jax_model("squeezenet1_1", sd)
    assert h.rel_err(model(x), ref) <= 1e-5
