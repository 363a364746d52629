"""Freeing compiled programs before a process reaches the kernel's memory-map limit."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import _compiled


def test_release_if_crowded_drops_compiled_programs():
    assert _compiled.memory_maps() > 0 and _compiled.map_limit() > 0
    jax.jit(lambda v: v * 3)(jnp.ones(3)).block_until_ready()
    assert not _compiled.release_if_crowded(fraction=1.0)
    before = _compiled.memory_maps()
    assert _compiled.release_if_crowded(fraction=0.0)
    assert _compiled.memory_maps() < before
