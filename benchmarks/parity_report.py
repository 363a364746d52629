"""Measured parity errors (max|jax − torch| / max|torch|) per method, float32 and float64,
plus the 1300-image agreement and side-by-side timings quoted in the issue notes.

    python -m benchmarks.parity_report [--skip-models] [--skip-1300] [--skip-timing]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jaxviz  # noqa: E402
from captum import attr as ca  # noqa: E402
from parity_tests import helpers as h  # noqa: E402


def model_errors():
    for arch in ("squeezenet1_1", "squeezenet1_0"):
        for dtype in ("float32", "float64"):
            worst = 0.0
            for kind, sd in (("pretrained", h.pretrained_state_dict(arch)), ("random", h.random_state_dict(arch, 0))):
                for size in ((224, 224), (192, 256), (227, 227), (285, 224)):
                    x = h.random_images((2, *size, 3), 0, dtype)
                    tm = h.torch_model(arch, sd, dtype)
                    with h.precision(dtype):
                        m = h.jax_model(arch, sd, dtype)
                        names = [n for n in m.layer_names if n != "output"]
                        ours = {k: np.asarray(v) for k, v in jaxviz.layer_activation(m, x, names + ["output"]).items()}
                    theirs = h.torch_layer_outputs(tm, h.nchw(x), names)
                    with torch.no_grad():
                        theirs["output"] = tm(h.nchw(x)).numpy()
                    worst = max(worst, max(h.rel_err(ours[k], theirs[k]) for k in theirs))
            print(f"model {arch} {dtype}: worst layer error over sizes/weights {worst:.2e}", flush=True)


# Where Captum itself rounds to float32, its float64 result carries float32 error; jaxviz's
# float64 is checked against a float64 PyTorch loop at 1e-9 in parity_tests instead.
CAPTUM_FLOAT32 = {
    "integrated_gradients (10 steps, noise baseline)": "  (Captum's step weights are float32)",
    "occlusion 45x45/30": "  (Captum's Occlusion returns float32)",
}


def method_errors():
    cases = {
        "saliency": (lambda m, x, t: jaxviz.saliency(m, x, t), lambda tm, x, t: ca.Saliency(tm).attribute(x, target=t)),
        "guided_backprop": (jaxviz.guided_backprop, lambda tm, x, t: ca.GuidedBackprop(tm).attribute(x, target=t)),
        "layer_gradcam f.12": (lambda m, x, t: jaxviz.layer_gradcam(m, x, t),
                               lambda tm, x, t: ca.LayerGradCam(tm, tm.features[12]).attribute(x, target=t)),
        "guided_gradcam": (lambda m, x, t: jaxviz.guided_gradcam(m, x, t),
                           lambda tm, x, t: ca.GuidedGradCam(tm, tm.features[12]).attribute(x, target=t)),
        "integrated_gradients (10 steps, noise baseline)": (
            lambda m, x, t: jaxviz.integrated_gradients(m, x, t, baselines=np.full(x.shape, 0.1, x.dtype) + 0.3 * np.sin(np.arange(x.size).reshape(x.shape)).astype(x.dtype), n_steps=10),
            lambda tm, x, t: ca.IntegratedGradients(tm).attribute(
                x, baselines=torch.full_like(x, 0.1) + 0.3 * torch.sin(torch.arange(x.numel(), dtype=x.dtype).view(x.shape[0], x.shape[2], x.shape[3], x.shape[1]).permute(0, 3, 1, 2)),
                target=t, n_steps=10)),
        "layer_conductance f.12": (lambda m, x, t: jaxviz.layer_conductance(m, x, t, layer="features.12", n_steps=10),
                                   lambda tm, x, t: ca.LayerConductance(tm, tm.features[12]).attribute(x, target=t, n_steps=10)),
        "occlusion 45x45/30": (lambda m, x, t: jaxviz.occlusion(m, x, t, sliding_window_shapes=(45, 45, 3), strides=(30, 30, 3)),
                               lambda tm, x, t: ca.Occlusion(tm).attribute(x, sliding_window_shapes=(3, 45, 45), strides=(3, 30, 30), target=t)),
    }
    for name, (ours_fn, theirs_fn) in cases.items():
        errs = []
        for dtype in ("float32", "float64"):
            with h.precision(dtype):
                m, tm, x, t = h.setup("pretrained", dtype)
                ours = np.asarray(ours_fn(m, x, t))
            theirs = h.nhwc(theirs_fn(tm, h.nchw(x).requires_grad_(), torch.from_numpy(t)))
            errs.append(h.rel_err(ours, theirs))
        print(f"{name:50s} float32 {errs[0]:.2e}  float64 {errs[1]:.2e}{CAPTUM_FLOAT32.get(name, '')}")


def agreement_1300():
    from parity_tests.test_imagenet_1300 import _load_1300

    images, labels = _load_1300()
    sd = h.pretrained_state_dict()
    m, tm = h.jax_model("squeezenet1_1", sd), h.torch_model("squeezenet1_1", sd)
    ours, theirs = [], []
    for s in range(0, 1300, 100):
        x = jaxviz.preprocess(images[s : s + 100])
        ours.append(np.asarray(m(x)).argmax(1))
        with torch.no_grad():
            theirs.append(tm(h.nchw(x)).numpy().argmax(1))
    ours, theirs = np.concatenate(ours), np.concatenate(theirs)
    print(f"1300 images: top-1 agree on {(ours == theirs).sum()}/1300; accuracy jaxviz {(ours == labels).mean():.4f}, "
          f"torch {(theirs == labels).mean():.4f}")


def median_time(fn, repeats=5):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if hasattr(out, "block_until_ready"):
            out.block_until_ready()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def timings():
    X, y = h.course_images()
    x = jaxviz.preprocess(X)
    sd = h.pretrained_state_dict()
    m, tm = h.jax_model("squeezenet1_1", sd), h.torch_model("squeezenet1_1", sd)
    xt, yt = h.nchw(x), torch.from_numpy(y)

    def torch_forward():
        with torch.no_grad():
            return tm(xt)

    pairs = {
        "forward batch 25": (lambda: m(x), torch_forward),
        "Saliency 25": (lambda: jaxviz.saliency(m, x, y), lambda: ca.Saliency(tm).attribute(xt.clone().requires_grad_(), target=yt)),
        "GuidedGradCam 25": (lambda: jaxviz.guided_gradcam(m, x, y),
                             lambda: ca.GuidedGradCam(tm, tm.features[12]).attribute(xt.clone().requires_grad_(), target=yt)),
        "IntegratedGradients n_steps=50, 25": (lambda: jaxviz.integrated_gradients(m, x, y, n_steps=50),
                                               lambda: ca.IntegratedGradients(tm).attribute(xt, target=yt, n_steps=50, internal_batch_size=125)),
    }
    for name, (ours, theirs) in pairs.items():
        repeats = 2 if "Integrated" in name else 5
        a, b = median_time(ours, repeats), median_time(theirs, repeats)
        extra = f"; {25 / a:.0f} vs {25 / b:.0f} images/s" if "forward" in name else ""
        print(f"{name:40s} jaxviz {a:.3f}s  PyTorch/Captum {b:.3f}s  ratio {b / a:.2f}{extra}")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--skip-models", action="store_true")
    p.add_argument("--skip-1300", action="store_true")
    p.add_argument("--skip-timing", action="store_true")
    args = p.parse_args()
    if not args.skip_models:
        model_errors()
    method_errors()
    if not args.skip_1300:
        agreement_1300()
    if not args.skip_timing:
        timings()


if __name__ == "__main__":
    main()
