"""pytorch-grad-cam's CAMs against the package (``grad-cam``), random weights with random
BatchNorm statistics, two random images at a small size, on SqueezeNet, ResNet-18,
VGG-11-BN and MobileNetV2.

Which steps of the package are float32, and what each comparison is held to:

- ``resolution="layer"`` (the map before the package scales it): the package computes it in
  NumPy in the model's dtype, so a float64 model is compared at 1e-9 — except the
  projection (``get_2d_projection`` returns ``np.float32``) and ScoreCAM (its scores go
  through ``torch.Tensor``, float32, before the softmax).  Those two are compared at 1e-9
  with their definition computed in float64 (the package's own steps without the casts:
  NumPy's SVD, a hook-free PyTorch ScoreCAM), and with the package at 1e-6.
- ``resolution="input"``: the package's ``scale_cam_image`` turns the map into float32 before
  ``cv2.resize`` and returns float32; compared at 1e-6 relative (float32 rounding of values
  in [0, 1] is 6e-8).
- FullGrad: compared at 1e-9 with the package's own float64 gradients and biases scaled
  and resized in float64 (its steps without the casts), and with the package at 1e-5: its
  map is a float32 sum of 3 + L min–max scaled maps (L = 16 to 26 bias layers here), each
  rounded to float32, before the final min–max.
"""

from __future__ import annotations

import functools
import sys

import jax
import numpy as np
import pytest
import torch
import cv2
from pytorch_grad_cam import (AblationCAM, EigenCAM, EigenGradCAM, FullGrad, GradCAM, GradCAMElementWise,
                              GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, XGradCAM)
from pytorch_grad_cam.utils import svd_on_activations
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

import jaxviz
from parity_tests import helpers as h

pytestmark = pytest.mark.float64_only


@pytest.fixture(autouse=True)
def sign_corrected_projection(monkeypatch):
    """The package's projections (EigenCAM, EigenGradCAM, ``eigen_smooth``) with its own
    sign correction, as jaxviz's: its ``get_2d_projection`` leaves the sign to NumPy's
    LAPACK, and LAPACKs differ (on a Xeon with AVX-512, XLA's and NumPy's chose opposite
    signs for MobileNetV2's EigenGradCAM; in CI they agreed).  The uncorrected projection
    is compared up to its sign in
    test_projection_cams_against_their_float64_definition_and_the_float32_package."""
    uncorrected = svd_on_activations.get_2d_projection
    for name, module in list(sys.modules.items()):
        if name.startswith("pytorch_grad_cam") and getattr(module, "get_2d_projection", None) is uncorrected:
            monkeypatch.setattr(module, "get_2d_projection", svd_on_activations.get_2d_projection_with_sign_correction)

# VGG-11-BN under make test-exhaustive (its layers are the others'; it runs in make test at
# several layers at once, test_several_layers…)
ARCHS = ["squeezenet1_1", "resnet18", "mobilenet_v2", *h.exhaustive("vgg11_bn")]
GRADIENT_CAMS = {
    "gradcam": (GradCAM, jaxviz.gradcam),
    "hirescam": (HiResCAM, jaxviz.hirescam),
    "gradcam_elementwise": (GradCAMElementWise, jaxviz.gradcam_elementwise),
    "gradcam_plus_plus": (GradCAMPlusPlus, jaxviz.gradcam_plus_plus),
    "xgradcam": (XGradCAM, jaxviz.xgradcam),
    "layercam": (LayerCAM, jaxviz.layercam),
}
PROJECTION_CAMS = {"eigencam": (EigenCAM, jaxviz.eigencam), "eigen_gradcam": (EigenGradCAM, jaxviz.eigen_gradcam)}
TOL64 = h.ATTR_TOL["float64"]
TOL_PACKAGE32 = 1e-6


def _setup(arch):
    return h.random_case(arch)


def _package(cam_class, tm, x, target, layers, **call):
    """The package's output, and for the first layer its map before scaling (ReLU'd, as the
    package does next) with the activation and gradient it was made from (NCHW)."""
    xt = h.nchw(x)
    targets = [ClassifierOutputTarget(int(t)) for t in target]
    with cam_class(tm, [tm.get_submodule(name) for name in layers]) as cam:
        if cam_class in (ScoreCAM, AblationCAM):
            cam.batch_size = 64
        output = cam(xt, targets, **call)
        activation = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients
        grads = grads[0].numpy() if grads else None
        raw = cam.get_cam_image(xt, tm.get_submodule(layers[0]), targets, activation, grads,
                                call.get("eigen_smooth", False))
    return output, np.maximum(raw, 0), activation, grads


def _ours(function, model, x, target, **options):
    with h.precision("float64"):
        return np.asarray(function(model, x, target, **options))


def _projection64(maps):
    """``get_2d_projection_with_sign_correction`` without its float32 cast: (N, C, h, w) →
    (N, h, w), the largest magnitude of each positive."""
    out = []
    for m in maps:
        flat = m.reshape(m.shape[0], -1).T
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=True)
        projected = flat @ vt[0]
        out.append((-projected if abs(projected.min()) > abs(projected.max()) else projected).reshape(m.shape[1:]))
    return np.stack(out)


def _all_of(cams, model, x, target):
    """Every CAM of ``cams`` from one compiled program (one compilation instead of one per
    CAM: the test's time is XLA compiling)."""
    with h.precision("float64"):
        run = jax.jit(lambda m, v, t: {name: f(m, v, t) for name, (_, f) in cams.items()})
        return {name: np.asarray(value) for name, value in run(model, x, target).items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_cams_at_the_layer_float64(arch):
    model, tm, x, target = _setup(arch)
    ours = _all_of(GRADIENT_CAMS, model, x, target)
    for name, (cam_class, _) in GRADIENT_CAMS.items():
        _, raw, _, _ = _package(cam_class, tm, x, target, [model.architecture.default_layer])
        h.assert_close(ours[name], raw, TOL64, f"{arch} {name}")


# VGG's last block is 1×1 at this size, where the projection of a centred single row is 0
@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet18", "mobilenet_v2"])
def test_projection_cams_against_their_float64_definition_and_the_float32_package(arch):
    model, tm, x, target = _setup(arch)
    ours = _all_of(PROJECTION_CAMS, model, x, target)
    for name, (cam_class, _) in PROJECTION_CAMS.items():
        _, raw32, activation, grads = _package(cam_class, tm, x, target, [model.architecture.default_layer])
        maps = activation if name == "eigencam" else grads * activation
        definition = _projection64(maps)
        h.assert_close(ours[name], np.maximum(definition, 0), TOL64, f"{arch} {name}, definition")
        h.assert_close(ours[name], raw32, TOL_PACKAGE32, f"{arch} {name}, package")
        # without the sign correction, each image's map is that of one of the two signs
        uncorrected = np.maximum(get_2d_projection(maps), 0)
        for n in range(len(maps)):
            errors = [h.rel_err(uncorrected[n], np.maximum(sign * definition[n], 0)) for sign in (1, -1)]
            assert min(errors) <= TOL_PACKAGE32, f"{arch} {name} image {n}, uncorrected: {errors}"


def _scorecam64(tm, x, target, layer):
    """ScoreCAM's definition in float64, hook-free: each channel upsampled (bilinear,
    corners aligned), min–max scaled, multiplying the input; softmax of the scores."""
    xt = h.nchw(x)
    activation = torch.from_numpy(h.torch_layer_outputs(tm, xt, [layer])[layer]).permute(0, 3, 1, 2)
    up = torch.nn.functional.interpolate(activation, size=xt.shape[-2:], mode="bilinear", align_corners=True)
    low = up.amin(dim=(2, 3), keepdim=True)
    high = up.amax(dim=(2, 3), keepdim=True)
    masks = (up - low) / (high - low + 1e-8)
    weights = []
    with torch.no_grad():
        for n in range(xt.shape[0]):
            scores = tm(xt[n : n + 1] * masks[n][:, None])[:, int(target[n])]
            weights.append(torch.softmax(scores, dim=0))
    cam = (torch.stack(weights)[:, :, None, None] * activation).sum(dim=1)
    return np.maximum(cam.numpy(), 0)


@pytest.mark.parametrize("arch,layer", [("squeezenet1_1", "features.5"), ("resnet18", "layer1")])
def test_scorecam_against_its_float64_definition_and_the_float32_package(arch, layer):
    model, tm, x, target = _setup(arch)
    cams = {resolution: (ScoreCAM, functools.partial(jaxviz.scorecam, layer=layer, resolution=resolution,
                                                     batch_size=24))
            for resolution in ("layer", "input")}
    ours = _all_of(cams, model, x, target)
    h.assert_close(ours["layer"], _scorecam64(tm, x, target, layer), TOL64, f"{arch} scorecam, definition")
    package, raw32, _, _ = _package(ScoreCAM, tm, x, target, [layer])
    h.assert_close(ours["layer"], raw32, TOL_PACKAGE32, f"{arch} scorecam, package")
    h.assert_close(ours["input"], package, TOL_PACKAGE32, f"{arch} scorecam, package output")


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_input_resolution_output_equals_the_package(arch):
    model, tm, x, target = _setup(arch)
    cams = {name: (cam_class, functools.partial(function, resolution="input"))
            for name, (cam_class, function) in {**GRADIENT_CAMS, **PROJECTION_CAMS}.items()
            if name in ("gradcam", "gradcam_plus_plus", "layercam", "eigencam")}
    ours = _all_of(cams, model, x, target)
    for name, (cam_class, _) in cams.items():
        package, _, _, _ = _package(cam_class, tm, x, target, [model.architecture.default_layer])
        assert ours[name].shape == package.shape == x.shape[:3]
        h.assert_close(ours[name], package, TOL_PACKAGE32, f"{arch} {name}")


def _ablationcam64(tm, x, target, layer):
    """AblationCAM's definition in float64, hook-free: the network evaluated from the layer's
    output on, with one channel at a time set to 0 (the layer is a ReLU's output)."""
    xt = h.nchw(x)
    names = [name for name, _ in tm.named_children()]
    top = layer.split(".")[0]
    below = torch.nn.Sequential(*[getattr(tm, n) for n in names[: names.index(top) + 1]])
    above = [getattr(tm, n) for n in names[names.index(top) + 1 :]]

    def head(a):
        for module in above:
            a = module(torch.flatten(a, 1) if isinstance(module, torch.nn.Linear) else a)
        return a

    weights = []
    with torch.no_grad():
        activation = below(xt)
        assert activation.amin().item() == 0
        original = head(activation)[torch.arange(len(target)), torch.from_numpy(target)]
        for n in range(xt.shape[0]):
            copies = activation[n : n + 1].repeat(activation.shape[1], 1, 1, 1)
            copies[torch.arange(activation.shape[1]), torch.arange(activation.shape[1])] = 0
            scores = head(copies)[:, int(target[n])]
            weights.append((original[n] - scores) / original[n])
    cam = (torch.stack(weights)[:, :, None, None] * activation).sum(dim=1)
    return np.maximum(cam.numpy(), 0)


def test_ablationcam_against_its_float64_definition_and_the_float32_package():
    # ResNet-18's children run in order (layer4 → avgpool → flatten → fc), so the definition
    # can evaluate the network from layer4's output on.
    model, tm, x, target = _setup("resnet18")
    ours = _ours(jaxviz.ablationcam, model, x, target, layer="layer4", batch_size=48)
    h.assert_close(ours, _ablationcam64(tm, x, target, "layer4"), TOL64, "resnet18 ablationcam, definition")
    # the package's scores are float32 and its weights differences of them: 1e-7 of the
    # score, a larger share of the small weights
    package, raw32, _, _ = _package(AblationCAM, tm, x, target, ["layer4"])
    h.assert_close(ours, raw32, 1e-4, "resnet18 ablationcam, package")


# Not a layer whose output PyTorch later changes in place (BasicBlock's `out += identity`
# after bn2): the package's hook keeps a reference, and would read the changed values.
# VGG-11-BN's case runs under make test-exhaustive with the VGG rows of the other CAM
# tests: the several-layer code is the architecture-free code ResNet-18's case runs, and
# VGG's case took 54 s of the suite (14 s of it building the random VGG pair).
@pytest.mark.parametrize("arch,layers", [("resnet18", ("layer2", "layer3.1.conv1", "layer4")),
                                         *h.exhaustive(("vgg11_bn", ("features.13", "features.20")))])
def test_several_layers_eigen_smooth_and_aug_smooth_equal_the_package(arch, layers):
    model, tm, x, target = _setup(arch)
    for cam_class, function, call in [(LayerCAM, jaxviz.layercam, {}),
                                      (GradCAM, jaxviz.gradcam, {"eigen_smooth": True}),
                                      (XGradCAM, jaxviz.xgradcam, {"aug_smooth": True})]:
        package, raw, _, _ = _package(cam_class, tm, x, target, list(layers), **call)
        ours = _ours(function, model, x, target, layer=layers, resolution="input", **call)
        h.assert_close(ours, package, TOL_PACKAGE32, f"{arch} {cam_class.__name__} {call}")
        if call.get("eigen_smooth"):  # the layer map itself, projection in float32 in the package
            ours_layer = _ours(function, model, x, target, layer=layers[0], eigen_smooth=True)
            h.assert_close(ours_layer, raw, TOL_PACKAGE32, f"{arch} {cam_class.__name__} eigen_smooth layer map")


def _fullgrad64(tm, x, target):
    """FullGrad's definition in float64: the package's own gradients at its bias layers and
    its biases (a float64 model), scaled and resized as it does, without its float32 casts."""
    xt = h.nchw(x)
    with FullGrad(tm, []) as cam:
        cam(xt, [ClassifierOutputTarget(int(t)) for t in target])
        grads = [g.numpy() for g in cam.activations_and_grads.gradients]
        biases = cam.bias_data
    xg = xt.clone().requires_grad_(True)
    tm(xg)[torch.arange(len(target)), torch.from_numpy(target)].sum().backward()
    size = (xt.shape[3], xt.shape[2])  # cv2's (width, height)

    def scaled(maps):  # (N, C, h, w): each channel min–max scaled and resized
        maps = maps - maps.min(axis=(2, 3), keepdims=True)
        maps = maps / (1e-7 + maps.max(axis=(2, 3), keepdims=True))
        return np.stack([[cv2.resize(m, size) for m in image] for image in maps])

    total = scaled(np.abs(xg.grad.numpy() * xt.numpy())).sum(axis=1)
    for bias, grad in zip(biases, grads):
        total += scaled(np.abs(bias[None, :, None, None] * grad)).sum(axis=1)
    total -= total.min(axis=(1, 2), keepdims=True)
    return total / (1e-7 + total.max(axis=(1, 2), keepdims=True))


# SqueezeNet: biased convolutions (its class convolution among them); ResNet-18: BatchNorms
# after unbiased convolutions (VGG-11-BN, which has both, agrees as well: 24 s more)
@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet18"])
def test_fullgrad_against_its_float64_definition_and_the_float32_package(arch):
    model, tm, x, target = _setup(arch)
    calls = ({}, {"eigen_smooth": True}, {"aug_smooth": True}) if arch == "resnet18" else ({},)
    cams = {str(call): (FullGrad, functools.partial(jaxviz.fullgrad, **call)) for call in calls}
    ours = _all_of(cams, model, x, target)
    h.assert_close(ours["{}"], _fullgrad64(tm, x, target), TOL64, f"{arch} fullgrad, definition")
    for call in calls:
        with FullGrad(tm, []) as cam:
            package = cam(h.nchw(x), [ClassifierOutputTarget(int(t)) for t in target], **call)
        assert ours[str(call)].shape == package.shape == x.shape[:3]
        h.assert_close(ours[str(call)], package, 1e-5, f"{arch} fullgrad {call}, package")


def _resnet18_head(tm):
    """ResNet-18 from layer4's output on (avgpool, flatten, fc): its children run in order."""
    return lambda a: tm.fc(torch.flatten(tm.avgpool(a), 1))


def _shapleycam64(tm, x, target):
    """ShapleyCAM's definition at ResNet-18's layer4 in float64, hook-free: the ReST score
    differentiated twice from the layer's output, w = mean(G − ½ H·A)."""
    xt = h.nchw(x)
    activation = torch.from_numpy(h.torch_layer_outputs(tm, xt, ["layer4"])["layer4"]).permute(0, 3, 1, 2)
    a = activation.clone().requires_grad_(True)
    logits = _resnet18_head(tm)(a)
    rows = torch.arange(len(target)), torch.from_numpy(target)
    score = (logits[rows] + torch.log_softmax(logits, dim=1)[rows]).sum()
    (grads,) = torch.autograd.grad(score, a, create_graph=True)
    (hvp,) = torch.autograd.grad(grads, a, grad_outputs=activation)
    weights = (grads - 0.5 * hvp).mean(dim=(2, 3))
    return np.maximum((weights[:, :, None, None] * activation).sum(dim=1).detach().numpy(), 0)


def test_shapleycam_against_its_float64_definition_and_the_float32_package():
    from pytorch_grad_cam import ShapleyCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST

    model, tm, x, target = _setup("resnet18")
    cams = {resolution: (ShapleyCAM, functools.partial(jaxviz.shapleycam, layer="layer4", score="rest",
                                                       resolution=resolution)) for resolution in ("layer", "input")}
    cams["logit"] = (GradCAM, functools.partial(jaxviz.shapleycam, layer="layer4"))
    cams["gradcam"] = (GradCAM, functools.partial(jaxviz.gradcam, layer="layer4"))
    ours = _all_of(cams, model, x, target)
    expected = _shapleycam64(tm, x, target)
    h.assert_close(ours["layer"], expected, TOL64, "resnet18 shapleycam, definition")
    assert h.rel_err(expected, ours["gradcam"]) > 1e-3  # the Hessian term is there
    # of the logit, after ReLUs and max-pools only: the Hessian is 0 and the map GradCAM's
    h.assert_close(ours["logit"], ours["gradcam"], TOL64, "resnet18 shapleycam of the logit = gradcam")
    with ShapleyCAM(tm, [tm.layer4]) as cam:
        package = cam(h.nchw(x), [ClassifierOutputReST(int(t)) for t in target])
    h.assert_close(ours["input"], package, TOL_PACKAGE32, "resnet18 shapleycam, package output")


@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet18"])
def test_finercam_equals_the_package(arch):
    """The package's FinerCAM given each image's target (``target_idx``, one image per call):
    the layer map from its own float64 gradient of FinerWeightedTarget, and its output."""
    from pytorch_grad_cam import FinerCAM

    model, tm, x, target = _setup(arch)
    layer = model.architecture.default_layer
    cams = {resolution: (FinerCAM, functools.partial(jaxviz.finercam, alpha=0.7, resolution=resolution))
            for resolution in ("layer", "input")}
    ours = _all_of(cams, model, x, target)
    for i, t in enumerate(target):
        cam = FinerCAM(tm, [tm.get_submodule(layer)])
        with cam:
            package = cam(h.nchw(x[i : i + 1]), alpha=0.7, target_idx=int(t))
            activation = cam.base_cam.activations_and_grads.activations[0].numpy()
            grads = cam.base_cam.activations_and_grads.gradients[0].numpy()
        raw = np.maximum((grads.mean(axis=(2, 3))[:, :, None, None] * activation).sum(axis=1), 0)
        h.assert_close(ours["layer"][i : i + 1], raw, TOL64, f"{arch} finercam image {i}, layer map")
        h.assert_close(ours["input"][i : i + 1], package, TOL_PACKAGE32, f"{arch} finercam image {i}, output")


def _kpca64(activation, kernel, gamma=None):
    """``get_2d_projection_kernel`` without its float32 cast: scikit-learn's KernelPCA on each
    image's centred float64 activations (NCHW) → (N, h, w)."""
    from sklearn.decomposition import KernelPCA

    out = []
    for a in activation:
        points = a.reshape(a.shape[0], -1).T
        points = points - points.mean(axis=0)
        out.append(KernelPCA(n_components=1, kernel=kernel, gamma=gamma).fit_transform(points).reshape(a.shape[1:]))
    return np.stack(out)


# ResNet-18's layer1 at 40×43 holds 110 points (scikit-learn's dense eigensolver), SqueezeNet's
# features.1 399 (its ARPACK solver, > 200)
@pytest.mark.parametrize("arch,layer", [("resnet18", "layer1"), ("squeezenet1_1", "features.1")])
def test_kpca_cam_against_kernel_pca_in_float64_and_the_float32_package(arch, layer):
    from pytorch_grad_cam import KPCA_CAM

    model, tm, x, target = _setup(arch)
    kernels = {"sigmoid": None, "rbf": 0.05, "poly": 0.01, "cosine": None}
    cams = {kernel: (KPCA_CAM, functools.partial(jaxviz.kpca_cam, layer=layer, kernel=kernel, gamma=gamma))
            for kernel, gamma in kernels.items()}
    cams["input"] = (KPCA_CAM, functools.partial(jaxviz.kpca_cam, layer=layer, resolution="input"))
    ours = _all_of(cams, model, x, target)
    activation = np.moveaxis(h.torch_layer_outputs(tm, h.nchw(x), [layer])[layer], 3, 1)
    assert activation.shape[2] * activation.shape[3] > (200 if arch == "squeezenet1_1" else 100)
    for kernel, gamma in kernels.items():
        h.assert_close(ours[kernel], np.maximum(_kpca64(activation, kernel, gamma), 0), TOL64,
                       f"{arch} kpca_cam {kernel}, KernelPCA")
    package, raw32, _, _ = _package(KPCA_CAM, tm, x, target, [layer])
    h.assert_close(ours["sigmoid"], raw32, TOL_PACKAGE32, f"{arch} kpca_cam, package")
    h.assert_close(ours["input"], package, TOL_PACKAGE32, f"{arch} kpca_cam, package output")


def test_random_cam_given_the_package_draws_equals_the_package():
    """RandomCAM's weights are NumPy's global uniform draws, one (N, C) per layer in order:
    replayed from the same seed and handed to jaxviz."""
    from pytorch_grad_cam import RandomCAM

    model, tm, x, target = _setup("resnet18")
    layers = ("layer3", "layer4")
    np.random.seed(11)
    with RandomCAM(tm, [tm.get_submodule(name) for name in layers]) as cam:
        package = cam(h.nchw(x), [ClassifierOutputTarget(int(t)) for t in target], eigen_smooth=True)
    np.random.seed(11)
    weights = [np.random.uniform(-1, 1, size=(2, channels)) for channels in (256, 512)]
    ours = _ours(jaxviz.random_cam, model, x, target, weights=weights, layer=layers, eigen_smooth=True,
                 resolution="input")
    h.assert_close(ours, package, TOL_PACKAGE32, "resnet18 random_cam")
    other = _ours(jaxviz.random_cam, model, x, target, key=jax.random.key(0), layer=layers, resolution="input")
    assert h.rel_err(other, package) > 1e-2  # the weights matter


def test_sobel_cam_equals_opencv_exactly():
    from pytorch_grad_cam.sobel_cam import sobel_cam

    images, _ = h.course_images(3)
    x = jaxviz.preprocess(images)
    rough = h.random_images((1, 37, 45, 3), 2)  # saturates: |Sobel| > 255 and clipped pixels
    for batch in (x, rough):
        ours = np.asarray(jaxviz.sobel_cam(jaxviz.load_model(), batch, np.zeros(len(batch), np.int64))) * 255
        expected = np.stack([sobel_cam(image) for image in jaxviz.deprocess(batch)])
        np.testing.assert_array_equal(np.round(ours).astype(np.uint8), expected)
        np.testing.assert_allclose(ours, expected, atol=1e-4)
