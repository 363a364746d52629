"""Your own model (jaxviz.from_flax / from_function): its layers, its limits and its errors.
Parity with PyTorch and Captum is in parity_tests/test_own_model_parity.py."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.ad_checkpoint import checkpoint_name

import jaxviz
from jaxviz.errors import InputError, InputTypeError, UnknownLayerError


class Small(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), name="stem")(x))
        x = nn.Dense(5)(x.reshape(x.shape[0], -1))  # accepts one input size only
        return x


def _small():
    variables = Small().init(jax.random.key(0), jnp.zeros((1, 6, 6, 3)))
    return jaxviz.from_flax(Small(), variables, input_size=6)


def _images(n=2, size=6, seed=1):
    return jax.random.normal(jax.random.key(seed), (n, size, size, 3))


def test_the_model_is_the_users_function_and_passes_through_jit():
    model = _small()
    x = _images()
    direct = Small().apply({"params": model.params["params"]}, x)
    np.testing.assert_array_equal(np.asarray(model(x)), np.asarray(direct))
    np.testing.assert_array_equal(np.asarray(jax.jit(lambda m, v: m(v))(model, x)), np.asarray(direct))
    assert model.layer_names == ("stem", "relu.0", "Dense_0", "output")
    assert model.architecture.num_classes == 5


def test_two_own_models_with_one_name_are_not_confused():
    double = jaxviz.from_function(lambda p, x: 2 * x.mean(axis=(1, 2)) @ p, jnp.eye(3), name="m", input_size=4)
    triple = jaxviz.from_function(lambda p, x: 3 * x.mean(axis=(1, 2)) @ p, jnp.eye(3), name="m", input_size=4)
    x = _images(1, 4)
    assert float(jnp.abs(triple(x) - 1.5 * double(x)).max()) < 1e-6


def test_a_size_the_network_rejects_is_a_clear_error():
    model = _small()
    with pytest.raises(InputError, match=r"Small does not accept 7×7 images"):
        jaxviz.saliency(model, _images(1, 7), 0)
    with pytest.raises(InputError, match="pass the `input_size` it accepts"):
        jaxviz.from_flax(Small(), Small().init(jax.random.key(0), jnp.zeros((1, 6, 6, 3))), input_size=8)


def test_bad_arguments():
    with pytest.raises(InputTypeError, match="must be a function"):
        jaxviz.from_function("not a function", {})
    with pytest.raises(InputError, match=r"logits of shape \(N, num_classes\)"):
        jaxviz.from_function(lambda p, x: x.sum(), jnp.ones(2), input_size=4)
    with pytest.raises(InputTypeError, match="no floating-point"):
        jaxviz.from_function(lambda p, x: x.mean(axis=(1, 2)), {"n": jnp.arange(3)}, input_size=4)
    with pytest.raises(InputTypeError, match="linen or NNX"):
        jaxviz.from_flax(object())
    with pytest.raises(InputError, match="needs its `variables`"):
        jaxviz.from_flax(Small())
    with pytest.raises(UnknownLayerError, match="not a layer of Small; known layers: stem, relu.0, Dense_0, output$"):
        jaxviz.layer_gradcam(_small(), _images(), 0, layer="Conv_9")
    with pytest.raises(InputError, match="no separate head"):
        _small().classify(_small().params, jnp.zeros((1, 5)))


def test_checkpoint_names_are_layers():
    def apply(p, x):
        h = checkpoint_name(jnp.tanh(x @ p["w"]), "hidden")
        return h.mean(axis=(1, 2)) @ p["v"]

    params = {"w": jnp.ones((3, 4)) / 3, "v": jnp.ones((4, 2))}
    model = jaxviz.from_function(apply, params, input_size=5)
    assert model.layer_names == ("hidden", "output") and model.architecture.default_layer == "hidden"
    x = _images(2, 5)
    np.testing.assert_allclose(np.asarray(jaxviz.layer_activation(model, x, "hidden")),
                               np.asarray(jnp.tanh(x @ params["w"])), rtol=1e-6)


def test_guided_backprop_through_control_flow_is_refused_not_silently_plain():
    def apply(p, x):
        def step(h, _):
            return jax.nn.relu(h @ p), None
        return jax.lax.scan(step, x, None, length=2)[0].mean(axis=(1, 2))

    model = jaxviz.from_function(apply, jnp.eye(3), input_size=4)
    x = _images(1, 4)
    jaxviz.saliency(model, x, 0)  # without guided the user's program runs as it is
    with pytest.raises(InputError, match="cannot reach a ReLU inside `scan`"):
        jaxviz.guided_backprop(model, x, 0)
    with pytest.raises(InputError, match="LRP's rules cannot reach a ReLU, convolution or product inside `scan`"):
        jaxviz.lrp(model, x, 0)


def test_lrp_rules_reach_an_own_models_products_and_fullgrad_without_biases_is_refused():
    """x @ p + b is an affine layer under LRP: its ε rule (to ε) spreads the logit over the
    inputs' contributions, where the gradient × input would leave out the bias's share.
    (The Flax and plain-function networks are held to zennit in test_own_model_parity.py.)"""
    def apply(p, x):
        return (x.mean(axis=(1, 2)) @ p["w"] + p["b"][None, :]) @ jnp.eye(2)

    params = {"w": jnp.asarray([[1.0, -2.0], [0.5, 1.0], [-1.0, 0.25]]), "b": jnp.asarray([0.3, -0.2])}
    model = jaxviz.from_function(apply, params, input_size=4)
    x = _images(2, 4)
    relevance = np.asarray(jaxviz.lrp(model, x, 0, composite=jaxviz.models.relevance.Composite(
        conv=jaxviz.models.relevance.epsilon(1e-9), linear=jaxviz.models.relevance.epsilon(1e-9))))
    means = np.asarray(x).mean(axis=(1, 2))
    z = means @ np.asarray(params["w"]) + np.asarray(params["b"])
    # the first product (with its bias) takes the ε rule: Σ R = 1 - b/z; the second (eye(2),
    # no bias) passes its relevance on
    np.testing.assert_allclose(relevance.sum(axis=(1, 2, 3)), 1 - 0.3 / z[:, 0], rtol=1e-5)
    # each mean's share m_c w_c / z, sent back to the pixels by the mean's gradient (1/16 each)
    share = means * np.asarray(params["w"])[:, 0] / z[:, :1]
    np.testing.assert_allclose(relevance, np.broadcast_to(share[:, None, None, :] / 16, relevance.shape), rtol=1e-5)
    model = jaxviz.from_function(lambda p, x: jax.nn.relu(x @ p).mean(axis=(1, 2)), jnp.eye(3), input_size=4)
    assert model.architecture.bias_layers == ()
    with pytest.raises(InputError, match="FullGrad needs the network's convolution and BatchNorm biases"):
        jaxviz.fullgrad(model, _images(1, 4), 0)


def test_guided_rules_on_an_own_model():
    """guided=True: the ReLUs; "all": ReLU6 too.  A ReLU is jax.nn.relu or max(x, 0); max(x, 1)
    is not one."""
    def apply(p, x):
        h = jnp.maximum(jax.nn.relu6(x @ p) @ p - 1.0, 0.0)
        return jnp.maximum(h, 1.0).mean(axis=(1, 2)) @ p

    model = jaxviz.from_function(apply, jnp.asarray([[1.0, -2.0, 0.5], [0.3, 1.0, -1.0], [-0.7, 0.2, 1.0]]),
                                 input_size=4)
    assert model.layer_names == ("relu6.0", "relu.0", "output")
    x = 3 * _images(2, 4)
    plain = jaxviz.saliency(model, x, 1, absolute=False)
    guided = jaxviz.guided_backprop(model, x, 1)
    everything = jaxviz.guided_backprop(model, x, 1, rule="all")
    assert float(jnp.abs(plain - guided).max()) > 1e-3 and float(jnp.abs(guided - everything).max()) > 1e-3


class Pooled(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(4, (3, 3), name="stem")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2))  # overlapping windows
        x = nn.relu(nn.Conv(6, (3, 3), name="body")(x))
        return nn.Dense(5)(x.reshape(x.shape[0], -1))


@pytest.mark.float64_only
def test_deeplift_reaches_an_own_models_max_pools():
    """The rescale rule at the ReLUs and the max-pool (a ``reduce_window`` max): the
    attributions sum to F(x) − F(b), which no plain gradient through the pool gives."""
    with jax.enable_x64():
        variables = Pooled().init(jax.random.key(0), jnp.zeros((1, 9, 9, 3), jnp.float64))
        variables = jax.tree_util.tree_map(lambda p: jnp.asarray(p * 2.0, jnp.float64), variables)
        model = jaxviz.from_flax(Pooled(), variables, input_size=9)
        x, b = 2 * _images(2, 9).astype(jnp.float64), _images(2, 9, seed=4).astype(jnp.float64)
        target = np.array([1, 3])
        attributions, delta = jaxviz.deeplift(model, x, target, baselines=b, return_convergence_delta=True)
        gap = model(x)[np.arange(2), target] - model(b)[np.arange(2), target]
        assert float(jnp.abs(gap).min()) > 1e-2
        np.testing.assert_allclose(np.asarray(delta), 0.0, atol=1e-12 * float(jnp.abs(gap).max()))


def test_fooling_without_a_separate_head_equals_the_catalog_models():
    """A catalog network wrapped as a plain function loses its head split and its names;
    fooling (which takes the gradient from the logits then) follows the same steps."""
    jax.config.update("jax_enable_x64", True)
    try:
        net = jaxviz.init_model(jax.random.key(3), "squeezenet1_1").astype(jnp.float64)
        own = jaxviz.from_function(lambda p, v: net.apply(p, v), net.params, input_size=33)
        x = 0.5 * _images(2, 33).astype(jnp.float64)
        ours = jaxviz.fooling_images(own, x, 7, max_iter=4)
        theirs = jaxviz.fooling_images(net, x, 7, max_iter=4)
    finally:
        jax.config.update("jax_enable_x64", False)
    np.testing.assert_array_equal(np.asarray(ours.iterations), np.asarray(theirs.iterations))
    np.testing.assert_allclose(np.asarray(ours.images), np.asarray(theirs.images), rtol=0, atol=1e-12)
    assert float(jnp.abs(ours.images - x).max()) > 1e-3  # it did take steps


def test_a_maximum_on_indices_or_scalars_is_not_a_relu():
    def apply(p, x):
        scale = jnp.maximum(jnp.abs(x).mean(), 0.0)  # a scalar
        index = jnp.maximum(jnp.arange(3) - 1, 0)  # integers
        return jnp.maximum(x @ p, 0.0).mean(axis=(1, 2))[:, index] * scale

    model = jaxviz.from_function(apply, jnp.eye(3), input_size=4)
    assert model.layer_names == ("relu.0", "output")
    x = _images(1, 4)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(apply(jnp.eye(3), x)), rtol=1e-6)
