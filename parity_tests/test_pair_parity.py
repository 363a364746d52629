"""Google PAIR's ``saliency`` (0.2.1, framework-agnostic) driven by the PyTorch model: the
same weights, inputs and targets, float64 throughout (its blur is SciPy's on float64).
Random weights with random BatchNorm statistics, two random images at 40×43."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import saliency.core as pair

import jaxviz
from parity_tests import helpers as h
from parity_tests import pair_reference

pytestmark = pytest.mark.float64_only

TOL64 = h.ATTR_TOL["float64"]


# max_sigma 12 reaches 48 pixels, past the 40×43 image (the kernel's normalisation counts
# the zeros outside); sqrt spacing with one step per call (PAIR weights a batch of steps by
# the last one's Δσ)
@pytest.mark.parametrize("arch,options", [
    ("squeezenet1_1", {"max_sigma": 12.0, "steps": 6}),
    ("resnet18", {"max_sigma": 4.0, "steps": 5, "sqrt": True, "grad_step": 0.05}),
])
def test_blur_ig_equals_pair(arch, options):
    model, tm, x, target = h.random_case(arch)
    with h.precision("float64"):
        run = functools.partial(jaxviz.blur_ig, **options)
        ours = np.asarray(run(model, x, target, internal_batch_size=4))  # steps in chunks, the last padded
        whole = np.asarray(run(model, x, target, internal_batch_size=None)) if arch == "squeezenet1_1" else ours
    expected = pair_reference.masks(pair.BlurIG(), tm, x, target, batch_size=1, **options)
    h.assert_close(ours, expected, TOL64, f"{arch} blur_ig")
    h.assert_close(whole, expected, TOL64, f"{arch} blur_ig, every step at once")


@pytest.mark.parametrize("arch,options", [
    ("squeezenet1_1", {"steps": 8, "fraction": 0.25, "max_dist": 0.1}),
    ("resnet18", {"steps": 6, "fraction": 0.4, "max_dist": 0.02, "baselines": 0.3}),
])
def test_guided_ig_equals_pair(arch, options):
    model, tm, x, target = h.random_case(arch)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.guided_ig(model, x, target, **options))
    pair_options = {("x_steps" if k == "steps" else k): v for k, v in options.items() if k != "baselines"}
    baseline = np.full(x.shape[1:], options.get("baselines", 0.0))
    with pair_reference.quantile_interpolation():
        expected = pair_reference.masks(pair.GuidedIG(), tm, x, target, x_baseline=baseline, **pair_options)
    h.assert_close(ours, expected, TOL64, f"{arch} guided_ig")
