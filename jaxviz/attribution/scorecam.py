"""ScoreCAM (pytorch-grad-cam ``ScoreCAM``): each channel of the layer, upsampled and min–max
scaled, masks the input; the channel's weight is the softmax over channels of the masked
input's target score.  No gradient."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import scoring
from jaxviz.attribution import _cam
from jaxviz.interpolation import aligned_bilinear_matrix

DEFAULT_BATCH_SIZE = 16  # masked images per forward pass (the package's BATCH_SIZE)


def channel_scores(model, x, target, activation, batch_size: int):
    """(N, C) target score of each image masked by each of its channels, ``batch_size``
    masked images (at least one channel of every image) per forward pass."""
    n, h, w, c = activation.shape
    height, width = x.shape[1:3]
    dtype = "float64" if x.dtype == jnp.float64 else "float32"
    rows = jnp.asarray(aligned_bilinear_matrix(h, height, dtype), x.dtype)
    cols = jnp.asarray(aligned_bilinear_matrix(w, width, dtype), x.dtype)

    def evaluate(channels):  # (k,) channel ids → (k, N) scores
        upsampled = jnp.einsum("Hh,nhwk,Ww->knHW", rows, activation[..., channels], cols,
                               precision=jax.lax.Precision.HIGHEST)
        low = upsampled.min(axis=(2, 3), keepdims=True)
        high = upsampled.max(axis=(2, 3), keepdims=True)
        masks = (upsampled - low) / (high - low + 1e-8)
        masked = (x[None] * masks[..., None]).reshape((-1,) + x.shape[1:])
        k = channels.shape[0]
        return scoring.batch_target_logits(model, masked, jnp.tile(target, k)).reshape(k, n)

    return _cam.per_channel(evaluate, c, n, batch_size)


def _rule(model, x, target, layer, activation, grads, eigen_smooth, batch_size):
    weights = jax.nn.softmax(channel_scores(model, x, target, activation, batch_size), axis=-1)
    return _cam.channel_sum(weights[:, None, None, :] * activation, eigen_smooth)


scorecam = _cam.perturbation_method(_rule, name="scorecam", batch_size=DEFAULT_BATCH_SIZE, what="masked images",
                                    doc="""ScoreCAM: Σ_k w_k A_k with w = softmax_k(y(x ⊙ M_k)), M_k the layer's
    channel k upsampled to the input (bilinear, corners aligned, as
    ``nn.UpsamplingBilinear2d``) and min–max scaled (1e-8 beside the range).  All N·C masked
    images go through the network inside one compiled loop, ``batch_size`` at a time.

    The package turns the scores into float32 (``torch.Tensor``) before the softmax;
    jaxviz keeps the model's dtype.

    References:
      Wang et al. Score-CAM: score-weighted visual explanations for convolutional neural
      networks (CVPR workshops 2020).
""")
