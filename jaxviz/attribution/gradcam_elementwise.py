"""GradCAMElementWise (pytorch-grad-cam): Σ_k ReLU(G_k ⊙ A_k)."""

from __future__ import annotations

import jax

from jaxviz.attribution import _cam


@_cam.gradient_rule
def _rule(activation, grads, eigen_smooth):
    return _cam.channel_sum(jax.nn.relu(grads * activation), eigen_smooth)


gradcam_elementwise = _cam.cam_method(_rule, name="gradcam_elementwise", doc="""GradCAM, element-wise
    (pytorch-grad-cam ``GradCAMElementWise``): Σ_k ReLU(∂y/∂A_k ⊙ A_k) at the layer.

    References:
      pytorch-grad-cam, ``GradCAMElementWise`` (a HiResCAM whose products are ReLU'd
      before the sum).
""")
