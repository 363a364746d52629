"""Every public name imports, and the CLI's weights commands work."""

from __future__ import annotations

import json

import jaxviz
from jaxviz.cli.main import main


def test_every_public_name_imports():
    for name in jaxviz.__all__:
        assert getattr(jaxviz, name) is not None, name


def test_weights_info_and_convert(tmp_path, capsys):
    assert main(["weights", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["arch"] == "squeezenet1_1" and info["num_params"] == 1235496
    assert info["found_by"] == "$JAXVIZ_WEIGHTS" and len(info["sha256"]) == 64
    out = tmp_path / "sq.safetensors"
    assert main(["weights", "convert", info["path"], "--out", str(out)]) == 0
    assert out.is_file()
    assert main(["weights", "info", "--weights", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["num_params"] == 1235496


def test_weights_error_is_one_line_and_exit_3(tmp_path, capsys):
    assert main(["weights", "info", "--weights", str(tmp_path / "nope.pth")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("jaxviz: error:") and "nope.pth" in err


def test_classify_samples(capsys):
    assert main(["classify", "--samples", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "skimage:chelsea: Egyptian cat" in out
