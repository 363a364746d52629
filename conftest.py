"""Shared test set-up: where ../shared is, the pretrained weights, strict JAX settings."""

from __future__ import annotations

import os
from pathlib import Path

import jax
import pytest

from jaxviz import _compiled

ROOT = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("JAXVIZ_SHARED") or ROOT.parent / "shared")
WEIGHTS_11 = SHARED / "weights" / "squeezenet1_1_tv_fp16.npz"
WEIGHTS_10 = SHARED / "weights" / "squeezenet1_0_deep_compression.npz"

# Tests must never reach for the network or a user's cache.
os.environ.setdefault("JAXVIZ_WEIGHTS", str(WEIGHTS_11))
os.environ["JAXVIZ_OFFLINE"] = "1"

# Strict like equinox's conftest: implicit rank promotion is a bug.
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Each compiled CPU program holds a few hundred memory maps; a suite's thousands of
    programs reached the kernel's vm.max_map_count (65530) and XLA segfaulted.  Free them
    per module, and within a long module whenever a third of the limit is in use."""
    yield
    jax.clear_caches()


@pytest.fixture(autouse=True)
def _release_compiled_programs_when_crowded():
    yield
    _compiled.release_if_crowded(fraction=1 / 3)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JAXVIZ_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "jaxviz-cache"))


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        raise RuntimeError(f"the shared data folder {SHARED} is missing; set JAXVIZ_SHARED")
    return SHARED
