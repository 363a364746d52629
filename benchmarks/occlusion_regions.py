"""#20's receptive-field saving for occlusion, measured: W5 (5 course images at 224, window
15×15×3, stride 8; pretrained SqueezeNet 1.1, or MobileNetV2 with ``--arch mobilenet_v2``)
with ``regions=True`` (each occluded image's layers below a cut on a crop around its
window), ``regions=False`` (every occluded image whole) and Captum's Occlusion at
``perturbations_per_eval`` 4 (its fastest in the harness's sweep of 1–16,
cpu-2cores.md), alternating in one process; medians and spreads of ``REPEATS``, the first
(compiling) call of each jaxviz setting reported apart, with the plan's own time.

    PYTHONPATH=. python -m benchmarks.occlusion_regions [REPEATS] [--arch mobilenet_v2]
"""

from __future__ import annotations

import statistics
import sys
import time

import numpy as np

import jaxviz
from benchmarks.run import SHARED, course_images, nchw, pretrained_pair
from jaxviz.attribution import _regions

WINDOW, STRIDES = (15, 15, 3), (8, 8, 3)
WEIGHTS = {"squeezenet1_1": "squeezenet1_1_tv_fp16.npz", "mobilenet_v2": "mobilenet_v2_tv_qnnpack_fp16.npz"}


def main(repeats: int = 3, arch: str = "squeezenet1_1") -> None:
    from captum.attr import Occlusion

    model, tm = pretrained_pair(arch, SHARED / "weights" / WEIGHTS[arch])
    images, labels = course_images(5)
    x = jaxviz.preprocess(images)
    xt, yt = nchw(x), labels.tolist()

    start = time.perf_counter()
    plan = _regions.window_plan(model, x.shape[1:], WINDOW, STRIDES)
    print(f"plan: {plan.layer}, crop {plan.rows.crop}×{plan.cols.crop}, block {plan.rows.block}×{plan.cols.block}, "
          f"modelled cost {plan.cost:.3f}, planned in {time.perf_counter() - start:.2f} s (its first call, compiling its programs)")

    runs = {
        "jaxviz regions": lambda: np.asarray(jaxviz.occlusion(model, x, labels, sliding_window_shapes=WINDOW,
                                                              strides=STRIDES)),
        "jaxviz whole images": lambda: np.asarray(jaxviz.occlusion(model, x, labels, sliding_window_shapes=WINDOW,
                                                                   strides=STRIDES, regions=False)),
        "Captum, perturbations_per_eval 4": lambda: Occlusion(tm).attribute(
            xt, sliding_window_shapes=(3, 15, 15), strides=(3, 8, 8), target=yt, perturbations_per_eval=4).numpy(),
    }
    for name in ("jaxviz regions", "jaxviz whole images"):
        start = time.perf_counter()
        runs[name]()
        print(f"{name}: first call {time.perf_counter() - start:.1f} s")
    a, b = runs["jaxviz regions"](), runs["jaxviz whole images"]()
    print(f"regions against whole images: max |difference| {np.abs(a - b).max():.2e} (max |map| {np.abs(b).max():.3f})")
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    captum = times["Captum, perturbations_per_eval 4"]
    for name, ts in times.items():
        ratios = [c / t for c, t in zip(captum, ts)]
        print(f"{name}: {statistics.median(ts):.2f} s ({min(ts):.2f}–{max(ts):.2f}); Captum / this per repeat "
              f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    args = sys.argv[1:]
    arch = args[args.index("--arch") + 1] if "--arch" in args else "squeezenet1_1"
    numbers = [a for a in args if a.isdigit()]
    main(int(numbers[0]) if numbers else 3, arch)
