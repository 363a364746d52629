"""Run jaxviz and PyTorch on the same inputs and weights, and compare.

Every parity test uses these: torch reference models built from the same numpy
state_dict as the jaxviz model, NHWC↔NCHW conversion, float32/float64 set-ups, and one
error measure — max |jax − torch| / max |torch|.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
import torchvision

import jaxviz
from jaxviz.models import weights as jw

from conftest import SHARED, WEIGHTS_10, WEIGHTS_11

# make test runs two test processes on two cores and sets OMP_NUM_THREADS=1: a second
# PyTorch thread in each only contends (measured: the course's fooling loop on 25 images
# 45 s with two threads beside a busy core, 27 s with one)
torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))

PRETRAINED = {"squeezenet1_1": WEIGHTS_11, "squeezenet1_0": WEIGHTS_10,
              "mobilenet_v2": SHARED / "weights" / "mobilenet_v2_tv_qnnpack_fp16.npz"}
TOL = {"float32": 1e-5, "float64": 1e-10}  # model outputs
ATTR_TOL = {"float32": 1e-4, "float64": 1e-9}  # attribution methods


def exhaustive(*cases):
    """Parametrize cases that ``make test`` leaves to ``make test-exhaustive`` (marked
    ``exhaustive``): a method's parity on further families, once the families that exercise
    its rules are in the suite.  A tuple case is unpacked for a multi-name parametrize."""
    return [pytest.param(*(c if isinstance(c, tuple) else (c,)), marks=pytest.mark.exhaustive) for c in cases]


def _relative_error(a, b, norm) -> float:
    """norm(a − b) / norm(b) in float64 (b is the reference, which must not be all zeros)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = norm(b)
    assert np.isfinite(scale) and scale > 0, "reference is all zeros or not finite: the comparison would prove nothing"
    return float(norm(a - b) / scale)


def rel_err(a, b) -> float:
    """max |a − b| / max |b| (b is the reference, which must not be all zeros)."""
    return _relative_error(a, b, lambda v: np.abs(v).max())


def record(what: str, error: float, tol: float, criterion: str = "max", where: str = "") -> None:
    """With ``JAXVIZ_PARITY_LOG`` set, appends the comparison as one JSON line to that file
    (benchmarks/parity_table.py makes the per-method table of a run from it); ``where``:
    which part of the result was the worst (a layer), shown beside it."""
    log = os.environ.get("JAXVIZ_PARITY_LOG")
    if log:
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
        line = json.dumps({"test": test, "what": what, "error": error, "tol": tol, "criterion": criterion,
                           "where": where})
        with open(log, "a") as f:  # one short write per line: the suite's processes append side by side
            f.write(line + "\n")


def assert_close(ours, theirs, tol: float, what: str = "") -> float:
    err = rel_err(ours, theirs)
    record(what, err, tol)
    assert err <= tol, f"{what}: max|jax − torch|/max|torch| = {err:.3g} > {tol}"
    return err


def rms_rel_err(a, b) -> float:
    """rms(a − b) / rms(b): the relative error of the whole array, which, unlike the max
    norm's, one element's rounding does not decide."""
    return _relative_error(a, b, lambda v: np.sqrt(np.mean(v ** 2)))


def float32_accuracy(result, truth, tol=1e-4):
    """(max error, fraction of elements within ``tol``), relative to max|truth|."""
    err = np.abs(np.asarray(result, np.float64) - truth) / np.abs(truth).max()
    return float(err.max()), float((err <= tol).mean())


def assert_float32_as_accurate_as_torch(ours32, torch32, truth64, what="", rounding_sensitivity=None,
                                        matched_truth=None):
    """float32 criterion where float32 itself cannot reach 1e-4 in the max norm.

    Methods that sum many gradient evaluations on real images (IG, SmoothGrad) or take
    differences of nearly equal activations (conductance at early layers) are, in
    float32, only as good as float32 rounding and max-pool near-ties allow: a window whose
    top two values lie within rounding routes its gradient by a coin flip.  Measured:
    PyTorch float32 is 2.1e-3 (max) from its own float64 result on SmoothGrad of 3 real
    images, with 99.0% of elements within 1e-4.  So jaxviz float32 must be at least as
    close to the float64 truth as PyTorch float32 is: no more than twice its max error
    (or 1e-4), and a fraction within 1e-4 no more than 0.5% below it.  The same methods
    meet 1e-9 in float64.

    ``rounding_sensitivity``: a function giving :func:`rounding_sensitivity` for this
    input, called only when the max error needs it: where the exact result itself moves
    that far when the input moves by float32 rounding, the max error may too.

    ``matched_truth``: a function giving the float64 result with jaxviz float32's own
    decisions at the ReLU inputs within rounding of zero (:func:`relu_coin_flips`), called
    only when PyTorch's accuracy does not already cover ours; jaxviz's float32 is then held
    against it to PyTorch's accuracy against the plain float64 result.  Which near-ties a
    float32 evaluation flips depends on the machine's kernels and thread count, and
    PyTorch's can land on float64's side of all of them by luck.
    """
    truth64 = np.asarray(truth64, np.float64)
    ours_max, ours_within = float32_accuracy(ours32, truth64)
    torch_max, torch_within = float32_accuracy(torch32, truth64)
    bound, least_within = max(1e-4, 2 * torch_max), torch_within - 0.005
    if matched_truth is not None and not (ours_max <= bound and ours_within >= least_within):
        ours_max, ours_within = float32_accuracy(ours32, np.asarray(matched_truth(), np.float64))
        what = f"{what} (against float64 given jaxviz float32's ReLU coin flips)"
    moves = rounding_sensitivity() if rounding_sensitivity and ours_max > bound else 0.0
    record(what, ours_max, max(bound, 2 * moves), criterion="float32 vs PyTorch float32")
    assert ours_max <= max(bound, 2 * moves), (
        f"{what}: max {ours_max:.3g} vs PyTorch float32 {torch_max:.3g} "
        f"(the exact result moves by {moves:.3g} under float32 rounding of the input)")
    assert ours_within >= least_within, f"{what}: within 1e-4 {ours_within:.4f} vs PyTorch {torch_within:.4f}"
    return (ours_max, ours_within), (torch_max, torch_within)


# A ReLU input this close to zero, relative to its layer's largest, may take either sign in
# float32 (jaxviz's float32 activations of the pretrained model are within 9e-7 of
# float64 relative to each layer's largest); one further away that flips is an error.
NEAR_ZERO = 1e-5


def relu_coin_flips(model32, x32, tm64, x64, near_zero: float = NEAR_ZERO) -> dict[str, np.ndarray]:
    """``{ReLU module path: δ}``, (N, C, H, W) float64: at each ReLU input that jaxviz's
    float32 ``model32`` puts on the other side of zero than PyTorch's float64 ``tm64``
    (within ``near_zero`` of the layer's largest, else an AssertionError), the difference
    that moves the float64 input to jaxviz's float32 value, and 0 elsewhere.  A ReLU's
    input is its producer's output: the module before it in ``named_modules`` order."""
    modules = list(tm64.named_modules())
    producers = {name: modules[i - 1][0] for i, (name, m) in enumerate(modules) if isinstance(m, torch.nn.ReLU)}
    ours = model32.apply(model32.params, x32, capture=tuple(producers.values()))
    theirs = torch_layer_outputs(tm64, nchw(x64), list(producers.values()))
    deltas = {}
    for relu, producer in producers.items():
        z32 = np.asarray(ours[producer], np.float64).transpose(0, 3, 1, 2)
        z64 = np.asarray(theirs[producer]).transpose(0, 3, 1, 2)
        flipped = (z32 > 0) != (z64 > 0)
        far = flipped & (np.abs(z64) > near_zero * np.abs(z64).max())
        assert not far.any(), f"{producer}: {int(far.sum())} float32 ReLU decisions flipped beyond rounding"
        deltas[relu] = np.where(flipped, z32 - z64, 0.0)
    return deltas


@contextlib.contextmanager
def relu_inputs_moved(tm, deltas, images=slice(None)):
    """``tm``'s ReLUs read their input plus ``deltas[path][images]`` (of
    :func:`relu_coin_flips`) while the context lasts."""
    handles = [tm.get_submodule(path).register_forward_pre_hook(
        lambda m, args, d=torch.from_numpy(np.ascontiguousarray(d[images])): (args[0] + d.to(args[0].dtype),))
        for path, d in deltas.items() if d.any()]
    try:
        yield tm
    finally:
        for handle in handles:
            handle.remove()


def rounding_sensitivity(f, x, seeds=(0, 1, 2, 3)) -> float:
    """How far the float64 function ``f`` moves, max over ``seeds``, when every element of
    ``x`` moves by one float32 ulp (random signs): the error no float32 implementation can
    be held below on that input, however it rounds."""
    x = np.asarray(x, np.float64)
    exact = f(x)
    moved = (f(x * (1 + np.random.default_rng(seed).choice([-1.0, 1.0], x.shape) * 2.0 ** -23)) for seed in seeds)
    return max(rel_err(m, exact) for m in moved)


def nchw(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def nhwc(t) -> np.ndarray:
    t = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return t.transpose(0, 2, 3, 1) if t.ndim == 4 else t


def pretrained_state_dict(arch: str = "squeezenet1_1") -> dict[str, np.ndarray]:
    """The shared pretrained weights, upcast to float32."""
    return {k: v.astype(np.float32) for k, v in jw.read_state_dict(PRETRAINED[arch]).items()}


def torchvision_module(arch: str) -> torch.nn.Module:
    """torchvision's ``arch`` with its own initialisation, as the pretrained model is set up
    (GoogLeNet: ``transform_input``, no auxiliary heads)."""
    if arch == "googlenet":
        return torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=True, init_weights=True)
    return torchvision.models.get_model(arch, weights=None)


@functools.lru_cache(maxsize=2)  # tests of one architecture run together (conftest.py)
def random_state_dict(arch: str, seed: int) -> dict[str, np.ndarray]:
    """torchvision's initialisation, with non-zero biases (torchvision zeroes them) and
    non-trivial BatchNorms: random affine parameters, and running statistics measured on
    random images (train-mode pass, then each perturbed at random).  With statistics drawn
    blindly the deep networks' activations vanish (a random MobileNetV3 gives the same
    logits to 7 digits for any input), and no gradient comparison would mean anything."""
    torch.manual_seed(seed)
    module = torchvision_module(arch)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for name, value in module.state_dict().items():
            if name.endswith(".bias"):
                value.copy_(torch.from_numpy(rng.normal(0.0, 0.05, value.shape)))
            elif name.endswith(".weight") and value.ndim == 1:  # BatchNorm scale
                value.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, value.shape)))
    norms = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if norms:
        module.eval()
        for norm in norms:
            norm.train()
            norm.momentum = None  # cumulative average over the calibration pass
            norm.reset_running_stats()
        size = max(64, jaxviz.models.minimum_input_size(arch))
        with torch.no_grad():
            module(torch.from_numpy(rng.normal(0.0, 1.0, (4, 3, size, size)).astype(np.float32)))
        module.eval()
    sd = {k: v.numpy().copy() for k, v in module.state_dict().items()}
    for k in sd:
        if k.endswith(".running_mean"):
            sd[k] = (sd[k] + rng.normal(0.0, 0.1, sd[k].shape) * np.sqrt(sd[k.replace("mean", "var")])).astype(np.float32)
        elif k.endswith(".running_var"):
            sd[k] = (sd[k] * rng.uniform(0.7, 1.4, sd[k].shape)).astype(np.float32)
    return sd


def activation_module(forward, backward) -> torch.nn.Module:
    """A module computing ``forward(v)`` whose backward pass is ``backward(v, g)``: an
    activation with a rule of our own, written without hooks."""

    class Function(torch.autograd.Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return forward(v)

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return backward(v, g)

    class Module(torch.nn.Module):
        def forward(self, v):
            return Function.apply(v)

    return Module()


def guided_activation(kind: str) -> torch.nn.Module:
    """ReLU, ReLU6 or Hardswish with guided backprop's backward max(f'(v)·g, 0), hook-free."""
    if kind == "hardswish":
        def slope(v):  # PyTorch's hardswish_backward
            return torch.where(v < -3, 0.0, torch.where(v <= 3, v / 3 + 0.5, 1.0))
        return activation_module(torch.nn.functional.hardswish, lambda v, g: (slope(v) * g).clamp(min=0))
    high = 6.0 if kind == "relu6" else None
    return activation_module(
        lambda v: v.clamp(0.0, high),
        lambda v, g: torch.where((v > 0) & (v < high) if high else v > 0, g.clamp(min=0), torch.zeros_like(g)))


def modules_replaced(tm: torch.nn.Module, replacement) -> torch.nn.Module:
    """A copy of ``tm`` in which every submodule ``m`` with ``replacement(m)`` not ``None``
    is that module instead (a reference's own rules, without hooks); ``tm`` is left as it is."""
    model = copy.deepcopy(tm)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            new = replacement(child)
            if new is not None:
                setattr(parent, name, new)
    return model


def exact_hardsigmoid() -> torch.nn.Module:
    """Hardsigmoid whose backward uses 1/6 in the input's precision.  PyTorch's CPU kernel
    (hardsigmoid_backward) multiplies by ``scalar_t(1.0f / 6.0f)``, a float32 constant,
    even for float64: its float64 gradient through MobileNetV3's squeeze-excitation gates
    is off by 3e-8 (relative), 1.5e-9 at the input; this is the same definition exactly."""
    return activation_module(torch.nn.functional.hardsigmoid,
                             lambda v, g: torch.where((v > -3) & (v < 3), g / 6, torch.zeros_like(g)))


def torch_model(arch: str, state_dict, dtype: str = "float32") -> torch.nn.Module:
    # Built on the meta device and given copies of the state_dict's arrays in the model's
    # dtype: torchvision's initialisation of VGG's 100M-parameter classifier took 3 s a
    # model, only to be overwritten.  (astype copies: no test's changes reach the cached
    # state_dict.)
    with torch.device("meta"):
        module = torchvision_module(arch)
    as_dtype = np.float64 if dtype == "float64" else np.float32
    missing, unexpected = module.load_state_dict(
        {k: torch.from_numpy(np.asarray(v, np.float32).astype(as_dtype)) for k, v in state_dict.items()},
        strict=False, assign=True)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), (missing, unexpected)
    for key in missing:
        owner, _, name = key.rpartition(".")
        module.get_submodule(owner).register_buffer(name, torch.zeros((), dtype=torch.long))
    module.eval()
    # torchvision's ReLUs are in-place: a Captum layer hook on a conv followed by one would
    # read the ReLU'd values.  Out-of-place ReLUs compute the same function.
    for sub in module.modules():
        if isinstance(sub, torch.nn.ReLU):
            sub.inplace = False
    if dtype != "float64":
        return module
    for sub in list(module.modules()):
        for name, child in list(sub.named_children()):
            if isinstance(child, torch.nn.Hardsigmoid):
                setattr(sub, name, exact_hardsigmoid())
    return module.double()


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


def _has_constant_block(image) -> bool:
    """Whether some 3×3 block of pixels is constant (identical conv1 patches → exact ties)."""
    a = image.astype(np.int32)
    same = np.ones((a.shape[0] - 2, a.shape[1] - 2), bool)
    for di in range(3):
        for dj in range(3):
            same &= (a[di : di + same.shape[0], dj : dj + same.shape[1]] == a[1:-1, 1:-1]).all(-1)
    return bool(same.any())


# Images without a constant 3×3 block: 3, 4, 7, 8, 9, 15–18.  Image 3 also has a float32
# near-tie (two pool values within float32 rounding: saliency differs by 2.7e-4 from
# PyTorch's, while PyTorch float32 vs float64 differs as much), so the three used are:
TIE_FREE_IMAGES = (4, 7, 8)
assert not any(_has_constant_block(course_images()[0][i]) for i in TIE_FREE_IMAGES)
TIED_IMAGES = (1, 14)  # gradient routing flips on 1-ulp differences (see setup)


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




@functools.lru_cache(maxsize=2)  # tests of one architecture run together (conftest.py)
def random_case(arch: str):
    """(float64 jaxviz model, float64 torch model, two random NHWC images, targets) of
    ``arch`` with random weights: the smallest size the family takes (at least 40×43),
    each image's second class by torch's logits."""
    sd = random_state_dict(arch, 3)
    tm = torch_model(arch, sd, "float64")
    size = max(jaxviz.models.minimum_input_size(arch), 40)
    x = random_images((2, size, size + 3, 3), 5, "float64")
    with precision("float64"):
        model = jax_model(arch, sd, "float64")
    return model, tm, x, top_targets(tm, nchw(x), rank=1)


def top_targets(tm, xt, rank: int = 0) -> np.ndarray:
    """Each image's ``rank``-th class by torch's logits (so target scores are positive)."""
    with torch.no_grad():
        logits = tm(xt)
    return np.argsort(-logits.numpy(), axis=1)[:, rank].astype(np.int64)


def setup(case: str, dtype: str):
    """(jax model, torch model, NHWC x, targets) for a named case.

    ``pretrained``: the shared weights on 3 course images at 224, targets = true labels.
    The images are three of the 25 without a constant 3×3 pixel block (TIE_FREE_IMAGES):
    images with constant regions (e.g. 1 and 14) have max-pool windows whose values are
    equal in exact arithmetic; any rounding (a different summation order, or b + (x − b)
    on an IG path) breaks the tie differently in the two frameworks — 1 ulp decides which
    pixel gets the gradient — a discontinuity no implementation can avoid.  The routing
    rule itself is tested on those images in test_max_pool_parity.py.
    ``random``: random weights (seed 1) on 2 random images of odd size 61×75, targets =
    the 2nd-ranked class of each image (positive logits, different per image).
    """
    if case == "pretrained":
        sd = pretrained_state_dict()
        X, y = course_images()
        X, y = X[list(TIE_FREE_IMAGES)], y[list(TIE_FREE_IMAGES)]
        x = jaxviz.preprocess(X).astype(dtype)
        tm = torch_model("squeezenet1_1", sd, dtype)
        target = y.astype(np.int64)
    else:
        sd = random_state_dict("squeezenet1_1", 1)
        x = random_images((2, 61, 75, 3), 3, dtype)
        tm = torch_model("squeezenet1_1", sd, dtype)
        target = top_targets(tm, nchw(x), rank=1)
    return jax_model("squeezenet1_1", sd, dtype), tm, x, target
