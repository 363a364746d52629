"""``jaxviz demo --out DIR``: every figure set of the course in one command.

Saliency, guided backprop, GradCAM, guided GradCAM, Integrated Gradients, SmoothGrad and
occlusion on the course's first validation images; fooling them into a stingray; class
visualisations; style transfer with the three presets.  It is one ordinary job (resumable,
atomic) followed by the course's figure grids, composed from the job's outputs.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image

import jaxviz
from jaxviz.choices import STYLE_CONTENT_IMAGE, STYLE_PRESETS
from jaxviz.cli import batch, common
from jaxviz.cli import inputs as inputs_mod
from jaxviz.cli.methods import METHODS
from jaxviz.cli.outputs import read_records
from jaxviz.cli.plan import Job, MethodRun
from jaxviz.figures import save_grid
from jaxviz.labels import class_names

# the CAM family's figure: pytorch-grad-cam's output convention, side by side (and RISE's
# black-box map)
CAMS = (("gradcam", "GradCAM"), ("hirescam", "HiResCAM"), ("gradcam-elementwise", "GradCAM element-wise"),
        ("gradcam-plus-plus", "GradCAM++"), ("xgradcam", "XGradCAM"), ("layercam", "LayerCAM"),
        ("eigencam", "EigenCAM"), ("kpca-cam", "KPCA-CAM"), ("eigen-gradcam", "EigenGradCAM"),
        ("scorecam", "ScoreCAM"), ("ablationcam", "AblationCAM"), ("shapleycam", "ShapleyCAM (ReST)"),
        ("finercam", "FinerCAM"), ("fullgrad", "FullGrad"), ("rise", "RISE"),
        # the baselines a faithful map should beat
        ("random-cam", "RandomCAM (baseline)"), ("sobel-cam", "Sobel (baseline)"))

# Captum's other methods' figure: each method's map, side by side
CAPTUM = (("input-x-gradient", "input × gradient"), ("deconvolution", "deconvolution"), ("deeplift", "DeepLift"),
          ("deeplift-shap", "DeepLiftShap"), ("lrp", "LRP (ε, z⁺)"), ("gradient-shap", "GradientShap"),
          ("feature-ablation", "feature ablation"), ("shapley-value-sampling", "Shapley sampling"),
          ("kernel-shap", "KernelShap"), ("lime", "Lime"),
          # each image's most active unit of the last convolutional block
          ("neuron-gradient", "neuron gradient"), ("neuron-guided-backprop", "neuron guided backprop"),
          ("neuron-deconvolution", "neuron deconvolution"), ("neuron-integrated-gradients", "neuron IG"),
          ("neuron-deeplift", "neuron DeepLift"), ("neuron-gradient-shap", "neuron GradientShap"),
          # at the last convolutional block
          ("layer-gradient-x-activation", "layer grad × act"), ("internal-influence", "internal influence"),
          ("layer-integrated-gradients", "layer IG"), ("layer-conductance", "layer conductance"),
          ("layer-deeplift", "layer DeepLift"), ("layer-gradient-shap", "layer GradientShap"),
          ("layer-lrp", "layer LRP"), ("layer-feature-ablation", "layer feature ablation"),
          ("neuron-conductance", "neuron conductance"))

COURSE_CLASSES = (76, 78, 113, 366, 683)  # tarantula, tick, snail, gorilla, oboe
FOOL_TARGET = 6  # stingray, the course's target


def register(sub) -> None:
    parser = sub.add_parser(
        "demo", help="write every figure set of the course into a folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="examples:\n"
               "  jaxviz demo --out demo\n"
               "  jaxviz demo --out demo --quick      # every method once, a few iterations each\n"
               "  jaxviz demo --out demo --methods gradcam,xrai,fool   # only these rows and figures\n"
               "  JAXVIZ_SHARED=../shared jaxviz demo --out demo   # the course's images and styles\n"
               "\nWithout the course's data it uses scikit-image's photos (chelsea, coffee, astronaut, rocket)\n"
               "and says so.  Re-running finishes an interrupted demo; --force redoes it.\n",
    )
    parser.add_argument("--out", "-o", required=True, help="output folder")
    parser.add_argument("--data", metavar="DIR",
                        help="the course's data folder (default $JAXVIZ_SHARED/data): imagenet_val_25.npz, styles/")
    parser.add_argument("--images", type=int, default=5, help="how many course images (default 5)")
    parser.add_argument("--quick", action="store_true",
                        help="a few iterations per method, 2 images (its time is mostly compiling: "
                             "12 minutes on 2 cores for every method)")
    parser.add_argument("--methods", type=_method_names, metavar="NAME[,NAME...]",
                        help="only these methods (subcommand names; default every method)")
    parser.add_argument("--force", action="store_true", help="recompute everything")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress")
    common.add_model_options(parser)
    parser.set_defaults(func=run)


def _method_names(text: str) -> frozenset[str]:
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    unknown = sorted(names - set(METHODS))
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown method {', '.join(unknown) or repr(text)}: "
                                         f"choose from {', '.join(sorted(METHODS))}")
    return names


def _data_folder(args) -> Path | None:
    if args.data:
        return Path(args.data)
    shared = os.environ.get("JAXVIZ_SHARED")
    return Path(shared) / "data" if shared else None


def demo_job(args) -> tuple[Job, dict]:
    from jaxviz.models import describe

    data = _data_folder(args)
    notes = []
    n_images = 2 if args.quick else args.images
    course = data / "imagenet_val_25.npz" if data else None
    if course is not None and course.is_file():
        inputs = [str(course)]
    else:
        inputs = ["skimage:chelsea", "skimage:coffee", "skimage:astronaut", "skimage:rocket"]
        notes.append(f"the course's images (imagenet_val_25.npz) are not in {data or '$JAXVIZ_SHARED/data'}: "
                     "using scikit-image's chelsea, coffee, astronaut and rocket, with the model's top-1 targets")
    styles_folder = data / "styles" if data else None

    if styles_folder is not None and all((styles_folder / p["style"]).is_file() for p in STYLE_PRESETS.values()):
        styles, style_inputs = list(STYLE_PRESETS), [str(styles_folder / STYLE_CONTENT_IMAGE)]
    else:
        styles, style_inputs = ["skimage:coffee"], ["skimage:chelsea"]
        notes.append("the course's style images are not there: styling chelsea with coffee (scikit-image)")

    quick = args.quick
    specs = [
        ("saliency", {}), ("guided-backprop", {}), ("gradcam", {}), ("guided-gradcam", {}),
        ("integrated-gradients", {"n_steps": 8 if quick else 50}),
        ("blur-ig", {"steps": 4 if quick else 100}), ("guided-ig", {"steps": 4 if quick else 200}),
        ("xrai", {"n_steps": 4 if quick else 100}),
        ("smoothgrad", {"nt_samples": 4 if quick else 25}),
        ("occlusion", {"window": 56 if quick else 30, "stride": 56 if quick else 15}),
        ("fool", {"target": FOOL_TARGET, "learning_rate": 10.0, "max_iter": 5 if quick else 100}),
        ("class-viz", {"classes": list(COURSE_CLASSES[:2] if quick else COURSE_CLASSES),
                       "num_iterations": 5 if quick else 100}),
    ]
    segments = {"n_segments": 16 if quick else 50}
    captum_options = {
        "gradient-shap": {"n_samples": 4 if quick else 20, "stdevs": 0.1},
        "feature-ablation": segments,
        "shapley-value-sampling": {**segments, "n_samples": 2 if quick else 10},
        "kernel-shap": {**segments, "n_samples": 24 if quick else 200},
        "lime": {**segments, "n_samples": 24 if quick else 200},
        **{name: {"n_steps": 8 if quick else 50} for name in ("neuron-integrated-gradients", "internal-influence",
                                                               "layer-integrated-gradients", "layer-conductance",
                                                               "neuron-conductance")},
        **{name: {"n_samples": 4 if quick else 20, "stdevs": 0.1} for name in ("neuron-gradient-shap",
                                                                                 "layer-gradient-shap")},
    }
    specs += [(name, captum_options.get(name, {})) for name, _ in CAPTUM]
    specs.append(("evaluate", {"methods": ["saliency", "gradcam", "guided-backprop"],
                               "metrics": ["deletion", "insertion", "sparseness"] + ([] if quick else ["mprt"])}))
    wanted = args.methods or frozenset(METHODS)
    specs = [(name, opts) for name, opts in specs if name in wanted]
    runs = [MethodRun(METHODS[name], batch.method_options(METHODS[name], opts), name, METHODS[name].size)
            for name, opts in specs]
    # RISE, the black-box map beside the CAMs; FullGrad, at the input's resolution alone
    cam_options = {"rise": {"n_masks": 64 if quick else 4000}, "fullgrad": {}, "sobel-cam": {},
                   "shapleycam": {"resolution": "input", "score": "rest"}}
    runs += [MethodRun(METHODS[name], batch.method_options(METHODS[name],
                                                           cam_options.get(name, {"resolution": "input"})),
                       f"cam-{name}", METHODS[name].size) for name, _ in CAMS if name in wanted]
    style_opts = {"styles": styles, "num_iterations": 5 if quick else 200, "data": str(styles_folder or "")}
    style_run = MethodRun(METHODS["style"], batch.method_options(METHODS["style"], style_opts), "style",
                          METHODS["style"].size)
    arch = args.arch or common.DEFAULT_ARCH
    *runs, style_run = batch.resolve_for_arch(runs + [style_run], arch, None)
    if not describe(arch).style_layers:
        notes.append(f"{arch} has no style-transfer preset: no style figures")

    sources, problems = inputs_mod.collect(inputs, exclude=Path(args.out))
    sources = sources[:n_images]
    style_sources, style_problems = inputs_mod.collect(style_inputs, exclude=Path(args.out))
    # style runs over its own content image: the same job, its sources told apart by run
    with_style = bool(describe(arch).style_layers) and "style" in wanted
    job = Job(runs=runs + [style_run] * with_style, sources=sources, problems=problems + style_problems,
              out=Path(args.out), batch_size=8, force=args.force, quiet=args.quiet, arch=arch,
              weights=args.weights, run_sources={len(runs): style_sources} if with_style else {})
    class_run = next((r for r, (name, _) in zip(runs, specs) if METHODS[name].classes is not None), None)
    return job, {"notes": notes, "styles": styles, "class_run": class_run, "style_run": style_run}


def run(args) -> int:
    from jaxviz.cli import engine

    job, info = demo_job(args)
    for note in info["notes"]:
        common.progress(f"jaxviz demo: {note}", quiet=False)
    start = time.perf_counter()
    summary = engine.execute(job)
    written = compose_figures(job, info["class_run"], info["style_run"])
    if not args.quiet:
        common.progress(f"jaxviz demo: {len(written)} course figures in {job.out} "
                        f"({time.perf_counter() - start:.1f} s in all)")
        for path in written:
            common.progress(f"  {path}")
    return common.EXIT_PARTIAL if summary.exit_code else common.EXIT_OK


def _read(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def compose_figures(job: Job, class_run: MethodRun | None, style_run: MethodRun) -> list[Path]:
    """The course's grids from the job's outputs: one column per image, one row per method."""
    out = job.out
    records = read_records(out)
    names = class_names()
    written = []
    keys = [s.key for s in job.sources]
    reader = inputs_mod.ImageReader()
    originals = [np.asarray(jaxviz.deprocess(jaxviz.preprocess(reader(s), size=224)))[0] for s in job.sources]

    def row(folder, suffix):
        return [_read(out / folder / f"{k}{suffix}") for k in keys]

    def titles(folder):
        return [names[records[(folder, k)]["target"]] if (folder, k) in records else "" for k in keys]

    rows = [("image", originals), ("saliency", row("saliency", ".map.png")),
            ("guided backprop", row("guided-backprop", ".map.png")), ("GradCAM", row("gradcam", ".overlay.png")),
            ("guided GradCAM", row("guided-gradcam", ".map.png")),
            ("Integrated Gradients", row("integrated-gradients", ".map.png")),
            ("Blur IG", row("blur-ig", ".map.png")), ("Guided IG", row("guided-ig", ".map.png")),
            ("XRAI", row("xrai", ".overlay.png")),
            ("SmoothGrad", row("smoothgrad", ".map.png")), ("occlusion", row("occlusion", ".overlay.png"))]
    rows = [(t, r) for t, r in rows if all(img is not None for img in r)]
    if len(rows) > 1:
        path = out / "attribution.png"
        save_grid(path, [r for _, r in rows], row_titles=[t for t, _ in rows], col_titles=titles("saliency"))
        written.append(path)
    captum = [("image", originals)] + [(title, row(name, ".map.png")) for name, title in CAPTUM]
    captum = [(t, r) for t, r in captum if all(img is not None for img in r)]
    if len(captum) > 1:
        path = out / "captum.png"
        save_grid(path, [r for _, r in captum], row_titles=[t for t, _ in captum], col_titles=titles("saliency"))
        written.append(path)
    cams = [("image", originals)] + [(title, row(f"cam-{name}", ".overlay.png")) for name, title in CAMS]
    cams = [(t, r) for t, r in cams if all(img is not None for img in r)]
    if len(cams) > 1:
        path = out / "cams.png"
        save_grid(path, [r for _, r in cams], row_titles=[t for t, _ in cams], col_titles=titles("saliency"))
        written.append(path)
    fooled = row("fool", ".png")
    difference = row("fool", ".diff.png")
    if all(i is not None for i in fooled + difference):
        path = out / "fooling.png"
        save_grid(path, [originals, fooled, difference], row_titles=["image", "fooled: stingray", "difference ×10"])
        written.append(path)
    class_keys = [k for (folder, k) in records if folder == "class-viz"]
    classes = class_run.method.classes(class_run.options) if class_run is not None else ()
    wanted = [k for c in classes for k in class_keys if k.startswith(f"{c:03d}-")]
    images = [_read(out / "class-viz" / f"{k}.png") for k in wanted]
    if images and all(i is not None for i in images):
        path = out / "class_visualization.png"
        save_grid(path, [images], col_titles=[k.split("-", 1)[1] for k in wanted], cell=3.0)
        written.append(path)
    style_sources = job.sources_for(job.runs.index(style_run)) if style_run in job.runs else []
    style_rows, style_titles = [], []
    for source in style_sources:
        content = np.asarray(jaxviz.deprocess(jaxviz.preprocess(reader(source), size=style_run.size)))[0]
        for spec in style_run.variants():
            result = _read(out / "style" / f"{source.key}__{inputs_mod.safe_component(spec.label)}.png")
            if result is not None:
                style_rows.append([content, spec.uint8(), result])
                style_titles.append(spec.label)
    if style_rows:
        path = out / "style_transfer.png"
        save_grid(path, style_rows, row_titles=style_titles, col_titles=["content", "style", "result"], cell=3.0)
        written.append(path)
    return written
