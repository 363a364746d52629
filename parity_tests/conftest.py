"""Parity-test collection: a test parametrized with ``dtype="float64"`` compares float64
results alone, so it is marked ``float64_only`` like the tests marked by hand."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("dtype") == "float64":
            item.add_marker(pytest.mark.float64_only)
