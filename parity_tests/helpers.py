"""Run jaxviz and PyTorch on the same inputs and weights, and compare.

Every parity test uses these: torch reference models built from the same numpy
state_dict as the jaxviz model, NHWC↔NCHW conversion, float32/float64 set-ups, and one
error measure — max |jax − torch| / max |torch|.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import jax
import numpy as np
import torch
import torchvision

import jaxviz
from jaxviz.models import weights as jw

from conftest import SHARED, WEIGHTS_10, WEIGHTS_11

torch.set_num_threads(2)

PRETRAINED = {"squeezenet1_1": WEIGHTS_11, "squeezenet1_0": WEIGHTS_10}
TOL = {"float32": 1e-5, "float64": 1e-10}


def rel_err(a, b) -> float:
    """max |a − b| / max |b| (b is the reference)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = np.abs(b).max()
    return float(np.abs(a - b).max() / (scale if scale > 0 else 1.0))


def nchw(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def nhwc(t) -> np.ndarray:
    t = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return t.transpose(0, 2, 3, 1) if t.ndim == 4 else t


def pretrained_state_dict(arch: str = "squeezenet1_1") -> dict[str, np.ndarray]:
    """The shared pretrained weights, upcast to float32."""
    return {k: v.astype(np.float32) for k, v in jw.read_state_dict(PRETRAINED[arch]).items()}


def random_state_dict(arch: str, seed: int) -> dict[str, np.ndarray]:
    """torchvision's initialisation, plus non-zero biases (torchvision zeroes them)."""
    torch.manual_seed(seed)
    module = getattr(torchvision.models, arch)()
    sd = {k: v.numpy().copy() for k, v in module.state_dict().items()}
    rng = np.random.default_rng(seed)
    for k in sd:
        if k.endswith(".bias"):
            sd[k] = rng.normal(0.0, 0.05, sd[k].shape).astype(np.float32)
    return sd


def torch_model(arch: str, state_dict, dtype: str = "float32") -> torch.nn.Module:
    module = getattr(torchvision.models, arch)()
    module.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state_dict.items()})
    module.eval()
    return module.double() if dtype == "float64" else module


def jax_model(arch: str, state_dict, dtype: str = "float32") -> jaxviz.Model:
    model = jaxviz.from_torchvision(state_dict, arch)
    return model.astype(np.float64) if dtype == "float64" else model


@contextlib.contextmanager
def precision(dtype: str):
    """float64 runs need jax_enable_x64 for their whole duration."""
    with jax.enable_x64(dtype == "float64"):
        yield


def random_images(shape, seed: int = 0, dtype: str = "float32") -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(dtype)


def course_images(n: int | None = None):
    """The course's 25 validation images (uint8 NHWC) and labels."""
    with np.load(SHARED / "data" / "imagenet_val_25.npz", allow_pickle=False) as data:
        X, y = data["X"], data["y"]
    return (X, y) if n is None else (X[:n], y[:n])


def torch_layer_outputs(module: torch.nn.Module, x: torch.Tensor, names) -> dict[str, np.ndarray]:
    """Outputs of torch submodules by path; cloned, since torchvision's ReLUs are in-place."""
    outputs, handles = {}, []
    for name in names:
        sub = module.get_submodule(name)
        handles.append(sub.register_forward_hook(lambda m, i, o, name=name: outputs.__setitem__(name, o.clone())))
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return {k: nhwc(v) for k, v in outputs.items()}


def shared_path(*parts) -> Path:
    return SHARED.joinpath(*parts)
