"""Batches across devices and hosts with JAX's own SPMD machinery.

A 1-D :class:`jax.sharding.Mesh` over the local devices, parameters replicated, the
batch split along its leading axis with :class:`~jax.sharding.NamedSharding`; ``jit``
partitions every jaxviz function from those shardings (no ``pmap``, no home-made
scheduler).  Across hosts, :func:`initialize` wraps :func:`jax.distributed.initialize`
and each process takes its :func:`share` of the inputs.

Example::

    mesh = jaxviz.sharding.batch_mesh()                  # all local devices
    maps = jaxviz.sharding.map_batch(jaxviz.saliency, model, x, y, mesh=mesh)
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxviz.errors import InputError

BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"`` over ``devices`` (default: this process's devices)."""
    devices = list(jax.local_devices() if devices is None else devices)
    if not devices:
        raise InputError("`devices` is empty")
    return Mesh(np.array(devices), (BATCH_AXIS,))


def padded_size(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_batch(array, size: int):
    """Pads the leading axis to ``size`` by repeating the last element (a real input, so
    the padding cannot produce NaNs or degenerate work); the caller drops it afterwards."""
    n = array.shape[0]
    if n == size:
        return array
    if n == 0 or n > size:
        raise InputError(f"cannot pad a batch of {n} to {size}")
    xp = np if isinstance(array, np.ndarray) else jax.numpy
    return xp.concatenate([array, xp.repeat(array[-1:], size - n, axis=0)], axis=0)


def replicate(tree, mesh: Mesh):
    """Every array of ``tree`` (e.g. a :class:`jaxviz.Model`) copied to every mesh device."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard(array, mesh: Mesh):
    """``array`` split along its leading axis over the mesh (its length a multiple of the mesh size)."""
    return jax.device_put(array, NamedSharding(mesh, PartitionSpec(BATCH_AXIS)))


def map_batch(fn: Callable, model, *batch_args, mesh: Mesh | None = None, **kwargs):
    """``fn(model, *batch_args, **kwargs)`` with the batch split across ``mesh``.

    ``batch_args`` (e.g. ``x`` and ``target``) share a leading batch axis; they are padded
    to a multiple of the mesh size and sharded, the model is replicated, ``kwargs`` are
    passed unchanged.  Outputs with the padded leading axis are cut back to the input's
    length, in input order.
    """
    mesh = batch_mesh() if mesh is None else mesh
    lengths = {np.shape(a)[0] for a in batch_args}
    if len(lengths) != 1:
        raise InputError(f"batch arguments have different lengths: {sorted(lengths)}")
    n = lengths.pop()
    size = padded_size(n, mesh.size)
    placed = [shard(pad_batch(np.asarray(a) if not isinstance(a, jax.Array) else a, size), mesh)
              for a in batch_args]
    out = fn(replicate(model, mesh), *placed, **kwargs)
    return jax.tree.map(lambda a: a[:n] if getattr(a, "ndim", 0) and a.shape[0] == size else a, out)


# --------------------------------------------------------------------------- hosts

ENV_COORDINATOR = ("JAXVIZ_COORDINATOR", "JAX_COORDINATOR_ADDRESS")
ENV_NUM_PROCESSES = ("JAXVIZ_NUM_PROCESSES", "JAX_NUM_PROCESSES")
ENV_PROCESS_ID = ("JAXVIZ_PROCESS_ID", "JAX_PROCESS_ID")


def _env(names) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def initialize(coordinator: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> tuple[int, int]:
    """Joins a multi-process job via :func:`jax.distributed.initialize`; returns
    ``(process_index, process_count)``.

    Arguments default to ``$JAXVIZ_COORDINATOR``/``$JAX_COORDINATOR_ADDRESS``,
    ``$JAXVIZ_NUM_PROCESSES``/``$JAX_NUM_PROCESSES`` and
    ``$JAXVIZ_PROCESS_ID``/``$JAX_PROCESS_ID``.  With none of them set this is a
    single-process run and nothing is initialised.  Must run before any JAX computation.

    Joining changes process-wide JAX state, which is why it happens only here, when the
    caller asks: ``jax.distributed`` is initialised and, on CPU, the collectives
    implementation is set to gloo (the default CPU backend has none).
    """
    coordinator = coordinator or _env(ENV_COORDINATOR)
    num_processes = num_processes if num_processes is not None else _env(ENV_NUM_PROCESSES)
    process_id = process_id if process_id is not None else _env(ENV_PROCESS_ID)
    if coordinator is None and num_processes is None and process_id is None:
        return 0, 1
    if coordinator is None or num_processes is None or process_id is None:
        raise InputError("multi-process runs need all of: coordinator address, process count, process id")
    try:
        num_processes, process_id = int(num_processes), int(process_id)
    except (TypeError, ValueError):
        raise InputError(f"process count and id must be integers, got {num_processes!r} and {process_id!r}") from None
    if num_processes < 1 or not 0 <= process_id < num_processes:
        raise InputError(f"process id must be in 0..{num_processes - 1}, got {process_id}")
    if num_processes == 1:
        return 0, 1
    if jax.distributed.is_initialized():
        return jax.process_index(), jax.process_count()
    # CPU processes synchronise through gloo (the default CPU backend has no collectives)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes=num_processes, process_id=process_id)
    return jax.process_index(), jax.process_count()


def share(items: Sequence, process_index: int, process_count: int) -> list:
    """This process's share of ``items``: every ``process_count``-th, from ``process_index``."""
    return list(items[process_index::process_count])


def barrier(name: str) -> None:
    """Waits until every process reaches the same ``name`` (no-op for one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
