"""ScoreCAM (pytorch-grad-cam ``ScoreCAM``): each channel of the layer, upsampled and min–max
scaled, masks the input; the channel's weight is the softmax over channels of the masked
input's target score.  No gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import scoring
from jaxviz.attribution import _cam, _paths
from jaxviz.interpolation import aligned_bilinear_matrix

DEFAULT_BATCH_SIZE = 16  # masked images per forward pass (the package's BATCH_SIZE)


def channel_scores(model, x, target, activation, batch_size: int):
    """(N, C) target score of each image masked by each of its channels, ``batch_size``
    masked images per forward pass.

    A channel that is zero everywhere (a ReLU's, often) masks its image to zeros: every such
    (image, channel) pair gets the zero image's score, from one forward pass.  The others
    go through the network first, in a loop that stops after the last of them.
    """
    n, h, w, c = activation.shape
    height, width = x.shape[1:3]
    dtype = "float64" if x.dtype == jnp.float64 else "float32"
    rows = jnp.asarray(aligned_bilinear_matrix(h, height, dtype), x.dtype)
    cols = jnp.asarray(aligned_bilinear_matrix(w, width, dtype), x.dtype)
    dead = jnp.all(activation == 0, axis=(1, 2)).reshape(-1)  # (N·C,) pair n·C + k: image n, channel k
    live = jnp.sum(~dead)
    # the live pairs first; the padding repeats a pair (its score is written twice, the same)
    order = _paths.split_chunks(jnp.argsort(dead, stable=True), batch_size, fill=0)
    chunk = order.shape[1]
    order = order.reshape(-1)

    def masked_scores(pairs):  # (k,) pair ids → (k,) target scores of the masked images
        images, channels = pairs // c, pairs % c
        upsampled = jnp.einsum("Hh,khw,Ww->kHW", rows, activation[images, :, :, channels], cols,
                               precision=jax.lax.Precision.HIGHEST)
        low = upsampled.min(axis=(1, 2), keepdims=True)
        high = upsampled.max(axis=(1, 2), keepdims=True)
        masks = (upsampled - low) / (high - low + 1e-8)
        return scoring.batch_target_logits(model, x[images] * masks[..., None], target[images])

    def step(state):
        i, scores = state
        pairs = jax.lax.dynamic_slice(order, (i * chunk,), (chunk,))
        return i + 1, scores.at[pairs].set(masked_scores(pairs))

    _, scores = jax.lax.while_loop(lambda state: state[0] * chunk < live, step,
                                   (jnp.zeros((), jnp.int32), jnp.zeros(n * c, x.dtype)))
    zero_image = scoring.batch_target_logits(model, jnp.zeros_like(x), target)  # (N,)
    return jnp.where(dead, jnp.repeat(zero_image, c), scores).reshape(n, c)


def _rule(model, x, target, layer, activation, grads, eigen_smooth, batch_size):
    weights = jax.nn.softmax(channel_scores(model, x, target, activation, batch_size), axis=-1)
    return _cam.channel_sum(weights[:, None, None, :] * activation, eigen_smooth)


scorecam = _cam.perturbation_method(_rule, name="scorecam", batch_size=DEFAULT_BATCH_SIZE, what="masked images",
                                    doc="""ScoreCAM: Σ_k w_k A_k with w = softmax_k(y(x ⊙ M_k)), M_k the layer's
    channel k upsampled to the input (bilinear, corners aligned, as
    ``nn.UpsamplingBilinear2d``) and min–max scaled (1e-8 beside the range).  All N·C masked
    images go through the network inside one compiled loop, ``batch_size`` at a time, but
    for the channels that are zero everywhere: those mask their image to zeros, whose score
    one forward pass gives.

    The package turns the scores into float32 (``torch.Tensor``) before the softmax;
    jaxviz keeps the model's dtype.

    References:
      Wang et al. Score-CAM: score-weighted visual explanations for convolutional neural
      networks (CVPR workshops 2020).
""")
