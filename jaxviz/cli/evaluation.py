"""The ``evaluate`` subcommand: attribution methods × metrics for every image, one JSON file
per image, and a summary over the images (mean ± standard error per method × metric)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

import jaxviz
from jaxviz import figures
from jaxviz.choices import ROAD_PERCENTILES
from jaxviz.cli.registry import Method, Option, per_image_keys, positive, public_function
from jaxviz.errors import InputError

def _explainer(function: str, **options):
    """``jaxviz.<function>`` with ``options``: one function object per method, so the metrics'
    compiled programs are cached, and jax loaded only when it runs."""
    public_function(function)

    def explain(model, x, target):
        return getattr(jaxviz, function)(model, x, target, **options)

    return explain


def _random_cam(model, x, target):
    """RandomCAM at the input's size, its weights drawn for each batch from the same key (made
    here, not at import: a multi-process run starts JAX's backend later)."""
    import jax

    return jaxviz.random_cam(model, x, target, key=jax.random.key(0), resolution="input")


def _smoothgrad(model, x, target):
    """SmoothGrad, 10 samples at σ 0.15 (the sanity-check paper's), the same noise for every
    batch from one key: a deterministic method, as the robustness metrics need."""
    import jax

    smoothgrad = jaxviz.smooth(jaxviz.saliency, nt_samples=10, stdevs=0.15)
    return smoothgrad(model, x, target, key=jax.random.key(0))


# methods as the metrics see them: maps at the input's size
EXPLAINERS = {
    "saliency": _explainer("saliency"),
    "input-x-gradient": _explainer("input_x_gradient"),
    "guided-backprop": _explainer("guided_backprop"),
    "gradcam": _explainer("gradcam", resolution="input"),
    "guided-gradcam": _explainer("guided_gradcam"),
    "integrated-gradients": _explainer("integrated_gradients"),
    "smoothgrad": _smoothgrad,
    **{name: _explainer(name.replace("-", "_"), resolution="input")
       for name in ("hirescam", "gradcam-plus-plus", "xgradcam", "layercam", "eigencam", "eigen-gradcam",
                    "scorecam", "ablationcam")},
    "deconvolution": _explainer("deconvolution"),
    "lrp": _explainer("lrp"),
    "fullgrad": _explainer("fullgrad"),
    # pytorch-grad-cam's baselines, which a faithful method should beat
    "random-cam": _random_cam,
    "sobel-cam": _explainer("sobel_cam"),
}


def _pixels(a):
    """An attribution as one value per pixel (summed over channels)."""
    return a.sum(axis=-1) if a.ndim == 4 else a


def _unit_maps(a):
    """|map| min–max scaled to [0, 1] per image (what the confidence metrics multiply by)."""
    m = np.abs(np.asarray(_pixels(a), np.float64))
    low, high = m.min(axis=(1, 2), keepdims=True), m.max(axis=(1, 2), keepdims=True)
    return ((m - low) / np.where(high > low, high - low, 1)).astype(np.float32)


def _curve(result):
    return result.auc, result.probabilities


def _road(order):
    """ROAD on the |map| scaled to [0, 1]; for one order, its changes per percentile as the curve."""
    def run(m, x, t, a, f, k, o):
        result = jaxviz.metrics.road(m, x, t, _unit_maps(a), order=order, key=k, percentiles=o["percentiles"])
        return result.score if order == "combined" else (result.score, getattr(result, order))

    return run


def _mprt(model, x, target, method, key):
    """Cascading randomisation: the score and curve are the Spearman correlation of |map| (the
    score after the last step); SSIM and HOG (maps of 24 × 24 or more) are further curves; the
    maps of the steps a figure shows are kept."""
    measures = ("spearman_abs", "ssim") + (("hog",) if min(x.shape[1:3]) >= 24 else ())
    result = jaxviz.metrics.mprt(model, x, target, method, key=key, measures=measures, keep_maps=True)
    shown = figures.randomisation_columns(len(result.layers))
    spearman = result.similarity["spearman_abs"]
    extras = {f"mprt-{m}": result.similarity[m].T for m in measures[1:]}
    return spearman[-1], spearman.T, {**extras, "maps": np.moveaxis(np.asarray(result.maps)[shown], 0, 1)}


# metric → (needs a key, function(model, x, target, attributions, method, key, options) → a score,
# (score, curve), or (score, curve, {a further curve's name or "maps": (N, ...) array}))
METRICS = {
    "deletion": (False, lambda m, x, t, a, f, k, o: _curve(
        jaxviz.metrics.deletion(m, x, t, _pixels(a), step=o["step"]))),
    "insertion": (False, lambda m, x, t, a, f, k, o: _curve(
        jaxviz.metrics.insertion(m, x, t, _pixels(a), step=o["step"]))),
    "pixel-flipping": (False, lambda m, x, t, a, f, k, o: _curve(jaxviz.metrics.pixel_flipping(m, x, t, a))),
    "region-perturbation": (False, lambda m, x, t, a, f, k, o: (
        lambda drops: (drops.mean(axis=1), drops))(jaxviz.metrics.region_perturbation(m, x, t, a))),
    "faithfulness-correlation": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.faithfulness_correlation(
        m, x, t, a, key=k, n_runs=o["samples"])),
    "infidelity": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.infidelity(
        m, x, t, a, key=k, n_perturb_samples=o["samples"])),
    "road": (True, _road("combined")),
    "road-morf": (True, _road("morf")),
    "road-lerf": (True, _road("lerf")),
    "monotonicity-correlation": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.monotonicity_correlation(
        m, x, t, a, key=k, n_samples=o["samples"])),
    "completeness": (False, lambda m, x, t, a, f, k, o: jaxviz.metrics.completeness(m, x, t, a)),
    "drop-in-confidence": (False, lambda m, x, t, a, f, k, o: jaxviz.metrics.drop_in_confidence(
        m, x, t, _unit_maps(a))),
    "increase-in-confidence": (False, lambda m, x, t, a, f, k, o: jaxviz.metrics.increase_in_confidence(
        m, x, t, _unit_maps(a))),
    "sensitivity-max": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.sensitivity_max(
        m, x, t, f, key=k, n_perturb_samples=o["samples"])),
    "avg-sensitivity": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.avg_sensitivity(
        m, x, t, f, key=k, n_perturb_samples=o["samples"])),
    "local-lipschitz-estimate": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.local_lipschitz_estimate(
        m, x, t, f, key=k, n_perturb_samples=o["samples"])),
    "mprt": (True, lambda m, x, t, a, f, k, o: _mprt(m, x, t, f, k)),
    "random-logit": (True, lambda m, x, t, a, f, k, o: jaxviz.metrics.random_logit(m, x, t, f, key=k)),
    "sparseness": (False, lambda m, x, t, a, f, k, o: jaxviz.metrics.sparseness(a)),
    "complexity": (False, lambda m, x, t, a, f, k, o: jaxviz.metrics.complexity(a)),
}


def _check(options) -> None:
    positive("step", options["step"], minimum=1)
    positive("samples", options["samples"], minimum=2)
    if not all(0 < p < 100 for p in options["percentiles"]):
        raise InputError(f"--percentiles: each must be between 1 and 99, got {options['percentiles']}")
    for name, known in (("methods", EXPLAINERS), ("metrics", METRICS)):
        unknown = [v for v in options[name] if v not in known]
        if unknown or not options[name]:
            raise InputError(f"--{name}: unknown {', '.join(unknown) or '(none given)'}; "
                             f"choose from {', '.join(known)}")


def _evaluate(model, x, target, seeds, options):
    import jax

    arrays = {}
    keys = per_image_keys(options["seed"], seeds)
    for method_name in options["methods"]:
        explain = EXPLAINERS[method_name]
        a = explain(model, x, target)
        for metric_name in options["metrics"]:
            keyed, function = METRICS[metric_name]
            if keyed:  # each image with its own key: the result does not depend on the batch
                parts = [function(model, x[i:i + 1], target[i:i + 1], a[i:i + 1], explain, keys[i], options)
                         for i in range(x.shape[0])]
                result = jax.tree_util.tree_map(lambda *p: np.concatenate([np.asarray(v) for v in p]), *parts)
            else:
                result = function(model, x, target, a, explain, None, options)
            score, curve, extras = (*result, {})[:3] if isinstance(result, tuple) else (result, None, {})
            arrays[f"score/{method_name}/{metric_name}"] = np.asarray(score, np.float64)
            if curve is not None:
                arrays[f"curve/{method_name}/{metric_name}"] = np.asarray(curve, np.float64)
            for name, value in extras.items():
                if name == "maps":
                    arrays[f"maps/{method_name}/{metric_name}"] = np.asarray(value, np.float32)
                else:
                    arrays[f"curve/{method_name}/{name}"] = np.asarray(value, np.float64)
    return arrays


def _curves_png(curves: dict) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = sorted({metric for _, metric in curves})
    fig = Figure(figsize=(4 * len(names), 3))
    FigureCanvasAgg(fig)
    for ax, metric in zip(np.atleast_1d(fig.subplots(1, len(names))), names):
        for (method, m), values in sorted(curves.items()):
            if m == metric:
                ax.plot(np.linspace(0, 1, len(values)), values, label=method)
        ax.set_title(metric)
        ax.legend(fontsize=7)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _save(model, image, arrays, wanted_figures):
    scores, curves, randomised = {}, {}, {}
    for name, value in arrays.items():
        kind, method, metric = name.split("/")
        if kind == "score":
            scores.setdefault(method, {})[metric] = float(value)
        elif kind == "maps":
            randomised[method] = value
        else:
            curves[(method, metric)] = np.asarray(value).tolist()
    document = {"scores": scores,
                "curves": {f"{method}/{metric}": values for (method, metric), values in curves.items()}}
    files = {}
    if randomised:
        from jaxviz.metrics.mprt import parameter_layers

        steps = tuple(reversed(parameter_layers(model)))  # cascading: the logits' layer first
        shown = figures.randomisation_columns(len(steps))
        document["randomisation"] = {"steps": list(steps), "shown": shown}
        if wanted_figures:
            titles = ["trained" if i == 0 else f"… {steps[i - 1]}" for i in shown]
            files[".randomisation.png"] = figures.randomisation_png(image, randomised, titles)
    files[".metrics.json"] = json.dumps(document, indent=1).encode()
    if curves and wanted_figures:
        files[".curves.png"] = _curves_png(curves)
    return files, {"scores": scores}


def summarise(out, folder: str = "evaluate") -> Path | None:
    """``<folder>/summary.{md,csv,json}`` in the output folder ``out`` (an
    :class:`~jaxviz.cli.outputs.OutputFolder`): mean ± standard error over the images of
    every method × metric in the folder's records (this run's and earlier runs')."""
    records = [r for (f, _), r in out.records().items() if f == folder and r.get("method") == "evaluate"]
    if not records:
        return None
    values: dict[tuple[str, str], list[float]] = {}
    for record in records:
        for method, scores in record.get("scores", {}).items():
            for metric, value in scores.items():
                values.setdefault((method, metric), []).append(value)
    rows = []
    for (method, metric), v in sorted(values.items()):
        v = np.asarray(v, np.float64)
        finite = v[np.isfinite(v)]
        mean = float(finite.mean()) if finite.size else float("nan")
        sem = float(finite.std(ddof=1) / np.sqrt(finite.size)) if finite.size > 1 else float("nan")
        rows.append({"method": method, "metric": metric, "mean": mean, "sem": sem, "images": int(finite.size)})
    methods = sorted({r["method"] for r in rows})
    metric_names = sorted({r["metric"] for r in rows})
    cell = {(r["method"], r["metric"]): f"{r['mean']:.4g} ± {r['sem']:.2g}" for r in rows}
    lines = [f"# jaxviz evaluate: {len(records)} images", "", "mean ± standard error over the images", "",
             "| method | " + " | ".join(metric_names) + " |", "|---|" + "---|" * len(metric_names)]
    lines += [f"| {m} | " + " | ".join(cell.get((m, k), "") for k in metric_names) + " |" for m in methods]
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["method", "metric", "mean", "sem", "images"])
    writer.writeheader()
    writer.writerows(rows)
    out.write(f"{folder}/summary.md", ("\n".join(lines) + "\n").encode())
    out.write(f"{folder}/summary.csv", table.getvalue().encode())
    out.write(f"{folder}/summary.json", json.dumps(rows, indent=1).encode())
    return out.path(f"{folder}/summary.md")


EVALUATE = Method(
    "evaluate", "attribution methods × faithfulness, robustness, randomisation and complexity metrics "
    "(jaxviz.metrics), per image and summarised",
    (Option("target", int, None, "class for every image (default: labels file, .npz y, else top-1)", kind="class"),
     Option("methods", str, ["saliency", "gradcam"], f"methods to evaluate: {', '.join(EXPLAINERS)} "
            "(default saliency gradcam)", many=True),
     Option("metrics", str, ["deletion", "insertion"], f"metrics: {', '.join(METRICS)} (default deletion "
            "insertion)", many=True),
     Option("step", int, 224, "pixels moved per step of deletion and insertion (default 224)"),
     Option("samples", int, 20, "perturbations / runs per image of the sampling metrics (default 20)"),
     Option("percentiles", int, list(ROAD_PERCENTILES), "percentiles of ROAD "
            "(default 10 20 … 90)", many=True),
     Option("seed", int, 0, "random seed (each image's draws come from the seed and its name)")),
    _evaluate, _save, check=_check, finish=summarise,
    examples="jaxviz evaluate photos/ --methods saliency gradcam --metrics deletion insertion mprt --out eval",
)

DECLARED = (EVALUATE,)
