"""The course's saliency figure set on the first 5 of the 25 validation images.

Writes ``saliency_course.png`` (images over the course's saliency maps) and
``saliency_captum.png`` (Captum-equivalent Saliency, shown as max over channels).
"""

from __future__ import annotations

import numpy as np

import jaxviz
from jaxviz import figures
from jaxviz.labels import class_names

from _common import course_images, parser, say


def main() -> None:
    args = parser(__doc__, "saliency").parse_args()
    model = jaxviz.load_model(weights=args.weights)
    X, y = course_images(5)
    x = jaxviz.preprocess(X)
    names = [class_names()[i] for i in y]
    course = np.asarray(jaxviz.saliency_map(model, x, y))
    captum = figures.channel_max(jaxviz.saliency(model, x, y))
    from pathlib import Path

    out = Path(args.out)
    figures.save_grid(out / "saliency_course.png", [list(X), list(figures.minmax(course))], col_titles=names,
                      row_titles=["image", "saliency (course)"])
    figures.save_grid(out / "saliency_captum.png", [list(X), list(figures.percentile_clip(captum))],
                      col_titles=names, row_titles=["image", "Saliency (Captum)"])
    say(f"wrote {out / 'saliency_course.png'} and {out / 'saliency_captum.png'}")


if __name__ == "__main__":
    main()
