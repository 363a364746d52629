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
    ``eigen_smooth`` (always a projection).  The sign of a singular vector is arbitrary;
    jaxviz takes LAPACK's, as NumPy does in the package.

    References:
      Muhammad, Yeasin. Eigen-CAM: class activation map using principal components
      (IJCNN 2020).
""")
