"""pytorch-grad-cam's CAMs: options, conventions and bad input (parity is in
parity_tests/test_cam_parity.py)."""

from __future__ import annotations

import numpy as np
import pytest

import jaxviz


@pytest.fixture(scope="module")
def model():
    return jaxviz.load_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).normal(size=(2, 40, 48, 3)).astype(np.float32)


T = np.array([3, 300])


def test_the_input_convention_is_a_min_max_map_of_the_input_size(model, x):
    maps = np.asarray(jaxviz.gradcam_plus_plus(model, x, T, layer=("features.9", "features.12"), resolution="input"))
    assert maps.shape == (2, 40, 48)
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1, atol=1e-6)
    assert np.allclose(maps.min(axis=(1, 2)), 0)


def test_the_layer_convention_is_the_relud_map_at_the_layer(model, x):
    cam = np.asarray(jaxviz.hirescam(model, x, T))
    assert cam.shape == (2, 2, 2) and cam.min() >= 0
    # GradCAM's layer map is the course's: Captum's LayerGradCam ReLU'd
    np.testing.assert_array_equal(np.asarray(jaxviz.gradcam(model, x, T)),
                                  np.asarray(jaxviz.layer_gradcam(model, x, T, relu_attributions=True))[..., 0])


def test_the_projection_sign_makes_the_largest_magnitude_positive():
    """A singular vector's sign is LAPACK's choice; the projection's is not: negated maps
    (whose singular vectors are the same up to sign) project to the same map."""
    from jaxviz.attribution import _cam

    maps = np.random.default_rng(2).normal(size=(3, 5, 6, 7))
    maps[..., 0] *= 4  # a clear first component
    projected = np.asarray(_cam.projection(maps))
    flat = projected.reshape(3, -1)
    assert (flat[np.arange(3), np.abs(flat).argmax(axis=1)] > 0).all()
    np.testing.assert_allclose(np.asarray(_cam.projection(-maps)), projected, rtol=1e-5, atol=1e-5)


def test_eigencam_does_not_depend_on_the_target(model, x):
    np.testing.assert_array_equal(np.asarray(jaxviz.eigencam(model, x, T)),
                                  np.asarray(jaxviz.eigencam(model, x, T[::-1].copy())))


def test_scorecam_does_not_depend_on_its_batch_size(model, x):
    one = np.asarray(jaxviz.scorecam(model, x, T, layer="features.5", batch_size=1))
    many = np.asarray(jaxviz.scorecam(model, x, T, layer="features.5", batch_size=100))  # 128 channels: padded
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6 * np.abs(many).max())
    assert np.abs(many).max() > 0


@pytest.mark.float64_only
def test_scorecam_scores_channels_that_are_zero_everywhere_on_the_zero_image():
    """Every (image, channel) pair's score against the definition, computed for all pairs:
    the channels that are zero everywhere (the zero image's score, one forward pass) and
    the others (the loop over them alone, 7 a pass, padded)."""
    import importlib

    import jax
    import jax.numpy as jnp

    from jaxviz.interpolation import aligned_bilinear_matrix

    scorecam = importlib.import_module("jaxviz.attribution.scorecam")
    with jax.enable_x64(True):
        model = jaxviz.load_model().astype(jnp.float64)
        x = jnp.asarray(np.random.default_rng(2).normal(size=(2, 40, 48, 3)))
        target = jnp.array([3, 300])
        activation = model.apply(model.params, x, capture=("features.12",))["features.12"]
        dead = np.asarray(jnp.all(activation == 0, axis=(1, 2)))
        assert 0 < dead.sum() < dead.size, dead.sum()
        ours = np.asarray(scorecam.channel_scores(model, x, target, activation, 7))
        rows, cols = (aligned_bilinear_matrix(a, b, "float64") for a, b in zip(activation.shape[1:3], x.shape[1:3]))
        maps = np.einsum("Hh,nhwk,Ww->nkHW", rows, np.asarray(activation), cols)
        low, high = maps.min(axis=(2, 3), keepdims=True), maps.max(axis=(2, 3), keepdims=True)
        masked = np.asarray(x)[:, None] * ((maps - low) / (high - low + 1e-8))[..., None]  # (N, C, H, W, 3)
        want = np.stack([np.asarray(model.apply(model.params, masked[i], target=jnp.full(masked.shape[1], t)))
                         for i, t in enumerate(np.asarray(target))])
        np.testing.assert_allclose(ours, want, rtol=1e-10, atol=1e-12 * np.abs(want).max())


def test_ablationcam_does_not_depend_on_its_batch_size(model, x):
    one = np.asarray(jaxviz.ablationcam(model, x, T, layer="features.4", batch_size=1))
    many = np.asarray(jaxviz.ablationcam(model, x, T, layer="features.4", batch_size=50))  # 128 channels: padded
    np.testing.assert_allclose(one, many, rtol=1e-5, atol=1e-6 * np.abs(many).max())
    assert np.abs(many).max() > 0


def test_bad_options_are_clear_errors(model, x):
    with pytest.raises(jaxviz.InputError, match="pass resolution='input'"):
        jaxviz.layercam(model, x, T, layer=("features.9", "features.12"))
    with pytest.raises(jaxviz.InputError, match="pass resolution='input'"):
        jaxviz.gradcam(model, x, T, aug_smooth=True)
    with pytest.raises(jaxviz.InputError, match="`resolution` must be one of"):
        jaxviz.xgradcam(model, x, T, resolution="image")
    with pytest.raises(jaxviz.InputError, match="non-empty sequence"):
        jaxviz.eigencam(model, x, T, layer=())
    with pytest.raises(jaxviz.UnknownLayerError, match="features.99"):
        jaxviz.layercam(model, x, T, layer=("features.9", "features.99"), resolution="input")
    with pytest.raises(jaxviz.InputError, match="`batch_size`"):
        jaxviz.scorecam(model, x, T, batch_size=0)
    with pytest.raises(jaxviz.InputError, match="`batch_size`"):
        jaxviz.ablationcam(model, x, T, batch_size=0)


def test_bad_options_of_the_newer_cams_are_clear_errors(model, x):
    import jax

    with pytest.raises(jaxviz.InputError, match="exactly one of `key`"):
        jaxviz.random_cam(model, x, T)
    with pytest.raises(jaxviz.InputError, match="exactly one of `key`"):
        jaxviz.random_cam(model, x, T, key=jax.random.key(0), weights=np.zeros((2, 512)))
    with pytest.raises(jaxviz.InputError, match=r"one \(N, C\) array per layer, shapes \[\(2, 512\)\]"):
        jaxviz.random_cam(model, x, T, weights=np.zeros((2, 256)))
    with pytest.raises(jaxviz.InputError, match="pass `key`, not `weights`"):
        jaxviz.random_cam(model, x, T, weights=np.zeros((2, 512)), resolution="input", aug_smooth=True)
    with pytest.raises(jaxviz.InputError, match="`kernel` must be one of"):
        jaxviz.kpca_cam(model, x, T, kernel="laplacian")
    with pytest.raises(jaxviz.InputError, match="`gamma` must be a positive number"):
        jaxviz.kpca_cam(model, x, T, gamma=0)
    with pytest.raises(jaxviz.InputError, match="at least one rank below the number of classes"):
        jaxviz.finercam(model, x, T, comparison_categories=(1000,))
    with pytest.raises(jaxviz.InputError, match="`score` must be one of"):
        jaxviz.shapleycam(model, x, T, score="probability")
    resnet = jaxviz.models.init_model(jax.random.key(0), "resnet18")  # takes 7×7 images; eigen_smooth shrinks 8×
    with pytest.raises(jaxviz.InputError, match="8 pixels a side"):
        jaxviz.fullgrad(resnet, x[:, :7, :9], T, eigen_smooth=True)


def test_random_cam_weights_from_a_key_are_the_given_weights(model, x):
    import jax

    key = jax.random.key(4)
    drawn = np.asarray(jax.random.uniform(jax.random.fold_in(key, 0), (2, 512), jax.numpy.float32, -1, 1))
    np.testing.assert_array_equal(np.asarray(jaxviz.random_cam(model, x, T, key=key)),
                                  np.asarray(jaxviz.random_cam(model, x, T, weights=drawn)))
    assert drawn.min() >= -1 and drawn.max() < 1 and abs(drawn.mean()) < 0.1
