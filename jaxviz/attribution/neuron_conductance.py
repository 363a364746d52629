"""Neuron Conductance (Captum ``NeuronConductance``): the target's flow through one unit of a layer."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths


@functools.partial(jax.jit, static_argnames=("n_steps", "method", "chunk"))
def _neuron_conductance(model, x, target, neuron, baselines, n_steps, method, chunk):
    alphas, weights = (jnp.asarray(v, x.dtype) for v in _paths.quadrature(method, n_steps))
    diff = x - baselines
    layer = neuron.layer

    def body(total, group):
        a, w = group
        points = _paths.path_points(baselines, diff, a)  # (c, N, H, W, C)
        c, n = points.shape[:2]
        index = jnp.tile(neuron.index, (c, 1))

        flat = points.reshape((c * n,) + x.shape[1:])
        targets = scoring.repeat_targets(target, c)
        outputs, below = jax.vjp(lambda v: model.apply(model.params, v, capture=(layer,))[layer], flat)
        # the network resumed from the layer (where it cuts the network, nothing before it
        # again); ∂F/∂y at the unit from the backward pass above the layer, ∂y_unit/∂x from
        # the one below it: each part of the network differentiated once
        layer_grads = jax.grad(lambda o: scoring.target_logits(model, flat, targets, replace={layer: o})[0].sum())(
            outputs)
        through = scoring.neuron_values(layer_grads, index)
        (unit_grads,) = below(jax.grad(lambda o: scoring.neuron_values(o, index).sum())(outputs))
        terms = (unit_grads * through.reshape((-1, 1, 1, 1))).reshape(points.shape)
        return total + jnp.tensordot(w, terms, axes=1), None

    groups = (_paths.split_chunks(alphas, chunk), _paths.split_chunks(weights, chunk))  # zero weights pad
    total, _ = jax.lax.scan(body, jnp.zeros_like(x), groups)
    return diff * total


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
    return _neuron_conductance(model, x, target, neuron, baselines, n_steps, method, chunk)
