"""DeepLift's rescale rule: each input and its reference go through the network together,
and the model's DeepLift backward rule replaces every nonlinearity's derivative by the
pair's difference quotient (no hooks: ``guided=("deeplift", scope)``)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, _chunks, scoring
from jaxviz.attribution import _paths
from jaxviz.models.network import GUIDED_RULES


def multipliers(model, x, references, target, rule: str):
    """DeepLift's multipliers (N, H, W, 3): the target score's backward pass with the
    rescale rule, each image beside its reference in one batch.

    As Captum's ``DeepLift``: the score summed over both halves of the batch is
    differentiated (the max-pool rule sends part of a reference's gradient to its input),
    and the input half's gradient is kept.
    """
    def pair_gradients(v, r, t):
        both, targets = jnp.concatenate([v, r]), scoring.repeat_targets(t, 2)

        def score(u):
            return scoring.target_logits(model, u, targets, guided=("deeplift", rule))[0].sum()

        return jax.grad(score)(both)[: v.shape[0]]

    pairs = max(1, _chunks.chunk_size(2 * x.shape[0], *x.shape[1:3]) // 2)
    return _chunks.map_chunks(pair_gradients, x, references, target, chunk=pairs)


@functools.partial(jax.jit, static_argnames=("rule", "multiply_by_inputs", "with_delta"))
def _deeplift(model, x, target, baselines, rule, multiply_by_inputs, with_delta, repeats):
    def body(x, target, baselines):
        m = multipliers(model, x, baselines, target, rule)
        attributions = (x - baselines) * m if multiply_by_inputs else m
        if not with_delta:
            return attributions
        scores = scoring.batch_target_logits(model, jnp.concatenate([x, baselines]),
                                             scoring.repeat_targets(target, 2))
        n = x.shape[0]
        return attributions, attributions.reshape(n, -1).sum(axis=1) - (scores[:n] - scores[n:])

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
        or (N, H, W, 3).
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
    baselines = _paths.broadcast_baselines(baselines, x)
    return _deeplift(model, x, target, baselines, rule, bool(multiply_by_inputs), bool(return_convergence_delta),
                     scoring.find_repeats(x, target, baselines))
