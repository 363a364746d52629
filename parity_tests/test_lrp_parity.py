"""LRP against zennit: its five composites with its canonizers, every rule, and no canonizers,
on SqueezeNet 1.1, ResNet-18, VGG-11-BN and MobileNetV2, float64, random weights with random
BatchNorm statistics, two random images at a small size.

zennit's canonizers (``VGGCanonizer``, ``ResNetCanonizer``, ``SequentialMergeBatchNorm``
for MobileNetV2, which has no canonizer of its own and so keeps its residual sums plain)
merge each BatchNorm into the convolution before it and leave the BatchNorm as
``(x − 0) / √(1 + eps) · 1 + 0``: not quite the identity, it scales every merged layer's
output and relevance by (1 + 10⁻⁵)^-½.  The reference here sets those BatchNorms' eps to 0
after merging, so that they are the identity the canonizer means (jaxviz's merged
BatchNorm is); ``test_zennits_merged_batch_norm_keeps_its_eps`` shows the difference.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from zennit import attribution as za, canonizers as zc, composites as zcomp, core as zcore, rules as zr
from zennit.torchvision import ResNetCanonizer, VGGCanonizer
from zennit.types import Convolution

import jaxviz
from jaxviz.attribution.lrp import composite_named
from jaxviz.models import relevance
from parity_tests import helpers as h

pytestmark = pytest.mark.float64_only

TOL = h.ATTR_TOL["float64"]
LOW, HIGH = -jaxviz.images.MEAN / jaxviz.images.STD, (1 - jaxviz.images.MEAN) / jaxviz.images.STD


def _canonizers(arch):
    return {"squeezenet1_1": [], "resnet18": [ResNetCanonizer()], "vgg11_bn": [VGGCanonizer()],
            "mobilenet_v2": [zc.SequentialMergeBatchNorm()]}[arch]


def _bounds(values):
    return torch.tensor(np.asarray(values, np.float64))[None, :, None, None]


ZENNIT_COMPOSITES = {
    "epsilon_plus": lambda canonizers: zcomp.EpsilonPlus(canonizers=canonizers),
    "epsilon_plus_flat": lambda canonizers: zcomp.EpsilonPlusFlat(canonizers=canonizers),
    "epsilon_gamma_box": lambda canonizers: zcomp.EpsilonGammaBox(low=_bounds(LOW), high=_bounds(HIGH),
                                                                  canonizers=canonizers),
    "epsilon_alpha2_beta1": lambda canonizers: zcomp.EpsilonAlpha2Beta1(canonizers=canonizers),
    "epsilon_alpha2_beta1_flat": lambda canonizers: zcomp.EpsilonAlpha2Beta1Flat(canonizers=canonizers),
}


def _zennit(arch, x, target, composite, exact_merge=True):
    """zennit's ``Gradient`` attributor with a one-hot output relevance, on a fresh copy of
    the random-weight torch model (canonizers change its parameters while registered)."""
    tm = h.torch_model(arch, h.random_state_dict(arch, 3), "float64")
    xt = h.nchw(x).requires_grad_()
    onehot = torch.eye(1000, dtype=torch.float64)[torch.from_numpy(target)]
    with za.Gradient(tm, composite) as attributor:
        if exact_merge:
            for module in tm.modules():
                if isinstance(module, torch.nn.BatchNorm2d) and bool((module.running_var == 1).all()) and bool(
                        (module.running_mean == 0).all()):
                    module.eps = 0.0
        _, relevance_ = attributor(xt, onehot)
    return h.nhwc(relevance_)


def _ours(arch, composite):
    model, _, x, target = h.random_case(arch)
    with h.precision("float64"):
        return np.asarray(jaxviz.lrp(model, x, target, composite=composite)), x, target


# VGG-11-BN's and MobileNetV2's composites run under make test-exhaustive: their rules are
# the same code as ResNet-18's (canonizers merge every BatchNorm) and MobileNetV2's plain
# residual sums are tested by test_without_canonizers; MobileNetV2's took 111–690 s.
@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet18", *h.exhaustive("vgg11_bn", "mobilenet_v2")])
def test_composites_equal_zennits(arch):
    errors = {}
    for name, make in ZENNIT_COMPOSITES.items():
        composite = composite_named(name)
        if arch == "mobilenet_v2":  # zennit has no MobileNet canonizer: its sums stay plain
            composite = dataclasses.replace(composite, residual_sums=False)
        ours, x, target = _ours(arch, composite)
        errors[name] = h.assert_close(ours, _zennit(arch, x, target, make(_canonizers(arch))), TOL, f"{arch} {name}")
        # relevance is conserved up to the biases and stabilisers: about one per image
        assert np.all(np.abs(ours.sum(axis=(1, 2, 3))) > 0.05), (name, ours.sum(axis=(1, 2, 3)))
    print(arch, errors)


# every rule at the convolutions (the first convolution zᴮ), ε at the linear layers, with
# parameters away from the composites' defaults
RULES = [
    (relevance.epsilon(0.01), zr.Epsilon(epsilon=0.01)),
    (relevance.zplus(1e-3), zr.ZPlus(stabilizer=1e-3)),
    (relevance.alpha_beta(3, 2), zr.AlphaBeta(alpha=3, beta=2)),
    (relevance.gamma(0.7), zr.Gamma(gamma=0.7)),
    (relevance.flat(), zr.Flat()),
    (relevance.wsquare(), zr.WSquare()),
]


@pytest.mark.parametrize("arch", ["resnet18", *h.exhaustive("vgg11_bn")])
def test_every_rule_equals_zennits(arch):
    low, high = LOW * 1.5, HIGH * 0.8
    for ours_rule, their_rule in RULES:
        composite = relevance.Composite(conv=ours_rule, linear=relevance.epsilon(0.1),
                                        first=relevance.zbox(low, high, 1e-5))
        theirs = zcomp.SpecialFirstLayerMapComposite(
            layer_map=zcomp.layer_map_base() + [(Convolution, their_rule), (torch.nn.Linear, zr.Epsilon(0.1))],
            first_map=[(Convolution, zr.ZBox(low=_bounds(low), high=_bounds(high), stabilizer=1e-5))],
            canonizers=_canonizers(arch))
        ours, x, target = _ours(arch, composite)
        h.assert_close(ours, _zennit(arch, x, target, theirs), TOL, f"{arch} {ours_rule.name}")


@pytest.mark.parametrize("arch", ["vgg11_bn"])  # runs beside VGG's other tests (conftest.py)
def test_named_layers_take_their_own_rule(arch):
    """zennit's ``NameMapComposite`` beside a layer map: one convolution and the classifier
    by name."""
    composite = dataclasses.replace(composite_named("epsilon_plus"), layers=(
        ("features.4", relevance.wsquare()), ("classifier.6", relevance.epsilon(0.5))))
    theirs = zcomp.NameLayerMapComposite(
        name_map=[(["features.4"], zr.WSquare()), (["classifier.6"], zr.Epsilon(0.5))],
        layer_map=zcomp.layer_map_base() + [(Convolution, zr.ZPlus()), (torch.nn.Linear, zr.Epsilon())],
        canonizers=_canonizers(arch))
    ours, x, target = _ours(arch, composite)
    h.assert_close(ours, _zennit(arch, x, target, theirs), TOL, "named layers")
    default, _, _ = _ours(arch, composite_named("epsilon_plus"))
    assert h.rel_err(ours, default) > 1e-3  # the names changed something


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_without_canonizers(arch):
    """BatchNorms pass relevance on unchanged (zennit's layer map), residual sums copy it to
    both branches."""
    composite = dataclasses.replace(composite_named("epsilon_plus"), merge_batch_norm=False, residual_sums=False)
    ours, x, target = _ours(arch, composite)
    h.assert_close(ours, _zennit(arch, x, target, ZENNIT_COMPOSITES["epsilon_plus"]([])), TOL, arch)
    canonized, _, _ = _ours(arch, composite_named("epsilon_plus"))
    assert h.rel_err(ours, canonized) > 1e-3


@pytest.mark.parametrize("arch", ["vgg11_bn"])  # runs beside VGG's other tests (conftest.py)
def test_zennits_merged_batch_norm_keeps_its_eps(arch):
    ours, x, target = _ours(arch, composite_named("epsilon_plus"))
    as_zennit = _zennit(arch, x, target, ZENNIT_COMPOSITES["epsilon_plus"](_canonizers(arch)), exact_merge=False)
    ratio = (as_zennit * ours).sum() / (ours * ours).sum()
    # eight merged BatchNorms, each scaling by (1 + 1e-5)^-1/2 (the ε rule's output
    # relevance is fixed by the one-hot; the rest scales through the stabilisers alone)
    assert 1e-7 < h.rel_err(as_zennit, ours) < 1e-3, h.rel_err(as_zennit, ours)
    assert abs(ratio - 1) < 1e-3


@pytest.mark.parametrize("arch", ["squeezenet1_1", "vgg11_bn"])
def test_captum_preset_equals_captums_lrp(arch):
    """Captum's ``LRP`` with its default rules (ε = 1e-9 at convolutions, linear layers,
    BatchNorms and pools; ReLUs and dropout pass), scaled by the target logit.  Captum
    refuses ResNet (its ``relu`` modules are called twice) and MobileNetV2 (no rule for
    ReLU6)."""
    from captum.attr import LRP

    ours, x, target = _ours(arch, composite_named("captum"))
    tm = h.torch_model(arch, h.random_state_dict(arch, 3), "float64")
    theirs = LRP(tm).attribute(h.nchw(x).requires_grad_(), target=torch.from_numpy(target))
    h.assert_close(ours, h.nhwc(theirs), TOL, arch)


def test_stabilize_is_zennits():
    z = np.array([-2.0, -1e-9, 0.0, 1e-9, 3.0])
    with h.precision("float64"):
        ours = np.asarray(relevance.stabilize(z, 1e-6))
    np.testing.assert_array_equal(ours,
                                  zcore.stabilize(torch.from_numpy(z), 1e-6).numpy())
