"""preprocess / deprocess against the course's torchvision transforms, and image loading."""

from __future__ import annotations

import numpy as np
import pytest
import torchvision.transforms as T
from PIL import Image
from skimage import data

import jaxviz
from jaxviz.images import MEAN, STD


def _course_preprocess(img, size):
    transform = T.Compose([T.Resize(size), T.ToTensor(), T.Normalize(MEAN.tolist(), STD.tolist())])
    return transform(img).numpy().transpose(1, 2, 0)[None]


@pytest.mark.parametrize("size", [224, 192, 97])
def test_preprocess_is_the_course_transform(size):
    img = Image.fromarray(data.chelsea())  # 300×451: resized on the short side
    ours = jaxviz.preprocess(img, size=size)
    np.testing.assert_array_equal(ours, _course_preprocess(img, size))


def test_preprocess_without_resize_and_batch():
    X = np.random.default_rng(0).integers(0, 256, (3, 20, 24, 3), dtype=np.uint8)
    x = jaxviz.preprocess(X)
    assert x.shape == (3, 20, 24, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(jaxviz.deprocess(x), X)  # exact round trip


def test_deprocess_rescale_uses_whole_image():
    x = jaxviz.preprocess(np.full((4, 4, 3), 100, np.uint8))
    x[0, 0, 0, 0] += 1.0
    out = jaxviz.deprocess(x, rescale=True)
    assert out.max() == 255 and out.min() == 0


def test_preprocess_rejects_float_images():
    with pytest.raises(jaxviz.InputTypeError, match="uint8"):
        jaxviz.preprocess(np.zeros((8, 8, 3), np.float32))


def test_load_image_modes(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(jaxviz.load_image(tmp_path / "g.png"), np.repeat(gray[..., None], 3, -1))
    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000)
    Image.fromarray(deep).save(tmp_path / "d16.png")
    loaded = jaxviz.load_image(tmp_path / "d16.png")
    np.testing.assert_array_equal(loaded[..., 0], np.round(deep / 257).astype(np.uint8))
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[..., 0] = 200
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")  # fully transparent → white
    assert (jaxviz.load_image(tmp_path / "t.png") == 255).all()
    Image.fromarray(data.chelsea()).convert("CMYK").save(tmp_path / "c.jpg")
    assert jaxviz.load_image(tmp_path / "c.jpg").shape == (300, 451, 3)


def test_load_image_errors(tmp_path):
    (tmp_path / "fake.png").write_text("not a png")
    with pytest.raises(jaxviz.ImageError, match="fake.png"):
        jaxviz.load_image(tmp_path / "fake.png")
    with pytest.raises(jaxviz.ImageError, match="does not exist"):
        jaxviz.load_image(tmp_path / "missing.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(jaxviz.ImageError, match="too large"):
        jaxviz.load_image(tmp_path / "big.png")
