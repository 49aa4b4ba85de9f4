"""The on-disk program store: exported NUTS programs, keyed so that none goes stale.

A program's file name digests everything it depends on (its name and key, x64, the
platform, the versions of jax, jaxlib and numpyro, and bayescale's own source), so an
edited or upgraded package never loads an old program; it lives next to JAX's persistent
compilation cache (:func:`bayescale._jax.cache_dir`).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .._jax import numpyro_version


def _program_path(name: str, key: tuple) -> Path | None:
    """Where the exported program for ``key`` lives, or None when not stored on disk."""
    from .._jax import cache_dir

    directory = cache_dir()
    if directory is None:
        return None
    try:
        import flatbuffers  # noqa: F401  (jax.export's serializer needs it)
    except ImportError:
        return None
    import jax
    import jaxlib

    x64 = bool(jax.config.read("jax_enable_x64"))
    platform = jax.default_backend()
    text = repr(
        (
            name,
            key,
            x64,
            platform,
            jax.__version__,
            jaxlib.__version__,
            numpyro_version(),
            _source_digest(),
        )
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return directory / "bayescale-programs" / f"{name}-{digest}.jaxexport"


_DIGEST: list[str] = []


def _source_digest() -> str:
    """sha256 of bayescale's own source files: an edited package never loads old programs."""
    if not _DIGEST:
        h = hashlib.sha256()
        root = Path(__file__).resolve().parents[1]  # the whole package, every subpackage
        for path in sorted(root.rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
        _DIGEST.append(h.hexdigest())
    return _DIGEST[0]


def _write_atomic(path: Path, blob: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the next process a trace
