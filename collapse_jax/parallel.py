"""Devices, meshes and memory: how chains are spread over hardware."""

from __future__ import annotations

import os

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

CHAIN_AXIS = "chains"


def chain_mesh(devices=None) -> Mesh:
    """A 1-D mesh named `chains` over the given devices (default: all local devices)."""
    devices = list(jax.local_devices() if devices is None else devices)
    import numpy as np

    return Mesh(np.array(devices), (CHAIN_AXIS,))


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
    path = path or os.environ.get("COLLAPSE_JAX_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "collapse-jax", "xla"
    )
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path
