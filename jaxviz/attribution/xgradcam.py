"""XGradCAM (pytorch-grad-cam ``XGradCAM``): channel weights Σ_ij G ⊙ A / Σ_ij A."""

from __future__ import annotations

from jaxviz.attribution import _cam

EPS = 1e-7  # the package's, beside the channel sum


def _weights(activation, grads):
    total = activation.sum(axis=(1, 2), keepdims=True)
    return (grads * activation / (total + EPS)).sum(axis=(1, 2))


xgradcam = _cam.cam_method(_cam.gradient_rule(_cam.weighted(_weights)), name="xgradcam", doc="""XGradCAM:
    Σ_k w_k A_k with w_k = Σ_ij (∂y/∂A_ij^k · A_ij^k) / (Σ_ij A_ij^k + 1e-7).

    References:
      Fu et al. Axiom-based Grad-CAM: towards accurate visualization and explanation of
      CNNs (BMVC 2020).
""")
