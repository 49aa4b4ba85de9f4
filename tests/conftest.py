"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never draw progress bars; figures render off-screen.
os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

#: Sampler settings for tests: enough for stable 95% intervals, small enough for CI.
FAST = {"chains": 4, "draws": 500, "warmup": 500}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the public datasets: $BAYESCALE_DATA or <repo>/../shared/data; skip if absent."""
    path = Path(os.environ.get("BAYESCALE_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"public scaling-law data not found at {path} (set BAYESCALE_DATA)")
    return path
