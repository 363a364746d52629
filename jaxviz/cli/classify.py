"""``jaxviz classify``: top-k classes of images."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import jaxviz
from jaxviz._io import load_npz
from jaxviz.cli import common
from jaxviz.errors import JaxvizError
from jaxviz.labels import class_names


def register(sub) -> None:
    parser = sub.add_parser(
        "classify",
        help="print the top-k ImageNet classes of images",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        "  jaxviz classify cat.jpg dog.png\n"
        "  jaxviz classify --samples                      # scikit-image's chelsea and coffee\n"
        "  jaxviz classify --samples imagenet_val_25.npz  # plus the images of an .npz (X: uint8 NHWC)",
    )
    parser.add_argument("inputs", nargs="*", help="image files or .npz files with an X array")
    parser.add_argument("--samples", action="store_true", help="also classify scikit-image's sample photos")
    parser.add_argument("--top", type=int, default=5, help="how many classes per image (default 5)")
    parser.add_argument("--size", type=int, default=224, help="short side after resizing (default 224)")
    common.add_model_options(parser)
    parser.set_defaults(func=run)


def _sample_images():
    from skimage import data

    return [("skimage:chelsea", data.chelsea()), ("skimage:coffee", data.coffee())]


def run(args) -> int:
    items = _sample_images() if args.samples else []
    failed = 0
    for name in args.inputs:
        path = Path(name)
        try:
            if path.suffix.lower() == ".npz":
                items += [(f"{path.name}[{i}]", img) for i, img in enumerate(load_npz(path)["X"])]
            else:
                items.append((str(path), jaxviz.load_image(path)))
        except (JaxvizError, OSError, KeyError, ValueError) as err:
            common.error(f"{name}: {err}")  # error() escapes control characters
            failed += 1
    if not items:
        common.error("nothing to classify: give image files, an .npz, or --samples")
        return common.EXIT_USAGE
    model = common.load_model_from_args(args)
    names = class_names()
    for label, image in items:
        logits = np.asarray(model(jaxviz.preprocess(image, size=args.size)))[0]
        top = np.argsort(-logits)[: args.top]
        print(f"{label}: " + ", ".join(f"{names[i]} ({i}) {logits[i]:.2f}" for i in top))
    return common.EXIT_PARTIAL if failed else common.EXIT_OK
