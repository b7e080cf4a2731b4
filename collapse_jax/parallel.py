"""Devices, meshes and memory: how chains are spread over hardware."""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

CHAIN_AXIS = "chains"


def chain_mesh(devices=None) -> Mesh:
    """A 1-D mesh named `chains` over the given devices (default: every device of every process)."""
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (CHAIN_AXIS,))


def put_global(array: np.ndarray, sharding: NamedSharding) -> jax.Array:
    """A global array from a host array that every process holds in full (works on one host or many)."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


def fetch(tree):
    """Host copies of (possibly sharded) outputs; across processes, every process gets all shards."""
    if jax.process_count() == 1:
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(tree, tiled=True)


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> int:
    """Join a multi-host run (one process per host) and return this process's index.

    Wraps `jax.distributed.initialize`. Arguments default to the variables COLLAPSE_JAX_COORDINATOR,
    COLLAPSE_JAX_NUM_PROCESSES and COLLAPSE_JAX_PROCESS_ID; `auto=True` lets JAX read the cluster
    environment (SLURM, TPU pods, ...) instead. With none of these it is a no-op (single process). Every process then
    runs the same sweep: lanes are sharded over the devices of all hosts, each process computes its
    shards, statistics are gathered, and only process 0 writes files (`is_writer`).
    """
    coordinator_address = coordinator_address or os.environ.get("COLLAPSE_JAX_COORDINATOR")
    if num_processes is None and os.environ.get("COLLAPSE_JAX_NUM_PROCESSES"):
        num_processes = int(os.environ["COLLAPSE_JAX_NUM_PROCESSES"])
    if process_id is None and os.environ.get("COLLAPSE_JAX_PROCESS_ID"):
        process_id = int(os.environ["COLLAPSE_JAX_PROCESS_ID"])
    if coordinator_address is None and num_processes is None and not auto:
        return 0
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU hosts gather through gloo
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=num_processes, process_id=process_id
    )
    return jax.process_index()


def is_writer() -> bool:
    """Whether this process writes results (process 0)."""
    return jax.process_index() == 0


def chain_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of arrays whose leading axis is the chain axis."""
    return NamedSharding(mesh, PartitionSpec(CHAIN_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def available_memory_bytes(device=None) -> int:
    """Free memory of a device: the allocator's limit minus use, or the host's MemAvailable on CPU."""
    device = device or jax.local_devices()[0]
    try:
        stats = device.memory_stats()
    except Exception:  # some backends do not implement it
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def device_description(devices=None) -> str:
    devices = list(jax.local_devices() if devices is None else devices)
    kinds = sorted({d.device_kind for d in devices})
    return f"{len(devices)} x {', '.join(kinds)} ({jax.default_backend()})"


def enable_compilation_cache(path: str | None = None) -> str:
    """Turn on JAX's persistent compilation cache (every program cached, whatever its compile time).

    Default location: $COLLAPSE_JAX_CACHE_DIR, else ~/.cache/collapse-jax/xla. Returns the path.
    """
    path = (
        path
        or os.environ.get("COLLAPSE_JAX_CACHE_DIR")
        or os.path.join(os.path.expanduser("~"), ".cache", "collapse-jax", "xla")
    )
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


class CompilationCounter:
    """Counts XLA compilations and persistent-cache hits while it is open (`with CompilationCounter() as c`).

    `requests`: programs looked up in the persistent compilation cache (one per compiled program when
    the cache is on); `cache_hits`: those loaded from it instead of compiled.
    """

    _EVENTS = {
        "/jax/compilation_cache/compile_requests_use_cache": "requests",
        "/jax/compilation_cache/cache_hits": "cache_hits",
    }

    def __init__(self):
        self.requests = 0
        self.cache_hits = 0

    def _listen(self, event: str, **kwargs) -> None:
        name = self._EVENTS.get(event)
        if name is not None:
            setattr(self, name, getattr(self, name) + 1)

    def __enter__(self) -> CompilationCounter:
        jax.monitoring.register_event_listener(self._listen)
        return self

    def __exit__(self, *exc) -> None:
        jax.monitoring.unregister_event_listener(self._listen)
