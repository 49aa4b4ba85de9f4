"""The real-data backtest corpus: every public ladder in the data folder, fitted small, checked large.

Each :class:`Study` is a table from the data folder (see :mod:`bayescale.data.datasets`), a law
and a split; :func:`run_corpus` backtests them all with bayescale's defaults and returns one
row per study: held-out runs, coverage at 50/80/95%, median relative error, median 95%
width, sharpness (median 95% half-width over the median error), interval score, the point
fit's error and coverage on the same split, divergences, max R-hat and seconds.
``make backtest`` prints that table (``bench/backtest.py``).

The studies:

* ``porian/<setup>`` (15): Porian et al. 2024's isoFLOP sweeps, near-optimal runs (loss
  within 10% of the budget's best); fit budgets <= 1.6e18, predict budgets >= 6.4e18
  (4-16x the largest fitted budget).
* ``porian-rolling/<setup>`` (15): the same runs, rolling origin: fit every budget up to
  one (at least 5 budgets), predict the next 2.
* ``epoch``: the 245 Chinchilla points of Besiroglu et al. 2024; fit C < 1e20, predict
  C >= 3e20.
* ``gadre-paper/<data>`` (3): Gadre et al. 2024's 5 fit runs per data distribution, predict
  the held-out 1.4B run at M = 640 (``gadre2024``, C4 eval loss).
* ``gadre-overtrain/<data>`` (3): fit the runs with M = D/N <= 20, predict M >= 80.
* ``xlstm/<arch>`` (2): Beck et al. 2025's isoFLOP sweeps, near-optimal runs; fit the
  smaller budget, predict the larger.
* ``muennighoff``: Muennighoff et al. 2023's data-constrained runs; fit every model size
  below the largest, predict the largest, with ``chinchilla``, which ignores the
  unique-token budget U.
* ``muennighoff-dc``: the same split with ``muennighoff2023``, which reads U
  (``inputs={"U": ...}``): how much of chinchilla's error the data-constrained law removes.
* ``clark/<router>`` (4): Clark et al. 2022's routed models, one ``kaplan_n`` power law per
  expert count (``--group``); fit dense sizes below the largest, predict the largest. The
  law cannot carry anything across expert counts: the gap a law over E must close.
* ``clark-experts``: the same runs with ``clark2022``, which reads the expert count E
  (``inputs={"E": ...}``), every router in one fit (``pooling="shared"``: the dense law is
  common, each router has its own gains and transform); fit E <= 64, predict E = 128..512.

Example:
    >>> table = run_corpus(names=["epoch"])                       # doctest: +SKIP
    >>> table.loc["epoch", "coverage_95"]                          # doctest: +SKIP
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..data.datasets import (
    CHINCHILLA,
    GADRE,
    PORIAN,
    PORIAN_SETUP,
    XLSTM,
    _data_file,
    _read_csv,
)

__all__ = ["CI_STUDIES", "Study", "pooled", "run_corpus", "studies"]

MUENNIGHOFF = "muennighoff2023_data_constrained.csv"
CLARK = "clark2022_moe_routing.csv"
#: the studies ``make test`` backtests (about 3 minutes on 2 cores): one of each kind that
#: fits quickly, with the Porian setups least well covered in the corpus (fixed cutoff:
#: 83%; rolling: 85%) beside well-covered ones, so the subset's pooled coverage is the
#: corpus's and not only its easy part
CI_STUDIES = (
    "porian/rw/tuned/short/const/standard/val",
    "porian/owt2/base/short/chinchilla/standard/val",
    "porian-rolling/owt2/base/long/kaplan/standard/val",
    "epoch",
    "gadre-paper/rpj",
    "gadre-overtrain/rpj",
    "xlstm/mlstm",
    "clark/S-Base",
    "clark-experts",
)


@dataclass
class Study:
    """One backtest of the corpus.

    Attributes:
        name: ``source/variant``.
        source: the dataset it comes from (studies of one source share a lab's pipeline).
        load: ``path -> DataFrame`` of the study's runs.
        columns: column names for :func:`bayescale.trust.backtesting.backtest`.
        split: ``holdout``/``fit_set`` or ``rolling``/``by``/``first``.
        law: law name.
        options: further :func:`bayescale.fit` keywords (``pooling``, ...).
        note: what the study cannot show with the laws there are.
    """

    name: str
    source: str
    load: Callable[[str | None], pd.DataFrame]
    columns: dict
    split: dict
    law: str = "chinchilla"
    options: dict = field(default_factory=dict)
    note: str = ""


def near_best(table: pd.DataFrame, loss: str, by: Sequence[str], excess: float = 0.1):
    """Rows whose loss is within ``excess`` of the best loss of their ``by`` group.

    Example:
        >>> t = pd.DataFrame({"b": [1, 1, 1], "loss": [3.0, 3.2, 3.5]})
        >>> near_best(t, "loss", ["b"]).loss.tolist()
        [3.0, 3.2]
    """
    table = table[pd.to_numeric(table[loss], errors="coerce").notna()]
    best = table.groupby(list(by))[loss].transform("min")
    return table[table[loss] <= (1 + excess) * best]


def _porian(setup: tuple) -> Callable[[str | None], pd.DataFrame]:
    def load(path):
        t = _read_csv(_data_file(PORIAN, path))
        keep = np.logical_and.reduce(
            [
                (t[c].astype(str) == str(v)).to_numpy()
                for c, v in zip(PORIAN_SETUP, setup, strict=True)
            ]
        )
        return near_best(t[keep], "loss", ["flop_budget"]).reset_index(drop=True)

    return load


def _gadre(distribution: str, roles: Sequence[str] | None = None) -> Callable:
    def load(path):
        t = _read_csv(_data_file(GADRE, path))
        t = t[t["data_distribution"] == distribution]
        if roles is not None:
            t = t[t["default_fit_role"].isin(roles)]
        return t.reset_index(drop=True)

    return load


def _xlstm(arch: str) -> Callable:
    def load(path):
        t = _read_csv(_data_file(XLSTM, path))
        t = t[(t["arch"] == arch) & (t["completed"].astype(str).str.lower() == "true")]
        return near_best(t, "val_dclm_loss_final", ["isoflop_group"]).reset_index(drop=True)

    return load


def _plain(name: str, query: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Callable:
    def load(path):
        t = _read_csv(_data_file(name, path))
        return (t if query is None else query(t)).reset_index(drop=True)

    return load


def studies(path: str | None = None) -> list[Study]:
    """Every study of the corpus (the Porian setups are read from the data file).

    Example:
        >>> len(studies())          # doctest: +SKIP
        46
    """
    out: list[Study] = []
    porian = _read_csv(_data_file(PORIAN, path))
    setups = sorted(
        {tuple(map(str, s)) for s in porian[list(PORIAN_SETUP)].itertuples(index=False)}
    )
    porian_cols = {"params": "N_params", "tokens": "D_tokens", "loss": "loss"}
    porian_splits = (
        ("porian", {"holdout": "flop_budget>=6.4e18", "fit_set": "flop_budget<=1.6e18"}),
        ("porian-rolling", {"rolling": 2, "by": "flop_budget", "first": 5}),
    )
    for prefix, split in porian_splits:
        for setup in setups:
            label = "/".join(setup)
            out.append(Study(f"{prefix}/{label}", "porian", _porian(setup), porian_cols, split))
    out.append(
        Study(
            "epoch",
            "epoch",
            _plain(CHINCHILLA),
            {"params": "Model Size", "compute": "Training FLOP", "loss": "loss"},
            {"holdout": "compute>=3e20", "fit_set": "compute<1e20"},
        )
    )
    gadre_cols = {"params": "n_params", "tokens": "n_tokens", "loss": "loss_c4_val"}
    gadre_splits = (
        (
            "gadre-paper",
            ("fit_loss+fit_error", "heldout_target"),
            {"holdout": "default_fit_role==heldout_target"},
        ),
        (
            "gadre-overtrain",
            None,
            {"holdout": "token_multiplier>=80", "fit_set": "token_multiplier<=20"},
        ),
    )
    for prefix, roles, split in gadre_splits:
        for dist in ("c4_original", "rpj", "rw_original"):
            short = dist.replace("_original", "")
            out.append(
                Study(
                    f"{prefix}/{short}",
                    "gadre",
                    _gadre(dist, roles),
                    gadre_cols,
                    split,
                    law="gadre2024",
                )
            )
    for arch in ("llama", "mlstm"):
        out.append(
            Study(
                f"xlstm/{arch}",
                "xlstm",
                _xlstm(arch),
                {
                    "params": "num_params_logged",
                    "tokens": "tokens_planned",
                    "loss": "val_dclm_loss_final",
                },
                {"holdout": "isoflop_group==max"},
            )
        )
    # the shared file's ``tokens`` column holds the unique tokens U and ``unique_tokens``
    # the tokens seen D (tests/test_muennighoff_data.py); both studies read them swapped back
    out.append(
        Study(
            "muennighoff",
            "muennighoff",
            _plain(MUENNIGHOFF),
            {"params": "params", "tokens": "unique_tokens", "loss": "loss"},
            {"holdout": "params==max"},
            note="chinchilla ignores the unique-token budget U: the baseline for muennighoff-dc",
        )
    )
    out.append(
        Study(
            "muennighoff-dc",
            "muennighoff",
            _plain(MUENNIGHOFF),
            {"params": "params", "tokens": "unique_tokens", "loss": "loss"},
            {"holdout": "params==max"},
            law="muennighoff2023",
            options={"inputs": {"U": "tokens"}},
        )
    )
    for router in ("Dense", "S-Base", "Hash", "RL-R"):
        out.append(
            Study(
                f"clark/{router}",
                "clark",
                _plain(CLARK, lambda t, r=router: t[t["router_type"] == r]),
                {
                    "params": "dense_parameter_count",
                    "loss": "loss_validation",
                    "group": "num_experts",
                },
                {"holdout": "params==max"},
                law="kaplan_n",
                note="one power law per expert count: nothing carries across E (needs a law over E)",
            )
        )
    out.append(
        Study(
            "clark-experts",
            "clark",
            _plain(CLARK),
            {
                "params": "dense_parameter_count",
                "loss": "loss_validation",
                "group": "router_type",
            },
            {"holdout": "num_experts>=128", "fit_set": "num_experts<=64"},
            law="clark2022",
            options={"inputs": {"E": "num_experts"}, "pooling": "shared"},
        )
    )
    return out


def run_corpus(
    names: Sequence[str] | None = None,
    path: str | None = None,
    progress: Callable[[str], None] | None = None,
    **backtest_kwargs,
) -> pd.DataFrame:
    """Backtest the studies (all, or ``names``; a prefix such as ``porian/`` selects a family).

    Returns:
        One row per study (index: name) with the columns of :data:`COLUMNS`; the
        :class:`~bayescale.trust.backtesting.Backtest` objects are in ``table.attrs["backtests"]``.
    """
    from .backtesting import backtest

    chosen = studies(path)
    if names is not None:
        known = {s.name for s in chosen}
        wanted = list(names)
        for n in wanted:
            if n not in known and not any(k.startswith(n) for k in known):
                from .._util import did_you_mean

                raise ValueError(f"unknown study {n!r}{did_you_mean(n, known)}")
        chosen = [s for s in chosen if any(s.name == n or s.name.startswith(n) for n in wanted)]
    rows, results = [], {}
    for study in chosen:
        started = time.perf_counter()
        table = study.load(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bt = backtest(
                table,
                study.law,
                **study.columns,
                **study.split,
                **study.options,
                **backtest_kwargs,
            )
        results[study.name] = bt
        rows.append(_row(study, bt, time.perf_counter() - started))
        if progress is not None:
            progress(_progress_line(rows[-1]))
    table = pd.DataFrame(rows).set_index("study")
    table.attrs["backtests"] = results
    return table


#: columns of the corpus table
COLUMNS = (
    "source",
    "law",
    "n",
    "coverage_50",
    "coverage_80",
    "coverage_95",
    "median_rel_error",
    "median_width_95",
    "sharpness",
    "interval_score_95",
    "baseline_error",
    "baseline_coverage_95",
    "divergences",
    "max_r_hat",
    "folds_not_ok",
    "seconds",
    "note",
)


def _row(study: Study, bt, seconds: float) -> dict:
    s = bt.summary()
    base = s.get("baseline") or {}
    row = {"study": study.name, "source": study.source, "law": study.law}
    for key in COLUMNS[2:]:
        row[key] = s.get(key)
    row["baseline_error"] = base.get("median_rel_error")
    row["baseline_coverage_95"] = base.get("coverage_95")
    row["seconds"] = round(seconds, 1)
    row["note"] = study.note
    return row


def _progress_line(row: dict) -> str:
    def pct(v):
        return "  -  " if v is None else f"{100 * v:5.1f}"

    return (
        f"{row['study']:45s} n={row['n']:3d} cov95 {pct(row.get('coverage_95'))} "
        f"cov50 {pct(row.get('coverage_50'))} err {pct(row.get('median_rel_error'))} "
        f"width {pct(row.get('median_width_95'))} base err {pct(row.get('baseline_error'))} "
        f"div {row['divergences']} rhat {row['max_r_hat']:.3f} {row['seconds']:.0f}s"
    )


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def _median(values) -> float | None:
    return float(np.median(values)) if len(values) else None


def pooled(table: pd.DataFrame) -> dict:
    """Pooled scores over the studies' held-out runs (each run counts once).

    Example:
        >>> pooled(run_corpus(names=["epoch"]))["coverage_95"]     # doctest: +SKIP
    """
    backtests = table.attrs.get("backtests", {})
    runs = pd.concat([bt.scored().assign(study=name) for name, bt in backtests.items()])
    # a study whose folds all failed their diagnostics scores no run: its scores are None
    out = {f"coverage_{100 * q:g}": _mean(runs[f"covered_{100 * q:g}"]) for q in (0.5, 0.8, 0.95)}
    has_base = "baseline_median" in runs and runs["baseline_median"].notna().any()
    base = runs.dropna(subset=["baseline_median"]) if has_base else None
    if has_base:
        base_error = np.abs(base["baseline_median"] - base["observed"]) / base["observed"]
        base_covered = (base["observed"] >= base["baseline_lower"]) & (
            base["observed"] <= base["baseline_upper"]
        )
    out.update(
        {
            "n": len(runs),
            "studies": len(table),
            "median_rel_error": _median(runs["rel_error"]),
            "baseline_median_rel_error": _median(base_error) if has_base else None,
            "baseline_coverage_95": _mean(base_covered) if has_base else None,
            "min_study_coverage_95": float(table["coverage_95"].min()),
            "studies_sharpness_over_3": int((table["sharpness"] > 3).sum()),
            "studies_worse_than_baseline": (
                int((table["median_rel_error"] > table["baseline_error"]).sum())
                if has_base
                else None
            ),
            "divergences": int(table["divergences"].sum()),
            "max_r_hat": float(table["max_r_hat"].max()),
        }
    )
    return out


def format_table(table: pd.DataFrame, summary: dict | None = None) -> str:
    """The corpus table as Markdown (percentages to one decimal), pooled scores last.

    Example:
        >>> print(format_table(run_corpus(names=["epoch"])))        # doctest: +SKIP
    """

    def pct(v, digits=1):
        return "-" if v is None or pd.isna(v) else f"{100 * v:.{digits}f}"

    head = (
        "| study | law | held out | cov 50 | cov 80 | cov 95 | error % | 95% width % | "
        "half-width / error | interval score % | point fit error % | point fit cov 95 | "
        "div | max R-hat | s |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in table.iterrows():
        lines.append(
            f"| {name} | {r['law']} | {r['n']} | {pct(r['coverage_50'], 0)} | "
            f"{pct(r['coverage_80'], 0)} | {pct(r['coverage_95'], 0)} | {pct(r['median_rel_error'], 2)} | "
            f"{pct(r['median_width_95'])} | "
            f"{'-' if r['sharpness'] is None or pd.isna(r['sharpness']) else f'{r["sharpness"]:.1f}'} | "
            f"{pct(r['interval_score_95'], 2)} | {pct(r['baseline_error'], 2)} | "
            f"{pct(r['baseline_coverage_95'], 0)} | {r['divergences']} | {r['max_r_hat']:.3f} | "
            f"{r['seconds']:.0f} |"
        )
    if summary is not None:
        s = summary
        lines += [
            "",
            f"pooled over {s['n']} held-out runs in {s['studies']} studies: coverage 50/80/95% "
            f"{pct(s['coverage_50'])} / {pct(s['coverage_80'])} / {pct(s['coverage_95'])}; "
            f"median error {pct(s['median_rel_error'], 2)}% (point fit: "
            f"{pct(s.get('baseline_median_rel_error'), 2)}%, its 95% coverage "
            f"{pct(s.get('baseline_coverage_95'))}%); lowest study 95% coverage "
            f"{pct(s['min_study_coverage_95'], 0)}%; studies with half-width > 3x error: "
            f"{s['studies_sharpness_over_3']}; studies less accurate than the point fit: "
            f"{'-' if s['studies_worse_than_baseline'] is None else s['studies_worse_than_baseline']}; divergences {s['divergences']}; max R-hat "
            f"{s['max_r_hat']:.3f}",
        ]
    return "\n".join(lines)
