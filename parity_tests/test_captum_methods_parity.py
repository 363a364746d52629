"""Captum's input × gradient, deconvolution, DeepLift, DeepLiftShap, GradientShap and
FeatureAblation on
SqueezeNet 1.1, ResNet-18, VGG-11-BN and MobileNetV2, float64, random weights with random
BatchNorm statistics, two random images at a small size.

DeepLift is compared with a hook-free PyTorch DeepLift written here (the rescale rule as
``autograd.Function`` activations and max-pools put in place of the ``nn.ReLU`` and
``nn.MaxPool2d`` modules), which equals Captum's ``DeepLift`` on MobileNetV2 (tested).
Elsewhere Captum's differs from its own definition:
* a max-pool fed by a hooked ``nn.ReLU`` (VGG, ResNet, SqueezeNet's first) loses its
  max-pool rule: the ReLU's hook records the gradient at its output before the pool's
  input hook rewrites it, and recomputes its multipliers from that plain max-pool
  gradient (tested on VGG-11-BN: Captum equals this reference with plain max-pools), so
  summation to delta fails there;
* ResNet-18 calls each block's ``relu`` module twice; Captum's hooks keep one input per
  module and raise on the second backward call;
* where overlapping max-pool windows (3×3/2) share a maximum, Captum's ``max_unpool2d``
  writes one window's contribution over the other's (PyTorch leaves duplicate indices
  undefined), where a gradient adds both.
jaxviz follows the definition (this reference), and its attributions sum to delta.
"""

from __future__ import annotations

import importlib

import jax
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum import attr as ca

import jaxviz
from parity_tests import helpers as h

pytestmark = pytest.mark.float64_only

# VGG-11-BN (no layer the other three lack) under make test-exhaustive; the tests below
# that name it (DeepLift's max-pool rule, neuron and layer cases) run it in make test
ARCHS = ["squeezenet1_1", "resnet18", "mobilenet_v2", *h.exhaustive("vgg11_bn")]
TOL = h.ATTR_TOL["float64"]
EPS = 1e-10  # Captum's DeepLift eps


def _compare(arch, ours_fn, theirs_fn, tol=TOL):
    model, tm, x, target = h.random_case(arch)
    with h.precision("float64"):
        ours = np.asarray(ours_fn(model, x, target))
    theirs = theirs_fn(tm, h.nchw(x).requires_grad_(), torch.from_numpy(target))
    return h.assert_close(ours, h.nhwc(theirs), tol, arch)


def _baselines(arch, count, seed):
    _, _, x, _ = h.random_case(arch)
    return h.random_images((count,) + x.shape[1:], seed, "float64") * 0.5


@pytest.mark.parametrize("arch", ARCHS)
def test_input_x_gradient(arch):
    _compare(arch, jaxviz.input_x_gradient, lambda tm, x, t: ca.InputXGradient(tm).attribute(x, target=t))


@pytest.mark.parametrize("arch", ARCHS)
def test_deconvolution(arch):
    _compare(arch, jaxviz.deconvolution, lambda tm, x, t: ca.Deconvolution(tm).attribute(x, target=t))


# ------------------------------------------------------------------ a hook-free DeepLift


def _differences(v):
    n = v.shape[0] // 2
    d = v[:n] - v[n:]
    return torch.cat([d, d])


def _rescale_relu(v, g):
    delta_in, delta_out = _differences(v), _differences(torch.relu(v))
    return torch.where(delta_in.abs() < EPS, g * (v > 0), g * delta_out / delta_in)


class _RescaleMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, v, pool):
        ctx.save_for_backward(v)
        ctx.pool = pool
        return ctx.pool(v)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        with torch.enable_grad():
            leaf = v.detach().requires_grad_()
            y = ctx.pool(leaf)
            n = y.shape[0] // 2
            larger = torch.maximum(y[:n], y[n:])
            delta_out = torch.cat([larger - y[n:], y[:n] - larger]).detach()
            routed, plain = (torch.autograd.grad(y, leaf, w, retain_graph=True)[0] for w in (g * delta_out, g))
        routed = routed[:n] + routed[n:]
        delta_in = _differences(v)
        return torch.where(delta_in.abs() < EPS, plain, torch.cat([routed, routed]) / delta_in), None


class _RescaleMaxPoolModule(torch.nn.Module):
    def __init__(self, pool: torch.nn.MaxPool2d):
        super().__init__()
        self.pool = lambda v: F.max_pool2d(v, pool.kernel_size, pool.stride, pool.padding, pool.dilation,
                                           pool.ceil_mode)

    def forward(self, v):
        return _RescaleMaxPool.apply(v, self.pool)


def _deeplift_model(tm, max_pools=True):
    """``tm`` with its ReLU (and MaxPool2d) modules doing DeepLift's rules (a copy)."""
    def rule(module):
        if isinstance(module, torch.nn.ReLU):
            return h.activation_module(torch.relu, _rescale_relu)
        if isinstance(module, torch.nn.MaxPool2d) and max_pools:
            return _RescaleMaxPoolModule(module)
        return None

    return h.modules_replaced(tm, rule)


def _torch_deeplift(tm, x, references, target, max_pools=True, multiply_by_inputs=True):
    """(x − r)·m, m the input half's gradient of Σ both halves' target scores (m alone
    unless ``multiply_by_inputs``)."""
    model = _deeplift_model(tm, max_pools)
    both = torch.cat([x.detach(), references]).requires_grad_()
    scores = model(both).gather(1, torch.cat([target, target])[:, None]).sum()
    (grads,) = torch.autograd.grad(scores, both)
    multipliers = grads[: x.shape[0]]
    return (x.detach() - references) * multipliers if multiply_by_inputs else multipliers


@pytest.mark.parametrize("arch", ARCHS)
def test_deeplift(arch):
    """Against the hook-free reference; and summation to delta, Σ attributions = F(x) −
    F(b), where every nonlinearity takes a DeepLift rule: the ReLU modules and max-pools
    of SqueezeNet, ResNet-18 and VGG (MobileNetV2's ReLU6 needs rule="all": below)."""
    b = _baselines(arch, 2, 11)
    model, _, x, target = h.random_case(arch)
    with h.precision("float64"):
        attributions, delta = jaxviz.deeplift(model, x, target, baselines=b, return_convergence_delta=True)
    _compare(arch, lambda m, x, t: attributions, lambda tm, x, t: _torch_deeplift(tm, x, h.nchw(b), t))
    if arch != "mobilenet_v2":
        _assert_sums_to_delta(model, x, target, b, delta)


@pytest.mark.parametrize("arch", ARCHS)
def test_deeplift_with_one_reference_for_every_image(arch):
    """One reference for the batch goes through the network once, made pairs only from the
    first max-pool to the last (and at the class layer): the same numbers as the reference
    copied for each image.  The reference equals the first image on its left half, where
    every difference is zero and the rules fall back to each half's own gradient; the
    multipliers are compared too, as (x − b) hides them there."""
    model, _, x, target = h.random_case(arch)
    b = _baselines(arch, 1, 14)[0]
    b[:, : b.shape[1] // 2] = x[0, :, : b.shape[1] // 2]
    start = importlib.import_module("jaxviz.attribution.deeplift").shared_reference_start(model, "modules", x.shape[1:])
    assert start == {"squeezenet1_1": "features.8", "resnet18": "maxpool", "mobilenet_v2": "input",
                     "vgg11_bn": "features.28"}[arch]
    with h.precision("float64"):
        attributions, delta = jaxviz.deeplift(model, x, target, baselines=b, return_convergence_delta=True)
        multipliers = jaxviz.deeplift(model, x, target, baselines=b, multiply_by_inputs=False)
    _compare(arch, lambda m, x, t: attributions,
             lambda tm, x, t: _torch_deeplift(tm, x, h.nchw(b[None]).expand_as(x), t))
    _compare(arch, lambda m, x, t: multipliers,
             lambda tm, x, t: _torch_deeplift(tm, x, h.nchw(b[None]).expand_as(x), t, multiply_by_inputs=False))
    if arch != "mobilenet_v2":
        _assert_sums_to_delta(model, x, target, np.broadcast_to(b, x.shape), delta)


def _assert_sums_to_delta(model, x, target, b, delta):
    with h.precision("float64"):
        gap = np.asarray(jaxviz.models.model.batch_logits(model, x, target) -
                         jaxviz.models.model.batch_logits(model, b, target))
    assert np.abs(gap).min() > 1e-3
    assert np.abs(np.asarray(delta)).max() <= 1e-9 * np.abs(gap).max(), (delta, gap)


def test_deeplift_as_captum():
    """On MobileNetV2 (no max-pool, every ReLU6 left to its gradient as Captum leaves it)
    Captum's DeepLift is the reference above, and jaxviz's."""
    arch = "mobilenet_v2"
    b = _baselines(arch, 2, 11)
    _, tm, x, target = h.random_case(arch)
    xt, t = h.nchw(x).requires_grad_(), torch.from_numpy(target)
    theirs = ca.DeepLift(tm).attribute(xt, baselines=h.nchw(b), target=t).detach()
    h.assert_close(_torch_deeplift(tm, xt, h.nchw(b), t).detach(), theirs, 1e-12, "reference")
    _compare(arch, lambda m, x, t: jaxviz.deeplift(m, x, t, baselines=b),
             lambda tm, x, t: ca.DeepLift(tm).attribute(x, baselines=h.nchw(b), target=t))


@pytest.mark.parametrize("arch", ["vgg11_bn"])  # runs beside VGG's other tests (conftest.py)
def test_captum_deeplift_drops_the_max_pool_rule_after_a_relu(arch):
    """What the module docstring says of VGG: Captum's DeepLift is this reference with plain
    max-pool gradients (to 1e-12), and far from the definition, which jaxviz follows."""
    b = _baselines(arch, 2, 11)
    _, tm, x, target = h.random_case(arch)
    xt, t = h.nchw(x).requires_grad_(), torch.from_numpy(target)
    theirs = ca.DeepLift(tm).attribute(xt, baselines=h.nchw(b), target=t).detach()
    h.assert_close(_torch_deeplift(tm, xt, h.nchw(b), t, max_pools=False).detach(), theirs, 1e-12, "plain pools")
    assert h.rel_err(_torch_deeplift(tm, xt, h.nchw(b), t).detach(), theirs) > 0.1


def test_deeplift_all_rule_sums_to_delta_on_mobilenet_v2():
    model, _, x, target = h.random_case("mobilenet_v2")
    b = _baselines("mobilenet_v2", 2, 12)
    with h.precision("float64"):
        attributions, delta = jaxviz.deeplift(model, x, target, baselines=b, rule="all", return_convergence_delta=True)
    assert np.abs(np.asarray(attributions)).max() > 0
    _assert_sums_to_delta(model, x, target, b, delta)


@pytest.mark.parametrize("arch", ARCHS)
def test_deeplift_shap(arch):
    b = _baselines(arch, 3, 13)

    def reference(tm, x, t):
        return torch.stack([_torch_deeplift(tm, x, h.nchw(b[k:k + 1]).expand_as(x), t) for k in range(3)]).mean(0)

    _compare(arch, lambda m, x, t: jaxviz.deeplift_shap(m, x, t, baselines=b), reference)


def test_deeplift_shap_as_captum():
    arch = "mobilenet_v2"
    b = _baselines(arch, 3, 13)
    _compare(arch, lambda m, x, t: jaxviz.deeplift_shap(m, x, t, baselines=b),
             lambda tm, x, t: ca.DeepLiftShap(tm).attribute(x, baselines=h.nchw(b), target=t))


# ------------------------------------------------------------------ GradientShap


def _captum_gradient_shap_draws(n, n_samples, n_baselines, shape, stdevs, seed):
    """Captum's draws for one ``GradientShap.attribute`` call after seeding both RNGs, in
    jaxviz's (n_samples, N) layout: baseline indices (NumPy), noise (torch), then the path
    coefficients (NumPy)."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    indices = np.random.choice(n_baselines, n_samples * n)
    noise = torch.normal(0, torch.tensor(stdevs).repeat((n * n_samples,) + shape)).numpy()
    alphas = np.random.uniform(0.0, 1.0, n * n_samples)
    layout = lambda a: np.swapaxes(a.reshape((n, n_samples) + a.shape[1:]), 0, 1)  # noqa: E731
    return layout(indices), layout(noise.transpose(0, 2, 3, 1)), layout(alphas)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_shap_given_the_same_draws(arch):
    _, _, x, _ = h.random_case(arch)
    b = _baselines(arch, 3, 14)
    indices, noise, alphas = _captum_gradient_shap_draws(x.shape[0], 4, 3, (3,) + x.shape[1:3], 0.3, seed=7)

    def theirs(tm, xt, t):
        np.random.seed(7)
        torch.manual_seed(7)
        return ca.GradientShap(tm).attribute(xt, baselines=h.nchw(b), n_samples=4, stdevs=0.3, target=t)

    _compare(arch, lambda m, x, t: jaxviz.gradient_shap(m, x, t, baselines=b, n_samples=4, stdevs=0.3,
                                                         baseline_indices=indices, noise=noise, alphas=alphas,
                                                         internal_batch_size=4), theirs)


# ------------------------------------------------------------------ FeatureAblation


@pytest.mark.parametrize("arch", ARCHS)
def test_feature_ablation_with_patches_and_superpixels(arch):
    """One mask per image (SLIC on the first, patches on the second), shared by the
    channels as Captum's (N, 1, H, W) mask; baseline 0.3; three features per evaluation."""
    _, _, x, _ = h.random_case(arch)
    images = jaxviz.deprocess(x[:1], rescale=True)
    mask = np.stack([jaxviz.masks.segments(images, method="slic", n_segments=12)[0],
                     jaxviz.masks.patches(*x.shape[1:3], 9)])
    assert len(np.unique(mask[0])) > 4

    def theirs(tm, xt, t):
        return ca.FeatureAblation(tm).attribute(xt, target=t, baselines=0.3, perturbations_per_eval=3,
                                                feature_mask=torch.from_numpy(mask.astype(np.int64))[:, None])

    _compare(arch, lambda m, x, t: jaxviz.feature_ablation(m, x, t, feature_mask=mask, baselines=0.3,
                                                            perturbations_per_eval=3), theirs)


# ------------------------------------------------------------------ ShapleyValueSampling


def _torch_shapley_loop(tm, x, t, baseline, mask, permutations):
    """The definition, float64: features added one at a time in each order, each gain
    given to the feature added."""
    mask = torch.from_numpy(mask.astype(np.int64))[:, None].expand_as(x)
    total = torch.zeros_like(x)
    with torch.no_grad():
        for order in permutations:
            state = torch.full_like(x, baseline)
            previous = tm(state).gather(1, t[:, None])[:, 0]
            for f in order:
                state = torch.where(mask == int(f), x, state)
                score = tm(state).gather(1, t[:, None])[:, 0]
                total += (mask == int(f)) * (score - previous)[:, None, None, None]
                previous = score
    return total / len(permutations)


@pytest.mark.parametrize("arch", ARCHS)
def test_shapley_value_sampling(arch):
    """float64 against the definition at 1e-9, and against Captum given its own orders
    (torch.randperm after seeding) at 1e-6: Captum sums the contributions in float32."""
    _, _, x, _ = h.random_case(arch)
    mask = np.stack([jaxviz.masks.patches(*x.shape[1:3], 20), jaxviz.masks.patches(*x.shape[1:3], (14, 22))])
    n_features = int(mask.max()) + 1
    torch.manual_seed(4)
    permutations = np.stack([torch.randperm(n_features).numpy() for _ in range(2)])

    def ours(m, v, t):
        return jaxviz.shapley_value_sampling(m, v, t, feature_mask=mask, baselines=-0.2, n_samples=2,
                                             permutations=permutations, perturbations_per_eval=5)

    _compare(arch, ours, lambda tm, v, t: _torch_shapley_loop(tm, v.detach(), t, -0.2, mask, permutations))

    def captum(tm, v, t):
        torch.manual_seed(4)
        return ca.ShapleyValueSampling(tm).attribute(v, target=t, baselines=-0.2, n_samples=2,
                                                     feature_mask=torch.from_numpy(mask.astype(np.int64))[:, None])

    _compare(arch, ours, captum, tol=1e-6)


# ------------------------------------------------------------------ KernelShap


def _captum_coalitions(xt, n_features, n_samples, seed):
    """Captum's KernelShap coalitions for each image in turn after seeding torch: its own
    generator, one per example as its Lime loop makes them, in (S, N, F) layout.  Between
    examples Captum fits its linear model, which draws from torch's generator twice (its
    DataLoader iterator's seed, then an ``nn.Linear``'s initial weights, overwritten with
    sklearn's): so does this (found by comparing generator states)."""
    from torch.distributions.categorical import Categorical

    k = torch.arange(n_features, dtype=torch.float)
    probs = torch.tensor(n_features - 1) / (k * (n_features - k))
    probs[0] = 0.0
    torch.manual_seed(seed)
    shap = ca.KernelShap(lambda v: v)
    rows = []
    for i in range(len(xt)):
        generator = shap.kernel_shap_perturb_generator(xt[i:i + 1], num_select_distribution=Categorical(probs),
                                                       num_interp_features=n_features)
        rows.append(np.concatenate([next(generator).numpy() for _ in range(n_samples)]))
        iter(torch.utils.data.DataLoader([0]))
        torch.nn.Linear(n_features, 1)
    return np.stack(rows, axis=1)


def _sklearn_kernel_shap(tm, xt, t, baseline, mask, coalitions):
    """The definition, float64: each coalition's score by a torch forward pass, the
    weighted linear model by sklearn's LinearRegression on float64 data."""
    from sklearn.linear_model import LinearRegression

    mask_t = torch.from_numpy(mask.astype(np.int64))[:, None].expand_as(xt)
    out = torch.zeros_like(xt)
    with torch.no_grad():
        for i in range(len(xt)):
            z = coalitions[:, i].astype(np.float64)
            states = torch.stack([torch.where(torch.from_numpy(row.astype(bool))[mask_t[i]], xt[i], baseline)
                                  for row in coalitions[:, i]])
            scores = tm(states)[:, int(t[i])].numpy()
            weights = np.where((z.sum(1) == 0) | (z.sum(1) == z.shape[1]), 1e6, 1.0)
            coef = LinearRegression().fit(z, scores, sample_weight=weights).coef_
            out[i] = torch.from_numpy(coef)[mask_t[i]]
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_kernel_shap(arch):
    """float64 against sklearn's float64 fit at 1e-9, and against Captum given its own
    coalitions at 1e-5: Captum fits on float32 coalitions and returns float32 (measured
    6e-7 – 1.2e-6)."""
    _, _, x, _ = h.random_case(arch)
    mask = np.stack([jaxviz.masks.patches(*x.shape[1:3], 20), jaxviz.masks.patches(*x.shape[1:3], 20)[::-1]])
    n_features = int(mask.max()) + 1
    coalitions = _captum_coalitions(h.nchw(x), n_features, 14, seed=6)

    def ours(m, v, t):
        return jaxviz.kernel_shap(m, v, t, feature_mask=mask, baselines=0.1, n_samples=14, coalitions=coalitions,
                                  perturbations_per_eval=7)

    _compare(arch, ours, lambda tm, v, t: _sklearn_kernel_shap(tm, v.detach(), t, 0.1, mask, coalitions))

    def captum(tm, v, t):
        torch.manual_seed(6)
        return ca.KernelShap(tm).attribute(v, target=t, baselines=0.1, n_samples=14,
                                           feature_mask=torch.from_numpy(mask.astype(np.int64))[:, None])

    _compare(arch, ours, captum, tol=1e-5)


# ------------------------------------------------------------------ Lime


def _sklearn_lime(tm, xt, t, baseline, mask, coalitions, tol):
    """The definition, float64: each coalition's score and cosine-kernel weight, and
    sklearn's Lasso(alpha=0.01) on float64 data to ``tol``."""
    from sklearn.linear_model import Lasso

    mask_t = torch.from_numpy(mask.astype(np.int64))[:, None].expand_as(xt)
    out = torch.zeros_like(xt)
    with torch.no_grad():
        for i in range(len(xt)):
            states = torch.stack([torch.where(torch.from_numpy(row.astype(bool))[mask_t[i]], xt[i], baseline)
                                  for row in coalitions[:, i]])
            scores = tm(states)[:, int(t[i])].numpy()
            flat, original = states.reshape(len(states), -1), xt[i].reshape(1, -1)
            cosine = (flat * original).sum(1) / (flat.norm(dim=1) * original.norm())
            weights = torch.exp(-((1 - cosine) ** 2) / 2).numpy()
            model = Lasso(alpha=0.01, tol=tol, max_iter=100000)
            coef = model.fit(coalitions[:, i].astype(np.float64), scores, sample_weight=weights).coef_
            out[i] = torch.from_numpy(coef)[mask_t[i]]
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_lime(arch):
    """float64 against sklearn's Lasso run to convergence (tol 1e-12) at 1e-9, and against
    Captum's Lime given the same coalitions at 5e-4: Captum stops sklearn's coordinate
    descent at its default tolerance (1e-4 of the duality gap) on float32 data (measured
    7e-6 – 5.7e-5)."""
    _, _, x, _ = h.random_case(arch)
    mask = np.stack([jaxviz.masks.patches(*x.shape[1:3], 20), jaxviz.masks.patches(*x.shape[1:3], 20)[:, ::-1]])
    n_features = int(mask.max()) + 1
    sample = importlib.import_module("jaxviz.attribution.lime").sample_coalitions
    coalitions = np.asarray(sample(jax.random.key(3), 16, [n_features, n_features]))

    def ours(m, v, t):
        return jaxviz.lime(m, v, t, feature_mask=mask, baselines=0.2, n_samples=16, coalitions=coalitions,
                           perturbations_per_eval=8)

    _compare(arch, ours, lambda tm, v, t: _sklearn_lime(tm, v.detach(), t, 0.2, mask, coalitions, 1e-12))

    example = iter(range(len(x)))

    def perturbations(original, **kwargs):  # the same coalitions, example after example
        rows = coalitions[:, next(example)]
        for row in rows:
            yield torch.from_numpy(row[None].astype(np.int64))

    def captum(tm, v, t):
        return ca.Lime(tm, perturb_func=perturbations).attribute(
            v, target=t, baselines=0.2, n_samples=16, feature_mask=torch.from_numpy(mask.astype(np.int64))[:, None])

    _compare(arch, ours, captum, tol=5e-4)


# ------------------------------------------------------------------ neuron variants

# a middle layer of each family; the unit is image 0's most active one there
NEURON_LAYERS = {"squeezenet1_1": "features.7", "resnet18": "layer2", "vgg11_bn": "features.9",
                 "mobilenet_v2": "features.5"}


def _neuron(arch):
    model, _, x, _ = h.random_case(arch)
    layer = NEURON_LAYERS[arch]
    with h.precision("float64"):
        outputs = np.asarray(model.apply(model.params, x, capture=(layer,))[layer][0])
    row, column, channel = np.unravel_index(outputs.argmax(), outputs.shape)
    return layer, (int(channel), int(row), int(column))


def _compare_neuron(arch, ours_fn, captum_class, tol=TOL, **options):
    layer, neuron = _neuron(arch)
    model, tm, x, _ = h.random_case(arch)
    with h.precision("float64"):
        ours = np.asarray(ours_fn(model, x, neuron, layer=layer))
    method = captum_class(tm, tm.get_submodule(layer))
    theirs = method.attribute(h.nchw(x).requires_grad_(), neuron_selector=neuron, **options)
    h.assert_close(ours, h.nhwc(theirs), tol, f"{arch} {captum_class.__name__}")
    return ours


@pytest.mark.parametrize("arch", ARCHS)
def test_neuron_gradient_guided_backprop_deconvolution_and_integrated_gradients(arch):
    _compare_neuron(arch, jaxviz.neuron_gradient, ca.NeuronGradient)
    _compare_neuron(arch, jaxviz.neuron_guided_backprop, ca.NeuronGuidedBackprop)
    _compare_neuron(arch, jaxviz.neuron_deconvolution, ca.NeuronDeconvolution)
    # Captum rounds the quadrature weights to float32 (``torch.tensor(step_sizes).float()``):
    # 1e-6 against it, and 1e-9 against the definition, Σ_k w_k ∇neuron(α_k x) ⊙ x with
    # Captum's own NeuronGradient at each point
    ours = _compare_neuron(arch, lambda *a, **k: jaxviz.neuron_integrated_gradients(*a, n_steps=6, **k),
                           ca.NeuronIntegratedGradients, tol=1e-6, n_steps=6)
    layer, neuron = _neuron(arch)
    _, tm, x, _ = h.random_case(arch)
    gradient = ca.NeuronGradient(tm, tm.get_submodule(layer))
    alphas, weights = jaxviz.attribution._paths.quadrature("gausslegendre", 6)
    definition = sum(w * h.nhwc(gradient.attribute(torch.from_numpy(a * h.nchw(x).numpy()).requires_grad_(),
                                                   neuron_selector=neuron)) for a, w in zip(alphas, weights)) * x
    h.assert_close(ours, definition, TOL, f"{arch} neuron IG, definition")


@pytest.mark.parametrize("arch", ARCHS)
def test_neuron_gradient_shap_given_the_same_draws(arch):
    _, _, x, _ = h.random_case(arch)
    b = _baselines(arch, 3, 14)
    indices, noise, alphas = _captum_gradient_shap_draws(x.shape[0], 3, 3, (3,) + x.shape[1:3], 0.3, seed=9)
    np.random.seed(9)
    torch.manual_seed(9)
    _compare_neuron(arch, lambda *a, **k: jaxviz.neuron_gradient_shap(
        *a, baselines=b, n_samples=3, stdevs=0.3, baseline_indices=indices, noise=noise, alphas=alphas, **k),
        ca.NeuronGradientShap, baselines=h.nchw(b), n_samples=3, stdevs=0.3)


def test_neuron_deeplift():
    """Against Captum's NeuronDeepLift on MobileNetV2, where Captum's DeepLift is its
    definition (above); its ReLU6s are not ``nn.ReLU`` and Captum gives them no rule, as
    ``rule="modules"``."""
    b = _baselines("mobilenet_v2", 1, 12)[0]
    _compare_neuron("mobilenet_v2", lambda *a, **k: jaxviz.neuron_deeplift(*a, baselines=b, **k),
                    ca.NeuronDeepLift, baselines=h.nchw(b[None]))


@pytest.mark.parametrize("arch", ["vgg11_bn"])  # runs beside VGG's other tests (conftest.py)
def test_a_linear_layers_neuron_and_one_neuron_per_image(arch):
    """A unit of VGG's classifier.3 (an nn.Linear): (feature,); and a different unit per
    image equals each image alone."""
    model, tm, x, _ = h.random_case(arch)
    method = ca.NeuronGradient(tm, tm.get_submodule("classifier.3"))
    with h.precision("float64"):
        ours = np.asarray(jaxviz.neuron_gradient(model, x, (17,), layer="classifier.3"))
        per_image = np.asarray(jaxviz.neuron_gradient(model, x, np.array([[3, 1, 2], [9, 0, 4]]), layer="features.9"))
        alone = [np.asarray(jaxviz.neuron_gradient(model, x[i:i + 1], n, layer="features.9"))
                 for i, n in enumerate([(3, 1, 2), (9, 0, 4)])]
    h.assert_close(ours, h.nhwc(method.attribute(h.nchw(x).requires_grad_(), neuron_selector=17)), TOL, "linear")
    h.assert_close(per_image, np.concatenate(alone), 1e-12, "per image")


# ------------------------------------------------------------------ layer variants


def _layer_case(arch):
    model, tm, x, target = h.random_case(arch)
    layer = NEURON_LAYERS[arch]
    return model, tm, x, target, layer, tm.get_submodule(layer)


def _layer_gradient_at(tm, module, x, values, t):
    """∂F_t/∂(layer output) with the layer's output replaced by ``values`` (a reference)."""
    v = values.detach().clone().requires_grad_()
    handle = module.register_forward_hook(lambda m, i, o: v)
    try:
        score = tm(x).gather(1, t[:, None]).sum()
    finally:
        handle.remove()
    return torch.autograd.grad(score, v)[0]


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_gradient_x_activation_internal_influence_and_layer_integrated_gradients(arch):
    model, tm, x, target, layer, module = _layer_case(arch)
    b = _baselines(arch, 1, 13)[0]
    xt, bt, t = h.nchw(x), h.nchw(b[None]), torch.from_numpy(target)
    with h.precision("float64"):
        gxa = np.asarray(jaxviz.layer_gradient_x_activation(model, x, target, layer=layer))
        influence = np.asarray(jaxviz.internal_influence(model, x, target, layer=layer, baselines=b, n_steps=6,
                                                         internal_batch_size=4))
        lig = np.asarray(jaxviz.layer_integrated_gradients(model, x, target, layer=layer, baselines=b, n_steps=6,
                                                           internal_batch_size=4))
    h.assert_close(gxa, h.nhwc(ca.LayerGradientXActivation(tm, module).attribute(xt, target=t)), TOL, "grad × act")
    # Captum rounds the quadrature weights to float32 (``torch.tensor(step_sizes)``): 1e-6
    # against it, 1e-9 against the definition with the weights in float64
    theirs = ca.InternalInfluence(tm, module).attribute(xt, target=t, baselines=bt, n_steps=6)
    h.assert_close(influence, h.nhwc(theirs), 1e-6, "internal influence")
    theirs = ca.LayerIntegratedGradients(tm, module).attribute(xt, target=t, baselines=bt, n_steps=6)
    h.assert_close(lig, h.nhwc(theirs), 1e-6, "layer IG")
    alphas, weights = jaxviz.attribution._paths.quadrature("gausslegendre", 6)
    gradient = ca.LayerGradientXActivation(tm, module, multiply_by_inputs=False)
    definition = sum(w * gradient.attribute(bt + a * (xt - bt), target=t) for a, w in zip(alphas, weights))
    h.assert_close(influence, h.nhwc(definition), TOL, "internal influence, definition")
    with torch.no_grad():
        at_x, at_b = (ca.LayerActivation(tm, module).attribute(v) for v in (xt, bt.expand_as(xt)))
    definition = (at_x - at_b) * sum(w * _layer_gradient_at(tm, module, xt, at_b + a * (at_x - at_b), t)
                                     for a, w in zip(alphas, weights))
    h.assert_close(lig, h.nhwc(definition), TOL, "layer IG, definition")


@pytest.mark.parametrize("arch", ["mobilenet_v2"])  # runs beside MobileNetV2's other tests (conftest.py)
def test_layer_deeplift(arch):
    """Against Captum's LayerDeepLift on MobileNetV2 (where its DeepLift is the definition)."""
    model, tm, x, target, layer, module = _layer_case(arch)
    b = _baselines(arch, 1, 12)[0]
    with h.precision("float64"):
        ours = np.asarray(jaxviz.layer_deeplift(model, x, target, layer=layer, baselines=b))
    theirs = ca.LayerDeepLift(tm, module).attribute(h.nchw(x).requires_grad_(), baselines=h.nchw(b[None]),
                                                    target=torch.from_numpy(target))
    h.assert_close(ours, h.nhwc(theirs), TOL, f"{arch} LayerDeepLift")


@pytest.mark.parametrize("arch", ["vgg11_bn", "resnet18"])
def test_layer_deeplift_sums_to_the_output_difference(arch):
    """On VGG-11-BN and ResNet-18, where every nonlinearity after the layer takes a
    DeepLift rule, the layer's attributions sum to F(x) − F(b)."""
    model, _, x, target, layer, _ = _layer_case(arch)
    b = _baselines(arch, 1, 12)[0]
    with h.precision("float64"):
        ours = np.asarray(jaxviz.layer_deeplift(model, x, target, layer=layer, baselines=b))
        gap = np.asarray(jaxviz.models.model.batch_logits(model, x, target) -
                         jaxviz.models.model.batch_logits(model, np.broadcast_to(b, x.shape), target))
    np.testing.assert_allclose(ours.reshape(len(x), -1).sum(axis=1), gap, rtol=1e-9, atol=1e-12, err_msg=arch)


@pytest.mark.parametrize("arch, layer", [("squeezenet1_1", "features.2"), ("vgg11_bn", "features.8"),
                                         ("vgg11_bn", "classifier.3")])
def test_layer_lrp_equals_captums(arch, layer):
    """Captum's LayerLRP (its default rules: composite "captum") at a module with a rule."""
    model, tm, x, target = h.random_case(arch)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.layer_lrp(model, x, target, layer=layer, composite="captum"))
    tm = h.torch_model(arch, h.random_state_dict(arch, 3), "float64")
    theirs = ca.LayerLRP(tm, tm.get_submodule(layer)).attribute(h.nchw(x).requires_grad_(),
                                                                 target=torch.from_numpy(target))
    h.assert_close(ours, h.nhwc(theirs) if theirs.ndim == 4 else theirs.detach().numpy(), TOL, f"{arch} {layer}")


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_gradient_shap_given_the_same_draws(arch):
    model, tm, x, target, layer, module = _layer_case(arch)
    b = _baselines(arch, 3, 14)
    indices, noise, alphas = _captum_gradient_shap_draws(x.shape[0], 3, 3, (3,) + x.shape[1:3], 0.3, seed=11)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.layer_gradient_shap(model, x, target, layer=layer, baselines=b, n_samples=3,
                                                     stdevs=0.3, baseline_indices=indices, noise=noise,
                                                     alphas=alphas, internal_batch_size=4))
    np.random.seed(11)
    torch.manual_seed(11)
    theirs = ca.LayerGradientShap(tm, module).attribute(h.nchw(x), baselines=h.nchw(b), n_samples=3, stdevs=0.3,
                                                        target=torch.from_numpy(target))
    h.assert_close(ours, h.nhwc(theirs), TOL, f"{arch} LayerGradientShap")


@pytest.mark.parametrize("arch", ARCHS)
def test_neuron_conductance(arch):
    """1e-6 against Captum (float32 quadrature weights), 1e-9 against the definition from
    Captum's own layer and neuron gradients at each path point."""
    model, tm, x, target, layer, module = _layer_case(arch)
    _, neuron = _neuron(arch)
    b = _baselines(arch, 1, 15)[0]
    xt, bt, t = h.nchw(x), h.nchw(b[None]), torch.from_numpy(target)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.neuron_conductance(model, x, target, layer=layer, neuron=neuron, baselines=b,
                                                    n_steps=5, internal_batch_size=4))
    theirs = ca.NeuronConductance(tm, module).attribute(xt, neuron_selector=neuron, baselines=bt, target=t, n_steps=5)
    h.assert_close(ours, h.nhwc(theirs), 1e-6, f"{arch} NeuronConductance")
    alphas, weights = jaxviz.attribution._paths.quadrature("riemann_trapezoid", 5)  # Captum's default here
    layer_gradient = ca.LayerGradientXActivation(tm, module, multiply_by_inputs=False)
    unit_gradient = ca.NeuronGradient(tm, module)
    definition = 0
    for a, w in zip(alphas, weights):
        point = (bt + a * (xt - bt)).detach()
        through = layer_gradient.attribute(point, target=t)[(slice(None),) + neuron]
        definition = definition + w * through.reshape(-1, 1, 1, 1) * unit_gradient.attribute(
            point.clone().requires_grad_(), neuron_selector=neuron)
    h.assert_close(ours, h.nhwc(definition * (xt - bt)), TOL, f"{arch} neuron conductance, definition")


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_feature_ablation_by_channel_groups(arch):
    """The layer's channels in six groups (a (1, C, 1, 1) mask), ablated to 0.2."""
    model, tm, x, target, layer, module = _layer_case(arch)
    with torch.no_grad():
        channels = ca.LayerActivation(tm, module).attribute(h.nchw(x)).shape[1]
    mask = (np.arange(channels) % 6).reshape(1, channels, 1, 1)
    with h.precision("float64"):
        ours = np.asarray(jaxviz.layer_feature_ablation(model, x, target, layer=layer, layer_mask=mask,
                                                        layer_baselines=0.2, perturbations_per_eval=4))
    theirs = ca.LayerFeatureAblation(tm, module).attribute(h.nchw(x), target=torch.from_numpy(target),
                                                           layer_mask=torch.from_numpy(mask), layer_baselines=0.2)
    h.assert_close(ours, h.nhwc(theirs), TOL, f"{arch} LayerFeatureAblation")
