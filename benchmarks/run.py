"""Side-by-side speed of jaxviz and its PyTorch counterparts, in one run.

    python -m benchmarks.run [--quick] [--repeats 5] [--only W2,W6] [--out benchmarks/results]
                             [--torch-device cuda] [--no-torch-compile]

Every workload runs jaxviz and each reference alternately on the same inputs and
pretrained weights (float32).  Reported per implementation: compile time (first call
minus a steady call; jaxviz only), median and spread (min–max) of the steady-state time
over the repeats, and the ratio reference / jaxviz.  For jaxviz: FLOPs from XLA's cost
analysis of one step of the workload, times the steps the workload takes, as GFLOP/s and as
a share of this machine's float32 matrix-multiply peak, measured in the same run.
Writes ``<out>/<machine>.json`` and ``.md`` after every workload.  ``--quick`` shrinks every
workload to a smoke test.  Where JAX runs on a GPU the references run on it too
(``--torch-device``; benchmarks/gpu.sh runs the GPU side in bounded phases).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import functools
import io
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxviz
from jaxviz import _chunks, scoring

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the course reference loops live in parity_tests/
SHARED = Path(os.environ.get("JAXVIZ_SHARED") or ROOT.parent / "shared")
torch.set_num_threads(os.cpu_count() or 1)
# Where the PyTorch references run: set once by ``--torch-device`` before any workload is made.
TORCH_DEVICE = torch.device("cpu")
TORCH_COMPILE = True  # ``--no-torch-compile`` leaves torch.compile's references out


class Sweep(dict):
    """A reference's settings (label → callable), e.g. Captum's ``internal_batch_size``.

    Each setting runs once before the repeats and every time is recorded; the fastest
    setting then runs in the alternating repeats as that reference.  (A setting a single
    run misjudges by noise is within that noise of the fastest, so the choice costs the
    reference at most the noise.)"""


def torch_threads(n: int, fn):
    """``fn`` run with ``n`` torch threads (the setting restored afterwards)."""
    def run():
        before = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fn()
        finally:
            torch.set_num_threads(before)
    return run


def thread_sweep(fn, quick: bool) -> Sweep:
    """``fn`` at one torch thread and at one per core."""
    counts = (torch.get_num_threads(),) if quick else sorted({1, os.cpu_count() or 1})
    return Sweep({f"{n} torch thread{'s' * (n > 1)}": torch_threads(n, fn) for n in counts})


def block(value):
    for leaf in jax.tree_util.tree_leaves(value):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return value


def timed(fn):
    start = time.perf_counter()
    block(fn())
    if TORCH_DEVICE.type == "cuda":  # PyTorch's kernels run asynchronously
        torch.cuda.synchronize()
    return time.perf_counter() - start


def matmul_peak_gflops(sizes=(1024, 2048), repeats: int = 30) -> float:
    """The best float32 square-matmul rate over ``sizes`` (best of ``repeats`` each), with
    XLA's settings and with YNNPACK's dot whatever ``XLA_FLAGS`` says: a generous peak, since
    single runs on this shared machine vary by ±10 %."""
    variants = [None]
    if jax.default_backend() == "cpu":
        variants.append({"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"})
    best_rate = 0.0
    for n in sizes:
        a = jnp.ones((n, n), jnp.float32)
        for options in variants:
            f = jax.jit(lambda a: a @ a, compiler_options=options)
            block(f(a))
            best = min(timed(lambda: f(a)) for _ in range(repeats))
            best_rate = max(best_rate, 2 * n**3 / best / 1e9)
    return best_rate


def flops_of(fn, *args) -> float:
    """XLA's count of ``fn``'s FLOPs; NaN off the CPU, where the convolutions are library
    calls that the cost analysis counts as none (VGG-16's forward pass came to 3 % of its
    FLOPs on the H200)."""
    if jax.default_backend() != "cpu":
        return float("nan")
    analysis = jax.jit(fn).lower(*args).compile().cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float((analysis or {}).get("flops", float("nan")))


def per_image_flops(fn, model, x, target) -> float:
    """FLOPs of ``fn`` on the whole batch, as the batch size times those of one image.

    XLA's cost analysis counts a loop's body once, not once per trip, so it cannot see
    the work of functions that evaluate a batch in chunks inside a ``lax.map``; on one
    image there is a single chunk, and each image costs the same.
    """
    return flops_of(fn, model, x[:1], target[:1]) * x.shape[0]


# --------------------------------------------------------------------------- data & models


def course_images(n):
    with np.load(SHARED / "data" / "imagenet_val_25.npz", allow_pickle=False) as data:
        return data["X"][:n], data["y"][:n]


def val_1300(n):
    folder = SHARED / "data" / "imagenet_val_1300"
    names = [line.split("\t")[0] for line in (folder / "labels.tsv").read_text().splitlines()[1:] if line.strip()]
    return np.stack([jaxviz.load_image(folder / name) for name in names[:n]])


def torch_model(state_dict):
    import torchvision

    tm = torchvision.models.squeezenet1_1()
    tm.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state_dict.items()})
    return tm.eval().to(TORCH_DEVICE)


def torch_compiled(tm, notes: list, quick: bool):
    """``torch.compile(tm)``, or None where it does not work here (the reason goes to ``notes``).
    Skipped in ``--quick`` mode and with ``--no-torch-compile``: its compilation takes minutes."""
    if quick:
        return None
    if not TORCH_COMPILE:
        notes.append("torch.compile not run (--no-torch-compile).")  # the report keeps each note once
        return None
    try:
        compiled = torch.compile(tm)
        compiled(torch.zeros(2, 3, 64, 64, device=TORCH_DEVICE, requires_grad=True)).sum().backward()
        return compiled
    except Exception as err:  # noqa: BLE001 - reported, not fatal
        note = f"torch.compile does not work on this machine: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
        if note not in notes:
            notes.append(note)
        return None


def to_torch(a):
    """``a`` as a tensor on the references' device."""
    return torch.from_numpy(np.ascontiguousarray(np.asarray(a))).to(TORCH_DEVICE)


def beside_references(a):
    """``a`` where the references' tensors are: on their device, as a jax array, when that
    is not the CPU (so that jaxviz's calls do not copy it there each time, as the
    references' do not); as it is on the CPU, where results stay comparable with earlier runs."""
    return a if TORCH_DEVICE.type == "cpu" else jax.device_put(a)


def nchw(x):
    return to_torch(np.asarray(x).transpose(0, 3, 1, 2))


# --------------------------------------------------------------------------- workloads
# Each returns (jaxviz callable, {reference name: callable}, FLOPs of the jaxviz run or None).


def w1_forward(model, tm, quick, notes):
    n, batch = (100, 50) if quick else (1300, 50)
    x = beside_references(jaxviz.preprocess(val_1300(n)))
    notes.append(f"W1: jaxviz takes all {n} images in one call and evaluates them "
                 f"{_chunks.chunk_size(n, 224, 224)} at a time (its chunk size on {jax.default_backend()}).")

    def batched(network, size):
        def run():
            with torch.no_grad():
                return [network(nchw(x[i : i + size])) for i in range(0, n, size)]
        return run

    batches = (50,) if quick else (1, 2, 5, 10, 25, 50, 100, 200)
    refs = {"torch eager": Sweep({f"batch {b}": batched(tm, b) for b in batches})}
    compiled = torch_compiled(tm, notes, quick)
    if compiled is not None:  # one batch size: each new shape costs torch.compile minutes here
        refs["torch.compile (batch 50)"] = batched(compiled, batch)
    flops = flops_of(lambda m, v: m.apply(m.params, v), model, x[:1]) * n
    return (lambda: model(x)), refs, flops


def w2_saliency(model, tm, quick, notes):
    from captum.attr import Saliency

    from parity_tests.test_attribution_parity import course_saliency_map

    X, y = course_images(5 if quick else 25)
    x = beside_references(jaxviz.preprocess(X))
    xt, yt = nchw(x), to_torch(y)
    flops = per_image_flops(lambda m, v, t: jaxviz.saliency_map(m, v, t), model, x, y)
    refs = {
        "course (one image at a time)": lambda: [course_saliency_map(tm, xt[i : i + 1], yt[i : i + 1]) for i in range(len(y))],
        "torch batched": lambda: course_saliency_map(tm, xt, yt),
        "Captum Saliency": thread_sweep(lambda: Saliency(tm).attribute(xt.clone().requires_grad_(), target=yt), quick),
    }
    compiled = torch_compiled(tm, notes, quick)
    if compiled is not None:
        refs["torch.compile batched"] = lambda: course_saliency_map(compiled, xt, yt)
    return (lambda: jaxviz.saliency_map(model, x, y)), refs, flops


def w3_guided_gradcam(model, tm, quick, notes):
    from captum.attr import GuidedGradCam

    X, y = course_images(5 if quick else 25)
    x = beside_references(jaxviz.preprocess(X))
    xt, yt = nchw(x), to_torch(y)
    flops = per_image_flops(lambda m, v, t: jaxviz.guided_gradcam(m, v, t), model, x, y)
    return (lambda: jaxviz.guided_gradcam(model, x, y)), {
        "Captum GuidedGradCam": thread_sweep(
            lambda: GuidedGradCam(tm, tm.features[12]).attribute(xt.clone().requires_grad_(), target=yt), quick),
    }, flops


def w4_integrated_gradients(model, tm, quick, notes):
    from jaxviz.attribution import _paths

    n_steps = 4 if quick else 50
    X, y = course_images(2 if quick else 5)
    x = beside_references(jaxviz.preprocess(X))
    xt, yt = nchw(x), to_torch(y)
    steps = _paths.steps_per_chunk(_paths.DEFAULT_INTERNAL_BATCH_SIZE, len(y), n_steps)
    notes.append(f"W4: jaxviz at its default internal_batch_size ({_paths.DEFAULT_INTERNAL_BATCH_SIZE}): "
                 f"{-(-n_steps // steps)} evaluation(s) of {steps} steps × {len(y)} images.")
    # n_steps input gradients per image, each what jaxviz's gradient of one image costs
    gradient_flops = per_image_flops(lambda m, v, t: scoring.input_gradients(m, v, t), model, x, y)
    return (lambda: jaxviz.integrated_gradients(model, x, y, n_steps=n_steps)), {
        "Captum IntegratedGradients": captum_ig_sweep(tm, xt, yt, n_steps,
                                                      (4,) if quick else (1, 2, 5, 10, 25, 50, 125, 250)),
    }, gradient_flops * n_steps


def captum_ig_sweep(tm, xt, yt, n_steps, batch_sizes) -> Sweep:
    """Captum's IntegratedGradients at each ``internal_batch_size``."""
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(tm)
    return Sweep({f"internal_batch_size {b}": (lambda b=b: ig.attribute(xt, target=yt, n_steps=n_steps,
                                                                          internal_batch_size=b))
                  for b in batch_sizes})


def captum_occlusion_sweep(tm, xt, yt, window, strides, per_eval) -> Sweep:
    """Captum's Occlusion at each ``perturbations_per_eval``; ``window`` and ``strides`` in
    jaxviz's (H, W, C) order."""
    from captum.attr import Occlusion

    occlusion = Occlusion(tm)
    chw = lambda hwc: (hwc[2], hwc[0], hwc[1])  # noqa: E731
    return Sweep({f"perturbations_per_eval {k}": (lambda k=k: occlusion.attribute(
        xt, sliding_window_shapes=chw(window), strides=chw(strides), target=yt, perturbations_per_eval=k))
        for k in per_eval})


def w5_occlusion(model, tm, quick, notes):
    from jaxviz.attribution import _regions
    from jaxviz.attribution.occlusion import DEFAULT_WINDOWS_PER_EVAL, window_masks

    X, y = course_images(1 if quick else 5)
    x = beside_references(jaxviz.preprocess(X, size=64) if quick else jaxviz.preprocess(X))
    xt, yt = nchw(x), to_torch(y)
    windows = np.prod([len(window_masks(size, 15, 8)) for size in x.shape[1:3]])
    plan = (_regions.window_plan(model, x.shape[1:], (15, 15, 3), (8, 8, 3))
            if windows * len(x) >= _regions.PLANNING_PAYS else None)  # as jaxviz.occlusion decides
    notes.append("W5: jaxviz at its defaults: " + (
        f"each occluded image's layers below {plan.layer} on a {plan.rows.crop}×{plan.cols.crop} crop around its "
        "window (its region plan)" if plan is not None else
        f"every occluded image whole, {DEFAULT_WINDOWS_PER_EVAL} windows × the images per forward pass") + ".")
    per_eval = (16,) if quick else (1, 2, 4, 8, 16) if TORCH_DEVICE.type == "cpu" else (8, 32, 128, 512)
    return (lambda: jaxviz.occlusion(model, x, y, sliding_window_shapes=(15, 15, 3), strides=(8, 8, 3))), {
        "Captum Occlusion": captum_occlusion_sweep(tm, xt, yt, (15, 15, 3), (8, 8, 3), per_eval),
    }, None


def _batched_fooling(tm, x, target, lr):
    """A fair batched PyTorch loop: each step on the images not yet fooled."""
    X = x.clone()
    active = torch.ones(len(X), dtype=torch.bool, device=X.device)
    for _ in range(100):
        idx = active.nonzero()[:, 0]
        if len(idx) == 0:
            break
        xa = X[idx].clone().requires_grad_()
        scores = tm(xa)
        fooled = scores.argmax(1) == target
        active[idx[fooled]] = False
        scores[:, target].sum().backward()
        g = xa.grad
        step = lr * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        keep = ~fooled
        X[idx[keep]] = (xa + step).detach()[keep]
    return X


def w6_fooling(model, tm, quick, notes):
    from parity_tests.test_synthesis_parity import course_fooling

    X, _ = course_images(3 if quick else 25)
    x = beside_references(jaxviz.preprocess(X))
    xt = nchw(x)
    return (lambda: jaxviz.fooling_images(model, x, np.full(len(x), 6), learning_rate=10.0)), {
        "course (one image at a time)": lambda: [course_fooling(tm, xt[i : i + 1], 6, 10.0) for i in range(len(x))],
        "torch batched (active images)": lambda: _batched_fooling(tm, xt, 6, 10.0),
    }, None


def _torch_class_vis(tm, targets, init, jitter, iterations):
    from scipy.ndimage import gaussian_filter1d

    low = torch.tensor(-jaxviz.images.MEAN / jaxviz.images.STD, device=init.device).view(1, 3, 1, 1)
    high = torch.tensor((1 - jaxviz.images.MEAN) / jaxviz.images.STD, device=init.device).view(1, 3, 1, 1)
    img = init.clone()
    for t in range(iterations):
        rolled = torch.stack([torch.roll(img[k], (int(jitter[t, k, 0]), int(jitter[t, k, 1])), (1, 2)) for k in range(len(img))])
        rolled.requires_grad_()
        score = tm(rolled).gather(1, targets.view(-1, 1)).sum() - 1e-3 * (rolled**2).sum()
        score.backward()
        g = rolled.grad
        stepped = rolled.detach() + 25 * g / g.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        img = torch.stack([torch.roll(stepped[k], (-int(jitter[t, k, 0]), -int(jitter[t, k, 1])), (1, 2)) for k in range(len(img))])
        img = torch.maximum(torch.minimum(img, high), low)
        if t % 10 == 0:
            img = to_torch(gaussian_filter1d(gaussian_filter1d(img.cpu().numpy(), 0.5, axis=2), 0.5, axis=3))
    return img


def w7_class_visualization(model, tm, quick, notes):
    targets = np.array([76, 78, 187, 683, 366, 604][: 2 if quick else 6])
    iterations, size = (5, 64) if quick else (100, 224)
    rng = np.random.default_rng(0)
    init = beside_references(rng.normal(size=(len(targets), size, size, 3)).astype(np.float32))
    jitter = rng.integers(0, 17, size=(iterations, len(targets), 2))
    tt, it = to_torch(targets), nchw(init)
    return (lambda: jaxviz.class_visualization(model, targets, init=init, jitter=jitter, num_iterations=iterations)), {
        "course (one image at a time)": lambda: [
            _torch_class_vis(tm, tt[k : k + 1], it[k : k + 1], jitter[:, k : k + 1], iterations) for k in range(len(targets))],
        "torch batched": lambda: _torch_class_vis(tm, tt, it, jitter, iterations),
    }, None


def w8_style_transfer(model, tm, quick, notes):
    from parity_tests.test_style_parity import course_loop

    st = __import__("importlib").import_module("jaxviz.synthesis.style_transfer")
    preset = st.PRESETS["starry_night"]
    size, style_size, iterations = (64, 64, 5) if quick else (192, preset["style_size"], 200)
    load = lambda name, s: jaxviz.preprocess(jaxviz.load_image(SHARED / "data" / "styles" / name), size=s)  # noqa: E731
    content, style = beside_references(load("tubingen.jpg", size)), beside_references(load(preset["style"], style_size))
    content_t, style_t = nchw(content), nchw(style)  # made once, as jaxviz's inputs are
    kw = dict(content_weight=preset["content_weight"], style_weights=preset["style_weights"], tv_weight=preset["tv_weight"])
    return (lambda: jaxviz.style_transfer(model, content, style, num_iterations=iterations, **kw)), {
        "course loop (torch eager)": lambda: course_loop(tm, content_t, style_t, cw=kw["content_weight"],
                                                         sw=kw["style_weights"], tw=kw["tv_weight"],
                                                         num_iterations=iterations),
    }, None


# --------------------------------------------------------------------------- other architectures


def random_pair(arch: str):
    """jaxviz and torchvision models of ``arch`` with the same torchvision-initialised weights."""
    import torchvision

    torch.manual_seed(0)
    tm = torchvision.models.get_model(arch, weights=None).eval()
    return jaxviz.from_torchvision(tm), tm.to(TORCH_DEVICE)


def pretrained_pair(arch: str, path: Path):
    from jaxviz.models import weights as jw

    model = jaxviz.load_model(arch, weights=path)
    import torchvision

    tm = torchvision.models.get_model(arch, weights=None)
    state = jw.params_to_state_dict(jax.tree_util.tree_map(np.asarray, model.params))
    tm.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in state.items()}, strict=False)
    return model, tm.eval().to(TORCH_DEVICE)


def pair(arch: str):
    """SqueezeNet 1.1 with the pretrained weights (``$JAXVIZ_WEIGHTS``), any other
    architecture with torchvision's random initialisation."""
    if arch != "squeezenet1_1":
        return random_pair(arch)
    weights = os.environ.get("JAXVIZ_WEIGHTS") or SHARED / "weights" / "squeezenet1_1_tv_fp16.npz"
    return pretrained_pair(arch, Path(weights))


def _targets_and_images(n):
    X, y = course_images(n)
    x = beside_references(jaxviz.preprocess(X))
    return x, y, nchw(x), to_torch(y)


def w9_resnet50_saliency(_model, _tm, quick, notes):
    from captum.attr import Saliency

    model, tm = random_pair("resnet50")
    x, y, xt, yt = _targets_and_images(2 if quick else 16)

    def torch_batched(network):
        def run():
            v = xt.clone().requires_grad_()
            network(v).gather(1, yt.view(-1, 1)).sum().backward()
            return v.grad
        return run

    refs = {"torch batched": torch_batched(tm),
            "Captum Saliency": lambda: Saliency(tm).attribute(xt.clone().requires_grad_(), target=yt)}
    compiled = torch_compiled(tm, notes, quick)
    if compiled is not None:
        refs["torch.compile batched"] = torch_batched(compiled)
    flops = per_image_flops(lambda m, v, t: jaxviz.saliency(m, v, t), model, x, y)
    return (lambda: jaxviz.saliency(model, x, y)), refs, flops


def guided_copy(tm):
    """A copy of ``tm`` whose ``nn.ReLU`` modules are guided ReLUs (what Captum's hooks reach)."""
    from parity_tests import helpers

    relu = helpers.guided_activation("relu")  # stateless: one module (one autograd Function) for all
    return helpers.modules_replaced(tm, lambda m: relu if isinstance(m, torch.nn.ReLU) else None)


def resnet_guided_gradcam(body, head, guided):
    """Captum ``GuidedGradCam`` at a ResNet's ``layer4``, batched and hook-free: ``body``
    (the network up to ``layer4``), ``head`` (pool and ``fc``) and ``guided``
    (:func:`guided_copy` of the whole network), each eager or ``torch.compile``'d."""

    def run(xt, yt):
        activations = body(xt)
        score = head(activations).gather(1, yt.view(-1, 1)).sum()
        (grads,) = torch.autograd.grad(score, activations)
        cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1, keepdim=True))
        cam = torch.nn.functional.interpolate(cam.detach(), size=xt.shape[2:], mode="nearest")
        v = xt.clone().requires_grad_()
        guided(v).gather(1, yt.view(-1, 1)).sum().backward()
        return v.grad * cam

    return run


def resnet_parts(tm):
    """(the network up to ``layer4``, its pool and ``fc``) of a torchvision ResNet."""
    body = torch.nn.Sequential(tm.conv1, tm.bn1, tm.relu, tm.maxpool, tm.layer1, tm.layer2, tm.layer3, tm.layer4)
    return body, lambda a: tm.fc(torch.flatten(tm.avgpool(a), 1))


def w10_resnet50_guided_gradcam(_model, _tm, quick, notes):
    from captum.attr import GuidedGradCam

    model, tm = random_pair("resnet50")
    x, y, xt, yt = _targets_and_images(2 if quick else 16)
    flops = per_image_flops(lambda m, v, t: jaxviz.guided_gradcam(m, v, t, layer="layer4"), model, x, y)
    body, head = resnet_parts(tm)
    guided = guided_copy(tm)
    refs = {"Captum GuidedGradCam": lambda: GuidedGradCam(tm, tm.layer4).attribute(xt.clone().requires_grad_(),
                                                                                      target=yt),
            "torch batched (hook-free)": lambda: resnet_guided_gradcam(body, head, guided)(xt, yt)}
    compiled_guided = torch_compiled(guided, notes, quick)
    if compiled_guided is not None:  # torch.compile works here: compile the other parts too
        parts = (torch.compile(body), torch.compile(head), compiled_guided)
        refs["torch.compile batched (hook-free)"] = lambda: resnet_guided_gradcam(*parts)(xt, yt)
    return (lambda: jaxviz.guided_gradcam(model, x, y, layer="layer4")), refs, flops


def w11_mobilenet_v2_integrated_gradients(_model, _tm, quick, notes):
    from captum.attr import IntegratedGradients

    model, tm = pretrained_pair("mobilenet_v2", SHARED / "weights" / "mobilenet_v2_tv_qnnpack_fp16.npz")
    n, steps = (1, 4) if quick else (4, 50)
    x, y, xt, yt = _targets_and_images(n)
    ig = IntegratedGradients(tm)
    # Captum's internal_batch_size swept: every setting is a reference, the best one counts
    refs = {f"Captum IG internal_batch_size {b}": (lambda b=b: ig.attribute(xt, target=yt, n_steps=steps,
                                                                             internal_batch_size=b))
            for b in ((4,) if quick else (2, 5, 10, 25, 50, 100, 200))}
    compiled = torch_compiled(tm, notes, quick)
    if compiled is not None:  # Captum's IG is PyTorch's batched eager IG; here on the compiled network
        compiled_ig = IntegratedGradients(compiled)
        refs.update({f"Captum IG on torch.compile, internal_batch_size {b}":
                     (lambda b=b: compiled_ig.attribute(xt, target=yt, n_steps=steps, internal_batch_size=b))
                     for b in (10, 25)})
    flops = per_image_flops(lambda m, v, t: jaxviz.integrated_gradients(m, v, t, n_steps=steps), model, x, y)
    return (lambda: jaxviz.integrated_gradients(model, x, y, n_steps=steps)), refs, flops


def w12_vgg16_forward(_model, _tm, quick, notes):
    model, tm = random_pair("vgg16")
    n = 4 if quick else 64
    x = beside_references(jaxviz.preprocess(val_1300(n)))

    def eager(batch, network=tm):
        def run():
            with torch.no_grad():
                return [network(nchw(x[i : i + batch])) for i in range(0, n, batch)]
        return run

    refs = {f"torch eager (batch {b})": eager(b) for b in ((4,) if quick else (1, 2, 4, 8, 16, 64))}
    compiled = torch_compiled(tm, notes, quick)
    if compiled is not None:  # not swept (a sweep's first call would time the compilation): two batches
        refs.update({f"torch.compile (batch {b})": eager(b, compiled) for b in (4, 16)})
    flops = flops_of(lambda m, v: m.apply(m.params, v), model, x[:1]) * n
    return (lambda: model(x)), refs, flops


# --------------------------------------------------------------------------- pytorch-grad-cam's CAMs


def _cam_workload(arch, cam_name, function, layer, n, *, batch_sizes=(), **options):
    """jaxviz's CAM (the package's output convention) beside pytorch-grad-cam's class on
    ``n`` course images at 224; ``batch_sizes``: the package's ScoreCAM batch sizes swept."""
    import pytorch_grad_cam
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, tm = pair(arch)
    x, y, xt, _ = _targets_and_images(n)
    targets = [ClassifierOutputTarget(int(t)) for t in y]
    cam_class = getattr(pytorch_grad_cam, cam_name)

    def package(batch_size=None):
        def run():
            cam = cam_class(tm, [tm.get_submodule(layer)])
            if batch_size:
                cam.batch_size = batch_size
            try:
                return cam(xt, targets)
            finally:
                cam.activations_and_grads.release()
        return run

    refs = ({f"grad-cam {cam_name} batch_size {b}": package(b) for b in batch_sizes} if batch_sizes
            else {f"grad-cam {cam_name}": package()})
    return (lambda: function(model, x, y, layer=layer, resolution="input", **options)), refs, None


def w13_scorecam(_model, _tm, quick, notes):
    notes.append("W13: ScoreCAM on ResNet-50's layer4 is 2048 forward passes per image (about 7 minutes per "
                 "run for each side here), so the benchmark takes SqueezeNet's last Fire block (512 channels).")
    return _cam_workload("squeezenet1_1", "ScoreCAM", jaxviz.scorecam, "features.12", 1 if quick else 8,
                         batch_sizes=(16,) if quick else (4, 16, 64, 256))


def w72_ablationcam(_model, _tm, quick, notes):
    return _cam_workload("squeezenet1_1", "AblationCAM", jaxviz.ablationcam, "features.12", 1 if quick else 8,
                         batch_sizes=(16,) if quick else (4, 8, 16, 32, 64, 128))


def w73_ablationcam_resnet50(_model, _tm, quick, notes):
    notes.append("W73: AblationCAM at ResNet-50's layer4 is 2048 ablated forward passes per image in the package "
                 "(about 2 minutes per image here), so 2 images, not #17's 8.")
    return _cam_workload("resnet50", "AblationCAM", jaxviz.ablationcam, "layer4", 1 if quick else 2,
                         batch_sizes=(32,) if quick else (8, 32, 128))


def w14_gradcam_plus_plus(_model, _tm, quick, notes):
    return _cam_workload("resnet50", "GradCAMPlusPlus", jaxviz.gradcam_plus_plus, "layer4", 2 if quick else 8)


def w15_layercam(_model, _tm, quick, notes):
    return _cam_workload("squeezenet1_1", "LayerCAM", jaxviz.layercam, "features.12", 2 if quick else 8)


def w16_eigencam(_model, _tm, quick, notes):
    return _cam_workload("resnet50", "EigenCAM", jaxviz.eigencam, "layer4", 2 if quick else 8)


# --------------------------------------------------------------------------- Captum's DeepLift and GradientShap


def _image_batches(function, xt, yt, batch):
    """``function`` over the images ``batch`` at a time (a reference's batch size, swept)."""
    return lambda: [function(xt[i:i + batch], yt[i:i + batch]) for i in range(0, len(xt), batch)]


def _deeplift_workload(arch, n, quick, notes):
    from captum.attr import DeepLift

    from parity_tests.test_captum_methods_parity import _deeplift_model

    model, tm = pair(arch)
    x, y, xt, yt = _targets_and_images(n)
    hook_free = _deeplift_model(tm)

    def torch_deeplift(v, t):  # the parity tests' hook-free DeepLift, the model rewritten once
        both = torch.cat([v, torch.zeros_like(v)]).requires_grad_()
        hook_free(both).gather(1, torch.cat([t, t])[:, None]).sum().backward()
        return v * both.grad[: len(v)]

    batches = (n,) if quick else (1, 2, 4, 8, 16)
    refs = {f"hook-free torch DeepLift, batch {b}": _image_batches(torch_deeplift, xt, yt, b) for b in batches}
    if arch != "resnet18":  # Captum's hooks raise on ResNet's reused relu modules
        captum = lambda v, t: DeepLift(tm).attribute(v.clone().requires_grad_(), target=t)  # noqa: E731
        refs.update({f"Captum DeepLift, batch {b}": _image_batches(captum, xt, yt, b) for b in batches})
    return (lambda: jaxviz.deeplift(model, x, y)), refs, None


def w17_deeplift_squeezenet(_model, _tm, quick, notes):
    return _deeplift_workload("squeezenet1_1", 2 if quick else 16, quick, notes)


def w18_deeplift_resnet18(_model, _tm, quick, notes):
    notes.append("W18: Captum's DeepLift raises on ResNet's reused relu modules; the reference is the parity "
                 "tests' hook-free PyTorch DeepLift (autograd.Function ReLUs and max-pools in place of the modules).")
    return _deeplift_workload("resnet18", 2 if quick else 16, quick, notes)


def _two_baselines(x):
    """GradientShap's baselines here: the zero image and the image of 0.5."""
    return np.stack([np.zeros(x.shape[1:], np.float32), np.full(x.shape[1:], 0.5, np.float32)])


def w19_gradient_shap(_model, _tm, quick, notes):
    from captum.attr import GradientShap

    model, tm = pair("squeezenet1_1")
    n, samples = (2, 2) if quick else (8, 20)
    x, y, xt, yt = _targets_and_images(n)
    b = _two_baselines(x)
    bt = nchw(b)
    shap = GradientShap(tm)
    captum = lambda v, t: shap.attribute(v, baselines=bt, n_samples=samples, stdevs=0.1, target=t)  # noqa: E731
    # Captum evaluates all n_samples x images at once: its batch is the number of images per call
    refs = {f"Captum GradientShap, {k} images per call": _image_batches(captum, xt, yt, k)
            for k in ((n,) if quick else (1, 2, 4, 8))}
    key = jax.random.key(0)
    return (lambda: jaxviz.gradient_shap(model, x, y, baselines=b, n_samples=samples, stdevs=0.1, key=key)), refs, None


def _slic_workload(n, quick, notes):
    """Pretrained SqueezeNet, ``n`` course images, their SLIC masks (50 segments)."""
    model, tm = pair("squeezenet1_1")
    X, _ = course_images(n)
    x, y, xt, yt = _targets_and_images(n)
    mask = jaxviz.masks.segments(X, method="slic", n_segments=50)
    notes.append(f"SLIC masks (n_segments=50) of the course images: {', '.join(str(m.max() + 1) for m in mask)} "
                 "segments.")
    return model, tm, x, y, xt, yt, mask, to_torch(mask.astype(np.int64))[:, None]


def w20_feature_ablation(_model, _tm, quick, notes):
    from captum.attr import FeatureAblation

    model, tm, x, y, xt, yt, mask, mask_t = _slic_workload(1 if quick else 4, quick, notes)
    ablation = FeatureAblation(tm)
    refs = {f"Captum FeatureAblation, perturbations_per_eval {k}":
            (lambda k=k: ablation.attribute(xt, target=yt, feature_mask=mask_t, perturbations_per_eval=k))
            for k in ((4,) if quick else (1, 4, 16, 64))}
    return (lambda: jaxviz.feature_ablation(model, x, y, feature_mask=mask)), refs, None


def _coalition_workload(captum_class, function, quick, notes):
    model, tm, x, y, xt, yt, mask, mask_t = _slic_workload(1 if quick else 4, quick, notes)
    n_samples = 20 if quick else 200
    explainer = captum_class(tm)
    refs = {f"Captum {captum_class.__name__}, perturbations_per_eval {k}":
            (lambda k=k: explainer.attribute(xt, target=yt, feature_mask=mask_t, n_samples=n_samples,
                                             perturbations_per_eval=k))
            for k in ((4,) if quick else (1, 8, 32, 100))}
    key = jax.random.key(0)
    return (lambda: function(model, x, y, feature_mask=mask, n_samples=n_samples, key=key)), refs, None


def w21_kernel_shap(_model, _tm, quick, notes):
    from captum.attr import KernelShap

    return _coalition_workload(KernelShap, jaxviz.kernel_shap, quick, notes)


def w22_lime(_model, _tm, quick, notes):
    from captum.attr import Lime

    return _coalition_workload(Lime, jaxviz.lime, quick, notes)


# --------------------------------------------------------------------------- LRP against zennit


def _out_of_place_relus(tm):
    """``tm``'s ReLU modules made out-of-place (the LRP hooks of zennit and Captum need it)."""
    for module in tm.modules():
        if isinstance(module, torch.nn.ReLU):
            module.inplace = False


def _lrp_workload(arch, n, quick, notes, composite="epsilon_plus", batches=(1, 2, 4, 8, 16)):
    from zennit import composites
    from zennit.attribution import Gradient
    from zennit.torchvision import ResNetCanonizer

    theirs = {"epsilon_plus": "EpsilonPlus", "epsilon_plus_flat": "EpsilonPlusFlat"}[composite]
    zennit_composite = getattr(composites, theirs)

    model, tm = pair(arch)
    _out_of_place_relus(tm)  # zennit's hooks need them
    x, y, xt, yt = _targets_and_images(n)
    canonizers = [ResNetCanonizer()] if arch.startswith("resnet") else []

    def zennit_lrp(v, t):
        with Gradient(tm, zennit_composite(canonizers=canonizers)) as attributor:
            return attributor(v.clone().requires_grad_(), torch.eye(1000, device=TORCH_DEVICE)[t])[1]

    def zennit_registered(batch):  # the composite registered once (on its own copy), outside the timing
        attributor = Gradient(copy.deepcopy(tm), zennit_composite(canonizers=canonizers))
        attributor.__enter__()
        return _image_batches(lambda v, t: attributor(v.clone().requires_grad_(), torch.eye(1000, device=TORCH_DEVICE)[t])[1], xt, yt, batch)

    batches = (n,) if quick else batches
    refs = {f"zennit {theirs}, batch {b}": _image_batches(zennit_lrp, xt, yt, b) for b in batches}
    if not quick:
        note = ("W23/W24/W56: zennit registers its hooks (and canonizers) per call in the 'batch' rows; the "
                "'registered once' row keeps one registration for every call.")
        if note not in notes:
            notes.append(note)
        refs[f"zennit {theirs} registered once, batch {n}"] = zennit_registered(n)
    return (lambda: jaxviz.lrp(model, x, y, composite=composite)), refs, None


def w23_lrp_squeezenet(_model, _tm, quick, notes):
    return _lrp_workload("squeezenet1_1", 2 if quick else 16, quick, notes)


def w24_lrp_resnet18(_model, _tm, quick, notes):
    return _lrp_workload("resnet18", 2 if quick else 16, quick, notes)


def w56_lrp_vgg16(_model, _tm, quick, notes):
    return _lrp_workload("vgg16", 1 if quick else 8, quick, notes, composite="epsilon_plus_flat", batches=(1, 2, 4, 8))


# --------------------------------------------------------------------------- Captum's layer and neuron methods (#16)

NEURON_LAYER = "features.7"  # SqueezeNet 1.1's middle Fire block (the parity tests' neuron layer)


def _layer_case(n, quick):
    """Pretrained SqueezeNet and its torch twin, ``n`` course images (1 when ``quick``), and
    the Captum module of :data:`NEURON_LAYER`."""
    model, tm = pair("squeezenet1_1")
    x, y, xt, yt = _targets_and_images(1 if quick else n)
    return model, tm, x, y, xt, yt, tm.get_submodule(NEURON_LAYER)


def _strongest_unit(model, x):
    """(channel, row, column) of the first image's largest :data:`NEURON_LAYER` output: the
    neuron every image is asked about (Captum's ``neuron_selector``)."""
    out = np.asarray(model.apply(model.params, x[:1], capture=(NEURON_LAYER,))[NEURON_LAYER][0])
    row, column, channel = np.unravel_index(out.argmax(), out.shape)
    return int(channel), int(row), int(column)


def _per_call_sweep(call, xt, yt, n, quick, counts=(4, 8, 16)) -> Sweep:
    """Captum's ``call(images, targets)`` over the images ``k`` per call."""
    return Sweep({f"{k} images per call": _image_batches(call, xt, yt, k)
                  for k in ((len(xt),) if quick else [k for k in counts if k <= n])})


def _option_sweep(call, option, settings, quick) -> Sweep:
    """Captum's ``call(**{option: s})`` for each setting."""
    return Sweep({f"{option} {s}": (lambda s=s: call(**{option: s})) for s in (settings[:1] if quick else settings)})


PATH_BATCHES = (2, 5, 10, 25, 50, 100, 200)  # Captum's internal_batch_size settings for 50 steps of 4 images
# the neuron path methods: Captum was fastest at the smallest of PATH_BATCHES, so down to one step
NEURON_PATH_BATCHES = (1, 2, 4, 10, 25, 50)


def _path_layer_workload(_model, _tm, quick, notes, *, method: str, captum_name: str, n_steps: int = 50):
    """jaxviz's ``method`` (a name) beside Captum's ``captum_name`` along a 50-step path."""
    import captum.attr as ca

    model, tm, x, y, xt, yt, module = _layer_case(4, quick)
    n_steps = 4 if quick else n_steps
    captum = getattr(ca, captum_name)(tm, module)
    run = functools.partial(captum.attribute, xt, target=yt, n_steps=n_steps)
    return (lambda: getattr(jaxviz, method)(model, x, y, layer=NEURON_LAYER, n_steps=n_steps)), {
        f"Captum {captum_name}": _option_sweep(run, "internal_batch_size", PATH_BATCHES, quick)}, None


def w57_layer_gradient_x_activation(_model, _tm, quick, notes):
    from captum.attr import LayerGradientXActivation

    model, tm, x, y, xt, yt, module = _layer_case(16, quick)
    captum = LayerGradientXActivation(tm, module)
    return (lambda: jaxviz.layer_gradient_x_activation(model, x, y, layer=NEURON_LAYER)), {
        "Captum LayerGradientXActivation": _per_call_sweep(lambda v, t: captum.attribute(v, target=t), xt, yt, 16,
                                                           quick)}, None


def w61_layer_gradient_shap(_model, _tm, quick, notes):
    from captum.attr import LayerGradientShap

    model, tm, x, y, xt, yt, module = _layer_case(8, quick)
    samples = 2 if quick else 20
    b = _two_baselines(x)
    captum = LayerGradientShap(tm, module)
    run = lambda v, t: captum.attribute(v, baselines=nchw(b), n_samples=samples, stdevs=0.1, target=t)  # noqa: E731
    key = jax.random.key(0)
    return (lambda: jaxviz.layer_gradient_shap(model, x, y, layer=NEURON_LAYER, baselines=b, n_samples=samples,
                                               stdevs=0.1, key=key)), {
        "Captum LayerGradientShap": _per_call_sweep(run, xt, yt, 8, quick, (1, 2, 4, 8))}, None


def w62_layer_deeplift(_model, _tm, quick, notes):
    from captum.attr import LayerDeepLift

    model, tm, x, y, xt, yt, module = _layer_case(16, quick)
    captum = LayerDeepLift(tm, module)
    return (lambda: jaxviz.layer_deeplift(model, x, y, layer=NEURON_LAYER)), {
        "Captum LayerDeepLift": _per_call_sweep(lambda v, t: captum.attribute(v.clone().requires_grad_(), target=t),
                                                xt, yt, 16, quick)}, None


def w63_layer_feature_ablation(_model, _tm, quick, notes):
    from captum.attr import LayerFeatureAblation

    model, tm, x, y, xt, yt, module = _layer_case(4, quick)
    channels = model.apply(model.params, x[:1], capture=(NEURON_LAYER,))[NEURON_LAYER].shape[-1]
    mask = (np.arange(channels) % 32).reshape(1, channels, 1, 1)
    notes.append(f"W63: {NEURON_LAYER}'s {channels} channels in 32 groups (channel mod 32), each ablated to 0.")
    notes.append("W63: Captum's LayerFeatureAblation rejects a per-image target with perturbations_per_eval > 1 "
                 "(its target is not expanded with the perturbed batch), so those settings run one image per call.")
    captum = LayerFeatureAblation(tm, module)
    layer_mask = torch.from_numpy(mask)

    def one_at_a_time(per_eval):
        return lambda: [captum.attribute(xt[i:i + 1], target=int(yt[i]), layer_mask=layer_mask,
                                         perturbations_per_eval=per_eval) for i in range(len(xt))]

    sweep = Sweep({"all images per call, perturbations_per_eval 1": lambda: captum.attribute(
        xt, target=yt, layer_mask=layer_mask)})
    if not quick:
        sweep.update({f"1 image per call, perturbations_per_eval {p}": one_at_a_time(p) for p in (1, 4, 16, 32)})
    return (lambda: jaxviz.layer_feature_ablation(model, x, y, layer=NEURON_LAYER, layer_mask=mask)), {
        "Captum LayerFeatureAblation": sweep}, None


def w64_layer_lrp(_model, _tm, quick, notes):
    from captum.attr import LayerLRP

    model, tm, x, y, xt, yt, _ = _layer_case(8, quick)
    layer = f"{NEURON_LAYER}.expand3x3"  # Captum's LayerLRP needs a module with a rule
    notes.append(f"W64: at {layer}, a convolution (Captum's LayerLRP reads the rule of the module it is given).")
    _out_of_place_relus(tm)  # (a fresh model: pair() builds one per call)
    captum = LayerLRP(tm, tm.get_submodule(layer))
    return (lambda: jaxviz.layer_lrp(model, x, y, layer=layer, composite="captum")), {
        "Captum LayerLRP": _per_call_sweep(lambda v, t: captum.attribute(v.clone().requires_grad_(), target=t),
                                           xt, yt, 8, quick, (2, 4, 8))}, None


def _neuron_workload(_model, _tm, quick, notes, *, method: str, captum_name: str, n: int = 16):
    """jaxviz's neuron ``method`` (a name, no options) beside Captum's ``captum_name``, ``n``
    images, Captum's images per call swept."""
    import captum.attr as ca

    model, tm, x, y, xt, yt, module = _layer_case(n, quick)
    neuron = _strongest_unit(model, x)
    captum = getattr(ca, captum_name)(tm, module)
    run = lambda v, t: captum.attribute(v.clone().requires_grad_(), neuron_selector=neuron)  # noqa: E731
    return (lambda: getattr(jaxviz, method)(model, x, neuron, layer=NEURON_LAYER)), {
        f"Captum {captum_name}": _per_call_sweep(run, xt, yt, n, quick, (1, 2, 4, 8, 16))}, None


def w69_neuron_integrated_gradients(_model, _tm, quick, notes):
    import captum.attr as ca

    model, tm, x, y, xt, yt, module = _layer_case(4, quick)
    n_steps, neuron = (4 if quick else 50), _strongest_unit(model, x)
    run = functools.partial(ca.NeuronIntegratedGradients(tm, module).attribute, xt, neuron_selector=neuron,
                            n_steps=n_steps)
    return (lambda: jaxviz.neuron_integrated_gradients(model, x, neuron, layer=NEURON_LAYER, n_steps=n_steps)), {
        "Captum NeuronIntegratedGradients": _option_sweep(run, "internal_batch_size", NEURON_PATH_BATCHES, quick)}, None


def w70_neuron_conductance(_model, _tm, quick, notes):
    import captum.attr as ca

    model, tm, x, y, xt, yt, module = _layer_case(4, quick)
    n_steps, neuron = (4 if quick else 50), _strongest_unit(model, x)
    run = functools.partial(ca.NeuronConductance(tm, module).attribute, xt, neuron_selector=neuron, target=yt,
                            n_steps=n_steps)
    return (lambda: jaxviz.neuron_conductance(model, x, y, layer=NEURON_LAYER, neuron=neuron, n_steps=n_steps)), {
        "Captum NeuronConductance": _option_sweep(run, "internal_batch_size", NEURON_PATH_BATCHES, quick)}, None


def w71_neuron_gradient_shap(_model, _tm, quick, notes):
    from captum.attr import NeuronGradientShap

    model, tm, x, y, xt, yt, module = _layer_case(8, quick)
    samples, neuron = (2 if quick else 20), _strongest_unit(model, x)
    b = _two_baselines(x)
    captum = NeuronGradientShap(tm, module)
    run = lambda v, t: captum.attribute(v, neuron_selector=neuron, baselines=nchw(b), n_samples=samples,  # noqa: E731
                                        stdevs=0.1)
    key = jax.random.key(0)
    return (lambda: jaxviz.neuron_gradient_shap(model, x, neuron, layer=NEURON_LAYER, baselines=b, n_samples=samples,
                                                stdevs=0.1, key=key)), {
        "Captum NeuronGradientShap": _per_call_sweep(run, xt, yt, 8, quick, (1, 2, 4, 8))}, None


# --------------------------------------------------------------------------- metrics against their references


def _rise_batched(tm, xt, yt, maps, mode, step, substrate_fn, batch):
    """RISE's batched ``CausalMetric.evaluate``: every step moves each image's next
    ``step`` pixels, then scores all images ``batch`` at a time."""
    n, c, h, w = xt.shape
    hw = h * w
    n_steps = (hw + step - 1) // step
    order = to_torch(np.flip(np.argsort(maps.reshape(n, hw), axis=1, kind="stable"), axis=1))
    finish = substrate_fn(xt) if mode == "del" else xt.clone()
    start = (xt.clone() if mode == "del" else substrate_fn(xt)).reshape(n, c, hw)
    finish = finish.reshape(n, c, hw)
    scores = torch.empty(n_steps + 1, n, device=xt.device)
    rows = torch.arange(n, device=xt.device)[:, None]
    with torch.no_grad():
        for i in range(n_steps + 1):
            for j in range(0, n, batch):
                probabilities = torch.softmax(tm(start[j:j + batch].reshape(-1, c, h, w)), dim=1)
                scores[i, j:j + batch] = probabilities[torch.arange(len(probabilities), device=xt.device),
                                                       yt[j:j + batch]]
            if i < n_steps:
                coords = order[:, step * i:step * (i + 1)]
                start[rows, :, coords] = finish[rows, :, coords]
    return scores


def w25_deletion_insertion(_model, _tm, quick, notes, arch="squeezenet1_1", images=8):
    import torch.nn.functional as F

    from jaxviz.metrics import _common

    model, tm = pair(arch)
    n = 2 if quick else images
    x, y, xt, yt = _targets_and_images(n)
    maps = np.asarray(jaxviz.saliency(model, x, y)).sum(-1)
    maps_beside = beside_references(maps)
    kernel = np.float32(_common.rise_blur_kernel())
    weight = np.zeros((3, 3) + kernel.shape, np.float32)
    for i in range(3):
        weight[i, i] = kernel
    weight = to_torch(weight)
    blur = lambda v: F.conv2d(v, weight, padding=kernel.shape[0] // 2)  # noqa: E731
    step = 224

    def ours():
        return (jaxviz.metrics.deletion(model, x, y, maps_beside, step=step).auc,
                jaxviz.metrics.insertion(model, x, y, maps_beside, step=step).auc)

    def rise(batch):
        return lambda: (_rise_batched(tm, xt, yt, maps, "del", step, torch.zeros_like, batch),
                        _rise_batched(tm, xt, yt, maps, "ins", step, blur, batch))

    notes.append("W25: the reference is RISE's batched CausalMetric.evaluate ported to this harness (each step "
                 "moves every image's next pixels, then scores the images a batch at a time); 225 states per image "
                 "for deletion and for insertion.")
    batches = (n,) if quick else sorted({2, n // 4, n // 2, n})
    return ours, {f"RISE CausalMetric, batch {b}": rise(b) for b in batches}, None


def w26_infidelity(_model, _tm, quick, notes, arch="squeezenet1_1", images=8):
    from captum.metrics import infidelity

    model, tm = pair(arch)
    n, samples = (2, 4) if quick else (images, 50)
    x, y, xt, yt = _targets_and_images(n)
    a = beside_references(np.asarray(jaxviz.saliency(model, x, y, absolute=False)))
    at = nchw(a)

    def perturb(inputs):
        noise = 0.003 * torch.randn_like(inputs)
        return noise, inputs - noise

    key = jax.random.key(0)
    refs = {f"Captum infidelity, max_examples_per_batch {m}": (
        lambda m=m: infidelity(tm, perturb, xt, at, target=yt, n_perturb_samples=samples, max_examples_per_batch=m))
        for m in ((None,) if quick else (None, n, 3 * n, 50, 100))}
    return (lambda: jaxviz.metrics.infidelity(model, x, y, a, key=key, n_perturb_samples=samples)), refs, None


def w27_sensitivity_max(_model, _tm, quick, notes, arch="squeezenet1_1", images=8):
    from captum.attr import Saliency
    from captum.metrics import sensitivity_max

    model, tm = pair(arch)
    n, samples = (2, 2) if quick else (images, 20)
    x, y, xt, yt = _targets_and_images(n)
    explain = Saliency(tm).attribute
    key = jax.random.key(0)
    refs = {f"Captum sensitivity_max, max_examples_per_batch {m}": (
        lambda m=m: sensitivity_max(explain, xt.clone().requires_grad_(), target=yt, n_perturb_samples=samples,
                                    max_examples_per_batch=m))
        for m in ((None,) if quick else (None, *sorted({n, 16}), 40))}
    return (lambda: jaxviz.metrics.sensitivity_max(model, x, y, jaxviz.saliency, key=key,
                                                   n_perturb_samples=samples)), refs, None


def _quantus_explainer(captum_name: str):
    """An ``explain_func`` for Quantus: Captum's method on Quantus's numpy batch, on the
    device Quantus passes (its ``device`` argument), summed over channels, back as numpy."""
    from captum import attr

    def explain(model, inputs, targets, device="cpu", **kwargs):
        inputs = torch.from_numpy(np.asarray(inputs, np.float32)).to(device).requires_grad_()
        targets = torch.from_numpy(np.asarray(targets)).to(device)
        return getattr(attr, captum_name)(model).attribute(inputs, target=targets).sum(1).detach().cpu().numpy()
    return explain


def w28_mprt(_model, _tm, quick, notes, arch="squeezenet1_1", images=8, method="saliency"):
    import quantus

    model, tm = pair(arch)
    n = 2 if quick else images
    x, y, xt, yt = _targets_and_images(n)
    key = jax.random.key(0)
    metric = quantus.MPRT(disable_warnings=True)
    explain, reference = {"saliency": (jaxviz.saliency, _quantus_explainer("Saliency")),
                          "guided_backprop": (jaxviz.guided_backprop, _quantus_explainer("GuidedBackprop"))}[method]
    x_batch, y_batch = xt.cpu().numpy(), yt.cpu().numpy()  # Quantus takes numpy and moves batches itself
    refs = {f"Quantus MPRT (cascading, every layer), batch_size {b}": (
        lambda b=b: metric(model=tm, x_batch=x_batch, y_batch=y_batch, a_batch=None, explain_func=reference,
                           channel_first=True, device=str(TORCH_DEVICE), batch_size=b))
        for b in ((n,) if quick else sorted({2, n // 4, n // 2, n}))}
    return (lambda: jaxviz.metrics.mprt(model, x, y, explain, key=key)), refs, None


def w29_faithfulness_correlation(_model, _tm, quick, notes, arch="squeezenet1_1", images=8):
    import quantus

    model, tm = pair(arch)
    n, runs = (2, 4) if quick else (images, 100)
    x, y, xt, yt = _targets_and_images(n)
    a = beside_references(np.asarray(jaxviz.saliency(model, x, y, absolute=False)))
    metric = quantus.FaithfulnessCorrelation(nr_runs=runs, subset_size=224, return_aggregate=False,
                                             disable_warnings=True)
    # Quantus takes numpy and moves batches to its device itself
    x_batch, y_batch, a_batch = xt.cpu().numpy(), yt.cpu().numpy(), nchw(a).cpu().numpy()
    refs = {f"Quantus FaithfulnessCorrelation, batch_size {b}": (
        lambda b=b: metric(model=tm, x_batch=x_batch, y_batch=y_batch, a_batch=a_batch,
                           channel_first=True, device=str(TORCH_DEVICE), batch_size=b))
        for b in ((n,) if quick else sorted({2, n // 4, n // 2, n}))}
    key = jax.random.key(0)
    return (lambda: jaxviz.metrics.faithfulness_correlation(model, x, y, a, key=key, n_runs=runs)), refs, None


def w30_road(_model, _tm, quick, notes, arch="squeezenet1_1", images=8):
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model, tm = pair(arch)
    n = 2 if quick else images
    x, y, xt, yt = _targets_and_images(n)
    maps = np.asarray(jaxviz.gradcam(model, x, y, resolution="input"), np.float32)
    percentiles = (10, 30, 50, 70, 90)
    targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in y]
    metric = ROADCombined(percentiles=list(percentiles))
    key = jax.random.key(0)
    notes.append("W30: pytorch-grad-cam's ROADCombined imputes one image and percentile at a time (a sparse LU "
                 "solve in scipy) and scores all images of a percentile in one forward pass; it has no batch "
                 "setting to sweep.  jaxviz solves the same systems by conjugate gradients, preconditioned by a "
                 "multigrid V-cycle, inside one compiled program (one image at a time, one percentile per "
                 "evaluation).")
    return (lambda: jaxviz.metrics.road(model, x, y, maps, percentiles=percentiles, key=key).score,
            {"pytorch-grad-cam ROADCombined": lambda: metric(xt, maps, targets, tm)}, None)


def _rise_paper(tm, xt, yt, masks, p1, gpu_batch):
    """RISE's ``forward`` (the paper's code) for each image: all masked copies scored
    ``gpu_batch`` at a time, the target's row of p^T·masks / (N·p1)."""
    n = masks.shape[0]
    out = []
    with torch.no_grad():
        for img, t in zip(xt, yt):
            stack = masks * img[None]
            p = torch.cat([torch.softmax(tm(stack[i:i + gpu_batch]), dim=1) for i in range(0, n, gpu_batch)])
            out.append((p[:, t] @ masks.reshape(n, -1)).reshape(masks.shape[2:]) / n / p1)
    return torch.stack(out)


def w31_rise(_model, _tm, quick, notes):
    from jaxviz.attribution.rise import rise_masks

    model, tm = pair("squeezenet1_1")
    n, n_masks = (1, 50) if quick else (4, 1000)
    x, y, xt, yt = _targets_and_images(n)
    key = jax.random.key(0)
    masks = to_torch(rise_masks(key, n_masks, 224, 224))[:, None]
    notes.append("W31: the reference is the RISE paper's PyTorch module (its forward, one image at a time, the "
                 "masks made beforehand); jaxviz makes each mask from its key inside the compiled loop.")
    refs = {"RISE (paper's code)": Sweep({f"gpu_batch {b}": (lambda b=b: _rise_paper(tm, xt, yt, masks, 0.5, b))
                                          for b in ((n_masks,) if quick else (2, 5, 10, 25, 100))})}
    return (lambda: jaxviz.rise(model, x, y, n_masks=n_masks, key=key)), refs, None


def _fullgrad_workload(arch, n):
    """jaxviz's FullGrad beside pytorch-grad-cam's, its images given ``b`` at a time (the
    package takes a whole batch per call; smaller calls are swept)."""
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, tm = pair(arch)
    x, y, xt, _ = _targets_and_images(n)
    targets = [ClassifierOutputTarget(int(t)) for t in y]

    def package(b):
        def run():
            with contextlib.redirect_stdout(io.StringIO()):  # its warning that target_layers is ignored
                cam = FullGrad(tm, [])
            try:
                return np.concatenate([cam(xt[i:i + b], targets[i:i + b]) for i in range(0, n, b)])
            finally:
                cam.activations_and_grads.release()
        return run

    refs = {f"grad-cam FullGrad, {b} images per call": package(b) for b in sorted({1, min(2, n), n})}
    return (lambda: jaxviz.fullgrad(model, x, y)), refs, None


def w32_fullgrad_resnet50(_model, _tm, quick, notes):
    return _fullgrad_workload("resnet50", 2 if quick else 8)


def w33_fullgrad_squeezenet(_model, _tm, quick, notes):
    return _fullgrad_workload("squeezenet1_1", 2 if quick else 8)


def _pair_workload(quick, full, arch="squeezenet1_1"):
    """``arch`` (jaxviz and PyTorch; SqueezeNet pretrained, others random), course images and
    labels, and steps for a PAIR workload: ``full`` = (images, steps), or one image and 10
    steps when ``quick``."""
    model, tm = pair(arch)
    n, steps = (1, 10) if quick else full
    x, y, _, _ = _targets_and_images(n)
    return model, tm, x, y, steps


def _guided_ig_workload(quick, notes, arch, full):
    import saliency.core as pair_saliency

    from parity_tests import pair_reference

    model, tm, x, y, steps = _pair_workload(quick, full, arch)
    notes.append("W34/W35/W37: PAIR saliency explains one image at a time (its API), driven by the PyTorch model "
                 "(float32 input gradients of the target's logit); Guided IG takes one gradient per step.")

    def reference():
        with pair_reference.quantile_interpolation():
            return pair_reference.masks(pair_saliency.GuidedIG(), tm, x, y, dtype=np.float32, x_steps=steps)

    return (lambda: jaxviz.guided_ig(model, x, y, steps=steps)), {"PAIR GuidedIG": reference}, None


def w34_guided_ig(_model, _tm, quick, notes):
    return _guided_ig_workload(quick, notes, "squeezenet1_1", (4, 200))


def w37_guided_ig_resnet50(_model, _tm, quick, notes):
    return _guided_ig_workload(quick, notes, "resnet50", (2, 200))


def w35_blur_ig(_model, _tm, quick, notes):
    import saliency.core as pair_saliency

    from parity_tests import pair_reference

    model, tm, x, y, steps = _pair_workload(quick, (4, 100))

    def reference(batch_size):
        return lambda: pair_reference.masks(pair_saliency.BlurIG(), tm, x, y, dtype=np.float32, steps=steps,
                                            batch_size=batch_size)

    refs = {f"PAIR BlurIG, batch_size {b}": reference(b) for b in ((steps,) if quick else (1, 20, 100))}
    return (lambda: jaxviz.blur_ig(model, x, y, steps=steps)), refs, None


def _xrai_workload(quick, notes, arch, full):
    import saliency.core as pair_saliency

    from parity_tests import pair_reference

    model, tm, x, y, steps = _pair_workload(quick, full, arch)
    notes.append("W36/W38: PAIR's XRAI (IG from the image's minimum and maximum, Felzenszwalb segments, greedy "
                 "ranking), one image at a time, driven by the PyTorch model; jaxviz segments on the host too.")

    def reference(batch_size):
        parameters = pair_saliency.XRAIParameters(steps=steps)
        return lambda: pair_reference.masks(pair_saliency.XRAI(), tm, x, y, dtype=np.float32, batch_size=batch_size,
                                            extra_parameters=parameters)

    refs = {"PAIR XRAI": Sweep({f"batch_size {b}": reference(b) for b in ((steps,) if quick else (2, 5, 10, 25, 100))})}
    return (lambda: jaxviz.xrai(model, x, y, n_steps=steps)), refs, None


def w36_xrai(_model, _tm, quick, notes):
    return _xrai_workload(quick, notes, "squeezenet1_1", (8, 100))


def w38_xrai_resnet50(_model, _tm, quick, notes):
    return _xrai_workload(quick, notes, "resnet50", (2, 100))


def _top_classes(model, n, k, size=224):
    """The first ``n`` course images, each repeated ``k`` times with its ``k`` highest-scoring
    classes (the batch a user sends to explain several classes of one image): x, y and
    their PyTorch tensors."""
    images = jaxviz.preprocess(course_images(n)[0], size=size)
    top = np.argsort(-np.asarray(model(images)), axis=1)[:, :k]
    x, y = np.repeat(np.asarray(images), k, axis=0), top.reshape(-1)
    return x, y, nchw(x), to_torch(y)


def _torch_saliency_shared(tm, x, target, k):
    """Hand-written PyTorch at its best for several targets per image: one forward pass of
    the distinct images, then one backward pass per target from the kept graph."""
    xs = x[::k].clone().requires_grad_()
    scores = tm(xs)
    grads = []
    for j in range(k):
        (g,) = torch.autograd.grad(scores.gather(1, target[j::k].view(-1, 1)).sum(), xs, retain_graph=j < k - 1)
        grads.append(g.abs().amax(dim=1))
    return torch.stack(grads, 1).flatten(0, 1)


def w53_saliency_top5(model, tm, quick, notes):
    from captum.attr import Saliency

    k = 2 if quick else 5
    x, y, xt, yt = _top_classes(model, 2 if quick else 5, k)
    notes.append(f"W53: {len(x) // k} images, each asked for its top {k} classes ({len(x)} requests in one batch); "
                 "jaxviz runs each image's forward pass once (scoring.find_repeats).")
    return (lambda: jaxviz.saliency_map(model, x, y)), {
        "Captum Saliency": thread_sweep(lambda: Saliency(tm).attribute(xt.clone().requires_grad_(), target=yt), quick),
        "torch, one forward, a backward per target": thread_sweep(lambda: _torch_saliency_shared(tm, xt, yt, k), quick),
    }, None


def w54_integrated_gradients_top3(model, tm, quick, notes):
    k, n_steps = (2, 4) if quick else (3, 50)
    x, y, xt, yt = _top_classes(model, 2 if quick else 5, k)
    notes.append(f"W54: {len(x) // k} images × their top {k} classes; jaxviz evaluates each path point once for "
                 "its images' targets.")
    return (lambda: jaxviz.integrated_gradients(model, x, y, n_steps=n_steps)), {
        "Captum IntegratedGradients": captum_ig_sweep(tm, xt, yt, n_steps, (4,) if quick else (5, 10, 15, 30, 75)),
    }, None


def w55_occlusion_top3(model, tm, quick, notes):
    k = 2 if quick else 3
    x, y, xt, yt = _top_classes(model, 2, k, size=64 if quick else 224)
    notes.append(f"W55: 2 images × their top {k} classes; jaxviz occludes each image once for its targets.")
    return (lambda: jaxviz.occlusion(model, x, y, sliding_window_shapes=(16, 16, 3), strides=(16, 16, 3))), {
        "Captum Occlusion": captum_occlusion_sweep(tm, xt, yt, (16, 16, 3), (16, 16, 3),
                                                   (16,) if quick else (1, 2, 4, 16)),
    }, None


WORKLOADS = {
    "W1 forward 1300 images": w1_forward,
    "W2 saliency_map, 25 images": w2_saliency,
    "W3 guided_gradcam, 25 images": w3_guided_gradcam,
    "W4 integrated_gradients n_steps=50, 5 images": w4_integrated_gradients,
    "W5 occlusion 15x15 stride 8, 5 images": w5_occlusion,
    "W6 fooling 25 images to class 6 (lr 10)": w6_fooling,
    "W7 class visualisation 6 targets x 100 it.": w7_class_visualization,
    "W8 style transfer starry_night 200 it.": w8_style_transfer,
    "W9 saliency, ResNet-50, 16 images": w9_resnet50_saliency,
    "W10 guided_gradcam at layer4, ResNet-50, 16 images": w10_resnet50_guided_gradcam,
    "W11 integrated_gradients n_steps=50, MobileNetV2, 4 images": w11_mobilenet_v2_integrated_gradients,
    "W12 forward, VGG-16, 64 images": w12_vgg16_forward,
    "W13 scorecam, SqueezeNet features.12, 8 images": w13_scorecam,
    "W14 gradcam_plus_plus, ResNet-50 layer4, 8 images": w14_gradcam_plus_plus,
    "W15 layercam, SqueezeNet features.12, 8 images": w15_layercam,
    "W16 eigencam, ResNet-50 layer4, 8 images": w16_eigencam,
    "W17 deeplift, SqueezeNet, 16 images": w17_deeplift_squeezenet,
    "W18 deeplift, ResNet-18, 16 images": w18_deeplift_resnet18,
    "W19 gradient_shap n_samples=20, SqueezeNet, 8 images": w19_gradient_shap,
    "W20 feature_ablation, 50 SLIC segments, SqueezeNet, 4 images": w20_feature_ablation,
    "W21 kernel_shap 200 samples, 50 SLIC segments, SqueezeNet, 4 images": w21_kernel_shap,
    "W22 lime 200 samples, 50 SLIC segments, SqueezeNet, 4 images": w22_lime,
    "W23 lrp EpsilonPlus, SqueezeNet, 16 images": w23_lrp_squeezenet,
    "W24 lrp EpsilonPlus with canonizers, ResNet-18, 16 images": w24_lrp_resnet18,
    "W25 deletion + insertion (224 px a step), SqueezeNet, 8 images": w25_deletion_insertion,
    "W26 infidelity 50 samples, SqueezeNet, 8 images": w26_infidelity,
    "W27 sensitivity_max 20 samples (saliency), SqueezeNet, 8 images": w27_sensitivity_max,
    "W28 mprt cascading over 26 layers (saliency), SqueezeNet, 8 images": w28_mprt,
    "W29 faithfulness_correlation 100 runs of 224, SqueezeNet, 8 images": w29_faithfulness_correlation,
    "W30 road combined, 5 percentiles (GradCAM), SqueezeNet, 8 images": w30_road,
    "W31 rise 1000 masks, SqueezeNet, 4 images": w31_rise,
    "W32 fullgrad, ResNet-50, 8 images": w32_fullgrad_resnet50,
    "W33 fullgrad, SqueezeNet, 8 images": w33_fullgrad_squeezenet,
    "W34 guided_ig 200 steps, SqueezeNet, 4 images": w34_guided_ig,
    "W35 blur_ig 100 steps, SqueezeNet, 4 images": w35_blur_ig,
    "W36 xrai 100 steps, SqueezeNet, 8 images": w36_xrai,
    "W37 guided_ig 200 steps, ResNet-50, 2 images": w37_guided_ig_resnet50,
    "W38 xrai 100 steps, ResNet-50, 2 images": w38_xrai_resnet50,
    # #18's metric workloads at its size: 16 images, SqueezeNet (pretrained) and ResNet-18 (random)
    **{f"W{39 + 2 * i + j} {title}, {label}, 16 images": functools.partial(function, arch=arch, images=16, **extra)
       for i, (title, function, extra) in enumerate((
           ("deletion + insertion (224 px a step)", w25_deletion_insertion, {}),
           ("infidelity 50 samples", w26_infidelity, {}),
           ("sensitivity_max 20 samples (saliency)", w27_sensitivity_max, {}),
           ("mprt cascading over every layer (saliency)", w28_mprt, {}),
           ("mprt cascading over every layer (guided backprop)", w28_mprt, {"method": "guided_backprop"}),
           ("faithfulness_correlation 100 runs of 224", w29_faithfulness_correlation, {}),
           ("road combined, 5 percentiles (GradCAM)", w30_road, {})))
       for j, (arch, label) in enumerate((("squeezenet1_1", "SqueezeNet"), ("resnet18", "ResNet-18")))},
    "W53 saliency_map, 5 images x their top 5 classes": w53_saliency_top5,
    "W54 integrated_gradients n_steps=50, 5 images x their top 3 classes": w54_integrated_gradients_top3,
    "W55 occlusion 16x16 stride 16, 2 images x their top 3 classes": w55_occlusion_top3,
    "W56 lrp EpsilonPlusFlat, VGG-16, 8 images": w56_lrp_vgg16,
    # #16's layer and neuron methods, SqueezeNet (pretrained) at features.7
    "W57 layer_gradient_x_activation, 16 images": w57_layer_gradient_x_activation,
    **{f"W{58 + i} {method} n_steps=50, 4 images": functools.partial(_path_layer_workload, method=method,
                                                                       captum_name=captum_name)
       for i, (method, captum_name) in enumerate((("internal_influence", "InternalInfluence"),
                                                  ("layer_integrated_gradients", "LayerIntegratedGradients"),
                                                  ("layer_conductance", "LayerConductance")))},
    "W61 layer_gradient_shap n_samples=20, 8 images": w61_layer_gradient_shap,
    "W62 layer_deeplift, 16 images": w62_layer_deeplift,
    "W63 layer_feature_ablation, 32 channel groups, 4 images": w63_layer_feature_ablation,
    "W64 layer_lrp (Captum's rules) at a convolution, 8 images": w64_layer_lrp,
    **{f"W{65 + i} {method}, 16 images": functools.partial(_neuron_workload, method=method, captum_name=captum_name)
       for i, (method, captum_name) in enumerate((("neuron_gradient", "NeuronGradient"),
                                                  ("neuron_guided_backprop", "NeuronGuidedBackprop"),
                                                  ("neuron_deconvolution", "NeuronDeconvolution"),
                                                  ("neuron_deeplift", "NeuronDeepLift")))},
    "W69 neuron_integrated_gradients n_steps=50, 4 images": w69_neuron_integrated_gradients,
    "W70 neuron_conductance n_steps=50, 4 images": w70_neuron_conductance,
    "W71 neuron_gradient_shap n_samples=20, 8 images": w71_neuron_gradient_shap,
    "W72 ablationcam, SqueezeNet features.12, 8 images": w72_ablationcam,
    "W73 ablationcam, ResNet-50 layer4, 2 images": w73_ablationcam_resnet50,
}

# The issues' speed targets, reference / jaxviz, against the fastest of the references whose
# names start with the given prefixes (of every reference when None): #20 (W2, W4-W7), #14
# (W9-W12), #17 (the CAMs, RISE, Guided IG, XRAI), #16 (W17-W24, W56; its layer and neuron methods, W57-W71,
# have no target of their own: the project's, faster than the reference), #18 (the metrics).
_METRIC_TARGETS = {w25_deletion_insertion: 3.0, w26_infidelity: 3.0, w27_sensitivity_max: 3.0,
                   w28_mprt: 10.0, w29_faithfulness_correlation: 10.0, w30_road: 3.0}
TARGETS = {
    "W2": (1.5, ("Captum",)), "W4": (2.0, ("Captum",)), "W5": (2.0, ("Captum",)),
    "W6": (2.0, ("course",)), "W7": (2.0, ("course",)),
    **dict.fromkeys(("W9", "W10", "W11", "W12", "W14", "W15", "W16", "W32", "W33"), (1.0, None)),
    **dict.fromkeys(("W13", "W31", "W34", "W36", "W37", "W38", "W72", "W73"), (5.0, None)),
    **dict.fromkeys([f"W{i}" for i in range(17, 25)] + ["W56"], (3.0, None)),
    **dict.fromkeys([f"W{i}" for i in range(57, 72)], (1.0, None)),
    **{name.split()[0]: (_METRIC_TARGETS[getattr(make, "func", make)], None)
       for name, make in WORKLOADS.items() if getattr(make, "func", make) in _METRIC_TARGETS},
}


def timed_or_recorded(fn, name: str, failures: dict) -> float | None:
    """``fn``'s time, or ``None`` with its error recorded in one line as ``failures[name]``
    (a reference that raises on these inputs is reported, not timed)."""
    try:
        return timed(fn)
    except Exception as error:  # noqa: BLE001
        failures[name] = f"{type(error).__name__}: {' '.join(str(error).split())[:200]}"
        return None


def settle_sweeps(refs: dict, failures: dict) -> tuple[dict, dict]:
    """Each :class:`Sweep` run once per setting: the references with every sweep replaced
    by its fastest setting (named ``"<reference>, <setting>"``), and each sweep's times.
    A setting that raises (Quantus asserts on some batches' explanations) is recorded in
    ``failures`` and left out."""
    settled, sweeps = {}, {}
    for name, fn in refs.items():
        if not isinstance(fn, Sweep):
            settled[name] = fn
            continue
        seconds = {}
        for setting, run_setting in fn.items():
            took = timed_or_recorded(run_setting, f"{name}, {setting}", failures)
            if took is None:
                continue
            seconds[setting] = took
            print(f"  sweep {name}, {setting}: {seconds[setting]:.3f}s", file=sys.stderr, flush=True)
        if not seconds:
            continue
        fastest = min(seconds, key=seconds.get)
        # a fastest setting at either end of a sweep of three or more may not be the best one
        at_edge = len(seconds) >= 3 and fastest in (next(iter(seconds)), next(reversed(seconds)))
        sweeps[name] = {"seconds": seconds, "fastest": fastest, "fastest_at_an_end": at_edge}
        settled[f"{name}, {fastest}"] = fn[fastest]
    return settled, sweeps


def alternate(ours, refs: dict, repeats: int, failures: dict) -> dict:
    """Each repeat times jaxviz, then each reference in turn: the times of jaxviz and of
    every reference that never raised (one that does is recorded in ``failures``)."""
    times = {"jaxviz": [], **{ref: [] for ref in refs}}
    for _ in range(repeats):
        times["jaxviz"].append(timed(ours))
        for ref, fn in refs.items():
            if ref not in failures:
                took = timed_or_recorded(fn, ref, failures)
                if took is not None:
                    times[ref].append(took)
    return {name: seconds for name, seconds in times.items() if name not in failures}


def target_verdict(workload_id: str, times: dict) -> dict | None:
    """The issue's target for a workload against the repeats' times: the reference it is
    measured against (the fastest by median among those the target names), the ratio
    reference / jaxviz in each alternating repeat, and ``met`` only when the lowest of
    those ratios reaches the target."""
    if workload_id not in TARGETS:
        return None
    factor, prefixes = TARGETS[workload_id]
    candidates = [k for k in times if k != "jaxviz" and (prefixes is None or k.startswith(prefixes))]
    if not candidates:
        return None
    reference = min(candidates, key=lambda k: statistics.median(times[k]))
    ratios = [r / j for r, j in zip(times[reference], times["jaxviz"])]
    return {"factor": factor, "reference": reference, "ratio_median": statistics.median(ratios),
            "ratio_low": min(ratios), "ratio_high": max(ratios), "met": min(ratios) >= factor}


# The workloads whose references take their tensors from ``TORCH_DEVICE`` (Quantus's numpy
# batches are moved by Quantus itself, to the device the harness names); the others build
# CPU tensors or numpy arrays for their references (PAIR, ROAD, ...) and run on the CPU only.
DEVICE_READY = {f"W{i}" for i in (*range(1, 20), 23, 24, *range(25, 30), 31, *range(39, 51), 56, 72, 73)}


def run(quick: bool, repeats: int, only: list[str] | None, out: Path, torch_device: str = "cpu",
        torch_compile: bool = True) -> dict:
    from jaxviz.models import weights as jw

    global TORCH_DEVICE, TORCH_COMPILE
    if torch.device(torch_device).type != "cpu":
        chosen = [name.split()[0] for name in WORKLOADS if not only or name.split()[0] in only]
        unready = [w for w in chosen if w not in DEVICE_READY]
        if unready:
            raise SystemExit(f"{', '.join(unready)}: the references run on the CPU only; "
                             f"on {torch_device} choose from {', '.join(sorted(DEVICE_READY, key=lambda w: int(w[1:])))}")
    TORCH_DEVICE, TORCH_COMPILE = torch.device(torch_device), torch_compile
    weights = os.environ.get("JAXVIZ_WEIGHTS") or str(SHARED / "weights" / "squeezenet1_1_tv_fp16.npz")
    model = jaxviz.load_model(weights=weights)
    tm = torch_model(jw.params_to_state_dict(jax.tree_util.tree_map(np.asarray, model.params)))
    peak = matmul_peak_gflops((256,) if quick else (1024, 2048))
    results, notes = [], []
    report = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, {jax.default_backend()} ({jax.devices()[0].device_kind})",
        "torch_device": str(TORCH_DEVICE) + (f" ({torch.cuda.get_device_name()})" if TORCH_DEVICE.type == "cuda" else ""),
        "versions": {"jax": jax.__version__, "torch": torch.__version__, "python": platform.python_version()},
        "xla_flags": os.environ.get("XLA_FLAGS", ""),  # jaxviz's side only: PyTorch does not read them
        # both sides at their defaults; on a GPU these say whether float32 products may round to TF32
        "float32_precision": {"jax_default_matmul_precision": str(jax.config.jax_default_matmul_precision),
                              "torch_cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                              "torch_cudnn_allow_tf32": torch.backends.cudnn.allow_tf32},
        "quick": quick,
        "repeats": repeats,
        "matmul_peak_gflop_per_s": peak,
        "results": results,
    }
    stem = ("quick-" if quick else "") + f"{jax.default_backend()}-{os.cpu_count()}cores"
    for name, make in WORKLOADS.items():
        if only and name.split()[0] not in only:
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        ours, refs, flops = make(model, tm, quick, notes)
        if flops is not None and not np.isfinite(flops):
            flops = None
            notes.append(f"No FLOP counts on {jax.default_backend()}: XLA's cost analysis counts its convolution "
                         "library's calls as none.")
        first = timed(ours)
        failures = {}
        refs, sweeps = settle_sweeps(refs, failures)
        for ref, fn in refs.items():
            if "compile" in ref:  # warm: its first call per shape compiles
                timed(fn)
        times = alternate(ours, refs, repeats, failures)
        refs = {ref: fn for ref, fn in refs.items() if ref in times}
        notes.extend(f"{name.split()[0]}: {ref} failed and is not timed ({message})."
                     for ref, message in failures.items())
        med = {k: statistics.median(v) for k, v in times.items()}
        row = {
            "workload": name,
            "compile_s": max(first - med["jaxviz"], 0.0),
            "median_s": med,
            "min_s": {k: min(v) for k, v in times.items()},
            "max_s": {k: max(v) for k, v in times.items()},
            "ratio_ref_over_jaxviz": {k: med[k] / med["jaxviz"] for k in refs},
            "sweeps": sweeps,
            "failed_references": failures,
            "target": target_verdict(name.split()[0], times),
            "gflops": flops / 1e9 if flops else None,
            "gflop_per_s": flops / 1e9 / med["jaxviz"] if flops else None,
        }
        row["share_of_peak"] = row["gflop_per_s"] / peak if flops else None
        results.append(row)
        print(f"  jaxviz {med['jaxviz']:.3f}s  " + "  ".join(f"{k}: {med[k]:.3f}s (×{med[k] / med['jaxviz']:.2f})" for k in refs),
              file=sys.stderr, flush=True)
        report["notes"] = list(dict.fromkeys(notes))  # a note shared by several workloads once
        write_report(report, out, stem)  # after every workload: a run cut short keeps what it measured
    return report


def write_report(report: dict, out: Path, stem: str) -> None:
    from jaxviz._io import atomic_write_bytes

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{stem}.json", json.dumps(report, indent=2).encode())
    atomic_write_bytes(out / f"{stem}.md", markdown(report).encode())


def markdown(report: dict) -> str:
    lines = [
        f"# jaxviz benchmarks — {report['machine']}, {report['date']}",
        "",
        f"jax {report['versions']['jax']}, torch {report['versions']['torch']}"
        + (f" on {report['torch_device']}" if report.get("torch_device", "cpu") != "cpu" else "")
        + f"; median of {report['repeats']} "
        f"alternating repeats; matmul peak {report['matmul_peak_gflop_per_s']:.1f} GFLOP/s (float32)"
        + (f"; XLA_FLAGS `{report['xla_flags']}`." if report.get("xla_flags") else "."),
        *([f"float32 precision at both sides' defaults: {', '.join(f'{k} {v}' for k, v in report['float32_precision'].items())}."]
          if report.get("torch_device", "cpu") != "cpu" else []),
        "",
        "| workload | jaxviz s | compile s | reference | ref s | ref/jaxviz | GFLOP/s | share of peak |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        for i, (ref, ratio) in enumerate(r["ratio_ref_over_jaxviz"].items()):
            first = i == 0
            ours = (f"{r['median_s']['jaxviz']:.3f} ({r['min_s']['jaxviz']:.3f}–{r['max_s']['jaxviz']:.3f}) | "
                    f"{r['compile_s']:.2f}") if first else " | "
            lines.append(
                f"| {r['workload'] if first else ''} | {ours} | {ref} | {r['median_s'][ref]:.3f} | {ratio:.2f} | "
                + (f"{r['gflop_per_s']:.1f} | {100 * r['share_of_peak']:.1f}% |" if r["gflop_per_s"] and first else " | |")
            )
    verdicts = [(r["workload"], r["target"]) for r in report["results"] if r.get("target")]
    if verdicts:
        lines += ["", "Targets: the ratio in each alternating repeat against the fastest reference the issue names; "
                  "met only when the lowest repeat reaches the target.", "",
                  "| workload | target | against | ratio median (lowest–highest) | met |", "|---|---|---|---|---|"]
        lines += [f"| {w.split()[0]} | ≥ {t['factor']:g}× | {t['reference']} | {t['ratio_median']:.2f} "
                  f"({t['ratio_low']:.2f}–{t['ratio_high']:.2f}) | {'yes' if t['met'] else '**no**'} |" for w, t in verdicts]
    swept = [(r["workload"].split()[0], name, sweep) for r in report["results"] for name, sweep in r.get("sweeps", {}).items()]
    if swept:
        lines += ["", "Sweeps (each setting run once; the fastest then ran in the repeats):", ""]
        lines += [f"- {w} {name}: " + ", ".join(f"{k} {v:.2f} s" for k, v in sweep["seconds"].items())
                  + f"; fastest: {sweep['fastest']}" + (" (at an end of the sweep)" if sweep["fastest_at_an_end"] else "")
                  for w, name, sweep in swept]
    lines += [""] + [f"- {note}" for note in report.get("notes", [])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--only", help="comma-separated workload ids, e.g. W2,W6")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    p.add_argument("--torch-device", help="where the PyTorch references run (default: cuda when JAX runs on a GPU "
                   "and PyTorch sees one, else cpu)")
    p.add_argument("--no-torch-compile", action="store_true", help="leave out torch.compile's references (its "
                   "compilation takes minutes)")
    args = p.parse_args(argv)
    device = args.torch_device or ("cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu")
    run(args.quick, args.repeats, args.only.split(",") if args.only else None, Path(args.out), device,
        not args.no_torch_compile)


if __name__ == "__main__":
    main()
