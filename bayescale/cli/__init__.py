"""The ``bayescale`` command line; each module adds its commands.

Layer 11, the top: imports any layer. Importing it stays cheap (no jax), so the console
script handles Ctrl-C from its first milliseconds.
"""

from .app import (
    main,
    run,
)

__all__ = [
    "main",
    "run",
]
