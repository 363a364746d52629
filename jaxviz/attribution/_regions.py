"""Local perturbations, and single units, evaluated on their region alone (#20's
receptive-field saving).

A unit of a layer moves with the input inside its receptive field alone: a neuron method's
attributions at the input (a unit's gradient, its DeepLift, its integrated gradients) are
computed from a crop around that field, with the unit at its place in the crop's output,
and pasted into zeros (:func:`on_unit_crops`).  The crops follow the same geometry as
occlusion's below.

An occlusion window changes only the activations whose receptive field meets it.  Take a
layer L that cuts the network (everything after it reads the input through L alone): each
occluded image's L output is the unoccluded image's, except on a block of rows and columns
around the window.  That block is computed from a crop of the occluded image, big enough
that the block's receptive field lies inside it (or reaches the image's border, where the
crop's padding is the image's), and pasted into the unoccluded L output; the network then
resumes from L (``Model.apply(replace=)``).  The result is the same number: the pasted
values are what the whole image gives there, and nothing else changed.

Nothing here knows an architecture.  The geometry comes from the network itself:

* which layers are cuts: in the traced program, right after L is made it is the only value
  from the input still read on the way to the logits (:func:`cuts`), and the forward pass
  with L's output replaced does not read the input (:func:`is_cut`);
* each candidate's receptive fields, per axis: positive weights and an infinite pixel,
  whose infinities (or, past a saturating activation, changes) reach the outputs that
  depend on it, at consecutive rows and columns (the fields repeat with the layer's
  stride J);
* a crop that starts on a multiple of J and has the image's size modulo J computes the same
  outputs as the whole image, shifted by its start / J, wherever its padding does not reach;
* the cost of the layers below and above each candidate, counted from the traced program,
  chooses the layer;
* the chosen plan is checked once on the model's own weights and a random image: every
  crop's block against the whole image's, so that a network outside these assumptions gets
  the plain evaluation instead of a wrong number.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend import core as jcore

from jaxviz import _chunks, _checks
from jaxviz.errors import InputError
from jaxviz.models import catalog, network as _network

# a candidate layer's total stride J is found from 2J + 1 probed rows (SqueezeNet's last
# Fire blocks have J = 16; a layer of stride 32 leaves too little of the image out of a crop)
LARGEST_STRIDE = 16
# what an element written costs against a multiply-add, in the cost model (memory-bound
# operations: the first max-pool takes a quarter of SqueezeNet's forward pass)
ELEMENT_COST = 8.0
WORTH_IT = 0.8  # a plan is used when it costs at most this share of the plain evaluation
# planning evaluates the network on 2·LARGEST_STRIDE + 1 probes and compiles two programs:
# fewer occluded images than this are evaluated whole
PLANNING_PAYS = 512
MOST_CHECKED = 4  # plans checked (a compile each) before evaluating whole images


@dataclass(frozen=True)
class Axis:
    """One spatial axis of a plan: perturbation k is evaluated on input rows
    ``crop_starts[k] … + crop``, and L's rows ``block_starts[k] … + block`` are pasted.
    The tables are not part of the plan's identity (a compiled program takes them as
    arguments)."""

    crop: int
    block: int
    stride: int
    crop_starts: np.ndarray = field(compare=False, repr=False)
    block_starts: np.ndarray = field(compare=False, repr=False)

    @property
    def local_starts(self) -> np.ndarray:
        """Where each block starts in its crop's L output."""
        return self.block_starts - self.crop_starts // self.stride


@dataclass(frozen=True)
class Plan:
    layer: str
    rows: Axis
    cols: Axis
    cost: float = field(compare=False)  # against the plain evaluation's 1

    def tables(self) -> tuple:
        """(crop, local, block) starts of the rows, then of the columns, as int32 arrays."""
        return tuple(jnp.asarray(t, jnp.int32) for axis in (self.rows, self.cols)
                     for t in (axis.crop_starts, axis.local_starts, axis.block_starts))


# ---------------------------------------------------------------------------- geometry


def receptive_fields(positions, hit, n_in: int):
    """``(J, first, last)``: the stride and each output row's input rows ``first[i] …
    last[i]`` (clipped to the image), from ``hit`` (P, output rows): the rows an infinity at
    input row ``positions[p]`` (consecutive) reaches; ``None`` when they do not follow one
    stride.  A row no output reads (a stride that skips the last ones) reaches none."""
    probed, hit = np.asarray(positions), np.asarray(hit, bool)
    n_out = hit.shape[1]
    some = hit.any(axis=1)
    positions, seen = probed[some], hit[some]
    lo = seen.argmax(axis=1)
    hi = n_out - 1 - seen[:, ::-1].argmax(axis=1)
    up = np.flatnonzero(np.diff(hi)) + 1
    down = np.flatnonzero(np.diff(lo)) + 1
    if len(up) < 2 or len(down) < 2 or np.any(np.diff(positions) != 1):
        return None
    stride = int(up[1] - up[0])
    if (np.any(np.diff(up) != stride) or np.any(np.diff(down) != stride) or np.any(hi[up] - hi[up - 1] != 1)
            or np.any(lo[down] - lo[down - 1] != 1)):
        return None
    rows = np.arange(n_out)
    first = positions[up[0]] + (rows - hi[up[0]]) * stride
    last = positions[down[0]] - 1 + (rows - lo[down[0] - 1]) * stride
    first, last = np.clip(first, 0, n_in - 1), np.clip(last, 0, n_in - 1)
    if np.any(last < first):
        return None
    for r, row in zip(probed, hit):  # every probe as the fields predict
        if not np.array_equal((first <= r) & (r <= last), row):
            return None
    return stride, first, last


def window_boxes(size: int, window: int, step: int):
    """(starts, ends) of Captum's sliding windows along one axis (``ends`` exclusive)."""
    shifts = int(np.ceil((size - window) / step)) + 1
    starts = np.arange(shifts) * step
    return starts, np.minimum(starts + window, size)


def axis_plan(stride: int, first, last, n_in: int, starts, ends) -> Axis:
    """The crops and blocks of perturbations that change input rows ``starts[k] …
    ends[k] − 1``."""
    n_out = len(first)
    # an empty perturbation (a window past the edge) changes nothing: any block will do
    starts = np.minimum(np.asarray(starts), n_in - 1)
    ends = np.maximum(np.minimum(np.asarray(ends), n_in), starts + 1)
    # first and last grow with the row: the changed rows are an interval
    lo = np.searchsorted(last, starts, side="left")
    hi = np.searchsorted(first, ends - 1, side="right") - 1
    empty = lo > hi  # rows no output reads (a stride that skips the last ones)
    lo, hi = np.where(empty, n_out - 1, lo), np.where(empty, n_out - 1, hi)
    block = int(np.max(hi - lo + 1))
    block_starts = np.minimum(lo, n_out - block)
    crop, crop_starts = aligned_crops(stride, n_in, first[block_starts], last[block_starts + block - 1] + 1)
    return Axis(crop=crop, block=block, stride=stride, crop_starts=crop_starts, block_starts=block_starts.astype(np.int64))


def aligned_crops(stride: int, n_in: int, need_from, need_to, least: int = 1):
    """``(crop, starts)``: the smallest crop length (the image's length modulo J, at least
    ``least`` where the image is) and, per entry, a start on a multiple of J such that
    input rows ``need_from … need_to − 1`` lie in the crop."""
    smallest = n_in % stride or stride
    smallest += max(0, -(-(min(least, n_in) - smallest) // stride)) * stride
    for crop in range(smallest, n_in + 1, stride):
        # the last crop start at or before what each entry needs, on a multiple of J
        starts = np.minimum(need_from, n_in - crop) // stride * stride
        if np.all(starts + crop >= need_to):
            break
    return crop, starts.astype(np.int64)


def _probes(image_shape, rows_at, cols_at, dtype):
    """Images of zeros, image p with one infinite pixel at (rows_at[p], cols_at[p])."""
    probes = np.zeros((len(rows_at),) + tuple(image_shape), dtype)
    probes[np.arange(len(rows_at)), rows_at, cols_at] = np.inf
    return probes


def probe_model(model):
    """``model`` with the weights a probe needs: every kernel (a float leaf of two or more
    axes, the last its outputs) the mean over its inputs, 1/(their number), and every other
    float leaf (biases, BatchNorm's scale, shift and statistics) 1.

    Nothing overflows (a layer averages its inputs; a BatchNorm is about the identity,
    (v − 1)/√(1 + ε) + 1), and nothing shrinks a probe's change away before it reaches a
    layer: after a ReLU6 has cut an infinity down to 6, what follows still passes it on
    at its size (with weights of 1e-4 for everything, each BatchNorm divided it by about
    a hundred against a constant 1e-4, and MobileNetV2's fields ended at its first
    block).  The sizes only matter for that: which outputs change is the network's
    structure.  A leaf laid out otherwise gets other sizes, and at worst fields that end
    early (the plan's check on numbers is the guard).
    """
    def weight(p):
        if not jnp.issubdtype(p.dtype, jnp.floating):
            return p
        if p.ndim >= 2:
            return jnp.full_like(p, 1.0 / math.prod(p.shape[:-1]))
        return jnp.ones_like(p)

    return jax.tree_util.tree_map(weight, model)


@functools.partial(jax.jit, static_argnames=("layers",))
def _reached(model, probes, layers):
    """Per layer, the (P, rows) and (P, columns) of its output an infinite pixel reaches.

    ``model`` has positive weights (:func:`probe_model`): an infinite input stays infinite
    through every sum, product, maximum, ReLU and BatchNorm that reads it (a NaN marker
    would not do: XLA's fused maximum may drop NaNs).  What a probe changes without making
    it infinite (past a ReLU6, or a squeeze-excitation gate, saturated) is found against
    the image of zeros, evaluated in the same batch: the same arithmetic on the same
    values, so any difference is the probe's.
    """

    def one(v):
        k = v.shape[0]
        outputs = model.apply(model.params, jnp.concatenate([v, jnp.zeros_like(v[:1])]), capture=layers)
        reached = {n: ~jnp.isfinite(outputs[n][:k]) | (outputs[n][:k] != outputs[n][k:]) for n in layers}
        return tuple((reached[n].any(axis=(2, 3)), reached[n].any(axis=(1, 3))) for n in layers)

    return _chunks.map_chunks(one, probes)


@functools.partial(jax.jit, static_argnames=("layer",))
def _layer_output(model, x, layer):
    return _chunks.map_chunks(lambda v: model.apply(model.params, v, capture=(layer,))[layer], x)


def fields(model, image_shape, layers):
    """``{layer: ((J, first, last) rows, (J, first, last) columns)}`` for the cuts
    ``layers`` (in forward order) whose receptive fields follow one stride along both axes,
    up to the first that does not: a cut after it reads the input through it, so its
    fields are as wide (a probe seen to vanish further on, a NaN from ``∞ − ∞`` dropped by a
    maximum, must not make a later layer look local)."""
    h, w, _ = image_shape
    count = min(h, w, 2 * LARGEST_STRIDE + 1)
    rows_at, cols_at = np.arange(count) + (h - count) // 2, np.arange(count) + (w - count) // 2
    # the weights as arguments: constants inside the program would let XLA fold them
    probes = _probes(image_shape, rows_at, cols_at, np.dtype(model.dtype))
    reached = jax.device_get(_reached(probe_model(model), probes, layers))
    found = {}
    for name, hits in zip(layers, reached):
        axes = []
        for positions, hit, n_in in zip((rows_at, cols_at), hits, (h, w)):
            geometry = receptive_fields(positions, hit, n_in)
            if geometry is None:
                break
            axes.append(geometry)
        if len(axes) < 2:
            break
        found[name] = tuple(axes)
    return found


# ---------------------------------------------------------------------------- the program


def _eqn_cost(eqn) -> float:
    out = sum(math.prod(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape"))
    name = eqn.primitive.name
    if name == "dot_general":
        (contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        return out * math.prod(lhs[d] for d in contract)
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        spec = eqn.params["dimension_numbers"].rhs_spec  # (out, in, spatial...)
        return out * math.prod(rhs[d] for d in spec[1:])
    inner = [p for p in eqn.params.values() if isinstance(p, (jcore.ClosedJaxpr, jcore.Jaxpr))]
    if inner:
        return sum(_jaxpr_cost(j.jaxpr if hasattr(j, "jaxpr") else j) for j in inner)
    return ELEMENT_COST * out


def _jaxpr_cost(jaxpr) -> float:
    return sum(_eqn_cost(e) for e in jaxpr.eqns)


def _ancestors_cost(jaxpr, var, costs) -> float:
    """The cost of the equations ``var`` depends on."""
    producer = {id(v): i for i, e in enumerate(jaxpr.eqns) for v in e.outvars}
    seen, stack, total = set(), [var], 0.0
    while stack:
        v = stack.pop()
        i = producer.get(id(v))
        if i is None or i in seen:
            continue
        seen.add(i)
        total += costs[i]
        stack.extend(u for u in jaxpr.eqns[i].invars if not _literal(u))
    return total


def _literal(v) -> bool:
    return isinstance(v, jcore.Literal)


def cuts(jaxpr, output, candidates) -> set:
    """The ``candidates`` (variables) every path from the program's first input to
    ``output`` passes through: in program order, right after such a variable is made it
    is the only value from the input that anything reaching ``output`` still reads
    (sound: a variable left out can only be a cut hidden by the order)."""
    eqns = jaxpr.eqns
    producer = {id(v): i for i, e in enumerate(eqns) for v in e.outvars}
    useful, _ = _liveness(jaxpr, [output])
    from_input = {id(jaxpr.invars[0])}
    last_read = {id(jaxpr.invars[0]): -1}
    for i, e in enumerate(eqns):
        if any(not _literal(v) and id(v) in from_input for v in e.invars):
            from_input.update(id(v) for v in e.outvars)
            for v in e.outvars:
                last_read[id(v)] = i  # made here; read until…
        if useful[i]:
            for v in e.invars:
                if not _literal(v) and id(v) in from_input:
                    last_read[id(v)] = max(last_read[id(v)], i)
    crossing = np.zeros(len(eqns) + 1, np.int64)  # values from the input alive after eqn p
    for key, end in last_read.items():
        start = producer.get(key, -1)
        if end > start:
            crossing[start + 1] += 1
            crossing[end + 1] -= 1
    alive = np.cumsum(crossing)  # alive[p + 1]: read after eqn p
    return {id(v) for v in candidates
            if id(v) in producer and last_read.get(id(v), -1) > producer[id(v)] and alive[producer[id(v)] + 1] == 1}


def _liveness(jaxpr, outputs):
    """(each equation's whether it reaches ``outputs`` or has effects, the ids of the
    variables read on the way), top-level equations as wholes."""
    live = {id(v) for v in outputs if not _literal(v)}
    useful = [False] * len(jaxpr.eqns)
    for i in range(len(jaxpr.eqns) - 1, -1, -1):
        eqn = jaxpr.eqns[i]
        if any(id(v) in live for v in eqn.outvars) or eqn.effects:
            useful[i] = True
            live.update(id(v) for v in eqn.invars if not _literal(v))
    return useful, live


def _reads_input(jaxpr) -> list[bool]:
    """Which inputs the outputs depend on."""
    _, live = _liveness(jaxpr, jaxpr.outvars)
    return [id(v) in live for v in jaxpr.invars]


def is_cut(model, layer: str, image_shape, target_batch: int = 1) -> bool:
    """Whether the forward pass with ``layer``'s output replaced reads nothing before it."""
    return network_is_cut(model.architecture.network, model.params, layer, tuple(image_shape), model.dtype,
                          target_batch)


def network_is_cut(network, params, layer: str, image_shape, dtype, target_batch: int = 1) -> bool:
    """:func:`is_cut` from the network and its parameters (or their shapes alone)."""
    x = jax.ShapeDtypeStruct((target_batch,) + tuple(image_shape), dtype)
    shape = jax.eval_shape(lambda p, v: _network.run(network, p, v, capture=(layer,))[layer], params, x)
    target = jax.ShapeDtypeStruct((target_batch,), jnp.int32)
    closed = jax.make_jaxpr(
        lambda p, v, value, t: _network.run(network, p, v, replace={layer: value}, target=t))(params, x, shape, target)
    return not _reads_input(closed.jaxpr)[len(jax.tree_util.tree_leaves(params))]


# ---------------------------------------------------------------------------- choosing


def _can_probe(model) -> bool:
    """Whether the network can be probed and a plan checked here: its weights' values are
    known, and this is not inside a traced function (jit, eval_shape), where every value
    is traced."""
    return (all(_checks.is_concrete(p) for p in jax.tree_util.tree_leaves(model.params))
            and _checks.is_concrete(jnp.zeros(())))


def _crop_output_shape(model, layer: str, height: int, width: int, channels: int):
    """The shape of ``layer``'s output for one crop of ``height``×``width``, or ``None``
    for a crop too small for the network."""
    try:
        return jax.eval_shape(lambda v: model.apply(model.params, v, capture=(layer,))[layer],
                              jax.ShapeDtypeStruct((1, height, width, channels), model.dtype)).shape
    except (TypeError, ValueError, InputError):
        return None


def plan(model, image_shape, rows, cols, *, most_cost: float = WORTH_IT) -> Plan | None:
    """The cheapest exact region plan for perturbations of images of ``image_shape`` that
    change rows ``rows = (starts, ends)`` and columns ``cols`` (each perturbation an entry
    of each, or, for a grid like occlusion's, the rows and columns indexed apart), or
    ``None`` when none costs at most ``most_cost`` of the plain evaluation (or the network
    is outside the assumptions above)."""
    if not _can_probe(model):
        return None
    for option in options(model, image_shape, rows, cols)[:MOST_CHECKED]:
        if option.cost > most_cost:
            break
        if is_cut(model, option.layer, image_shape) and _computes_the_same(model, option, image_shape):
            return option
    return None


def window_plan(model, image_shape, window, strides, *, most_cost: float = WORTH_IT) -> Plan | None:
    """:func:`plan` for Captum's sliding windows, ``window`` every ``strides`` (H, W, C):
    the rows and columns indexed by each axis's shift."""
    boxes = (window_boxes(size, win, step) for size, win, step in zip(image_shape[:2], window[:2], strides[:2]))
    return plan(model, image_shape, *boxes, most_cost=most_cost)


def options(model, image_shape, rows, cols) -> list[Plan]:
    """Every layer's plan whose receptive fields follow one stride, cheapest first (not yet
    checked to be a cut, nor on numbers)."""
    h, w, c = image_shape
    architecture = model.architecture
    output = architecture.output
    x = jax.ShapeDtypeStruct((1, h, w, c), model.dtype)
    candidates = tuple(n for n in architecture.layer_names if n not in architecture.class_layers)
    names = candidates + (output,)
    # the network's own program, not Model.apply's one call of it: each layer's dependencies
    def outputs(v):
        values = _network.run(architecture.network, model.params, v, capture=names)
        return tuple(values[n] for n in names)

    closed = jax.make_jaxpr(outputs)(x)
    jaxpr = closed.jaxpr
    costs = [_eqn_cost(e) for e in jaxpr.eqns]
    total = sum(costs)
    shapes = {n: v.aval.shape for n, v in zip(candidates, jaxpr.outvars)}
    variables = dict(zip(candidates, jaxpr.outvars))
    cut = cuts(jaxpr, jaxpr.outvars[-1], variables.values())
    spatial = tuple(n for n in candidates if len(shapes[n]) == 4 and 1 < shapes[n][1] < h and 1 < shapes[n][2] < w
                    and id(variables[n]) in cut)
    if not spatial:
        return []
    below = {n: _ancestors_cost(jaxpr, v, costs) for n, v in zip(candidates, jaxpr.outvars) if n in spatial}
    geometry = _fields(model, image_shape, spatial)
    found = []
    for name, ((jr, fr, lr), (jc, fc, lc)) in geometry.items():
        row_plan = axis_plan(jr, fr, lr, h, *rows)
        col_plan = axis_plan(jc, fc, lc, w, *cols)
        _, hl, wl, cl = shapes[name]
        paste = ELEMENT_COST * hl * wl * cl
        cost = (below[name] * row_plan.crop * col_plan.crop / (h * w) + total - below[name] + paste) / total
        found.append(Plan(name, row_plan, col_plan, cost))
    return sorted(found, key=lambda p: p.cost)


def _computes_the_same(model, plan: Plan, image_shape) -> bool:
    """The plan's blocks from crops of a random image equal the whole image's (each row
    crop and each column crop met at least once)."""
    h, w, c = image_shape
    layer, rows, cols = plan.layer, plan.rows, plan.cols
    crop_shape = _crop_output_shape(model, layer, rows.crop, cols.crop, c)
    if (crop_shape is None
            or rows.local_starts.max() + rows.block > crop_shape[1] or cols.local_starts.max() + cols.block > crop_shape[2]
            or min(rows.local_starts.min(), cols.local_starts.min()) < 0):
        return False
    x = jax.random.normal(jax.random.key(0), (1, h, w, c), model.dtype)
    # each distinct (crop, block) of each axis once
    row_pairs = np.unique(np.stack([rows.crop_starts, rows.block_starts], 1), axis=0)
    col_pairs = np.unique(np.stack([cols.crop_starts, cols.block_starts], 1), axis=0)
    count = max(len(row_pairs), len(col_pairs))
    pairs = [(row_pairs[k % len(row_pairs)], col_pairs[k % len(col_pairs)]) for k in range(count)]
    crops = jnp.stack([x[0, r[0]:r[0] + rows.crop, q[0]:q[0] + cols.crop] for r, q in pairs])
    whole = np.asarray(_layer_output(model, x, layer)[0])
    parts = np.asarray(_layer_output(model, crops, layer))
    for p, ((cr, r0), (cc, c0)) in enumerate(pairs):
        u, v = r0 - cr // rows.stride, c0 - cc // cols.stride
        want = whole[r0:r0 + rows.block, c0:c0 + cols.block]
        got = parts[p, u:u + rows.block, v:v + cols.block]
        scale = float(np.abs(want).max()) or 1.0
        if not np.all(np.abs(got - want) <= 1e-3 * scale):
            return False
    return True


def unit_crops(model, image_shape, layer: str, unit_rows, unit_cols):
    """Crops of the images from which one unit per image of ``layer``'s output, at rows
    ``unit_rows`` and columns ``unit_cols`` (N,), is computed as from the whole image (what
    a unit's gradient needs: nothing outside its receptive field moves it).

    Returns ``((crop_h, crop_w), (row_starts, col_starts), (local_rows, local_cols))``: image
    n's crop starts at its row and column starts, and its unit is at the local row and
    column of the crop's output; ``None`` when the crops would be the whole image, or the
    network is outside this module's assumptions (checked on the model's weights and a
    random image, as a plan is), or its weights are not known here (inside a traced
    function)."""
    if not _can_probe(model):
        return None
    h, w, c = image_shape
    geometry = _fields(model, image_shape, (layer,)).get(layer)
    if geometry is None:
        return None
    unit_rows, unit_cols = np.asarray(unit_rows), np.asarray(unit_cols)
    least = model.architecture.minimum_input_size  # the crops go through the method's own checks
    sizes, starts, local = [], [], []
    for (stride, first, last), units, n_in in zip(geometry, (unit_rows, unit_cols), (h, w)):
        crop, crop_starts = aligned_crops(stride, n_in, first[units], last[units] + 1, least)
        sizes.append(crop)
        starts.append(crop_starts)
        local.append(units - crop_starts // stride)
    if sizes == [h, w] or not model.architecture.input_size_ok(*sizes):
        return None
    crop_shape = _crop_output_shape(model, layer, sizes[0], sizes[1], c)
    if crop_shape is None or any(v.min() < 0 or v.max() >= n for v, n in zip(local, crop_shape[1:3])):
        return None
    # each distinct crop of a random image once: every unit as the whole image's
    x = jax.random.normal(jax.random.key(0), (1, h, w, c), model.dtype)
    whole = np.asarray(_layer_output(model, x, layer)[0])
    distinct, which = np.unique(np.stack(starts, axis=1), axis=0, return_inverse=True)
    crops = jnp.stack([x[0, r:r + sizes[0], q:q + sizes[1]] for r, q in distinct])
    parts = np.asarray(_layer_output(model, crops, layer))
    want = whole[unit_rows, unit_cols]
    got = parts[which.reshape(-1), local[0], local[1]]
    if not np.all(np.abs(got - want) <= 1e-3 * (float(np.abs(want).max()) or 1.0)):
        return None
    return tuple(sizes), tuple(starts), tuple(local)


def _fields(model, image_shape, layers):
    """:func:`fields`, for an architecture jaxviz writes probed once per process for each
    size, layers and dtype (the probe evaluates the network on 2·LARGEST_STRIDE + 2 images
    of the input's size), not again on each occlusion call or CLI batch."""
    if isinstance(model.arch, str):
        return _architecture_fields(model.arch, tuple(image_shape), tuple(layers), np.dtype(model.dtype).name)
    return fields(model, image_shape, layers)


@functools.lru_cache(maxsize=64)
def _architecture_fields(arch: str, image_shape, layers: tuple[str, ...], dtype: str):
    """:func:`fields` of a named architecture: its structure alone decides them (a probe's
    weights are constants), so any parameters of its shapes will do."""
    from jaxviz.models.model import Model  # (the models package imports nothing from here)

    params_like = _network.call_listing(catalog.network(arch)).params_like
    params = jax.tree_util.tree_map(lambda p: jnp.zeros(p.shape, dtype), params_like)
    return fields(Model(params, arch), image_shape, layers)


def neuron_crops(model, x, neuron):
    """:func:`unit_crops` for a :class:`jaxviz.scoring.Neuron` of a spatial layer, with the
    crops' starts as int32 arrays and the units as a Neuron of the crops' layer output;
    ``None`` where :func:`unit_crops` gives none, for a unit of a flat layer, or for a
    traced neuron."""
    if neuron.index.shape[1] != 3 or not _checks.is_concrete(neuron.index):
        return None
    index = np.asarray(neuron.index)
    found = unit_crops(model, x.shape[1:], neuron.layer, index[:, 1], index[:, 2])
    if found is None:
        return None
    size, starts, local = found
    local_index = np.stack([index[:, 0], *local], axis=1)
    return size, tuple(jnp.asarray(v, jnp.int32) for v in starts), type(neuron)(neuron.layer, jnp.asarray(
        local_index, jnp.int32))


@functools.partial(jax.jit, static_argnames=("size",))
def crop_images(v, size, starts):
    """(N, *size, C): image n's crop at (starts[0][n], starts[1][n])."""
    return jax.vmap(lambda u, r, q: jax.lax.dynamic_slice(u, (r, q, jnp.zeros_like(r)), size + (u.shape[-1],)))(
        v, *starts)


@functools.partial(jax.jit, static_argnames=("size",))
def crop_shared(v, size, starts):
    """(N·B, *size, C): every one of the B images ``v`` cropped at each image n's start,
    image n's crops first (a distribution of baselines shared by N images)."""
    crops = jax.vmap(lambda r, q: crop_images(v, size, (jnp.full(v.shape[:1], r), jnp.full(v.shape[:1], q))))(
        *starts)
    return crops.reshape((-1,) + crops.shape[2:])


@functools.partial(jax.jit, static_argnames=("shape",))
def paste_crops(crops, shape, starts):
    """(N, *shape): zeros with image n's crop in place (the inverse of :func:`crop_images`)."""
    return jax.vmap(lambda t, r, q: jax.lax.dynamic_update_slice(jnp.zeros(shape, t.dtype), t,
                                                                   (r, q, jnp.zeros_like(r))))(crops, *starts)


def on_unit_crops(method, model, x, neuron, *images):
    """``method(x, neuron, *images)``, a unit's attributions at the input (N, H, W, C),
    computed from each image's crop around its unit's receptive field (and the same crop of
    each of ``images``, (N, H, W, C) arrays such as baselines) and pasted into zeros: the
    same numbers, as nothing outside the field moves the unit.  The whole images where
    :func:`neuron_crops` finds no crops."""
    found = neuron_crops(model, x, neuron)
    if found is None:
        return method(x, neuron, *images)
    size, starts, local = found
    crops = method(crop_images(x, size, starts), local, *(crop_images(v, size, starts) for v in images))
    return paste_crops(crops, x.shape[1:], starts)


# ---------------------------------------------------------------------------- evaluating


def scores_on_crops(model, plan: Plan, tables, whole, target, image_shape, items, ablated_crop, chunk: int):
    """(Q,) target scores of Q perturbed images, each evaluated below ``plan.layer`` on its
    crop alone, pasted into ``whole`` (N, …) (the unperturbed images' output of that layer)
    and resumed.

    ``items``: (Q,) arrays, the first the image of each perturbed image, then its entry in
    the plan's row tables and in its column tables (``tables``: :meth:`Plan.tables`), then
    whatever else ``ablated_crop(image, crop_row, crop_col, *rest)`` needs to make that
    image's (crop, crop, C) crop.  ``chunk`` perturbed images per evaluation.
    """
    crop_r, local_r, block_r, crop_c, local_c, block_c = tables
    rows, cols, layer = plan.rows, plan.cols, plan.layer
    zero = jnp.zeros((), jnp.int32)

    def evaluate(images, row_at, col_at, *rest):
        crops = jax.vmap(ablated_crop)(images, crop_r[row_at], crop_c[col_at], *rest)
        out = model.apply(model.params, crops, capture=(layer,))[layer]
        part = jax.vmap(lambda o, u, v: jax.lax.dynamic_slice(o, (u, v, zero), (rows.block, cols.block, o.shape[-1])))(
            out, local_r[row_at], local_c[col_at])
        pasted = jax.vmap(lambda a, p, u, v: jax.lax.dynamic_update_slice(a, p, (u, v, zero)))(
            whole[images], part, block_r[row_at], block_c[col_at])
        # the layers before ``layer`` only give shapes: nothing after it reads them (a cut)
        shapes = jnp.zeros((images.shape[0],) + tuple(image_shape), whole.dtype)
        return model.apply(model.params, shapes, replace={layer: pasted}, target=target[images])

    return _chunks.map_chunks(evaluate, *items, chunk=chunk)
