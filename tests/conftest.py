"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# Tests never draw progress bars; figures render off-screen.
os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

#: Sampler settings for tests: 4000 draws keep R-hat (gate 1.01) out of its sampling noise on
#: the harder 30-run ladders (4 x 500 draws gave R-hat 1.010-1.016 by chance on ~1 seed in 8).
FAST = {"chains": 4, "draws": 1000, "warmup": 500}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Folder of the public datasets: $BAYESCALE_DATA or <repo>/../shared/data; skip if absent."""
    path = Path(os.environ.get("BAYESCALE_DATA") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"public scaling-law data not found at {path} (set BAYESCALE_DATA)")
    return path
