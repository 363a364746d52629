"""EigenCAM (pytorch-grad-cam ``EigenCAM``): the layer's output projected on its first
principal component; no gradient, no target."""

from __future__ import annotations

from jaxviz.attribution import _cam


@_cam.gradient_rule
def _rule(activation, grads, eigen_smooth):
    return _cam.projection(activation)


eigencam = _cam.cam_method(_rule, name="eigencam", gradients=False, doc="""EigenCAM: each image's
    centred (h·w, C) activations projected on their first right singular vector.

    The map does not depend on ``target`` (it is checked, as every method's is) or on
    ``eigen_smooth`` (always a projection).  The sign of a singular vector is arbitrary:
    the projection is negated where its largest magnitude is negative (Seg-Eigen-CAM's
    sign correction, the package's ``get_2d_projection_with_sign_correction``), so that
    the map is the same whichever LAPACK computed it.  The package's ``EigenCAM`` leaves
    the sign to NumPy's LAPACK, which differs between machines: where it chose the other
    sign, its map is the ReLU of the negated projection.

    References:
      Muhammad, Yeasin. Eigen-CAM: class activation map using principal components
      (IJCNN 2020).
      Chung, Ying. Seg-Eigen-CAM (Applied Sciences 15(13), 2025), Eq. 13.
""")
