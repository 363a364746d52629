"""What the metrics share: checked attributions, per-image normalisation, the order of a
map's pixels, substrates, and how many perturbed copies go through the network at once."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage

from jaxviz import _checks, _chunks, _random
from jaxviz.attribution import _paths
from jaxviz.errors import InputError


def check_attributions(attributions, n: int | None = None, *, x=None, per_pixel: bool = False,
                       name: str = "attributions") -> jax.Array:
    """Attributions as a float array with the batch first.

    With ``x``: (N, H, W), (N, H, W, 1) or (N, H, W, C) for x's (N, H, W, C); returned as
    (N, H, W, C') (C' = 1 for a map).  ``per_pixel``: one value per pixel is required,
    returned as (N, H, W).  Without ``x``: any (N, ...) array (``n`` checks N).
    """
    a = _checks._from_torch(attributions, name)
    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        a = np.asarray(a)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise InputError(f"`{name}` must have a floating dtype, got {a.dtype}")
    if a.ndim < 2:
        raise InputError(f"`{name}` must have the batch first and at least one more axis, got {tuple(a.shape)}")
    if _checks.is_concrete(a) and not _checks.all_finite(a):
        raise InputError(f"`{name}` contains NaN or inf values")
    a = jnp.asarray(a)
    if x is None:
        if n is not None and a.shape[0] != n:
            raise InputError(f"`{name}` holds {a.shape[0]} maps for {n} images")
        return a
    if a.ndim == 3:
        a = a[..., None]
    nx, h, w, c = x.shape
    channels = (1,) if per_pixel else (1, c)
    if a.ndim != 4 or a.shape[:3] != (nx, h, w) or a.shape[3] not in channels:
        wanted = "(N, H, W) or (N, H, W, 1)" if per_pixel else f"(N, H, W), (N, H, W, 1) or (N, H, W, {c})"
        hint = " — reduce the channels first, e.g. attributions.sum(-1)" if per_pixel and a.ndim == 4 else ""
        raise InputError(f"`{name}` must have shape {wanted} for images of shape {tuple(x.shape)}, "
                         f"got {tuple(a.shape)}{hint}")
    return a[..., 0] if per_pixel else a


def normalise_by_max(a):
    """Each image's attributions divided by their largest magnitude (all zeros stay zeros).

    Quantus' ``normalise_by_max`` divides by the largest magnitude of the whole batch by
    default, so there a score depends on which images share the batch; here it does not.
    """
    peak = jnp.abs(a).reshape(a.shape[0], -1).max(axis=1).reshape((-1,) + (1,) * (a.ndim - 1))
    return a / jnp.where(peak > 0, peak, 1)


def flat_maps(a, *, normalise: bool, absolute: bool):
    """(N, ...) → (N, features), Quantus' preprocessing: each map divided by its largest
    magnitude (:func:`normalise_by_max`), then magnitudes taken."""
    a = a.reshape(a.shape[0], -1)
    if normalise:
        a = normalise_by_max(a)
    return jnp.abs(a) if absolute else a


def explanation_maps(a):
    """A method's output as (N, H, W) maps, each divided by its largest magnitude (summed
    over the channels first where it has them): what the randomisation tests compare."""
    return normalise_by_max(a.sum(axis=-1) if a.ndim == 4 else a)


def relevance_ranks(maps):
    """(N, ...) → int32 of the same shape: each value's place in its image's order, 0 the
    most relevant.  Equal values: the later one (row-major) first — numpy's stable
    ascending argsort reversed, which is what a reference written with
    ``np.argsort(kind="stable")`` and ``np.flip`` does."""
    n = maps.shape[0]
    flat = maps.reshape(n, -1)
    order = jnp.flip(jnp.argsort(flat, axis=1, stable=True), axis=1)
    places = jnp.broadcast_to(jnp.arange(flat.shape[1], dtype=jnp.int32), flat.shape)
    ranks = jnp.zeros(flat.shape, jnp.int32).at[jnp.arange(n)[:, None], order].set(places)
    return ranks.reshape(maps.shape)


def trapezoid_auc(curves):
    """(N, K) curves sampled at K evenly spaced points of [0, 1] → (N,) area (RISE's ``auc``)."""
    k = curves.shape[1]
    return (curves.sum(axis=1) - curves[:, 0] / 2 - curves[:, -1] / 2) / (k - 1)


@functools.cache
def rise_blur_kernel(size: int = 11, sigma: float = 5.0) -> np.ndarray:
    """RISE's blur (``gkern``): scipy's Gaussian filter of a centred impulse in a
    ``size``×``size`` array (reflected at the edges, so not a plain sampled Gaussian)."""
    impulse = np.zeros((size, size))
    impulse[size // 2, size // 2] = 1.0
    return scipy.ndimage.gaussian_filter(impulse, sigma)


def rise_blur(x):
    """Each channel convolved with :func:`rise_blur_kernel`, zero padding ``size // 2``
    (RISE's ``conv2d(x, kern, padding=klen // 2)``)."""
    kernel = rise_blur_kernel()
    size = kernel.shape[0]
    c = x.shape[-1]
    weights = jnp.asarray(np.repeat(kernel[:, :, None, None], c, axis=3), x.dtype)  # HWIO, depthwise
    pad = size // 2
    return jax.lax.conv_general_dilated(x, weights, (1, 1), ((pad, pad), (pad, pad)),
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=c,
                                        precision=jax.lax.Precision.HIGHEST)


SUBSTRATES = ("zeros", "blur")


def substrate_for(substrate, x, name: str = "substrate"):
    """What removed pixels become: ``"zeros"``, ``"blur"`` (:func:`rise_blur`), a scalar or
    an array broadcastable to x."""
    if isinstance(substrate, str):
        _checks.check_choice(substrate, name, SUBSTRATES)
        return jnp.zeros_like(x) if substrate == "zeros" else rise_blur(x)
    return _paths.broadcast_baselines(substrate, x, name)


def states_per_eval(states_per_eval: int | None, n_states: int, x, *, name: str = "states_per_eval",
                    chunks: int = 4) -> int:
    """How many perturbed copies of the batch one evaluation takes: at most
    ``states_per_eval``; by default as many as hold about ``chunks·PIXELS_PER_CHUNK``
    pixels on a CPU (4 for forward passes alone; a method that explains the copies chunks
    them itself) and 64 batches on an accelerator, balanced so that the last evaluation is
    not padded (:func:`jaxviz.attribution._paths.balanced_chunk`)."""
    if states_per_eval is None:
        states_per_eval = _chunks.copies_per_eval(*x.shape[:3], chunks=chunks)
    most = _checks.check_positive_int(states_per_eval, name)
    return _paths.balanced_chunk(n_states, most)


def sample_ids(n_samples: int, chunk: int):
    """(evaluations, chunk) sample ids, padded with ``n_samples`` (evaluated, then dropped)."""
    return _paths.split_chunks(jnp.arange(n_samples), chunk, fill=n_samples)


def checked_perturbations(perturbations, n_samples: int, x, name: str = "perturbations",
                          samples: str = "n_perturb_samples"):
    """Perturbations a user gave, (n_samples, N, H, W, C) (``samples`` names the first axis
    in the error), as an array of x's dtype (``None`` stays ``None``).  Called before the
    metric's ``jit`` too: inside it the values are unknown and their NaN/inf check is skipped."""
    if perturbations is None:
        return None
    p = jnp.asarray(perturbations, x.dtype)
    if p.shape != (n_samples,) + x.shape:
        raise InputError(f"`{name}` must have shape ({samples}, N, H, W, C) = {(n_samples,) + x.shape}, "
                         f"got {tuple(p.shape)}")
    if _checks.is_concrete(p) and not _checks.all_finite(p):
        raise InputError(f"`{name}` contains NaN or inf values")
    return p


def perturbations_for(perturbations, key, draw, n_samples: int, x, name: str = "perturbations"):
    """``ids → (k, N, H, W, C)`` perturbations: rows of those given ((n_samples, N, H, W, C),
    :func:`checked_perturbations`), else ``draw(jax.random.fold_in(key, id), x)`` for each
    sample id, in :func:`jaxviz._random.fast_threefry`."""
    if perturbations is None:
        if key is None:
            raise InputError(f"`key` (a jax.random key) is required unless `{name}` is given")
        def drawn(ids):
            with _random.fast_threefry():
                return jax.vmap(lambda i: draw(jax.random.fold_in(key, i), x))(ids)

        return drawn
    p = checked_perturbations(perturbations, n_samples, x, name)
    return lambda ids: p[jnp.minimum(ids, n_samples - 1)]
