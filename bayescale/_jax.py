"""JAX start-up settings applied once, before the first JAX computation.

bayescale runs NUTS chains in parallel on host devices, so the XLA flag that splits
the CPU into several devices must be set before JAX initialises its backend. It also
turns on float64 (scaling-law posteriors are fitted in log space where float32 loses
the third significant digit of an exponent) and the persistent compilation cache, so
that a second process does not recompile the sampler.

Environment variables (all optional):

* ``BAYESCALE_HOST_DEVICES``: number of CPU devices for parallel chains (default 4).
* ``BAYESCALE_CACHE_DIR``: persistent compilation cache directory
  (default ``~/.cache/bayescale/jax``; ``off`` disables it). Its ``bayescale-programs``
  folder holds the exported NUTS programs (:mod:`bayescale.inference.sampler`), so that a new
  process neither traces nor compiles; deleting the folder is always safe.
* ``BAYESCALE_X64``: ``0`` keeps JAX in 32-bit mode (not recommended).
* ``BAYESCALE_GPU_GRAPHS``: ``0`` leaves XLA's GPU command buffers as they are. By
  default bayescale adds ``--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL`` to
  ``XLA_FLAGS`` (unless that flag is already set): NUTS is a nest of small while loops,
  and on a GPU each loop iteration otherwise launches its kernels one by one from the
  host. Measured on an H100 (``bench/gpu.py``): a fit of the Chinchilla points sampled
  in 2.6 s instead of 4.0 s, the same draws. It only affects GPU programs of this process.
* ``BAYESCALE_GPU_DETERMINISTIC``: ``0`` leaves XLA's GPU determinism as it is. By default
  bayescale adds ``--xla_gpu_deterministic_ops=true`` (unless that flag is already set), so
  that a seed gives the same draws in every process. Without it, fresh processes fitting
  the same 1024 datasets with the same seed on an H100 disagreed at 2 of the 3 versions
  measured (XLA's autotuner picks GPU kernels by timing them, the likely cause); with it,
  two processes agreed, at the same speed (40.8 and 39.9 s against 41.8 s). CPU programs
  are unaffected.
"""

from __future__ import annotations

import os
import re
import sys
from functools import cache
from pathlib import Path

__all__ = [
    "cache_dir",
    "configure",
    "device_name",
    "host_device_count",
    "numpyro_version",
    "prepare",
    "select_device",
]

_CONFIGURED = False


def host_device_count() -> int:
    """Number of CPU devices requested for parallel chains."""
    return max(1, int(os.environ.get("BAYESCALE_HOST_DEVICES", "4")))


def cache_dir() -> Path | None:
    """Directory of JAX's persistent compilation cache, or None when disabled."""
    value = os.environ.get("BAYESCALE_CACHE_DIR", "")
    if value.lower() == "off":
        return None
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "bayescale" / "jax"


#: CUDA graphs for while loops and conditionals on top of XLA's default command buffers
GPU_GRAPHS = "--xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL"
#: GPU kernels chosen without timing them, and no atomics: the same draws in every process
GPU_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"


def xla_flags(
    flags: str, count: int, gpu_graphs: bool = True, gpu_deterministic: bool = True
) -> str:
    """``XLA_FLAGS`` with bayescale's settings added to ``flags`` (the user's own).

    ``count`` host devices replace any count in ``flags``; GPU command buffers for loops
    are added unless ``flags`` sets command buffers itself or ``gpu_graphs`` is False, and
    deterministic GPU ops unless ``flags`` sets them or ``gpu_deterministic`` is False.

    Example:
        >>> xla_flags("", 4, gpu_deterministic=False)
        '--xla_force_host_platform_device_count=4 --xla_gpu_enable_command_buffer=+WHILE,+CONDITIONAL'
        >>> xla_flags("--xla_gpu_enable_command_buffer=", 2)
        '--xla_force_host_platform_device_count=2 --xla_gpu_enable_command_buffer= --xla_gpu_deterministic_ops=true'
    """
    flags = re.sub(r"--xla_force_host_platform_device_count=\S+\s?", "", flags).strip()
    parts = [f"--xla_force_host_platform_device_count={count}"]
    if flags:
        parts.append(flags)
    if gpu_graphs and "--xla_gpu_enable_command_buffer" not in flags:
        parts.append(GPU_GRAPHS)
    if gpu_deterministic and "--xla_gpu_deterministic_ops" not in flags:
        parts.append(GPU_DETERMINISTIC)
    return " ".join(parts)


def _set_host_devices(count: int) -> None:
    # Only effective before the XLA backend starts; harmless afterwards.
    graphs = os.environ.get("BAYESCALE_GPU_GRAPHS", "1") != "0"
    deterministic = os.environ.get("BAYESCALE_GPU_DETERMINISTIC", "1") != "0"
    os.environ["XLA_FLAGS"] = xla_flags(
        os.environ.get("XLA_FLAGS", ""), count, graphs, deterministic
    )


def prepare() -> None:
    """Set bayescale's JAX settings through the environment, without importing JAX.

    ``import bayescale`` calls it, so the package imports in milliseconds (the ``bayescale``
    command handles Ctrl-C from its first moments) and JAX, whenever it is first imported,
    reads float64 and the compilation cache from ``JAX_*`` variables. Where JAX is already
    imported, the variables would come too late and :func:`configure` applies them at once.

    Example:
        >>> prepare(); os.environ["JAX_ENABLE_X64"] in ("0", "1")
        True
    """
    if "jax" in sys.modules:
        configure()
        return
    _set_host_devices(host_device_count())
    os.environ["JAX_ENABLE_X64"] = "0" if os.environ.get("BAYESCALE_X64", "1") == "0" else "1"
    directory = cache_dir()
    if directory is not None and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def configure() -> None:
    """Apply bayescale's JAX settings (idempotent); fits call it before their first trace."""
    global _CONFIGURED
    if _CONFIGURED:
        return
    jax_started = "jax" in sys.modules and _backend_started()
    if not jax_started:
        _set_host_devices(host_device_count())
    import jax

    if os.environ.get("BAYESCALE_X64", "1") != "0":
        jax.config.update("jax_enable_x64", True)
    directory = cache_dir()
    if directory is not None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(directory))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
            jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
        except OSError:
            pass  # a read-only home must not stop a fit; it only costs compile time
    # numpyro's first import registers two JAX trace-context states (jax.extend imports
    # pallas); had that happened after a first trace, every function jitted before it
    # would be traced again. jax.extend registers them (~0.04 s) and numpyro itself (~0.6
    # s) is imported when a model is first traced: a process that loads stored programs
    # or reads a fit file (a second ``bayescale fit``, ``summary``, ``predict``,
    # ``allocate``, ``decide``) never imports it.
    import jax.extend

    _CONFIGURED = True


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except Exception:  # pragma: no cover - private API moved
        return True


def select_device(device: str = "auto"):
    """Return the JAX device for ``device`` in {"cpu", "gpu", "auto"}.

    ``auto`` picks a GPU when JAX sees one and the CPU otherwise.

    Example:
        >>> select_device("cpu").platform
        'cpu'
    """
    import jax

    if device not in ("cpu", "gpu", "auto"):
        raise ValueError(f"device must be one of 'cpu', 'gpu', 'auto' but got {device!r}")
    if device in ("gpu", "auto"):
        try:
            gpus = jax.devices("gpu")
        except RuntimeError:
            gpus = []
        if gpus:
            return gpus[0]
        if device == "gpu":
            raise ValueError(
                "device 'gpu' requested but JAX sees no GPU; install jax with CUDA "
                "(pip install 'bayescale[gpu]') or use --device cpu"
            )
    return jax.devices("cpu")[0]


def device_name(device) -> str:
    """The JAX ``device`` a fit ran on (:func:`select_device`'s), as the fit records it:
    ``cpu``, or ``gpu (<kind>)``.

    A seeded fit reproduces its draws on the same platform only (a GPU's arithmetic
    differs from a CPU's), so a fit's provenance names the platform it ran on, not the
    ``auto`` it was asked for.

    Example:
        >>> device_name(select_device("cpu"))
        'cpu'
    """
    return "cpu" if device.platform == "cpu" else f"{device.platform} ({device.device_kind})"


@cache
def numpyro_version() -> str:
    """numpyro's version, from its installed metadata: importing numpyro costs ~0.6 s,
    and a process that loads its programs from the store never needs it otherwise."""
    from importlib import metadata

    try:
        return metadata.version("numpyro")
    except metadata.PackageNotFoundError:  # pragma: no cover - numpyro without metadata
        import numpyro

        return numpyro.__version__
