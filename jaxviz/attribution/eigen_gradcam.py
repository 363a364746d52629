"""EigenGradCAM (pytorch-grad-cam ``EigenGradCAM``): G ⊙ A projected on its first principal
component."""

from __future__ import annotations

from jaxviz.attribution import _cam


@_cam.gradient_rule
def _rule(activation, grads, eigen_smooth):
    return _cam.projection(grads * activation)


eigen_gradcam = _cam.cam_method(_rule, name="eigen_gradcam", doc="""EigenGradCAM: the centred
    (h·w, C) matrix of ∂y/∂A ⊙ A projected on its first right singular vector, a
    class-discriminative EigenCAM (``eigen_smooth`` changes nothing: always a projection).

    References:
      pytorch-grad-cam, ``EigenGradCAM``; Muhammad, Yeasin. Eigen-CAM (IJCNN 2020).
""")
