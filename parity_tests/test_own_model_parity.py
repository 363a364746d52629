"""Your own model: a small Flax CNN written here, its PyTorch twin with the same weights, and
every attribution method against Captum in float64 (the same network as a pure function and
as an NNX module for the mechanisms those take).

The Flax code is plain user code: functional ``nn.relu`` and ``jnp.maximum(x, 0)``, Flax's
max-pool and BatchNorm, no names for jaxviz.  Its layers are the submodules' paths and the
ReLUs in order; the PyTorch twin has ``nn.ReLU`` modules there, which Captum's guided
backprop reaches.
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from captum import attr as ca
from flax import nnx
from zennit import attribution as za, canonizers as zc, composites as zcomp

import jaxviz
from jaxviz.attribution import _regions
from parity_tests import helpers as h
from parity_tests.test_attribution_parity import _captum_noise, _torch_ig_loop, _torch_occlusion_loop

TOL = h.ATTR_TOL["float64"]
SIZE = (13, 15)  # odd, unequal sides
# jaxviz's layer name → the twin's module
TWIN = {"conv1": "conv1", "relu.0": "relu1", "Conv_0": "conv2", "BatchNorm_0": "bn2", "relu.1": "relu2",
        "Conv_1": "conv3", "relu.2": "relu3", "Dense_0": "fc"}


class FlaxCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(6, (3, 3), padding=1, name="conv1")(x))
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = nn.Conv(8, (3, 3), padding=0)(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-5)(x)
        x = jnp.maximum(x, 0)
        x = nn.relu(nn.Conv(10, (1, 1))(x))
        return nn.Dense(7)(x.mean(axis=(1, 2)))


class TorchTwin(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.relu1 = torch.nn.Conv2d(3, 6, 3, padding=1), torch.nn.ReLU()
        self.pool = torch.nn.MaxPool2d(2)
        self.conv2, self.bn2, self.relu2 = torch.nn.Conv2d(6, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU()
        self.conv3, self.relu3 = torch.nn.Conv2d(8, 10, 1), torch.nn.ReLU()
        self.fc = torch.nn.Linear(10, 7)

    def forward(self, x):
        x = self.pool(self.relu1(self.conv1(x)))
        x = self.relu3(self.conv3(self.relu2(self.bn2(self.conv2(x)))))
        return self.fc(x.mean(dim=(2, 3)))


def _variables():
    variables = FlaxCNN().init(jax.random.key(0), jnp.zeros((1, *SIZE, 3)))
    rng = np.random.default_rng(1)
    params = jax.tree_util.tree_map(lambda p: np.asarray(p, np.float64) + rng.normal(0, 0.05, p.shape),
                                    variables["params"])
    params["BatchNorm_0"] = {"scale": rng.uniform(0.5, 1.5, 8), "bias": rng.normal(0, 0.3, 8)}
    stats = {"BatchNorm_0": {"mean": rng.normal(0, 0.3, 8), "var": rng.uniform(0.5, 2.0, 8)}}
    return {"params": params, "batch_stats": stats}


def _twin(variables) -> torch.nn.Module:
    p, stats = variables["params"], variables["batch_stats"]["BatchNorm_0"]
    conv = lambda k: torch.from_numpy(np.ascontiguousarray(np.transpose(k, (3, 2, 0, 1))))  # noqa: E731
    state = {"conv1.weight": conv(p["conv1"]["kernel"]), "conv1.bias": p["conv1"]["bias"],
             "conv2.weight": conv(p["Conv_0"]["kernel"]), "conv2.bias": p["Conv_0"]["bias"],
             "conv3.weight": conv(p["Conv_1"]["kernel"]), "conv3.bias": p["Conv_1"]["bias"],
             "bn2.weight": p["BatchNorm_0"]["scale"], "bn2.bias": p["BatchNorm_0"]["bias"],
             "bn2.running_mean": stats["mean"], "bn2.running_var": stats["var"],
             "fc.weight": np.ascontiguousarray(p["Dense_0"]["kernel"].T), "fc.bias": p["Dense_0"]["bias"]}
    tm = TorchTwin().double().eval()
    tm.load_state_dict({k: torch.as_tensor(np.asarray(v, np.float64)) for k, v in state.items()}, strict=False)
    return tm


@functools.cache
def _setup():
    variables = _variables()
    tm = _twin(variables)
    x = h.random_images((3, *SIZE, 3), 4, "float64")
    target = h.top_targets(tm, h.nchw(x), rank=1)
    with h.precision("float64"):
        model = jaxviz.from_flax(FlaxCNN(), variables, input_size=SIZE)
    return model, tm, x, target


def _compare(ours_fn, theirs_fn, tol=TOL, model=None):
    own, tm, x, target = _setup()
    with h.precision("float64"):
        ours = np.asarray(ours_fn(model or own, x, target))
    theirs = theirs_fn(tm, h.nchw(x).requires_grad_(), torch.from_numpy(target))
    return h.assert_close(ours, h.nhwc(theirs), tol, "own model")


def test_layers_are_the_modules_and_relus_with_the_twins_values():
    model, tm, x, _ = _setup()
    assert model.layer_names == tuple(TWIN) + ("output",)
    assert model.architecture.default_layer == "relu.2" and model.architecture.num_classes == 7
    with h.precision("float64"):
        ours = jaxviz.layer_activation(model, x, list(TWIN) + ["output"])
    theirs = h.torch_layer_outputs(tm, h.nchw(x), list(TWIN.values()))
    for name, module in TWIN.items():
        h.assert_close(np.asarray(ours[name]), theirs[module], h.TOL["float64"], name)
    h.assert_close(np.asarray(ours["output"]), tm(h.nchw(x)).detach().numpy(), h.TOL["float64"], "logits")


def test_saliency():
    _compare(jaxviz.saliency, lambda tm, x, t: ca.Saliency(tm).attribute(x, target=t))


def test_guided_backprop():
    # the twin's ReLUs are modules, so Captum guides all three, as jaxviz does
    result = _compare(jaxviz.guided_backprop, lambda tm, x, t: ca.GuidedBackprop(tm).attribute(x, target=t))
    model, _, x, target = _setup()
    with h.precision("float64"):  # and the test can tell guided from plain gradients
        plain = np.asarray(jaxviz.saliency(model, x, target, absolute=False))
        guided = np.asarray(jaxviz.guided_backprop(model, x, target))
    assert h.rel_err(guided, plain) > 1e-2, result


@pytest.mark.parametrize("layer", ["relu.2", "Conv_0"])
def test_layer_gradcam(layer):
    _compare(lambda m, x, t: jaxviz.layer_gradcam(m, x, t, layer=layer),
             lambda tm, x, t: ca.LayerGradCam(tm, tm.get_submodule(TWIN[layer])).attribute(x, target=t))


def test_guided_gradcam():
    _compare(lambda m, x, t: jaxviz.guided_gradcam(m, x, t, interpolate_mode="bilinear"),
             lambda tm, x, t: ca.GuidedGradCam(tm, tm.relu3).attribute(x, target=t, interpolate_mode="bilinear"))


def test_layer_conductance():
    _compare(lambda m, x, t: jaxviz.layer_conductance(m, x, t, layer="Conv_0", n_steps=6),
             lambda tm, x, t: ca.LayerConductance(tm, tm.conv2).attribute(x, target=t, n_steps=6))


def test_integrated_gradients():
    baselines = np.random.default_rng(8).normal(0, 0.3, _setup()[2].shape)
    ours = lambda m, x, t: jaxviz.integrated_gradients(m, x, t, baselines=baselines, n_steps=7)  # noqa: E731
    _compare(ours, lambda tm, x, t: _torch_ig_loop(tm, x, t, h.nchw(baselines), 7, "gausslegendre"))
    # Captum rounds its step weights to float32 (test_attribution_parity.py)
    _compare(ours, lambda tm, x, t: ca.IntegratedGradients(tm).attribute(
        x, baselines=h.nchw(baselines), target=t, n_steps=7), tol=1e-6)


def test_occlusion():
    # on crops: below a cut of your own program, evaluated around each window alone
    model, _, x, _ = _setup()
    with h.precision("float64"):
        assert _regions.window_plan(model, x.shape[1:], (4, 5, 3), (3, 2, 3), most_cost=np.inf) is not None
    ours = lambda m, x, t: jaxviz.occlusion(m, x, t, sliding_window_shapes=(4, 5, 3), strides=(3, 2, 3),  # noqa: E731
                                            regions="always")
    _compare(ours, lambda tm, x, t: _torch_occlusion_loop(tm, x, t, (3, 4, 5), (3, 3, 2), torch.zeros_like(x)))
    # Captum's Occlusion returns float32
    _compare(ours, lambda tm, x, t: ca.Occlusion(tm).attribute(
        x, sliding_window_shapes=(3, 4, 5), strides=(3, 3, 2), target=t), tol=1e-6)


def test_smooth_with_the_same_noise():
    _, _, x, _ = _setup()
    noise = _captum_noise(h.nchw(x), 3, 0.2, seed=5)

    def theirs(tm, xt, t):
        torch.manual_seed(5)
        return ca.NoiseTunnel(ca.GuidedBackprop(tm)).attribute(xt, nt_samples=3, stdevs=0.2, target=t)

    _compare(lambda m, v, t: jaxviz.smooth(jaxviz.guided_backprop, nt_samples=3)(m, v, t, noise=noise), theirs)


def test_float32_as_today():
    variables = jax.tree_util.tree_map(lambda p: np.asarray(p, np.float32), _variables())
    model = jaxviz.from_flax(FlaxCNN(), variables, input_size=SIZE)
    tm = _twin(variables).float()
    _, _, x, target = _setup()
    x32 = x.astype(np.float32)
    ours = np.asarray(jaxviz.guided_backprop(model, x32, target))
    theirs = ca.GuidedBackprop(tm).attribute(h.nchw(x32).requires_grad_(), target=torch.from_numpy(target))
    h.assert_close(ours, h.nhwc(theirs), h.ATTR_TOL["float32"], "float32")


def _zennit(tm, composite):
    """zennit's ``Gradient`` attributor with a one-hot output relevance on ``tm`` (changed
    while the canonizers are registered; merged BatchNorms given eps 0, as in
    test_lrp_parity.py, so that they are the identity the canonizer means)."""
    _, _, x, target = _setup()
    onehot = torch.eye(7, dtype=torch.float64)[torch.from_numpy(target)]
    with za.Gradient(tm, composite) as attributor:
        for module in tm.modules():
            if isinstance(module, torch.nn.BatchNorm2d) and bool((module.running_var == 1).all()):
                module.eps = 0.0
        _, relevance = attributor(h.nchw(x).requires_grad_(), onehot)
    return h.nhwc(relevance)


@pytest.mark.float64_only
@pytest.mark.parametrize("composite", ["epsilon_plus_flat", "epsilon_alpha2_beta1", "without_canonizers", "captum"])
def test_lrp(composite):
    """The Flax module's convolutions and Dense layer take the rules with their biases, its
    BatchNorm merges into the convolution before it (zennit's SequentialMergeBatchNorm) or,
    without canonizers, passes relevance on; Captum's preset gives it the ε rule."""
    model, tm, x, target = _setup()
    ours_composite = {"without_canonizers": jaxviz.models.relevance.epsilon_plus(merge_batch_norm=False)}.get(
        composite, composite)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.lrp(model, x, target, composite=ours_composite))
        plain = np.asarray(jaxviz.input_x_gradient(model, x, target))
    if composite == "captum":
        theirs = h.nhwc(ca.LRP(tm).attribute(h.nchw(x).requires_grad_(), target=torch.from_numpy(target)))
    else:
        theirs = _zennit(_twin(_variables()), {
            "epsilon_plus_flat": lambda: zcomp.EpsilonPlusFlat(canonizers=[zc.SequentialMergeBatchNorm()]),
            "epsilon_alpha2_beta1": lambda: zcomp.EpsilonAlpha2Beta1(canonizers=[zc.SequentialMergeBatchNorm()]),
            "without_canonizers": lambda: zcomp.EpsilonPlus()}[composite]())
    h.assert_close(ours, theirs, TOL, composite)
    assert h.rel_err(ours, plain) > 1e-2  # the rules reached the layers
    if composite == "captum":  # and LayerLRP, at the last convolution (its output, before the ReLU)
        with h.precision("float64"):
            ours = np.asarray(jaxviz.layer_lrp(model, x, target, layer="Conv_1", composite="captum"))
        theirs = ca.LayerLRP(tm, tm.conv3).attribute(h.nchw(x).requires_grad_(), target=torch.from_numpy(target))
        h.assert_close(ours, h.nhwc(theirs), TOL, "layer_lrp")


class _FunctionalBatchNormTwin(torch.nn.Module):
    """The twin with its BatchNorm written as arithmetic, as in ``_pure_apply``: no rule of
    zennit's reaches it."""

    def __init__(self, twin):
        super().__init__()
        self.twin = twin

    def forward(self, x):
        t = self.twin
        x = t.pool(t.relu1(t.conv1(x)))
        bn = t.bn2
        x = (t.conv2(x) - bn.running_mean[:, None, None]) / torch.sqrt(bn.running_var[:, None, None] + 1e-5)
        x = x * bn.weight[:, None, None] + bn.bias[:, None, None]
        x = t.relu3(t.conv3(t.relu2(x)))
        return t.fc(x.mean(dim=(2, 3)))


def _pure_apply(p, x):
    """The same network as a pure function of a parameter dict (jax.nn.relu, lax ops)."""
    def conv(v, layer, padding):
        out = jax.lax.conv_general_dilated(v, p[layer]["kernel"], (1, 1), padding,
                                           dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return out + p[layer]["bias"][None, None, None, :]

    x = jax.nn.relu(conv(x, "conv1", ((1, 1), (1, 1))))
    x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
    bn = {k: v[None, None, None, :] for k, v in p["BatchNorm_0"].items()}
    x = (conv(x, "Conv_0", "VALID") - bn["mean"]) / jnp.sqrt(bn["var"] + 1e-5) * bn["scale"] + bn["bias"]
    x = jax.nn.relu(conv(jax.nn.relu(x), "Conv_1", "VALID"))
    return x.mean(axis=(1, 2)) @ p["Dense_0"]["kernel"] + p["Dense_0"]["bias"][None, :]


def test_a_pure_function():
    variables = _variables()
    params = dict(variables["params"])
    params["BatchNorm_0"] = {**params["BatchNorm_0"], **variables["batch_stats"]["BatchNorm_0"]}
    with h.precision("float64"):
        model = jaxviz.from_function(_pure_apply, params, input_size=SIZE)
    assert model.layer_names == ("relu.0", "relu.1", "relu.2", "output")
    _compare(jaxviz.guided_backprop, lambda tm, x, t: ca.GuidedBackprop(tm).attribute(x, target=t), model=model)
    _compare(lambda m, x, t: jaxviz.layer_gradcam(m, x, t, layer="relu.1"),
             lambda tm, x, t: ca.LayerGradCam(tm, tm.relu2).attribute(x, target=t), model=model)


class NnxCNN(nnx.Module):
    def __init__(self, p, stats):
        rngs = nnx.Rngs(0)
        self.conv1 = nnx.Conv(3, 6, (3, 3), padding=1, rngs=rngs)
        self.conv2 = nnx.Conv(6, 8, (3, 3), padding="VALID", rngs=rngs)
        self.bn = nnx.BatchNorm(8, use_running_average=True, epsilon=1e-5, rngs=rngs)
        self.conv3 = nnx.Conv(8, 10, (1, 1), rngs=rngs)
        self.fc = nnx.Linear(10, 7, rngs=rngs)
        for mine, theirs in [(self.conv1, "conv1"), (self.conv2, "Conv_0"), (self.conv3, "Conv_1"), (self.fc, "Dense_0")]:
            mine.kernel.value, mine.bias.value = jnp.asarray(p[theirs]["kernel"]), jnp.asarray(p[theirs]["bias"])
        self.bn.scale.value, self.bn.bias.value = jnp.asarray(p["BatchNorm_0"]["scale"]), jnp.asarray(p["BatchNorm_0"]["bias"])
        self.bn.mean.value, self.bn.var.value = jnp.asarray(stats["mean"]), jnp.asarray(stats["var"])

    def __call__(self, x):
        x = nnx.max_pool(nnx.relu(self.conv1(x)), (2, 2), strides=(2, 2))
        x = nnx.relu(self.conv3(jnp.maximum(self.bn(self.conv2(x)), 0)))
        return self.fc(x.mean(axis=(1, 2)))


def test_an_nnx_module():
    variables = _variables()
    with h.precision("float64"):
        model = jaxviz.from_flax(NnxCNN(variables["params"], variables["batch_stats"]["BatchNorm_0"]),
                                 input_size=SIZE)
    assert model.layer_names == ("relu.0", "relu.1", "relu.2", "output")
    _compare(jaxviz.guided_backprop, lambda tm, x, t: ca.GuidedBackprop(tm).attribute(x, target=t), model=model)


@pytest.mark.float64_only
def test_lrp_on_a_pure_function():
    """A plain function's ``lax.conv_general_dilated`` + bias and ``@`` + bias take the
    rules; its BatchNorm arithmetic keeps its gradient, as zennit leaves a functional one."""
    variables = _variables()
    params = dict(variables["params"])
    params["BatchNorm_0"] = {**params["BatchNorm_0"], **variables["batch_stats"]["BatchNorm_0"]}
    _, _, x, target = _setup()
    with h.precision("float64"):
        model = jaxviz.from_function(_pure_apply, params, input_size=SIZE)
        ours = np.asarray(jaxviz.lrp(model, x, target, composite="epsilon_plus_flat"))
    theirs = _zennit(_FunctionalBatchNormTwin(_twin(variables)), zcomp.EpsilonPlusFlat())
    h.assert_close(ours, theirs, TOL, "pure function")


@pytest.mark.float64_only
def test_fullgrad():
    """FullGrad reads the Flax module's biases from its program: the three convolutions'
    and the BatchNorm's β − μ·γ/√(σ² + ε), each with the gradient at that module's output,
    as pytorch-grad-cam's FullGrad takes the twin's Conv2d and BatchNorm2d biases."""
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from parity_tests.test_cam_parity import _fullgrad64

    model, tm, x, target = _setup()
    assert model.architecture.bias_layers == ("conv1", "Conv_0", "BatchNorm_0", "Conv_1")
    with h.precision("float64"):
        ours = np.asarray(jaxviz.fullgrad(model, x, target))
    h.assert_close(ours, _fullgrad64(tm, x, target), TOL, "fullgrad, definition")
    with FullGrad(tm, []) as cam:  # the package resizes in float32
        package = cam(h.nchw(x), [ClassifierOutputTarget(int(t)) for t in target])
    h.assert_close(ours, package, 1e-5, "fullgrad, package")
    # FullGrad scales each channel's map, so a bias's size cancels there: the values read
    # from the program are checked against the variables
    variables = _variables()
    p, stats = variables["params"], variables["batch_stats"]["BatchNorm_0"]
    with h.precision("float64"):
        conv, batch_norm = map(np.asarray, model.architecture.layer_biases(model.params, ("Conv_0", "BatchNorm_0")))
    np.testing.assert_allclose(conv, p["Conv_0"]["bias"], rtol=1e-12)
    np.testing.assert_allclose(batch_norm, p["BatchNorm_0"]["bias"] - stats["mean"] * p["BatchNorm_0"]["scale"]
                               / np.sqrt(stats["var"] + 1e-5), rtol=1e-12)
