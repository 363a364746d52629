"""The course's class visualisations: tarantula, tick, Yorkshire terrier, oboe, gorilla,
hourglass, each with its snapshot strip after iterations 1, 25, 50, 75 and 100."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

import jaxviz
from jaxviz import figures
from jaxviz.labels import class_names

from _common import parser, say

TARGETS = [76, 78, 187, 683, 366, 604]
SNAPSHOTS = (1, 25, 50, 75, 100)


def main() -> None:
    p = parser(__doc__, "class_visualization")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    model = jaxviz.load_model(weights=args.weights)
    result = jaxviz.class_visualization(model, np.array(TARGETS), key=jax.random.key(args.seed), snapshot_at=SNAPSHOTS)
    snaps = np.asarray(result.snapshots)
    predicted = np.asarray(model(result.images)).argmax(1)
    out = Path(args.out)
    names = class_names()
    for k, target in enumerate(TARGETS):
        strip = [jaxviz.deprocess(snaps[s, k], rescale=True) for s in range(len(SNAPSHOTS))]
        path = out / f"class_{target}_{names[target].replace(' ', '_')}.png"
        figures.save_grid(path, [strip], col_titles=[f"{names[target]} t={t}" for t in SNAPSHOTS])
        say(f"{names[target]}: classified as {names[predicted[k]]}; wrote {path}")


if __name__ == "__main__":
    main()
