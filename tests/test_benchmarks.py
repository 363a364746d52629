"""The benchmark harness runs and writes well-formed results (speed is not tested here)."""

from __future__ import annotations

import json

from benchmarks import run


def test_quick_harness_writes_json_and_markdown(tmp_path):
    report = run.run(quick=True, repeats=1, only=["W2", "W6"], out=tmp_path)
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert data == json.loads(json.dumps(report))
    assert [r["workload"][:2] for r in data["results"]] == ["W2", "W6"]
    for row in data["results"]:
        assert row["median_s"]["jaxviz"] > 0 and row["compile_s"] >= 0
        assert all(v > 0 for v in row["ratio_ref_over_jaxviz"].values())
    assert data["results"][0]["gflop_per_s"] > 0 and data["matmul_peak_gflop_per_s"] > 0
    assert "| W2 saliency_map" in next(tmp_path.glob("*.md")).read_text()


def test_cli_help_benchmark_writes_json_and_markdown(tmp_path):
    from benchmarks import cli_help

    cli_help.main(["--repeats", "1", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "cli-help.json").read_text())
    assert [r["command"] for r in data["rows"]] == list(cli_help.COMMANDS)
    assert all(r["median_s"] > 0 for r in data["rows"])
    assert {r["command"] for r in data["rows"] if "met_by_median" in r} == set(cli_help.TIMED)
    assert "| `jaxviz --help` |" in (tmp_path / "cli-help.md").read_text()
