"""What every attribution method shares: target scores, gradients, quadrature, chunking,
and PyTorch-exact interpolation.  Each piece exists once, here."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _chunks
from jaxviz.errors import InputError
from jaxviz.models import squeezenet


def prepare(model, x, target, *, layers=()):
    """Checks the arguments every method takes; returns x in the model's dtype and target."""
    x = _checks.check_images(x, arch=model.arch)
    target = _checks.check_target(target, x.shape[0])
    for layer in layers:
        squeezenet.check_layers(model.arch, (layer,))
    return x.astype(model.dtype), target


_EVERY_CLASS = {*squeezenet.CLASS_LAYERS, squeezenet.OUTPUT}


def target_logits(model, x, target, *, capture=(), perturb=None, guided: bool = False):
    """(N,) each image's logit for its own target, and ``{layer: output}`` for ``capture``.

    The classifier is evaluated for the targets alone (a quarter of SqueezeNet's work is the
    1000-class convolution) unless a layer holding every class is captured or perturbed.
    Summing the result over the batch gives each image its own gradient.
    """
    capture, perturb = tuple(capture), dict(perturb or {})
    if _EVERY_CLASS.isdisjoint(capture + tuple(perturb)):
        outputs = model.apply(model.params, x, capture=capture + (squeezenet.OUTPUT,), perturb=perturb,
                              guided=guided, target=target)
        return outputs.pop(squeezenet.OUTPUT), outputs
    outputs = model.apply(model.params, x, capture=capture + (squeezenet.OUTPUT,), perturb=perturb, guided=guided)
    logits = outputs[squeezenet.OUTPUT] if squeezenet.OUTPUT in capture else outputs.pop(squeezenet.OUTPUT)
    return jnp.take_along_axis(logits, target[:, None], axis=1)[:, 0], outputs


def input_gradients(model, x, target, *, guided: bool = False, chunk: int | None = None):
    """∇ₓ of the target scores, (N, H, W, C), ``chunk`` images at a time (default: by
    :func:`jaxviz._chunks.chunk_size`)."""

    def grads(v, t):
        return jax.grad(lambda u: target_logits(model, u, t, guided=guided)[0].sum())(v)

    return _chunks.map_chunks(grads, x, target, chunk=chunk)


def layer_gradients_and_eval(model, x, target, layer: str, *, chunk: int | None = None):
    """The output of ``layer`` and the gradient of the target scores with respect to it,
    ``chunk`` images at a time.

    A zero perturbation is added to the layer's output: its gradient is the layer
    gradient, and the same forward pass returns the activation.  The backward pass stops
    at the layer.
    """
    evaluate = functools.partial(_layer_pass, model, layer=layer, guided=False, with_input=False)
    return _chunks.map_chunks(evaluate, x, target, chunk=chunk)


def layer_and_input_gradients(model, x, target, layer: str, *, guided: bool = False, chunk: int | None = None):
    """``layer``'s output, the target scores' gradient there and at the input, from one
    forward and one backward pass (``guided``: with guided-backprop ReLUs)."""
    evaluate = functools.partial(_layer_pass, model, layer=layer, guided=guided, with_input=True)
    return _chunks.map_chunks(evaluate, x, target, chunk=chunk)


def _layer_pass(model, x, target, *, layer, guided, with_input):
    def score(v, delta):
        scores, outputs = target_logits(model, v, target, capture=(layer,), perturb={layer: delta}, guided=guided)
        return scores.sum(), outputs[layer]

    shape = jax.eval_shape(lambda: model.apply(model.params, x, capture=(layer,))[layer])
    delta = jnp.zeros(shape.shape, shape.dtype)
    if not with_input:
        grads, activation = jax.grad(lambda d: score(x, d), has_aux=True)(delta)
        return activation, grads
    (input_grads, grads), activation = jax.grad(score, argnums=(0, 1), has_aux=True)(x, delta)
    return activation, grads, input_grads


# --------------------------------------------------------------------------- quadrature

METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


@functools.cache
def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Captum's ``approximation_parameters``: (alphas, step weights) in float64."""
    _checks.check_choice(method, "method", METHODS)
    _checks.check_positive_int(n_steps, "n_steps")
    n = n_steps
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (x + 1.0), 0.5 * w
    if method == "riemann_trapezoid":
        if n < 2:
            raise InputError(f"`n_steps` must be >= 2 for riemann_trapezoid, got {n}")
        # Captum's: steps of 1/n with the two ends halved (they sum to (n−1)/n, not 1)
        weights = np.full(n, 1.0 / n)
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n), weights
    weights = np.full(n, 1.0 / n)
    if method == "riemann_left":
        return np.linspace(0.0, 1.0 - 1.0 / n, n), weights
    if method == "riemann_right":
        return np.linspace(1.0 / n, 1.0, n), weights
    return np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n), weights  # riemann_middle


def split_chunks(values, chunk: int, fill=0.0):
    """Pads 1-D ``values`` with ``fill`` to a multiple of ``chunk``; returns (n_chunks, chunk).

    Loops over the chunks (``lax.scan``/``lax.map``) evaluate ``chunk`` items at a time,
    which bounds memory; methods choose a ``fill`` whose contribution is zero.
    """
    values = jnp.asarray(values)
    n = values.shape[0]
    chunk = max(1, min(chunk, n))
    pad = (-n) % chunk
    padded = jnp.concatenate([values, jnp.full((pad,), fill, values.dtype)])
    return padded.reshape(-1, chunk)


def steps_per_chunk(internal_batch_size: int | None, batch: int, n_steps: int) -> int:
    """How many interpolation steps (of the whole batch) one evaluation takes."""
    if internal_batch_size is None:
        return n_steps
    _checks.check_positive_int(internal_batch_size, "internal_batch_size")
    return max(1, internal_batch_size // batch)


# --------------------------------------------------------------------------- interpolation


INTERPOLATE_MODES = ("nearest", "bilinear", "bicubic")


@functools.cache
def interpolation_matrix(in_size: int, out_size: int, mode: str, dtype: str = "float32") -> np.ndarray:
    """(out, in) weights of ``torch.nn.functional.interpolate`` (align_corners=False) on one axis.

    Computed as PyTorch's CPU kernels compute them: ``nearest`` in float32 with
    ``floor(dst · in/out)``; ``bilinear``/``bicubic`` at source ``(dst + ½)·in/out − ½``
    (clamped at 0 for bilinear), cubic convolution with A = −0.75 and edge clamping.
    """
    _checks.check_choice(mode, "interpolate_mode", INTERPOLATE_MODES)
    ft = np.float32 if dtype == "float32" else np.float64
    m = np.zeros((out_size, in_size), np.float64)
    dst = np.arange(out_size)
    if in_size == out_size:
        return np.eye(out_size, dtype=dtype)
    if mode == "nearest":
        if out_size == 2 * in_size:
            src = dst >> 1
        else:
            scale = np.float32(in_size) / np.float32(out_size)
            src = np.minimum(np.floor(dst.astype(np.float32) * scale).astype(np.int64), in_size - 1)
        m[dst, src] = 1.0
        return m.astype(dtype)
    scale = ft(in_size) / ft(out_size)
    src = scale * (dst.astype(ft) + ft(0.5)) - ft(0.5)
    if mode == "bilinear":
        src = np.maximum(src, ft(0.0))
        i0 = np.floor(src).astype(np.int64)
        i0 = np.minimum(i0, in_size - 1)
        lam = (src - i0.astype(ft)).astype(ft)
        i1 = np.minimum(i0 + 1, in_size - 1)
        np.add.at(m, (dst, i0), (ft(1.0) - lam).astype(np.float64))
        np.add.at(m, (dst, i1), lam.astype(np.float64))
        return m.astype(dtype)
    i = np.floor(src).astype(np.int64)
    t = (src - i.astype(ft)).astype(ft)
    a = ft(-0.75)

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    coefficients = (far(t + 1), near(t), near(1 - t), far(2 - t))
    for offset, c in zip((-1, 0, 1, 2), coefficients):
        np.add.at(m, (dst, np.clip(i + offset, 0, in_size - 1)), c.astype(np.float64))
    return m.astype(dtype)


def interpolate(maps, size: tuple[int, int], mode: str = "nearest"):
    """Resizes NHWC maps to ``size`` = (H, W) like ``F.interpolate(mode, align_corners=False)``."""
    _, h, w, _ = maps.shape
    dtype = "float64" if maps.dtype == jnp.float64 else "float32"
    mh = jnp.asarray(interpolation_matrix(h, size[0], mode, dtype), maps.dtype)
    mw = jnp.asarray(interpolation_matrix(w, size[1], mode, dtype), maps.dtype)
    return jnp.einsum("Hh,nhwc,Ww->nHWc", mh, maps, mw, precision=jax.lax.Precision.HIGHEST)
