"""Weight import: every source format, strict checks, the cache, the resolution order."""

from __future__ import annotations


import numpy as np
import pytest
import torch
import torchvision

import jaxviz
from jaxviz.models import weights as jw
from conftest import WEIGHTS_10, WEIGHTS_11


@pytest.fixture(scope="module")
def sd11():
    return {k: v.astype(np.float32) for k, v in jw.read_state_dict(WEIGHTS_11).items()}


def _same_params(a, b):
    assert set(a) == set(b)
    for layer in a:
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(np.asarray(a[layer][leaf]), np.asarray(b[layer][leaf]))


def test_kernel_is_oihw_to_hwio(sd11):
    params = jw.state_dict_to_params(sd11, "squeezenet1_1")
    w = sd11["features.3.expand3x3.weight"]  # (O, I, kh, kw)
    k = params["features.3.expand3x3"]["kernel"]  # (kh, kw, I, O)
    assert k.shape == (3, 3, 16, 64) and k.dtype == np.float32
    assert k[2, 1, 5, 7] == w[7, 5, 2, 1]
    np.testing.assert_array_equal(jw.params_to_state_dict(params)["features.3.expand3x3.weight"], w)


def test_fp16_upcast_is_exact():
    raw = dict(np.load(WEIGHTS_11, allow_pickle=False))
    assert raw["features.0.weight"].dtype == np.float16
    params, _ = jw.load_params(WEIGHTS_11, "squeezenet1_1", cache=False)
    np.testing.assert_array_equal(
        params["features.0"]["kernel"], raw["features.0.weight"].astype(np.float32).transpose(2, 3, 1, 0)
    )


@pytest.mark.parametrize("fmt", ["pth", "npz", "safetensors", "module", "state_dict"])
def test_every_source_gives_the_same_params(tmp_path, sd11, fmt):
    from safetensors.numpy import save_file

    reference = jw.state_dict_to_params(sd11, "squeezenet1_1")
    tensors = {k: torch.from_numpy(v) for k, v in sd11.items()}
    if fmt == "pth":
        torch.save(tensors, tmp_path / "w.pth")
        model = jaxviz.load_model(weights=tmp_path / "w.pth")
    elif fmt == "npz":
        np.savez(tmp_path / "w.npz", **sd11)
        model = jaxviz.load_model(weights=tmp_path / "w.npz")
    elif fmt == "safetensors":
        save_file(sd11, str(tmp_path / "w.safetensors"))
        model = jaxviz.load_model(weights=tmp_path / "w.safetensors")
    else:
        module = torchvision.models.squeezenet1_1()
        module.load_state_dict(tensors)
        model = jaxviz.from_torchvision(module if fmt == "module" else module.state_dict())
    assert model.arch == "squeezenet1_1"
    _same_params(model.params, reference)


def test_bf16_pth_is_upcast(tmp_path, sd11):
    torch.save({k: torch.from_numpy(v).bfloat16() for k, v in sd11.items()}, tmp_path / "w.pth")
    model = jaxviz.load_model(weights=tmp_path / "w.pth")
    assert model.params["features.0"]["kernel"].dtype == np.float32


def test_missing_unexpected_and_wrong_shape_keys_are_named(sd11):
    bad = dict(sd11)
    del bad["features.4.squeeze.bias"]
    bad["features.99.weight"] = np.zeros(3, np.float32)
    bad["classifier.1.weight"] = np.zeros((10, 512, 1, 1), np.float32)
    with pytest.raises(jaxviz.WeightsError) as info:
        jaxviz.from_torchvision(bad, "squeezenet1_1")
    message = str(info.value)
    assert "features.4.squeeze.bias" in message
    assert "features.99.weight" in message
    assert "classifier.1.weight: expected (1000, 512, 1, 1), got (10, 512, 1, 1)" in message


def test_other_architecture_is_named():
    with pytest.raises(jaxviz.ArchitectureMismatchError, match="squeezenet1_0 weights"):
        jaxviz.load_model("squeezenet1_1", weights=WEIGHTS_10)
    with pytest.raises(jaxviz.ArchitectureMismatchError, match="squeezenet1_1 weights"):
        jaxviz.load_model("squeezenet1_0", weights=WEIGHTS_11)


def test_arch_detected(sd11):
    assert jaxviz.from_torchvision(sd11).arch == "squeezenet1_1"
    assert jaxviz.load_model("squeezenet1_0", weights=WEIGHTS_10).arch == "squeezenet1_0"


def test_truncated_file_is_refused(tmp_path):
    data = WEIGHTS_11.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(jaxviz.WeightsError, match="cut.npz"):
        jaxviz.load_model(weights=tmp_path / "cut.npz")


def test_non_weight_file_is_refused(tmp_path):
    (tmp_path / "notes.pth").write_text("hello")
    with pytest.raises(jaxviz.WeightsError, match="notes.pth"):
        jaxviz.load_model(weights=tmp_path / "notes.pth")
    (tmp_path / "w.weird").write_text("hello")
    with pytest.raises(jaxviz.WeightsError, match="unknown weight file type"):
        jaxviz.load_model(weights=tmp_path / "w.weird")


class _Payload:
    """Unpickling this would run code; weights_only must refuse it."""

    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_is_refused(tmp_path, capsys):
    torch.save({"features.0.weight": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(jaxviz.WeightsError, match="refused to unpickle"):
        jaxviz.load_model(weights=tmp_path / "evil.pth")
    assert "pwned" not in capsys.readouterr().out


def test_object_npz_is_refused(tmp_path):
    np.savez(tmp_path / "obj.npz", a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(jaxviz.WeightsError, match="pickled"):
        jw.read_state_dict(tmp_path / "obj.npz")


def test_conversion_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVIZ_CACHE_DIR", str(tmp_path / "cache"))
    first, source = jw.load_params(WEIGHTS_11, "squeezenet1_1")
    cached = list((tmp_path / "cache").glob("squeezenet1_1-*.safetensors"))
    assert len(cached) == 1 and source.sha256[:16] in cached[0].name

    def fail(*args, **kwargs):
        raise AssertionError("converted again despite the cache")

    monkeypatch.setattr(jw, "read_state_dict", fail)
    second, _ = jw.load_params(WEIGHTS_11, "squeezenet1_1")
    _same_params(first, second)


def test_convert_then_default_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVIZ_CACHE_DIR", str(tmp_path / "cache"))
    out = jw.convert(WEIGHTS_11)
    assert out == tmp_path / "cache" / "squeezenet1_1.safetensors"
    monkeypatch.delenv("JAXVIZ_WEIGHTS")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    source = jw.resolve_weights("squeezenet1_1")
    assert source.how == "jaxviz cache" and source.path == out
    model = jaxviz.load_model()
    _same_params(model.params, jw.load_params(WEIGHTS_11, "squeezenet1_1", cache=False)[0])


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXVIZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    tv = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    tv.parent.mkdir(parents=True)
    sd = {k: torch.from_numpy(v.astype(np.float32)) for k, v in jw.read_state_dict(WEIGHTS_11).items()}
    torch.save(sd, tv)
    jw.convert(WEIGHTS_11)
    assert jw.resolve_weights("squeezenet1_1", WEIGHTS_11).how == "explicit path"
    assert jw.resolve_weights("squeezenet1_1").how == "$JAXVIZ_WEIGHTS"
    monkeypatch.delenv("JAXVIZ_WEIGHTS")
    assert jw.resolve_weights("squeezenet1_1").how == "jaxviz cache"
    (tmp_path / "cache" / "squeezenet1_1.safetensors").unlink()
    assert jw.resolve_weights("squeezenet1_1").how == "torchvision cache"
    assert jaxviz.load_model().arch == "squeezenet1_1"


def test_nothing_found_lists_every_way(tmp_path, monkeypatch):
    monkeypatch.delenv("JAXVIZ_WEIGHTS")
    monkeypatch.setenv("JAXVIZ_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(jaxviz.WeightsNotFoundError) as info:
        jaxviz.load_model()
    message = str(info.value)
    for expected in ("weights=", "JAXVIZ_WEIGHTS", "jaxviz weights convert", "squeezenet1_1-b8a52dc0.pth",
                     "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"):
        assert expected in message


def test_missing_explicit_and_env_paths(tmp_path, monkeypatch):
    with pytest.raises(jaxviz.WeightsNotFoundError, match="nope.pth"):
        jaxviz.load_model(weights=tmp_path / "nope.pth")
    monkeypatch.setenv("JAXVIZ_WEIGHTS", str(tmp_path / "gone.npz"))
    with pytest.raises(jaxviz.WeightsNotFoundError, match=r"\$JAXVIZ_WEIGHTS points to .*gone.npz"):
        jaxviz.load_model()


def test_manifest_lists_torchvision_urls():
    m = jw.manifest()
    assert set(m) == set(jaxviz.ARCHITECTURES)
    for arch, entry in m.items():
        weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
        assert entry["url"] == weights.url and entry["filename"] == weights.url.rsplit("/", 1)[1]
        assert entry["filename"].rsplit("-", 1)[1].startswith(entry["sha256_prefix"])
        # torchvision counts parameters, not BatchNorm's running statistics
        assert entry["num_params"] == weights.meta["num_params"] == sum(
            int(np.prod(s)) for k, s in jw.state_dict_shapes(arch).items() if ".running_" not in k), arch
