"""Max-pool gradient routing is PyTorch's, including ties, on real activations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxviz
from jaxviz.models.layers import max_pool_ceil
from parity_tests import helpers as h


def _torch_pool_grad(a, g):
    at = h.nchw(a).requires_grad_()
    out = torch.nn.functional.max_pool2d(at, 3, 2, ceil_mode=True)
    out.backward(h.nchw(g))
    return h.nhwc(out), h.nhwc(at.grad)


@pytest.mark.parametrize("pool_input", ["features.1", "features.4", "features.7"])
def test_routing_on_tied_real_activations(pool_input):
    # Images 1 and 14 have saturated regions: many exact ties in the pools' windows.
    with h.precision("float64"):
        model = h.jax_model("squeezenet1_1", h.pretrained_state_dict(), "float64")
        X, _ = h.course_images()
        x = jaxviz.preprocess(X[list(h.TIED_IMAGES)]).astype(np.float64)
        a = jaxviz.layer_activation(model, x, pool_input)
        y, vjp = jax.vjp(max_pool_ceil, a)
        g = np.random.default_rng(0).normal(size=y.shape)
        (ours,) = vjp(jnp.asarray(g))
        a_np = np.asarray(a)
    # positive exact ties exist, so the tie rule is really exercised
    assert (a_np[:, :-1] == a_np[:, 1:])[a_np[:, 1:] > 0].any()
    ref_y, ref_g = _torch_pool_grad(a_np, g)
    np.testing.assert_array_equal(np.asarray(y), ref_y)
    np.testing.assert_allclose(np.asarray(ours), ref_g, rtol=1e-12, atol=1e-15)  # overlaps sum in another order


@pytest.mark.parametrize("shape", [(1, 5, 5, 1), (2, 8, 9, 3), (1, 55, 55, 4)])
def test_routing_on_constant_input(shape):
    a = np.ones(shape)
    with h.precision("float64"):
        y, vjp = jax.vjp(max_pool_ceil, jnp.asarray(a))
        g = np.random.default_rng(1).normal(size=y.shape)
        (ours,) = vjp(jnp.asarray(g))
    np.testing.assert_allclose(np.asarray(ours), _torch_pool_grad(a, g)[1], rtol=1e-12, atol=1e-15)
