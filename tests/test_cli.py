"""The ``jaxviz`` command end to end: every subcommand, job files, resume, bad inputs, exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path

import jax
import numpy as np
import pytest
from PIL import Image

import jaxviz
from jaxviz.cli import inputs, outputs
from jaxviz.cli.main import build_parser
from jaxviz.cli.methods import METHODS
from tests.cli_helpers import SIZE, cli as _cli, manifest as _manifest, ok as _ok, photo as _photo
from conftest import ROOT, SHARED


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_photo(0)).save(folder / "a.png")
    Image.fromarray(_photo(1)).save(folder / "b.jpg", quality=95)
    Image.fromarray(_photo(2)).save(folder / "sub" / "c.webp")
    (folder / "notes.txt").write_text("not an image, ignored")
    return folder


# --------------------------------------------------------------------------- every subcommand

ATTRIBUTION_ARGS = {
    "saliency": [],
    "guided-backprop": [],
    "gradcam": ["--layer", "features.12"],
    "guided-gradcam": [],
    "integrated-gradients": ["--n-steps", "4"],
    "occlusion": ["--window", "16", "--stride", "16"],
    "smoothgrad": ["--nt-samples", "2", "--seed", "3"],
    "deeplift": ["--baseline", "0.2", "--rule", "all"],
    "deeplift-shap": ["--baselines", "-0.5", "0.5"],
    "lrp": ["--composite", "epsilon_alpha2_beta1", "--no-canonizers"],
    "layer-gradient-x-activation": ["--layer", "features.7"],
    "layer-integrated-gradients": ["--layer", "features.7", "--n-steps", "4", "--baseline", "0.1"],
    "layer-deeplift": ["--layer", "features.4", "--baseline", "0.1"],
    "layer-lrp": ["--layer", "features.7", "--composite", "captum"],
    # differences of float32 logits: rounding that differs between batch sizes shows, so one
    # image per batch, as the API call below
    "layer-feature-ablation": ["--layer", "features.9", "--baseline", "0.2", "-b", "1"],
    "neuron-conductance": ["--layer", "features.7", "--neuron", "3", "1", "1", "--n-steps", "3"],
    "feature-ablation": ["--segments", "patches", "--patch", "20", "--baseline", "0.1"],
    "shapley-value-sampling": ["--segments", "patches", "--patch", "24", "--n-samples", "2", "--seed", "5"],
    "kernel-shap": ["--n-segments", "8", "--n-samples", "12", "--seed", "2"],
    "lime": ["--segments", "patches", "--patch", "12", "--n-samples", "30", "--seed", "2"],
    "gradient-shap": ["--n-samples", "2", "--stdevs", "0.1", "--seed", "3", "--baselines", "0", "0.5"],
    # min–max scaling of these small maps amplifies float32 rounding that differs between
    # batch sizes: one image per batch, as the API call below
    "layercam": ["--layer", "features.9", "features.12", "--aug-smooth", "-b", "1"],
    "scorecam": ["--layer", "features.5", "--masked-batch", "8", "--eigen-smooth", "-b", "1"],
    "rise": ["--n-masks", "12", "--cells", "4", "--p", "0.4", "--masks-per-eval", "5", "--seed", "4"],
}


@pytest.mark.parametrize("name", list(ATTRIBUTION_ARGS))
def test_attribution_subcommand_writes_maps_equal_to_the_api(name, photos, tmp_path):
    out = tmp_path / "out"
    assert _cli(name, photos, "--out", out, "--size", SIZE, "--target", 7, "-b", 2, "-q",
                *ATTRIBUTION_ARGS[name]) == 0
    records = sorted(_ok(out, name), key=lambda r: r["key"])
    assert [r["key"] for r in records] == ["photos/a.png", "photos/b.jpg", "photos/sub/c.webp"]
    model = jaxviz.load_model()
    images = [jaxviz.preprocess(jaxviz.load_image(photos / r["key"].removeprefix("photos/")), size=SIZE)
              for r in records]
    expected = _api_as_the_cli_batches(name, model, images, [r["key"] for r in records])
    for record, x, wanted in zip(records, images, expected):
        assert record["target"] == 7 and record["seconds"] > 0
        for relative in record["outputs"]:
            assert (out / relative).is_file()
        array = np.load(out / name / f"{record['key']}.npy")
        np.testing.assert_allclose(array, wanted, rtol=1e-4, atol=1e-6 * np.abs(wanted).max())
        with Image.open(out / name / f"{record['key']}.overlay.png") as overlay:
            assert overlay.size == (x.shape[2], x.shape[1])


# the methods that draw from each image's own key: the API is called an image at a time
_PER_IMAGE_KEYS = {"shapley-value-sampling", "kernel-shap", "lime", "gradient-shap", "smoothgrad"}


def _api_as_the_cli_batches(name, model, images, keys):
    """Each image's expected map: the API called on the batches the CLI made (its batch
    size, the last batch padded with its last image), so that both run one compiled
    program; an image at a time where the CLI draws from each image's key."""
    size = 1 if name in _PER_IMAGE_KEYS or ATTRIBUTION_ARGS[name][-2:] == ["-b", "1"] else 2
    maps = []
    for start in range(0, len(images), size):
        batch = images[start:start + size]
        batch += batch[-1:] * (size - len(batch))
        maps += list(_api(name, model, np.concatenate(batch), keys[start]))
    return maps[:len(images)]


def _api(name, model, x, key):
    t = np.full(len(x), 7)
    if name == "saliency":
        return np.asarray(jaxviz.saliency(model, x, t))
    if name == "guided-backprop":
        return np.asarray(jaxviz.guided_backprop(model, x, t))
    if name == "gradcam":
        return np.asarray(jaxviz.gradcam(model, x, t))
    if name == "guided-gradcam":
        return np.asarray(jaxviz.guided_gradcam(model, x, t))
    if name == "integrated-gradients":
        return np.asarray(jaxviz.integrated_gradients(model, x, t, n_steps=4))
    if name == "occlusion":
        return np.asarray(jaxviz.occlusion(model, x, t, sliding_window_shapes=(16, 16, 3), strides=(16, 16, 3)))
    if name == "layercam":
        return np.asarray(jaxviz.layercam(model, x, t, layer=("features.9", "features.12"), resolution="input",
                                          aug_smooth=True))
    if name == "scorecam":
        return np.asarray(jaxviz.scorecam(model, x, t, layer="features.5", resolution="input", eigen_smooth=True))
    if name == "rise":  # one mask set, from the seed alone
        import jax

        return np.asarray(jaxviz.rise(model, x, t, n_masks=12, cells=4, p=0.4, key=jax.random.key(4)))
    if name == "feature-ablation":
        mask = jaxviz.masks.patches(x.shape[1], x.shape[2], 20)
        return np.asarray(jaxviz.feature_ablation(model, x, t, feature_mask=mask, baselines=0.1))
    if name == "deeplift":
        return np.asarray(jaxviz.deeplift(model, x, t, baselines=0.2, rule="all"))
    if name == "layer-gradient-x-activation":
        return np.asarray(jaxviz.layer_gradient_x_activation(model, x, t, layer="features.7"))
    if name == "layer-integrated-gradients":
        return np.asarray(jaxviz.layer_integrated_gradients(model, x, t, layer="features.7", n_steps=4,
                                                            baselines=0.1))
    if name == "layer-deeplift":
        return np.asarray(jaxviz.layer_deeplift(model, x, t, layer="features.4", baselines=0.1))
    if name == "layer-feature-ablation":
        mask = np.arange(384).reshape(1, 384, 1, 1)
        return np.asarray(jaxviz.layer_feature_ablation(model, x, t, layer="features.9", layer_mask=mask,
                                                        layer_baselines=0.2))
    if name == "neuron-conductance":
        return np.asarray(jaxviz.neuron_conductance(model, x, t, layer="features.7", neuron=(3, 1, 1), n_steps=3))
    if name == "layer-lrp":
        return np.asarray(jaxviz.layer_lrp(model, x, t, layer="features.7", composite="captum"))
    if name == "lrp":
        composite = jaxviz.relevance.epsilon_alpha2_beta1(merge_batch_norm=False, residual_sums=False)
        return np.asarray(jaxviz.lrp(model, x, t, composite=composite))
    constants = lambda *values: np.stack([np.full(x.shape[1:], v, np.float32) for v in values])  # noqa: E731
    if name == "deeplift-shap":
        return np.asarray(jaxviz.deeplift_shap(model, x, t, baselines=constants(-0.5, 0.5)))
    import jax

    seed = zlib.crc32(key.encode()) & 0x7FFFFFFF
    if name == "shapley-value-sampling":  # the orders of the image's own key
        key = jax.random.fold_in(jax.random.key(5), seed)
        mask = jaxviz.masks.patches(x.shape[1], x.shape[2], 24)
        features = int(mask.max()) + 1
        priorities = np.array([[jax.random.uniform(jax.random.fold_in(jax.random.fold_in(key, s), f))
                                for f in range(features)] for s in range(2)])
        return np.asarray(jaxviz.shapley_value_sampling(model, x, t, feature_mask=mask, n_samples=2,
                                                        permutations=np.argsort(priorities, axis=1)))
    if name == "kernel-shap":  # SLIC on the image itself, the coalitions of its own key
        mask = jaxviz.masks.segments(jaxviz.deprocess(x), n_segments=8)
        return np.asarray(jaxviz.kernel_shap(model, x, t, feature_mask=mask, n_samples=12,
                                             key=jax.random.fold_in(jax.random.key(2), seed)))
    if name == "lime":
        mask = jaxviz.masks.patches(x.shape[1], x.shape[2], 12)  # 9 features, 30 coalitions: a unique fit
        return np.asarray(jaxviz.lime(model, x, t, feature_mask=mask, n_samples=30,
                                      key=jax.random.fold_in(jax.random.key(2), seed)))
    if name == "gradient-shap":  # the draws of the image's own key
        return np.asarray(jaxviz.gradient_shap(model, x, t, baselines=constants(0, 0.5), n_samples=2, stdevs=0.1,
                                               key=jax.random.fold_in(jax.random.key(3), seed)))
    noise = jax.random.normal(jax.random.fold_in(jax.random.key(3), seed), (2,) + x.shape[1:])
    return np.asarray(jaxviz.smooth(jaxviz.saliency, nt_samples=2)(model, x, t, noise=0.15 * noise[:, None]))


def test_top1_labels_and_npz_targets(photos, tmp_path):
    model = jaxviz.load_model()
    labels = tmp_path / "labels.tsv"
    labels.write_text("file\tlabel\na.png\t1\nb\t2\nc.webp\t3\n")
    out = tmp_path / "by-labels"
    assert _cli("saliency", photos, "--out", out, "--size", SIZE, "--labels", labels, "-q") == 0
    assert {r["key"]: r["target"] for r in _ok(out)} == {"photos/a.png": 1, "photos/b.jpg": 2, "photos/sub/c.webp": 3}
    out = tmp_path / "top1"
    assert _cli("saliency", photos / "a.png", "--out", out, "--size", SIZE, "-q") == 0
    (record,) = _ok(out)
    x = jaxviz.preprocess(jaxviz.load_image(photos / "a.png"), size=SIZE)
    assert record["target"] == int(np.argmax(model(x))) and record["target_from"] == "top1"
    npz = tmp_path / "set.npz"
    np.savez(npz, X=np.stack([_photo(3, 32, 32), _photo(4, 32, 32)]), y=np.array([5, 6]))
    out = tmp_path / "npz"
    assert _cli("gradcam", npz, "--out", out, "-q", "--arrays", "npz", "--figures", "overlay") == 0
    assert {r["key"]: r["target"] for r in _ok(out)} == {"set/00000": 5, "set/00001": 6}
    assert sorted(p.name for p in (out / "gradcam" / "set").iterdir()) == [
        "00000.npz", "00000.overlay.png", "00001.npz", "00001.overlay.png"]


def test_an_image_missing_from_the_labels_file_fails_alone(photos, tmp_path, capsys):
    labels = tmp_path / "labels.txt"
    labels.write_text("a.png 1\nb.jpg 2\n")
    out = tmp_path / "out"
    assert _cli("saliency", photos, "--out", out, "--size", SIZE, "--labels", labels, "-q") == 1
    assert len(_ok(out)) == 2
    assert "c.webp" in capsys.readouterr().err


def test_neuron_subcommands_write_maps_equal_to_the_api(photos, tmp_path):
    """A unit given by --neuron, and by default each image's most active unit of the layer."""
    out = tmp_path / "out"
    common = ("--layer", "features.7", "--out", out, "--size", SIZE, "-b", 2, "-q")
    assert _cli("neuron-gradient", photos, "--neuron", 5, 1, 2, *common) == 0
    assert _cli("neuron-integrated-gradients", photos, "--n-steps", 4, *common) == 0
    model = jaxviz.load_model()
    for name in ("neuron-gradient", "neuron-integrated-gradients"):
        records = _ok(out, name)
        assert len(records) == 3 and all(r["target_from"] == "none" for r in records)
        for record in records:
            x = jaxviz.preprocess(jaxviz.load_image(photos / record["key"].removeprefix("photos/")), size=SIZE)
            if name == "neuron-gradient":
                expected = jaxviz.neuron_gradient(model, x, (5, 1, 2), layer="features.7")
            else:
                outputs = np.asarray(model.apply(model.params, x, capture=("features.7",))["features.7"][0])
                row, column, channel = np.unravel_index(outputs.argmax(), outputs.shape)
                expected = jaxviz.neuron_integrated_gradients(model, x, (channel, row, column), layer="features.7",
                                                              n_steps=4)
            array = np.load(out / name / f"{record['key']}.npy")
            np.testing.assert_allclose(array, np.asarray(expected)[0], rtol=1e-4,
                                       atol=1e-6 * np.abs(expected).max())
    assert _cli("neuron-gradient", photos, "--neuron", 5, 1, *common) == 3  # a conv layer's unit needs C H W


def test_fool_class_viz_and_style(photos, tmp_path):
    out = tmp_path / "out"
    assert _cli("fool", photos / "a.png", "--target", 6, "--max-iter", 2, "--learning-rate", 10, "--out", out,
                "--size", SIZE, "-q") == 0
    (record,) = _ok(out, "fool")
    assert record["target"] == 6 and record["iterations"] <= 2 and isinstance(record["success"], bool)
    fooled = np.load(out / "fool" / "a.png.npy")
    x = jaxviz.preprocess(jaxviz.load_image(photos / "a.png"), size=SIZE)
    expected = jaxviz.fooling_images(jaxviz.load_model(), x, np.array([6]), learning_rate=10.0, max_iter=2)
    np.testing.assert_allclose(fooled, np.asarray(expected.images)[0], atol=1e-5)
    assert {"a.png.png", "a.png.diff.png", "a.png.grid.png", "a.png.npy"} <= {p.name for p in (out / "fool").iterdir()}

    assert _cli("class-viz", "--classes", 1, 2, "--num-iterations", 2, "--image-size", SIZE, "--out", out, "-q") == 0
    assert sorted(r["key"] for r in _ok(out, "class-viz")) == ["001-goldfish", "002-great white shark"]
    assert np.load(out / "class-viz" / "001-goldfish.npy").shape == (SIZE, SIZE, 3)

    style = tmp_path / "my style.png"
    Image.fromarray(_photo(9, 36, 36)).save(style)
    assert _cli("style", photos / "a.png", "--styles", style, "--num-iterations", 2, "--size", SIZE, "--out", out,
                "-q") == 0
    (record,) = _ok(out, "style")
    assert record["key"] == "a.png__my style" and np.isfinite(record["loss"])
    with Image.open(out / "style" / "a.png__my style.png") as result:
        assert result.size == (38, SIZE)  # 40×48 resized to a 32 short side


def test_fool_without_a_target_is_an_error(photos, tmp_path, capsys):
    assert _cli("fool", photos, "--out", tmp_path / "out") == 3
    assert "needs a target class" in capsys.readouterr().err


# --------------------------------------------------------------------------- job files


def test_job_file_runs_several_methods_once_each(photos, tmp_path):
    job = tmp_path / "job.toml"
    job.write_text(f"""
inputs = ["photos"]
out = "maps"
batch_size = 2
size = 64

[saliency]
[gradcam]
[[guided-gradcam]]
folder = "ggc-f5"
layer = "features.5"
[[guided-gradcam]]
folder = "ggc-f9"
layer = "features.9"
[class-viz]
classes = [5]
num_iterations = 2
image_size = {SIZE}
""")
    assert _cli("run", job, "-q") == 0
    out = tmp_path / "maps"
    records = _ok(out)
    assert sorted({r["folder"] for r in records}) == ["class-viz", "ggc-f5", "ggc-f9", "gradcam", "saliency"]
    assert len(records) == 4 * 3 + 1
    f9 = {r["key"]: r for r in records if r["folder"] == "ggc-f9"}
    assert f9["photos/a.png"]["options"]["layer"] == "features.9"
    f5, f9 = np.load(out / "ggc-f5/photos/a.png.npy"), np.load(out / "ggc-f9/photos/a.png.npy")
    assert np.abs(f5).max() > 0 and not np.allclose(f5, f9)
    assert {r["target_from"] for r in records if r["folder"] != "class-viz"} == {"top1"}
    # a second run does nothing; --force redoes everything
    assert _cli("run", job, "-q") == 0
    assert len(_manifest(out)) == 13
    assert _cli("run", job, "-q", "--force") == 0
    assert len(_manifest(out)) == 26


@pytest.mark.parametrize("text, message", [
    ("inputs = ['x']\n[saliency]\nn_steps = 3\n", "unknown option 'n_steps' for saliency"),
    ("inputs = ['x']\n[salience]\n", "unknown key 'salience'"),
    ("inputs = ['x']\n", "no method tables"),
    ("inputs = ['x']\n[[gradcam]]\n[[gradcam]]\n", "distinct `folder`"),
    ("inputs = ['x']\n[gradcam]\nfolder = '../up'\n", "plain folder name"),
    ("inputs = ['x']\n[integrated-gradients]\nn_steps = 'many'\n", "`n_steps` must be an integer"),
    ("inputs = ['x'\n", "not valid TOML"),
])
def test_bad_job_files_are_rejected_clearly(tmp_path, capsys, text, message):
    job = tmp_path / "job.toml"
    job.write_text(text)
    assert _cli("run", job) == 3
    assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- bad inputs, odd paths


def _bad_and_odd_folder(folder: Path) -> tuple[set[str], set[str]]:
    """Writes images the command must handle and files it must skip; returns their keys."""
    folder.mkdir(parents=True)
    good = {
        "gray": Image.fromarray(_photo(0)[..., 0], "L"),
        "rgba": Image.fromarray(np.dstack([_photo(1), np.full((40, 48), 128, np.uint8)]), "RGBA"),
        "sixteen": Image.fromarray(_photo(2)[..., 0].astype(np.uint16) * 257),
        "with space": Image.fromarray(_photo(3)),
        "ünïcödé 猫": Image.fromarray(_photo(4)),
    }
    for name, image in good.items():
        image.save(folder / f"{name}.png")
    Image.fromarray(_photo(5)).save(folder / "corrupt.jpg", quality=90)
    data = (folder / "corrupt.jpg").read_bytes()
    (folder / "corrupt.jpg").write_bytes(data[: len(data) // 3])
    (folder / "text.png").write_text("this is not a PNG")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "tiny.png")
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "bomb.png")
    png = bytearray((folder / "bomb.png").read_bytes())  # IHDR claims 60000 × 60000 pixels
    png[16:24] = (60000).to_bytes(4, "big") * 2
    png[29:33] = zlib.crc32(bytes(png[12:29])).to_bytes(4, "big")
    (folder / "bomb.png").write_bytes(bytes(png))
    return {f"{folder.name}/{k}.png" for k in good}, {"corrupt", "text", "tiny", "bomb"}


def test_bad_images_are_reported_and_skipped_the_rest_completes(tmp_path, capsys):
    folder = tmp_path / "mixed inputs ✓"
    good, bad = _bad_and_odd_folder(folder)
    out = tmp_path / "out dir ✓"
    assert _cli("saliency", folder, "--out", out, "--size", SIZE, "--target", 1, "-b", 3) == 1
    assert {r["key"] for r in _ok(out)} == good
    failed = [r for r in _manifest(out) if r["status"] == "failed"]
    assert sorted(Path(r["input"]).stem for r in failed) == sorted(bad)
    err = capsys.readouterr().err
    assert "too large" in err and "too small" in err and "cannot read image" in err
    assert "done 5, skipped 0 (already there), failed 4" in err
    for key in good:
        assert np.isfinite(np.load(out / "saliency" / f"{key}.npy")).all()
    # grayscale and 16-bit images became three equal channels
    assert np.ptp(np.asarray(Image.open(out / "saliency" / f"{folder.name}/gray.png.grid.png"))[5, 5]) == 0
    # a re-run retries only the failures
    assert _cli("saliency", folder, "--out", out, "--size", SIZE, "--target", 1, "-q") == 1
    assert "done 0" not in capsys.readouterr().err  # quiet


def test_input_names_cannot_escape_the_output_folder(tmp_path):
    key = inputs.safe_key(["..", "a/../../b", "c\\..\\d", ".hidden"])
    parts = key.split("/")
    assert len(parts) == 4 and not any(p in ("", ".", "..") or p.startswith(".") for p in parts), key
    assert [p.split("-")[0] for p in parts] == ["___", "a_.._.._b", "c_.._d", "_hidden"]
    # names that had to change keep a hash of the original: two names never meet
    assert inputs.safe_component("a:b") != inputs.safe_component("a_b") == "a_b"
    folder = outputs.OutputFolder(tmp_path / "out")
    with pytest.raises(jaxviz.InputError, match="leave the output folder"):
        folder.path("../outside.png")
    with pytest.raises(jaxviz.InputError, match="leave the output folder"):
        folder.path("/etc/passwd")
    long = inputs.safe_component("x" * 400)
    assert len(long.encode()) <= inputs.MAX_COMPONENT_BYTES


def test_missing_inputs_and_empty_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert _cli("saliency", tmp_path / "empty", "--out", tmp_path / "out") == 3
    assert "no images found" in capsys.readouterr().err
    Image.fromarray(_photo(0)).save(tmp_path / "a.png")
    assert _cli("saliency", tmp_path / "a.png", tmp_path / "nope.png", "--out", tmp_path / "out", "--size", SIZE,
                "-q") == 1
    assert "nope.png: no such file or folder" in capsys.readouterr().err


# --------------------------------------------------------------------------- exit codes, help


def test_exit_codes(tmp_path, capsys):
    Image.fromarray(_photo(0)).save(tmp_path / "a.png")
    with pytest.raises(SystemExit) as usage:
        _cli("saliency", tmp_path / "a.png", "--batch-size", "many")
    assert usage.value.code == 2
    assert _cli("saliency", tmp_path / "a.png", "--weights", tmp_path / "missing.npz", "--out", tmp_path / "o") == 3
    assert "missing.npz" in capsys.readouterr().err
    assert _cli("saliency", tmp_path / "a.png", "--out", tmp_path / "o", "--size", SIZE, "-q") == 0
    assert _cli("occlusion", tmp_path / "a.png", "--window", 0, "--out", tmp_path / "o") == 3


def test_every_subcommand_has_help_with_examples():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(METHODS) | {"run", "demo", "classify", "weights"} <= set(commands)
    for name in list(METHODS) + ["run", "demo", "classify"]:
        text = commands[name].format_help()
        assert "examples:" in text and f"jaxviz {name}" in text, name


def test_help_is_answered_without_jax():
    """``jaxviz --help`` and every ``jaxviz COMMAND --help`` in a fresh interpreter import
    neither jax nor the methods (their time is a benchmark, benchmarks/cli_help.py)."""
    script = """
import contextlib, io, sys
from jaxviz.cli.main import main
names = [None] + sys.argv[1:]
for name in names:
    with contextlib.redirect_stdout(io.StringIO()) as text:
        try:
            main(([name] if name else []) + ["--help"])
        except SystemExit as done:
            assert done.code == 0, name
    assert "usage: jaxviz" in text.getvalue(), name
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"jax", "jaxlib", "flax", "optax", "torch", "matplotlib",
                                                          "skimage", "scipy"})
heavy += sorted({".".join(m.split(".")[:2]) for m in sys.modules if m.startswith(
    ("jaxviz.attribution", "jaxviz.models", "jaxviz.synthesis", "jaxviz.metrics", "jaxviz.cli.engine"))})
print(" ".join(heavy))
"""
    commands = [*METHODS, "run", "demo", "classify", "weights"]
    done = subprocess.run([sys.executable, "-c", script, *commands], capture_output=True, text=True, env=_env(),
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"imported to answer --help: {done.stdout}"


# --------------------------------------------------------------------------- interruption and resume


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAXVIZ_OFFLINE": "1"}


def _many(folder: Path, n: int) -> None:
    folder.mkdir()
    for i in range(n):
        Image.fromarray(_photo(i)).save(folder / f"img{i:03d}.png")


@pytest.mark.parametrize("sig, code", [(signal.SIGKILL, -9), (signal.SIGINT, 130), (signal.SIGTERM, 143),
                                       (signal.SIGHUP, 129)])
def test_an_interrupted_run_leaves_no_partial_files_and_resumes(tmp_path, sig, code):
    folder, out = tmp_path / "imgs", tmp_path / "out"
    _many(folder, 60)
    arguments = ["saliency", str(folder), "--out", str(out), "--size", str(SIZE), "--target", "1", "-b", "2",
                 "--workers", "1"]
    # Ctrl-C as in a terminal: a test runner started in the background inherits SIGINT
    # ignored (and Python then keeps it ignored), so the child installs the usual handler.
    ctrl_c_able = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
                   "sys.argv[0] = 'jaxviz'; runpy.run_module('jaxviz.cli.main', run_name='__main__')")
    command = [sys.executable, "-c", ctrl_c_able, *arguments]
    process = subprocess.Popen(command, env=_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_ok(out, being_written=True) if out.exists() else []) < 6:
        time.sleep(0.05)
    process.send_signal(sig)
    _, err = process.communicate(timeout=60)
    assert process.returncode == code, err
    first = len(_ok(out))
    assert 6 <= first < 60, "the run was not interrupted mid-batch"
    if sig != signal.SIGKILL:  # handled: a message, and no temporary file left behind
        assert ("interrupted" if sig == signal.SIGINT else "terminated") in err
        assert not list(out.rglob("*.tmp"))
    for path in out.rglob("*.png"):  # what is there is whole
        if not path.name.startswith("."):
            with Image.open(path) as image:
                image.load()
    resumed = subprocess.run(command + ["-q"], env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    records = _ok(out)
    assert sorted({r["key"] for r in records}) == [f"imgs/img{i:03d}.png" for i in range(60)]
    assert len(records) <= 60 + 1  # finished outputs were not redone (one may be recorded twice at most)
    assert not list(out.rglob("*.tmp"))
    for i in range(60):
        assert np.load(out / "saliency" / "imgs" / f"img{i:03d}.png.npy").shape == (SIZE, 38, 3)


# --------------------------------------------------------------------------- demo


def test_demo_runs_every_method():
    """The demo's job holds every subcommand's method (the run itself is tested below on a
    few: with every method it took 14.5 minutes under the test suite's settings)."""
    from jaxviz.cli import demo

    job, info = demo.demo_job(build_parser().parse_args(["demo", "--out", "unused", "--quick"]))
    assert {run.method.name for run in job.runs} == set(METHODS)
    assert info["class_run"] is not None and info["style_run"] in job.runs


# one method per figure: attribution (saliency), cams (gradcam is both), captum (deeplift),
# fooling, class visualisation and style
DEMO_METHODS = ("saliency", "gradcam", "deeplift", "fool", "class-viz", "style")


def test_demo_writes_the_course_figure_set(tmp_path, capsys):
    out = tmp_path / "demo"
    assert _cli("demo", "--out", out, "--quick", "--methods", ",".join(DEMO_METHODS), "--data", SHARED / "data") == 0
    err = capsys.readouterr().err
    for name in ("attribution.png", "cams.png", "captum.png", "fooling.png", "class_visualization.png",
                 "style_transfer.png"):
        assert (out / name).is_file(), err
    assert {r["method"] for r in _ok(out)} == set(DEMO_METHODS)
    assert {p.name for p in out.iterdir() if p.is_dir()} >= {"saliency", "gradcam", "cam-gradcam", "deeplift"}
    assert len(_ok(out, "style")) == 3  # the three presets on tubingen


def test_demo_refuses_an_unknown_method(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        _cli("demo", "--out", tmp_path / "demo", "--methods", "saliency,grdcam")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "unknown method grdcam" in err and "gradcam" in err
    assert not (tmp_path / "demo").exists()


def test_demo_falls_back_to_scikit_image_photos(tmp_path):
    args = build_parser().parse_args(["demo", "--out", str(tmp_path), "--data", str(tmp_path / "nothing")])
    from jaxviz.cli import demo

    job, info = demo.demo_job(args)
    assert [s.name for s in job.sources][:2] == ["skimage:chelsea", "skimage:coffee"]
    assert len(info["notes"]) == 2 and "scikit-image" in info["notes"][0]
    assert job.run_sources and info["styles"] == ["skimage:coffee"]


# --------------------------------------------------------------------------- other architectures


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory):
    """torchvision's ResNet-18 initialisation with random BatchNorm statistics, as an .npz."""
    import torch
    import torchvision

    torch.manual_seed(0)
    sd = {k: v.numpy() for k, v in torchvision.models.resnet18().state_dict().items()}
    rng = np.random.default_rng(0)
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = rng.uniform(0.5, 2.0, sd[k].shape).astype(np.float32)
    path = tmp_path_factory.mktemp("weights") / "resnet18.npz"
    np.savez(path, **sd)
    return path


def test_another_architecture_from_the_command_line_and_a_job_file(photos, tmp_path, resnet18_weights):
    out = tmp_path / "out"
    assert _cli("guided-gradcam", photos, "--arch", "resnet18", "--weights", resnet18_weights, "--out", out,
                "--size", SIZE, "--target", 7, "-q") == 0
    assert _cli("gradcam", photos, "--arch", "resnet18", "--weights", resnet18_weights, "--layer", "layer3.1",
                "--out", out, "--size", SIZE, "--target", 7, "-q") == 0
    model = jaxviz.load_model("resnet18", weights=resnet18_weights)
    for record in _ok(out):
        assert record["arch"] == "resnet18"
        x = jaxviz.preprocess(jaxviz.load_image(photos / record["key"].removeprefix("photos/")), size=SIZE)
        if record["method"] == "guided-gradcam":
            expected = np.asarray(jaxviz.guided_gradcam(model, x, np.array([7])))  # at layer4, the default
        else:
            expected = np.asarray(jaxviz.gradcam(model, x, np.array([7]), layer="layer3.1"))
        array = np.load(out / record["method"] / f"{record['key']}.npy")
        np.testing.assert_allclose(array, expected[0], rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    job = tmp_path / "job.toml"
    job.write_text(f"arch = 'resnet18'\nweights = '{resnet18_weights}'\nsize = {SIZE}\ntarget = 7\n"
                   f"inputs = ['{photos}']\nout = '{tmp_path / 'job'}'\n[saliency]\n")
    assert _cli("run", job, "-q") == 0
    assert {r["arch"] for r in _ok(tmp_path / "job")} == {"resnet18"}
    # the wrong architecture for the weights is one clear error
    assert _cli("saliency", photos, "--arch", "resnet34", "--weights", resnet18_weights, "--out",
                tmp_path / "wrong", "-q") == 3


def test_weights_convert_and_info_on_another_architecture(tmp_path, resnet18_weights, capsys):
    converted = tmp_path / "r18.safetensors"
    assert _cli("weights", "convert", resnet18_weights, "--out", converted) == 0  # architecture detected
    capsys.readouterr()
    assert _cli("weights", "info", "--arch", "resnet18", "--weights", converted, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "resnet18" and info["num_params"] == 11_689_512  # torchvision's count
    assert info["sha256"] == hashlib.sha256(converted.read_bytes()).hexdigest()
    npz, safetensors = (jaxviz.load_model("resnet18", weights=w) for w in (resnet18_weights, converted))
    for a, b in zip(jax.tree_util.tree_leaves(npz.params), jax.tree_util.tree_leaves(safetensors.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _cli("weights", "info", "--arch", "resnet34", "--weights", converted) == 3  # not ResNet-34's


# --------------------------------------------------------------------------- evaluate


def test_evaluate_writes_each_images_scores_and_a_summary_that_resumes(photos, tmp_path):
    """Scores equal to the metrics' API; a keyed metric's draws come from each image's own
    key (batch 1 and batch 2 agree); a re-run skips what is done and re-summarises."""
    out = tmp_path / "out"
    common = ("--methods", "saliency", "gradcam", "--metrics", "deletion", "sparseness", "random-logit",
              "road-morf", "--percentiles", 30, 70, "--step", 300, "--size", SIZE, "--out", out, "-q")
    assert _cli("evaluate", photos, "-b", 2, *common) == 0
    records = _ok(out, "evaluate")
    assert len(records) == 3
    model = jaxviz.load_model()
    record = next(r for r in records if r["key"] == "photos/a.png")
    x = jaxviz.preprocess(jaxviz.load_image(photos / "a.png"), size=SIZE)
    target = np.array([record["target"]])
    a = jaxviz.saliency(model, x, target)
    expected = float(jaxviz.metrics.deletion(model, x, target, a.sum(-1), step=300).auc[0])
    assert abs(record["scores"]["saliency"]["deletion"] - expected) <= 1e-5 * max(abs(expected), 1e-6)
    document = json.loads((out / "evaluate" / "photos/a.png.metrics.json").read_text())
    assert len(document["curves"]["gradcam/deletion"]) == -(-x.shape[1] * x.shape[2] // 300) + 1
    road = document["curves"]["gradcam/road-morf"]
    assert len(road) == 2 and abs(np.mean(road) - document["scores"]["gradcam"]["road-morf"]) <= 1e-6
    assert (out / "evaluate" / "photos/a.png.curves.png").is_file()
    summary = (out / "evaluate" / "summary.md").read_text()
    assert "3 images" in summary and "| saliency |" in summary and "random-logit" in summary
    rows = (out / "evaluate" / "summary.csv").read_text().splitlines()
    assert rows[0] == "method,metric,mean,sem,images" and len(rows) == 1 + 2 * 4

    single = tmp_path / "single"
    assert _cli("evaluate", photos, "-b", 1, *common[:-3], "--out", single, "-q") == 0
    for r in _ok(single, "evaluate"):
        theirs = next(s for s in records if s["key"] == r["key"])["scores"]
        for method, scores in r["scores"].items():
            for metric, value in scores.items():
                assert abs(value - theirs[method][metric]) <= 1e-4 * max(abs(value), 1e-3), (method, metric)
    (out / "evaluate" / "summary.md").unlink()
    assert _cli("evaluate", photos, "-b", 2, *common) == 0
    assert len(_ok(out, "evaluate")) == 3 and (out / "evaluate" / "summary.md").is_file()
    assert _cli("evaluate", photos, "--metrics", "nonsense", "--out", out, "-q") == 3  # bad options


def test_evaluate_draws_the_randomisation_figure(photos, tmp_path):
    """``--metrics mprt``: each method's Spearman, SSIM and HOG curves equal to the API's with
    the image's own key, the steps in the JSON, and the cascading randomisation figure."""
    from jaxviz.cli.registry import per_image_keys
    from jaxviz.metrics.mprt import parameter_layers

    out = tmp_path / "out"
    assert _cli("evaluate", photos, "--methods", "saliency", "smoothgrad", "--metrics", "mprt", "--size", SIZE,
                "--out", out, "-q") == 0
    record = next(r for r in _ok(out, "evaluate") if r["key"] == "photos/a.png")
    document = json.loads((out / "evaluate" / "photos/a.png.metrics.json").read_text())
    model = jaxviz.load_model()
    steps = list(reversed(parameter_layers(model)))
    assert document["randomisation"] == {"steps": steps, "shown": [0, 1, 2, 3, len(steps) // 3,
                                                                   2 * len(steps) // 3, len(steps)]}
    x = jaxviz.preprocess(jaxviz.load_image(photos / "a.png"), size=SIZE)
    key = per_image_keys(0, [inputs.key_seed("photos/a.png")])[0]
    api = jaxviz.metrics.mprt(model, x, np.array([record["target"]]), jaxviz.saliency, key=key,
                              measures=("spearman_abs", "ssim", "hog"))
    for curve, measure in (("mprt", "spearman_abs"), ("mprt-ssim", "ssim"), ("mprt-hog", "hog")):
        np.testing.assert_allclose(document["curves"][f"saliency/{curve}"], np.asarray(api.similarity[measure])[:, 0],
                                   rtol=1e-4, atol=1e-5, err_msg=curve)
        assert len(document["curves"][f"smoothgrad/{curve}"]) == len(steps) + 1
    assert record["scores"]["saliency"]["mprt"] == pytest.approx(float(api.similarity["spearman_abs"][-1, 0]),
                                                                 rel=1e-4, abs=1e-5)
    figure = Image.open(out / "evaluate" / "photos/a.png.randomisation.png")
    assert figure.format == "PNG" and figure.width > figure.height  # two rows of eight panels
