"""Parity-test collection and caches: a test parametrized with ``dtype="float64"`` compares float64
results alone, so it is marked ``float64_only`` like the tests marked by hand."""

from __future__ import annotations

import gc

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("dtype") == "float64":
            item.add_marker(pytest.mark.float64_only)
    # Within a module, one architecture's tests run together, so that a model cache of one
    # or two entries serves them all (see _free_cached_models); a test of one architecture
    # takes it as a one-value ``arch`` parameter to run beside that architecture's others.
    first = {}
    for i, item in enumerate(items):
        first.setdefault(item.nodeid.split("::")[0], i)

    def order(pair):
        i, item = pair
        callspec = getattr(item, "callspec", None)
        arch = callspec.params.get("arch", "") if callspec is not None else ""
        return first[item.nodeid.split("::")[0]], str(arch), i

    items[:] = [item for _, item in sorted(enumerate(items), key=order)]


@pytest.fixture(autouse=True, scope="module")
def _free_cached_models(request):
    """Models and random weights are cached for a few architectures at a time
    (``functools.lru_cache``) and dropped after each module: VGG's weights alone are 0.5 GB
    in float32 and 2 GB as a float64 pair, and a process that kept every family's reached
    14 GB (killed for memory beside a second test process)."""
    yield
    from parity_tests import helpers

    for value in list(vars(request.module).values()):
        if callable(getattr(value, "cache_clear", None)) and getattr(value, "__module__", None) == request.module.__name__:
            value.cache_clear()
    helpers.random_state_dict.cache_clear()
    helpers.random_case.cache_clear()
    gc.collect()
