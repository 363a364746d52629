"""DeepLift's rescale rule: each input and its reference go through the network together,
and the model's DeepLift backward rule replaces every nonlinearity's derivative by the
pair's difference quotient (no hooks: ``guided=("deeplift", scope)``)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, _chunks, scoring
from jaxviz.attribution import _paths, _regions
from jaxviz.models import network as _network
from jaxviz.models.network import GUIDED_RULES


def multipliers(model, x, references, target, rule: str, shared_from: str | None = None, *,
                multiply_by_inputs: bool = False):
    """DeepLift's multipliers (N, H, W, 3): the target score's backward pass with the
    rescale rule, each image beside its reference in one batch; ``multiply_by_inputs``:
    (x − reference)·multipliers, each chunk's inside the loop (not one more pass over the
    whole batch after it: benchmarks/results/output-in-loop/).

    As Captum's ``DeepLift``: the score summed over both halves of the batch is
    differentiated (the max-pool rule sends part of a reference's gradient to its input),
    and the input half's gradient is kept.

    ``shared_from`` (:func:`shared_reference_start`): ``references`` is one reference
    (1, H, W, 3) for every image, which goes through the network once, but between the
    first max-pool and ``shared_from``, where the max-pool rule reads each pair's own
    reference gradient (below the first max-pool nothing reads it, and above the last both
    halves of a pair carry the same gradient).
    """
    pairs = max(1, _chunks.chunk_size(2 * x.shape[0], *x.shape[1:3]) // 2)
    if shared_from is not None:
        def shared_gradients(v, t):
            n = v.shape[0]

            def score(u):
                both = jnp.concatenate([u, references])
                return scoring.target_logits(model, both, scoring.repeat_targets(t, 2),
                                             guided=("deeplift", rule, shared_from))[0][:n].sum()

            m = jax.grad(score)(v)
            return (v - references) * m if multiply_by_inputs else m

        pools = _network.max_pool_layers(model.architecture.network)
        # chunks of pairs where pairs run through more than a max-pool, else of images
        chunk = pairs if pools and shared_from != pools[0] else None
        return _chunks.map_chunks(shared_gradients, x, target, chunk=chunk)

    def pair_gradients(v, r, t):
        both, targets = jnp.concatenate([v, r]), scoring.repeat_targets(t, 2)

        def score(u):
            return scoring.target_logits(model, u, targets, guided=("deeplift", rule))[0].sum()

        m = jax.grad(score)(both)[: v.shape[0]]
        return (v - r) * m if multiply_by_inputs else m

    return _chunks.map_chunks(pair_gradients, x, references, target, chunk=pairs)


@functools.lru_cache(maxsize=64)
def _first_shared_layer(network, rule: str, image_shape) -> str | None:
    params = _network.call_listing(network).params_like  # the structure alone decides

    def is_cut(layer):
        return _regions.network_is_cut(network, params, layer, image_shape, jnp.float32)

    pools = _network.max_pool_layers(network)
    if pools and not is_cut(pools[0]):  # the pairs begin there
        return None
    return next((layer for layer in _network.shared_reference_layers(network, rule)
                 if layer == _network.INPUT or is_cut(layer)), None)


def shared_reference_start(model, rule: str, image_shape) -> str | None:
    """Where a DeepLift pass of images beside one shared reference goes back from pairs to
    the images and the reference once: ``"input"`` (a network without max-pools, which
    needs no pairs), the first layer that cuts the network after its last max-pool (and
    after anything that would give the two halves different gradients), or ``None``: one
    reference per image all through."""
    return _first_shared_layer(model.architecture.network, rule, tuple(image_shape))


@functools.partial(jax.jit, static_argnames=("rule", "multiply_by_inputs", "with_delta", "shared_from"))
def _deeplift(model, x, target, baselines, rule, multiply_by_inputs, with_delta, repeats, shared_from=None):
    def body(x, target, baselines):
        attributions = multipliers(model, x, baselines, target, rule, shared_from,
                                   multiply_by_inputs=multiply_by_inputs)
        if not with_delta:
            return attributions
        n = x.shape[0]
        if shared_from is not None:  # the reference's logits once, read at each target
            reference_scores = model.apply(model.params, baselines)[0, target]
            return attributions, attributions.reshape(n, -1).sum(axis=1) - (
                scoring.batch_target_logits(model, x, target) - reference_scores)
        scores = scoring.batch_target_logits(model, jnp.concatenate([x, baselines]),
                                             scoring.repeat_targets(target, 2))
        return attributions, attributions.reshape(n, -1).sum(axis=1) - (scores[:n] - scores[n:])

    if shared_from is not None:
        return scoring.per_image(lambda x, target: body(x, target, baselines), repeats, x, target)
    return scoring.per_image(body, repeats, x, target, baselines)


def deeplift(model, x, target, *, baselines=None, rule: str = "modules", multiply_by_inputs: bool = True,
             return_convergence_delta: bool = False):
    """DeepLift with the rescale rule (Captum ``DeepLift``): (x − b)·m, where m is the
    backward pass in which each nonlinearity's derivative is Δout/Δin between the image
    and its reference (the plain derivative where |Δin| < 1e-10).

    Max-pools take Captum's max-pool rule (each pair's output difference split at the
    larger maximum, sent to the input's and the reference's maxima, divided by Δin), except
    where overlapping windows share a maximum: their contributions add here, while Captum's
    ``max_unpool2d`` keeps one of them (undefined in PyTorch).  The activations reached are
    guided backprop's: by default the ``nn.ReLU`` modules, as Captum's hooks (ReLU6,
    Hardswish and functional ReLUs keep their derivative, as in Captum); ``rule="all"``
    every ReLU-like activation.  A module called twice (ResNet's ``relu``) is handled per
    call, where Captum's hooks raise.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      baselines: ``None`` (zeros), a scalar, or an array of shape (H, W, 3), (1, H, W, 3)
        or (N, H, W, 3).  One reference for every image goes through the network once
        (:func:`multipliers`), the same numbers in less time than copies of it.
      rule: ``"modules"`` (default) or ``"all"``.
      multiply_by_inputs: return (x − b)·m (default), or the multipliers m alone.
      return_convergence_delta: also return Σ attributions − (F(x) − F(b)), (N,): zero up
        to rounding when every nonlinearity is reached.

    Returns:
      (N, H, W, 3) attributions, and the (N,) delta if asked.

    References:
      Shrikumar, Greenside, Kundaje. Learning Important Features Through Propagating
      Activation Differences (2017).  Ancona et al. Towards Better Understanding of
      Gradient-Based Attribution Methods for Deep Neural Networks (2018).
    """
    _checks.check_choice(rule, "rule", GUIDED_RULES)
    x, target = scoring.prepare(model, x, target)
    baselines = _paths.checked_baselines(baselines, x)
    shared_from = shared_reference_start(model, rule, x.shape[1:]) if baselines.shape[0] == 1 else None
    repeats = scoring.find_repeats(x, target, baselines)
    if shared_from is None:
        baselines = jnp.broadcast_to(baselines, x.shape)
    return _deeplift(model, x, target, baselines, rule, bool(multiply_by_inputs), bool(return_convergence_delta),
                     repeats, shared_from)
