"""Fooling images and class visualisation vs PyTorch versions of the course's loops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

import jaxviz
from jaxviz.images import MEAN, STD
from parity_tests import helpers as h

STINGRAY = 6


def course_fooling(tm, x_nchw, target, learning_rate, max_iter=100):
    """The course's make_fooling_image, one image at a time."""
    X_fooling = x_nchw.clone().requires_grad_()
    for i in range(max_iter):
        scores = tm(X_fooling)
        if scores.argmax(1).item() == target:
            return X_fooling.detach(), i, True
        scores[0, target].backward()
        g = X_fooling.grad.data
        X_fooling.data += learning_rate * g / g.norm()
        X_fooling.grad.data.zero_()
    with torch.no_grad():
        return X_fooling.detach(), max_iter, tm(X_fooling).argmax(1).item() == target


def _fool_both(dtype, learning_rate, images):
    with h.precision(dtype):
        model = h.jax_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
        X, _ = h.course_images()
        x = jaxviz.preprocess(X[list(images)]).astype(dtype)
        result = jaxviz.fooling_images(model, x, np.full(len(images), STINGRAY), learning_rate=learning_rate)
        ours = (np.asarray(result.images), np.asarray(result.iterations), np.asarray(result.success))
    tm = h.torch_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
    runs = [course_fooling(tm, h.nchw(x[i : i + 1]), STINGRAY, learning_rate) for i in range(len(images))]
    theirs = (np.concatenate([h.nhwc(r[0]) for r in runs]), np.array([r[1] for r in runs]), np.array([r[2] for r in runs]))
    return x, ours, theirs


# CS7643's rate (10) in make test; CS231n's (1: more steps, 4–6 minutes) under make test-exhaustive
@pytest.mark.float64_only
@pytest.mark.parametrize("learning_rate", [10.0, *h.exhaustive(1.0)])
def test_fooling_all_25_float64(learning_rate):
    """Same success flags on all 25 images; same iterations and images (1e-9) on all but the
    two images with exact max-pool ties (1, 14), where 1-ulp differences route gradients
    differently (helpers.setup) and the trajectories part (measured at lr 1: image 1 takes
    12 steps here, 11 in PyTorch; at lr 10 both agree)."""
    x, (img, it, ok), (t_img, t_it, t_ok) = _fool_both("float64", learning_rate, range(25))
    np.testing.assert_array_equal(ok, t_ok)
    untied = [i for i in range(25) if i not in h.TIED_IMAGES]
    np.testing.assert_array_equal(it[untied], t_it[untied])
    for i in range(25):
        if i not in h.TIED_IMAGES:
            h.assert_close(img[i], t_img[i], 1e-9, f"image {i}")
    change = (np.abs(img - x) * STD).max(axis=(1, 2, 3)) * 255  # in grey levels
    print(f"lr {learning_rate}: iterations {it.tolist()}, fooled {int(ok.sum())}/25, "
          f"largest pixel change {np.round(change).astype(int).tolist()}")
    assert ok.sum() >= 24


@pytest.mark.parametrize("learning_rate", [10.0, 1.0])
def test_fooling_float32_tie_free_images(learning_rate):
    """float32: one normalised step is as accurate as PyTorch's float32 step, and the whole
    loop fools the same images.

    Each step is the normalised input gradient, which in float32 on the pretrained images
    is only as good as max-pool and ReLU near-ties allow (test_saliency: PyTorch's and
    jaxviz's float32 gradients are both 3.0e-3 from float64 on an AMD EPYC), so the step is
    held to helpers.assert_float32_as_accurate_as_torch against the float64 step, or
    against the float64 step given jaxviz float32's own decisions at ReLU inputs within
    rounding of zero.  The images have no exact ties, but which near-ties a float32
    evaluation flips depends on the machine's kernels: on an AVX2-only AMD EPYC
    (2026-12-03) one ReLU input of image 7 at ``features.6.expand3x3``, 4.2e-6 in float64
    (3e-8 of that layer's largest), is -1.6e-6 in jaxviz's float32 and 6.0e-6 in
    PyTorch's (one thread), so PyTorch's step is 5e-6 from float64 and jaxviz's 3.5e-3
    (0.5 % of its elements beyond 1e-4).  The trajectory
    is chaotic: on that machine, lr 1, image 8, after 17 steps PyTorch float32 has the
    target 0.6 above the runner-up and jaxviz float32 0.65 below it, so jaxviz takes 18
    steps where PyTorch float32 and float64 take 17 (on the previous Intel machine they
    agreed).  The loop is held to the same success flags and iterations no more than one
    step from PyTorch float32's; float64 holds the whole trajectory to 1e-9
    (test_fooling_all_25_float64)."""
    _, (img, it, ok), (t_img, t_it, t_ok) = _fool_both("float32", learning_rate, h.TIE_FREE_IMAGES)
    np.testing.assert_array_equal(ok, t_ok)
    assert np.abs(it - t_it).max() <= 1, (it, t_it)

    def course_step(tm, x, i):  # the course loop's first step from image i alone
        return h.nhwc(course_fooling(tm, h.nchw(x[i:i + 1]), STINGRAY, learning_rate, max_iter=1)[0]) - x[i:i + 1]

    steps, built = {}, {}
    for dtype in ("float32", "float64"):
        with h.precision(dtype):
            model = h.jax_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
            X, _ = h.course_images()
            x = jaxviz.preprocess(X[list(h.TIE_FREE_IMAGES)]).astype(dtype)
            ours = np.asarray(jaxviz.fooling_images(model, x, np.full(len(x), STINGRAY), learning_rate=learning_rate,
                                                    max_iter=1).images)
        tm = h.torch_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
        steps[dtype] = (ours - x, np.concatenate([course_step(tm, x, i) for i in range(len(x))]))
        built[dtype] = (model, tm, x)
    h.assert_close(*steps["float64"], 1e-9, "one float64 step")

    def matched_truth():  # PyTorch float64's step given jaxviz float32's ReLU coin flips
        (model32, _, x32), (_, tm64, x64) = built["float32"], built["float64"]
        flips = h.relu_coin_flips(model32, x32, tm64, x64)
        steps64 = []
        for i in range(len(x64)):
            with h.relu_inputs_moved(tm64, flips, slice(i, i + 1)):
                steps64.append(course_step(tm64, x64, i))
        return np.concatenate(steps64)

    h.assert_float32_as_accurate_as_torch(*steps["float32"], steps["float64"][1], "one float32 step",
                                          matched_truth=matched_truth)


def course_class_visualization(tm, target, init, jitter, *, l2_reg=1e-3, learning_rate=25.0, blur_every=10):
    """The course's create_class_visualization with given init and jitter offsets (oy, ox)."""

    def jitter_fn(X, ox, oy):
        if ox != 0:
            X = torch.cat([X[:, :, :, -ox:], X[:, :, :, :-ox]], dim=3)
        if oy != 0:
            X = torch.cat([X[:, :, -oy:], X[:, :, :-oy]], dim=2)
        return X

    def blur_image(X, sigma=0.5):
        X_np = X.cpu().clone().numpy()
        X_np = gaussian_filter1d(X_np, sigma, axis=2)
        X_np = gaussian_filter1d(X_np, sigma, axis=3)
        X.copy_(torch.from_numpy(X_np).type_as(X))

    img = init.clone().requires_grad_()
    for t in range(len(jitter)):
        oy, ox = int(jitter[t][0]), int(jitter[t][1])
        img.data.copy_(jitter_fn(img.data, ox, oy))
        score = tm(img)[0, target] - l2_reg * img.norm() ** 2
        score.backward()
        g = img.grad.data
        img.data += learning_rate * g / g.norm()
        img.grad.data.zero_()
        img.data.copy_(jitter_fn(img.data, -ox, -oy))
        for c in range(3):
            lo, hi = float(-MEAN[c] / STD[c]), float((1.0 - MEAN[c]) / STD[c])
            img.data[:, c].clamp_(min=lo, max=hi)
        if t % blur_every == 0:
            blur_image(img.data)
    return img.detach()


def _class_vis_both(dtype, targets, init, jitter):
    with h.precision(dtype):
        model = h.jax_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
        ours = np.asarray(jaxviz.class_visualization(model, targets, init=init.astype(dtype), jitter=jitter).images)
    tm = h.torch_model("squeezenet1_1", h.pretrained_state_dict(), dtype)
    theirs = np.concatenate([
        h.nhwc(course_class_visualization(tm, int(t), h.nchw(init[k : k + 1].astype(dtype)), jitter[:, k]))
        for k, t in enumerate(targets)
    ])
    return ours, theirs


CLASS_VIS_TARGETS = np.array([76, 366])
_rng = np.random.default_rng(0)
CLASS_VIS_INIT = _rng.normal(size=(2, 96, 96, 3))
CLASS_VIS_JITTER = _rng.integers(0, 17, size=(100, 2, 2))


@pytest.mark.float64_only
def test_class_visualization_same_init_and_jitter_float64():
    ours, theirs = _class_vis_both("float64", CLASS_VIS_TARGETS, CLASS_VIS_INIT, CLASS_VIS_JITTER)
    h.assert_close(ours, theirs, 1e-9)


def test_class_visualization_same_init_and_jitter_float32():
    """100 steps of lr 25 normalised ascent are chaotic in float32: PyTorch float32 ends far
    from PyTorch float64 after 100 iterations (measured in the closing note), so the 1e-3
    target cannot be met by any float32 implementation; the criterion is
    helpers.assert_float32_as_accurate_as_torch against the float64 result."""
    ours, theirs = _class_vis_both("float32", CLASS_VIS_TARGETS, CLASS_VIS_INIT, CLASS_VIS_JITTER)
    _, truth = _class_vis_both("float64", CLASS_VIS_TARGETS, CLASS_VIS_INIT, CLASS_VIS_JITTER)
    (ours_err, _), (torch_err, _) = h.assert_float32_as_accurate_as_torch(ours, theirs, truth)
    print(f"class visualisation float32 vs float64 after 100 iterations: jaxviz {ours_err:.3g}, PyTorch {torch_err:.3g}")


def test_blur_is_scipys():
    from jaxviz.synthesis import gaussian_blur

    a = np.random.default_rng(1).normal(size=(2, 9, 11, 3))
    with h.precision("float64"):
        ours = np.asarray(gaussian_blur(a, 0.5))
    ref = gaussian_filter1d(gaussian_filter1d(a, 0.5, axis=1), 0.5, axis=2)
    h.assert_close(ours, ref, 1e-14)


def test_mobilenet_v2_pretrained_fooling_and_class_visualization_reach_their_targets():
    """On the pretrained MobileNetV2: fooling images and class visualisations are classified
    as their targets by torchvision's MobileNetV2 (float64 jaxviz = the course loop, 1e-9,
    on one fooling image)."""
    sd = h.pretrained_state_dict("mobilenet_v2")
    tm = h.torch_model("mobilenet_v2", sd, "float64")
    X, _ = h.course_images(4)
    with h.precision("float64"):
        model = h.jax_model("mobilenet_v2", sd, "float64")
        x = jaxviz.preprocess(X).astype(np.float64)
        fooled = jaxviz.fooling_images(model, x, np.full(4, STINGRAY), learning_rate=1.0)
        images = np.asarray(fooled.images)
        vis = jaxviz.class_visualization(model, np.array([76, 366]), key=jax_key(0), num_iterations=100,
                                         image_size=128)
        vis_images = np.asarray(vis.images)
    assert np.asarray(fooled.success).all()
    with torch.no_grad():
        assert (tm(h.nchw(images)).argmax(1).numpy() == STINGRAY).all()
        assert (tm(h.nchw(vis_images)).argmax(1).numpy() == [76, 366]).all()
    reference, iterations, ok = course_fooling(tm, h.nchw(x[:1]), STINGRAY, 1.0)
    assert ok and iterations == int(np.asarray(fooled.iterations)[0])
    h.assert_close(images[:1], h.nhwc(reference), 1e-9)


def jax_key(seed):
    import jax

    return jax.random.key(seed)
