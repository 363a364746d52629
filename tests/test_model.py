"""The model API and its bad-input errors."""

from __future__ import annotations

import functools
import re
import zlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from skimage import data

import jaxviz
from jaxviz.labels import class_names


@pytest.fixture(scope="module")
def model():
    return jaxviz.load_model("squeezenet1_1")


def test_chelsea_is_a_cat(model):
    logits = model(jaxviz.preprocess(data.chelsea(), size=224))
    assert logits.shape == (1, 1000)
    assert "cat" in class_names()[int(np.argmax(logits[0]))]


def test_logits_are_never_negative(model):
    x = np.random.default_rng(0).normal(size=(2, 64, 80, 3)).astype(np.float32)
    assert (np.asarray(model(x)) >= 0).all()


def test_several_layers_in_one_pass(model):
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype(np.float32)
    outs = jaxviz.layer_activation(model, x, ["features.3", "features.12", "output"])
    assert outs["features.3"].shape == (2, 15, 15, 128)
    assert outs["features.12"].shape == (2, 3, 3, 512)
    np.testing.assert_allclose(outs["output"], model(x), rtol=1e-6)
    single = jaxviz.layer_activation(model, x, "features.3.squeeze")
    assert single.shape == (2, 15, 15, 16)


def test_guided_switch_changes_only_the_backward(model):
    x = jnp.asarray(jaxviz.preprocess(data.chelsea(), size=64))
    plain = model.apply(model.params, x)
    guided = model.apply(model.params, x, guided=True)
    np.testing.assert_array_equal(plain, guided)
    top = int(np.argmax(plain[0]))
    g_plain = jax.grad(lambda v: model.apply(model.params, v)[0, top])(x)
    g_guided = jax.grad(lambda v: model.apply(model.params, v, guided=True)[0, top])(x)
    assert np.abs(g_plain).max() > 0 and np.abs(g_guided).max() > 0
    assert not np.allclose(g_plain, g_guided)


def test_guided_relu_backward_by_hand():
    from jaxviz.models.layers import guided_relu

    x = jnp.array([-1.0, 0.0, 2.0, 3.0])
    _, vjp = jax.vjp(guided_relu, x)
    (g,) = vjp(jnp.array([5.0, 5.0, -4.0, 6.0]))
    np.testing.assert_array_equal(g, [0.0, 0.0, 0.0, 6.0])


def test_max_pool_gradient_goes_to_first_maximum():
    from jaxviz.models.layers import max_pool_ceil

    x = jnp.array([[1.0, 5.0, 5.0], [5.0, 0.0, 1.0], [2.0, 2.0, 2.0]]).reshape(1, 3, 3, 1)
    y, vjp = jax.vjp(max_pool_ceil, x)
    assert y.shape == (1, 1, 1, 1) and float(y[0, 0, 0, 0]) == 5.0
    (g,) = vjp(jnp.ones_like(y))
    expected = np.zeros((3, 3))
    expected[0, 1] = 1.0  # the first 5 in row-major order, as PyTorch routes it
    np.testing.assert_array_equal(g[0, :, :, 0], expected)


@pytest.mark.parametrize("stride, padding, kernel", [(1, 1, 3), (1, 0, 3), (1, 3, 3), (2, 1, 3), (2, 2, 5)])
def test_depthwise_and_average_pool_backward_passes_equal_autodiffs_float64(stride, padding, kernel):
    """The depthwise convolution's and the average pool's own backward passes (written for
    XLA:CPU's fusion, jaxviz.models.layers) against autodiff of the same forward, with a
    second derivative on top (ShapleyCAM takes a JVP of a gradient)."""
    from jaxviz.models import layers

    rng = np.random.default_rng(stride + kernel)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, 10, 13, 4)))
        w = jnp.asarray(rng.normal(size=(kernel, kernel, 1, 4)))
        cases = [(lambda a, b: layers.grouped_conv2d(a, b, None, stride=stride, padding=padding, groups=4),
                  lambda a, b: layers._depthwise_taps(a, b, stride, padding)),
                 (lambda a, b: layers.avg_pool(a * b.mean(), kernel - 1, stride),
                  lambda a, b: layers._avg_pool_taps(a * b.mean(), kernel - 1, stride))]
        for ours, plain in cases:
            def loss(f):
                return lambda a, b: jnp.sum(jnp.tanh(f(a, b)) ** 2)

            for got, want in zip(jax.grad(loss(ours), (0, 1))(x, w), jax.grad(loss(plain), (0, 1))(x, w)):
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
            got = jax.jvp(jax.grad(loss(ours)), (x, w), (w.sum() * x, w))[1]
            want = jax.jvp(jax.grad(loss(plain)), (x, w), (w.sum() * x, w))[1]
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_a_cotangent_computed_once_is_a_buffer_equal_to_itself_under_vmap_and_derivatives():
    """``layers._computed_once`` returns its float operand bit for bit (−0, NaN and
    infinities included, unless its first element is NaN: then ``g + 0``) and leaves XLA a
    conditional, whose operand is a buffer, in the compiled program: alone and
    under ``vmap``, where a per-element predicate would turn it into a fusible select; for a
    GPU it is the reduction.  Its derivatives are the identity's (a gradient of a gradient,
    a JVP of a gradient)."""
    from jaxviz.models import layers

    def read_at_three_shifts(v):  # the pattern that needs a buffer
        g = layers._computed_once(jnp.sin(v))
        return g + jnp.roll(g, 1, axis=-2) + jnp.roll(g, 2, axis=-2)

    v = jnp.cos(jnp.arange(2 * 3 * 5 * 4, dtype=jnp.float32)).reshape(2, 3, 5, 4)
    for function in (read_at_three_shifts, jax.vmap(read_at_three_shifts)):
        assert re.search(r"\sconditional\(", jax.jit(function).lower(v).compile().as_text())
        np.testing.assert_array_equal(jax.jit(function)(v), np.stack([read_at_three_shifts(a) for a in v]))
    # for a GPU (whose conditionals read their predicate on the host) it lowers to the
    # reduction alone: one data-dependent case fewer than for the CPU
    cases = {platform: jax.jit(read_at_three_shifts).trace(v).lower(lowering_platforms=(platform,)).as_text()
             .count("stablehlo.case") for platform in ("cpu", "cuda")}
    assert cases["cuda"] == cases["cpu"] - 1, cases
    special = jnp.array([-0.0, jnp.nan, 1.5, -jnp.inf])
    for g in (special, special[::-1]):
        np.testing.assert_array_equal(np.signbit(jax.jit(layers._computed_once)(g)), np.signbit(g))
        np.testing.assert_array_equal(jax.jit(layers._computed_once)(g), g)
    np.testing.assert_array_equal(layers._computed_once(jnp.arange(5)), np.arange(5))  # integers: the reduction

    def loss(u):
        return jnp.sum(jnp.tanh(layers._computed_once(u * u)) ** 2)

    def plain(u):
        return jnp.sum(jnp.tanh(u * u) ** 2)

    np.testing.assert_array_equal(jax.grad(lambda u: jnp.sum(jax.grad(loss)(u) ** 2))(v),
                                  jax.grad(lambda u: jnp.sum(jax.grad(plain)(u) ** 2))(v))
    np.testing.assert_array_equal(jax.jvp(jax.grad(loss), (v,), (v,))[1], jax.jvp(jax.grad(plain), (v,), (v,))[1])


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (3, 2, 0), (7, 2, 3), (5, 3, 2)])
def test_convolution_values_are_the_library_and_its_derivatives_im2col(kernel, stride, padding):
    """float32 conv2d's values are ``conv_general_dilated``'s, differentiated or not; its
    derivatives are im2col and ``dot``'s, bit for bit: the gradient is im2col's transpose
    applied to the cotangent the library's values give, a JVP's tangent is im2col's.
    float64, and float32 with a contraction below ``LIBRARY_MIN_CONTRACTION`` (the
    3-channel stems), are im2col's throughout."""
    from jax import lax

    from jaxviz.models import layers

    rng = np.random.default_rng(kernel + stride)

    def im2col(a, b):
        return jnp.dot(layers.patches(a, kernel, kernel, stride=stride, padding=padding), b.reshape(-1, b.shape[-1]))

    def loss_of_values(y):
        return jnp.sum(jnp.tanh(y) ** 2)

    def loss(f):
        return lambda a, b: loss_of_values(f(a, b))

    ours = functools.partial(layers.conv2d, bias=None, stride=stride, padding=padding)
    cin = 8  # kernel² · 8 ≥ 64: the library's side of the threshold
    few = (layers.LIBRARY_MIN_CONTRACTION - 1) // (kernel * kernel)  # the channels of a stem below it
    assert kernel * kernel * cin >= layers.LIBRARY_MIN_CONTRACTION and few >= 1
    x = jnp.asarray(rng.normal(size=(2, 11, 14, cin)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(kernel, kernel, cin, 5)), jnp.float32)
    padded = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    library = lax.conv_general_dilated(padded, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_array_equal(ours(x, w), library)
    assert np.abs(np.asarray(library) - np.asarray(im2col(x, w))).max() > 0, "the two paths must be told apart"

    # the gradient: the library's values, im2col's transpose
    (value, got), want = jax.value_and_grad(loss(ours), (0, 1))(x, w), jax.vjp(im2col, x, w)[1](
        jax.grad(loss_of_values)(library))
    np.testing.assert_array_equal(value, loss_of_values(library))
    for got_part, want_part in zip(got, want):
        np.testing.assert_array_equal(got_part, want_part)
    # a JVP: the library's values, im2col's tangent
    tangents = (w.sum() * x, w)
    values, tangent = jax.jvp(ours, (x, w), tangents)
    np.testing.assert_array_equal(values, library)
    np.testing.assert_array_equal(tangent, jax.jvp(im2col, (x, w), tangents)[1])
    # a JVP of the gradient (ShapleyCAM's): im2col's transpose, taken along the values'
    # tangents checked above
    def transposed(a, b):
        return jax.vjp(im2col, a, b)[1](jax.grad(loss_of_values)(ours(a, b)))[0]

    got, want = jax.jvp(jax.grad(loss(ours)), (x, w), tangents), jax.jvp(transposed, (x, w), tangents)
    for got_part, want_part in zip(got, want):
        np.testing.assert_array_equal(got_part, want_part)

    np.testing.assert_array_equal(ours(x[..., :few], w[:, :, :few]), im2col(x[..., :few], w[:, :, :few]))
    with jax.enable_x64(True):
        x64, w64 = jnp.asarray(np.asarray(x), jnp.float64), jnp.asarray(np.asarray(w), jnp.float64)
        np.testing.assert_array_equal(ours(x64, w64), im2col(x64, w64))


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (3, 2, 0), (7, 2, 3), (11, 4, 2), (1, 2, 0), (5, 1, 2)])
def test_patches_are_the_row_major_windows_exactly(kernel, stride, padding):
    """im2col gathered in two steps (layers.patches) holds each output position's window in
    row-major order, channels innermost -- the kh·kw strided views concatenated -- exactly."""
    from jaxviz.models import layers

    x = jnp.asarray(np.random.default_rng(kernel).normal(size=(2, 23, 26, 3)), jnp.float32)
    want = jnp.concatenate(layers.conv_windows(x, kernel, kernel, stride=stride, padding=padding), axis=-1)
    np.testing.assert_array_equal(layers.patches(x, kernel, kernel, stride=stride, padding=padding), want)


def test_repeated_calls_do_not_recompile(model):
    from jaxviz.models.model import _logits

    x = np.zeros((2, 40, 40, 3), np.float32)
    model(x)
    before = _logits._cache_size()
    model(x + 1)
    model(np.ones((2, 40, 40, 3), np.float32))
    assert _logits._cache_size() == before


@pytest.mark.parametrize(
    "x, error, match",
    [
        (np.zeros((32, 32, 3), np.float32), jaxviz.InputError, r"\(N, H, W, 3\).*x\[None\]"),
        (np.zeros((1, 3, 32, 32), np.float32), jaxviz.InputError, "NCHW"),
        (np.zeros((1, 32, 32, 4), np.float32), jaxviz.InputError, "3 channels"),
        (np.zeros((1, 32, 32, 3), np.uint8), jaxviz.InputTypeError, "preprocess"),
        (np.zeros((1, 16, 32, 3), np.float32), jaxviz.InputError, "height 16 is too small.*17"),
        (np.full((1, 32, 32, 3), np.nan, np.float32), jaxviz.InputError, "NaN"),
        (np.full((1, 32, 32, 3), np.inf, np.float32), jaxviz.InputError, "NaN or inf"),
        # a jax array is tested where it lies (_checks.all_finite), a numpy array on the host
        (jnp.zeros((2, 32, 32, 3)).at[1, 5, 7, 2].set(jnp.nan), jaxviz.InputError, "NaN"),
        (jnp.zeros((1, 32, 32, 3)).at[0, 0, 0, 0].set(-jnp.inf), jaxviz.InputError, "NaN or inf"),
        ("not an image", jaxviz.InputTypeError, "floating dtype"),
    ],
)
def test_bad_input_is_a_clear_error(model, x, error, match):
    with pytest.raises(error, match=match):
        model(x)


def test_unknown_layer(model):
    with pytest.raises(jaxviz.UnknownLayerError, match="features.13"):
        jaxviz.layer_activation(model, np.zeros((1, 32, 32, 3), np.float32), "features.13")


def test_unknown_arch():
    with pytest.raises(jaxviz.InputError, match="squeezenet2"):
        jaxviz.load_model("squeezenet2")


def test_model_passes_through_jit(model):
    f = jax.jit(lambda m, x: m.apply(m.params, x))
    x = np.zeros((1, 32, 32, 3), np.float32)
    np.testing.assert_allclose(f(model, x), model(x), rtol=1e-6)


@pytest.mark.float64_only
@pytest.mark.parametrize("guided", [False, True])
def test_target_head_equals_the_logits_column_float64(guided):
    # The classifier evaluated for each image's target alone: the same logit and the same
    # input gradient as the full 1000-class head (its ReLU's upstream gradient is ≥ 0, so
    # the guided backward agrees too).  Random weights, so the other classes matter.
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(2)).astype(jnp.float64)
        x = jnp.asarray(np.random.default_rng(4).normal(size=(3, 61, 75, 3)))
        target = jnp.array([5, 999, 0])

        def full(v):
            logits = model.apply(model.params, v, guided=guided)
            return logits[jnp.arange(3), target]

        def head(v):
            return model.apply(model.params, v, guided=guided, target=target)

        np.testing.assert_allclose(head(x), full(x), rtol=1e-13, atol=0)
        np.testing.assert_allclose(jax.grad(lambda v: head(v).sum())(x), jax.grad(lambda v: full(v).sum())(x),
                                   rtol=1e-12, atol=1e-15)
        # the same head from classifier.0's output, as the fooling loop uses it
        features = model.apply(model.params, x, capture=("classifier.0",))["classifier.0"]
        np.testing.assert_allclose(model.classify(model.params, features), model.apply(model.params, x), rtol=1e-13)
        np.testing.assert_allclose(model.classify(model.params, features, target=target), full(x), rtol=1e-13)


def test_target_head_refuses_layers_that_hold_every_class(model):
    x = jnp.zeros((1, 64, 64, 3))
    with pytest.raises(jaxviz.InputError, match="hold one channel per class"):
        model.apply(model.params, x, capture=("classifier.2",), target=jnp.array([1]))


@pytest.mark.parametrize("arch", ["resnet18", "vgg11_bn", "mobilenet_v3_small", "densenet121", "googlenet"])
def test_init_model_has_torchvision_shapes_and_runs(arch):
    from jaxviz.models import weights

    model = jaxviz.init_model(jax.random.key(0), arch)
    shapes = {k: np.shape(v) for k, v in weights.params_to_state_dict(model.params).items()}
    assert shapes == weights.state_dict_shapes(arch)
    assert model.num_params == weights.manifest()[arch]["num_params"]  # torchvision's count, without buffers
    size = max(model.architecture.minimum_input_size, 32)
    logits = np.asarray(model(np.random.default_rng(0).normal(size=(2, size, size, 3)).astype(np.float32)))
    assert logits.shape == (2, 1000) and np.isfinite(logits).all() and np.ptp(logits) > 0


def _torchvision_initialisation(arch, name, leaf, shape, listing):
    """(family, scale) of ``name``'s ``leaf`` as torchvision initialises it, written from
    torchvision's ``_initialize_weights`` / ``__init__`` of each family (and PyTorch's
    default kaiming_uniform_(a=√5) where they leave a layer alone)."""
    batch_norm = any(n == name and l == "var" for n, l, *_ in listing)
    if batch_norm:
        return ("ones", 0.0) if leaf in ("scale", "var") else ("zeros", 0.0)
    kernel = next(s for n, l, s, *_ in listing if n == name and l == "kernel")
    receptive = kernel[0] * kernel[1] if len(kernel) == 4 else 1
    fan_in, fan_out = kernel[-2] * receptive, kernel[-1] * receptive
    pytorch_default = ("uniform", 1 / np.sqrt(fan_in))  # weights and biases alike
    conv = len(kernel) == 4
    family = arch.rstrip("0123456789_").split("_")[0]
    if family in ("alexnet",) or (family == "resnet" and not conv):
        return pytorch_default
    if family == "googlenet":
        return pytorch_default if leaf == "bias" else ("trunc_normal", 0.01)
    if leaf == "bias":
        return ("zeros", 0.0)
    if family == "squeezenet":
        return ("normal", 0.01) if name == "classifier.1" else ("uniform", np.sqrt(3) * np.sqrt(2) / np.sqrt(fan_in))
    if family == "densenet":
        return ("normal", np.sqrt(2) / np.sqrt(fan_in)) if conv else pytorch_default
    return ("normal", np.sqrt(2) / np.sqrt(fan_out)) if conv else ("normal", 0.01)  # resnet, vgg, mobilenet


def _reference_draw(key, name, leaf, shape, family, scale):
    key = jax.random.fold_in(key, zlib.crc32(f"{name}/{leaf}".encode()))
    if family == "uniform":
        return jax.random.uniform(key, shape, jnp.float32, -scale, scale)
    if family == "normal":
        return np.float32(scale) * jax.random.normal(key, shape, jnp.float32)
    assert family == "trunc_normal"  # torchvision's GoogLeNet: cut at ±2 absolute
    return np.float32(scale) * jax.random.truncated_normal(key, -2 / scale, 2 / scale, shape, jnp.float32)


# (VGG's rules are MobileNet's)
@pytest.mark.parametrize("arch", ["alexnet", "resnet18", "squeezenet1_1", "googlenet", "densenet121",
                                  "mobilenet_v3_small"])
def test_init_model_draws_torchvisions_initialisation_from_each_parameters_own_key(arch):
    """Every parameter's distribution is torchvision's; its values are that distribution
    drawn from ``fold_in(key, crc32("name/leaf"))`` at its own shape (checked on the first,
    the largest and the last parameter of each distribution), however the draws are grouped."""
    from jaxviz.models import catalog, network

    listing = network.call_listing(catalog.network(arch)).param_inits
    key = jax.random.key(7)
    model = jaxviz.init_model(key, arch)
    checked = {}
    for name, leaf, shape, family, scale in listing:
        assert model.params[name][leaf].shape == shape and model.params[name][leaf].dtype == jnp.float32
        want_family, want_scale = _torchvision_initialisation(arch, name, leaf, shape, listing)
        assert family == want_family and np.isclose(scale, want_scale, rtol=1e-12, atol=0), (name, leaf)
        if family in ("zeros", "ones"):
            assert np.array_equal(model.params[name][leaf], np.full(shape, family == "ones")), (name, leaf)
            continue
        seen = checked.setdefault(family, [])
        if not seen or np.prod(shape) > np.prod(seen[-1][2]) or (name, leaf) == next(
                (n, l) for n, l, _, f, _ in reversed(listing) if f == family):
            seen.append((name, leaf, shape, scale))
    assert checked
    for family, params in checked.items():
        for name, leaf, shape, scale in params[:1] + params[-2:]:
            want = np.asarray(_reference_draw(key, name, leaf, shape, family, scale))
            np.testing.assert_allclose(model.params[name][leaf], want, rtol=1e-6, atol=1e-6 * scale,
                                       err_msg=f"{name}/{leaf}")
    if arch == "squeezenet1_1":  # drawn inside a trace (under jit or vmap) the parameters are the same
        traced = jax.jit(lambda k: network.init_params(catalog.network(arch), k))(key)
        jax.tree_util.tree_map(np.testing.assert_array_equal, traced, model.params)


def test_unknown_layers_list_the_models_layers():
    model = jaxviz.init_model(jax.random.key(0), "resnet18")
    with pytest.raises(jaxviz.UnknownLayerError, match="layer4.*model.layer_names"):
        jaxviz.layer_activation(model, np.zeros((1, 32, 32, 3), np.float32), "layer5")


@pytest.mark.float64_only
def test_replace_resumes_from_a_layer_and_reads_the_images_only_where_the_layer_is_no_cut():
    """``replace`` is ``perturb`` by the difference, at a layer inside a residual block
    (whose skip path still reads the images) and at a block's output (a cut: the images
    only give shapes); the layer methods resuming from a layer (AblationCAM, layer feature
    ablation, layer IG) equal their definition with ``perturb`` inside the block."""
    import importlib

    ablationcam = importlib.import_module("jaxviz.attribution.ablationcam")
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(3), "resnet18").astype(jnp.float64)
        x = jax.random.normal(jax.random.key(4), (2, 40, 40, 3), jnp.float64)
        target = jnp.array([3, 7])
        zeros = jnp.zeros_like(x)
        for layer, cut in (("layer4.0.conv2", False), ("layer3", True)):
            out = model.apply(model.params, x, capture=(layer,))[layer]
            value = out.at[..., 0].set(0.0) + 0.1 * jax.random.normal(jax.random.key(5), out.shape, jnp.float64)
            replaced = model.apply(model.params, x, replace={layer: value}, target=target)
            perturbed = model.apply(model.params, x, perturb={layer: value - out}, target=target)
            np.testing.assert_allclose(replaced, perturbed, rtol=1e-12)
            from_zeros = model.apply(model.params, zeros, replace={layer: value}, target=target)
            assert np.array_equal(from_zeros, replaced) == cut, layer

        layer = "layer4.0.conv2"
        out = model.apply(model.params, x, capture=(layer,))[layer]
        channels = out.shape[-1]

        def ablated(channel, fill):  # the definition: the network from x, the channel moved to ``fill``
            delta = jnp.zeros_like(out).at[..., channel].set(fill - out[..., channel])
            return model.apply(model.params, x, perturb={layer: delta}, target=target)

        low = out.min(axis=(1, 2, 3))
        fill = jnp.where(low == 0, 0.0, low - ablationcam.ABLATION_OFFSET)[:, None, None]
        scores = ablationcam.ablated_scores(model, x, target, layer, out, 64)
        want = jnp.stack([ablated(k, fill) for k in range(0, channels, 97)], axis=1)
        np.testing.assert_allclose(scores[:, ::97], want, rtol=1e-10)

        mask = (np.arange(channels) % 3).reshape(1, channels, 1, 1)  # three channel groups, PyTorch's layout
        ours = np.asarray(jaxviz.layer_feature_ablation(model, x, target, layer=layer, layer_mask=mask,
                                                        layer_baselines=0.5))
        initial = model.apply(model.params, x, target=target)
        for group in range(3):
            delta = jnp.where(jnp.asarray(mask.transpose(0, 2, 3, 1)) == group, 0.5 - out, 0.0)
            drop = initial - model.apply(model.params, x, perturb={layer: delta}, target=target)
            np.testing.assert_allclose(ours[..., group::3], np.broadcast_to(
                np.asarray(drop)[:, None, None, None], ours[..., group::3].shape), rtol=1e-10)

        n_steps = 3
        lig = np.asarray(jaxviz.layer_integrated_gradients(model, x, target, layer=layer, n_steps=n_steps,
                                                           method="riemann_trapezoid"))
        at_b = model.apply(model.params, zeros, capture=(layer,))[layer]
        total = 0.0
        for a, w in zip(np.linspace(0, 1, n_steps), [1 / 6, 1 / 3, 1 / 6]):  # Captum's trapezoid
            point = at_b + a * (out - at_b)
            total += w * jax.grad(lambda d: model.apply(model.params, x, perturb={layer: d},
                                                        target=target).sum())(point - out)
        np.testing.assert_allclose(lig, np.asarray((out - at_b) * total), rtol=1e-9, atol=1e-12)

        neuron = (5, 1, 0)  # (channel, row, column) of layer4.0.conv2's (512, 2, 2) output
        conductance = np.asarray(jaxviz.neuron_conductance(model, x, target, layer=layer, neuron=neuron, n_steps=n_steps))
        want = 0.0
        for a, w in zip(np.linspace(0, 1, n_steps), [1 / 6, 1 / 3, 1 / 6]):
            point = a * x  # the zero baseline
            at = model.apply(model.params, point, capture=(layer,))[layer]
            through = jax.grad(lambda d: model.apply(model.params, point, perturb={layer: d}, target=target).sum())(
                jnp.zeros_like(at))[:, neuron[1], neuron[2], neuron[0]]
            unit = jax.grad(lambda v: model.apply(model.params, v, capture=(layer,))[layer][
                :, neuron[1], neuron[2], neuron[0]].sum())(point)
            want += w * unit * through[:, None, None, None]
        np.testing.assert_allclose(conductance, np.asarray(x * want), rtol=1e-9, atol=1e-12 * np.abs(want).max())
