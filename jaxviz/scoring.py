"""The scoring layer every method stands on: checked arguments, each image's score for its
own target, and gradients of those scores at the input or at any layer, a few images at a
time.  Attribution and synthesis both use it; neither imports the other."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, _chunks


def prepare(model, x, target, *, layers=()):
    """Checks the arguments every method takes; returns x in the model's dtype and target."""
    architecture = model.architecture
    x = _checks.check_images(x, architecture=architecture)
    target = _checks.check_target(target, x.shape[0], num_classes=architecture.num_classes)
    architecture.check_layers(tuple(layers))
    return x.astype(model.dtype), target


def target_logits(model, x, target, *, capture=(), perturb=None, guided: bool = False):
    """(N,) each image's logit for its own target, and ``{layer: output}`` for ``capture``.

    The head is evaluated for the targets alone unless a layer holding every class is
    captured or perturbed.  Summing the result over the batch gives each image its own
    gradient.
    """
    architecture = model.architecture
    output = architecture.output
    capture, perturb = tuple(capture), dict(perturb or {})
    if architecture.class_layers.isdisjoint(capture + tuple(perturb)):
        outputs = model.apply(model.params, x, capture=capture + (output,), perturb=perturb,
                              guided=guided, target=target)
        return outputs.pop(output), outputs
    outputs = model.apply(model.params, x, capture=capture + (output,), perturb=perturb, guided=guided)
    logits = outputs[output] if output in capture else outputs.pop(output)
    return jnp.take_along_axis(logits, target[:, None], axis=1)[:, 0], outputs


def batch_target_logits(model, x, target):
    """(N,) target logits of a checked batch, a few images at a time (:mod:`jaxviz._chunks`)."""
    return _chunks.map_chunks(lambda v, t: target_logits(model, v, t)[0], x, target)


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
