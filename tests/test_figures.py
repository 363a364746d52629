"""Figure helpers and the figure scripts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from jaxviz import figures
from conftest import ROOT


def test_minmax_per_map_and_over_batch():
    maps = np.array([[[0.0, 2.0]], [[1.0, 5.0]]])
    np.testing.assert_allclose(figures.minmax(maps), [[[0, 1]], [[0, 1]]])
    np.testing.assert_allclose(figures.minmax(maps, over_batch=True), [[[0, 0.4]], [[0.2, 1]]])


def test_percentile_clip_like_captum():
    from captum.attr._utils.visualization import _normalize_attr

    attr = np.random.default_rng(0).normal(size=(1, 20, 30, 3))
    for sign in ("absolute_value", "all", "positive"):
        theirs = _normalize_attr(attr[0].sum(-1), sign, outlier_perc=2)
        ours = figures.percentile_clip(attr.sum(-1), sign=sign)[0]
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-9)


def test_overlay_and_grid(tmp_path):
    img = np.zeros((8, 10, 3), np.uint8)
    heat = np.linspace(0, 1, 80).reshape(8, 10)
    out = figures.overlay(img, heat, alpha=0.5)
    assert out.shape == (8, 10, 3) and out.dtype == np.uint8 and out.max() > 0
    with pytest.raises(ValueError, match="does not match"):
        figures.overlay(img, heat[:4])
    figures.save_grid(tmp_path / "g.png", [[img, heat], [out]], row_titles=["a", "b"], col_titles=["x", "y"])
    assert Image.open(tmp_path / "g.png").format == "PNG"
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_saliency_script_writes_its_figures(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "saliency_map.py"), "--out", str(tmp_path)], check=True)
    for name in ("saliency_course.png", "saliency_captum.png"):
        assert Image.open(tmp_path / name).size[0] > 400
