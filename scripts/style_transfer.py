"""The course's style-transfer figures: for each preset (composition_vii, the_scream,
starry_night with tubingen) content | style | result, plus feature inversion (style
weights 0, random init) and texture synthesis (content weight 0, random init)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path

import jax

import jaxviz
from jaxviz import figures

from _common import SHARED, parser, say

st = importlib.import_module("jaxviz.synthesis.style_transfer")


def load(name, size):
    return jaxviz.preprocess(jaxviz.load_image(SHARED / "data" / "styles" / name), size=size)


def main() -> None:
    p = parser(__doc__, "style_transfer")
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--presets", nargs="*", default=list(st.PRESETS))
    args = p.parse_args()
    model = jaxviz.load_model(weights=args.weights)
    out = Path(args.out)
    content = load(st.CONTENT_IMAGE, st.IMAGE_SIZE)
    show = lambda x: jaxviz.deprocess(x, rescale=True)[0]  # noqa: E731
    for name in args.presets:
        preset = st.PRESETS[name]
        style = load(preset["style"], preset["style_size"])
        start = time.perf_counter()
        result = jaxviz.style_transfer(model, content, style, content_weight=preset["content_weight"],
                                       style_weights=preset["style_weights"], tv_weight=preset["tv_weight"],
                                       num_iterations=args.iterations)
        result.images.block_until_ready()
        figures.save_grid(out / f"{name}.png", [[show(content), show(style), show(result.images)]],
                          col_titles=["content", "style", f"result ({args.iterations} it.)"], cell=3.0)
        say(f"{name}: final loss {float(result.losses[-1]):.1f}, {time.perf_counter() - start:.1f} s")
    starry = st.PRESETS["starry_night"]
    inversion = jaxviz.style_transfer(model, content, load(starry["style"], starry["style_size"]),
                                      content_weight=starry["content_weight"], style_weights=(0, 0, 0, 0),
                                      tv_weight=starry["tv_weight"], init="noise", key=jax.random.key(0),
                                      num_iterations=args.iterations)
    texture = jaxviz.style_transfer(model, content, load(starry["style"], starry["style_size"]),
                                    content_weight=0.0, style_weights=starry["style_weights"],
                                    tv_weight=starry["tv_weight"], init="noise", key=jax.random.key(0),
                                    num_iterations=args.iterations)
    figures.save_grid(out / "inversion_and_texture.png",
                      [[show(content), show(inversion.images), show(texture.images)]],
                      col_titles=["content", "feature inversion", "texture (starry_night)"], cell=3.0)
    say(f"wrote {out}")


if __name__ == "__main__":
    main()
