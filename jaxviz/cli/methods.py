"""Every method the ``jaxviz`` command runs: its options, its batch computation, its files.

One :class:`Method` per subcommand.  Options are declared once and serve both the
command line (``--n-steps 32``) and job files (``n_steps = 32``).  ``compute`` maps a
padded batch to arrays with a leading batch axis; ``save`` turns one image's slice into
output files (name suffix → bytes) and manifest extras.  Randomness is drawn per image
from its key's seed, so results do not depend on batching, sharding or process count.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass, field
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from jaxviz import figures
from jaxviz.errors import InputError

# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    help: str
    choices: tuple = ()
    many: bool = False  # a list of values
    kind: str = ""  # "class" or "layer": checked against the architecture before the model loads

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value, where: str = ""):
        """Converts a command-line string or a job-file value, with a clear error."""
        if self.many:
            values = value if isinstance(value, (list, tuple)) else [value]
            return [self._one(v, where) for v in values]
        return self._one(value, where)

    def _one(self, value, where):
        label = f"{where}`{self.name}`"
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise InputError(f"{label} must be true or false, got {value!r}")
        if isinstance(value, bool) and self.type is not bool:
            raise InputError(f"{label} must be {self.type.__name__}, got {value!r}")
        if self.type is int and not isinstance(value, (int, str)):  # 2.7 must not become 2
            raise InputError(f"{label} must be an integer, got {value!r}")
        if self.type is str and not isinstance(value, str):
            raise InputError(f"{label} must be a string, got {value!r}")
        try:
            converted = self.type(value.strip() if isinstance(value, str) and self.type is not str else value)
        except (TypeError, ValueError):
            raise InputError(f"{label} must be {'an integer' if self.type is int else self.type.__name__}, "
                             f"got {value!r}") from None
        if self.type is float and not np.isfinite(converted):
            raise InputError(f"{label} must be finite, got {value!r}")
        if self.choices and converted not in self.choices:
            raise InputError(f"{label} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        return converted


def _positive(name, value):
    if value <= 0:
        raise InputError(f"`{name}` must be > 0, got {value}")


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    options: tuple[Option, ...]
    compute: Callable  # (model, x, target, seeds, opts, variant) -> dict of (N, ...) arrays
    save: Callable  # (image uint8, x, arrays_i, opts, variant, ctx) -> (files, extras)
    inputs: str = "images"  # or "classes"
    target: str = "any"  # "any": top-1 when not given; "explicit": must be given
    size: int = 224
    examples: str = ""
    check: Callable = field(default=lambda opts: None)

    def defaults(self) -> dict:
        return {o.name: o.default for o in self.options}

    def variants(self, opts) -> list:
        """Several outputs per input (style: one per style image); ``[None]`` otherwise."""
        return style_specs(opts) if self.name == "style" else [None]


def png_bytes(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def side_by_side(panels, gap: int = 4) -> np.ndarray:
    """uint8 RGB panels of the same height, left to right, white gaps between."""
    height = max(p.shape[0] for p in panels)
    out = []
    for i, p in enumerate(panels):
        if p.ndim == 2:
            p = np.repeat(p[..., None], 3, axis=-1)
        if p.shape[0] < height:
            p = np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
        if i:
            out.append(np.full((height, gap, 3), 255, np.uint8))
        out.append(p)
    return np.concatenate(out, axis=1)


def _array_files(main: np.ndarray, extras: dict, ctx) -> dict:
    if ctx.arrays == "npy":
        return {".npy": npy_bytes(main)}
    if ctx.arrays == "npz":
        return {".npz": npz_bytes({"attribution" if main.ndim else "value": main, **extras})}
    return {}


# --- attribution


def _abs_heat(attribution, image_shape, opts):
    """(H, W, C) attribution → (H, W) in [0, 1]: max |·| over channels, Captum's 2 % clip."""
    return figures.percentile_clip(figures.channel_max(attribution[None]), outlier_perc=opts["outlier_perc"])[0]


def _cam_heat(cam, image_shape, opts):
    """(h, w) GradCAM → image size, bicubic, min–max (the course's display)."""
    return figures.minmax(figures.resize_maps(cam[None], image_shape))[0]


def _attribution_saver(heat_fn, main="attribution"):
    def save(image, x, arrays, opts, variant, ctx):
        attribution = np.asarray(arrays[main], np.float32)
        extras = {k: np.asarray(v) for k, v in arrays.items() if k != main}
        files = _array_files(attribution, extras, ctx)
        heat = heat_fn(attribution, image.shape[:2], opts)
        if "map" in ctx.figures:
            files[".map.png"] = png_bytes(np.round(heat * 255).astype(np.uint8))
        blended = figures.overlay(image, heat, alpha=opts["alpha"]) if ctx.figures & {"overlay", "grid"} else None
        if "overlay" in ctx.figures:
            files[".overlay.png"] = png_bytes(blended)
        if "grid" in ctx.figures:
            files[".grid.png"] = png_bytes(side_by_side([image, figures.colorize(heat, "hot"), blended]))
        return files, {k: v.tolist() for k, v in extras.items()}

    return save


DISPLAY = (
    Option("alpha", float, 0.5, "opacity of the heat map in overlays (default 0.5)"),
    Option("outlier_perc", float, 2.0, "heat-map clip: top percent of |attribution| mass saturated (default 2, Captum's)"),
)
LAYER = Option("layer", str, "features.12", "layer (torchvision module path, default features.12)", kind="layer")


def _saliency(model, x, target, seeds, opts, variant):
    import jaxviz

    return {"attribution": jaxviz.saliency(model, x, target)}


def _guided_backprop(model, x, target, seeds, opts, variant):
    import jaxviz

    return {"attribution": jaxviz.guided_backprop(model, x, target)}


def _gradcam(model, x, target, seeds, opts, variant):
    import jaxviz

    return {"cam": jaxviz.gradcam(model, x, target, opts["layer"])}


def _guided_gradcam(model, x, target, seeds, opts, variant):
    import jaxviz

    return {"attribution": jaxviz.guided_gradcam(model, x, target, opts["layer"],
                                                 interpolate_mode=opts["interpolate_mode"])}


def _integrated_gradients(model, x, target, seeds, opts, variant):
    import jaxviz

    attribution, delta = jaxviz.integrated_gradients(
        model, x, target, opts["baseline"], n_steps=opts["n_steps"], method=opts["method"],
        internal_batch_size=opts["internal_batch_size"], return_convergence_delta=True,
    )
    return {"attribution": attribution, "delta": delta}


def _occlusion(model, x, target, seeds, opts, variant):
    import jaxviz

    window, stride = opts["window"], opts["stride"]
    return {"attribution": jaxviz.occlusion(model, x, target, (window, window, 3), strides=(stride, stride, 3),
                                            baselines=opts["baseline"], windows_per_eval=opts["windows_per_eval"])}


def per_image_keys(seed: int, seeds):
    """One ``jax.random`` key per image: the job's seed folded with the image's own."""
    base = jax.random.key(seed)
    return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))


def per_image_normal(seed: int, seeds, shape, dtype):
    """One standard-normal draw of ``shape`` per image, keyed by (seed, image seed)."""
    return jax.vmap(lambda k: jax.random.normal(k, shape, dtype))(per_image_keys(seed, seeds))


def _smoothgrad(model, x, target, seeds, opts, variant):
    import jaxviz

    n = opts["nt_samples"]
    noise = per_image_normal(opts["seed"], seeds, (n,) + tuple(x.shape[1:]), x.dtype)  # (N, n, H, W, C)
    noise = opts["stdevs"] * jnp.moveaxis(noise, 1, 0)
    return {"attribution": jaxviz.noise_tunnel(jaxviz.saliency, model, x, target, nt_type=opts["nt_type"],
                                               nt_samples=n, noise=noise)}


def _check_ig(opts):
    _positive("n_steps", opts["n_steps"])
    _positive("internal_batch_size", opts["internal_batch_size"])


def _check_occlusion(opts):
    for name in ("window", "stride", "windows_per_eval"):
        _positive(name, opts[name])


def _check_smoothgrad(opts):
    _positive("nt_samples", opts["nt_samples"])
    if opts["stdevs"] < 0:
        raise InputError(f"`stdevs` must be >= 0, got {opts['stdevs']}")


# --- synthesis


def _fool(model, x, target, seeds, opts, variant):
    import jaxviz

    result = jaxviz.make_fooling_images(model, x, target, learning_rate=opts["learning_rate"],
                                        max_iter=opts["max_iter"], epsilon=opts["epsilon"] or None,
                                        norm=opts["norm"], slots=opts["slots"] or None)
    return {"image": result.images, "iterations": result.iterations, "success": result.success,
            "diverged": result.diverged}


def _save_fool(image, x, arrays, opts, variant, ctx):
    import jaxviz

    fooled = np.asarray(arrays["image"], np.float32)
    extras = {k: np.asarray(arrays[k]) for k in ("iterations", "success", "diverged")}
    files = _array_files(fooled, extras, ctx)
    shown = jaxviz.deprocess(fooled)
    files[".png"] = png_bytes(shown)
    difference = figures.minmax(np.clip(opts["magnify"] * (fooled - x), -1, 1)[None])[0]
    difference = np.round(difference * 255).astype(np.uint8)
    if "map" in ctx.figures:
        files[".diff.png"] = png_bytes(difference)
    if "grid" in ctx.figures:
        files[".grid.png"] = png_bytes(side_by_side([image, shown, difference]))
    return files, {k: v.item() for k, v in extras.items()}


def _check_fool(opts):
    _positive("learning_rate", opts["learning_rate"])
    _positive("max_iter", opts["max_iter"])
    if opts["epsilon"] < 0 or opts["slots"] < 0:
        raise InputError("`epsilon` and `slots` must be >= 0 (0: the default)")


def per_image_class_viz_start(opts, seeds, size, dtype):
    """Initial images and jitter offsets drawn per image from its seed (the course's
    ``randn`` start and ``randint(0, max_jitter + 1)`` rolls)."""
    init_keys, jitter_keys = jax.vmap(jax.random.split, out_axes=1)(per_image_keys(opts["seed"], seeds))
    init = jax.vmap(lambda k: jax.random.normal(k, (size, size, 3), dtype))(init_keys)
    jitter = jax.vmap(lambda k: jax.random.randint(k, (opts["num_iterations"], 2), 0, opts["max_jitter"] + 1))(
        jitter_keys)
    return init, jnp.moveaxis(jitter, 0, 1)


def _class_viz(model, x, target, seeds, opts, variant):
    import jaxviz

    init, jitter = per_image_class_viz_start(opts, seeds, opts["image_size"], model.dtype)
    result = jaxviz.class_visualization(model, target, init=init, jitter=jitter, l2_reg=opts["l2_reg"],
                                       learning_rate=opts["learning_rate"],
                                       num_iterations=opts["num_iterations"], blur_every=opts["blur_every"],
                                       blur_sigma=opts["blur_sigma"], max_jitter=opts["max_jitter"])
    return {"image": result.images}


def _save_image_result(image, x, arrays, opts, variant, ctx):
    import jaxviz

    result = np.asarray(arrays["image"], np.float32)
    extras = {k: np.asarray(v) for k, v in arrays.items() if k != "image"}
    files = _array_files(result, extras, ctx)
    shown = jaxviz.deprocess(result, rescale=True)
    files[".png"] = png_bytes(shown)
    if "grid" in ctx.figures and image is not None:
        panels = [image] + ([_thumbnail(variant.uint8(), image.shape[0])] if variant is not None else []) + [shown]
        files[".grid.png"] = png_bytes(side_by_side(panels))
    return files, {k: v.tolist() for k, v in extras.items()}


def _thumbnail(image: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def _check_class_viz(opts):
    for name in ("num_iterations", "blur_every", "learning_rate", "blur_sigma", "image_size"):
        _positive(name, opts[name])
    if opts["image_size"] < 21 or opts["max_jitter"] < 0 or opts["l2_reg"] < 0:
        raise InputError("`image_size` must be >= 21, `max_jitter` and `l2_reg` >= 0")
    if not opts["classes"]:
        raise InputError("class-viz needs classes (e.g. --classes 76 78 113)")


@dataclass(frozen=True)
class StyleSpec:
    """One style: a preset of the course (its image and loss weights) or an image file."""

    source: str
    data: str = ""
    style_size: int = 0

    @property
    def label(self) -> str:
        from pathlib import Path

        if self.source.startswith("skimage:"):
            return self.source[len("skimage:"):]
        return self.source if self.is_preset else Path(self.source).stem

    @property
    def is_preset(self) -> bool:
        from jaxviz.synthesis.style_transfer import PRESETS

        return self.source in PRESETS

    def path(self):
        import os
        from pathlib import Path

        from jaxviz.synthesis.style_transfer import PRESETS

        if not self.is_preset:
            return Path(self.source)
        folder = Path(self.data) if self.data else Path(os.environ.get("JAXVIZ_SHARED", "shared")) / "data" / "styles"
        path = folder / PRESETS[self.source]["style"]
        if not path.is_file():
            raise InputError(f"style preset {self.source!r} needs {path}: give the course's styles folder "
                             f"(--data DIR or $JAXVIZ_SHARED), or an image path")
        return path

    def uint8(self) -> np.ndarray:
        if self.source.startswith("skimage:"):
            from jaxviz.cli.inputs import sample_image

            return sample_image(self.label)
        return _load_style(str(self.path()))

    def normalised(self, content_short_side: int) -> np.ndarray:
        import jaxviz
        from jaxviz.synthesis.style_transfer import PRESETS

        size = PRESETS[self.source]["style_size"] if self.is_preset else (self.style_size or content_short_side)
        return jaxviz.preprocess(self.uint8(), size=size)

    def settings(self) -> dict:
        from jaxviz.synthesis.style_transfer import PRESETS

        if not self.is_preset:
            return {}
        return {k: v for k, v in PRESETS[self.source].items() if k not in ("style", "style_size")}


@functools.lru_cache(maxsize=16)
def _load_style(path: str) -> np.ndarray:
    import jaxviz

    return jaxviz.load_image(path)


def style_specs(opts) -> list[StyleSpec]:
    return [StyleSpec(s, opts["data"], opts["style_size"]) for s in opts["styles"]]


def _style(model, x, target, seeds, opts, variant):
    import jaxviz

    style = variant.normalised(min(x.shape[1:3]))
    result = jaxviz.style_transfer(model, x, style, num_iterations=opts["num_iterations"],
                                   preserve_colors=opts["preserve_colors"], **variant.settings())
    return {"image": result.images, "loss": jnp.broadcast_to(result.losses[-1], (x.shape[0],))}


def _check_style(opts):
    _positive("num_iterations", opts["num_iterations"])
    if not opts["styles"]:
        raise InputError("style needs at least one style (a preset name or an image path)")


SEED = Option("seed", int, 0, "random seed (each image's noise comes from the seed and its name)")
TARGET = Option("target", int, None, "class for every image (default: labels file, .npz y, else top-1)",
               kind="class")

METHODS: dict[str, Method] = {}


def _register(method: Method) -> None:
    METHODS[method.name] = method


_register(Method(
    "saliency", "vanilla gradient saliency (Simonyan et al.; Captum Saliency, abs)",
    (TARGET, *DISPLAY), _saliency, _attribution_saver(_abs_heat),
    examples="jaxviz saliency photos/ --out maps\n"
             "jaxviz saliency imagenet_val_25.npz --out maps       # targets from the .npz's y",
))
_register(Method(
    "guided-backprop", "guided backpropagation (Springenberg et al.; Captum GuidedBackprop)",
    (TARGET, *DISPLAY), _guided_backprop, _attribution_saver(_abs_heat),
    examples="jaxviz guided-backprop cat.jpg --target 281 --out maps",
))
_register(Method(
    "gradcam", "GradCAM at a layer, ReLU'd (Selvaraju et al.; the course's GradCAM)",
    (TARGET, LAYER, *DISPLAY), _gradcam, _attribution_saver(_cam_heat, main="cam"),
    examples="jaxviz gradcam photos/ --labels labels.tsv --out maps\n"
             "jaxviz gradcam photos/ --layer features.9 --out maps-f9",
))
_register(Method(
    "guided-gradcam", "guided GradCAM: guided backprop × upsampled GradCAM (Captum GuidedGradCam)",
    (TARGET, LAYER, Option("interpolate_mode", str, "nearest", "GradCAM upsampling (default nearest, Captum's)",
                           choices=("nearest", "bilinear", "bicubic")), *DISPLAY),
    _guided_gradcam, _attribution_saver(_abs_heat),
    examples="jaxviz guided-gradcam photos/ --out maps --batch-size 16",
))
_register(Method(
    "integrated-gradients", "Integrated Gradients (Sundararajan et al.; Captum IntegratedGradients)",
    (TARGET, Option("n_steps", int, 50, "quadrature points (default 50)"),
     Option("method", str, "gausslegendre", "quadrature (default gausslegendre)",
            choices=("gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle")),
     Option("baseline", float, 0.0, "baseline value in normalised units (default 0: the mean colour)"),
     Option("internal_batch_size", int, 128, "path points evaluated per pass (memory bound, default 128)"),
     *DISPLAY),
    _integrated_gradients, _attribution_saver(_abs_heat), check=_check_ig,
    examples="jaxviz integrated-gradients cat.jpg --n-steps 32 --out maps",
))
_register(Method(
    "occlusion", "occlusion with a sliding square window (Zeiler & Fergus; Captum Occlusion)",
    (TARGET, Option("window", int, 15, "window side in pixels (default 15)"),
     Option("stride", int, 8, "window stride in pixels (default 8)"),
     Option("baseline", float, 0.0, "value the window is set to, normalised units (default 0)"),
     Option("windows_per_eval", int, 64, "windows per forward pass (memory bound, default 64)"),
     *DISPLAY),
    _occlusion, _attribution_saver(_abs_heat), check=_check_occlusion,
    examples="jaxviz occlusion cat.jpg --window 30 --stride 15 --out maps",
))
_register(Method(
    "smoothgrad", "SmoothGrad: saliency averaged over noisy copies (Smilkov et al.; Captum NoiseTunnel)",
    (TARGET, Option("nt_samples", int, 25, "noisy samples per image (default 25)"),
     Option("stdevs", float, 0.15, "noise standard deviation, normalised units (default 0.15)"),
     Option("nt_type", str, "smoothgrad", "aggregate (default smoothgrad)",
            choices=("smoothgrad", "smoothgrad_sq", "vargrad")),
     SEED, *DISPLAY),
    _smoothgrad, _attribution_saver(_abs_heat), check=_check_smoothgrad,
    examples="jaxviz smoothgrad photos/ --nt-samples 50 --seed 1 --out maps",
))
_register(Method(
    "fool", "fooling images: the smallest push that makes the model say --target",
    (Option("target", int, None, "the class to fool the model into (required)", kind="class"),
     Option("learning_rate", float, 1.0, "step size (default 1, CS231n; CS7643 uses 10)"),
     Option("max_iter", int, 100, "most steps per image (default 100)"),
     Option("epsilon", float, 0.0, "L-inf/L2 budget in pixel units, e.g. 0.0314 (default 0: unbounded, "
                                   "the course's loop)"),
     Option("norm", str, "linf", "budget norm with --epsilon (default linf)", choices=("linf", "l2")),
     Option("magnify", float, 10.0, "difference image magnification (default 10)"),
     Option("slots", int, 0, "images stepped together (default 0: 1 on CPU, 16 on accelerators)")),
    _fool, _save_fool, target="explicit", check=_check_fool,
    examples="jaxviz fool photos/ --target 6 --out fooled      # everything becomes a stingray\n"
             "jaxviz fool photos/ --target 6 --epsilon 0.0314 --learning-rate 0.00784 --out fooled-8",
))
_register(Method(
    "class-viz", "class model visualisation: an image the model scores highly as each class",
    (Option("classes", int, [], "classes to visualise", many=True, kind="class"),
     Option("num_iterations", int, 100, "gradient-ascent steps (default 100)"),
     Option("learning_rate", float, 25.0, "step size (default 25)"),
     Option("l2_reg", float, 1e-3, "L2 penalty (default 1e-3)"),
     Option("blur_every", int, 10, "blur every n steps (default 10)"),
     Option("blur_sigma", float, 0.5, "blur sigma (default 0.5)"),
     Option("max_jitter", int, 16, "random roll, pixels (default 16)"),
     Option("image_size", int, 224, "image side (default 224)"),
     SEED),
    _class_viz, _save_image_result, inputs="classes", target="none", check=_check_class_viz,
    examples="jaxviz class-viz --classes 76 78 113 --out classes     # tarantula, tick, snail",
))
_register(Method(
    "style", "Gatys style transfer of each input onto each style",
    (Option("styles", str, [], "presets (composition_vii, the_scream, starry_night) or image paths", many=True),
     Option("num_iterations", int, 200, "Adam steps (default 200)"),
     Option("style_size", int, 0, "short side of style images given as paths (default 0: the content's)"),
     Option("preserve_colors", bool, False, "keep the content's colours"),
     Option("data", str, "", "folder with the course's style images (default $JAXVIZ_SHARED/data/styles)")),
    _style, _save_image_result, target="none", size=192, check=_check_style,
    examples="jaxviz style tubingen.jpg --styles starry_night the_scream --out styled\n"
             "jaxviz style photos/ --styles my_painting.jpg --num-iterations 100 --out styled",
))
