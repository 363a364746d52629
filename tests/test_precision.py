"""JAX's float32 precision switch reaches every product jaxviz computes.

On a GPU, float32 at JAX's default precision rounds products to TF32 (saliency 13 % off
PyTorch's float32 on the H200, benchmarks/results/gpu-h200/notes.md); the README sends
users to ``jax.default_matmul_precision("highest")``.  That only works if no jaxviz program
fixes a precision of its own or is reused from a cache traced under another setting.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend import core as jcore

import jaxviz

PRODUCTS = ("dot_general", "conv_general_dilated")
HIGHEST = (jax.lax.Precision.HIGHEST, jax.lax.Precision.HIGHEST)


def _equations(jaxpr):
    for equation in jaxpr.eqns:
        yield equation
        for value in equation.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(sub, jcore.ClosedJaxpr):
                    yield from _equations(sub.jaxpr)
                elif isinstance(sub, jcore.Jaxpr):
                    yield from _equations(sub)


@pytest.fixture(scope="module")
def case():
    model = jaxviz.init_model(jax.random.key(0), "resnet18")
    x = jnp.asarray(np.random.default_rng(0).normal(size=(1, 32, 32, 3)), jnp.float32)
    return model, x, np.array([3])


METHODS = {
    "saliency": lambda m, x, t: jaxviz.saliency(m, x, t),
    "integrated_gradients": lambda m, x, t: jaxviz.integrated_gradients(m, x, t, n_steps=2),
    # a rewritten copy of the network's traced program
    "lrp": lambda m, x, t: jaxviz.lrp(m, x, t, composite="epsilon_plus"),
    # a region plan, cached per architecture and size
    "occlusion": lambda m, x, t: jaxviz.occlusion(m, x, t, sliding_window_shapes=(8, 8, 3), strides=(8, 8, 3)),
}


@pytest.mark.parametrize("method", METHODS)
def test_highest_precision_reaches_every_product_after_a_call_without_it(case, method):
    model, x, target = case
    run = METHODS[method]
    run(model, x, target)  # fills whatever jaxviz caches, at the default precision
    with jax.default_matmul_precision("highest"):
        jaxpr = jax.make_jaxpr(lambda v: run(model, v, target))(x).jaxpr
    precisions = [e.params["precision"] for e in _equations(jaxpr) if e.primitive.name in PRODUCTS]
    assert len(precisions) >= 20  # the network's convolutions and their transposes at the least
    assert all(p == HIGHEST for p in precisions), sorted({str(p) for p in precisions})
    # and without the switch the network's products are at the default again (jaxviz's own
    # exact sums, such as occlusion's accumulation of the windows, stay at HIGHEST)
    default = jax.make_jaxpr(lambda v: run(model, v, target))(x).jaxpr
    assert sum(e.params["precision"] is None for e in _equations(default) if e.primitive.name in PRODUCTS) >= 20
