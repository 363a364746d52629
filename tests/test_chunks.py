"""Chunked evaluation: the policy, and that chunking changes no result."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxviz
from jaxviz import _chunks
from jaxviz import scoring


@pytest.mark.parametrize(
    "n, size, expected",
    [(25, 224, 5), (6, 224, 3), (7, 224, 4), (1, 224, 1), (50, 32, 50), (7, 448, 1), (3, 600, 1)],
)
def test_chunk_size_on_cpu(n, size, expected):
    assert jax.default_backend() == "cpu"
    assert _chunks.chunk_size(n, size, size) == expected


@pytest.mark.parametrize("interleave", [False, True])
def test_map_chunks_keeps_order_and_drops_padding(interleave):
    a = jnp.arange(5 * 3, dtype=jnp.float32).reshape(5, 3)
    b = jnp.arange(5, dtype=jnp.int32)
    seen, chunks = [], []

    def fn(u, v):
        seen.append(u.shape)
        jax.debug.callback(lambda ids: chunks.append(ids.tolist()), v, ordered=True)
        return {"sum": u.sum(axis=1) + v, "scaled": u * 2}

    out = _chunks.map_chunks(fn, a, b, chunk=2, interleave=interleave)
    assert seen == [(2, 3)]  # traced once, on one chunk
    # 3 chunks, the last image copied into the sixth place
    assert chunks == ([[0, 3], [1, 4], [2, 4]] if interleave else [[0, 1], [2, 3], [4, 4]])
    np.testing.assert_array_equal(out["sum"], a.sum(axis=1) + b)
    np.testing.assert_array_equal(out["scaled"], a * 2)
    whole = _chunks.map_chunks(fn, a, b, chunk=5)
    np.testing.assert_array_equal(whole["sum"], out["sum"])


@pytest.mark.float64_only
def test_chunked_gradients_equal_whole_batch_float64():
    with jax.enable_x64(True):
        model = jaxviz.init_model(jax.random.key(3)).astype(jnp.float64)
        x = jnp.asarray(np.random.default_rng(1).normal(size=(5, 35, 33, 3)))
        target = jnp.asarray([3, 999, 0, 3, 512])
        for guided in (False, True):
            whole = scoring.input_gradients(model, x, target, guided=guided, chunk=5)
            chunked = scoring.input_gradients(model, x, target, guided=guided, chunk=2)
            assert np.abs(whole).max() > 0
            np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-15 * np.abs(whole).max())
        act_w, grad_w = scoring.layer_gradients_and_eval(model, x, target, "features.7", chunk=5)
        act_c, grad_c = scoring.layer_gradients_and_eval(model, x, target, "features.7", chunk=3)
        # the same up to the rounding of a differently blocked GEMM (1 ulp of the largest value)
        np.testing.assert_allclose(act_c, act_w, rtol=1e-12, atol=1e-15 * np.abs(act_w).max())
        np.testing.assert_allclose(grad_c, grad_w, rtol=1e-12, atol=1e-15 * np.abs(grad_w).max())


def test_model_call_chunks_at_224():
    model = jaxviz.load_model()
    x = np.random.default_rng(2).normal(size=(7, 224, 224, 3)).astype(np.float32)  # 2 chunks of 4, 1 padded
    np.testing.assert_allclose(model(x), model.apply(model.params, x), rtol=1e-4, atol=1e-4)

