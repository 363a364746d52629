"""Style transfer API: options, batching, bad input."""

from __future__ import annotations

import importlib

import jax
import numpy as np
import pytest
from PIL import Image

import jaxviz
from conftest import SHARED


@pytest.fixture(scope="module")
def model():
    return jaxviz.load_model()


def load(name, size):
    return jaxviz.preprocess(jaxviz.load_image(SHARED / "data" / "styles" / name), size=size)


@pytest.fixture(scope="module")
def pair():
    return load("tubingen.jpg", 64), load("starry_night.jpg", 72)


def test_losses_decrease_and_snapshots(model, pair):
    content, style = pair
    r = jaxviz.style_transfer(model, content, style, num_iterations=40, snapshot_at=(1, 40))
    assert r.images.shape == content.shape and r.losses.shape == (40,)
    # Adam at lr 3 first overshoots, then the loss falls well below its start
    assert float(r.losses[-1]) < 0.5 * float(r.losses[0])
    np.testing.assert_array_equal(r.snapshots[1], r.images)


def test_batched_pairs_equal_single_runs(model):
    contents = np.concatenate([load("tubingen.jpg", 64)[:, :64, :64], load("muse.jpg", 64)[:, :64, :64]])
    styles = np.concatenate([load("the_scream.jpg", 64)[:, :64, :64], load("starry_night.jpg", 64)[:, :64, :64]])
    batch = jaxviz.style_transfer(model, contents, styles, num_iterations=5)
    for i in range(2):
        single = jaxviz.style_transfer(model, contents[i : i + 1], styles[i : i + 1], num_iterations=5)
        np.testing.assert_allclose(batch.images[i], single.images[0], rtol=1e-4, atol=1e-4)


def test_blend_of_two_styles(model, pair):
    content, style = pair
    other = load("the_scream.jpg", 80)
    only_first = jaxviz.style_transfer(model, content, [style, other], blend=[1, 0], num_iterations=3)
    plain = jaxviz.style_transfer(model, content, style, num_iterations=3)
    np.testing.assert_allclose(only_first.images, plain.images, rtol=1e-5, atol=1e-5)
    mixed = jaxviz.style_transfer(model, content, [style, other], blend=[0.5, 0.5], num_iterations=3)
    assert not np.allclose(mixed.images, plain.images)


def test_preserve_colors_keeps_content_chrominance(model, pair):
    content, style = pair
    r = jaxviz.style_transfer(model, content, style, num_iterations=3, preserve_colors=True)
    from jaxviz.synthesis.style_transfer import _YIQ

    def iq(x):
        rgb = jaxviz.deprocess(np.asarray(x)).astype(np.float64) / 255
        return np.einsum("nhwc,dc->nhwd", rgb, _YIQ)[..., 1:]

    inside = (jaxviz.deprocess(np.asarray(r.images)) > 2).all(-1) & (jaxviz.deprocess(np.asarray(r.images)) < 253).all(-1)
    assert np.abs(iq(r.images) - iq(content))[inside].mean() < 0.01


def test_inversion_and_texture_start_from_noise(model, pair):
    content, style = pair
    a = jaxviz.style_transfer(model, content, style, style_weights=(0, 0, 0, 0), init="noise",
                              key=jax.random.key(0), num_iterations=2)
    b = jaxviz.style_transfer(model, content, style, content_weight=0.0, init="noise",
                              key=jax.random.key(0), num_iterations=2)
    assert np.isfinite(np.asarray(a.images)).all() and np.isfinite(np.asarray(b.images)).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"style_layers": (1, 4), "style_weights": (1, 2, 3)}, "same length"),
        ({"style_layers": (1, 13, 6, 7)}, r"`style_layers` as an index must be in 0\.\.12"),
        ({"content_layer": -1}, r"`content_layer` as an index must be in 0\.\.12"),
        ({"content_layer": "layer4"}, "'layer4' is not a layer of squeezenet1_1"),
        ({"init": "noise"}, "`key` is required"),
        ({"init": "zeros"}, "`init` must be one of"),
        ({"num_iterations": 0}, "`num_iterations` must be >= 1"),
        ({"blend": [1.0]}, "`blend` must be"),
    ],
)
def test_bad_options(model, pair, kwargs, match):
    content, style = pair
    if "blend" in kwargs:
        style = [style, style]
    with pytest.raises(jaxviz.JaxvizError, match=match):
        jaxviz.style_transfer(model, content, style, num_iterations=kwargs.pop("num_iterations", 2), **kwargs)


def test_style_image_too_small(model, pair):
    content, _ = pair
    tiny = jaxviz.preprocess(np.zeros((12, 12, 3), np.uint8))
    with pytest.raises(jaxviz.InputError, match="too small"):
        jaxviz.style_transfer(model, content, tiny, num_iterations=2)


def test_unreadable_and_converted_style_files(model, tmp_path, pair):
    content, _ = pair
    with pytest.raises(jaxviz.ImageError, match="does not exist"):
        jaxviz.load_image(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(jaxviz.ImageError):
        jaxviz.load_image(tmp_path / "bad.jpg")
    gray = Image.open(SHARED / "data" / "styles" / "the_scream.jpg").convert("L").resize((80, 64))
    gray.save(tmp_path / "gray.png")
    style = jaxviz.preprocess(jaxviz.load_image(tmp_path / "gray.png"))  # replicated to RGB
    assert jaxviz.style_transfer(model, content, style, num_iterations=2).images.shape == content.shape


def test_gram_matrix_and_its_gradient_equal_the_einsum_float64():
    st = importlib.import_module("jaxviz.synthesis.style_transfer")  # the package re-exports the function

    with jax.enable_x64(True):
        f = jax.numpy.asarray(np.random.default_rng(0).normal(size=(2, 9, 11, 5)))
        target = jax.numpy.asarray(np.random.default_rng(1).normal(size=(2, 5, 5)))

        def reference(v):  # G = Fᵀ F / (C·H·W), written as one einsum
            flat = v.reshape(2, 99, 5)
            return jax.numpy.einsum("npc,npd->ncd", flat, flat) / (5 * 99)

        np.testing.assert_allclose(st.gram_matrix(f), reference(f), rtol=1e-13)
        ours = jax.grad(lambda v: jax.numpy.sum((st.gram_matrix(v) - target) ** 2))(f)
        theirs = jax.grad(lambda v: jax.numpy.sum((reference(v) - target) ** 2))(f)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-15)
