"""Keeping the image at chosen iterations of a compiled loop without leaving it: shared by
class visualisation and style transfer, checked the same way for both."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import InputError


def check_snapshot_at(snapshot_at: Sequence[int], num_iterations: int) -> tuple[int, ...]:
    """Distinct 1-based iterations in 1..num_iterations, as a tuple."""
    try:
        values = tuple(int(t) for t in snapshot_at)
    except (TypeError, ValueError):
        raise InputError(f"`snapshot_at` must be iterations in 1..{num_iterations}, got {snapshot_at!r}") from None
    if any(not 1 <= t <= num_iterations for t in values) or len(set(values)) != len(values):
        raise InputError(f"`snapshot_at` must be distinct iterations in 1..{num_iterations}, got {values}")
    return values


class Snapshots:
    """Static slot table: iteration t (0-based) writes slot ``slots[t]`` when it is >= 0."""

    def __init__(self, snapshot_at: tuple[int, ...], num_iterations: int):
        self.count = len(snapshot_at)
        slots = np.full(num_iterations, -1, np.int32)
        for k, t in enumerate(snapshot_at):
            slots[t - 1] = k
        self._slots = slots

    def empty(self, image):
        """(S, *image.shape) zeros."""
        return jnp.zeros((self.count,) + image.shape, image.dtype)

    def keep(self, snaps, t, image):
        """``snaps`` with ``image`` in iteration ``t``'s slot, if it has one."""
        if not self.count:
            return snaps
        slot = jnp.asarray(self._slots)[t]
        return jax.lax.cond(slot >= 0, lambda s: s.at[slot].set(image), lambda s: s, snaps)
