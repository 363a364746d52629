"""The batch command as a careful user and a security reviewer would try it: it never
deletes or overwrites what it did not make, never takes one input's result for another's,
fails early and in one line, and never ends in a traceback."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import jaxviz
from jaxviz import _io
from jaxviz.cli import outputs
from tests.cli_helpers import SIZE, cli, manifest, ok, photo
from conftest import ROOT, WEIGHTS_10, WEIGHTS_11


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _folder(path: Path, n: int, start: int = 0) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        Image.fromarray(photo(i)).save(path / f"img{i:03d}.png")
    return path


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "JAXVIZ_OFFLINE": "1"}


def _command(*arguments) -> list[str]:
    # Ctrl-C as in a terminal even when the test runner was started with SIGINT ignored
    start = ("import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "sys.argv[0] = 'jaxviz'; runpy.run_module('jaxviz.cli.main', run_name='__main__')")
    return [sys.executable, "-c", start, *map(str, arguments)]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _no_traceback(err: str) -> None:
    assert "Traceback" not in err, err


# --------------------------------------------------------------------------- 1. only its own files


def _user_files(out: Path, rng: random.Random) -> dict[Path, str]:
    """Files a user might keep in an output folder, many of them named like temporaries."""
    names = [".important.tmp", "notes.tmp", ".x.png.tmp", "a.npy.tmp", ".manifest.jsonl.tmp",
             # jaxviz's own pattern, but another host's, a live process's, or a malformed one
             f".img000.png.npy.~jaxviz-00000000-{_dead_pid()}-abcdefgh.tmp",
             f".img000.png.npy.~jaxviz-{_io.host_tag()}-{os.getpid()}-abcdefgh.tmp",
             f".img000.png.npy.~jaxviz-{_io.host_tag()}-1-abc.tmp", ".~jaxviz.tmp"]
    folders = [out, out / "victim", out / "deep" / "er", out / "saliency", out / "saliency" / "imgs"]
    files = {}
    for i in range(16):
        folder = rng.choice(folders)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / rng.choice(names) if i < 12 else folder / f"{rng.randrange(10**6)}.tmp"
        text = f"user data {i} {rng.random()}"
        path.write_text(text)
        files[path] = text
    return files


def _assert_intact(files: dict[Path, str]) -> None:
    for path, text in files.items():
        assert path.is_file() and path.read_text() == text, f"{path} was deleted or changed"


@pytest.mark.parametrize("seed", [0, 1])
def test_a_users_files_survive_every_run_interruption_and_rerun(tmp_path, seed):
    images, out = _folder(tmp_path / "imgs", 24), tmp_path / "out"
    files = _user_files(out, random.Random(seed))
    arguments = ["saliency", images, "--out", out, "--size", SIZE, "--target", 1, "-b", 2, "--workers", 1]
    # a stale temporary of a killed jaxviz (this host, exited) where this run writes: removed
    stale = out / "saliency" / "imgs" / f".img003.png.npy.~jaxviz-{_io.host_tag()}-{_dead_pid()}-zzzzzzzz.tmp"
    stale.write_bytes(b"half")
    # this (live) process's name, where the run writes: a live process's file is never removed
    live = out / "saliency" / "imgs" / f".img004.png.npy.~jaxviz-{_io.host_tag()}-{os.getpid()}-livelive.tmp"
    live.write_text("live")
    files[live] = "live"
    # the same, in a folder this run does not write: left alone
    elsewhere = out / "victim" / f".x.npy.~jaxviz-{_io.host_tag()}-{_dead_pid()}-zzzzzzzz.tmp"
    elsewhere.parent.mkdir(exist_ok=True)
    elsewhere.write_bytes(b"not ours to judge")
    files[elsewhere] = "not ours to judge"

    process = subprocess.Popen(_command(*arguments), env=_env(), stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(ok(out, being_written=True)) < 4:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    _assert_intact(files)
    assert not stale.exists()

    assert cli(*arguments, "-q") == 0
    _assert_intact(files)
    assert cli(*arguments, "-q", "--force") == 0
    _assert_intact(files)
    assert {r["key"] for r in ok(out)} == {f"imgs/img{i:03d}.png" for i in range(24)}
    # only jaxviz's own outputs beside the user's: no temporary of ours is left anywhere
    assert not [p for p in out.rglob("*") if _io.is_own_temporary(p.name) and p not in files]


def test_remove_stale_temporaries_spares_live_processes_other_hosts_and_links(tmp_path):
    mine, dead = _io.host_tag(), _dead_pid()
    kept = [f".a.npy.~jaxviz-{mine}-{os.getppid()}-abcdefgh.tmp",  # a live process
            f".a.npy.~jaxviz-ffffffff-{dead}-abcdefgh.tmp",  # another host (shared folder)
            f".a.npy.jaxviz-{mine}-{dead}-abcdefgh.tmp", ".a.tmp", "a.tmp"]
    for name in kept:
        (tmp_path / name).write_text("keep")
    target = tmp_path / "target.txt"
    target.write_text("keep")
    (tmp_path / f".b.npy.~jaxviz-{mine}-{dead}-abcdefgh.tmp").symlink_to(target)
    (tmp_path / f".c.npy.~jaxviz-{mine}-{dead}-abcdefgh.tmp").write_text("stale")
    assert _io.remove_stale_temporaries([tmp_path, tmp_path / "missing"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        kept + ["target.txt", f".b.npy.~jaxviz-{mine}-{dead}-abcdefgh.tmp"])


# --------------------------------------------------------------------------- 2. identity of a result


def test_resume_recomputes_what_changed_and_never_attaches_another_inputs_result(tmp_path):
    images, out = tmp_path / "photos", tmp_path / "out"
    images.mkdir()
    Image.fromarray(photo(0)).save(images / "a.png")
    Image.fromarray(photo(1)).save(images / "b.png")
    args = ["saliency", images, "--out", out, "--size", SIZE, "--target", 3, "-q"]
    assert cli(*args) == 0
    assert len(ok(out)) == 2
    Image.fromarray(photo(2)).save(images / "a.jpg", quality=95)  # sorts before a.png
    Image.fromarray(photo(3)).save(images / "b.png")  # same name, new content
    assert cli(*args) == 0
    model = jaxviz.load_model()
    latest = {r["key"]: r for r in ok(out)}
    assert set(latest) == {"photos/a.png", "photos/a.jpg", "photos/b.png"}
    assert len(ok(out)) == 4  # a.png was not redone; a.jpg and the new b.png were
    for key, record in latest.items():
        source = images / key.split("/", 1)[1]
        assert record["input"] == str(source) and record["input_sha256"] == _sha256(source)
        x = jaxviz.preprocess(jaxviz.load_image(source), size=SIZE)
        expected = np.asarray(jaxviz.saliency(model, x, np.array([3])))[0]
        np.testing.assert_allclose(np.load(out / "saliency" / f"{key}.npy"), expected, rtol=1e-5, atol=1e-7)

    # another target, other weights, another architecture: nothing is taken as done
    assert cli(*args[:-3], "--target", 4, "-q") == 0
    assert len(ok(out)) == 7
    other = tmp_path / "other.npz"
    weights = dict(np.load(WEIGHTS_11, allow_pickle=False))
    weights["classifier.1.bias"] = weights["classifier.1.bias"] + 1.0
    np.savez(other, **weights)
    assert cli(*args, "--weights", other) == 0
    assert len(ok(out)) == 10 and {r["weights_sha256"] for r in ok(out)[-3:]} == {_sha256(other)}
    assert cli(*args, "--weights", other) == 0
    assert len(ok(out)) == 10  # and with the same ones again, everything is done
    assert cli(*args, "--arch", "squeezenet1_0", "--weights", WEIGHTS_10) == 0
    assert len(ok(out)) == 13 and {r["arch"] for r in ok(out)[-3:]} == {"squeezenet1_0"}


def test_two_inputs_never_share_an_output_name(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    for i, name in enumerate(["a.png", "a.jpg", "a:b.png", "a_b.png", "a.PNG"]):
        Image.fromarray(photo(i)).save(images / name, format="PNG" if name.lower().endswith("png") else "JPEG")
    from jaxviz.cli import inputs

    sources, _ = inputs.collect([images, images / "a.png"])
    keys = [s.key for s in sources]
    assert len(keys) == len(set(keys)) == 6
    # a key depends on the input's own path, not on which other files are there
    alone, _ = inputs.collect([images / "a.png"])
    (only_a,) = [s for s in inputs.collect([images])[0] if s.path.name == "a.png"]
    (images / "a.jpg").unlink()
    assert only_a.key == next(s for s in inputs.collect([images])[0] if s.path.name == "a.png").key
    assert alone[0].key == "a.png"


# --------------------------------------------------------------------------- 3, 9, 10. targets, early checks


@pytest.mark.parametrize("arguments, message", [
    (["saliency", "{img}", "--target", "-1"], "`target` must be a class in 0..999, got -1"),
    (["saliency", "{img}", "--target", "1000"], "`target` must be a class in 0..999, got 1000"),
    (["saliency", "{img}", "--target", "2.7"], "`target` must be an integer"),
    (["fool", "{img}", "--target", "-1"], "`target` must be a class in 0..999, got -1"),
    (["gradcam", "{img}", "--layer", "nonexistent"], "'nonexistent' is not a layer of squeezenet1_1"),
    (["class-viz", "--classes", "3", "1000"], "`classes` must be a class in 0..999, got 1000"),
    (["saliency", "{img}", "--weights", "{tmp}/missing.npz"], "missing.npz"),
])
def test_bad_arguments_fail_before_the_model_loads_and_create_nothing(tmp_path, capsys, arguments, message):
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    out = tmp_path / "out"
    arguments = [a.format(img=image, tmp=tmp_path) for a in arguments]
    assert cli(*arguments, "--out", out) == 3
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 2, err  # the error and the debug hint
    assert not out.exists()


@pytest.mark.parametrize("text, message", [
    ("target = -1\n[saliency]\n", "`target` must be an integer >= 0, got -1"),
    ("target = 2.7\n[saliency]\n", "`target` must be an integer >= 0, got 2.7"),
    ("target = 1000\n[saliency]\n", "`target` must be a class in 0..999, got 1000"),
    ("[saliency]\ntarget = -1\n", "`target` must be a class in 0..999, got -1"),
    ("[saliency]\ntarget = 2.0\n", "`target` must be an integer, got 2.0"),
    ("[gradcam]\nlayer = 'features.99'\n", "'features.99' is not a layer"),
    ("arch = 'resnet5000'\n[saliency]\n", "got 'resnet5000'"),
    ("batch_size = '8'\n[saliency]\n", "`batch_size` must be an integer >= 1, got '8'"),
    ("batch_size = 0\n[saliency]\n", "`batch_size` must be an integer >= 1, got 0"),
    ("workers = 1.5\n[saliency]\n", "`workers` must be an integer >= 1, got 1.5"),
    ("size = true\n[saliency]\n", "`size` must be an integer >= 0, got True"),
    ("crop = 'no'\n[saliency]\n", "`crop` must be true or false, got 'no'"),
    ("force = 1\n[saliency]\n", "`force` must be true or false, got 1"),
    ("figures = 3\n[saliency]\n", "`figures` must be a comma list"),
    ("devices = -1\n[saliency]\n", "`devices` must be an integer >= 0, got -1"),
    ("inputs = 5\n[saliency]\n", "`inputs` must be a list of paths, got 5"),
    ("[saliency]\nsize = '224'\n", "`size` must be an integer >= 0, got '224'"),
    ("[saliency]\nfolder = 3\n", "`folder` must be a plain folder name, got 3"),
    ("[integrated-gradients]\nn_steps = 2.5\n", "`n_steps` must be an integer, got 2.5"),
    ("[smoothgrad]\nstdevs = 'big'\n", "`stdevs` must be float, got 'big'"),
])
def test_job_file_values_are_checked_with_the_file_and_the_field(tmp_path, capsys, text, message):
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    job = tmp_path / "job.toml"
    job.write_text(f"inputs = ['a.png']\nout = 'out'\n{text}" if not text.startswith("inputs") else text)
    assert cli("run", job) == 3
    err = capsys.readouterr().err
    assert message in err and "job.toml" in err, err
    assert not (tmp_path / "out").exists()


def test_bad_npz_labels_fail_only_their_own_image(tmp_path, capsys):
    X = np.stack([photo(i) for i in range(6)])
    path = tmp_path / "set.npz"
    np.savez(path, X=X, y=np.array([1, -1, 1000, 5, 2, 3]))
    floats = tmp_path / "floats.npz"
    np.savez(floats, X=X[:3], y=np.array([2.0, 2.7, np.nan]))
    out = tmp_path / "out"
    assert cli("saliency", path, floats, "--out", out, "--size", SIZE, "-q") == 1
    assert {r["key"]: r["target"] for r in ok(out)} == {
        "set/00000": 1, "set/00003": 5, "set/00004": 2, "set/00005": 3, "floats/00000": 2}
    failed = {r["input"]: r["error"] for r in manifest(out) if r["status"] == "failed"}
    assert "y is -1, outside the classes 0..999" in failed[f"{path}[1]"]
    assert "y is 1000" in failed[f"{path}[2]"] and "not an integer class" in failed[f"{floats}[1]"]
    assert "not an integer class" in failed[f"{floats}[2]"]
    assert "Traceback" not in capsys.readouterr().err
    # with --target the labels are not used, so they cannot fail anything
    assert cli("saliency", path, "--out", tmp_path / "o2", "--size", SIZE, "--target", 7, "-q") == 0


def test_a_bad_class_in_a_labels_file_fails_only_its_image(tmp_path, capsys):
    images = _folder(tmp_path / "imgs", 4)
    labels = tmp_path / "labels.tsv"
    labels.write_text("file\tclass\nimg000.png\t5\nimg001.png\t1000\nimg002.png\t2.7\nimg003.png\t-1\n")
    out = tmp_path / "out"
    assert cli("saliency", images, "--labels", labels, "--out", out, "--size", SIZE, "-q") == 1
    assert {r["key"]: r["target"] for r in ok(out)} == {"imgs/img000.png": 5}
    errors = sorted(r["error"] for r in manifest(out) if r["status"] == "failed")
    assert errors == ["saliency: labels.tsv:3: class must be in 0..999, got 1000",
                      "saliency: labels.tsv:4: class must be an integer, got '2.7'",
                      "saliency: labels.tsv:5: class must be in 0..999, got -1"]


def test_a_rerun_that_asks_for_more_files_makes_them(tmp_path):
    images, out = _folder(tmp_path / "imgs", 2), tmp_path / "out"
    args = ["saliency", images, "--out", out, "--size", SIZE, "--target", 1, "-q"]
    assert cli(*args, "--figures", "none", "--arrays", "npy") == 0
    assert not list(out.rglob("*.png.map.png"))
    assert cli(*args, "--figures", "none", "--arrays", "none") == 0
    assert len(ok(out)) == 2  # fewer files than recorded: done
    assert cli(*args, "--figures", "map") == 0
    assert len(ok(out)) == 4 and len(list(out.rglob("*.png.map.png"))) == 2
    assert cli(*args, "--figures", "map", "--arrays", "npz") == 0
    assert len(ok(out)) == 6 and len(list(out.rglob("*.png.npz"))) == 2


# --------------------------------------------------------------------------- 4. what a viewer shows


def test_exif_orientation_is_applied_and_the_first_frame_is_used(tmp_path):
    stored = photo(0, 40, 64)  # landscape pixels
    for orientation, transpose in [(6, Image.Transpose.ROTATE_270), (8, Image.Transpose.ROTATE_90),
                                   (3, Image.Transpose.ROTATE_180), (2, Image.Transpose.FLIP_LEFT_RIGHT)]:
        image = Image.fromarray(stored)
        exif = image.getexif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        image.save(path, exif=exif, quality=100)
        raw = np.asarray(Image.open(path).convert("RGB"))
        np.testing.assert_array_equal(jaxviz.load_image(path), np.asarray(Image.fromarray(raw).transpose(transpose)))
    assert jaxviz.load_image(tmp_path / "o6.jpg").shape == (64, 40, 3)  # portrait, as viewers show it
    frames = [Image.fromarray(np.full((24, 24, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    assert abs(int(jaxviz.load_image(tmp_path / "anim.gif")[5, 5, 0]) - 10) <= 2


# --------------------------------------------------------------------------- 5. one run per folder


def test_two_runs_started_together_on_one_folder_never_compute_an_output_twice(tmp_path):
    images, out = _folder(tmp_path / "imgs", 40), tmp_path / "out"
    arguments = ["saliency", images, "--out", out, "--size", SIZE, "--target", 1, "-b", 2, "--workers", 1, "-q"]
    runs = [subprocess.Popen(_command(*arguments), env=_env(), stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in runs]
    for code, err in results:
        _no_traceback(err)
        assert code in (0, 3), err
        if code == 3:  # the one that found the folder taken says so plainly
            assert "is in use by another jaxviz run" in err, err
    assert 0 in [code for code, _ in results]
    records = ok(out)
    assert len(records) == len({r["key"] for r in records}) == 40  # each output computed and recorded once


def test_the_folder_lock_is_held_while_a_run_writes(tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    out = tmp_path / "out"
    with outputs.OutputFolder(out):
        assert cli("saliency", image, "--out", out, "--size", SIZE, "-q") == 3
        assert "in use" in capsys.readouterr().err
    assert not manifest(out)
    assert cli("saliency", image, "--out", out, "--size", SIZE, "-q") == 0


# --------------------------------------------------------------------------- 6, 7. reading and writing places


def test_an_output_folder_inside_the_input_folder_is_never_read(tmp_path, capsys):
    images = _folder(tmp_path / "imgs", 2)
    out = images / "maps"
    for _ in range(2):
        assert cli("saliency", images, "--out", out, "--size", SIZE, "--target", 1, "-q", "--force") == 0
    assert {r["key"] for r in ok(out)} == {"imgs/img000.png", "imgs/img001.png"}
    # naming a file inside it explicitly is refused, alone
    (png,) = list((out / "saliency").rglob("img000.png.map.png"))
    assert cli("saliency", images / "img001.png", png, "--out", out, "--size", SIZE, "--target", 1) == 1
    assert "inside the output folder" in capsys.readouterr().err


def test_nothing_is_written_through_a_symbolic_link(tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.jsonl").symlink_to(victim)
    assert cli("saliency", image, "--out", out, "--size", SIZE) == 3
    assert "manifest" in capsys.readouterr().err and victim.read_text() == "precious"
    (out / "manifest.jsonl").unlink()
    # an output file that is a link, even to a place inside the folder
    (out / "saliency").mkdir()
    (out / "saliency" / "a.png.npy").symlink_to(victim)
    (out / "saliency" / "a.png.map.png").symlink_to(out / "saliency" / "other.png")
    assert cli("saliency", image, "--out", out, "--size", SIZE, "-q") == 1
    assert victim.read_text() == "precious" and not (out / "saliency" / "other.png").exists()
    assert not ok(out)
    # a sub-folder that is a link
    for path in (out / "saliency").iterdir():
        path.unlink()
    (out / "saliency").rmdir()
    (tmp_path / "elsewhere").mkdir()
    (out / "saliency").symlink_to(tmp_path / "elsewhere")
    assert cli("saliency", image, "--out", out, "--size", SIZE, "-q") == 1
    assert not list((tmp_path / "elsewhere").iterdir())
    assert "symbolic link" in capsys.readouterr().err


# --------------------------------------------------------------------------- 8. weights


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_weights_with_nan_or_inf_are_refused_naming_the_tensor(tmp_path, capsys, bad):
    weights = dict(np.load(WEIGHTS_11, allow_pickle=False))
    kernel = weights["features.3.expand3x3.weight"].astype(np.float32)
    kernel.flat[7] = bad
    weights["features.3.expand3x3.weight"] = kernel
    path = tmp_path / "bad.npz"
    np.savez(path, **weights)
    with pytest.raises(jaxviz.WeightsError, match=r"features\.3\.expand3x3\.weight has 1 NaN or infinite"):
        jaxviz.load_model(weights=path)
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    assert cli("saliency", image, "--weights", path, "--out", tmp_path / "out", "--size", SIZE) == 3
    assert "features.3.expand3x3.weight" in capsys.readouterr().err


# --------------------------------------------------------------------------- 11, 12. no traceback, ever


def _malformed_npz(folder: Path) -> dict[str, str]:
    """Broken .npz files and the words their one-line error must contain."""
    folder.mkdir()
    np.savez(folder / "rank0.npz", X=np.array(3))
    (folder / "empty.npz").write_bytes(b"")
    np.savez(folder / "short_y.npz", X=np.stack([photo(0), photo(1)]), y=np.array([1]))
    np.savez(folder / "y2d.npz", X=np.stack([photo(0), photo(1)]), y=np.array([[1], [2]]))
    np.savez(folder / "float_x.npz", X=np.zeros((1, 40, 48, 3), np.float32))
    np.savez(folder / "no_x.npz", images=np.zeros((1, 40, 48, 3), np.uint8))
    (folder / "text.npz").write_text("X,y\n1,2\n")
    np.save(folder / "bare.npy", np.zeros(3))
    (folder / "bare.npy").rename(folder / "bare.npz")
    np.savez(folder / "objects.npz", X=np.array([{"a": 1}], dtype=object))
    (folder / "damaged.npz").write_bytes(b"PK\x03\x04" + bytes(60))
    return {"rank0": "X must be uint8 images", "empty": "is empty", "short_y": "y has shape (1,)",
            "y2d": "y has shape (2, 1)", "float_x": "X must be uint8", "no_x": "has no X array",
            "text": "not an .npz archive", "bare": "single .npy array", "objects": "pickled objects",
            "damaged": "damaged .npz"}


def test_malformed_npz_files_fail_alone_in_one_line(tmp_path, capsys):
    expected = _malformed_npz(tmp_path / "npz")
    good = tmp_path / "good.png"
    Image.fromarray(photo(5)).save(good)
    out = tmp_path / "out"
    files = sorted((tmp_path / "npz").iterdir())
    assert cli("saliency", good, *files, "--out", out, "--size", SIZE) == 1  # targets: y, else top-1
    err = capsys.readouterr().err
    _no_traceback(err)
    assert [r["key"] for r in ok(out)] == ["good.png"]
    for stem, words in expected.items():
        lines = [line for line in err.splitlines() if f"{stem}.npz" in line]
        if stem in ("short_y", "y2d"):  # the file is fine, its labels are not: each image fails
            assert len(lines) == 0 or words in lines[0]
            assert any(words in r.get("error", "") for r in manifest(out) if stem in r["input"])
            continue
        assert len(lines) == 1 and words in lines[0], (stem, err)
    assert "pickled" not in next(line for line in err.splitlines() if "text.npz" in line)


def test_an_output_path_that_cannot_be_a_folder_is_one_line(tmp_path, capsys):
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    for out in (image, image / "sub"):
        assert cli("saliency", image, "--out", out, "--size", SIZE) == 3
        err = capsys.readouterr().err
        _no_traceback(err)
        assert "not a folder" in err or "cannot create the output folder" in err, err


def test_a_read_only_output_folder_is_one_line_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.png").write_text("not an image")
    Image.fromarray(photo(0)).save(tmp_path / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    if os.geteuid() == 0:  # root ignores permission bits: make the kernel's answer EROFS
        real_open = os.open

        def read_only(path, flags, *args, **kwargs):
            if str(path).startswith(str(out)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", read_only)
    else:
        out.chmod(0o555)
    try:
        assert cli("saliency", tmp_path / "a.png", tmp_path / "bad.png", "--out", out, "--size", SIZE) == 3
    finally:
        out.chmod(0o755)
    err = capsys.readouterr().err
    _no_traceback(err)
    assert "cannot write to the output folder" in err


def test_a_failure_that_cannot_be_recorded_is_still_reported(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.png").write_text("not an image")
    Image.fromarray(photo(0)).save(tmp_path / "a.png")

    def disk_full(self, entry):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.OutputFolder, "record", disk_full)
    assert cli("saliency", tmp_path / "a.png", tmp_path / "bad.png", "--out", tmp_path / "out",
               "--size", SIZE, "--target", 1) == 1
    err = capsys.readouterr().err
    _no_traceback(err)
    assert "could not record the failure" in err and "bad.png" in err


def test_names_in_messages_are_escaped(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "evil\njaxviz: done 99, forged.png").write_text("not an image")
    os.mkdir(folder / "bytes")
    Image.fromarray(photo(1)).save(folder / "bytes" / "plain.png")
    os.rename(os.fsencode(folder / "bytes" / "plain.png"), os.fsencode(folder / "bytes") + b"/caf\xe9.png")
    out = tmp_path / "out"
    assert cli("saliency", folder, "--out", out, "--size", SIZE, "--target", 1) == 1
    err = capsys.readouterr().err
    assert not any(line.startswith("jaxviz: done 99") for line in err.splitlines())
    assert "evil\\njaxviz: done 99, forged.png" in err
    (record,) = ok(out)  # a name that is not UTF-8 is processed, and the manifest stays JSON
    assert record["input"].endswith("caf\udce9.png") and (out / "saliency" / record["key"]).parent.is_dir()


def test_a_torch_tensor_is_converted_or_refused_with_the_layout_hint():
    import torch

    model = jaxviz.load_model()
    x = np.random.default_rng(0).normal(size=(1, SIZE, SIZE, 3)).astype(np.float32)
    expected = np.asarray(jaxviz.saliency(model, x, np.array([3])))
    got = np.asarray(jaxviz.saliency(model, torch.from_numpy(x), torch.tensor([3])))
    np.testing.assert_array_equal(got, expected)
    with pytest.raises(jaxviz.InputError, match="looks like NCHW"):
        jaxviz.saliency(model, torch.from_numpy(x).permute(0, 3, 1, 2), np.array([3]))


# --------------------------------------------------------------------------- the fuzz


def _fuzz_value(rng: random.Random):
    return rng.choice([-1, 0, 1, 1000, 2.7, "8", "x", "", True, [], [1, "a"], {"a": 1}, 10**12, -0.0, "none"])


def test_fuzzed_command_lines_and_job_files_end_in_a_documented_exit_code(tmp_path, capsys):
    """Random flags and job-file values: every run ends with 0–3, one-line errors, no
    traceback (the few that run compute tiny images)."""
    image = tmp_path / "a.png"
    Image.fromarray(photo(0)).save(image)
    rng = random.Random(0)
    flags = ["--target", "--layer", "--batch-size", "--size", "--workers", "--n-steps", "--window", "--arrays",
             "--figures", "--devices", "--labels", "--weights", "--alpha"]
    methods = ["saliency", "gradcam", "integrated-gradients", "occlusion", "fool"]
    for i in range(40):
        method = rng.choice(methods)
        arguments = [method, image, "--out", tmp_path / f"o{i}", "--size", SIZE, "-q"]
        for _ in range(rng.randint(1, 3)):
            arguments += [rng.choice(flags), str(_fuzz_value(rng))]
        try:
            code = cli(*arguments)
        except SystemExit as exit_:  # argparse: usage error
            code = exit_.code
        err = capsys.readouterr().err
        assert code in (0, 1, 2, 3), (arguments, code, err)
        _no_traceback(err)
    keys = ["batch_size", "size", "workers", "target", "arrays", "figures", "crop", "force", "inputs", "labels",
            "devices", "arch", "weights"]
    for i in range(40):
        lines = [f"out = 'o{i}'", "inputs = ['a.png']"]
        for key in rng.sample(keys, rng.randint(1, 3)):
            value = _fuzz_value(rng)
            lines.append(f"{key} = {_toml(value)}")
        lines.append(f"[{rng.choice(methods)}]")
        if rng.random() < 0.5:
            lines.append(f"{rng.choice(['target', 'n_steps', 'layer', 'window', 'size', 'folder'])} = "
                         f"{_toml(_fuzz_value(rng))}")
        job = tmp_path / f"job{i}.toml"
        job.write_text("\n".join(lines) + "\n")
        code = cli("run", job, "-q")
        err = capsys.readouterr().err
        assert code in (0, 1, 3), (job.read_text(), code, err)
        _no_traceback(err)


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value).replace("'", '"')
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)
