"""jaxviz.metrics against their references, float64, random weights with random BatchNorm
statistics, two random images at a small size, the same perturbation draws on both sides.

* deletion / insertion: a PyTorch port of RISE's ``CausalMetric`` written here from the
  paper's code (one image at a time, pixels moved ``step`` at a time in the map's order,
  softmax probability, the zero and the ``gkern`` blur substrates, its ``auc``).  Its
  order is numpy's stable ascending argsort reversed (RISE's ``np.argsort`` is not
  stable: equal values there fall in an unspecified order).
* infidelity, sensitivity_max: Captum's, given jaxviz's perturbations through its
  ``perturb_func``.
* sparseness, complexity: Quantus' (numpy, float64), each map normalised by its own
  maximum (Quantus' default divides by the batch's).
* completeness: the definition in PyTorch (float64), and Quantus' own score difference
  (read through its ``output_func``; Quantus runs models in float32 — ``torch.Tensor(x)``
  — so that comparison is float32's).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from captum import attr as ca
from captum import metrics as cm

import jaxviz
from parity_tests import helpers as h

ARCHS = ["squeezenet1_1", "resnet18"]
TOL = h.ATTR_TOL["float64"]


def _saliency_maps(arch):
    model, _, x, target = h.random_case(arch)
    with h.precision("float64"):
        return np.asarray(jaxviz.saliency(model, x, target, absolute=False))


# ------------------------------------------------------------------ deletion and insertion


def _rise_blur(img):
    klen, nsig = 11, 5
    impulse = np.zeros((klen, klen))
    impulse[klen // 2, klen // 2] = 1
    k = scipy.ndimage.gaussian_filter(impulse, nsig)
    kern = np.zeros((3, 3, klen, klen))
    for i in range(3):
        kern[i, i] = k
    return F.conv2d(img, torch.from_numpy(kern), padding=klen // 2)


def _rise_curve(tm, img, explanation, mode, step, substrate_fn, c):
    """RISE's ``CausalMetric.single_run`` for one (1, 3, H, W) image and an (H, W) map."""
    _, ch, height, width = img.shape
    hw = height * width
    n_steps = (hw + step - 1) // step
    start, finish = (img.clone(), substrate_fn(img)) if mode == "del" else (substrate_fn(img), img.clone())
    scores = np.empty(n_steps + 1)
    order = np.flip(np.argsort(explanation.reshape(-1, hw), axis=1, kind="stable"), axis=-1)
    for i in range(n_steps + 1):
        with torch.no_grad():
            scores[i] = torch.softmax(tm(start), dim=1)[0, c].item()
        if i < n_steps:
            coords = torch.from_numpy(order[:, step * i : step * (i + 1)].copy())
            flat, source = start.reshape(1, ch, hw), finish.reshape(1, ch, hw)
            flat[0, :, coords] = source[0, :, coords]
    auc = (scores.sum() - scores[0] / 2 - scores[-1] / 2) / (scores.shape[0] - 1)
    return auc, scores


@pytest.mark.float64_only
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("ties", [False, True], ids=["saliency", "tied"])
def test_deletion_and_insertion_equal_rises_causal_metric(arch, ties):
    """Steps of 100 pixels (the last one shorter); ``tied``: the map rounded to 3 levels,
    so most pixels share their value with others and the order of equal values decides."""
    model, tm, x, target = h.random_case(arch)
    maps = _saliency_maps(arch).sum(-1)
    if ties:
        maps = np.round(maps / np.abs(maps).max() * 1.5)
        assert len(np.unique(maps)) <= 5
    with h.precision("float64"):
        ours = {"del": jaxviz.metrics.deletion(model, x, target, maps, step=100, states_per_eval=7),
                "ins": jaxviz.metrics.insertion(model, x, target, maps, step=100)}
    substrates = {"del": torch.zeros_like, "ins": _rise_blur}
    for mode, result in ours.items():
        for i in range(x.shape[0]):
            auc, curve = _rise_curve(tm, h.nchw(x[i : i + 1]), maps[i], mode, 100, substrates[mode], target[i])
            h.assert_close(result.probabilities[i], curve, TOL, f"{arch} {mode} curve")
            h.assert_close(result.auc[i], auc, TOL, f"{arch} {mode} auc")
        assert result.probabilities.shape == (2, -(-x.shape[1] * x.shape[2] // 100) + 1)


# ------------------------------------------------------------------ Captum's infidelity and sensitivity


def _interleaved(per_sample):
    """(S, N, H, W, C) → Captum's (N·S, C, H, W) order (``repeat_interleave``: image-major)."""
    s, n = per_sample.shape[:2]
    return h.nchw(np.swapaxes(per_sample, 0, 1).reshape((n * s,) + per_sample.shape[2:]))


@pytest.mark.float64_only
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captums_with_the_same_perturbations(arch, normalize):
    model, tm, x, target = h.random_case(arch)
    a = _saliency_maps(arch)
    noise = h.random_images((5,) + x.shape, 21, "float64") * 0.05
    with h.precision("float64"):
        ours = jaxviz.metrics.infidelity(model, x, target, a, perturbations=noise, n_perturb_samples=5,
                                         normalize=normalize, samples_per_eval=2)
    perturbation = _interleaved(noise)
    theirs = cm.infidelity(tm, lambda inputs: (perturbation, inputs - perturbation), h.nchw(x), h.nchw(a),
                           target=torch.from_numpy(target), n_perturb_samples=5, normalize=normalize)
    h.assert_close(ours, theirs.numpy(), TOL, f"{arch} infidelity")


@pytest.mark.float64_only
@pytest.mark.parametrize("arch", ARCHS)
def test_sensitivity_max_equals_captums_with_the_same_perturbations(arch):
    model, tm, x, target = h.random_case(arch)
    delta = (h.random_images((4,) + x.shape, 22, "float64") * 0.02).clip(-0.02, 0.02)
    with h.precision("float64"):
        ours = jaxviz.metrics.sensitivity_max(model, x, target, jaxviz.saliency, perturbations=delta,
                                              n_perturb_samples=4, samples_per_eval=3)
    moved = _interleaved(delta)
    theirs = cm.sensitivity_max(ca.Saliency(tm).attribute, h.nchw(x).requires_grad_(),
                                perturb_func=lambda inputs: inputs + moved, n_perturb_samples=4,
                                target=torch.from_numpy(target))
    h.assert_close(ours, theirs.detach().numpy(), TOL, f"{arch} sensitivity_max")


# ------------------------------------------------------------------ Quantus


@pytest.mark.float64_only
def test_sparseness_and_complexity_equal_quantus():
    import quantus

    _, _, x, target = h.random_case("resnet18")
    a = _saliency_maps("resnet18")
    per_image = {"normalise_axes": (1, 2, 3)}
    for ours_fn, theirs_cls in ((jaxviz.metrics.sparseness, quantus.Sparseness),
                                (jaxviz.metrics.complexity, quantus.Complexity)):
        for absolute in (True, False):
            metric = theirs_cls(abs=absolute, normalise_func_kwargs=per_image, disable_warnings=True)
            theirs = metric(model=None, x_batch=h.nchw(x).numpy(), y_batch=target,
                            a_batch=np.ascontiguousarray(a.sum(-1)[:, None]), channel_first=True)
            with h.precision("float64"):
                ours = jaxviz.metrics.complexity(a.sum(-1), absolute=absolute) if theirs_cls is quantus.Complexity \
                    else ours_fn(a.sum(-1), absolute=absolute)
            if not absolute and theirs_cls is quantus.Complexity:  # log of negative shares: NaN in both
                assert np.isnan(theirs).all() == np.isnan(np.asarray(ours)).all()
                continue
            h.assert_close(ours, np.asarray(theirs), TOL, f"{theirs_cls.__name__} abs={absolute}")


@pytest.mark.float64_only
def test_completeness_is_the_residual_quantus_compares():
    import quantus

    model, tm, x, target = h.random_case("resnet18")
    a = _saliency_maps("resnet18")
    with h.precision("float64"):
        ours = np.asarray(jaxviz.metrics.completeness(model, x, target, a))
    black = torch.from_numpy(np.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape).copy())
    with torch.no_grad():
        rows = torch.arange(2)
        drop = (tm(h.nchw(x))[rows, target] - tm(h.nchw(black.numpy()))[rows, target]).numpy()
    h.assert_close(ours, a.reshape(2, -1).sum(1) - drop, TOL, "completeness vs its definition")

    seen = []
    metric = quantus.Completeness(normalise=False, disable_warnings=True,
                                  output_func=lambda d: seen.append(np.asarray(d, np.float64)) or d)
    tm32 = h.torch_model("resnet18", h.random_state_dict("resnet18", 3))
    equal = metric(model=tm32, x_batch=h.nchw(x).numpy().astype(np.float32), y_batch=target,
                   a_batch=h.nchw(a).numpy(), channel_first=True, device="cpu")
    assert not any(equal)  # exact equality of floats: the residual below is what matters
    h.assert_close(ours, a.reshape(2, -1).sum(1) - seen[0], 1e-4, "completeness vs Quantus' float32 scores")


# ------------------------------------------------------------------ randomisation


def test_similarity_measures_equal_scipy_and_scikit_image():
    """Spearman with tied values (scipy's average ranks), Pearson, and SSIM on 2-D maps
    (scikit-image's defaults; data range of both maps, as Quantus sets it)."""
    import skimage.metrics
    from scipy import stats

    rng = np.random.default_rng(4)
    a = rng.normal(size=(3, 20, 23))
    b = a + rng.normal(size=a.shape)
    b[0, :5] = 0.0
    a[1, :4] = 1.0
    a[2] = np.round(a[2])
    with h.precision("float64"):
        sim = jaxviz.metrics.similarity
        ours = {f: np.asarray(getattr(sim, f)(a, b)) for f in ("spearman", "spearman_abs", "pearson", "ssim")}
    for i in range(3):
        lo, hi = min(a[i].min(), b[i].min()), max(a[i].max(), b[i].max())
        theirs = {"spearman": stats.spearmanr(a[i].ravel(), b[i].ravel())[0],
                  "spearman_abs": stats.spearmanr(np.abs(a[i]).ravel(), np.abs(b[i]).ravel())[0],
                  "pearson": stats.pearsonr(a[i].ravel(), b[i].ravel())[0],
                  "ssim": skimage.metrics.structural_similarity(a[i], b[i], data_range=hi - lo)}
        for name, value in theirs.items():
            assert abs(ours[name][i] - value) <= 1e-12, (name, i, ours[name][i], value)


def test_float32_ranks_of_224_maps_equal_scipys_exactly():
    """The ranks behind Spearman, in float32 at 224×224 with ties (rounded values, −0 and
    +0, an all-zero map): scipy's average ranks exactly (sums of places in float32 would
    be off by up to 0.5 here)."""
    from scipy import stats

    rng = np.random.default_rng(5)
    maps = np.round(rng.normal(size=(3, 224 * 224)) * 4).astype(np.float32)
    maps[1, ::2] = -0.0
    maps[2] = 0.0
    ours = np.asarray(jax.jit(jaxviz.metrics.similarity._ranks)(jnp.asarray(maps)))
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, stats.rankdata(maps, axis=1))


def test_hog_features_equal_scikit_images():
    """scikit-image's ``hog`` defaults on 40×51 maps (a partial cell cut off, a zero band).
    Its cell sums are float32 (``cdef float total`` in its Cython) even for float64 maps:
    its own float32 and float64 results differ by 1.1e-7, and jaxviz's float64 features
    are 1.1e-7 from its float64 ones; held to 1e-6."""
    import skimage.feature

    rng = np.random.default_rng(0)
    a = rng.normal(size=(2, 40, 51))
    a[1, :5] = 0.0
    with h.precision("float64"):
        ours = np.asarray(jaxviz.metrics.similarity.hog_features(a))
    for i in range(2):
        h.assert_close(ours[i], skimage.feature.hog(a[i]), 1e-6, f"hog {i}")


def _quantus_randomised_layers(tm, arch):
    """The layers Quantus' cascading MPRT randomises (its generator, run here as it runs
    it: ``torch.manual_seed(43)`` and ``reset_parameters()`` per module, top down), as
    jaxviz parameters, and their order."""
    from quantus.helpers.model.pytorch_model import PyTorchModel

    names, random_model = [], None
    for name, random_model in PyTorchModel(tm, channel_first=True).get_random_layer_generator("top_down", 42):
        names.append(name)
    state = {k: v.detach().numpy() for k, v in random_model.state_dict().items() if "num_batches" not in k}
    with h.precision("float64"):
        return jaxviz.from_torchvision(state, arch, dtype=np.float64).params, names


@pytest.mark.float64_only
@pytest.mark.parametrize("arch", ARCHS)
def test_cascading_mprt_equals_quantus(arch):
    """Quantus' MPRT (cascading, Spearman of the magnitudes, each map normalised by its own
    maximum) explaining with Captum's ``Saliency`` in float64, and jaxviz's with the same
    random layers: the same layer order and the same similarity at every step."""
    import quantus

    model, tm, x, target = h.random_case(arch)
    randomised, names = _quantus_randomised_layers(tm, arch)

    def explain(model, inputs, targets, **kwargs):
        inputs = torch.from_numpy(np.asarray(inputs, np.float64)).requires_grad_()
        return ca.Saliency(model).attribute(inputs, target=torch.from_numpy(np.asarray(targets))).sum(1).numpy()

    metric = quantus.MPRT(layer_order="top_down", normalise_func_kwargs={"normalise_axes": (1, 2, 3)},
                          disable_warnings=True)
    theirs = metric(model=tm, x_batch=h.nchw(x).numpy(), y_batch=target, a_batch=None, explain_func=explain,
                    channel_first=True, device="cpu")
    with h.precision("float64"):
        ours = jaxviz.metrics.mprt(model, x, target, jaxviz.saliency, randomised=randomised,
                                   measures=("spearman_abs",))
    assert list(ours.layers) == names == list(theirs)[1:]
    expected = np.array([theirs["original"]] + [theirs[n] for n in names])
    ours = np.asarray(ours.similarity["spearman_abs"])
    # a random layer can silence the network (all-zero maps): NaN in both, and rare
    undefined = np.isnan(expected)
    assert (np.isnan(ours) == undefined).all() and undefined.mean() < 0.25, undefined.mean()
    h.assert_close(ours[~undefined], expected[~undefined], TOL, f"{arch} mprt")
    assert expected[-1].max() < 0.9  # the test sees randomisation


@pytest.mark.float64_only
def test_random_logit_equals_quantus_given_its_other_classes():
    """Quantus' RandomLogit (Spearman; its seed's off-classes, drawn again here as it draws
    them) and jaxviz's with those classes."""
    import quantus

    model, tm, x, target = h.random_case("resnet18")
    np.random.seed(42)
    others = np.delete(np.tile(np.arange(1000), (2, 1)), target + 1000 * np.arange(2)).reshape(2, -1)[
        np.arange(2), np.random.randint(0, 999, 2)]

    def explain(model, inputs, targets, **kwargs):
        inputs = torch.from_numpy(np.asarray(inputs, np.float64)).requires_grad_()
        return ca.Saliency(model).attribute(inputs, target=torch.from_numpy(np.asarray(targets))).sum(1).numpy()

    metric = quantus.RandomLogit(num_classes=1000, similarity_func=quantus.similarity_func.correlation_spearman,
                                 normalise_func_kwargs={"normalise_axes": (1, 2, 3)}, disable_warnings=True)
    theirs = metric(model=tm, x_batch=h.nchw(x).numpy(), y_batch=target, a_batch=None, explain_func=explain,
                    channel_first=True, device="cpu")
    with h.precision("float64"):
        ours = jaxviz.metrics.random_logit(model, x, target, jaxviz.saliency, other_targets=others,
                                           measure="spearman")
    assert not np.isin(others, target).any()
    h.assert_close(ours, np.asarray(theirs), TOL, "random_logit")


# ------------------------------------------------------------------ pytorch-grad-cam


@pytest.mark.float64_only
@pytest.mark.parametrize("score", ["probability", "logit"])
def test_confidence_metrics_equal_pytorch_grad_cams(score):
    """``CamMultImageConfidenceChange``, ``DropInConfidence`` and ``IncreaseInConfidence`` on
    GradCAM maps at the input's size; the package rounds its scores to float32
    (``np.float32(scores)``), so the change is compared to float32's rounding of the
    scores."""
    from pytorch_grad_cam.metrics.cam_mult_image import (CamMultImageConfidenceChange, DropInConfidence,
                                                         IncreaseInConfidence)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

    model, tm, x, target = h.random_case("resnet18")
    with h.precision("float64"):
        maps = np.asarray(jaxviz.gradcam(model, x, target, layer="layer3", resolution="input"))
        ours = {name: np.asarray(getattr(jaxviz.metrics, name)(model, x, target, maps, score=score))
                for name in ("drop_in_confidence", "increase_in_confidence")}
        change = np.asarray(jaxviz.metrics._confidence.confidence_change(model, x, target, maps, score=score))
    kind = ClassifierOutputSoftmaxTarget if score == "probability" else ClassifierOutputTarget
    targets = [kind(int(t)) for t in target]
    args = (h.nchw(x), maps, targets, tm)
    theirs_change = CamMultImageConfidenceChange()(*args)
    with torch.no_grad():
        before = np.array([t(o).item() for t, o in zip(targets, tm(h.nchw(x)))])
    h.assert_close(change, theirs_change, 4 * np.finfo(np.float32).eps * np.abs(before).max()
                   / np.abs(theirs_change).max(), f"confidence change ({score})")
    np.testing.assert_array_equal(ours["increase_in_confidence"], IncreaseInConfidence()(*args))
    np.testing.assert_allclose(ours["drop_in_confidence"], DropInConfidence()(*args),
                               atol=4 * np.finfo(np.float32).eps * np.abs(before).max())
    assert np.abs(theirs_change).min() > 0


def _road_setup():
    """ResNet-18 (random weights), its GradCAM maps at the input's size, float32 and
    float64."""
    model, tm, x, target = h.random_case("resnet18")
    with h.precision("float64"):
        maps = np.asarray(jaxviz.gradcam(model, x, target, layer="layer3", resolution="input"))
    return model, tm, x, target, maps


def _road_imputed_pixels(maps, percentile, lerf):
    """pytorch-grad-cam's choice (``RemoveMostRelevantFirst``): the pixels at or above the
    map's percentile (of 1 − map for LeRF), as (N, H, W) booleans."""
    from pytorch_grad_cam.metrics.perturbation_confidence import RemoveLeastRelevantFirst, RemoveMostRelevantFirst

    seen = []
    remove = (RemoveLeastRelevantFirst if lerf else RemoveMostRelevantFirst)(
        percentile, lambda img, keep: seen.append(keep.numpy() == 0) or img)
    for m in maps:
        remove(torch.zeros(1), torch.from_numpy(m))
    return np.stack(seen)


def _road_solve(img, unknown):
    """The package's imputation (``NoisyLinearImputer``'s system and sparse solve) of one
    (H, W, C) image, float64, before its cast to float32 and its noise."""
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer, neighbors_weights
    from scipy.sparse import csc_matrix
    from scipy.sparse.linalg import spsolve

    a, b = NoisyLinearImputer.setup_sparse_system((~unknown).astype(np.float64), img.transpose(2, 0, 1),
                                                  neighbors_weights)
    filled = img.reshape(-1, img.shape[-1]).copy()
    filled[np.flatnonzero(unknown.ravel())] = spsolve(csc_matrix(a), b)
    return filled.reshape(img.shape)


@pytest.mark.float64_only
def test_road_imputation_and_scores_equal_the_packages_float64():
    """ROAD's pieces, float64: the imputed images against the package's own system and
    sparse solve (1e-9; the package casts its solution to float32 before adding noise),
    and the MoRF / LeRF logit changes (``ClassifierOutputTarget``) built from them with the
    same noise draws, scored by the float64 torch model (the package rounds scores to
    float32: ``np.float32(scores)``)."""
    from jaxviz.metrics.road import impute

    model, tm, x, target, maps = _road_setup()
    percentiles = (20, 50, 90)
    draws = h.random_images((2, len(percentiles)) + x.shape, 29, "float64")
    with h.precision("float64"):
        ours = jaxviz.metrics.road(model, x, target, maps, percentiles=percentiles, draws=tuple(draws),
                                   score="logit")
    rows = np.arange(len(x))
    with torch.no_grad():
        before = tm(h.nchw(x)).numpy()[rows, target]
    for o, lerf in enumerate((False, True)):
        changes = []
        for p, percentile in enumerate(percentiles):
            unknown = _road_imputed_pixels(maps, percentile, lerf)
            solved = np.stack([_road_solve(img, u) for img, u in zip(x, unknown)])
            with h.precision("float64"):
                imputed = np.asarray(impute(x, unknown))
            h.assert_close(imputed, solved, TOL, f"imputation at {percentile} ({'lerf' if lerf else 'morf'})")
            noisy = solved + np.where(unknown[..., None], 0.01 * draws[o, p], 0)
            with torch.no_grad():
                after = tm(h.nchw(noisy)).numpy()[rows, target]
            changes.append(after - before)
        h.assert_close(ours.lerf if lerf else ours.morf, np.stack(changes, 1), TOL, "road changes")
    morf, lerf = np.asarray(ours.morf), np.asarray(ours.lerf)
    h.assert_close(ours.score, (lerf.mean(1) - morf.mean(1)) / 2, 1e-15, "combined")


def test_road_combined_equals_pytorch_grad_cams_with_its_own_draws():
    """``ROADCombined`` itself (float32, its solve cast to float32, ``torch.randn_like`` noise):
    its draws replayed from the same seed in the order it makes them (LeRF then MoRF, each
    percentile, each image: (C, imputed pixels)) and handed to jaxviz in float32; softmax
    scores (``ClassifierOutputSoftmaxTarget``, the package's tutorial); the float32
    criterion (jaxviz's float32 conjugate gradients stop at a 1e-6 residual)."""
    from pytorch_grad_cam.metrics.road import ROADCombined
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    _, _, x, target, maps = _road_setup()
    sd = h.random_state_dict("resnet18", 3)
    model, tm = h.jax_model("resnet18", sd), h.torch_model("resnet18", sd)
    x, maps = x.astype(np.float32), maps.astype(np.float32)
    percentiles = [20, 50, 80]
    torch.manual_seed(7)
    draws = {}
    for lerf in (True, False):
        drawn = np.zeros((len(percentiles),) + x.shape, np.float32)
        for p, percentile in enumerate(percentiles):
            for i, unknown in enumerate(_road_imputed_pixels(maps, percentile, lerf)):
                drawn[p, i][unknown] = torch.randn(x.shape[-1], int(unknown.sum())).numpy().T
        draws[lerf] = drawn
    torch.manual_seed(7)
    theirs = ROADCombined(percentiles=percentiles)(h.nchw(x), maps, [ClassifierOutputSoftmaxTarget(int(t))
                                                                     for t in target], tm)
    ours = jaxviz.metrics.road(model, x, target, maps, percentiles=percentiles, draws=(draws[False], draws[True]))
    assert np.abs(theirs).min() > 0
    h.assert_close(ours.score, theirs, h.ATTR_TOL["float32"], "ROADCombined")


def _quantus_saliency(model, inputs, targets, **kwargs):
    inputs = torch.from_numpy(np.asarray(inputs, np.float64)).requires_grad_()
    return ca.Saliency(model).attribute(inputs, target=torch.from_numpy(np.asarray(targets))).numpy()


@pytest.mark.float64_only
@pytest.mark.parametrize("name", ["avg_sensitivity", "local_lipschitz_estimate"])
def test_robustness_metrics_equal_quantus_with_the_same_perturbations(name):
    """Quantus' AvgSensitivity and LocalLipschitzEstimate explaining with Captum's
    ``Saliency`` in float64, their ``perturb_func`` handing out jaxviz's perturbations one
    sample at a time."""
    import quantus

    model, tm, x, target = h.random_case("resnet18")
    delta = h.random_images((3,) + x.shape, 23, "float64") * 0.1
    steps = iter(delta)

    def perturb(arr, indices, **kwargs):
        return arr + h.nchw(next(steps)).numpy().reshape(arr.shape)

    metric = {"avg_sensitivity": quantus.AvgSensitivity, "local_lipschitz_estimate": quantus.LocalLipschitzEstimate}[
        name](nr_samples=3, perturb_func=perturb, normalise_func_kwargs={"normalise_axes": (1, 2, 3)},
              disable_warnings=True)
    theirs = metric(model=tm, x_batch=h.nchw(x).numpy(), y_batch=target, a_batch=None,
                    explain_func=_quantus_saliency, channel_first=True, device="cpu")
    with h.precision("float64"):
        ours = getattr(jaxviz.metrics, name)(model, x, target, jaxviz.saliency, perturbations=delta,
                                             n_perturb_samples=3, samples_per_eval=2)
    h.assert_close(ours, np.asarray(theirs), TOL, name)


def _nchw_to_nhwc_index(index, shape):
    """Element indices of an image flattened in NCHW order → in NHWC order."""
    h_, w_, c_ = shape
    c, rest = np.divmod(index, h_ * w_)
    return rest * c_ + c


@pytest.mark.float64_only
def test_pixel_flipping_and_faithfulness_correlation_equal_quantus():
    """Quantus' PixelFlipping (per-element attributions, no two equal: its unstable sort
    decides nothing; 172 elements a step, a divisor of H·W as it asks) and
    FaithfulnessCorrelation (its own subsets, read from its perturbation function and given
    to jaxviz in NHWC order).  Quantus runs the model in float32 (``torch.Tensor(x)``):
    compared at the float32 criterion."""
    import quantus

    model, _, x, target = h.random_case("resnet18")
    tm32 = h.torch_model("resnet18", h.random_state_dict("resnet18", 3))
    a = _saliency_maps("resnet18")
    assert len(np.unique(a)) == a.size
    per_image = {"normalise_axes": (1, 2, 3)}
    common = dict(model=tm32, x_batch=h.nchw(x).numpy(), y_batch=target, a_batch=h.nchw(a).numpy(),
                  channel_first=True, device="cpu")
    flips = quantus.PixelFlipping(features_in_step=172, normalise_func_kwargs=per_image,
                                  disable_warnings=True)(**common)
    drawn = []

    def recorded(arr, indices, **kwargs):  # Quantus' own perturbation, its subsets kept
        drawn.append(np.array(indices))
        return quantus.functions.perturb_func.batch_baseline_replacement_by_indices(arr, indices, **kwargs)

    correlation = quantus.FaithfulnessCorrelation(nr_runs=12, subset_size=60, normalise_func_kwargs=per_image,
                                                  perturb_func=recorded, return_aggregate=False,
                                                  disable_warnings=True)(**common)
    drawn = np.stack(drawn)
    with h.precision("float64"):
        curve = jaxviz.metrics.pixel_flipping(model, x, target, a, features_in_step=172)
        ours = jaxviz.metrics.faithfulness_correlation(model, x, target, a, n_runs=12, subset_size=60,
                                                       subsets=_nchw_to_nhwc_index(drawn, x.shape[1:]))
    tol = h.ATTR_TOL["float32"]
    h.assert_close(curve.probabilities, np.asarray(flips), tol, "pixel flipping")
    h.assert_close(ours, np.asarray(correlation), tol, "faithfulness correlation")


@pytest.mark.float64_only
@pytest.mark.parametrize("order", ["morf", "lerf"])
def test_region_perturbation_equals_quantus(order):
    """8×8 squares on a 40×43 image (Quantus pads the width by 2 before and 3 after), 12
    regions; per-element attributions with no two square sums equal.  Quantus runs the model
    in float32: the float32 criterion."""
    import quantus

    model, _, x, target = h.random_case("resnet18")
    tm32 = h.torch_model("resnet18", h.random_state_dict("resnet18", 3))
    a = _saliency_maps("resnet18")
    theirs = quantus.RegionPerturbation(patch_size=8, order=order, regions_evaluation=12,
                                        normalise_func_kwargs={"normalise_axes": (1, 2, 3)}, disable_warnings=True)(
        model=tm32, x_batch=h.nchw(x).numpy(), y_batch=target, a_batch=h.nchw(a).numpy(), channel_first=True,
        device="cpu")
    with h.precision("float64"):
        ours = jaxviz.metrics.region_perturbation(model, x, target, a, patch_size=8, order=order,
                                                  regions_evaluation=12)
    h.assert_close(ours, np.asarray(theirs), h.ATTR_TOL["float32"], f"region perturbation {order}")


@pytest.mark.float64_only
def test_monotonicity_correlation_equals_quantus_given_its_values():
    """Quantus' MonotonicityCorrelation (172 elements a group, 3 samples each, its uniform
    baseline values read from its perturbation function and given to jaxviz); per-element
    attributions with no two equal.  Quantus runs the model in float32: the float32
    criterion."""
    import quantus

    model, _, x, target = h.random_case("resnet18")
    tm32 = h.torch_model("resnet18", h.random_state_dict("resnet18", 3))
    a = _saliency_maps("resnet18")
    values = []

    def recorded(arr, indices, **kwargs):
        out = quantus.functions.perturb_func.batch_baseline_replacement_by_indices(arr, indices, **kwargs)
        values.append(out[np.arange(len(out)), indices[:, 0]])
        return out

    theirs = quantus.MonotonicityCorrelation(nr_samples=3, features_in_step=172, perturb_func=recorded,
                                             normalise_func_kwargs={"normalise_axes": (1, 2, 3)},
                                             disable_warnings=True)(
        model=tm32, x_batch=h.nchw(x).numpy(), y_batch=target, a_batch=h.nchw(a).numpy(), channel_first=True,
        device="cpu")
    groups = x[0].size // 172
    values = np.array(values).reshape(groups, 3, 2)
    with h.precision("float64"):
        ours = jaxviz.metrics.monotonicity_correlation(model, x, target, a, values=values, features_in_step=172,
                                                       n_samples=3)
    h.assert_close(ours, np.asarray(theirs), h.ATTR_TOL["float32"], "monotonicity correlation")
