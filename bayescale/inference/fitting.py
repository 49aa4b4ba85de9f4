"""Fit a scaling law by NUTS: ``fit(runs, law) -> Fit``.

Example:
    >>> import bayescale as bs
    >>> runs = bs.simulate_ladder("chinchilla", seed=1)            # doctest: +SKIP
    >>> result = bs.fit(runs, "chinchilla", draws=500, warmup=500)  # doctest: +SKIP
    >>> result.summary()                                             # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .._jax import configure, device_name, select_device
from ..data.runs import Runs, read_runs
from ..laws.base import Law
from ..laws.core import get_law, list_laws
from ..laws.priors import Prior
from ..laws.specs import ModelSpec, load_model
from ..model.drift import MAX_FOLD_RUNS
from ..model.scaling import build_model, pad_size
from ..posterior.core import Fit
from ..settings import SamplerOptions, resolve_sampler
from .pilot import FULL_WARMUP, pilot_start, uses_pilot
from .sampling import (
    _check_loss_mask,
    _warm_start,
    default_target_accept,
    run_info,
    sample,
)

__all__ = ["fit", "resolve_spec"]

#: warm-up of a continued chain (``extend``): its metric is kept, its step size re-adapted
CONTINUE_WARMUP = 200
#: target acceptance of the one re-run of a drift fold that diverged at the default
RETRY_ACCEPT = 0.99
#: target acceptances of the re-runs of a fit that diverged at the default, in turn (Stan's
#: advice before a reparameterisation): on the 5-run Gadre et al. ladders (3 data sets x
#: seeds 0-5, no drift) 6 of 18 fits diverged at 0.99 and 1 of 18 at 0.999
RETRY_ACCEPTS = (RETRY_ACCEPT, 0.999)


def resolve_spec(law: str | Law | ModelSpec | Path) -> ModelSpec:
    """A :class:`ModelSpec` from a law name, a spec name or path, a Law or a spec.

    Law names (``chinchilla``) give the law with default priors and the robust
    likelihood; spec names (``chinchilla_besiroglu2024``) and ``.toml`` paths load
    ``models/`` files.
    """
    if isinstance(law, ModelSpec):
        return law
    if isinstance(law, Law):
        return ModelSpec(name=law.name, law=law)
    name = str(law)
    if name in list_laws():
        return ModelSpec(name=name, law=get_law(name))
    try:
        return load_model(law)
    except ValueError as exc:
        if str(name).endswith(".toml"):
            raise
        from .._util import did_you_mean
        from ..laws.specs import list_models

        extra = did_you_mean(name, list_laws() + list_models())
        raise ValueError(
            f"unknown law or model spec {name!r}{extra} Laws: {', '.join(list_laws())}; "
            f"specs: {', '.join(list_models())}"
        ) from exc


def _progress_default(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return not (os.environ.get("CI") or os.environ.get("BAYESCALE_NO_PROGRESS"))


def fit(
    data: Runs | pd.DataFrame | str | Path,
    law: str | Law | ModelSpec = "chinchilla",
    *,
    params: str | None = None,
    tokens: str | None = None,
    compute: str | None = None,
    loss: str | None = None,
    group: str | None = None,
    downstream: str | None = None,
    sweep: str | None = None,
    inputs: Mapping[str, str] | None = None,
    priors: Mapping[str, Prior | str | Mapping] | None = None,
    likelihood: str | None = None,
    pooling: str | None = None,
    discrepancy: bool = False,
    scatter_growth: bool | None = None,
    drift: bool = True,
    seed: int = 0,
    sampler: SamplerOptions | None = None,
    warm_start: Fit | None = None,
    flops_per_token: float = 6.0,
    loss_mask: np.ndarray | None = None,
    command: str | None = None,
    **deprecated,
) -> Fit:
    """Fit a scaling law to runs and return the posterior as a :class:`Fit`.

    Args:
        data: a :class:`~bayescale.data.runs.Runs`, a DataFrame or a CSV path.
        law: law name (``chinchilla``), spec name (``chinchilla_besiroglu2024``), a
            ``.toml`` path, a :class:`~bayescale.laws.Law` or a
            :class:`~bayescale.laws.specs.ModelSpec`.
        params, tokens, compute, loss, group, downstream, sweep: column names, when
            ``data`` is a table (ignored for :class:`Runs`).
        inputs: named inputs beyond params/tokens/compute, ``{name: column}`` (e.g.
            ``{"U": "unique_tokens"}`` for ``muennighoff2023``), when ``data`` is a table.
        priors: overrides by site name, e.g. ``{"alpha": "Uniform(low=0, high=1)"}``.
        likelihood: ``student_t`` (default) or ``normal``.
        pooling: ``none`` / ``shared`` / ``partial`` across groups.
        seed: PRNG seed; the same seed gives the same draws on the same machine.
        sampler: how NUTS runs, a :class:`~bayescale.SamplerOptions` (chains, draws,
            warm-up, device, progress bar, target acceptance, mass matrix, continued
            chains); default ``SamplerOptions()``: 4 chains x 1000 warm-up + 1000 draws.
            A table of 8,192 runs or more runs that warm-up on a random 4,096 of them
            and then 200 step-size iterations on all (:mod:`bayescale.inference.pilot`;
            ``info["pilot"]`` records it).
            Spelling its options as keywords of ``fit`` (``chains=8``) still works, with
            a DeprecationWarning, for this release.
        flops_per_token: FLOPs per parameter and token when compute or tokens is derived.
        command: the command line that made the fit (recorded in the file); default: a
            description of this Python call.
        discrepancy: widen predictions beyond the data by ``kappa * max(0, log C -
            log C_max)`` on log loss, ``kappa ~ HalfNormal(0.01)`` (prior only: no run
            inside the data can inform it; override with ``priors={"kappa": ...}``).
            A sweep column (``sweep=``) adds a shared deviation per sweep,
            ``Normal(0, tau_sweep)``, which predictions for a new sweep draw afresh.
        scatter_growth: let the run-to-run scatter widen toward the small end of the
            ladder, ``sigma * exp(scatter_growth * depth)`` with ``depth`` the e-folds of
            compute below the fit set's top and ``scatter_growth ~ HalfNormal(0.2)``. Small
            runs that the law's form does not follow then weigh less than the runs
            nearest the extrapolation; predictions at or beyond the top keep ``sigma``.
            Default (None): on for laws of params, tokens and compute alone when the runs
            can inform a second noise parameter (:func:`auto_scatter_growth`);
            ``info["scatter_growth"]`` records the choice.
        loss_mask: optional booleans, one per run: False leaves that run's loss out of
            the loss-law likelihood while its (loss, error) pair still informs the
            downstream link (Gadre et al.'s 1.4B M=20 run). Default priors and the
            reference scale then come from the runs with True.
        warm_start: a previous :class:`Fit` of the same model structure and number of
            chains (e.g. before a new run arrived, or on the original data of a bootstrap
            resample): each chain starts where that fit's chain ended, with its adapted
            mass matrix, and warm-up (200 iterations by default) adapts only the step
            size. A refit on new data of the same shape then takes about half the
            sampling time. The diagnostics judge the result as for any fit: if the new
            posterior is far from the old one, fit without ``warm_start``.
        drift: learn how far the law's extrapolations drift from the ladder's own
            backtest (:mod:`bayescale.model.drift`): the law is refitted on the lower part of
            the runs (2-5 more fits of the same compiled sampler), and predictions beyond
            the data carry the drift it showed, with its uncertainty. ``False`` gives the
            law's posterior alone, whose intervals beyond the data are too narrow on real
            ladders (``docs/calibration.md``).

    Returns:
        The :class:`~bayescale.posterior.Fit`.

    Example:
        >>> import bayescale as bs
        >>> runs = bs.simulate_ladder(seed=0)                                  # doctest: +SKIP
        >>> cols = dict(params="params", tokens="tokens", loss="loss")
        >>> first = bs.fit(runs, "chinchilla", **cols)                         # doctest: +SKIP
        >>> again = bs.fit(runs.iloc[1:], "chinchilla", warm_start=first, **cols)  # doctest: +SKIP
        >>> again.info["warmup"], again.info["warm_start"]                     # doctest: +SKIP
        (200, True)
    """
    opts = resolve_sampler(sampler, deprecated, "fit", known=_KEYWORDS)
    chains, draws, device, progress = opts.chains, opts.draws, opts.device, opts.progress
    target_accept, dense_mass, extend = opts.target_accept, opts.dense_mass, opts.extend
    warmup = opts.warmup
    if warmup is None:
        warmup = 1000 if warm_start is None else 200
    spec = resolve_spec(law)
    if isinstance(data, Runs):
        runs = data
    else:
        if loss is None:
            raise ValueError("name the loss column (loss=... / --loss COLUMN)")
        runs = read_runs(
            data,
            params=params,
            tokens=tokens,
            compute=compute,
            loss=loss,
            downstream=downstream,
            group=group,
            sweep=sweep,
            flops_per_token=flops_per_token,
            inputs=inputs,
            loss_range=spec.law.response or None,
        )
    if runs.downstream is not None and not spec.downstream and downstream is not None:
        spec = spec.with_(downstream=True)
    spec = spec.with_(priors=priors, likelihood=likelihood, pooling=pooling)
    loss_mask = _check_loss_mask(loss_mask, runs)
    if likelihood is None and _default_likelihood(law):
        spec = spec.with_(likelihood=auto_likelihood(spec, runs, loss_mask))
    if scatter_growth is None:
        scatter_growth = auto_scatter_growth(spec, runs, loss_mask)
    scaling_model = build_model(
        spec,
        runs if loss_mask is None else runs.select(loss_mask),
        discrepancy=discrepancy,
        scatter_growth=scatter_growth,
    )
    if spec.law.check is not None:  # once per fit, not once per drift fold
        spec.law.check(runs)
    chosen_accept = target_accept is not None
    if target_accept is None:
        target_accept = default_target_accept(scaling_model)
    start = _warm_start(warm_start, scaling_model, chains=chains, dense_mass=dense_mass)
    started = time.perf_counter()
    configure()
    dev = select_device(device)

    run_warmup, pilot = warmup, None
    if uses_pilot(runs, warm_start=warm_start, loss_mask=loss_mask):
        # a large table adapts NUTS on a subsample first (bayescale.inference.pilot)
        start, pilot = pilot_start(
            scaling_model,
            runs,
            seed=seed,
            warmup=warmup,
            chains=chains,
            device=dev,
            target_accept=target_accept,
            dense_mass=dense_mass,
        )
        run_warmup = FULL_WARMUP
    retry = extend and not chosen_accept and warm_start is None and target_accept < RETRY_ACCEPTS[0]
    samples, stats, end, extended, target_accept = _sample_until_ok(
        scaling_model,
        runs,
        extend=extend,
        retry=bool(retry),
        chains=chains,
        draws=draws,
        warmup=run_warmup,
        seed=seed,
        device=dev,
        progress=_progress_default(progress),
        target_accept=target_accept,
        dense_mass=dense_mass,
        loss_mask=loss_mask,
        start=start,
    )
    info = run_info(
        runs,
        seed=seed,
        chains=chains,
        draws=draws * (1 + extended),
        warmup=run_warmup,
        target_accept=target_accept,
        dense_mass=dense_mass,
        device=device_name(dev),
        seconds=round(time.perf_counter() - started, 3),
    )
    if pilot is not None:
        info["pilot"] = pilot
    if command is None:  # the call as the user made it: its warm-up, which a pilot ran
        command = _describe_call(data, spec, info, warmup=warmup)
    info["command"] = command
    if loss_mask is not None:
        info["loss_mask"] = [bool(v) for v in loss_mask]
    info["warm_start"] = warm_start is not None
    info["extended"] = extended
    info["scatter_growth"] = bool(scaling_model.scatter_growth)
    if drift:
        fitted_runs = runs if loss_mask is None else runs.select(loss_mask)
        calibration = _calibrate_drift(
            spec,
            fitted_runs,
            scaling_model,
            pad_size(min(runs.n_runs, MAX_FOLD_RUNS + max(runs.n_groups, 1))),
            dev,
            chains=chains,
            draws=draws,
            warmup=1000 if warm_start is not None else warmup,
            seed=seed,
            target_accept=info["target_accept"],
            dense_mass=dense_mass,
            extend=extend,
        )
        from ..model.drift import drift_draws, with_drift

        samples = {**samples, **drift_draws(calibration, chains, draws * (1 + extended), seed)}
        scaling_model = with_drift(scaling_model, calibration)
        info["drift"] = calibration
        info["seconds"] = round(time.perf_counter() - started, 3)
    result = Fit(scaling_model, samples, stats, runs, info)
    result.sampler_end = end
    return result


#: fit's own keywords, for the suggestion when a keyword is misspelt
_KEYWORDS = tuple(fit.__code__.co_varnames[2 : fit.__code__.co_kwonlyargcount + 2])


def _sample_until_ok(scaling_model, runs, *, extend: int, retry: bool, target_accept, **settings):
    """:func:`sample`, run again at each of :data:`RETRY_ACCEPTS` in turn while it diverges
    (``retry``), then continued while R-hat or ESS fail (at most ``extend`` times; see
    :func:`fit`).

    Returns ``(samples, stats, end, extended, target_accept)``.
    """
    progress = settings.pop("progress", False)
    # divergences at the default step size (the long E-A-B tails and the sigma funnel of
    # a small ladder): smaller steps, as the verdict would advise, before any draw is used
    accepts = [target_accept] + ([a for a in RETRY_ACCEPTS if a > target_accept] if retry else [])
    for target_accept in accepts:
        samples, stats, end = sample(
            scaling_model, runs, target_accept=target_accept, progress=progress, **settings
        )
        samples, stats, end, extended = _extend(
            scaling_model,
            runs,
            samples,
            stats,
            end,
            extend,
            target_accept=target_accept,
            **{k: v for k, v in settings.items() if k not in ("warmup", "start")},
        )
        if not np.any(stats["diverging"]):
            break
    return samples, stats, end, extended, target_accept


def _extend(scaling_model, runs, samples, stats, end, extend: int, *, seed, draws, **settings):
    """Continue the chains while R-hat or ESS fail without divergences (see ``extend``)."""
    extended = 0
    while extended < extend:
        check = Fit(scaling_model, samples, stats, runs, {"warn": False})
        d = check.diagnostics
        if d.ok or d.divergences or not d.messages:
            break
        extended += 1
        more, more_stats, end = sample(
            scaling_model,
            runs,
            seed=seed + 100_003 * extended,
            draws=draws,
            warmup=CONTINUE_WARMUP,
            start=end,
            **settings,
        )
        samples = {k: np.concatenate([samples[k], more[k]], axis=1) for k in samples}
        stats = {k: np.concatenate([stats[k], more_stats[k]], axis=1) for k in stats}
    return samples, stats, end, extended


def _calibrate_drift(spec, runs, scaling_model, size, dev, *, seed, **settings) -> dict:
    """:func:`bayescale.model.drift.calibrate_drift` with folds fitted by this fit's sampler."""
    from ..data.sweeps import without_sweep
    from ..model.drift import calibrate_drift

    law = spec.law
    fold_spec = spec.with_(downstream=False) if spec.downstream else spec

    def fit_fold(train, fold_seed):
        train = without_sweep(train)  # a fold predicts new budgets: no sweep effects
        # a fold grows its scatter as its fit does, when it has the runs to inform it
        growth = scaling_model.scatter_growth and _enough_runs(fold_spec, train)
        model = build_model(fold_spec, train, scatter_growth=growth)
        # a re-run at a higher target acceptance only when the fold's diagnostics fail: a
        # few divergences barely move the median and spread of its predictions, and a re-run
        # of every fold that diverged once doubled the cost of the calibration
        fold_settings = dict(settings)
        for _attempt in range(2):
            samples, stats, _, _, _ = _sample_until_ok(
                model, train, seed=fold_seed, device=dev, size=size, retry=False, **fold_settings
            )
            fitted = Fit(model, samples, stats, train, {"warn": False})
            if fitted.diagnostics.ok or not fitted.diagnostics.divergences:
                break
            fold_settings["target_accept"] = RETRY_ACCEPT
        return fitted

    import warnings

    from .._util import FitWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        return calibrate_drift(
            runs, fit_fold, tuple(law.inputs), len(law.parameter_names), law.name, seed=seed
        )


def _default_likelihood(law) -> bool:
    """Whether ``law`` leaves the likelihood to bayescale (a law, not a spec that names one)."""
    return isinstance(law, Law) or (isinstance(law, str) and law in list_laws())


def auto_likelihood(spec: ModelSpec, runs: Runs, loss_mask=None) -> str:
    """``student_t``, or ``normal`` when the runs are too few for a robust likelihood.

    A Student-t posterior can be improper when the law passes exactly through its k
    parameters' worth of runs and fewer than 2k - 1 runs inform each noise scale
    (:func:`bayescale.model.build_model` warns of it); with so few runs it cannot tell an
    outlier from the law either, and its heavy tails only widen the extrapolation.

    Example:
        >>> auto_likelihood(resolve_spec("gadre2024"), bs.load_gadre2024(roles="fit_loss+fit_error",
        ...                 distributions="rpj"))                         # doctest: +SKIP
        'normal'
    """
    if spec.likelihood != "student_t":
        return spec.likelihood
    return "student_t" if _enough_runs(spec, runs, loss_mask) else "normal"


def _enough_runs(spec: ModelSpec, runs: Runs, loss_mask=None) -> bool:
    """Whether at least ``2k - 1`` runs inform each noise scale (k law parameters each)."""
    fitted = runs if loss_mask is None else runs.select(loss_mask)
    k = len(spec.law.parameter_names)
    if spec.pooling == "none" and fitted.group is not None and len(fitted.group_names) > 1:
        counts = np.bincount(np.asarray(fitted.group), minlength=len(fitted.group_names))
        fewest = int(counts[counts > 0].min())
    else:
        fewest, k = fitted.n_runs, k * (1 if fitted.group is None else len(fitted.group_names))
    return fewest >= 2 * k - 1


def auto_scatter_growth(spec: ModelSpec, runs: Runs, loss_mask=None) -> bool:
    """Whether a fit grows its scatter toward the small end of the ladder by default.

    On for laws of params, tokens and compute alone, when the runs can inform a noise
    parameter beyond ``sigma`` (the rule of :func:`auto_likelihood`: at least ``2k - 1``
    runs per noise scale). Off for laws of further inputs (unique tokens, experts), whose
    runs differ along axes the depth in compute does not measure, and for tiny ladders
    (Gadre et al.'s 5 runs for 4 parameters): on the backtest corpus both were less
    accurate with it (``docs/calibration.md``).

    Example:
        >>> auto_scatter_growth(resolve_spec("chinchilla"), bs.read_runs(bs.load_chinchilla(),
        ...     params="Model Size", compute="Training FLOP", loss="loss"))   # doctest: +SKIP
        True
    """
    from ..model.scatter import scale_only

    return scale_only(spec.law) and _enough_runs(spec, runs, loss_mask)


def _describe_call(data, spec: ModelSpec, info: Mapping, *, warmup: int) -> str:
    """A readable record of an API call, for the fit file's provenance."""
    source = str(data) if isinstance(data, str | Path) else type(data).__name__
    asked = {"chains": info["chains"], "draws": info["draws"], "warmup": warmup}
    settings = ", ".join(f"{k}={v!r}" for k, v in asked.items())
    return (
        f"bayescale.fit({source}, law={spec.name!r}, seed={info['seed']!r}, "
        f"sampler=SamplerOptions({settings}))"
    )
