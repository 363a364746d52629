"""The course's fooling figure: image 0 (hay) fooled into target 6 (stingray): original,
fooled, difference, magnified difference.  ``--batch`` fools all 25 images to the target
and prints iterations and the largest pixel change per image; ``--epsilon`` reports the
fooling rate of the L∞-bounded variant at 2/255, 4/255 and 8/255."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import jaxviz
from jaxviz import figures
from jaxviz.images import STD
from jaxviz.labels import class_names

from _common import course_images, parser, say


def main() -> None:
    p = parser(__doc__, "fooling")
    p.add_argument("--learning-rate", type=float, default=10.0, help="10 (CS7643) or 1 (CS231n)")
    p.add_argument("--target", type=int, default=6)
    p.add_argument("--batch", action="store_true", help="fool all 25 images")
    p.add_argument("--epsilon", action="store_true", help="fooling rate of the ε-bounded variant")
    args = p.parse_args()
    model = jaxviz.load_model(weights=args.weights)
    X, y = course_images()
    x = jaxviz.preprocess(X)
    out = Path(args.out)
    names = class_names()

    r = jaxviz.fooling_images(model, x[:1], np.array([args.target]), learning_rate=args.learning_rate)
    fooled = jaxviz.deprocess(np.asarray(r.images))[0]
    diff = np.asarray(r.images)[0] - x[0]
    figures.save_grid(
        out / "fooling.png",
        [[X[0], fooled, figures.minmax(diff[None])[0], figures.minmax(np.clip(10 * diff, -1, 1)[None])[0]]],
        col_titles=[names[y[0]], f"fooled: {names[args.target]}", "difference", "magnified ×10"],
    )
    say(f"image 0: {int(r.iterations[0])} iterations, fooled={bool(r.success[0])}; wrote {out / 'fooling.png'}")

    if args.batch:
        r = jaxviz.fooling_images(model, x, np.full(25, args.target), learning_rate=args.learning_rate)
        change = (np.abs(np.asarray(r.images) - x) * STD).max(axis=(1, 2, 3)) * 255
        for i in range(25):
            print(f"{i:2d} {names[y[i]][:24]:24s} iterations {int(r.iterations[i]):3d} fooled {bool(r.success[i])!s:5s} "
                  f"largest pixel change {change[i]:.0f}/255")
        print(f"fooled {int(r.success.sum())}/25")
    if args.epsilon:
        for eps in (2, 4, 8):
            r = jaxviz.fooling_images(model, x, np.full(25, args.target), epsilon=eps / 255)
            print(f"L∞ ε = {eps}/255: fooled {int(r.success.sum())}/25 in ≤ 100 steps of ε/4")


if __name__ == "__main__":
    main()
