"""The synthesis subcommands: fooling images, class visualisation, style transfer — one
declaration each (options, computation, files)."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

import jaxviz
from jaxviz import choices, figures
from jaxviz.cli.inputs import sample_image
from jaxviz.cli.outputs import array_files, png_bytes, side_by_side
from jaxviz.cli.registry import Method, Option, per_image_keys, positive
from jaxviz.errors import InputError

SEED = Option("seed", int, 0, "random seed (each image's noise comes from the seed and its name)")


# --------------------------------------------------------------------------- fool


def _fool(model, x, target, options):
    result = jaxviz.fooling_images(model, x, target, learning_rate=options["learning_rate"],
                                   max_iter=options["max_iter"], epsilon=options["epsilon"] or None,
                                   norm=options["norm"], slots=options["slots"] or None)
    return {"image": result.images, "iterations": result.iterations, "success": result.success,
            "diverged": result.diverged}


def _fool_on_devices(options, batch):
    # sharded: at least one image per device in flight
    return options if options["slots"] else {**options, "slots": batch}


def _save_fool(image, x, arrays, options, arrays_format, wanted_figures):
    fooled = np.asarray(arrays["image"], np.float32)
    extras = {k: np.asarray(arrays[k]) for k in ("iterations", "success", "diverged")}
    files = array_files(fooled, extras, arrays_format)
    shown = jaxviz.deprocess(fooled)
    files[".png"] = png_bytes(shown)
    difference = figures.minmax(np.clip(options["magnify"] * (fooled - x), -1, 1)[None])[0]
    difference = np.round(difference * 255).astype(np.uint8)
    if "map" in wanted_figures:
        files[".diff.png"] = png_bytes(difference)
    if "grid" in wanted_figures:
        files[".grid.png"] = png_bytes(side_by_side([image, shown, difference]))
    return files, {k: v.item() for k, v in extras.items()}


def _check_fool(options):
    positive("learning_rate", options["learning_rate"])
    positive("max_iter", options["max_iter"])
    positive("epsilon", options["epsilon"], minimum=0)
    positive("slots", options["slots"], minimum=0)


# --------------------------------------------------------------------------- class-viz


def per_image_class_viz_start(options, seeds, size, dtype):
    """Initial images and jitter offsets drawn per image from its seed (the course's
    ``randn`` start and ``randint(0, max_jitter + 1)`` rolls)."""
    import jax
    import jax.numpy as jnp

    init_keys, jitter_keys = jax.vmap(jax.random.split, out_axes=1)(per_image_keys(options["seed"], seeds))
    init = jax.vmap(lambda k: jax.random.normal(k, (size, size, 3), dtype))(init_keys)
    jitter = jax.vmap(lambda k: jax.random.randint(k, (options["num_iterations"], 2), 0, options["max_jitter"] + 1))(
        jitter_keys)
    return init, jnp.moveaxis(jitter, 0, 1)


def _class_viz(model, target, seeds, options):
    init, jitter = per_image_class_viz_start(options, seeds, options["image_size"], model.dtype)
    result = jaxviz.class_visualization(model, target, init=init, jitter=jitter, l2_reg=options["l2_reg"],
                                        learning_rate=options["learning_rate"],
                                        num_iterations=options["num_iterations"], blur_every=options["blur_every"],
                                        blur_sigma=options["blur_sigma"], max_jitter=options["max_jitter"])
    return {"image": result.images}


def _save_image_result(image, arrays, variant, arrays_format, wanted_figures):
    result = np.asarray(arrays["image"], np.float32)
    extras = {k: np.asarray(v) for k, v in arrays.items() if k != "image"}
    files = array_files(result, extras, arrays_format)
    shown = jaxviz.deprocess(result, rescale=True)
    files[".png"] = png_bytes(shown)
    if "grid" in wanted_figures and image is not None:
        panels = [image] + ([_thumbnail(variant.uint8(), image.shape[0])] if variant is not None else []) + [shown]
        files[".grid.png"] = png_bytes(side_by_side(panels))
    return files, {k: v.tolist() for k, v in extras.items()}


def _thumbnail(image: np.ndarray, height: int) -> np.ndarray:
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    return np.asarray(Image.fromarray(image).resize((width, height), Image.BILINEAR))


def _check_class_viz(options):
    for name in ("num_iterations", "blur_every", "learning_rate", "blur_sigma", "image_size"):
        positive(name, options[name])
    positive("max_jitter", options["max_jitter"], minimum=0)
    positive("l2_reg", options["l2_reg"], minimum=0)
    if not options["classes"]:
        raise InputError("class-viz needs classes (e.g. --classes 76 78 113)")


# --------------------------------------------------------------------------- style


@dataclass(frozen=True)
class StyleSpec:
    """One style: a preset of the course (its image and loss weights) or an image file."""

    source: str
    data: str = ""
    style_size: int = 0

    @property
    def label(self) -> str:
        if self.source.startswith("skimage:"):
            return self.source[len("skimage:"):]
        return self.source if self.is_preset else Path(self.source).stem

    @property
    def is_preset(self) -> bool:
        return self.source in choices.STYLE_PRESETS

    def path(self) -> Path:
        if not self.is_preset:
            return Path(self.source)
        folder = Path(self.data) if self.data else Path(os.environ.get("JAXVIZ_SHARED", "shared")) / "data" / "styles"
        path = folder / choices.STYLE_PRESETS[self.source]["style"]
        if not path.is_file():
            raise InputError(f"style preset {self.source!r} needs {path}: give the course's styles folder "
                             f"(--data DIR or $JAXVIZ_SHARED), or an image path")
        return path

    def uint8(self) -> np.ndarray:
        if self.source.startswith("skimage:"):
            return sample_image(self.label)
        return _load_style(str(self.path()))

    def normalised(self, content_short_side: int) -> np.ndarray:
        size = (choices.STYLE_PRESETS[self.source]["style_size"] if self.is_preset
                else self.style_size or content_short_side)
        return jaxviz.preprocess(self.uint8(), size=size)

    def settings(self) -> dict:
        if not self.is_preset:
            return {}
        return {k: v for k, v in choices.STYLE_PRESETS[self.source].items() if k not in ("style", "style_size")}


@functools.lru_cache(maxsize=16)
def _load_style(path: str) -> np.ndarray:
    return jaxviz.load_image(path)


def style_specs(options) -> list[StyleSpec]:
    return [StyleSpec(s, options["data"], options["style_size"]) for s in options["styles"]]


def _style(model, x, options, variant):
    style = variant.normalised(min(x.shape[1:3]))
    settings = variant.settings()
    if len(settings.get("style_weights", ())) != len(model.architecture.style_layers):
        settings.pop("style_weights", None)  # the course's weights are for SqueezeNet's four layers
    import jax.numpy as jnp

    result = jaxviz.style_transfer(model, x, style, num_iterations=options["num_iterations"],
                                   preserve_colors=options["preserve_colors"], **settings)
    return {"image": result.images, "loss": jnp.broadcast_to(result.losses[-1], (x.shape[0],))}


def _check_style(options):
    positive("num_iterations", options["num_iterations"])
    if not options["styles"]:
        raise InputError("style needs at least one style (a preset name or an image path)")


DECLARED = (
    Method(
        "fool", "fooling images: the smallest push that makes the model say --target",
        (Option("target", int, None, "the class to fool the model into (required)", kind="class"),
         Option("learning_rate", float, 1.0, "step size (default 1, CS231n; CS7643 uses 10)"),
         Option("max_iter", int, 100, "most steps per image (default 100)"),
         Option("epsilon", float, 0.0, "L-inf/L2 budget in pixel units, e.g. 0.0314 (default 0: unbounded, "
                                       "the course's loop)"),
         Option("norm", str, "linf", "budget norm with --epsilon (default linf)", choices=choices.FOOLING_NORMS),
         Option("magnify", float, 10.0, "difference image magnification (default 10)"),
         Option("slots", int, 0, "images stepped together (default 0: 1 on CPU, 16 on accelerators)")),
        _fool, _save_fool, target="explicit", check=_check_fool, on_devices=_fool_on_devices,
        examples="jaxviz fool photos/ --target 6 --out fooled      # everything becomes a stingray\n"
                 "jaxviz fool photos/ --target 6 --epsilon 0.0314 --learning-rate 0.00784 --out fooled-8",
    ),
    Method(
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
        classes=lambda options: options["classes"],
        examples="jaxviz class-viz --classes 76 78 113 --out classes     # tarantula, tick, snail",
    ),
    Method(
        "style", "Gatys style transfer of each input onto each style",
        (Option("styles", str, [], f"presets ({', '.join(choices.STYLE_PRESETS)}) or image paths", many=True),
         Option("num_iterations", int, 200, "Adam steps (default 200)"),
         Option("style_size", int, 0, "short side of style images given as paths (default 0: the content's)"),
         Option("preserve_colors", bool, False, "keep the content's colours"),
         Option("data", str, "", "folder with the course's style images (default $JAXVIZ_SHARED/data/styles)")),
        _style, _save_image_result, target="none", size=192, check=_check_style, variants=style_specs,
        examples="jaxviz style tubingen.jpg --styles starry_night the_scream --out styled\n"
                 "jaxviz style photos/ --styles my_painting.jpg --num-iterations 100 --out styled",
    ),
)
