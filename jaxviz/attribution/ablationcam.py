"""AblationCAM (pytorch-grad-cam ``AblationCAM``): a channel's weight is the relative drop of
the target score when the channel is ablated at the layer.  No gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import scoring
from jaxviz.attribution import _cam

DEFAULT_BATCH_SIZE = 32  # ablated copies per forward pass (the package's)
ABLATION_OFFSET = 1e7  # below the layer's minimum, when that minimum is not 0 (the package's)


def ablated_scores(model, x, target, layer: str, activation, batch_size: int):
    """(N, C) target score of each image with each channel of ``layer`` ablated: set to 0
    when the image's smallest activation there is 0 (after a ReLU), else to that minimum
    − 1e7; ``batch_size`` ablated images (at least one channel of every image) per pass."""
    n, c = activation.shape[0], activation.shape[-1]
    low = activation.min(axis=(1, 2, 3), keepdims=True)
    value = jnp.where(low == 0, 0.0, low - ABLATION_OFFSET)  # (N, 1, 1, 1)

    def evaluate(channels):  # (k,) channel ids → (k, N) scores
        k = channels.shape[0]
        chosen = jax.nn.one_hot(channels, c, dtype=bool)[:, None, None, None, :]  # (k, 1, 1, 1, C)
        ablated = jnp.where(chosen, value[None], activation[None])  # (k, N, ...) the channel replaced
        images = jnp.broadcast_to(x[None], (k,) + x.shape).reshape((-1,) + x.shape[1:])
        # the network resumes from the layer: where it cuts the network, the layers before
        # it are not evaluated again for every ablated copy
        scores, _ = scoring.target_logits(model, images, jnp.tile(target, k),
                                          replace={layer: ablated.reshape((-1,) + activation.shape[1:])})
        return scores.reshape(k, n)

    return _cam.per_channel(evaluate, c, n, batch_size)


def _rule(model, x, target, layer, activation, grads, eigen_smooth, batch_size):
    original = scoring.target_logits(model, x, target)[0][:, None]
    weights = (original - ablated_scores(model, x, target, layer, activation, batch_size)) / original
    return _cam.channel_sum(weights[:, None, None, :] * activation, eigen_smooth)


ablationcam = _cam.perturbation_method(_rule, name="ablationcam", batch_size=DEFAULT_BATCH_SIZE,
                                       what="ablated images", doc="""AblationCAM: Σ_k w_k A_k with
    w_k = (y − y_k) / y, y_k the target score with channel k of the layer ablated — set to 0
    when the layer's smallest value for the image is 0 (a ReLU's output), else to that
    minimum − 1e7.  All N·C ablated forward passes run inside one compiled loop,
    ``batch_size`` at a time (at least one channel of every image), each from the layer on
    (the layers before a layer that cuts the network are evaluated once, not once per copy).

    Differences from the package, by design: the package turns the scores into float32;
    and where the layer's minimum is not 0 its ablation value moves down by another 1e7 for
    each copy in a batch (it re-reads the minimum of the tensor it is modifying), so its
    result there depends on its batch size.  At a ReLU's output the two agree.
    ``ratio_channels_to_ablate`` (the package's experimental channel selection) is not
    offered: every channel is ablated.

    References:
      Desai, Ramaswamy. Ablation-CAM: visual explanations for deep convolutional network
      via gradient-free localization (WACV 2020).
""")
