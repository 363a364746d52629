"""GradCAM++ (pytorch-grad-cam ``GradCAMPlusPlus``): channel weights from the positive
gradients, each position weighted by the closed-form α of the paper."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz.attribution import _cam

EPS = 1e-6  # the package's, in the denominator of α


def _weights(activation, grads):
    grads_2 = grads**2
    grads_3 = grads_2 * grads
    total = activation.sum(axis=(1, 2), keepdims=True)
    alpha = grads_2 / (2 * grads_2 + total * grads_3 + EPS)
    alpha = jnp.where(grads != 0, alpha, 0.0)
    return (jax.nn.relu(grads) * alpha).sum(axis=(1, 2))


gradcam_plus_plus = _cam.cam_method(
    _cam.gradient_rule(_cam.weighted(_weights)), name="gradcam_plus_plus",
    doc="""GradCAM++: Σ_k w_k A_k with w_k = Σ_ij α_ij^k ReLU(∂y/∂A_ij^k) and
    α = g² / (2g² + Σ_ab A_ab^k · g³ + 1e-6) (0 where g = 0), the package's closed form
    with exponential-score derivatives replaced by powers of the gradient.

    References:
      Chattopadhay et al. Grad-CAM++: Generalized gradient-based visual explanations for
      deep convolutional networks (WACV 2018).
""")
