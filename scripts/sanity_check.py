"""Adebayo et al.'s cascading randomisation figure on a pretrained network.

``sanity_check_<arch>.png``: rows = methods, columns = the trained model and each step of
cascading randomisation from the logits down (SqueezeNet: every layer; MobileNetV2: every
block), maps of one course image.  ``sanity_check_<arch>_curves.png``: each method's
similarity to its trained-model maps (Spearman of |map|, SSIM) after each step, the mean
over the images.  ``sanity_check_<arch>.json``: the numbers.

    python scripts/sanity_check.py --arch squeezenet1_1 --images 5 --out docs
"""

from __future__ import annotations

import functools
import io
import json
import re
from pathlib import Path

import jax
import numpy as np

import jaxviz
from jaxviz import figures, metrics
from jaxviz._io import atomic_write_bytes
from jaxviz.labels import class_names
from jaxviz.metrics.mprt import parameter_layers

from _common import SHARED, course_images, parser, say

WEIGHTS = {"squeezenet1_1": "squeezenet1_1_tv_fp16.npz", "mobilenet_v2": "mobilenet_v2_tv_qnnpack_fp16.npz"}


def methods(arch: str) -> dict:
    # MobileNetV2's activations are ReLU6 modules, which Captum's guided rule leaves alone
    rule = "all" if arch == "mobilenet_v2" else "modules"
    return {
        "saliency": jaxviz.saliency,
        "gradient × input": jaxviz.input_x_gradient,
        "guided backprop": functools.partial(jaxviz.guided_backprop, rule=rule),
        "GradCAM": jaxviz.gradcam,
        "guided GradCAM": functools.partial(jaxviz.guided_gradcam, rule=rule),
        "Integrated Gradients": functools.partial(jaxviz.integrated_gradients, n_steps=25),
        "SmoothGrad": functools.partial(jaxviz.smooth(jaxviz.saliency, nt_samples=10, stdevs=0.15),
                                        key=jax.random.key(0)),
    }


def steps(model) -> tuple:
    """One step per layer, or per block where a network has more than 40 layers (the
    layers of ``features.17`` together)."""
    layers = tuple(reversed(parameter_layers(model)))
    if len(layers) <= 40:
        return layers
    groups: dict[str, list[str]] = {}
    for name in layers:
        block = re.match(r"(features\.\d+|classifier)", name)
        groups.setdefault(block.group(1) if block else name, []).append(name)
    return tuple(tuple(g) for g in groups.values())


def step_name(step) -> str:
    if isinstance(step, str):
        return step
    return re.match(r"(features\.\d+|classifier)", step[0]).group(1) if len(step) > 1 else step[0]


def curves_png(result: dict, names: list[str]) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4))
    FigureCanvasAgg(fig)
    for ax, measure in zip(fig.subplots(1, 2), ("spearman_abs", "ssim")):
        for method, scores in result.items():
            ax.plot(range(len(names) + 1), scores[measure], marker=".", label=method)
        ax.set_xticks(range(len(names) + 1), ["trained"] + names, rotation=90, fontsize=6)
        ax.set_ylim(-0.2, 1.05)
        ax.set_title({"spearman_abs": "Spearman rank correlation of |map|", "ssim": "SSIM"}[measure])
    fig.axes[0].legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def main() -> None:
    p = parser(__doc__, "sanity_check")
    p.add_argument("--arch", default="squeezenet1_1", choices=sorted(WEIGHTS))
    p.add_argument("--images", type=int, default=5)
    args = p.parse_args()
    model = jaxviz.load_model(args.arch, weights=args.weights or SHARED / "weights" / WEIGHTS[args.arch])
    X, y = course_images(args.images)
    x = jaxviz.preprocess(X)
    randomisation = steps(model)
    names = [step_name(s) for s in randomisation]
    shown = figures.randomisation_columns(len(names))
    shown_maps, result = {}, {}
    for label, method in methods(args.arch).items():
        say(f"{label}: {len(names)} steps ...")
        r = metrics.mprt(model, x, y, method, key=jax.random.key(0), layers=randomisation,
                         measures=("spearman_abs", "ssim"), keep_maps=True)
        result[label] = {m: np.nanmean(np.asarray(v), axis=1).round(4).tolist() for m, v in r.similarity.items()}
        shown_maps[label] = np.asarray(r.maps)[shown, 0]
    out = Path(args.out)
    titles = ["trained" if i == 0 else f"… {names[i - 1]}" for i in shown]
    figure = figures.randomisation_png(X[0], shown_maps, titles, caption=class_names()[y[0]])
    atomic_write_bytes(out / f"sanity_check_{args.arch}.png", figure)
    atomic_write_bytes(out / f"sanity_check_{args.arch}_curves.png", curves_png(result, names))
    atomic_write_bytes(out / f"sanity_check_{args.arch}.json",
                       json.dumps({"arch": args.arch, "images": args.images, "steps": names, "similarity": result},
                                  indent=1).encode())
    say(f"wrote {out}/sanity_check_{args.arch}.png, _curves.png and .json")


if __name__ == "__main__":
    main()
