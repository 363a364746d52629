"""jaxviz.metrics: what each metric returns on inputs whose answer is known, its draws, and
bad input (parity with Captum, Quantus and RISE is in parity_tests/test_metrics_parity.py)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxviz
from jaxviz import metrics
from jaxviz.metrics import _common
from jaxviz.metrics.mprt import parameter_layers

T = np.array([3, 300])


@pytest.fixture(scope="module")
def model():
    return jaxviz.load_model()


@pytest.fixture(scope="module")
def x():
    return np.random.default_rng(1).normal(size=(2, 40, 48, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def grads(model, x):
    return np.asarray(jaxviz.saliency(model, x, T, absolute=False))


@pytest.fixture(scope="module")
def top(model, x):
    return np.asarray(model(x)).argmax(-1)


def _probabilities(model, v, target):
    return np.asarray(jax.nn.softmax(model(v), axis=-1))[np.arange(len(v)), target]


def test_deletion_and_insertion_run_from_the_image_to_the_substrate_and_back(model, x, grads, top):
    maps = grads.sum(-1)
    deleted = metrics.deletion(model, x, top, maps, step=500)
    inserted = metrics.insertion(model, x, top, maps, step=500, substrate="zeros")
    steps = -(-40 * 48 // 500) + 1
    assert deleted.probabilities.shape == inserted.probabilities.shape == (2, steps)
    start, end = _probabilities(model, x, top), _probabilities(model, np.zeros_like(x), top)
    assert start.min() > 0.05
    np.testing.assert_allclose(deleted.probabilities[:, 0], start, rtol=1e-5)
    np.testing.assert_allclose(deleted.probabilities[:, -1], end, rtol=1e-5)
    np.testing.assert_allclose(inserted.probabilities[:, 0], end, rtol=1e-5)
    np.testing.assert_allclose(inserted.probabilities[:, -1], start, rtol=1e-5)
    p = np.asarray(deleted.probabilities, np.float64)
    np.testing.assert_allclose(deleted.auc, (p.sum(1) - p[:, 0] / 2 - p[:, -1] / 2) / (steps - 1), rtol=1e-5)
    # the first step removes exactly the 500 most relevant pixels
    keep = (maps < np.sort(maps.reshape(2, -1), axis=1)[:, -500][:, None, None])[..., None]
    np.testing.assert_allclose(deleted.probabilities[:, 1], _probabilities(model, x * keep, top), rtol=1e-5)


def test_a_better_order_deletes_faster(model, x, top):
    """Deleting by the gradient × input ranking lowers the probability sooner than the
    reverse ranking does."""
    maps = np.asarray(jaxviz.input_x_gradient(model, x, top)).sum(-1)
    good = metrics.deletion(model, x, top, maps, step=96).auc
    bad = metrics.deletion(model, x, top, -maps, step=96).auc
    assert (np.asarray(good) < np.asarray(bad)).all()


def test_pixel_flipping_steps_through_the_elements_and_faithfulness_correlation_draws_subsets(model, x, grads, top):
    curve = metrics.pixel_flipping(model, x, top, grads, features_in_step=1000)
    assert curve.probabilities.shape == (2, -(-40 * 48 * 3 // 1000))
    black = np.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)
    np.testing.assert_allclose(curve.probabilities[:, -1], _probabilities(model, black, top), rtol=1e-5)
    p = np.asarray(curve.probabilities, np.float64)
    np.testing.assert_allclose(curve.auc, p.sum(1) - p[:, 0] / 2 - p[:, -1] / 2, rtol=1e-5)
    from jaxviz.metrics.faithfulness_correlation import random_subsets

    subsets = np.asarray(random_subsets(jax.random.key(0), 5, 2, 40 * 48 * 3, 30))
    assert all(len(np.unique(row)) == 30 for row in subsets.reshape(10, 30))
    first = metrics.faithfulness_correlation(model, x, top, grads, key=jax.random.key(0), n_runs=5, subset_size=30)
    given = metrics.faithfulness_correlation(model, x, top, grads, subsets=subsets, n_runs=5, subset_size=30)
    np.testing.assert_array_equal(first, given)
    assert (np.abs(np.asarray(first)) <= 1).all()
    with pytest.raises(jaxviz.InputError, match="subset_size"):
        metrics.faithfulness_correlation(model, x, top, grads, key=jax.random.key(0), subset_size=10 ** 6)


@pytest.mark.parametrize("size, n_subsets", [(2, 21), (3, 35)])  # Floyd's algorithm; ranked draws
def test_faithfulness_correlations_subsets_are_uniform(size, n_subsets):
    """Every subset of ``size`` of 7 elements equally often (40,000 draws: a chi-square
    test at p = 0.001), and every element equally often."""
    from scipy import stats

    from jaxviz.metrics.faithfulness_correlation import random_subsets

    subsets = np.sort(np.asarray(random_subsets(jax.random.key(3), 20_000, 2, 7, size)).reshape(-1, size), axis=1)
    assert (np.diff(subsets, axis=1) > 0).all()
    _, counts = np.unique(subsets, axis=0, return_counts=True)
    assert len(counts) == n_subsets
    assert stats.chisquare(counts).pvalue > 1e-3
    assert stats.chisquare(np.bincount(subsets.ravel(), minlength=7)).pvalue > 1e-3


def test_region_perturbation_removes_one_square_more_each_step(model, x, grads, top):
    from jaxviz.metrics.region_perturbation import patch_ids

    ids = np.asarray(patch_ids(40, 43, 8))
    assert ids.shape == (40, 43) and ids.max() == 5 * 6 - 1
    # the width is padded by 2 before: the first square is 6 wide
    assert (ids[:, :6] == ids[:, :1]).all() and (ids[:, 6] != ids[:, 5]).all()
    drops = np.asarray(metrics.region_perturbation(model, x, top, grads, patch_size=8, regions_evaluation=200))
    assert drops.shape == (2, 30)  # every square, then no more steps
    black = np.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)
    np.testing.assert_allclose(drops[:, -1], _probabilities(model, x, top) - _probabilities(model, black, top),
                               rtol=1e-4, atol=1e-6)
    first = metrics.region_perturbation(model, x, top, grads, order="random", key=jax.random.key(1),
                                        regions_evaluation=5)
    np.testing.assert_array_equal(first, metrics.region_perturbation(model, x, top, grads, order="random",
                                                                     key=jax.random.key(1), regions_evaluation=5))
    with pytest.raises(jaxviz.InputError, match="`key`"):
        metrics.region_perturbation(model, x, top, grads, order="random")


def test_monotonicity_correlation_draws_its_values_from_the_key(model, x, grads, top):
    kwargs = dict(features_in_step=1440, n_samples=2)
    first = metrics.monotonicity_correlation(model, x, top, grads, key=jax.random.key(0), **kwargs)
    values = jax.random.uniform(jax.random.key(0), (4, 2, 2), np.float32)
    np.testing.assert_array_equal(first, metrics.monotonicity_correlation(model, x, top, grads, values=values,
                                                                          **kwargs))
    assert (np.abs(np.asarray(first)) <= 1).all()
    with pytest.raises(jaxviz.InputError, match="fewer than 2 groups"):
        metrics.monotonicity_correlation(model, x, top, grads, key=jax.random.key(0), features_in_step=10 ** 6)
    with pytest.raises(jaxviz.InputError, match="`values`"):
        metrics.monotonicity_correlation(model, x, top, grads, values=values[:3], **kwargs)


def test_sparseness_and_complexity_of_extreme_maps():
    one_hot = np.zeros((1, 10, 10))
    one_hot[0, 3, 4] = 2.0
    flat = np.ones((1, 10, 10))
    assert float(metrics.sparseness(one_hot)[0]) > 0.98
    assert abs(float(metrics.sparseness(flat)[0])) < 1e-6
    assert abs(float(metrics.complexity(one_hot)[0])) < 1e-6
    np.testing.assert_allclose(metrics.complexity(flat), np.log(100), rtol=1e-5)
    # each map is normalised by its own maximum: a map's score does not depend on its batch
    both = np.concatenate([one_hot * 100, np.random.default_rng(0).random((1, 10, 10))])
    np.testing.assert_allclose(metrics.sparseness(both)[1:], metrics.sparseness(both[1:]), rtol=1e-6)


def test_completeness_is_small_for_integrated_gradients_and_not_for_saliency(model, x, grads):
    black = np.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)
    ig = jaxviz.integrated_gradients(model, x, T, baselines=black, n_steps=300)
    drop = np.asarray(model(x))[np.arange(2), T] - np.asarray(model(black))[np.arange(2), T]
    residual = np.abs(np.asarray(metrics.completeness(model, x, T, ig)))
    assert (residual < 0.02 * np.abs(drop)).all()
    np.testing.assert_allclose(metrics.completeness(model, x, T, ig, baselines=black), residual * np.sign(
        np.asarray(metrics.completeness(model, x, T, ig))), rtol=1e-6)
    assert (np.abs(np.asarray(metrics.completeness(model, x, T, grads))) > residual).all()


def test_drawn_noise_is_jaxs_threefry_partitionable_false_draws(model, x, grads):
    """The metrics' perturbations and SmoothGrad's noise, drawn from a key, are the draws a
    user gets from ``jax.random.normal`` in ``jax.threefry_partitionable(False)`` (faster
    on a CPU), not those of JAX's default mode, which differ here."""
    key = jax.random.key(4)

    def noise(shape, keys):
        return jnp.stack([jax.random.normal(k, shape, x.dtype) for k in keys])

    per_sample = [jax.random.fold_in(key, i) for i in range(3)]
    with jax.threefry_partitionable(False):
        perturbations = noise(x.shape, per_sample)
        smoothing = 0.2 * jax.random.normal(key, (3,) + x.shape, x.dtype)
    assert not np.array_equal(perturbations, noise(x.shape, per_sample))
    # what infidelity, the sensitivities and ROAD draw from
    drawn = _common.perturbations_for(None, key, lambda k, v: jax.random.normal(k, v.shape, v.dtype), 3, x)
    np.testing.assert_array_equal(jax.jit(drawn)(jnp.arange(3)), perturbations)
    smoothgrad = jaxviz.smooth(jaxviz.saliency, nt_samples=3, stdevs=0.2)
    np.testing.assert_array_equal(smoothgrad(model, x, T, key=key), smoothgrad(model, x, T, noise=smoothing))


def test_infidelity_is_zero_for_a_perfect_linear_prediction(model, x, grads):
    """With tiny perturbations the gradient predicts the score change: its infidelity is
    far below a random map's; the same key gives the same draws."""
    key = jax.random.key(0)
    small = functools.partial(metrics.infidelity, model, x, T, key=key, noise_scale=1e-3, n_perturb_samples=6)
    ours = np.asarray(small(grads))
    random = np.asarray(small(np.random.default_rng(2).normal(size=grads.shape).astype(np.float32) * np.abs(
        grads).max()))
    assert (ours < 1e-3 * random).all()
    np.testing.assert_array_equal(ours, np.asarray(small(grads)))
    assert (np.asarray(small(grads, normalize=True)) <= ours * (1 + 1e-4)).all()


def test_sensitivity_max_draws_from_its_key_and_is_zero_without_perturbation(model, x):
    zero = np.zeros((3,) + x.shape, np.float32)
    assert np.asarray(metrics.sensitivity_max(model, x, T, jaxviz.saliency, perturbations=zero,
                                              n_perturb_samples=3)).max() == 0
    first = metrics.sensitivity_max(model, x, T, jaxviz.saliency, key=jax.random.key(1), n_perturb_samples=3)
    again = metrics.sensitivity_max(model, x, T, jaxviz.saliency, key=jax.random.key(1), n_perturb_samples=3,
                                    samples_per_eval=1)
    other = metrics.sensitivity_max(model, x, T, jaxviz.saliency, key=jax.random.key(2), n_perturb_samples=3)
    np.testing.assert_allclose(first, again, rtol=1e-5)
    assert (np.asarray(first) > 0).all() and not np.allclose(first, other)


@pytest.mark.float64_only
def test_avg_sensitivity_is_the_mean_of_what_sensitivity_max_maximises(model, x):
    """float64: in float32 a max-pool near-tie routes a gradient differently in batches of
    other sizes, which is not what this test is about."""
    with jax.enable_x64(True):
        model, x = model.astype(np.float64), x.astype(np.float64)
        delta = np.random.default_rng(5).uniform(-0.2, 0.2, (3,) + x.shape)
        each = [np.asarray(metrics.sensitivity_max(model, x, T, jaxviz.saliency, perturbations=d[None],
                                                   n_perturb_samples=1)) for d in delta]
        mean = metrics.avg_sensitivity(model, x, T, jaxviz.saliency, perturbations=delta, n_perturb_samples=3)
        largest = metrics.sensitivity_max(model, x, T, jaxviz.saliency, perturbations=delta, n_perturb_samples=3)
        np.testing.assert_allclose(mean, np.mean(each, axis=0), rtol=1e-10)
        np.testing.assert_allclose(largest, np.max(each, axis=0), rtol=1e-10)
        # Lipschitz: the change per unit of input change (here without normalising the maps)
        raw = metrics.local_lipschitz_estimate(model, x, T, jaxviz.saliency, perturbations=delta,
                                               n_perturb_samples=3, normalise=False)
        a = np.asarray(jaxviz.saliency(model, x, T)).reshape(2, -1)
        moved = [np.asarray(jaxviz.saliency(model, x + d, T)).reshape(2, -1) for d in delta]
        expected = np.max([np.linalg.norm(m - a, axis=1) / np.linalg.norm(d.reshape(2, -1), axis=1)
                           for m, d in zip(moved, delta)], axis=0)
        np.testing.assert_allclose(raw, expected, rtol=1e-10)


def test_mprt_without_a_change_is_one_and_cascades_from_the_top(model, x):
    names = ("classifier.1", "features.12.expand3x3")
    same = metrics.mprt(model, x, T, jaxviz.saliency, layers=names, randomised=model.params)
    for values in same.similarity.values():
        np.testing.assert_allclose(values, 1.0, rtol=1e-5)
    result = metrics.mprt(model, x, T, jaxviz.saliency, key=jax.random.key(0), layers=names, keep_maps=True)
    assert result.layers == names and result.maps.shape == (3, 2, 40, 48)
    assert set(result.similarity) == {"spearman_abs", "spearman", "ssim"}
    assert np.asarray(result.similarity["spearman_abs"][1:]).max() < 0.99
    independent = metrics.mprt(model, x, T, jaxviz.saliency, key=jax.random.key(0), layers=names,
                               order="independent")
    np.testing.assert_allclose(independent.similarity["ssim"][1], result.similarity["ssim"][1], rtol=1e-5)
    grouped = metrics.mprt(model, x, T, jaxviz.saliency, key=jax.random.key(0), layers=(names,), keep_maps=True)
    np.testing.assert_allclose(grouped.maps[1], result.maps[2], rtol=1e-5, atol=1e-7)  # one step, both layers
    every = parameter_layers(model)  # the default, reversed: every convolution and linear layer
    assert every[0] == "features.0" and every[-1] == "classifier.1" and len(every) == 26


def test_random_logit_draws_another_class_and_compares_the_maps(model, x):
    from jaxviz.metrics.random_logit import other_classes

    drawn = np.asarray(other_classes(jax.random.key(3), np.array([0, 999] * 500), 1000))
    assert (drawn != np.array([0, 999] * 500)).all() and drawn.min() >= 0 and drawn.max() <= 999
    assert len(np.unique(drawn)) > 300
    same = metrics.random_logit(model, x, T, jaxviz.saliency, other_targets=T[::-1], measure="spearman")
    swapped = metrics.random_logit(model, x[::-1], T[::-1], jaxviz.saliency, other_targets=T, measure="spearman")
    np.testing.assert_allclose(same, np.asarray(swapped)[::-1], rtol=1e-5)
    assert np.asarray(metrics.random_logit(model, x, T, jaxviz.saliency, key=jax.random.key(0))).max() < 1
    with pytest.raises(jaxviz.InputError, match="differ"):
        metrics.random_logit(model, x, T, jaxviz.saliency, other_targets=T)


def test_confidence_metrics_keep_what_the_map_shows(model, x, top):
    ones, zeros = np.ones(x.shape[:3], np.float32), np.zeros(x.shape[:3], np.float32)
    np.testing.assert_array_equal(metrics.drop_in_confidence(model, x, top, ones), 0)
    np.testing.assert_array_equal(metrics.increase_in_confidence(model, x, top, ones), 0)
    expected = np.maximum(_probabilities(model, x, top) - _probabilities(model, 0 * x, top), 0)
    np.testing.assert_allclose(metrics.drop_in_confidence(model, x, top, zeros), expected, rtol=1e-5)
    logits = np.asarray(model(x))[np.arange(2), top] - np.asarray(model(0 * x))[np.arange(2), top]
    np.testing.assert_allclose(metrics.drop_in_confidence(model, x, top, zeros, score="logit"),
                               np.maximum(logits, 0), rtol=1e-5)
    with pytest.raises(jaxviz.InputError, match="`score`"):
        metrics.drop_in_confidence(model, x, top, ones, score="softmax")


@pytest.mark.float64_only
def test_road_preconditioner_is_symmetric_positive_definite_float64():
    """Conjugate gradients converge only with a symmetric positive definite
    preconditioner: the V-cycle (three levels at 40×43, a ragged unknown region with
    holes), as a matrix on the unknown pixels, is symmetric to rounding and its
    eigenvalues positive; and it is a preconditioner worth having, the system times it
    much better conditioned than the system alone."""
    import importlib

    road = importlib.import_module("jaxviz.metrics.road")
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        unknown = np.zeros((40, 43), bool)
        unknown[4:37, 2:40] = True
        unknown &= rng.random(unknown.shape) > 0.01
        m = jnp.asarray(unknown[..., None], jnp.float64)
        levels = road._grid_levels(m)
        assert len(levels) == 3
        cells = np.flatnonzero(unknown)
        basis = np.zeros((len(cells), 40 * 43))
        basis[np.arange(len(cells)), cells] = 1
        columns = jnp.asarray(basis.reshape(-1, 40, 43, 1))
        preconditioner = np.asarray(jax.vmap(lambda r: road._v_cycle(r, levels, 1))(columns)).reshape(len(cells), -1)
        preconditioner = preconditioner[:, cells]
        diagonal = levels[0][1]
        system = np.asarray(jax.vmap(lambda u: road._system(m, diagonal, u))(columns))
        system = system.reshape(len(cells), -1)[:, cells]
    np.testing.assert_allclose(preconditioner, preconditioner.T, rtol=0, atol=1e-13 * np.abs(preconditioner).max())
    assert np.linalg.eigvalsh(preconditioner).min() > 0
    condition = lambda a: (lambda e: e.max() / e.min())(np.abs(np.linalg.eigvals(a)))
    assert condition(preconditioner @ system) < condition(system) / 20


def test_road_imputes_from_the_neighbours_and_draws_its_noise_from_the_key(model, x, grads, top):
    from jaxviz.metrics.road import impute

    # a linear ramp is its own 8-neighbour weighted mean away from the border
    rows, cols = np.mgrid[:12, :14].astype(np.float32)
    ramp = np.stack([rows, 2 * cols - rows, 0.5 * cols], -1)[None]
    unknown = np.zeros((1, 12, 14), bool)
    unknown[0, 3:9, 2:11] = True
    filled = np.asarray(impute(np.where(unknown[..., None], 100.0, ramp), unknown))
    np.testing.assert_allclose(filled, ramp, atol=1e-4)
    maps = np.abs(grads).sum(-1)
    key = jax.random.key(5)
    both = metrics.road(model, x, top, maps, percentiles=(30, 70), key=key)
    morf = metrics.road(model, x, top, maps, order="morf", percentiles=(30, 70), key=key)
    assert both.morf.shape == both.lerf.shape == (2, 2) and morf.lerf is None
    np.testing.assert_allclose(morf.morf, both.morf, rtol=1e-6)
    np.testing.assert_allclose(morf.score, both.morf.mean(1), rtol=1e-6)
    np.testing.assert_allclose(both.score, (both.lerf.mean(1) - both.morf.mean(1)) / 2, rtol=1e-6)
    other = metrics.road(model, x, top, maps, order="morf", percentiles=(30, 70), key=jax.random.key(6))
    assert np.abs(np.asarray(other.morf) - np.asarray(morf.morf)).max() > 0
    quiet = metrics.road(model, x, top, maps, order="morf", percentiles=(30,), noise=0, states_per_eval=1)
    keep = maps < np.percentile(maps.reshape(2, -1), 30, axis=1)[:, None, None]
    imputed = np.asarray(impute(x, ~keep))
    np.testing.assert_allclose(quiet.morf[:, 0], _probabilities(model, imputed, top) - _probabilities(model, x, top),
                               atol=1e-5)
    with pytest.raises(jaxviz.InputError, match="`key`"):
        metrics.road(model, x, top, maps)
    with pytest.raises(jaxviz.InputError, match="`percentiles`"):
        metrics.road(model, x, top, maps, key=key, percentiles=(0, 50))
    with pytest.raises(jaxviz.InputError, match="`order`"):
        metrics.road(model, x, top, maps, key=key, order="both")
    with pytest.raises(jaxviz.InputError, match="`draws`"):
        metrics.road(model, x, top, maps, order="lerf", draws=np.zeros((2, 2, 40, 48, 3)))


def test_metrics_compose_under_jit(model, x, grads):
    @jax.jit
    def scores(v, a):
        return metrics.deletion(model, v, T, a.sum(-1), step=480).auc, metrics.sparseness(a)

    auc, gini = scores(x, grads)
    np.testing.assert_allclose(auc, metrics.deletion(model, x, T, grads.sum(-1), step=480).auc, rtol=1e-5)
    np.testing.assert_allclose(gini, metrics.sparseness(grads), rtol=1e-5)


def test_bad_input_is_a_clear_error(model, x, grads):
    with pytest.raises(jaxviz.InputError, match=r"reduce the channels"):
        metrics.deletion(model, x, T, grads)
    with pytest.raises(jaxviz.InputError, match="must have shape"):
        metrics.insertion(model, x, T, grads[:, :10, :, 0])
    with pytest.raises(jaxviz.InputError, match="`step`"):
        metrics.deletion(model, x, T, grads.sum(-1), step=0)
    with pytest.raises(jaxviz.InputError, match="substrate"):
        metrics.deletion(model, x, T, grads.sum(-1), substrate="noise")
    with pytest.raises(jaxviz.InputError, match="`key`"):
        metrics.infidelity(model, x, T, grads)
    with pytest.raises(jaxviz.InputError, match=r"perturbations.*shape"):
        metrics.sensitivity_max(model, x, T, jaxviz.saliency, perturbations=np.zeros((2,) + x.shape))
    with pytest.raises(jaxviz.InputError, match="NaN"):
        metrics.sparseness(np.full((1, 4), np.nan))
    with pytest.raises(jaxviz.InputError, match="features.99"):
        metrics.mprt(model, x, T, jaxviz.saliency, key=jax.random.key(0), layers=("features.99",))
    with pytest.raises(jaxviz.InputError, match="`order`"):
        metrics.mprt(model, x, T, jaxviz.saliency, key=jax.random.key(0), order="bottom_up")
    with pytest.raises(jaxviz.InputError, match="`measures`"):
        metrics.mprt(model, x, T, jaxviz.saliency, key=jax.random.key(0), measures=("hog2",))
