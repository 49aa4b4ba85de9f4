"""Declarative model specs: ``models/*.toml``, one per published law.

A spec is reviewable by a paper's reader: the law, its options, the priors that differ
from the defaults, the likelihood, and the citation. Specs are read with :mod:`tomllib`
(never evaluated) and ship inside the wheel as ``bayescale/models``.

Example:
    >>> spec = load_model("chinchilla_besiroglu2024")
    >>> spec.law.name, spec.likelihood
    ('chinchilla', 'student_t')
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._util import did_you_mean, short_repr
from .base import Law
from .core import get_law
from .priors import Prior, parse_prior

__all__ = ["LIKELIHOODS", "POOLINGS", "ModelSpec", "list_models", "load_model", "models_dir"]

LIKELIHOODS = ("student_t", "normal")
POOLINGS = ("none", "shared", "partial")
_KEYS = {
    "name",
    "law",
    "law_options",
    "priors",
    "likelihood",
    "pooling",
    "downstream",
    "description",
    "citation",
}
#: the TOML type each key must have (bool("false") is True; str() of a table is no name)
_TYPES: dict[str, tuple[type, str]] = {
    **{k: (str, "a string") for k in ("name", "law", "likelihood", "pooling", "description")},
    "citation": (str, "a string"),
    "law_options": (Mapping, "a table"),
    "priors": (Mapping, "a table"),
    "downstream": (bool, "true or false"),
}


@dataclass(frozen=True)
class ModelSpec:
    """A law with priors, likelihood, pooling and provenance.

    Attributes:
        name: spec name (file stem for files in ``models/``).
        law: the :class:`~bayescale.laws.Law`.
        priors: prior overrides by sample-site name (others use the law's defaults).
        likelihood: ``student_t`` (robust, default) or ``normal``, on log loss.
        pooling: ``none``, ``shared`` or ``partial`` across groups.
        downstream: also fit ``Err = eps - k exp(-gamma L)`` on a downstream column.
        downstream_priors: prior overrides for ``eps``, ``k``, ``gamma``.
    """

    name: str
    law: Law
    priors: Mapping[str, Prior] = field(default_factory=dict)
    likelihood: str = "student_t"
    pooling: str = "none"
    downstream: bool = False
    description: str = ""
    citation: str = ""
    path: str | None = None

    def __post_init__(self) -> None:
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)} but got {self.likelihood!r}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"pooling must be one of {', '.join(POOLINGS)} but got {self.pooling!r}"
            )

    def with_(self, **changes) -> ModelSpec:
        """A copy with some fields changed (``None`` values are ignored)."""
        from dataclasses import replace

        changes = {k: v for k, v in changes.items() if v is not None}
        if "priors" in changes:
            merged = dict(self.priors)
            merged.update({k: parse_prior(v) for k, v in changes["priors"].items()})
            changes["priors"] = merged
        return replace(self, **changes)


def models_dir() -> Path:
    """Where the shipped specs live: ``bayescale/models`` in a wheel, ``models/`` in a checkout."""
    package = Path(__file__).resolve().parents[1]  # bayescale/
    inside = package / "models"
    if inside.is_dir():
        return inside
    return package.parent / "models"


def list_models() -> list[str]:
    """Names of the shipped model specs.

    Example:
        >>> "gadre2024_overtrained" in list_models()
        True
    """
    return sorted(p.stem for p in models_dir().glob("*.toml"))


def load_model(name_or_path: str | Path) -> ModelSpec:
    """Load a spec by shipped name or from a TOML file path.

    Raises:
        ValueError: unknown name (with a did-you-mean), unreadable TOML, unknown keys,
            or a prior for a parameter the law does not have.
    """
    path = Path(name_or_path)
    if path.suffix != ".toml" or not _exists(path):
        candidate = models_dir() / f"{name_or_path}.toml"
        if not _exists(candidate):
            if path.suffix == ".toml":
                raise ValueError(
                    f"model spec file {short_repr(str(name_or_path), limit=300)} not found"
                )
            known = list_models()
            extra = did_you_mean(str(name_or_path), known)
            raise ValueError(
                f"unknown model spec {short_repr(str(name_or_path))}{extra} Known specs: {', '.join(known)}"
            )
        path = candidate
    try:  # utf-8-sig: a byte-order mark (Windows editors) is no TOML error
        table = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read model spec {str(path)!r}: {exc}") from None
    except OSError as exc:  # a folder named *.toml, no permission
        raise ValueError(f"cannot read model spec {str(path)!r}: {exc.strerror or exc}") from None
    except RecursionError:
        raise ValueError(
            f"cannot read model spec {str(path)!r}: arrays or tables nested too deeply"
        ) from None
    return spec_from_table(table, default_name=path.stem, path=str(path))


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system names no file
        return False


def spec_from_table(
    table: Mapping, default_name: str = "custom", path: str | None = None
) -> ModelSpec:
    """Build a :class:`ModelSpec` from a parsed TOML table."""
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise ValueError(
            f"model spec {default_name!r} has unknown key {short_repr(unknown[0])}; valid keys: {', '.join(sorted(_KEYS))}"
        )
    if "law" not in table:
        raise ValueError(f"model spec {default_name!r} needs a 'law' entry")
    for key, kind in _TYPES.items():
        if key in table and not isinstance(table[key], kind[0]):
            raise ValueError(
                f"model spec {default_name!r}: {key!r} must be {kind[1]}, "
                f"got {type(table[key]).__name__} {short_repr(table[key])}"
            )
    law = get_law(table["law"], **table.get("law_options", {}))
    priors_table = dict(table.get("priors", {}))
    down_names = ("eps", "k", "gamma")
    valid = set(law.parameter_names) | {"sigma", "nu", "sigma_downstream", "nu_downstream"}
    valid |= {f"{p}_tau" for p in law.parameter_names} | set(down_names)
    for key in priors_table:
        if key not in valid:
            extra = did_you_mean(key, sorted(valid))
            raise ValueError(
                f"model spec {default_name!r}: law {law.name!r} has no parameter {short_repr(key)}{extra} "
                f"Valid names: {', '.join(sorted(valid))}"
            )
    priors = {k: parse_prior(v) for k, v in priors_table.items()}
    return ModelSpec(
        name=str(table.get("name", default_name)),
        law=law,
        priors=priors,
        likelihood=str(table.get("likelihood", "student_t")),
        pooling=str(table.get("pooling", "none")),
        downstream=bool(table.get("downstream", False)),
        description=str(table.get("description", "")),
        citation=str(table.get("citation", "")),
        path=path,
    )
