"""Sampler settings that notebooks and examples share.

Notebooks call ``bs.sampler_settings()`` so that the test suite can run them top to bottom
with small settings (``BAYESCALE_FAST=1``) while a user gets full-size runs.

Example:
    >>> sampler_settings(seed=3)["seed"]
    3
"""

from __future__ import annotations

import os

__all__ = ["fast_mode", "sampler_settings"]


def fast_mode() -> bool:
    """True when ``BAYESCALE_FAST`` is set to a true value (tests, quick looks)."""
    return os.environ.get("BAYESCALE_FAST", "").lower() in ("1", "true", "yes", "on")


def sampler_settings(**overrides) -> dict:
    """``chains``/``draws``/``warmup`` for :func:`bayescale.fit`: full or fast.

    Full: 4 chains x 1000 warm-up + 1000 draws. Fast (``BAYESCALE_FAST=1``): 4 x 500 + 500,
    enough for R-hat (4 x 300 + 300 left it at 1.01-1.02 by chance on the 245-point
    Chinchilla fit) and for intervals to two significant digits.
    """
    settings = (
        {"chains": 4, "draws": 500, "warmup": 500}
        if fast_mode()
        else {"chains": 4, "draws": 1000, "warmup": 1000}
    )
    settings.update(overrides)
    return settings
