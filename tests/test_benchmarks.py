"""The benchmark harness runs and writes well-formed results (speed is not tested here)."""

from __future__ import annotations

import json

import pytest

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
    w2 = data["results"][0]
    assert set(w2["sweeps"]) == {"Captum Saliency"} and w2["target"]["factor"] == 1.5
    assert w2["target"]["reference"].startswith("Captum Saliency, ")
    assert w2["target"]["met"] == (w2["target"]["ratio_low"] >= 1.5)
    text = next(tmp_path.glob("*.md")).read_text()
    assert "| W2 saliency_map" in text and "| W2 | ≥ 1.5× | Captum Saliency, " in text


def test_a_sweep_keeps_its_fastest_setting_and_every_time():
    calls = []
    slow = lambda: calls.append("slow") or run.time.sleep(0.02)  # noqa: E731
    fast = lambda: calls.append("fast")  # noqa: E731
    refs, sweeps = run.settle_sweeps({"plain": fast, "swept": run.Sweep({"a": slow, "b": fast})}, {})
    assert list(refs) == ["plain", "swept, b"] and refs["swept, b"] is fast
    assert sweeps["swept"]["fastest"] == "b" and set(sweeps["swept"]["seconds"]) == {"a", "b"}
    assert calls == ["slow", "fast"]  # each setting once; the plain reference not run
    assert not sweeps["swept"]["fastest_at_an_end"]  # two settings: no inside to be at the edge of
    _, sweeps = run.settle_sweeps({"swept": run.Sweep({"a": slow, "b": fast, "c": slow})}, {})
    assert sweeps["swept"]["fastest"] == "b" and not sweeps["swept"]["fastest_at_an_end"]
    _, sweeps = run.settle_sweeps({"swept": run.Sweep({"a": slow, "b": slow, "c": fast})}, {})
    assert sweeps["swept"]["fastest_at_an_end"]


def test_a_reference_that_raises_is_reported_and_not_timed():
    def broken():
        raise AssertionError("The elements in the attribution vector are all equal to zero")

    fast = lambda: None  # noqa: E731
    failures = {}
    refs, sweeps = run.settle_sweeps({"swept": run.Sweep({"2": broken, "8": fast}), "dead": run.Sweep({"1": broken})},
                                     failures)
    assert list(refs) == ["swept, 8"] and set(sweeps["swept"]["seconds"]) == {"8"} and "dead" not in sweeps
    assert set(failures) == {"swept, 2", "dead, 1"}
    assert failures["swept, 2"] == "AssertionError: The elements in the attribution vector are all equal to zero"
    calls = []
    flaky = lambda: calls.append(1) or (len(calls) > 1 and broken())  # noqa: E731 -- fails on its second call
    times = run.alternate(fast, {"steady": fast, "flaky": flaky}, 3, failures)
    assert set(times) == {"jaxviz", "steady"} and len(times["jaxviz"]) == len(times["steady"]) == 3
    assert "flaky" in failures and len(calls) == 2  # not called again after it raised


def test_a_target_is_met_only_when_every_repeat_reaches_it():
    times = {"jaxviz": [1.0, 1.0, 1.0], "Captum A": [2.5, 1.9, 3.0], "Captum B": [4.0, 4.0, 4.0], "course": [0.5] * 3}
    verdict = run.target_verdict("W4", times)  # ≥ 2× the fastest Captum reference
    assert verdict["reference"] == "Captum A" and verdict["ratio_median"] == 2.5
    assert (verdict["ratio_low"], verdict["ratio_high"], verdict["met"]) == (1.9, 3.0, False)
    times["Captum A"][1] = 2.0
    assert run.target_verdict("W4", times)["met"]
    assert run.target_verdict("W11", times)["reference"] == "course"  # every reference counts
    assert run.target_verdict("W3", times) is None  # no target


def test_cli_help_benchmark_writes_json_and_markdown(tmp_path):
    from benchmarks import cli_help

    cli_help.main(["--repeats", "1", "--out", str(tmp_path)])
    data = json.loads((tmp_path / "cli-help.json").read_text())
    assert [r["command"] for r in data["rows"]] == list(cli_help.COMMANDS)
    assert all(r["median_s"] > 0 for r in data["rows"])
    assert {r["command"] for r in data["rows"] if "met_by_median" in r} == set(cli_help.TIMED)
    assert "| `jaxviz --help` |" in (tmp_path / "cli-help.md").read_text()


def test_the_shared_forward_torch_reference_equals_one_gradient_per_request():
    """W53's hand-written PyTorch reference (one forward pass, a backward pass per target)
    computes each request's saliency map."""
    import torch
    import torchvision

    torch.manual_seed(0)
    tm = torchvision.models.squeezenet1_1().eval()
    x = torch.randn(2, 3, 48, 48).repeat_interleave(3, dim=0)
    target = torch.tensor([1, 5, 9, 2, 6, 10])
    ours = run._torch_saliency_shared(tm, x, target, 3)
    each = []
    for i in range(len(target)):
        xi = x[i : i + 1].clone().requires_grad_()
        (g,) = torch.autograd.grad(tm(xi)[0, target[i]], xi)
        each.append(g.abs().amax(dim=1)[0])
    expected = torch.stack(each)
    assert expected.abs().max() > 0
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-7)


def test_a_workload_whose_references_need_the_cpu_is_refused_on_another_device(tmp_path):
    with pytest.raises(SystemExit, match=r"W30: the references run on the CPU only; on meta choose from W1, W2, "):
        run.run(quick=True, repeats=1, only=["W2", "W30"], out=tmp_path, torch_device="meta")
    assert run.TORCH_DEVICE == run.torch.device("cpu") and not list(tmp_path.iterdir())


def test_the_report_is_on_disk_after_every_workload(tmp_path, monkeypatch):
    """A run cut short (a time limit, a failing workload) keeps what it measured."""
    def cheap(model, tm, quick, notes):
        notes.append("cheap's note")
        return (lambda: run.jnp.ones(3)), {"nothing": lambda: None}, None

    def failing(model, tm, quick, notes):
        raise RuntimeError("boom")

    monkeypatch.setattr(run, "WORKLOADS", {"W998 cheap": cheap, "W999 failing": failing})
    with pytest.raises(RuntimeError, match="boom"):
        run.run(quick=True, repeats=1, only=None, out=tmp_path)
    data = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert [r["workload"] for r in data["results"]] == ["W998 cheap"] and data["notes"] == ["cheap's note"]
    assert "| W998 cheap |" in next(tmp_path.glob("*.md")).read_text()


def test_the_parity_table_keeps_each_tests_worst_comparison_relative_to_its_tolerance(tmp_path, monkeypatch):
    from benchmarks import parity_table
    from parity_tests import helpers

    log = tmp_path / "parity.jsonl"
    monkeypatch.delenv("JAXVIZ_PARITY_LOG", raising=False)
    helpers.record("nothing logged", 1e-12, 1e-9)
    assert not log.exists()
    monkeypatch.setenv("JAXVIZ_PARITY_LOG", str(log))
    for test, what, error, tol in (("a.py::test_m[resnet18]", "resnet18 IG", 5e-10, 1e-9),  # worst by ratio
                                   ("a.py::test_m[resnet18]", "resnet18 IG", 1e-6, 1e-4),   # largest error
                                   ("a.py::test_m[resnet18]", "resnet18 DeepLift", 1e-15, 1e-9),
                                   ("a.py::test_m[vgg11_bn]", "vgg11_bn IG", 1e-12, 1e-9),
                                   ("a.py::test_n", "z", 2e-15, 1e-9)):
        monkeypatch.setenv("PYTEST_CURRENT_TEST", f"{test} (call)")
        helpers.record(what, error, tol)
    worst = parity_table.rows(log.read_text().splitlines())
    assert set(worst) == {("a.py", "test_m", "resnet18", "IG"), ("a.py", "test_m", "resnet18", "DeepLift"),
                          ("a.py", "test_m", "vgg11_bn", "IG"), ("a.py", "test_n", "", "z")}
    m = worst[("a.py", "test_m", "resnet18", "IG")]
    assert (m["count"], m["error"]) == (2, 5e-10)
    assert worst[("a.py", "test_m", "vgg11_bn", "IG")]["count"] == 1
    assert "| a.py | test_m | resnet18 | IG | 2 | 0.5 | 5e-10 | 1e-09 | max |  |" in parity_table.table(worst)


def test_the_hook_free_guided_gradcam_reference_equals_captums():
    """W10's batched PyTorch reference (eager, and what torch.compile runs) is Captum's
    GuidedGradCam at ``layer4`` without hooks: the same numbers, on a ResNet whose
    ``relu`` module is called several times per block."""
    import torch
    import torchvision
    from captum.attr import GuidedGradCam

    torch.manual_seed(0)
    tm = torchvision.models.resnet18().double().eval()
    xt = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    yt = torch.tensor([3, 7])
    theirs = GuidedGradCam(tm, tm.layer4).attribute(xt.clone().requires_grad_(), target=yt)
    guided = run.guided_copy(tm)
    ours = run.resnet_guided_gradcam(*run.resnet_parts(tm), guided)(xt, yt)
    assert theirs.abs().max() > 0
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-12 * float(theirs.detach().abs().max()))
    assert not any(isinstance(m, torch.nn.ReLU) for m in guided.modules())
    assert any(isinstance(m, torch.nn.ReLU) for m in tm.modules())  # the original is left as it was
