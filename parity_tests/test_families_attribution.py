"""Every attribution method on every family against Captum, float64, random weights with
random BatchNorm statistics, two random images at a small size.

Captum's IntegratedGradients rounds its step weights to float32 and its Occlusion returns
float32 (see test_attribution_parity.py): there float64 is held to a plain float64 PyTorch
loop of the same definition (1e-9) on every family, and to Captum at 1e-6 on ResNet-18.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum import attr as ca

import jaxviz
from jaxviz.attribution import _regions
from parity_tests import helpers as h
from parity_tests.test_attribution_parity import _torch_ig_loop, _torch_occlusion_loop

pytestmark = pytest.mark.float64_only

ARCHS = ["resnet18", "vgg11_bn", "alexnet", "mobilenet_v2", "densenet121", "googlenet"]
# MobileNetV3's Hardswish and squeeze-excitation gates: the gradient methods
GRADIENT_ARCHS = ARCHS + ["mobilenet_v3_small"]
# an inner layer per family besides the default (the last convolutional block)
INNER = {"resnet18": "layer3.1.conv2", "vgg11_bn": "features.9", "alexnet": "features.7",
         "mobilenet_v2": "features.14.conv.1", "mobilenet_v3_small": "features.9.block.2",
         "densenet121": "features.transition2", "googlenet": "inception4c.branch2"}
TOL = h.ATTR_TOL["float64"]


def _setup(arch):
    return h.random_case(arch)


def _compare(arch, ours_fn, theirs_fn, tol=TOL):
    model, tm, x, target = _setup(arch)
    with h.precision("float64"):
        ours = np.asarray(ours_fn(model, x, target))
    theirs = theirs_fn(tm, h.nchw(x).requires_grad_(), torch.from_numpy(target))
    return h.assert_close(ours, h.nhwc(theirs), tol, arch)


@pytest.mark.parametrize("arch", GRADIENT_ARCHS)
def test_saliency(arch):
    _compare(arch, jaxviz.saliency, lambda tm, x, t: ca.Saliency(tm).attribute(x, target=t))


@pytest.mark.parametrize("arch", GRADIENT_ARCHS)
def test_guided_backprop_as_captum(arch):
    """Captum guides the nn.ReLU modules only (not ReLU6, Hardswish or a functional ReLU);
    guided=True does the same (on GoogLeNet, whose ReLUs are all functional, it is the
    plain gradient)."""
    _compare(arch, jaxviz.guided_backprop, lambda tm, x, t: ca.GuidedBackprop(tm).attribute(x, target=t))


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_gradcam(arch):
    # at the default layer; an inner layer of each family is taken by test_layer_conductance
    layer = _setup(arch)[0].architecture.default_layer
    _compare(arch, lambda m, x, t: jaxviz.layer_gradcam(m, x, t, layer=layer),
             lambda tm, x, t: ca.LayerGradCam(tm, tm.get_submodule(layer)).attribute(x, target=t))


@pytest.mark.parametrize("arch", ARCHS)
def test_guided_gradcam(arch):
    layer = _setup(arch)[0].architecture.default_layer
    _compare(arch, lambda m, x, t: jaxviz.guided_gradcam(m, x, t, interpolate_mode="bilinear"),
             lambda tm, x, t: ca.GuidedGradCam(tm, tm.get_submodule(layer)).attribute(
                 x, target=t, interpolate_mode="bilinear"))


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_conductance(arch):
    layer = INNER[arch]
    _compare(arch, lambda m, x, t: jaxviz.layer_conductance(m, x, t, layer=layer, n_steps=6),
             lambda tm, x, t: ca.LayerConductance(tm, tm.get_submodule(layer)).attribute(x, target=t, n_steps=6))


@pytest.mark.parametrize("arch", ARCHS)
def test_integrated_gradients(arch):
    baselines = np.random.default_rng(8).normal(0, 0.3, _setup(arch)[2].shape)
    ours = lambda m, x, t: jaxviz.integrated_gradients(m, x, t, baselines=baselines, n_steps=7)  # noqa: E731
    _compare(arch, ours, lambda tm, x, t: _torch_ig_loop(tm, x, t, h.nchw(baselines), 7, "gausslegendre"))
    if arch == ARCHS[0]:  # Captum itself (float32 step weights) once; SqueezeNet's tests sweep it
        _compare(arch, ours, lambda tm, x, t: ca.IntegratedGradients(tm).attribute(
            x, baselines=h.nchw(baselines), target=t, n_steps=7), tol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_occlusion(arch):
    """On crops (``regions="always"``): each family's layers below a cut evaluated around
    each window alone, pasted into the whole image's and resumed (whole images: the
    SqueezeNet tests)."""
    window, strides = (12, 14, 3), (9, 11, 3)
    model, _, x, _ = _setup(arch)
    with h.precision("float64"):
        assert _regions.window_plan(model, x.shape[1:], window, strides, most_cost=np.inf) is not None
    ours = lambda m, x, t: jaxviz.occlusion(m, x, t, sliding_window_shapes=window, strides=strides,  # noqa: E731
                                            regions="always")
    _compare(arch, ours, lambda tm, x, t: _torch_occlusion_loop(tm, x, t, (3, 12, 14), (3, 9, 11), torch.zeros_like(x)))
    if arch == ARCHS[0]:  # Captum itself (float32 output) once; SqueezeNet's tests sweep it
        _compare(arch, ours, lambda tm, x, t: ca.Occlusion(tm).attribute(
            x, sliding_window_shapes=(3, 12, 14), strides=(3, 9, 11), target=t), tol=1e-6)


def _all_guided_copy(tm):
    """A copy of ``tm`` with every ReLU / ReLU6 / Hardswish module replaced (no hooks)."""
    kinds = {torch.nn.ReLU6: "relu6", torch.nn.ReLU: "relu", torch.nn.Hardswish: "hardswish"}
    return h.modules_replaced(tm, lambda m: h.guided_activation(kinds[type(m)]) if type(m) in kinds else None)


@pytest.mark.parametrize("arch", ["resnet18", "densenet121", "mobilenet_v2", "mobilenet_v3_small"])
def test_guided_backprop_all_rule_against_a_hook_free_reference(arch):
    """rule="all": every ReLU-like activation (functional ReLUs, ReLU6, Hardswish) gets the
    guided backward max(f'(x)·g, 0).  The reference is the torch model with those modules
    replaced by autograd Functions, and DenseNet's functional ReLU written out."""
    model, tm, x, target = _setup(arch)
    guided_tm = _all_guided_copy(tm)
    if arch == "densenet121":
        def forward(v):  # torchvision's DenseNet.forward with its F.relu guided
            features = h.guided_activation("relu")(guided_tm.features(v))
            return guided_tm.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(features, 1), 1))
    else:
        forward = guided_tm
    xt = h.nchw(x).requires_grad_()
    score = forward(xt).gather(1, torch.from_numpy(target).view(-1, 1)).sum()
    (theirs,) = torch.autograd.grad(score, xt)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.guided_backprop(model, x, target, rule="all"))
    h.assert_close(ours, h.nhwc(theirs), TOL, arch)
    if arch != "resnet18":  # where the rules differ, the test can tell them apart
        with h.precision("float64"):
            captum_rule = np.asarray(jaxviz.guided_backprop(model, x, target))
        assert h.rel_err(captum_rule, h.nhwc(theirs)) > 1e-3
