"""Neuron Conductance (Captum ``NeuronConductance``): the target's flow through one unit of a layer."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths, _regions


@functools.partial(jax.jit, static_argnames=("n_steps", "method", "chunk", "crop"))
def _neuron_conductance(model, x, target, neuron, baselines, n_steps, method, chunk, crop=None, crop_starts=None,
                        local=None):
    """``crop``: each image's unit gradient from its crop (:func:`_regions.neuron_crops`:
    the crops' size and starts, ``local`` the units in the crops' layer output)."""
    alphas, weights = (jnp.asarray(v, x.dtype) for v in _paths.quadrature(method, n_steps))
    layer = neuron.layer

    def below(v):
        return model.apply(model.params, v, capture=(layer,))[layer]

    def unit_values(outputs, index):
        return scoring.neuron_values(outputs, index).sum()

    if crop is not None:  # nothing outside a unit's receptive field moves it
        start, end = (_regions.crop_images(v, crop, crop_starts) for v in (baselines, x))
    else:
        start, end = baselines, x

    def step_terms(a):  # (c,) alphas → (c·N, ...) ∂F/∂y(α)·∂y/∂x(α), y the unit
        points = _paths.path_points(baselines, x - baselines, a)  # (c, N, H, W, C)
        c, n = points.shape[:2]
        flat = points.reshape((c * n,) + x.shape[1:])
        index = jnp.tile(neuron.index, (c, 1))
        if crop is None:
            outputs, pullback = jax.vjp(below, flat)
        else:
            outputs = below(flat)
        # the network resumed from the layer (where it cuts the network, nothing before it
        # again): each part of the network differentiated once
        layer_grads = jax.grad(
            lambda o: scoring.target_logits(model, flat, scoring.repeat_targets(target, c), replace={layer: o})[0].sum()
        )(outputs)
        through = scoring.neuron_values(layer_grads, index).reshape((-1, 1, 1, 1))
        if crop is None:  # ∂y/∂x from the backward pass below the layer
            (unit_grads,) = pullback(jax.grad(unit_values)(outputs, index))
        else:  # ∂y/∂x from the crop's own forward and backward pass below the layer
            crop_points = _paths.path_points(start, end - start, a).reshape((c * n,) + start.shape[1:])
            unit_grads = jax.grad(lambda v: unit_values(below(v), jnp.tile(local.index, (c, 1))))(crop_points)
        return unit_grads * through

    def body(total, group):
        a, w = group
        terms = step_terms(a).reshape((a.shape[0],) + start.shape)
        return total + jnp.tensordot(w, terms, axes=1), None

    groups = (_paths.split_chunks(alphas, chunk), _paths.split_chunks(weights, chunk))  # zero weights pad
    total, _ = jax.lax.scan(body, jnp.zeros_like(start), groups)
    if crop is not None:  # each image's crop in place, zeros around it
        total = _regions.paste_crops(total, x.shape[1:], crop_starts)
    return (x - baselines) * total


def neuron_conductance(model, x, target, *, layer: str, neuron, baselines=None, n_steps: int = 50,
                       method: str = "riemann_trapezoid",
                       internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE):
    """How much of the target score flows through one unit of ``layer``, per input value:
    (x − b)·Σ_k w_k ∂F/∂y(α_k)·∂y/∂x(α_k) at y, the unit, along the straight path
    (Captum ``NeuronConductance``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: the unit's layer (torchvision module path).
      neuron: the unit, as the ``target`` of :func:`jaxviz.neuron_gradient` (PyTorch's order,
        for every image or (N, k) one per image).
      baselines, n_steps, method, internal_batch_size: as :func:`jaxviz.integrated_gradients`,
        but the quadrature is Captum's default here, the trapezoid rule.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Dhamdhere, Sundararajan, Yan. How Important Is a Neuron? (2018).
    """
    _checks.check_positive_int(n_steps, "n_steps")
    _checks.check_choice(method, "method", _paths.METHODS)
    x, neuron = scoring.prepare_neuron(model, x, layer, neuron)
    x, target = scoring.prepare(model, x, target)
    baselines = _paths.broadcast_baselines(baselines, x)
    chunk = min(_paths.steps_per_chunk(internal_batch_size, x.shape[0], n_steps), n_steps)
    found = _regions.neuron_crops(model, x, neuron)
    if found is None:
        return _neuron_conductance(model, x, target, neuron, baselines, n_steps, method, chunk)
    return _neuron_conductance(model, x, target, neuron, baselines, n_steps, method, chunk, *found)
