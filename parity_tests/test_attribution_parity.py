"""Every attribution method vs Captum (and the course's manual PyTorch code) on the same
inputs and weights.  Tolerances: float64 1e-9, float32 1e-4 (max|Δ|/max|ref|) unless noted."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum import attr as ca

import jaxviz
from parity_tests import helpers as h

CASES = ["pretrained", "random"]
DTYPES = ["float32", "float64"]


def _t(target):
    return torch.from_numpy(np.asarray(target))


def _run(case, dtype, ours_fn, theirs_fn, *, tol=None, what=""):
    with h.precision(dtype):
        model, tm, x, target = h.setup(case, dtype)
        ours = np.asarray(ours_fn(model, x, target))
    xt = h.nchw(x).requires_grad_()
    theirs = h.nhwc(theirs_fn(tm, xt, _t(target)))
    return h.assert_close(ours, theirs, tol or h.ATTR_TOL[dtype], what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("absolute", [True, False])
def test_saliency(case, dtype, absolute):
    _run(case, dtype, lambda m, x, t: jaxviz.saliency(m, x, t, abs=absolute),
         lambda tm, x, t: ca.Saliency(tm).attribute(x, target=t, abs=absolute))


def _course_saliency(tm, x, t):
    # the course's compute_saliency_maps
    scores = tm(x).gather(1, t.view(-1, 1)).squeeze()
    scores.backward(torch.ones_like(scores))
    return x.grad.abs().max(dim=1)[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_saliency_map_course(case, dtype):
    _run(case, dtype, jaxviz.saliency_map, _course_saliency)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_guided_backprop(case, dtype):
    _run(case, dtype, jaxviz.guided_backprop, lambda tm, x, t: ca.GuidedBackprop(tm).attribute(x, target=t))


LAYERS = ["features.12", "features.7", "features.5", "features.3.squeeze"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("relu", [False, True])
def test_layer_gradcam(case, dtype, layer, relu):
    def theirs(tm, x, t):
        return ca.LayerGradCam(tm, tm.get_submodule(layer)).attribute(x, target=t, relu_attributions=relu)

    _run(case, dtype, lambda m, x, t: jaxviz.layer_gradcam(m, x, t, layer, relu_attributions=relu), theirs)


def _course_gradcam(tm, x, t):
    # the course's manual GradCAM at features.12 (hooks for activation and gradient)
    saved = {}
    layer = tm.features[12]
    h1 = layer.register_forward_hook(lambda m, i, o: saved.__setitem__("act", o))
    h2 = layer.register_full_backward_hook(lambda m, gi, go: saved.__setitem__("grad", go[0]))
    scores = tm(x).gather(1, t.view(-1, 1)).squeeze()
    scores.backward(torch.ones_like(scores))
    h1.remove(), h2.remove()
    alpha = saved["grad"].mean(dim=(2, 3))
    cam = torch.relu((alpha[:, :, None, None] * saved["act"]).sum(dim=1))
    return cam.detach()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_gradcam_course(case, dtype):
    _run(case, dtype, jaxviz.gradcam, _course_gradcam)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("layer", ["features.12", "features.7"])
def test_guided_gradcam(case, dtype, mode, layer):
    def theirs(tm, x, t):
        return ca.GuidedGradCam(tm, tm.get_submodule(layer)).attribute(x, target=t, interpolate_mode=mode)

    _run(case, dtype, lambda m, x, t: jaxviz.guided_gradcam(m, x, t, layer, interpolate_mode=mode), theirs)


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic"])
@pytest.mark.parametrize("sizes", [(13, 224), (3, 61), (7, 75), (6, 12), (9, 4)])
def test_interpolation_matches_f_interpolate(mode, sizes):
    from jaxviz.attribution._common import interpolate

    src, dst = sizes
    maps = np.random.default_rng(src).normal(size=(2, src, src + 1, 1))
    with h.precision("float64"):
        ours = np.asarray(interpolate(maps, (dst, dst + 3), mode))
    theirs = torch.nn.functional.interpolate(h.nchw(maps), size=(dst, dst + 3), mode=mode)
    h.assert_close(ours, h.nhwc(theirs), 1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("layer", ["features.12", "features.3", "features.2"])
def test_layer_activation(case, dtype, layer):
    def theirs(tm, x, t):
        return ca.LayerActivation(tm, tm.get_submodule(layer)).attribute(x.detach())

    _run(case, dtype, lambda m, x, t: jaxviz.layer_activation(m, x, layer), theirs, tol=h.TOL[dtype])


def _conductance(layer):
    def ours(m, x, t):
        # internal_batch_size=4 forces several chunks with padding (8 steps + 1 point)
        return jaxviz.layer_conductance(m, x, t, layer, n_steps=8, internal_batch_size=4)

    def theirs(tm, x, t):
        return ca.LayerConductance(tm, tm.get_submodule(layer)).attribute(x, target=t, n_steps=8)

    return ours, theirs


CONDUCTANCE_CASES = [
    (case, dtype, layer)
    for case in CASES
    for dtype in DTYPES
    for layer in ("features.12", "features.7", "features.3")
    # float32 at features.3 on real images: see test_layer_conductance_features3_float32
    if (case, dtype, layer) != ("pretrained", "float32", "features.3")
]


@pytest.mark.parametrize("case, dtype, layer", CONDUCTANCE_CASES)
def test_layer_conductance(case, dtype, layer):
    _run(case, dtype, *_conductance(layer))


def test_layer_conductance_features3_float32():
    """At features.3 on real images, conductance sums differences of nearly equal activations
    and float32 itself is only good to ~4e-4 there: PyTorch's own float32 result is
    4.3e-4 from its float64 result.  So the float32 criterion here is: jaxviz float32 is at
    least as close to the float64 truth as PyTorch float32 is (float64 parity is 1e-9 above)."""
    ours_fn, theirs_fn = _conductance("features.3")
    results = {}
    for dtype in DTYPES:
        with h.precision(dtype):
            model, tm, x, target = h.setup("pretrained", dtype)
            ours = np.asarray(ours_fn(model, x, target))
        results[dtype] = ours, h.nhwc(theirs_fn(tm, h.nchw(x).requires_grad_(), _t(target)))
    truth = results["float64"][1]
    ours32, torch32 = results["float32"]
    assert h.rel_err(results["float64"][0], truth) <= 1e-9
    assert h.rel_err(ours32, truth) <= h.rel_err(torch32, truth)
