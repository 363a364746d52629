"""Style transfer: the course's check values, losses vs PyTorch, the loop vs the course loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import jaxviz
import importlib

st = importlib.import_module("jaxviz.synthesis.style_transfer")  # the module, not the re-exported function
from parity_tests import helpers as h


def load(name, size, dtype="float32"):
    return jaxviz.preprocess(jaxviz.load_image(h.shared_path("data", "styles", name)), size=size).astype(dtype)


@pytest.fixture(scope="module")
def checks():
    with np.load(h.shared_path("data", "style-transfer-checks.npz"), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="module")
def model():
    return h.jax_model("squeezenet1_1", h.pretrained_state_dict())


def test_check_values(model, checks, record_property):
    content = load("tubingen.jpg", 192)
    feats = st.features(model, content, (1, 3, 4, 6, 7))
    zeros = st.features(model, np.zeros_like(content), (3,))
    cl = float(st.content_loss(6e-2, feats[3], zeros[3]))
    style = load("starry_night.jpg", 192)
    gram = np.asarray(st.gram_matrix(st.features(model, style, (5,))[5]))
    targets = st.style_targets(model, style, (1, 4, 6, 7))
    sl = float(st.style_loss(feats, (1, 4, 6, 7), targets, (300000, 1000, 15, 3)))
    tv = float(st.tv_loss(content, 2e-2))
    errors = {
        "content": abs(cl - checks["cl_out"]) / checks["cl_out"],
        "gram_mean": np.abs(gram - checks["gm_out"]).mean() / np.abs(checks["gm_out"]).mean(),
        "style": abs(sl - checks["sl_out"]) / checks["sl_out"],
        "tv": abs(tv - checks["tv_out"]) / checks["tv_out"],
    }
    print({k: f"{v:.2e}" for k, v in errors.items()}, {"cl": cl, "sl": sl, "tv": tv})
    for k, v in errors.items():
        record_property(k, v)
    assert errors["tv"] <= 1e-5
    assert max(errors["content"], errors["gram_mean"], errors["style"]) <= 1e-2


# --- the course's loss functions in PyTorch, on torchvision's features


def torch_features(tm, x):
    feats, prev = [], x
    for module in tm.features:
        prev = module(prev)
        feats.append(prev)
    return feats


def torch_gram(f):
    n, c, hh, ww = f.shape
    f = f.view(n, c, hh * ww)
    return torch.bmm(f, f.transpose(1, 2)) / (c * hh * ww)


def torch_losses(feats, img, content_target, style_targets, cw, sw, tw, content_layer=3, style_layers=(1, 4, 6, 7)):
    c = cw * ((feats[content_layer] - content_target) ** 2).sum()
    s = sum(w * ((torch_gram(feats[l]) - t) ** 2).sum() for l, t, w in zip(style_layers, style_targets, sw))
    t = tw * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum() + ((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2).sum())
    return c, s, t


def test_losses_vs_torch_same_weights(model):
    tm = h.torch_model("squeezenet1_1", h.pretrained_state_dict())
    content = load("tubingen.jpg", 192)
    style = load("the_scream.jpg", 224)
    img = content + 0.3 * h.random_images(content.shape, 1)
    with torch.no_grad():
        s_feats = torch_features(tm, h.nchw(style))
        c_feats = torch_features(tm, h.nchw(content))
        feats = torch_features(tm, h.nchw(img))
        targets = [torch_gram(s_feats[l]) for l in (1, 4, 6, 7)]
        theirs = torch_losses(feats, h.nchw(img), c_feats[3], targets, 3e-2, (200000, 800, 12, 1), 2e-2)
    ours_feats = st.features(model, img, (1, 3, 4, 6, 7))
    ours = (
        st.content_loss(3e-2, ours_feats[3], st.features(model, content, (3,))[3]),
        st.style_loss(ours_feats, (1, 4, 6, 7), st.style_targets(model, style, (1, 4, 6, 7)), (200000, 800, 12, 1)),
        st.tv_loss(img, 2e-2),
    )
    for name, a, b in zip(("content", "style", "tv"), ours, theirs):
        assert abs(float(a) - b.item()) / abs(b.item()) <= 1e-5, name


def course_loop(tm, content, style, *, cw, sw, tw, num_iterations, decay_at=180, clamp_until=190, init=None):
    """The CS231n style_transfer loop (Adam 3.0, fresh Adam 0.1 at decay_at)."""
    with torch.no_grad():
        content_target = torch_features(tm, content)[3].clone()
        targets = [torch_gram(torch_features(tm, style)[l]).clone() for l in (1, 4, 6, 7)]
    img = (content if init is None else init).clone().requires_grad_()
    optimizer = torch.optim.Adam([img], lr=3.0)
    losses = []
    for t in range(num_iterations):
        if t < clamp_until:
            img.data.clamp_(-1.5, 1.5)
        optimizer.zero_grad()
        feats = torch_features(tm, img)
        loss = sum(torch_losses(feats, img, content_target, targets, cw, sw, tw))
        loss.backward()
        losses.append(loss.item())
        if t == decay_at:
            optimizer = torch.optim.Adam([img], lr=0.1)
        optimizer.step()
    return img.detach(), np.array(losses)


PRESET = st.PRESETS["starry_night"]


def _loops(dtype, num_iterations, **schedule):
    """jaxviz's loop and the course loop on the same images: (images, losses) of each."""
    content, style, kwargs = _inputs(dtype)
    with h.precision(dtype):
        m = h.jax_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
        ours = st.style_transfer(m, content, style, content_weight=kwargs["cw"], style_weights=kwargs["sw"],
                                 tv_weight=kwargs["tw"], num_iterations=num_iterations, **schedule)
        ours = np.asarray(ours.images), np.asarray(ours.losses)
    tm = h.torch_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
    img, losses = course_loop(tm, h.nchw(content), h.nchw(style), num_iterations=num_iterations, **kwargs, **schedule)
    return ours, (h.nhwc(img), losses)


def _inputs(dtype):
    content = load("tubingen.jpg", 192, dtype)
    style = load(PRESET["style"], PRESET["style_size"], dtype)
    return content, style, dict(cw=PRESET["content_weight"], sw=PRESET["style_weights"], tw=PRESET["tv_weight"])


def _course_final_losses_moved(seeds, num_iterations):
    """The course loop's final loss (float32) with the content image moved by one float32
    ulp per pixel, random signs from each seed."""
    content, style, kwargs = _inputs("float32")
    tm = h.torch_model("squeezenet1_1", h.pretrained_state_dict(), "float32")
    finals = []
    for seed in seeds:
        signs = np.random.default_rng(seed).choice(np.array([-1, 1], content.dtype), content.shape)
        nudged = content * (1 + signs * np.finfo(content.dtype).eps)
        finals.append(course_loop(tm, h.nchw(nudged), h.nchw(style), num_iterations=num_iterations, **kwargs)[1][-1])
    return np.array(finals)


def _first_20_iterations_criterion(losses, t_losses):
    """float32: Adam's first steps are ≈ lr·sign(g) (lr 3), so pixels whose gradient is
    near zero move by ±3 or not depending on rounding: measured, PyTorch float32's own loss
    curve leaves its float64 curve by up to 5.3e-3 within 20 iterations, and no float32
    implementation can hold 1e-3.  The criterion: jaxviz float32's curve is within
    max(1e-3, 2× PyTorch float32's distance) of the float64 curve (measured 3.5e-3 vs 5.3e-3);
    float64 agrees to 1e-9 (test_loop_float64_with_decay_and_clamp_release)."""
    _, (_, truth) = _loops("float64", 20)
    ours_err = (np.abs(losses[:20] - truth) / truth).max()
    torch_err = (np.abs(t_losses[:20] - truth) / truth).max()
    print(f"first-20 loss curve vs float64: jaxviz {ours_err:.2e}, PyTorch float32 {torch_err:.2e}; "
          f"vs PyTorch float32 {(np.abs(losses[:20] - t_losses[:20]) / t_losses[:20]).max():.2e}")
    assert ours_err <= max(1e-3, 2 * torch_err)


def test_loop_float32_first_20_iterations():
    (_, losses), (_, t_losses) = _loops("float32", 20)
    _first_20_iterations_criterion(losses, t_losses)


@pytest.mark.exhaustive  # 5–10 minutes: the course loop three times
def test_loop_float32_starry_night_200_iterations():
    """The course's 200 iterations: the first 20 as above.

    After 200 steps the loss is chaotic in the rounding: moving the content image by one
    float32 ulp per pixel moved PyTorch float32's own final loss from 12148 to 12702 and
    12878 (the test's two draws; three others gave 12583, 12983, 12809: up to 6.9%), on a
    Xeon with AVX-512 where jaxviz's was 12833, 5.6% from the unmoved run.  So the final
    loss must lie within the spread of the course loop's final losses (the unmoved run and
    the two moved ones), or 5% of their median, from their median.  (The moved runs are made
    only when the final loss is more than 5% from the unmoved run's.)"""
    (img, losses), (t_img, t_losses) = _loops("float32", 200)
    _first_20_iterations_criterion(losses, t_losses)
    moved = np.array([])
    if abs(losses[-1] - t_losses[-1]) > 0.05 * t_losses[-1]:  # then the spread decides (it is ≥ 5% or moot)
        moved = _course_final_losses_moved((1, 2), 200)
    finals = np.append(moved, t_losses[-1])
    pixels = np.abs(jaxviz.deprocess(img).astype(int) - jaxviz.deprocess(t_img).astype(int))
    print(f"final loss {losses[-1]:.1f} vs {t_losses[-1]:.1f} (content moved by an ulp: {moved.round(1)}); "
          f"final image pixel diff max {pixels.max()} mean {pixels.mean():.2f} (of 255)")
    median = np.median(finals)
    assert abs(losses[-1] - median) <= max(0.05 * median, finals.max() - finals.min()), (losses[-1], finals)


@pytest.mark.float64_only
def test_loop_float64_with_decay_and_clamp_release():
    # a shortened schedule so the fresh-Adam switch and the end of clamping are both reached
    (img, losses), (t_img, t_losses) = _loops("float64", 30, decay_at=22, clamp_until=26)
    assert np.abs(losses - t_losses).max() / np.abs(t_losses).max() <= 1e-9
    curve = np.abs(losses[:20] - t_losses[:20]) / np.abs(t_losses[:20])
    assert curve.max() <= 1e-9
    h.assert_close(img, t_img, 1e-9)


def _named_loop(tm, content, style, content_layer, style_layers, *, cw, sw, tw, num_iterations):
    """The course's loop on named torch modules (forward hooks read the layers), no decay."""
    modules = {name: tm.get_submodule(name) for name in (content_layer, *style_layers)}

    def feats(x):
        seen = {}
        handles = [m.register_forward_hook(lambda _m, _i, o, n=n: seen.__setitem__(n, o.clone()))
                   for n, m in modules.items()]
        tm(x)
        for handle in handles:
            handle.remove()
        return seen

    with torch.no_grad():
        content_target = feats(content)[content_layer]
        style_feats = feats(style)
        targets = [torch_gram(style_feats[n]) for n in style_layers]
    img = content.clone().requires_grad_()
    optimizer = torch.optim.Adam([img], lr=3.0)
    losses = []
    for _ in range(num_iterations):
        img.data.clamp_(-1.5, 1.5)
        optimizer.zero_grad()
        f = feats(img)
        c = cw * ((f[content_layer] - content_target) ** 2).sum()
        s = sum(w * ((torch_gram(f[n]) - t) ** 2).sum() for n, t, w in zip(style_layers, targets, sw))
        tv = tw * (((img[:, :, 1:] - img[:, :, :-1]) ** 2).sum() + ((img[:, :, :, 1:] - img[:, :, :, :-1]) ** 2).sum())
        loss = c + s + tv
        loss.backward()
        losses.append(loss.item())
        optimizer.step()
    return img.detach(), np.array(losses)


@pytest.mark.float64_only
def test_vgg19_gatys_preset_float64_random_weights():
    """VGG-19's Gatys preset (content conv4_2 = features.22, style conv1_1 … conv5_1 =
    features.1, .6, .11, .20, .29, torchvision's ReLU outputs) against the loop in PyTorch,
    random weights, float64."""
    arch = "vgg19"
    sd = h.random_state_dict(arch, 0)
    architecture = jaxviz.models.describe(arch)
    assert architecture.style_content_layer == "features.22"
    assert architecture.style_layers == ("features.1", "features.6", "features.11", "features.20", "features.29")
    content = h.random_images((1, 40, 44, 3), 1, "float64")
    style = h.random_images((1, 36, 36, 3), 2, "float64")
    weights = dict(cw=1e-2, sw=(1e3,) * 5, tw=1e-2)
    with h.precision("float64"):
        m = h.jax_model(arch, sd, "float64")
        ours = st.style_transfer(m, content, style, content_weight=weights["cw"], style_weights=weights["sw"],
                                 tv_weight=weights["tw"], num_iterations=6, decay_at=100, clamp_until=100)
    tm = h.torch_model(arch, sd, "float64")
    img, losses = _named_loop(tm, h.nchw(content), h.nchw(style), architecture.style_content_layer,
                              architecture.style_layers, num_iterations=6, **weights)
    assert np.abs(np.asarray(ours.losses) - losses).max() / np.abs(losses).max() <= 1e-9
    h.assert_close(np.asarray(ours.images), h.nhwc(img), 1e-9)
