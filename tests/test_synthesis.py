"""Fooling and class visualisation: meaning with the pretrained weights, budgets, bad input."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxviz
from jaxviz.images import STD
from conftest import SHARED


@pytest.fixture(scope="module")
def model():
    return jaxviz.load_model()


@pytest.fixture(scope="module")
def images():
    with np.load(SHARED / "data" / "imagenet_val_25.npz", allow_pickle=False) as data:
        return jaxviz.preprocess(data["X"][:4]), data["y"][:4]


def test_fooled_images_are_classified_as_the_target(model, images):
    x, _ = images
    result = jaxviz.fooling_images(model, x, np.full(4, 6), learning_rate=10.0)
    assert result.success.all() and not result.diverged.any()
    np.testing.assert_array_equal(np.asarray(model(result.images)).argmax(1), 6)
    assert (np.asarray(result.iterations) >= 1).all()


def test_image_already_of_its_target_takes_no_step(model, images):
    x, y = images
    result = jaxviz.fooling_images(model, x[:1], y[:1])
    assert int(result.iterations[0]) == 0 and bool(result.success[0])
    np.testing.assert_array_equal(result.images, x[:1])


@pytest.mark.runs_long  # 100 steps at 224: 18 s compiled at -O0, 6 s at the default settings
@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_epsilon_budget_is_respected(model, images, norm):
    x, _ = images
    eps = 4 / 255 if norm == "linf" else 1.0
    # under the L2 budget the first image reaches class 6 at about the 20th step: 40 leave
    # room for rounding (with other XLA settings it took 21)
    result = jaxviz.fooling_images(model, x, np.full(4, 6), epsilon=eps, norm=norm, max_iter=40)
    delta = (np.asarray(result.images) - x) * STD  # pixel units
    if norm == "linf":
        assert np.abs(delta).max() <= eps + 1e-6
    else:
        assert np.sqrt((delta**2).sum(axis=(1, 2, 3))).max() <= eps + 1e-5
    pixels = np.asarray(result.images) * STD + jaxviz.images.MEAN
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    assert bool(result.success.any())


def test_divergence_is_flagged_and_never_returns_nan(model, images):
    x, _ = images
    huge = model.replace(params=jax.tree_util.tree_map(lambda p: p * 1e12, model.params))
    result = jaxviz.fooling_images(huge, x[:2], np.array([6, 6]), max_iter=10)
    assert np.isfinite(np.asarray(result.images)).all()
    assert bool(result.diverged.all()) and not bool(result.success.any())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": np.array([6, 1000, 6, 6])}, "0..999"),
        ({"max_iter": 0}, "`max_iter` must be >= 1"),
        ({"learning_rate": 0.0}, "`learning_rate` must be > 0"),
        ({"learning_rate": -1.0}, "`learning_rate` must be > 0"),
        ({"epsilon": -0.1}, "`epsilon` must be > 0"),
        ({"norm": "l1", "epsilon": 0.1}, "`norm` must be one of"),
    ],
)
def test_fooling_bad_input(model, images, kwargs, match):
    x, _ = images
    args = {"target": np.full(4, 6), **kwargs}
    with pytest.raises(jaxviz.JaxvizError, match=match):
        jaxviz.fooling_images(model, x, args.pop("target"), **args)


def test_fooling_bad_images(model, images):
    x, _ = images
    with pytest.raises(jaxviz.InputError, match="3 channels"):
        jaxviz.fooling_images(model, x[..., :2], np.full(4, 6))
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(jaxviz.InputError, match="NaN"):
        jaxviz.fooling_images(model, bad, np.full(4, 6))


COURSE_TARGETS = [76, 78, 187, 683, 366, 604]  # tarantula, tick, Yorkshire terrier, oboe, gorilla, hourglass


@pytest.mark.runs_long  # 6 images, 100 steps at 224: 59 s at -O0, 17 s at the default settings
def test_class_visualizations_are_classified_as_their_targets(model):
    result = jaxviz.class_visualization(model, np.array(COURSE_TARGETS), key=jax.random.key(0),
                                        snapshot_at=(1, 25, 50, 75, 100))
    assert result.images.shape == (6, 224, 224, 3) and result.snapshots.shape == (5, 6, 224, 224, 3)
    np.testing.assert_array_equal(np.asarray(model(result.images)).argmax(1), COURSE_TARGETS)
    np.testing.assert_array_equal(result.snapshots[-1], result.images)


def test_class_visualization_key_determinism_and_bounds(model):
    a = jaxviz.class_visualization(model, 1, key=jax.random.key(1), num_iterations=3, image_size=48)
    b = jaxviz.class_visualization(model, 1, key=jax.random.key(1), num_iterations=3, image_size=48)
    c = jaxviz.class_visualization(model, 1, key=jax.random.key(2), num_iterations=3, image_size=48)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    pixels = np.asarray(a.images) * STD + jaxviz.images.MEAN
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"target": 1000}, "0..999"),
        ({"num_iterations": 0}, "`num_iterations` must be >= 1"),
        ({"learning_rate": 0.0}, "`learning_rate` must be > 0"),
        ({"snapshot_at": (0,)}, "`snapshot_at`"),
        ({"init": np.zeros((1, 48, 48, 3), np.float32), "jitter": np.zeros((5, 3))}, r"`jitter` must have shape"),
        ({"key": None}, "`key`"),
        ({"init": np.zeros((2, 48, 48, 3), np.float32)}, "one per target"),
    ],
)
def test_class_visualization_bad_input(model, kwargs, match):
    args = {"target": 1, "key": jax.random.key(0), "num_iterations": 5, "image_size": 48, **kwargs}
    with pytest.raises(jaxviz.JaxvizError, match=match):
        jaxviz.class_visualization(model, args.pop("target"), **args)
