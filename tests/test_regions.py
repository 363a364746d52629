"""Occlusion and the neuron methods on crops (jaxviz.attribution._regions): the geometry,
the cuts and the plan, by hand.  That occlusion's numbers equal the whole images' is the
parity tests' (every family, your own model, the pretrained SqueezeNet at 224 against
Captum); the neuron methods' are checked here against the class methods on whole images."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxviz
from jaxviz import scoring
from jaxviz.attribution import _regions
from jaxviz.errors import InputError


def _conv_hits(positions, n_in, kernel, stride, padding):
    """What a probe at each input row reaches through one convolution, by its definition."""
    n_out = (n_in + 2 * padding - kernel) // stride + 1
    starts = np.arange(n_out) * stride - padding
    return np.array([(starts <= r) & (r < starts + kernel) for r in positions])


def test_receptive_fields_of_a_strided_convolution():
    positions = np.arange(3, 20)
    stride, first, last = _regions.receptive_fields(positions, _conv_hits(positions, 24, 3, 2, 1), 24)
    assert stride == 2
    rows = np.arange(12)
    np.testing.assert_array_equal(first, np.clip(2 * rows - 1, 0, 23))
    np.testing.assert_array_equal(last, np.clip(2 * rows + 1, 0, 23))


def test_receptive_fields_refuse_hits_that_follow_no_stride():
    positions = np.arange(3, 20)
    hit = _conv_hits(positions, 24, 3, 2, 1)
    hit[7] = False
    hit[7, 0] = True  # one probe reaching a far row
    assert _regions.receptive_fields(positions, hit, 24) is None
    assert _regions.receptive_fields(positions, np.ones_like(hit), 24) is None  # a global layer


def test_axis_plan_crops_hold_each_block_and_start_on_the_stride():
    n_in, kernel, stride, padding = 40, 5, 4, 2
    positions = np.arange(5, 30)
    j, first, last = _regions.receptive_fields(positions, _conv_hits(positions, n_in, kernel, stride, padding), n_in)
    window, step = 7, 5
    axis = _regions.axis_plan(j, first, last, n_in, *_regions.window_boxes(n_in, window, step))
    assert axis.crop % j == n_in % j and axis.crop < n_in
    for k, (c, b, u) in enumerate(zip(axis.crop_starts, axis.block_starts, axis.local_starts)):
        assert c % j == 0 and 0 <= c <= n_in - axis.crop and u == b - c // j
        a, e = k * step, min(k * step + window, n_in)
        changed = np.flatnonzero((first < e) & (last >= a))
        assert b <= changed[0] and changed[-1] < b + axis.block  # every changed row is pasted
        # and every pasted row is computed from the crop alone (or the image's own border)
        assert c <= first[b] and last[b + axis.block - 1] < c + axis.crop


def test_cuts_of_a_program_with_a_skip():
    def f(x):
        a = jnp.sin(x)  # not a cut: the skip below reads x
        b = jnp.cos(a) + x
        c = jnp.tanh(b)  # a cut
        return c * 2.0

    jaxpr = jax.make_jaxpr(f)(jnp.ones(3)).jaxpr
    a, _, b, c, out = (e.outvars[0] for e in jaxpr.eqns)
    assert _regions.cuts(jaxpr, out, [a, b, c]) == {id(b), id(c)}


def test_occlusion_regions_argument():
    model = jaxviz.init_model(jax.random.key(0))
    with pytest.raises(InputError, match="regions"):
        jaxviz.occlusion(model, np.zeros((1, 32, 32, 3), np.float32), [1], sliding_window_shapes=(8, 8, 3),
                         regions="sometimes")


def test_fields_stop_at_a_squeeze_excitation_gate():
    """MobileNetV3's first block scales its channels by a gate computed from the whole map:
    from there on every output reads every pixel, and nothing after it gets fields, however
    local the probes look further on (an infinity that became a NaN may be dropped by a
    maximum)."""
    model = jaxviz.init_model(jax.random.key(0), "mobilenet_v3_small")
    before, gate, after = "features.1.block.0", "features.1.block.1", "features.2.block.0"
    found = _regions.fields(model, (48, 48, 3), (before, gate, after))
    assert set(found) == {before}
    (j, first, last), _ = found[before]
    # a 3×3 convolution of stride 2, then a 3×3 depthwise one of stride 2 (both padded by 1)
    assert j == 4 and (first[5], last[5]) == (5 * 4 - 3, 5 * 4 + 3)


def test_fields_go_on_past_a_relu6():
    """MobileNetV2's ReLU6 cuts a probe's infinity down to 6; its change must still reach
    the layers after it at its size.  The fields are the definition's: 3×3 convolutions
    (stride 2, 1, 2, 1, 2 from the image to features.4) widen a field by 2 of the previous
    stride each.  (With every weight 1e-4, each BatchNorm shrank the change against its
    constant, and the fields ended at features.1.)"""
    model = jaxviz.init_model(jax.random.key(0), "mobilenet_v2")
    layers = ("features.1", "features.2", "features.3", "features.4")
    found = _regions.fields(model, (96, 96, 3), layers)
    assert set(found) == set(layers)
    for name, (stride, width) in zip(layers, ((2, 7), (4, 11), (4, 19), (8, 27))):
        for j, first, last in found[name]:
            middle = len(first) // 2
            assert (j, last[middle] - first[middle] + 1) == (stride, width), name


def test_a_named_architecture_is_probed_once_per_image_size(monkeypatch):
    """The fields of an architecture jaxviz writes come from its structure alone: they are
    probed once per size (with any weights of its shapes) and equal those probed with the
    model's own weights; a second plan for the same size, for another model of the same
    architecture, probes nothing and is the first plan."""
    shape, window, strides = (64, 64, 3), (6, 6, 3), (4, 4, 3)
    model = jaxviz.init_model(jax.random.key(0), "squeezenet1_1")
    _regions._architecture_fields.cache_clear()
    first = _regions.window_plan(model, shape, window, strides, most_cost=np.inf)
    assert first is not None and _regions._architecture_fields.cache_info().misses == 1
    own = _regions.fields(model, shape, (first.layer,))[first.layer]
    for (j, lo, hi), (j_own, lo_own, hi_own) in zip(_regions._fields(model, shape, (first.layer,))[first.layer], own):
        assert j == j_own and np.array_equal(lo, lo_own) and np.array_equal(hi, hi_own)

    def probe(*args):
        raise AssertionError("probed again")

    monkeypatch.setattr(_regions, "fields", probe)
    again = _regions.window_plan(jaxviz.init_model(jax.random.key(1), "squeezenet1_1"), shape, window, strides,
                                 most_cost=np.inf)
    assert again == first
    for ours, theirs in zip(again.tables(), first.tables()):
        np.testing.assert_array_equal(ours, theirs)


def test_occlusion_inside_jit_evaluates_whole_images():
    """Inside a traced function nothing can be probed: occlusion plans nothing there, and
    gives what it gives outside (on crops or not) rather than failing."""
    model = jaxviz.init_model(jax.random.key(0))
    x = np.random.default_rng(0).normal(size=(1, 48, 48, 3)).astype(np.float32)
    options = dict(sliding_window_shapes=(4, 4, 3), strides=(2, 2, 3))  # 529 windows: planned outside
    traced = jax.jit(lambda v: jaxviz.occlusion(model, v, [3], **options))(x)
    np.testing.assert_allclose(traced, jaxviz.occlusion(model, x, [3], **options), rtol=1e-5, atol=1e-6)


def test_aligned_crops_hold_what_each_entry_needs_and_start_on_the_stride():
    rng = np.random.default_rng(3)
    for stride, n_in, least in ((8, 64, 1), (4, 50, 1), (8, 64, 32), (16, 40, 100)):
        need_from = rng.integers(0, n_in - 1, 20)
        need_to = np.minimum(need_from + rng.integers(1, 20, 20), n_in)
        crop, starts = _regions.aligned_crops(stride, n_in, need_from, need_to, least)
        assert crop % stride == n_in % stride and min(least, n_in) <= crop <= n_in
        assert np.all(starts % stride == 0) and np.all(starts >= 0) and np.all(starts + crop <= n_in)
        assert np.all(starts <= need_from) and np.all(starts + crop >= need_to)
        if crop - stride >= min(least, n_in):  # no shorter crop would do
            shorter = np.minimum(need_from, n_in - crop + stride) // stride * stride
            assert np.any(shorter + crop - stride < need_to)


# a layer of each family whose units see less than a 64×64 image, and no max-pool follows
# (it would leave most units without a gradient)
# the methods with crop code of their own; the rest share neuron_gradient's wrapper and are
# compared on SqueezeNet alone (each family's case compiles every method twice)
SEPARATE_CROP_CODE = ("neuron_gradient", "neuron_gradient_shap", "neuron_conductance")
UNIT_LAYERS = {"squeezenet1_1": "features.3", "resnet18": "layer1", "mobilenet_v2": "features.3"}


@pytest.mark.parametrize("arch", sorted(UNIT_LAYERS))
def test_neuron_methods_on_unit_crops_equal_the_whole_images(arch):
    """Each neuron method computes its unit's attributions from the crop around the unit's
    receptive field and pastes them into zeros; in float64 that is the whole images' result
    (the class methods with the unit as target), for units at a corner, inside, and at the
    opposite border, each image its own."""
    from jaxviz.attribution.neuron_conductance import _neuron_conductance
    from jaxviz.scoring import Neuron

    layer = UNIT_LAYERS[arch]
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(1), arch, dtype=jnp.float64)
        rng = np.random.default_rng(4)
        x = jnp.asarray(rng.normal(size=(3, 64, 64, 3)))
        b = jnp.asarray(0.2 * rng.normal(size=(3, 64, 64, 3)))
        distribution = jnp.asarray(0.2 * rng.normal(size=(2, 64, 64, 3)))  # GradientShap's baselines
        out = np.asarray(model.apply(model.params, x, capture=(layer,))[layer])
        h, w = out.shape[1:3]
        rows, cols = np.array([0, h // 2, h - 1]), np.array([0, w // 3, w - 2])
        channels = out[np.arange(3), rows, cols].argmax(axis=1)  # each unit's strongest channel: not dead
        index = np.stack([channels, rows, cols], axis=1)
        # each image's first class whose score the unit moves (conductance is 0 for the others)
        moved = np.stack([np.asarray(scoring.layer_gradients_and_eval(model, x, jnp.full(3, c), layer)[1])[
            np.arange(3), rows, cols, channels] != 0 for c in range(40)])
        assert moved.any(axis=0).all()
        target = jnp.asarray(moved.argmax(axis=0))
        unit = Neuron(layer, jnp.asarray(index, jnp.int32))
        size, starts, _ = _regions.neuron_crops(model, x, unit)
        assert size[0] < 64 and size[1] < 64
        inside = np.zeros(x.shape, bool)
        for n, (r, q) in enumerate(zip(*map(np.asarray, starts))):
            inside[n, r:r + size[0], q:q + size[1]] = True
        cases = {
            "neuron_gradient": lambda: (jaxviz.neuron_gradient(model, x, index, layer=layer),
                                jaxviz.saliency(model, x, unit, absolute=False)),
            "neuron_guided_backprop": lambda: (jaxviz.neuron_guided_backprop(model, x, index, layer=layer),
                                       jaxviz.guided_backprop(model, x, unit)),
            "neuron_deconvolution": lambda: (jaxviz.neuron_deconvolution(model, x, index, layer=layer),
                                     jaxviz.deconvolution(model, x, unit)),
            "neuron_deeplift": lambda: (jaxviz.neuron_deeplift(model, x, index, layer=layer, baselines=b),
                                jaxviz.deeplift(model, x, unit, baselines=b)),
            "neuron_integrated_gradients": lambda: (
                jaxviz.neuron_integrated_gradients(model, x, index, layer=layer, baselines=b, n_steps=3),
                jaxviz.integrated_gradients(model, x, unit, baselines=b, n_steps=3)),
            "neuron_gradient_shap": lambda: (
                jaxviz.neuron_gradient_shap(model, x, index, layer=layer, baselines=distribution, n_samples=3,
                                            stdevs=0.1, key=jax.random.key(2)),
                jaxviz.gradient_shap(model, x, unit, baselines=distribution, n_samples=3, stdevs=0.1,
                                     key=jax.random.key(2))),
            "neuron_conductance": lambda: (
                jaxviz.neuron_conductance(model, x, target, layer=layer, neuron=index, baselines=b, n_steps=3,
                                          internal_batch_size=6),
                _neuron_conductance(model, x, target, unit, b, 3, "riemann_trapezoid", 2)),
        }
        for name, evaluate in cases.items():
            if arch != "squeezenet1_1" and name not in SEPARATE_CROP_CODE:
                continue  # one wrapper (_regions.on_unit_crops): its geometry is checked by neuron_gradient
            ours, whole = evaluate()
            ours, whole = np.asarray(ours), np.asarray(whole)
            assert np.abs(whole).max(axis=(1, 2, 3)).min() > 0, name  # every image's unit moves
            assert not np.any(whole[~inside]), name  # nothing outside a unit's crop moves it
            np.testing.assert_allclose(ours, whole, rtol=1e-12, atol=1e-14 * np.abs(whole).max(), err_msg=name)


def test_neuron_methods_inside_jit_evaluate_whole_images():
    model = jaxviz.init_model(jax.random.key(0))
    x = np.random.default_rng(0).normal(size=(2, 64, 64, 3)).astype(np.float32)
    index = np.array([[3, 7, 2], [5, 0, 14]])
    traced = jax.jit(lambda v: jaxviz.neuron_gradient(model, v, index, layer="features.4"))(x)
    np.testing.assert_allclose(traced, jaxviz.neuron_gradient(model, x, index, layer="features.4"), rtol=1e-5,
                               atol=1e-7)
