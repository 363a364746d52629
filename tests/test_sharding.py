"""Scale-out: batches sharded over 4 host devices equal single-device results; two
``jax.distributed`` processes split a folder and produce every output exactly once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxviz import sharding
from jaxviz.errors import InputError
from conftest import ROOT, SHARED

# Added to the lane's own XLA flags (make test compiles these at -O0), not in their place.
FOUR_DEVICES = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_COORDINATOR", "JAX_NUM", "JAX_PROCESS"))}
    return {**env, "PYTHONPATH": str(ROOT), "JAXVIZ_OFFLINE": "1", **extra}


def test_padding_and_shares():
    x = np.arange(5)[:, None] * np.ones((1, 3))
    padded = sharding.pad_batch(x, 8)
    assert padded.shape == (8, 3) and (padded[5:] == x[-1]).all() and (padded[:5] == x).all()
    assert sharding.padded_size(5, 4) == 8 and sharding.padded_size(8, 4) == 8
    with pytest.raises(InputError):
        sharding.pad_batch(x, 4)
    items = list(range(7))
    shares = [sharding.share(items, i, 3) for i in range(3)]
    assert sorted(sum(shares, [])) == items and shares[0] == [0, 3, 6]


def test_initialize_reads_the_environment(monkeypatch):
    for name in sharding.ENV_COORDINATOR + sharding.ENV_NUM_PROCESSES + sharding.ENV_PROCESS_ID:
        monkeypatch.delenv(name, raising=False)
    assert sharding.initialize() == (0, 1)
    monkeypatch.setenv("JAX_NUM_PROCESSES", "2")
    with pytest.raises(InputError, match="need all of"):
        sharding.initialize()
    with pytest.raises(InputError, match="process id must be in 0..1"):
        sharding.initialize("localhost:1", 2, 5)


def test_sharded_methods_equal_single_device():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "_sharded_check.py"), str(SHARED / "data" / "imagenet_val_25.npz")],
        env=_env(XLA_FLAGS=FOUR_DEVICES), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) == {"saliency/5", "guided_gradcam/5", "integrated_gradients/5", "fooling/5", "saliency/6",
                           "resnet18 guided_gradcam/5", "own saliency/5", "repeats"}
    # a batch split over devices keeps its split: its repeated images are not gathered
    assert report.pop("repeats") == {"on one device": True, "sharded": False}
    for name, entry in report.items():
        assert entry["shape_ok"], name
        assert entry["devices"] == 4, name  # really spread over the mesh
        assert entry["max_rel"] < 1e-5, (name, entry)  # float32 rounding


def _folder(path: Path, n: int) -> Path:
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)
        Image.fromarray(small).resize((40, 40), Image.BILINEAR).save(path / f"im{i}.png")
    return path


def test_cli_on_four_devices_equals_one_device(tmp_path):
    images = _folder(tmp_path / "images", 5)
    script = (
        "import sys; from jaxviz.cli.main import main\n"
        "for d in ('1', '4'):\n"
        f"    code = main(['run', {str(tmp_path / 'job.toml')!r}, '--devices', d, '--out', {str(tmp_path)!r} + '/d' + d,"
        " '-q'])\n"
        "    assert code == 0, code\n"
    )
    (tmp_path / "job.toml").write_text(
        f'inputs = ["{images}"]\nbatch_size = 3\nsize = 40\n'
        "[saliency]\n[guided-gradcam]\n[integrated-gradients]\nn_steps = 4\n[fool]\ntarget = 6\nmax_iter = 3\n"
    )
    result = subprocess.run([sys.executable, "-c", script], env=_env(XLA_FLAGS=FOUR_DEVICES),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    for method in ("saliency", "guided-gradcam", "integrated-gradients", "fool"):
        for i in range(5):
            one = np.load(tmp_path / "d1" / method / "images" / f"im{i}.png.npy")
            four = np.load(tmp_path / "d4" / method / "images" / f"im{i}.png.npy")
            np.testing.assert_allclose(four, one, rtol=1e-5, atol=1e-5 * np.abs(one).max(), err_msg=method)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_split_a_folder_and_write_every_output_once(tmp_path):
    images = _folder(tmp_path / "images", 7)
    out = tmp_path / "out"
    port = _free_port()
    command = [sys.executable, "-m", "jaxviz.cli.main", "saliency", str(images), "--out", str(out), "--size", "40",
               "--target", "1", "-b", "2"]
    processes = [
        subprocess.Popen(command, env=_env(JAX_COORDINATOR_ADDRESS=f"localhost:{port}", JAX_NUM_PROCESSES="2",
                                           JAX_PROCESS_ID=str(i)),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    results = [p.communicate(timeout=300) for p in processes]
    for p, (_, err) in zip(processes, results):
        assert p.returncode == 0, err[-3000:]
    shares = {}
    for i in range(2):
        lines = (out / f"manifest.p{i}-of-2.jsonl").read_text().splitlines()
        shares[i] = [json.loads(line)["key"] for line in lines]
    assert not set(shares[0]) & set(shares[1])
    assert sorted(shares[0] + shares[1]) == [f"images/im{i}.png" for i in range(7)]
    assert len(shares[0]) == 4 and len(shares[1]) == 3
    assert "job complete" in results[0][1]
    assert len(list((out / "saliency" / "images").glob("*.npy"))) == 7
    # a re-run (one process) finds everything done
    rerun = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and "done 0, skipped 7" in rerun.stderr, rerun.stderr
