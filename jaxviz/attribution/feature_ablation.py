"""Feature ablation (Captum ``FeatureAblation``): the score drop when a group of input
elements — a superpixel, a patch, any integer feature mask — is set to a baseline."""

from __future__ import annotations

import functools

import jax

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths, _perturbations

DEFAULT_PERTURBATIONS_PER_EVAL = 16


@functools.partial(jax.jit, static_argnames=("n_features", "chunk"))
def _feature_ablation(model, x, target, baselines, mask, n_features, chunk, repeats):
    def body(x, target, baselines, mask):
        base = scoring.batch_target_logits(model, x, target)
        ablated = _perturbations.mixture_scores(model, x, target, baselines, n_features,
                                                lambda ids: mask[None] != ids[:, None, None, None, None], chunk)
        return _perturbations.spread(base[None] - ablated, mask)

    return scoring.per_image(body, repeats, x, target, baselines, mask)


def feature_ablation(model, x, target, *, feature_mask=None, baselines=0.0,
                     perturbations_per_eval: int = DEFAULT_PERTURBATIONS_PER_EVAL):
    """Each element's attribution is F(x) − F(x with its feature set to the baseline)
    (Captum ``FeatureAblation``).

    Every feature of every image is ablated inside one compiled program,
    ``perturbations_per_eval`` features (× N images) per forward pass.  A feature an
    image lacks leaves it unchanged (its drop is 0 up to rounding), as in Captum.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      feature_mask: integer feature ids: (H, W), (N, H, W) (shared by the channels) or
        (N, H, W, C); :func:`jaxviz.masks.segments` and :func:`jaxviz.masks.patches`
        make them.  ``None``: every element alone (H·W·3 forward passes per image).
      baselines: scalar or array as for :func:`jaxviz.integrated_gradients`.
      perturbations_per_eval: features per forward pass (memory bound).

    Returns:
      (N, H, W, 3) attributions, constant over each feature.

    References:
      Zeiler, Fergus. Visualizing and Understanding Convolutional Networks (2014).
    """
    x, target = scoring.prepare(model, x, target)
    mask, n_features, _ = _perturbations.check_feature_mask(feature_mask, x)
    most = _checks.check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    baselines = _paths.broadcast_baselines(baselines, x)
    chunk = _paths.balanced_chunk(n_features, most)
    return _feature_ablation(model, x, target, baselines, mask, n_features, chunk,
                             scoring.find_repeats(x, target, baselines, mask))
