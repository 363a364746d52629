"""Model-parameter randomisation (Adebayo et al.'s sanity check): does an explanation change
when the weights it should depend on are replaced by random ones?"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.errors import InputError
from jaxviz.metrics import _common, similarity as _similarity
from jaxviz.models import init_model

ORDERS = ("cascading", "independent")
DEFAULT_MEASURES = ("spearman_abs", "spearman", "ssim")


class MPRTResult(NamedTuple):
    """A randomisation test's result.

    Attributes:
      layers: the steps (a layer or a tuple of layers each), in the order they were
        randomised (cascading: the logits' layer first).
      similarity: ``{measure: (len(layers) + 1, N)}``: row 0 compares the original model's
        maps with themselves, row k the maps after step k (cascading: the top k layers
        random; independent: layer k alone) with the original's.
      maps: (len(layers) + 1, N, H, W) every step's maps (normalised per image), or
        ``None`` unless ``keep_maps``.
    """

    layers: tuple
    similarity: dict
    maps: jax.Array | None


def parameter_layers(model) -> tuple[str, ...]:
    """The layers that hold parameters, in forward order (every convolution, linear layer
    and BatchNorm: the modules Quantus randomises)."""
    if not isinstance(model.params, dict) or not all(isinstance(v, dict) for v in model.params.values()):
        raise InputError("mprt randomises the layers of jaxviz's architectures ({module path: parameters}); "
                         "your own model's parameters are not laid out by layer")
    names = [n for n in model.architecture.layer_names if n in model.params]
    return tuple(names) + tuple(n for n in model.params if n not in names)


@functools.partial(jax.jit, static_argnames=("method", "names", "cascading", "measures", "keep_maps"))
def _mprt(model, x, target, randomised, method, names, cascading, measures, keep_maps):
    original = model.params

    def params_at(step):
        params = dict(original)
        for i, group in enumerate(names):  # step i + 1 randomises a layer or a group of layers
            on = step > i if cascading else step == i + 1
            for name in group:
                params[name] = jax.tree_util.tree_map(lambda r, o: jnp.where(on, r.astype(o.dtype), o),
                                                      randomised[name], original[name])
        return params

    def explain(step):
        return _common.explanation_maps(method(model.replace(params=params_at(step)), x, target))

    base = explain(0)

    def evaluate(step):
        maps = explain(step)
        scores = {m: _similarity.MEASURES[m](base if m != "ssim" else jnp.abs(base),
                                             maps if m != "ssim" else jnp.abs(maps)) for m in measures}
        return scores, (maps if keep_maps else None)

    scores, maps = jax.lax.map(evaluate, jnp.arange(len(names) + 1))
    return scores, maps


def mprt(model, x, target, method, *, key=None, order: str = "cascading", layers=None, randomised=None,
         measures=DEFAULT_MEASURES, keep_maps: bool = False) -> MPRTResult:
    """Explains every image with the model as its layers are randomised one by one, and
    measures how alike each step's maps are to the original model's (Adebayo et al.'s
    model-parameter randomisation test; Quantus ``MPRT``).  A method that passes keeps
    little similarity once the top layers are random.

    Every step of the test runs inside one compiled program, one step at a time.

    Args:
      model: a :class:`jaxviz.Model` of one of jaxviz's architectures.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      method: ``method(model, x, target) -> attributions`` (e.g. ``jaxviz.saliency``; a
        function jit can hash).  Per-channel attributions are summed over the channels.
      key: a jax.random key: the random layers are the architecture's own initialisation
        (``jaxviz.init_model(key, arch)``'s parameters).  Required unless ``randomised``.
      order: ``"cascading"`` (from the logits down, each step adding one random layer;
        Quantus' ``"top_down"``) or ``"independent"`` (one layer at a time).
      layers: the steps, in order: each a layer or a tuple of layers randomised together
        (e.g. a whole block); default one step per layer with parameters, from the top
        down (:func:`parameter_layers` reversed).
      randomised: ``{layer: parameters}`` to use instead of drawing them (how the test
        against Quantus gives both the same random layers).
      measures: from ``"spearman_abs"``, ``"spearman"``, ``"pearson"``, ``"hog"`` (the
        Pearson correlation of scikit-image's HOG features; maps of at least 24×24) of the
        maps each normalised by its largest magnitude, and ``"ssim"`` (of their magnitudes,
        as scikit-image computes it on the 2-D maps; Quantus flattens them to 1-D first).
      keep_maps: also return every step's maps (for figures).

    Returns:
      :class:`MPRTResult`.

    References:
      Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. Sanity Checks for Saliency Maps
      (NeurIPS 2018).
    """
    x, target = scoring.prepare(model, x, target)
    if not callable(method):
        raise _checks.InputTypeError(f"`method` must be a function (model, x, target) -> attributions, got {method!r}")
    _checks.check_choice(order, "order", ORDERS)
    available = parameter_layers(model)
    steps = tuple(reversed(available)) if layers is None else tuple(layers)
    groups = tuple((step,) if isinstance(step, str) else tuple(step) for step in steps)
    unknown = [n for group in groups for n in group if n not in model.params]
    if unknown or not groups or not all(groups):
        raise InputError(f"`layers` must name layers with parameters ({', '.join(available)}), got "
                         f"{', '.join(unknown) or 'none'}")
    measures = tuple(_checks.check_choice(m, "measures", tuple(_similarity.MEASURES)) for m in measures)
    if randomised is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `randomised` is given")
        if not isinstance(model.arch, str):
            raise InputError("your own model has no initialisation jaxviz knows: pass `randomised`")
        randomised = init_model(key, model.arch).params
    missing = [n for group in groups for n in group if n not in randomised]
    if missing:
        raise InputError(f"`randomised` lacks parameters for {', '.join(missing)}")
    randomised = {n: randomised[n] for group in groups for n in group}
    scores, maps = _mprt(model, x, target, randomised, method, groups, order == "cascading", measures,
                         bool(keep_maps))
    return MPRTResult(steps, dict(scores), maps)
