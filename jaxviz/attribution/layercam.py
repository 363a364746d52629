"""LayerCAM (pytorch-grad-cam ``LayerCAM``): Σ_k ReLU(G_k) ⊙ A_k."""

from __future__ import annotations

import jax

from jaxviz.attribution import _cam


@_cam.gradient_rule
def _rule(activation, grads, eigen_smooth):
    return _cam.channel_sum(jax.nn.relu(grads) * activation, eigen_smooth)


layercam = _cam.cam_method(_rule, name="layercam", doc="""LayerCAM: Σ_k ReLU(∂y/∂A_k) ⊙ A_k, each
    position weighted by its own positive gradient; meant for several layers at once
    (``layer=(...)``, ``resolution="input"``).

    References:
      Jiang et al. LayerCAM: exploring hierarchical class activation maps for
      localization (IEEE TIP 2021).
""")
