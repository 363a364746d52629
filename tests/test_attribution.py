"""Attribution API: bad input, compile-once, jit composability, small exact cases."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxviz
from jaxviz import interpolation, scoring
from jaxviz.attribution import _paths


@pytest.fixture(scope="module")
def model():
    return jaxviz.load_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(0).normal(size=(2, 40, 48, 3)).astype(np.float32)


TARGETED = {
    "saliency": lambda m, x, t: jaxviz.saliency(m, x, t),
    "saliency_map": lambda m, x, t: jaxviz.saliency_map(m, x, t),
    "guided_backprop": lambda m, x, t: jaxviz.guided_backprop(m, x, t),
    "layer_gradcam": lambda m, x, t: jaxviz.layer_gradcam(m, x, t, layer="features.7"),
    "gradcam": lambda m, x, t: jaxviz.gradcam(m, x, t),
    "guided_gradcam": lambda m, x, t: jaxviz.guided_gradcam(m, x, t),
    "integrated_gradients": lambda m, x, t: jaxviz.integrated_gradients(m, x, t, n_steps=2),
    "layer_conductance": lambda m, x, t: jaxviz.layer_conductance(m, x, t, layer="features.7", n_steps=2),
    "occlusion": lambda m, x, t: jaxviz.occlusion(m, x, t, sliding_window_shapes=(20, 24, 3), strides=(20, 24, 3)),
    "smooth": lambda m, x, t: jaxviz.smooth(jaxviz.saliency, nt_samples=2)(m, x, t, key=jax.random.key(0)),
    "hirescam": lambda m, x, t: jaxviz.hirescam(m, x, t),
    "gradcam_elementwise": lambda m, x, t: jaxviz.gradcam_elementwise(m, x, t, eigen_smooth=True),
    "gradcam_plus_plus": lambda m, x, t: jaxviz.gradcam_plus_plus(m, x, t, resolution="input"),
    "xgradcam": lambda m, x, t: jaxviz.xgradcam(m, x, t, layer="features.10"),
    "layercam": lambda m, x, t: jaxviz.layercam(m, x, t, layer=["features.5", "features.12"], resolution="input"),
    "eigencam": lambda m, x, t: jaxviz.eigencam(m, x, t),
    "eigen_gradcam": lambda m, x, t: jaxviz.eigen_gradcam(m, x, t, resolution="input", aug_smooth=True),
    "scorecam": lambda m, x, t: jaxviz.scorecam(m, x, t, layer="features.3"),
    "ablationcam": lambda m, x, t: jaxviz.ablationcam(m, x, t, layer="features.4"),
    "fullgrad": lambda m, x, t: jaxviz.fullgrad(m, x, t),
    "blur_ig": lambda m, x, t: jaxviz.blur_ig(m, x, t, steps=3, max_sigma=5.0),
    "guided_ig": lambda m, x, t: jaxviz.guided_ig(m, x, t, steps=3),
    "xrai": lambda m, x, t: jaxviz.xrai(m, x, t, n_steps=2, min_pixel_diff=10),
    "random_cam": lambda m, x, t: jaxviz.random_cam(m, x, t, key=jax.random.key(0)),
    "sobel_cam": lambda m, x, t: jaxviz.sobel_cam(m, x, t),
    "kpca_cam": lambda m, x, t: jaxviz.kpca_cam(m, x, t, kernel="rbf"),
    "shapleycam": lambda m, x, t: jaxviz.shapleycam(m, x, t, score="rest"),
    "finercam": lambda m, x, t: jaxviz.finercam(m, x, t, comparison_categories=(2, 1000)),
    "input_x_gradient": lambda m, x, t: jaxviz.input_x_gradient(m, x, t),
    "deconvolution": lambda m, x, t: jaxviz.deconvolution(m, x, t, rule="all"),
    "deeplift": lambda m, x, t: jaxviz.deeplift(m, x, t, baselines=0.1),
    "deeplift_shap": lambda m, x, t: jaxviz.deeplift_shap(m, x, t, baselines=np.zeros((2, 40, 48, 3))),
    "gradient_shap": lambda m, x, t: jaxviz.gradient_shap(m, x, t, n_samples=3, stdevs=0.1, key=jax.random.key(0)),
    "feature_ablation": lambda m, x, t: jaxviz.feature_ablation(m, x, t, feature_mask=jaxviz.masks.patches(40, 48, 16)),
    "kernel_shap": lambda m, x, t: jaxviz.kernel_shap(m, x, t, feature_mask=jaxviz.masks.patches(40, 48, 20),
                                                      n_samples=8, key=jax.random.key(0)),
    "lime": lambda m, x, t: jaxviz.lime(m, x, t, feature_mask=jaxviz.masks.patches(40, 48, 20), n_samples=8,
                                        key=jax.random.key(0)),
    "lrp": lambda m, x, t: jaxviz.lrp(m, x, t, composite="epsilon_gamma_box"),
    "layer_gradient_x_activation": lambda m, x, t: jaxviz.layer_gradient_x_activation(m, x, t, layer="features.7"),
    "internal_influence": lambda m, x, t: jaxviz.internal_influence(m, x, t, layer="features.4", n_steps=3),
    "layer_integrated_gradients": lambda m, x, t: jaxviz.layer_integrated_gradients(m, x, t, n_steps=3,
                                                                                    internal_batch_size=2),
    "layer_deeplift": lambda m, x, t: jaxviz.layer_deeplift(m, x, t, layer="features.4", baselines=0.1),
    "layer_gradient_shap": lambda m, x, t: jaxviz.layer_gradient_shap(m, x, t, layer="features.7", n_samples=2,
                                                                      stdevs=0.1, key=jax.random.key(0)),
    "layer_lrp": lambda m, x, t: jaxviz.layer_lrp(m, x, t, layer="features.9", composite="captum"),
    "neuron_conductance": lambda m, x, t: jaxviz.neuron_conductance(m, x, t, layer="features.7", neuron=(3, 1, 1),
                                                                    n_steps=3),
    "layer_feature_ablation": lambda m, x, t: jaxviz.layer_feature_ablation(
        m, x, t, layer="features.12", layer_mask=(np.arange(512) % 5).reshape(1, 512, 1, 1)),
    "shapley_value_sampling": lambda m, x, t: jaxviz.shapley_value_sampling(
        m, x, t, feature_mask=jaxviz.masks.patches(40, 48, 20), n_samples=2, key=jax.random.key(0)),
    "rise": lambda m, x, t: jaxviz.rise(m, x, t, n_masks=6, key=jax.random.key(0)),
}


@pytest.mark.parametrize("name", list(TARGETED))
def test_shapes(model, x, name):
    """Every method accepts a batch of two non-square images.  Traced, not compiled
    (jax.eval_shape): the values are the parity tests' (47 compilations took 117 s).
    XRAI chooses its regions on the host, from computed maps: it runs."""
    def run():
        return TARGETED[name](model, x, np.array([1, 2]))

    out = run() if name == "xrai" else jax.eval_shape(run)
    assert out.shape[0] == 2 and out.dtype == np.float32


@pytest.mark.parametrize("name", list(TARGETED))
@pytest.mark.parametrize(
    "target, match",
    [
        (np.array([1, 1000]), r"`target` values must be in 0..999, got \[1000\]"),
        (np.array([-1, 3]), r"`target` values must be in 0..999, got \[-1\]"),
        (np.array([1, 2, 3]), r"`target` must have shape \(2,\)"),
        (np.array([[1], [2]]), r"`target` must have shape \(2,\)"),
        (np.array([1.0, 2.0]), "integer class indices"),
    ],
)
def test_bad_target(model, x, name, target, match):
    with pytest.raises(jaxviz.JaxvizError, match=match):
        TARGETED[name](model, x, target)


@pytest.mark.parametrize("name", list(TARGETED))
def test_nan_input(model, x, name):
    bad = x.copy()
    bad[1, 3, 4, 0] = np.nan
    with pytest.raises(jaxviz.InputError, match="`x` contains NaN"):
        TARGETED[name](model, bad, np.array([1, 2]))


def _with_nan(shape):
    values = jnp.zeros(shape)  # a jax array: tested on its device (_checks.all_finite)
    return values.at[(0,) * len(shape)].set(jnp.nan)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m, x, t: jaxviz.integrated_gradients(m, x, t, baselines=_with_nan(x.shape)),
         "`baselines` contains NaN"),
        (lambda m, x, t: jaxviz.deeplift(m, x, t, baselines=float("nan")), "`baselines` contains NaN"),
        (lambda m, x, t: jaxviz.deeplift(m, x, t, baselines=_with_nan(x.shape[1:])), "`baselines` contains NaN"),
        (lambda m, x, t: jaxviz.gradient_shap(m, x, t, baselines=_with_nan(x.shape), key=jax.random.key(0)),
         "`baselines` contains NaN"),
        (lambda m, x, t: jaxviz.rise(m, x, t, masks=_with_nan((3,) + x.shape[1:3])), "`masks` contains NaN"),
        (lambda m, x, t: jaxviz.metrics.infidelity(m, x, t, np.ones(x.shape, np.float32),
                                                   perturbations=_with_nan((2,) + x.shape), n_perturb_samples=2),
         "`perturbations` contains NaN"),
        (lambda m, x, t: jaxviz.metrics.sensitivity_max(m, x, t, jaxviz.saliency, n_perturb_samples=2,
                                                        perturbations=_with_nan((2,) + x.shape)),
         "`perturbations` contains NaN"),
    ],
)
def test_nan_in_other_inputs(model, x, call, match):
    with pytest.raises(jaxviz.InputError, match=match):
        call(model, x, np.array([1, 2]))


@pytest.mark.parametrize(
    "call",
    [
        lambda m, x, t: jaxviz.layer_gradcam(m, x, t, layer="features.99"),
        lambda m, x, t: jaxviz.guided_gradcam(m, x, t, layer="conv5"),
        lambda m, x, t: jaxviz.layer_conductance(m, x, t, layer="features.3.nope"),
        lambda m, x, t: jaxviz.layer_activation(m, x, "classifier.9"),
    ],
)
def test_unknown_layer(model, x, call):
    with pytest.raises(jaxviz.UnknownLayerError, match="is not a layer of squeezenet1_1"):
        call(model, x, np.array([1, 2]))


def test_window_larger_than_image(model, x):
    with pytest.raises(jaxviz.InputError, match=r"`sliding_window_shapes` \(41, 5, 3\) is larger than the image"):
        jaxviz.occlusion(model, x, np.array([1, 2]), sliding_window_shapes=(41, 5, 3))
    with pytest.raises(jaxviz.InputError, match="3 positive ints"):
        jaxviz.occlusion(model, x, np.array([1, 2]), sliding_window_shapes=(4, 4))
    with pytest.raises(jaxviz.InputError, match="strides"):
        jaxviz.occlusion(model, x, np.array([1, 2]), sliding_window_shapes=(4, 4, 3), strides=(0, 1, 1))


@pytest.mark.parametrize("fn", [jaxviz.integrated_gradients, lambda *a, **k: jaxviz.layer_conductance(*a[:3], layer="features.3", **k)])
def test_n_steps_must_be_positive(model, x, fn):
    with pytest.raises(jaxviz.InputError, match=r"`n_steps` must be >= 1, got 0"):
        fn(model, x, np.array([1, 2]), n_steps=0)


def test_bad_options(model, x):
    t = np.array([1, 2])
    with pytest.raises(jaxviz.InputError, match="`method` must be one of"):
        jaxviz.integrated_gradients(model, x, t, method="simpson")
    with pytest.raises(jaxviz.InputError, match="n_steps` must be >= 2 for riemann_trapezoid"):
        jaxviz.integrated_gradients(model, x, t, n_steps=1, method="riemann_trapezoid")
    with pytest.raises(jaxviz.InputError, match="`baselines` must be a scalar or have shape"):
        jaxviz.integrated_gradients(model, x, t, baselines=np.zeros((3, 40, 48, 3)))
    with pytest.raises(jaxviz.InputError, match="`interpolate_mode` must be one of"):
        jaxviz.guided_gradcam(model, x, t, interpolate_mode="area")
    with pytest.raises(jaxviz.InputError, match="`nt_type` must be one of"):
        jaxviz.smooth(jaxviz.saliency, nt_type="smooth")
    with pytest.raises(jaxviz.InputError, match="`key`"):
        jaxviz.smooth(jaxviz.saliency)(model, x, t)
    with pytest.raises(jaxviz.InputError, match="`noise` must have shape"):
        jaxviz.smooth(jaxviz.saliency, nt_samples=2)(model, x, t, noise=np.zeros((3, 2, 40, 48, 3)))


def test_bad_options_of_the_shap_methods(model, x):
    t = np.array([1, 2])
    with pytest.raises(jaxviz.InputError, match="`key`"):
        jaxviz.gradient_shap(model, x, t)
    with pytest.raises(jaxviz.InputError, match=r"`baseline_indices` must lie in \[0, 2\)"):
        jaxviz.gradient_shap(model, x, t, baselines=np.zeros((2, 40, 48, 3)), n_samples=1,
                             baseline_indices=np.array([[0, 2]]), alphas=np.zeros((1, 2)))
    with pytest.raises(jaxviz.InputError, match=r"`alphas` must have shape \(3, 2\)"):
        jaxviz.gradient_shap(model, x, t, n_samples=3, key=jax.random.key(0), alphas=np.zeros((2, 3)))
    with pytest.raises(jaxviz.InputError, match="`noise` must have shape"):
        jaxviz.gradient_shap(model, x, t, n_samples=1, key=jax.random.key(0), noise=np.zeros((1, 2, 40, 40, 3)))
    with pytest.raises(jaxviz.InputError, match="`baselines` must be a scalar or have shape"):
        jaxviz.gradient_shap(model, x, t, baselines=np.zeros((40, 48)), key=jax.random.key(0))
    with pytest.raises(jaxviz.InputError, match="`baselines`.*is required"):
        jaxviz.deeplift_shap(model, x, t, baselines=None)
    with pytest.raises(jaxviz.InputError, match="`rule` must be one of"):
        jaxviz.deeplift(model, x, t, rule="modules-and-pools")
    with pytest.raises(jaxviz.InputError, match="odd batch of 3"):
        jax.grad(lambda v: model.apply(model.params, v, guided=("deeplift", "modules")).sum())(x[:1].repeat(3, 0))
    with pytest.raises(jaxviz.InputError, match="`guided` must be"):
        model.apply(model.params, x, guided=("deeplift", "some"))
    with pytest.raises(jaxviz.UnknownLayerError, match="'features.99' is not a layer"):
        model.apply(model.params, x, guided=("deeplift", "modules", "features.99"))
    with pytest.raises(jaxviz.InputError, match="cannot be shared from 'features.3'"):  # before a max-pool
        model.apply(model.params, x, guided=("deeplift", "modules", "features.3"))


@pytest.mark.parametrize("arch, rule, start", [
    ("densenet121", "modules", None),  # its functional ReLU after the last max-pool keeps each half's gradient
    ("densenet121", "all", "features.pool0"),
    ("googlenet", "modules", "inception5b"),  # max-pools inside the Inception blocks: pairs up to the last
    ("mobilenet_v3_small", "modules", "input"),  # no max-pool: never pairs, gates and all
])
def test_where_deeplift_shares_one_reference(arch, rule, start):
    """A batch with one reference goes back to it once after the last max-pool, at the first
    layer that cuts the network after anything giving a pair's halves different gradients
    (the architectures of test_captum_methods_parity's own test: SqueezeNet, ResNet-18,
    MobileNetV2, VGG)."""
    import importlib

    from jaxviz.models import catalog

    module = importlib.import_module("jaxviz.attribution.deeplift")
    assert module._first_shared_layer(catalog.network(arch), rule, (64, 64, 3)) == start


def test_gradient_shap_draws_have_the_right_distribution(model):
    """The draws a key gives: baselines uniformly, noise N(0, stdevs²), α ~ U[0, 1), all
    independent."""
    import importlib

    module = importlib.import_module("jaxviz.attribution.gradient_shap")
    draws = module.sample_draws(jax.random.key(1), 4000, 3, 5, (2, 2, 3), 0.5, jnp.float32)
    indices, noise, alphas = map(np.asarray, draws)
    assert indices.shape == alphas.shape == (4000, 3) and noise.shape == (4000, 3, 2, 2, 3)
    counts = np.bincount(indices.ravel(), minlength=5) / indices.size
    np.testing.assert_allclose(counts, 0.2, atol=0.01)  # uniform over the baselines
    assert 0 <= alphas.min() and alphas.max() < 1
    np.testing.assert_allclose([alphas.mean(), alphas.var()], [0.5, 1 / 12], atol=0.01)  # U[0, 1)
    np.testing.assert_allclose([noise.mean(), noise.std()], [0.0, 0.5], atol=0.01)  # N(0, 0.5²)
    # independent across samples and images: no correlation between neighbouring draws
    assert abs(np.corrcoef(alphas[:, 0], alphas[:, 1])[0, 1]) < 0.05
    assert abs(np.corrcoef(indices[:-1, 0], indices[1:, 0])[0, 1]) < 0.05


def test_deeplift_and_deconvolution_rules_by_hand():
    from jaxviz.models import layers

    relu = layers.BACKWARD_RULES["deeplift"]["relu"]
    x = jnp.array([2.0, -1.0, 3.0, 1.0, 4.0, 3.0])  # inputs 2, −1, 3 and references 1, 4, 3
    (g,) = jax.vjp(relu, x)[1](jnp.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]))
    # multipliers Δrelu/Δx: (2−1)/(2−1) = 1, (0−4)/(−1−4) = 0.8, and the gradient where Δx = 0
    np.testing.assert_allclose(g, [1.0, 0.8, 1.0, 2.0, 1.6, 2.0])
    deconv = layers.BACKWARD_RULES["deconvolution"]["relu6"]
    (g,) = jax.vjp(deconv, jnp.array([-1.0, 3.0, 7.0]))[1](jnp.array([2.0, -1.0, 3.0]))
    np.testing.assert_array_equal(g, [2.0, 0.0, 3.0])  # max(g, 0) whatever the input
    # the max-pool rule: one 2×2 window per image; input max 5 at (0, 1), reference max 7 at (1, 0)
    pair = jnp.array([[[1.0, 5.0], [0.0, 2.0]], [[3.0, 0.0], [7.0, 1.0]]]).reshape(2, 2, 2, 1)
    (g,) = jax.vjp(lambda v: layers.rescale_max_pool(v, 2), pair)[1](jnp.ones((2, 1, 1, 1)))
    # Δout = 5 − 7 = −2 goes back half through each maximum: 0 above the reference's max at
    # the input's, −2 at the reference's; divided by Δin at each position
    delta_in = (pair[0] - pair[1])[..., 0]
    expected = np.array([[0.0, 0.0], [-2.0, 0.0]]) / np.where(delta_in == 0, 1, delta_in)
    np.testing.assert_allclose(g[0, ..., 0], expected)
    np.testing.assert_allclose(g[1, ..., 0], expected)


@pytest.mark.parametrize("pool", [(3, 2, 0, True), (3, 2, 1, False), (2, 2, 0, False)])
def test_pairing_max_pool_is_the_max_pool_of_the_copied_reference(pool):
    """Inputs followed by one reference: the pairs out, and each input's gradient that of
    the reference copied for each input before the max-pool rule (SqueezeNet's, ResNet's
    and VGG's pools), also where an input equals the reference (the rule's plain branch)."""
    from jaxviz.models import layers

    n = 3
    x = jax.random.normal(jax.random.key(0), (n + 1, 9, 9, 2))
    x = x.at[0, :4].set(x[n, :4])  # the first input is the reference on its top rows
    g = jax.random.normal(jax.random.key(1), (2 * n,) + layers.max_pool(x, *pool[:3], ceil_mode=pool[3]).shape[1:])
    ours, pullback = jax.vjp(lambda v: layers.pairing_max_pool(v, *pool[:3], ceil_mode=pool[3]), x)
    copied, copied_pullback = jax.vjp(
        lambda v: layers.rescale_max_pool(layers.expand_reference(v), *pool[:3], ceil_mode=pool[3]), x)
    np.testing.assert_array_equal(ours, copied)
    (grads,), (expected,) = pullback(g), copied_pullback(g)
    assert np.abs(np.asarray(expected[0, :4])).max() > 0  # the plain branch carries a gradient
    np.testing.assert_allclose(grads[:n], expected[:n], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(grads[n], 0)  # nothing below reads the reference's
    np.testing.assert_array_equal(expected[n], 0)  # nor does expand_reference pass its copies' back


def test_deeplift_of_a_relu_network_is_exact_for_two_points(model, x):
    """Summation to delta on SqueezeNet (every nonlinearity a ReLU module or a max-pool)."""
    t = np.array([1, 2])
    attributions, delta = jaxviz.deeplift(model, x, t, baselines=0.3, return_convergence_delta=True)
    gap = np.asarray(scoring.batch_target_logits(model, jnp.asarray(x), jnp.asarray(t))
                     - scoring.batch_target_logits(model, jnp.full_like(x, 0.3), jnp.asarray(t)))
    assert np.abs(gap).min() > 1e-2
    np.testing.assert_allclose(np.asarray(attributions).reshape(2, -1).sum(1), gap, rtol=1e-3, atol=1e-4)
    assert np.abs(np.asarray(delta)).max() <= 1e-3 * np.abs(gap).max()


def test_feature_ablation_by_hand(model, x):
    """Each feature's elements get F(x) − F(x with the feature at the baseline); a plain
    loop over the features gives the same, and the chunking does not change it."""
    t = np.array([3, 4])
    mask = np.stack([jaxviz.masks.patches(40, 48, (20, 24)), np.zeros((40, 48), np.int32)])  # 4 features, 1
    mask[1, :10] = 2  # the second image: features 0 and 2 (1 and 3 absent)
    ours = np.asarray(jaxviz.feature_ablation(model, x, t, feature_mask=mask, baselines=0.5,
                                              perturbations_per_eval=3))
    scores = lambda v: np.asarray(scoring.batch_target_logits(model, jnp.asarray(v), jnp.asarray(t)))  # noqa: E731
    base = scores(x)
    expected = np.zeros_like(x)
    for k in range(4):
        inside = (mask == k)[..., None]
        drop = base - scores(np.where(inside, 0.5, x))
        expected += inside * drop[:, None, None, None]
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    assert len(np.unique(ours[0, :, :, 0])) == 4 and len(np.unique(ours[1, :, :, 0])) == 2
    one_per_pass = jaxviz.feature_ablation(model, x, t, feature_mask=mask, baselines=0.5, perturbations_per_eval=1)
    np.testing.assert_allclose(one_per_pass, ours, rtol=1e-5, atol=1e-6 * np.abs(ours).max())


def test_shapley_values_of_a_linear_model_are_exact_and_orders_uniform():
    """For F(x) = Σ w·x every order gives each feature Σ_f w·(x − b), whatever the orders;
    and the orders a key draws are uniform: each feature at each position with chance 1/F."""
    import importlib

    w = jax.random.normal(jax.random.key(2), (4, 5, 3, 3))
    model = jaxviz.from_function(lambda p, v: jnp.einsum("nhwc,hwck->nk", v, p), w, input_size=(4, 5))
    x = np.asarray(jax.random.normal(jax.random.key(3), (2, 4, 5, 3)))
    mask = jaxviz.masks.patches(4, 5, 2)  # 6 features
    ours = jaxviz.shapley_value_sampling(model, x, np.array([0, 2]), feature_mask=mask, baselines=0.5, n_samples=3,
                                         key=jax.random.key(1), perturbations_per_eval=4)
    contribution = (x - 0.5) * np.stack([np.asarray(w)[..., 0], np.asarray(w)[..., 2]])  # each image's class
    expected = np.zeros_like(x)
    for f in range(6):
        inside = (mask == f)[None, :, :, None]
        expected += inside * (contribution * inside).sum(axis=(1, 2, 3))[:, None, None, None]
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)
    orders = np.asarray(importlib.import_module("jaxviz.attribution.shapley_value_sampling").sample_orders(
        jax.random.key(5), 6000, 6))
    np.testing.assert_array_equal(np.sort(orders, axis=1), np.tile(np.arange(6), (6000, 1)))
    at = np.stack([(orders == f).mean(axis=0) for f in range(6)])  # at[f, i]: chance f is i-th
    np.testing.assert_allclose(at, 1 / 6, atol=0.02)
    with pytest.raises(jaxviz.InputError, match="`key`"):
        jaxviz.shapley_value_sampling(model, x, 0, feature_mask=mask)
    with pytest.raises(jaxviz.InputError, match="must be a permutation"):
        jaxviz.shapley_value_sampling(model, x, 0, feature_mask=mask, n_samples=1, permutations=[[0, 1, 2, 3, 4, 4]])
    with pytest.raises(jaxviz.InputError, match=r"`permutations` must have shape"):
        jaxviz.shapley_value_sampling(model, x, 0, feature_mask=mask, n_samples=2, permutations=[[0, 1, 2, 3, 4, 5]])


def test_kernel_shap_of_a_linear_model_is_exact_and_its_coalitions_follow_the_kernel():
    """An additive score is fitted exactly: each feature gets Σ_f w·(x − b).  The drawn
    coalitions: all and none first, then sizes with p(k) ∝ (M − 1)/(k(M − k)) and every
    feature equally likely at a given size; an image with fewer features draws over its own."""
    import importlib

    w = jax.random.normal(jax.random.key(2), (4, 5, 3, 3))
    model = jaxviz.from_function(lambda p, v: jnp.einsum("nhwc,hwck->nk", v, p), w, input_size=(4, 5))
    x = np.asarray(jax.random.normal(jax.random.key(3), (2, 4, 5, 3)))
    mask = np.stack([jaxviz.masks.patches(4, 5, 2), np.minimum(jaxviz.masks.patches(4, 5, 2), 3)])  # 6 and 4
    ours = jaxviz.kernel_shap(model, x, np.array([0, 2]), feature_mask=mask, baselines=0.5, n_samples=40,
                              key=jax.random.key(1), perturbations_per_eval=7)
    contribution = (x - 0.5) * np.stack([np.asarray(w)[..., 0], np.asarray(w)[..., 2]])
    expected = np.zeros_like(x)
    for n in range(2):
        for f in range(6):
            inside = (mask[n] == f)[:, :, None]
            expected[n] += inside * (contribution[n] * inside).sum()
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)

    module = importlib.import_module("jaxviz.attribution.kernel_shap")
    rows = np.asarray(module.sample_coalitions(jax.random.key(4), 20002, [6, 4]))
    assert rows.shape == (20002, 2, 6)
    np.testing.assert_array_equal(rows[0], [[1] * 6, [1, 1, 1, 1, 0, 0]])
    np.testing.assert_array_equal(rows[1], 0)
    assert not rows[2:, 1, 4:].any()  # the second image's two missing features never drawn
    for image, m in ((0, 6), (1, 4)):
        sizes = rows[2:, image].sum(axis=1)
        kernel = np.array([(m - 1) / (k * (m - k)) for k in range(1, m)])
        np.testing.assert_allclose(np.bincount(sizes, minlength=m)[1:m] / len(sizes), kernel / kernel.sum(), atol=0.01)
        at_two = rows[2:, image][sizes == 2][:, :m].mean(axis=0)
        np.testing.assert_allclose(at_two, 2 / m, atol=0.03)
    with pytest.raises(jaxviz.InputError, match="`key`"):
        jaxviz.kernel_shap(model, x, 0, feature_mask=mask)
    with pytest.raises(jaxviz.InputError, match="at least two features"):
        jaxviz.kernel_shap(model, x, 0, feature_mask=np.zeros((4, 5), int), key=jax.random.key(0))
    with pytest.raises(jaxviz.InputError, match=r"`coalitions` must have shape"):
        jaxviz.kernel_shap(model, x, 0, feature_mask=mask, n_samples=3, coalitions=np.ones((3, 2, 5)))


def test_lime_fits_sklearns_lasso_and_draws_half_the_features():
    """The coordinate descent equals sklearn's Lasso (run to convergence) on a random
    weighted problem, with and without a penalty; the coalitions a key draws hold each of
    an image's own features with chance ½."""
    import importlib

    from sklearn.linear_model import Lasso, LinearRegression

    module = importlib.import_module("jaxviz.attribution.lime")
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, (60, 7)).astype(np.float64)
    y = z @ rng.normal(size=7) + 0.1 * rng.normal(size=60)
    w = rng.uniform(0.2, 1.0, 60)
    with jax.enable_x64():
        for alpha in (0.0, 0.01, 0.2):
            ours = np.asarray(module.lasso(jnp.asarray(z), jnp.asarray(y), jnp.asarray(w), alpha, 100000, 1e-13))
            reference = (Lasso(alpha=alpha, tol=1e-14, max_iter=1000000) if alpha
                         else LinearRegression()).fit(z, y, sample_weight=w).coef_
            np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-11)
        assert (np.asarray(module.lasso(jnp.asarray(z), jnp.asarray(y), jnp.asarray(w), 5.0, 1000, 1e-10)) == 0).all()
    rows = np.asarray(module.sample_coalitions(jax.random.key(1), 20000, [5, 3]))
    assert rows.shape == (20000, 2, 5) and not rows[:, 1, 3:].any()
    np.testing.assert_allclose(rows[:, 0].mean(axis=0), 0.5, atol=0.015)
    np.testing.assert_allclose(rows[:, 1, :3].mean(axis=0), 0.5, atol=0.015)


@pytest.mark.parametrize("name", ["input_x_gradient", "deconvolution", "deeplift", "gradient_shap",
                                  "feature_ablation", "kernel_shap", "lrp", "layer_integrated_gradients",
                                  "layer_lrp", "neuron_conductance"])
def test_smooth_wraps_the_captum_methods(model, x, name):
    """NoiseTunnel around each: its mean over the noisy copies, given the noise."""
    t, noise = np.array([1, 2]), 0.1 * np.asarray(jax.random.normal(jax.random.key(7), (2,) + x.shape))
    method = lambda m, v, tt: TARGETED[name](m, v, tt)  # noqa: E731  (the options of the table)
    method.__signature__ = __import__("inspect").signature(jaxviz.saliency)
    smoothed = jaxviz.smooth(method, nt_samples=2)(model, x, t, noise=noise)
    expected = (np.asarray(method(model, x + noise[0], t)) + np.asarray(method(model, x + noise[1], t))) / 2
    np.testing.assert_allclose(smoothed, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())


def _dense_relevance(rule, x, w, b, g):
    """A rule on one nn.Linear, float64, through the model switch's own code (its sign
    split taken term by term and stacked: the same numbers)."""
    from jaxviz.models import network, relevance

    with jax.enable_x64(True):
        args = [None if v is None else jnp.asarray(v, jnp.float64) for v in (x, w, b, g)]
        stacked = np.asarray(relevance._relevance(network._linear, rule, *args, False, (0, 1)))
        ours = np.asarray(relevance._relevance(network._linear, rule, *args))
    np.testing.assert_allclose(stacked, ours, rtol=1e-14, atol=1e-14 * np.abs(ours).max())
    return ours


def test_lrp_rules_by_hand():
    """Each rule on one dense layer, from its formula (x: (1, 3) inputs, w: (3, 2), b: (2,))."""
    from jaxviz.models import relevance

    x, w = np.array([[1.0, -2.0, 0.5]]), np.array([[1.0, -1.0], [2.0, 3.0], [-0.5, 0.25]])
    b, g = np.array([0.5, -0.25]), np.array([[1.0, 0.5]])
    eps = 1e-6
    z = x @ w + b
    stab = lambda v: v + np.where(v >= 0, eps, -eps)  # noqa: E731
    np.testing.assert_allclose(_dense_relevance(relevance.epsilon(eps), x, w, b, g), x * ((g / stab(z)) @ w.T))
    xp, xn, wp, wn = np.maximum(x, 0), np.minimum(x, 0), np.maximum(w, 0), np.minimum(w, 0)
    s = g / stab(xp @ wp + xn @ wn + np.maximum(b, 0))
    zplus = xp * (s @ wp.T) + xn * (s @ wn.T)
    np.testing.assert_allclose(_dense_relevance(relevance.zplus(eps), x, w, b, g), zplus)
    s_neg = g / stab(xp @ wn + xn @ wp + np.minimum(b, 0))
    negative = xp * (s_neg @ wn.T) + xn * (s_neg @ wp.T)
    np.testing.assert_allclose(_dense_relevance(relevance.alpha_beta(2, 1, eps), x, w, b, g), 2 * zplus - negative)
    # flat: each output's relevance split evenly over its 3 inputs; w²: by the squared weights
    np.testing.assert_allclose(_dense_relevance(relevance.flat(eps), x, w, b, g),
                               np.full((1, 3), g.sum() / (3 + eps)))
    np.testing.assert_allclose(_dense_relevance(relevance.wsquare(eps), x, w, b, g),
                               (g / stab((w**2).sum(0) + b**2)) @ (w**2).T)
    low, high = np.array([-3.0, -3.0, -3.0]), np.array([2.0, 2.0, 2.0])
    s = g / stab(z - (low @ wp + np.maximum(b, 0)) - (high @ wn + np.minimum(b, 0)))
    np.testing.assert_allclose(_dense_relevance(relevance.zbox(-3.0, 2.0, eps), x, w, b, g),
                               x * (s @ w.T) - low * (s @ wp.T) - high * (s @ wn.T))
    # γ = 0 is ε with the same stabiliser, α1β0 is z⁺
    np.testing.assert_allclose(_dense_relevance(relevance.gamma(0.0, eps), x, w, b, g),
                               _dense_relevance(relevance.epsilon(eps), x, w, b, g), rtol=1e-14)
    np.testing.assert_allclose(_dense_relevance(relevance.alpha_beta(1, 0, eps), x, w, b, g), zplus, rtol=1e-14)
    # γ = 0.5: both outputs are negative (z = [-2.75, -7.125]), explained by the negative
    # weights raised (``down``) on positive inputs and the positive raised on negative inputs
    assert (z < 0).all()
    up, down = w + 0.5 * wp, w + 0.5 * wn
    s_neg = g / stab(xp @ down + (b + 0.5 * np.minimum(b, 0)) + xn @ up)
    np.testing.assert_allclose(_dense_relevance(relevance.gamma(0.5, eps), x, w, b, g),
                               xp * (s_neg @ down.T) + xn * (s_neg @ up.T))


def _affine_operations(jaxpr) -> int:
    """Convolutions and matrix products in a program, its sub-programs included."""
    return len(_affine_work(jaxpr))


def _affine_work(jaxpr) -> list[int]:
    """The multiply-adds of each convolution and matrix product in a program, in program
    order, its sub-programs included."""
    from jax.extend import core as jcore

    work = []
    for e in jaxpr.eqns:
        out = math.prod(e.outvars[0].aval.shape)
        if e.primitive.name == "dot_general":
            (contracting, _), _ = e.params["dimension_numbers"]
            work.append(out * math.prod(e.invars[0].aval.shape[d] for d in contracting))
        elif e.primitive.name == "conv_general_dilated":
            kernel = e.invars[1].aval.shape
            work.append(out * math.prod(kernel) // kernel[e.params["dimension_numbers"].rhs_spec[0]])
        for sub in jcore.jaxprs_in_params(e.params):
            work += _affine_work(sub)
    return work


def _relevance_program(model, x, target, composite):
    """LRP's backward pass as a program (traced afresh: no compiled cache in between)."""
    from jaxviz.models import network

    def logit(v):
        return network.run(model.architecture.network, model.params, v, guided=("lrp", composite),
                           target=target).sum()

    return jax.make_jaxpr(jax.grad(logit))(x)


def _own_branching_model():
    """A function network whose second convolution reads a concatenation of a ReLU and its
    max-pool (reached through the traced program, not jaxviz's own layers)."""
    def apply(p, x):
        conv = functools.partial(jax.lax.conv_general_dilated, window_strides=(1, 1), padding="SAME",
                                 dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jax.nn.relu(conv(x, p["conv1"]) + p["bias1"][None, None, None])
        pooled = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
        h = jax.nn.relu(conv(jnp.concatenate([h, pooled], axis=-1), p["conv2"]))
        return h.mean(axis=(1, 2)) @ p["dense"]

    keys = jax.random.split(jax.random.key(4), 4)
    params = {"conv1": jax.random.normal(keys[0], (3, 3, 3, 4)), "bias1": jax.random.normal(keys[1], (4,)),
              "conv2": jax.random.normal(keys[2], (3, 3, 8, 5)), "dense": jax.random.normal(keys[3], (5, 3))}
    return jaxviz.from_function(apply, params, input_size=8)


# the layers that read a ReLU's output and take the rule's sign split, as a slice of the
# forward pass's affine layers, and how many: all but the first convolution (SqueezeNet: its
# class convolution included; ResNet-18: the downsampling ones included), and not a last
# linear layer (it takes ε, which does not split)
NONNEGATIVE_INPUTS = {"squeezenet1_1": (slice(1, None), 25), "resnet18": (slice(1, -1), 19), "own": (slice(1, -1), 1)}


@pytest.mark.parametrize("arch", list(NONNEGATIVE_INPUTS))
def test_lrp_skips_the_negative_part_of_inputs_that_are_never_negative(arch, monkeypatch):
    """A layer reading a ReLU's output (or a max-pool or concatenation of such) has no
    negative inputs: αβ and γ leave out the multiply-adds of the negative part, half of
    their split, and the relevance is the same number (float64).

    The numbers are compared here on the function network alone; on SqueezeNet and
    ResNet-18 the program that skips is the one the parity tests compare with zennit's in
    float64 (test_lrp_parity: αβ and γ in every composite and rule test), so here their
    programs are traced and measured, not compiled (four float64 compiles took 100 s of
    the suite for ResNet-18 alone)."""
    from jax.extend import core as jcore

    from jaxviz.models import network

    with jax.enable_x64(True):
        if arch == "own":
            model, size = _own_branching_model().astype(jnp.float64), 8
        else:
            model, size = jaxviz.init_model(jax.random.key(5), arch).astype(jnp.float64), 32
        x = jax.random.normal(jax.random.key(1), (2, size, size, 3), jnp.float64)
        target = jnp.argmax(model(x), axis=1)  # (a random SqueezeNet's ReLU'd logits are mostly 0)
        forward = _affine_work(jax.make_jaxpr(
            lambda v: network.run(model.architecture.network, model.params, v, target=target))(x).jaxpr)
        layers, count = NONNEGATIVE_INPUTS[arch]
        assert len(forward[layers]) == count
        for rule in (jaxviz.relevance.alpha_beta(2, 1), jaxviz.relevance.gamma(0.25)):
            composite = jaxviz.relevance.Composite(conv=rule)
            saving = _relevance_program(model, x, target, composite)
            with monkeypatch.context() as patch:
                patch.setattr(network.Forward, "is_nonnegative", lambda self, value: False)
                plain = _relevance_program(model, x, target, composite)
            if arch == "own":
                ours, want = (np.asarray(jax.jit(jcore.jaxpr_as_fun(p))(x)[0]) for p in (saving, plain))
                np.testing.assert_allclose(ours, want, rtol=1e-13, atol=1e-13 * np.abs(want).max())
                assert np.abs(want).max() > 0
            skipped = sum(_affine_work(plain.jaxpr)) - sum(_affine_work(saving.jaxpr))
            # per layer, the negative part's two products and two transposed ones, each of
            # the latter traced beside the (unused) product whose VJP it is: six times the
            # layer's forward work (in four products, or stacked in fewer, wider ones)
            assert skipped == 6 * sum(forward[layers]), (rule.name, skipped, 6 * sum(forward[layers]))


def test_lrp_stacks_the_sign_split_into_one_convolution():
    """Given the weights' channel axes, z⁺, αβ and γ take a convolution once for x⁺ and
    x⁻ and every term, and transpose it once: the same numbers (float64) from one product
    and one transposed product where there were up to four of each."""
    from jaxviz.models import network, relevance

    conv = functools.partial(network._conv, stride=2, padding=1)
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(7), 4)
        x = jax.random.normal(keys[0], (2, 9, 9, 3), jnp.float64)
        w, b = jax.random.normal(keys[1], (3, 3, 3, 5), jnp.float64), jax.random.normal(keys[2], (5,), jnp.float64)
        g = jax.random.normal(keys[3], (2, 5, 5, 5), jnp.float64)
        for rule in (relevance.zplus(), relevance.alpha_beta(2, 1), relevance.gamma(0.25)):
            terms = 1 if rule.name == "zplus" else 2
            plain_z = rule.name == "gamma"  # γ's sign of the plain output
            for nonnegative in (False, True):
                inputs = jnp.maximum(x, 0) if nonnegative else x

                def split(v, stack, rule=rule, nonnegative=nonnegative):
                    return relevance._relevance(conv, rule, v, w, b, g, nonnegative, stack)

                stacked, unstacked = (jax.jit(split, static_argnums=1)(inputs, stack) for stack in ((2, 3), None))
                np.testing.assert_allclose(stacked, unstacked, rtol=1e-13, atol=1e-13 * np.abs(unstacked).max())
                assert np.abs(unstacked).max() > 0
                # a transposed product is traced beside the product whose VJP it is
                assert _affine_operations(jax.make_jaxpr(split, static_argnums=1)(inputs, (2, 3)).jaxpr) == 3 + plain_z
                per_term = 3 if nonnegative else 6
                assert (_affine_operations(jax.make_jaxpr(split, static_argnums=1)(inputs, None).jaxpr)
                        == terms * per_term + plain_z)


def test_lrp_conserves_relevance_without_biases(model, x):
    """z⁺ and ε conserve relevance exactly where no bias or stabiliser takes a share: the
    pretrained SqueezeNet with its biases zeroed, every ReLU module passing relevance on."""
    zero = model.replace(params=jax.tree_util.tree_map_with_path(
        lambda path, p: p * 0 if "bias" in jax.tree_util.keystr(path) else p, model.params))
    composite = jaxviz.relevance.epsilon_plus(epsilon=1e-12, stabilizer=1e-12)
    totals = np.asarray(jaxviz.lrp(zero, x, np.array([1, 2]), composite=composite)).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(totals, 1.0, rtol=1e-4)


def test_bad_lrp_options(model, x):
    t = np.array([1, 2])
    with pytest.raises(jaxviz.InputError, match="`composite` must be one of"):
        jaxviz.lrp(model, x, t, composite="epsilon")
    with pytest.raises(jaxviz.InputError, match="relevance.Composite"):
        jaxviz.lrp(model, x, t, composite=jaxviz.relevance.epsilon())
    with pytest.raises(jaxviz.InputError, match="alpha - beta = 1"):
        jaxviz.relevance.alpha_beta(1, 1)
    with pytest.raises(jaxviz.InputError, match="differ in length"):
        jaxviz.relevance.zbox([0, 0, 0], [1, 1])
    with pytest.raises(jaxviz.InputError, match="a BatchNorm takes the epsilon rule"):
        jaxviz.relevance.Composite(conv=jaxviz.relevance.zplus(), batch_norm=jaxviz.relevance.zplus())
    with pytest.raises(jaxviz.InputError, match="unknown LRP rule"):
        jaxviz.relevance.Rule("lrp0")
    with pytest.raises(jaxviz.InputError, match="2 values; the images have 3"):
        jaxviz.lrp(model, x, t, composite=jaxviz.relevance.epsilon_gamma_box([0, 0], [1, 1]))
    with pytest.raises(jaxviz.UnknownLayerError):
        jaxviz.lrp(model, x, t, composite=jaxviz.relevance.Composite(
            conv=jaxviz.relevance.zplus(), layers=(("features.99", jaxviz.relevance.flat()),)))
    with pytest.raises(jaxviz.InputError, match="`guided` must be"):
        model.apply(model.params, x, guided=("lrp", "epsilon_plus"))


def test_a_neuron_is_one_unit_of_its_layer(model, x):
    """The neuron methods differentiate the captured unit, per image, in PyTorch's order."""
    grads = jaxviz.neuron_gradient(model, x, np.array([[5, 1, 2], [9, 0, 3]]), layer="features.7")
    value = lambda v: model.apply(model.params, v, capture=("features.7",))["features.7"]  # noqa: E731
    expected = jax.grad(lambda v: value(v)[0, 1, 2, 5] + value(v)[1, 0, 3, 9])(jnp.asarray(x))
    np.testing.assert_allclose(grads, expected, rtol=1e-5, atol=1e-7)
    dense = jaxviz.neuron_gradient(model, x, 17, layer="output")  # a layer of (N, F): (feature,)
    logit = jax.grad(lambda v: model.apply(model.params, v)[:, 17].sum())(jnp.asarray(x))
    np.testing.assert_allclose(dense, logit, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("neuron, match", [
    ((5, 1), r"3 indices, or \(2, 3\) one per image"),
    ((600, 0, 0), "out of range"),
    ((1.5, 0, 0), "integer indices"),
    (np.zeros((3, 3), int), r"\(2, 3\) one per image"),
])
def test_bad_neurons(model, x, neuron, match):
    with pytest.raises(jaxviz.InputError, match=match):
        jaxviz.neuron_integrated_gradients(model, x, neuron, layer="features.7")


def test_a_neuron_of_an_unknown_layer(model, x):
    with pytest.raises(jaxviz.UnknownLayerError):
        jaxviz.neuron_gradient(model, x, (0, 0, 0), layer="features.99")


def test_layer_integrated_gradients_is_complete_on_a_path_through_the_head(model, x):
    """From the last block (a 1×1 convolution, ReLU and average pool follow) with many
    steps, LIG sums to F(x) − F(b) up to the quadrature of the ReLU's kinks."""
    t = np.array([1, 2])
    lig = jaxviz.layer_integrated_gradients(model, x, t, layer="features.12", n_steps=200, baselines=0.0)
    gap = np.asarray(scoring.batch_target_logits(model, jnp.asarray(x), jnp.asarray(t)) -
                     scoring.batch_target_logits(model, jnp.zeros_like(x), jnp.asarray(t)))
    np.testing.assert_allclose(np.asarray(lig).sum(axis=(1, 2, 3)), gap, rtol=2e-2, atol=1e-3)


def test_layer_feature_ablation_of_single_units_by_hand(model, x):
    """Without a mask every unit is its own feature: its attribution is the score's drop
    when that unit alone is set to the baseline."""
    t = np.array([1, 2])
    attributions = np.asarray(jaxviz.layer_feature_ablation(model, x, t, layer="features.12",
                                                            perturbations_per_eval=512))
    (outputs,) = scoring.layer_outputs(model, jnp.asarray(x), ("features.12",))
    base = np.asarray(scoring.batch_target_logits(model, jnp.asarray(x), jnp.asarray(t)))
    strongest = np.unravel_index(int(np.asarray(outputs[0]).argmax()), outputs.shape[1:])
    for unit in [tuple(int(i) for i in strongest), (1, 0, 511)]:  # (row, column, channel)
        delta = jnp.zeros_like(outputs).at[(slice(None),) + unit].set(-outputs[(slice(None),) + unit])
        ablated = np.asarray(scoring.target_logits(model, jnp.asarray(x), jnp.asarray(t),
                                                   perturb={"features.12": delta})[0])
        np.testing.assert_allclose(attributions[(slice(None),) + unit], base - ablated, rtol=1e-4,
                                   atol=1e-6 * np.abs(base).max())  # float32 rounding of the logits
    assert np.abs(attributions[(0,) + tuple(int(i) for i in strongest)]) > 1e-3 * np.abs(base).max()


def test_smooth_wraps_a_neuron_method(model, x):
    """A neuron method's target is its unit: smooth checks it as one and passes it on."""
    noise = 0.1 * np.asarray(jax.random.normal(jax.random.key(3), (2,) + x.shape))
    smoothed = jaxviz.smooth(jaxviz.neuron_guided_backprop, nt_samples=2)(model, x, (3, 1, 1), noise=noise,
                                                                          layer="features.7")
    expected = sum(np.asarray(jaxviz.neuron_guided_backprop(model, x + n, (3, 1, 1), layer="features.7"))
                   for n in noise) / 2
    np.testing.assert_allclose(smoothed, expected, rtol=1e-4, atol=1e-5 * np.abs(expected).max())
    with pytest.raises(jaxviz.InputError, match="needs `layer`"):
        jaxviz.smooth(jaxviz.neuron_gradient, nt_samples=2)(model, x, (3, 1, 1), noise=noise)


def test_feature_masks():
    np.testing.assert_array_equal(jaxviz.masks.patches(3, 5, 2), [[0, 0, 1, 1, 2], [0, 0, 1, 1, 2], [3, 3, 4, 4, 5]])
    images = (np.random.default_rng(0).uniform(size=(2, 30, 34, 3)) * 255).astype(np.uint8)
    images[1, :, :17] = 0  # a flat half
    for method in jaxviz.masks.SEGMENTATIONS:
        masks = jaxviz.masks.segments(images, method=method)
        assert masks.shape == (2, 30, 34) and masks.dtype == np.int32
        for m in masks:  # ids 0 … k−1, none missing
            np.testing.assert_array_equal(np.unique(m), np.arange(m.max() + 1))
    assert jaxviz.masks.segments(images[0], n_segments=8).shape == (30, 34)
    with pytest.raises(jaxviz.InputError, match="uint8"):
        jaxviz.masks.segments(images.astype(np.float32))
    with pytest.raises(jaxviz.InputError, match="`method` must be one of"):
        jaxviz.masks.segments(images, method="watershed")


def test_bad_feature_masks(model, x):
    t = np.array([1, 2])
    with pytest.raises(jaxviz.InputError, match="integer feature ids"):
        jaxviz.feature_ablation(model, x, t, feature_mask=np.zeros((40, 48)))
    with pytest.raises(jaxviz.InputError, match=r"`feature_mask` must have shape .* got \(40, 47\)"):
        jaxviz.feature_ablation(model, x, t, feature_mask=np.zeros((40, 47), int))
    with pytest.raises(jaxviz.InputError, match="must be >= 0"):
        jaxviz.feature_ablation(model, x, t, feature_mask=-np.ones((40, 48), int))
    with pytest.raises(jaxviz.InputError, match="`perturbations_per_eval` must be >= 1"):
        jaxviz.feature_ablation(model, x, t, feature_mask=np.zeros((40, 48), int), perturbations_per_eval=0)


def test_compiles_once_per_shape(model, x):
    import importlib

    # the package re-exports functions under the module names: fetch the modules themselves
    ig_module = importlib.import_module("jaxviz.attribution.integrated_gradients")
    occ_module = importlib.import_module("jaxviz.attribution.occlusion")
    sal_module = importlib.import_module("jaxviz.attribution.saliency")

    calls = [
        (sal_module._saliency, lambda: jaxviz.saliency(model, x, np.array([1, 2]))),
        (ig_module._integrated_gradients, lambda: jaxviz.integrated_gradients(model, x, np.array([3, 4]), n_steps=3)),
        (occ_module._occlusion, lambda: jaxviz.occlusion(model, x, np.array([3, 4]), sliding_window_shapes=(20, 24, 3), strides=20)),
    ]
    for compiled, call in calls:
        call()
        size = compiled._cache_size()
        call()
        call()
        assert compiled._cache_size() == size, compiled


def test_methods_compose_under_jit(model, x):
    f = jax.jit(lambda m, v, t: jaxviz.guided_gradcam(m, v, t) + jaxviz.saliency(m, v, t, absolute=False))
    out = f(model, x, jnp.array([1, 2]))
    expected = jaxviz.guided_gradcam(model, x, np.array([1, 2])) + jaxviz.saliency(model, x, np.array([1, 2]), absolute=False)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)


def test_scalar_target_is_broadcast(model, x):
    np.testing.assert_array_equal(jaxviz.saliency(model, x, 5), jaxviz.saliency(model, x, np.array([5, 5])))


def test_smooth_same_key_same_result(model, x):
    a = jaxviz.smooth(jaxviz.saliency, nt_samples=2)(model, x, np.array([1, 2]), key=jax.random.key(3))
    b = jaxviz.smooth(jaxviz.saliency, nt_samples=2)(model, x, np.array([1, 2]), key=jax.random.key(3))
    c = jaxviz.smooth(jaxviz.saliency, nt_samples=2)(model, x, np.array([1, 2]), key=jax.random.key(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_quadrature_by_hand():
    alphas, weights = _paths.quadrature("riemann_trapezoid", 5)
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.1, 0.2, 0.2, 0.2, 0.1])
    alphas, weights = _paths.quadrature("gausslegendre", 2)
    np.testing.assert_allclose(alphas, [0.5 - 0.5 / np.sqrt(3), 0.5 + 0.5 / np.sqrt(3)])
    np.testing.assert_allclose(weights, [0.5, 0.5])
    np.testing.assert_allclose(_paths.quadrature("riemann_middle", 4)[0], [0.125, 0.375, 0.625, 0.875])


def test_interpolation_by_hand():
    np.testing.assert_array_equal(interpolation.interpolation_matrix(2, 4, "nearest"), [[1, 0], [1, 0], [0, 1], [0, 1]])
    np.testing.assert_allclose(
        interpolation.interpolation_matrix(2, 4, "bilinear"), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]]
    )
    for mode in ("bilinear", "bicubic"):
        np.testing.assert_allclose(interpolation.interpolation_matrix(3, 10, mode).sum(1), 1.0, rtol=1e-6)


def test_occlusion_window_masks_by_hand():
    from jaxviz.attribution.occlusion import window_masks

    np.testing.assert_array_equal(window_masks(5, 2, 2), [[1, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1]])


def test_occlusion_equals_a_plain_loop_on_the_model(model):
    # axiom: occlusion is the mean score drop over covering windows
    x = np.random.default_rng(5).normal(size=(1, 24, 24, 3)).astype(np.float32)
    t = np.array([7])
    ours = np.asarray(jaxviz.occlusion(model, x, t, sliding_window_shapes=(10, 10, 3), strides=(7, 7, 3)))
    base = float(model(x)[0, 7])
    total = np.zeros_like(x)
    count = np.zeros_like(x)
    for i in range(0, 24 - 10 + 7, 7):
        for j in range(0, 24 - 10 + 7, 7):
            ablated = x.copy()
            ablated[:, i : i + 10, j : j + 10] = 0
            total[:, i : i + 10, j : j + 10] += base - float(model(ablated)[0, 7])
            count[:, i : i + 10, j : j + 10] += 1
    np.testing.assert_allclose(ours, total / count, rtol=1e-4, atol=1e-5)


@pytest.mark.float64_only
@pytest.mark.parametrize("layer", ["features.12", "classifier.1", "features.12.expand3x3_activation", "features.11"])
def test_guided_gradcam_single_pass_equals_its_definition_float64(layer):
    """At layers above which only classifier.2's ReLU remains, guided_gradcam takes the
    layer gradient from the guided pass; it must equal GradCAM × guided backprop."""
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(6)).astype(jnp.float64)
        x = jnp.asarray(np.random.default_rng(4).normal(size=(3, 37, 41, 3)))
        target = jnp.asarray([7, 300, 999])
        ours = jaxviz.guided_gradcam(model, x, target, layer=layer)
        cam = jax.nn.relu(jaxviz.layer_gradcam(model, x, target, layer=layer))
        expected = jaxviz.guided_backprop(model, x, target) * interpolation.interpolate(cam, x.shape[1:3], "nearest")
        assert np.abs(expected).max() > 0
        np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-14 * np.abs(expected).max())


@pytest.mark.float64_only
def test_guided_gradcam_takes_guided_backprops_rule_float64():
    """On MobileNetV2 (ReLU6 activations) ``rule="all"`` guides them: GradCAM × the
    textbook guided backprop, which differs from Captum's rule (the plain gradient there)."""
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(6), "mobilenet_v2").astype(jnp.float64)
        x = jnp.asarray(np.random.default_rng(4).normal(size=(2, 32, 35, 3)))
        target = jnp.asarray([7, 300])
        ours = jaxviz.guided_gradcam(model, x, target, rule="all")
        cam = jax.nn.relu(jaxviz.layer_gradcam(model, x, target))
        expected = (jaxviz.guided_backprop(model, x, target, rule="all")
                    * interpolation.interpolate(cam, x.shape[1:3], "nearest"))
        np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-14 * np.abs(expected).max())
        assert not np.allclose(ours, jaxviz.guided_gradcam(model, x, target), atol=1e-3 * np.abs(expected).max())


@pytest.mark.float64_only
@pytest.mark.parametrize("layer", ["features.12", "classifier.0", "classifier.2", "output"])
def test_layer_gradients_equal_the_full_logits_float64(layer):
    """Layer gradients come from the target's column of the classifier alone, except at
    layers that hold every class; both ways equal the gradient of the full logits."""
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(6)).astype(jnp.float64)
        x = jnp.asarray(np.random.default_rng(5).normal(size=(2, 37, 41, 3)))
        target = jnp.asarray([11, 998])
        activation, grads, input_grads = scoring.layer_and_input_gradients(model, x, target, layer)

        def score(v, delta):
            out = model.apply(model.params, v, capture=(layer, "output"), perturb={layer: delta})
            return out["output"][jnp.arange(2), target].sum()

        expected = model.apply(model.params, x, capture=(layer,))[layer]
        expected_grads, expected_input = jax.grad(score, argnums=(1, 0))(x, jnp.zeros_like(expected))
        np.testing.assert_allclose(activation, expected, rtol=1e-13, atol=0)
        assert np.abs(expected_grads).max() > 0
        np.testing.assert_allclose(grads, expected_grads, rtol=1e-11, atol=1e-15)
        np.testing.assert_allclose(input_grads, expected_input, rtol=1e-11, atol=1e-15)


def test_rise_draws_each_mask_from_its_key_whatever_the_chunks(model, x):
    from jaxviz.attribution.rise import rise_masks

    key = jax.random.key(3)
    masks = np.asarray(rise_masks(key, 10, 40, 48, cells=5, p=0.3))
    assert masks.shape == (10, 40, 48) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean() - 0.3) < 0.15 and len({m.tobytes() for m in masks}) == 10
    target = np.array([1, 2])
    drawn = jaxviz.rise(model, x, target, n_masks=10, cells=5, p=0.3, key=key, masks_per_eval=3)
    given = jaxviz.rise(model, x, target, masks=masks, p=0.3, masks_per_eval=10)
    np.testing.assert_allclose(drawn, given, rtol=1e-5, atol=1e-7)
    states = (masks[:, None, :, :, None] * x[None]).reshape(20, 40, 48, 3)
    probabilities = np.asarray(jax.nn.softmax(model(states), -1)).reshape(10, 2, -1)[:, [0, 1], target]  # (10, 2)
    expected = np.einsum("kn,khw->nhw", probabilities, masks) / (10 * 0.3)
    np.testing.assert_allclose(given, expected, rtol=1e-4, atol=1e-7)
    with pytest.raises(jaxviz.InputError, match="`key`"):
        jaxviz.rise(model, x, target, n_masks=4)
    with pytest.raises(jaxviz.InputError, match="`masks` must have shape"):
        jaxviz.rise(model, x, target, masks=masks[:, :20])
    with pytest.raises(jaxviz.InputError, match="`p`"):
        jaxviz.rise(model, x, target, masks=masks, p=0)
    with pytest.raises(jaxviz.InputError, match="`cells`"):
        jaxviz.rise(model, x, target, key=key, cells=41)


def test_kth_smallest_is_the_sorted_value():
    """Guided IG's threshold: the bisection on bit patterns against a sort, with ties, zeros
    and infinities, in float32 and float64."""
    from jaxviz.attribution.guided_ig import kth_smallest

    rng = np.random.default_rng(3)
    values = np.abs(rng.normal(size=1001))
    values[::7] = values[3]  # ties
    values[::11] = 0.0
    values[::5] = np.inf
    for dtype in (np.float32, np.float64):
        with jax.enable_x64(dtype == np.float64):
            v = values.astype(dtype)
            for k in (0, 250, 500, 800, 1000):
                assert float(kth_smallest(jnp.asarray(v), k)) == float(np.sort(v)[k]), (dtype, k)


def test_xrai_dilation_is_scikit_images_disk():
    """XRAI's segments are dilated in the compiled program: equal to scikit-image's
    ``dilation(mask, disk(r))`` (PAIR's), borders included."""
    from skimage.morphology import dilation, disk

    from jaxviz.attribution.xrai import atoms, dilate, packed_masks

    rng = np.random.default_rng(5)
    masks = rng.random((40, 23, 31)) < 0.01
    masks[0, 0, 0] = masks[1, 22, 30] = masks[2, 11, 0] = masks[39, 0, 30] = True  # at corners and an edge
    for radius in (1, 2, 5, 7):
        expected = np.stack([dilation(m, footprint=disk(radius)) for m in masks])
        np.testing.assert_array_equal(np.asarray(dilate(jnp.asarray(masks), radius)), expected, err_msg=str(radius))
        # 32 masks to a word (the second word half empty), as xrai dilates them
        packed = np.asarray(dilate(jnp.asarray(packed_masks(masks[None])), radius))
        regions_at_atoms, atom_of_pixel = atoms(packed, len(masks))
        np.testing.assert_array_equal(regions_at_atoms[0][:, atom_of_pixel[0]].reshape(masks.shape), expected,
                                      err_msg=f"packed, {radius}")


def test_xrai_ranks_denser_regions_first_and_fills_what_is_left(model, x):
    """Given attributions and regions: the densest region's new pixels take its mean, the
    next region only its new pixels' mean; past the area threshold nothing more is added
    and the uncovered pixels take their own mean."""
    attributions = np.zeros((2, 40, 48))
    attributions[:, :20] = 1.0
    attributions[:, 20:, :24] = 3.0
    attributions[:, 20:, 24:] = -1.0
    segments = np.zeros((2, 3, 40, 48), bool)
    segments[:, 0, :30] = True  # mean 1; after the others, its new pixels' mean is 1/3
    segments[:, 1, 20:, :24] = True  # mean 3: first
    segments[:, 2, :, :24] = True  # mean 2; after the second, its new pixels' (rows 0–19) mean is 1
    maps = np.asarray(jaxviz.xrai(model, x, np.array([1, 2]), attributions=attributions, segments=segments))
    assert (maps[:, 20:, :24] == 3).all() and (maps[:, :20, :24] == 1).all()
    assert np.allclose(maps[:, :20, 24:], 1 / 3) and np.allclose(maps[:, 20:30, 24:], 1 / 3)
    assert (maps[:, 30:, 24:] == -1).all()  # never covered: their own mean
    half = np.asarray(jaxviz.xrai(model, x, np.array([1, 2]), attributions=attributions, segments=segments,
                                  area_threshold=0.2))
    assert (half[:, 20:, :24] == 3).all()  # half the image covered after the first region: it stops
    rest = np.ones((40, 48), bool)
    rest[20:, :24] = False
    np.testing.assert_allclose(half[:, rest], attributions[0][rest].mean())


def test_xrai_rejects_bad_options(model, x):
    t = np.array([1, 2])
    with pytest.raises(jaxviz.InputError, match="`area_threshold`"):
        jaxviz.xrai(model, x, t, area_threshold=0)
    with pytest.raises(jaxviz.InputError, match="`min_pixel_diff`"):
        jaxviz.xrai(model, x, t, min_pixel_diff=0)
    with pytest.raises(jaxviz.InputError, match="`attributions` must have shape"):
        jaxviz.xrai(model, x, t, attributions=np.zeros((2, 40, 47)))
    with pytest.raises(jaxviz.InputError, match="`segments` must be boolean"):
        jaxviz.xrai(model, x, t, attributions=np.zeros((2, 40, 48)), segments=np.zeros((2, 3, 40, 48)))
    with pytest.raises(jaxviz.InputError, match="at least one baseline"):
        jaxviz.xrai(model, x, t, baselines=[])


def test_find_repeats_groups_the_requests_of_each_image():
    rng = np.random.default_rng(3)
    images = rng.normal(size=(3, 24, 24, 3)).astype(np.float32)
    x = jnp.asarray(images[[0, 1, 0, 2, 0, 1]])
    target = jnp.asarray([5, 7, 9, 11, 13, 15])
    repeats = scoring.find_repeats(x, target)
    np.testing.assert_array_equal(repeats.images, [0, 1, 3])
    np.testing.assert_array_equal(repeats.requests, [[0, 2, 4], [1, 5, 1], [3, 3, 3]])
    np.testing.assert_array_equal(repeats.requests.reshape(-1)[repeats.slots], np.arange(6))
    nearly = x.at[2, 23, 23, 2].add(1e-6)  # differs outside the sample the candidates come from
    np.testing.assert_array_equal(scoring.find_repeats(nearly, target).requests, [[0, 4], [1, 5], [2, 2], [3, 3]])
    many = jnp.repeat(x[:1], scoring.MOST_TARGETS_PER_PASS + 2, axis=0)  # groups of at most 8 requests
    assert scoring.find_repeats(many, jnp.arange(len(many))).requests.shape == (2, scoring.MOST_TARGETS_PER_PASS)
    assert scoring.find_repeats(jnp.asarray(images), target[:3]) is None
    baselines = jnp.asarray(rng.normal(size=x.shape), jnp.float32)  # a request's baseline is part of it
    assert scoring.find_repeats(x, target, baselines) is None
    assert scoring.find_repeats(x, scoring.Neuron("features.3", jnp.zeros((6, 3), jnp.int32))) is None
    assert jax.jit(lambda v: scoring.find_repeats(v, target) is None and 1.0)(x) == 1.0


SHARED_FORWARD = {
    "saliency": lambda m, x, t: jaxviz.saliency(m, x, t),
    "input_x_gradient": lambda m, x, t: jaxviz.input_x_gradient(m, x, t),
    "guided_backprop": lambda m, x, t: jaxviz.guided_backprop(m, x, t, rule="all"),
    "deconvolution": lambda m, x, t: jaxviz.deconvolution(m, x, t),
    "integrated_gradients": lambda m, x, t: jaxviz.integrated_gradients(m, x, t, n_steps=5, baselines=0.2,
                                                                        internal_batch_size=6,
                                                                        return_convergence_delta=True),
    "occlusion": lambda m, x, t: jaxviz.occlusion(m, x, t, sliding_window_shapes=(12, 12, 3), strides=(11, 12, 3)),
    "feature_ablation": lambda m, x, t: jaxviz.feature_ablation(m, x, t, feature_mask=jaxviz.masks.patches(33, 35, 12),
                                                                baselines=-0.5),
    "gradcam_plus_plus": lambda m, x, t: jaxviz.gradcam_plus_plus(m, x, t, resolution="input", aug_smooth=True),
    "scorecam": lambda m, x, t: jaxviz.scorecam(m, x, t, resolution="input"),
    "layer_gradcam": lambda m, x, t: jaxviz.layer_gradcam(m, x, t),
    "guided_gradcam": lambda m, x, t: jaxviz.guided_gradcam(m, x, t, interpolate_mode="bilinear"),
    "deeplift": lambda m, x, t: jaxviz.deeplift(m, x, t, baselines=0.1, return_convergence_delta=True),
    "lrp": lambda m, x, t: jaxviz.lrp(m, x, t, composite="epsilon_plus_flat"),
}


@pytest.mark.float64_only
@pytest.mark.parametrize("arch, method", [("squeezenet1_1", m) for m in sorted(SHARED_FORWARD)]
                         # one of each kind on a network with BatchNorm and residual blocks: a
                         # gradient, forward passes alone, a CAM
                         + [("resnet18", m) for m in ("saliency", "occlusion", "gradcam_plus_plus")])
def test_several_targets_of_one_image_equal_each_alone_float64(arch, method, monkeypatch):
    """A batch that asks for several targets of the same image runs that image's forward
    pass once (scoring.find_repeats); each request's map is the one it gets alone."""
    grouped = []  # whether each scoring.per_image the method traces got the batch's repeats
    per_image = scoring.per_image
    monkeypatch.setattr(scoring, "per_image",
                        lambda body, repeats, *args: grouped.append(repeats is not None) or per_image(body, repeats,
                                                                                                      *args))
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(2), arch).astype(jnp.float64)
        images = np.random.default_rng(5).normal(size=(2, 33, 35, 3))
        x = jnp.asarray(images[[0, 1, 0, 0, 1]])
        target = jnp.asarray([3, 3, 500, 999, 42])
        ours = jax.tree_util.tree_leaves(SHARED_FORWARD[method](model, x, target))
        assert True in grouped, "the method did not share the image's forward pass"
        alone = [SHARED_FORWARD[method](model, x[i:i + 1], target[i:i + 1]) for i in range(len(target))]
        expected = [np.concatenate([np.asarray(a) for a in leaves])
                    for leaves in zip(*map(jax.tree_util.tree_leaves, alone))]
        scale = np.abs(expected[0]).max()  # the maps' (a convergence delta beside them is near 0)
        assert scale > 0 and not np.allclose(expected[0][0], expected[0][2])
        for leaf, want in zip(ours, expected, strict=True):
            np.testing.assert_allclose(leaf, want, rtol=1e-11, atol=1e-13 * scale)


def test_several_targets_of_one_image_take_one_forward_pass(model):
    """The shared path does less work: the compiled program for 1 image × 4 targets costs
    about one forward pass less per repeated request than 4 separate gradients."""
    x = jnp.asarray(np.random.default_rng(1).normal(size=(1, 48, 48, 3)), jnp.float32)
    target = jnp.asarray([1, 2, 3, 4])
    repeated = jnp.repeat(x, 4, axis=0)
    repeats = scoring.find_repeats(repeated, target)

    def flops(fn, *args):
        cost = jax.jit(fn).lower(*args).compile().cost_analysis()
        return (cost[0] if isinstance(cost, list) else cost)["flops"]

    forward = flops(lambda v, t: scoring.target_logits(model, v, t)[0], repeated, target)
    separate = flops(lambda v, t: scoring.input_gradients(model, v, t), repeated, target)
    shared = flops(lambda v, t, r: scoring.per_image(lambda u, s: scoring.input_gradients(model, u, s), r, v, t),
                   repeated, target, repeats)
    assert shared < separate - 0.6 * forward, (shared, separate, forward)
    each = jax.jit(lambda v, t: jnp.abs(scoring.input_gradients(model, v, t)))(repeated, target)
    np.testing.assert_allclose(jaxviz.saliency(model, repeated, target), each, rtol=1e-5,
                               atol=1e-6 * float(jnp.abs(each).max()))
