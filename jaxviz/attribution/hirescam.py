"""HiResCAM (pytorch-grad-cam ``HiResCAM``): Σ_k G_k ⊙ A_k, the gradient kept per position."""

from __future__ import annotations

from jaxviz.attribution import _cam


@_cam.gradient_rule
def _rule(activation, grads, eigen_smooth):
    return _cam.channel_sum(grads * activation, eigen_smooth)


hirescam = _cam.cam_method(_rule, name="hirescam", doc="""HiResCAM: Σ_k ∂y/∂A_k ⊙ A_k at the layer.

    Unlike GradCAM, the gradient is not averaged over positions, so the map is the exact
    contribution of each position when the layers above are linear.

    References:
      Draelos, Carin. Use HiResCAM instead of Grad-CAM for faithful explanations of
      convolutional neural networks (2020).
""")
