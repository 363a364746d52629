"""The course's GradCAM figure set on the first 5 of the 25 validation images.

``gradcam_course.png``: image, guided backprop, GradCAM (course: bicubic upsampling,
min–max over the batch, overlaid), guided GradCAM.  ``gradcam_captum.png``: Captum
equivalents — GuidedBackprop, GuidedGradCam at features.12, LayerGradCam and
LayerConductance at features.3 upsampled to the image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import jaxviz
from jaxviz import figures
from jaxviz.interpolation import interpolate
from jaxviz.labels import class_names

from _common import course_images, parser, say


def main() -> None:
    args = parser(__doc__, "gradcam").parse_args()
    model = jaxviz.load_model(weights=args.weights)
    X, y = course_images(5)
    x = jaxviz.preprocess(X)
    names = [class_names()[i] for i in y]
    size = x.shape[1:3]

    cam = figures.minmax(figures.resize_maps(jaxviz.gradcam(model, x, y), size), over_batch=True)
    gbp = np.asarray(jaxviz.guided_backprop(model, x, y))
    ggc = np.asarray(jaxviz.guided_gradcam(model, x, y))
    as_image = lambda a: figures.minmax(a)  # noqa: E731 - signed RGB attributions shown as images
    out = Path(args.out)
    figures.save_grid(
        out / "gradcam_course.png",
        [list(X), list(as_image(gbp)), [figures.overlay(img, c) for img, c in zip(X, cam)], list(as_image(ggc))],
        col_titles=names,
        row_titles=["image", "guided backprop", "GradCAM", "guided GradCAM"],
    )
    layer_cam = interpolate(jaxviz.layer_gradcam(model, x, y, layer="features.3"), size, "bilinear")[..., 0]
    conductance = jaxviz.layer_conductance(model, x, y, "features.3", n_steps=20).sum(axis=-1, keepdims=True)
    conductance = interpolate(conductance, size, "bilinear")[..., 0]
    figures.save_grid(
        out / "gradcam_captum.png",
        [
            list(X),
            list(figures.percentile_clip(figures.channel_max(gbp))),
            list(figures.percentile_clip(figures.channel_max(ggc))),
            [figures.overlay(img, c) for img, c in zip(X, figures.percentile_clip(np.asarray(layer_cam), sign="positive"))],
            [figures.overlay(img, c) for img, c in zip(X, figures.percentile_clip(np.asarray(conductance)))],
        ],
        col_titles=names,
        row_titles=["image", "GuidedBackprop", "GuidedGradCam f.12", "LayerGradCam f.3", "LayerConductance f.3"],
    )
    say(f"wrote {out / 'gradcam_course.png'} and {out / 'gradcam_captum.png'}")


if __name__ == "__main__":
    main()
