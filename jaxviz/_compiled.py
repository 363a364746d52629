"""Keeping a long-running process clear of the kernel's memory-map limit.

Each compiled XLA:CPU program maps its code in a few hundred pieces, released by
``jax.clear_caches()`` (benchmarks/results/design-notes.md).  A process that
compiles a few hundred programs — many image shapes, or a long test module — reaches
``vm.max_map_count`` (65530 by default) and XLA crashes inside its compiler.
"""

from __future__ import annotations

import jax


def memory_maps() -> int | None:
    """How many memory maps this process holds (None where /proc is not available)."""
    try:
        with open("/proc/self/maps", "rb") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return None


def map_limit() -> int | None:
    try:
        with open("/proc/sys/vm/max_map_count") as limit:
            return int(limit.read())
    except (OSError, ValueError):
        return None


def release_if_crowded(fraction: float = 0.5) -> bool:
    """Drops JAX's compiled programs once this process holds more than ``fraction`` of the
    kernel's map limit; returns whether it did.  Programs are recompiled on next use."""
    used, limit = memory_maps(), map_limit()
    if used is None or limit is None or used <= fraction * limit:
        return False
    jax.clear_caches()
    return True
