"""Sampler settings: the :class:`SamplerOptions` that :func:`bayescale.fit` takes.

A fit's few modelling choices (law, columns, priors) are keywords of :func:`bayescale.fit`;
how NUTS runs travels in one :class:`SamplerOptions`. Notebooks call
``bs.sampler_settings()`` so that the test suite can run them top to bottom with small
settings (``BAYESCALE_FAST=1``) while a user gets full-size runs.

Example:
    >>> SamplerOptions(draws=2000).draws
    2000
    >>> SamplerOptions(chains=2).replace(target_accept=0.99).target_accept
    0.99
    >>> SamplerOptions(chains=0)
    Traceback (most recent call last):
    ...
    ValueError: chains must be an integer >= 1 but got 0
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._util import did_you_mean

__all__ = ["SamplerOptions", "fast_mode", "sampler_settings"]

DEVICES = ("cpu", "gpu", "auto")


@dataclass(frozen=True)
class SamplerOptions:
    """How NUTS samples a fit: chains, draws, warm-up, device and step-size control.

    Attributes:
        chains: independent chains (4); R-hat needs at least 2.
        draws: draws per chain kept after warm-up (1000).
        warmup: warm-up iterations per chain; ``None`` is 1000, or 200 for a
            ``warm_start`` fit (only the step size adapts).
        device: ``cpu``, ``gpu`` or ``auto`` (the GPU when JAX sees one).
        progress: progress bar; ``None`` shows it unless ``CI`` or
            ``BAYESCALE_NO_PROGRESS`` is set.
        target_accept: NUTS target acceptance probability; ``None`` is 0.95 (0.97 for
            partial pooling), and a fit that diverges there is run again at 0.99, and
            if it still diverges, at 0.999.
        dense_mass: adapt a dense mass matrix (exponents and coefficients correlate).
        extend: while R-hat or ESS fail (with no divergences), continue every chain for
            another ``draws`` draws, at most ``extend`` times; ``0`` also turns off the
            re-runs at 0.99 and 0.999.

    Example:
        >>> import bayescale as bs
        >>> fit = bs.fit(runs, "chinchilla", loss="loss", params="N", tokens="D",
        ...              sampler=bs.SamplerOptions(chains=8, draws=2000))  # doctest: +SKIP
    """

    chains: int = 4
    draws: int = 1000
    warmup: int | None = None
    device: str = "auto"
    progress: bool | None = None
    target_accept: float | None = None
    dense_mass: bool = True
    extend: int = 3

    def __post_init__(self) -> None:
        for name, low in (("chains", 1), ("draws", 1), ("warmup", 0), ("extend", 0)):
            value = getattr(self, name)
            if value is None and name == "warmup":
                continue
            if isinstance(value, bool) or not hasattr(value, "__index__") or value < low:
                raise ValueError(f"{name} must be an integer >= {low} but got {value!r}")
            object.__setattr__(self, name, value.__index__())  # numpy integers too
        if self.device not in DEVICES:
            raise ValueError(
                f"device must be one of {', '.join(map(repr, DEVICES))} but got {self.device!r}"
                + did_you_mean(self.device, DEVICES)
            )
        if self.target_accept is not None:
            accept = self.target_accept
            if (
                isinstance(accept, bool)
                or not isinstance(accept, int | float)
                or not 0 < accept < 1
            ):
                raise ValueError(f"target_accept must be in (0, 1) but got {accept!r}")
        for name in ("progress", "dense_mass"):
            value = getattr(self, name)
            if not (isinstance(value, bool) or (value is None and name == "progress")):
                raise ValueError(f"{name} must be True or False but got {value!r}")

    def replace(self, **changes: Any) -> SamplerOptions:
        """A copy with ``changes`` applied (validated like the constructor)."""
        unknown = sorted(set(changes) - set(FIELDS))
        if unknown:
            raise TypeError(
                f"SamplerOptions has no option {unknown[0]!r}"
                + did_you_mean(unknown[0], FIELDS)
                + f" (options: {', '.join(FIELDS)})"
            )
        return dataclasses.replace(self, **changes)


#: the option names, in the order of the constructor
FIELDS = tuple(f.name for f in dataclasses.fields(SamplerOptions))


def resolve_sampler(
    sampler: SamplerOptions | None,
    legacy: dict[str, Any],
    caller: str,
    *,
    known: Iterable[str] = (),
    stacklevel: int = 3,
) -> SamplerOptions:
    """The :class:`SamplerOptions` of a call that may still spell them as keywords.

    ``legacy`` holds the keywords a caller got beyond its signature: sampler options
    (``chains=4``) are accepted for one release with a DeprecationWarning that names the
    new spelling; anything else is the TypeError Python would give, with a suggestion
    among ``known`` (the caller's own keywords) and the sampler options.
    """
    unknown = [k for k in legacy if k not in FIELDS]
    if unknown:
        raise TypeError(
            f"{caller}() got an unexpected keyword argument {unknown[0]!r}"
            + did_you_mean(unknown[0], [*known, *FIELDS])
        )
    if sampler is not None and not isinstance(sampler, SamplerOptions):
        raise TypeError(
            f"{caller}(sampler=...) must be a bayescale.SamplerOptions but got "
            f"{type(sampler).__name__}"
        )
    if not legacy:
        return sampler if sampler is not None else SamplerOptions()
    if sampler is not None:
        raise TypeError(
            f"{caller}() got both sampler= and {', '.join(f'{k}=' for k in legacy)}: "
            "put them in the SamplerOptions"
        )
    spelled = ", ".join(f"{k}={v!r}" for k, v in legacy.items())
    warnings.warn(
        f"{caller}({spelled}) is deprecated: pass sampler=bayescale.SamplerOptions({spelled})",
        DeprecationWarning,
        stacklevel=stacklevel,
    )
    return SamplerOptions(**legacy)


def fast_mode() -> bool:
    """True when ``BAYESCALE_FAST`` is set to a true value (tests, quick looks)."""
    return os.environ.get("BAYESCALE_FAST", "").lower() in ("1", "true", "yes", "on")


def sampler_settings(**overrides: Any) -> SamplerOptions:
    """:class:`SamplerOptions` for notebooks and examples: full size or fast.

    Full: 4 chains x 1000 warm-up + 1000 draws. Fast (``BAYESCALE_FAST=1``): 4 x 500 + 500,
    enough for R-hat (4 x 300 + 300 left it at 1.01-1.02 by chance on the 245-point
    Chinchilla fit) and for intervals to two significant digits. ``overrides`` are
    options of :class:`SamplerOptions`.

    Example:
        >>> sampler_settings(target_accept=0.99).target_accept
        0.99
    """
    base = (
        SamplerOptions(chains=4, draws=500, warmup=500)
        if fast_mode()
        else SamplerOptions(chains=4, draws=1000, warmup=1000)
    )
    return base.replace(**overrides)
