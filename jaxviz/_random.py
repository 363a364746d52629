"""How jaxviz draws its own noise from the user's keys."""

from __future__ import annotations

import jax


def fast_threefry():
    """A context in which ``jax.random`` draws with threefry's original counters (JAX's
    ``jax_threefry_partitionable=False``) instead of the partitionable ones JAX now uses by
    default, which take longer on a CPU for the per-pixel noise of SmoothGrad, GradientShap
    and the perturbation metrics (benchmarks/results/noise-draws/).  The values
    depend only on the key and the shape, on every backend and sharding; a sharded draw
    may be computed whole on each device first."""
    return jax.threefry_partitionable(False)
