"""Shared helpers for the allocation and isoFLOP tests: exact draws, simulated isoFLOP sweeps."""

from __future__ import annotations

import numpy as np
import pandas as pd

import bayescale as bs
from bayescale.laws.specs import ModelSpec
from bayescale.model import build_model
from bayescale.posterior import Fit

KAPLAN_ND = {"N_c": 8.8e13, "D_c": 5.4e13, "alpha_N": 0.076, "alpha_D": 0.095}


def true_optimum(truth: dict, compute, k: float = 6.0):
    """Hoffmann's closed form: N_opt = G (C/k)^a, a = beta/(alpha+beta); returns (N, D)."""
    alpha, beta = truth["alpha"], truth["beta"]
    g = (alpha * truth["A"] / (beta * truth["B"])) ** (1 / (alpha + beta))
    n = g * (np.asarray(compute, float) / k) ** (beta / (alpha + beta))
    return n, np.asarray(compute, float) / (k * n)


def synthetic_fit(law, truths: dict, *, spread=0.02, seed=0, chains=4, draws=250, runs=None):
    """A Fit whose draws scatter (log-normally, by ``spread``) around known parameters.

    Exact maths without MCMC: ``truths`` is ``{group: reported parameters}``; one key means
    an ungrouped fit. ``runs`` defaults to a ladder simulated from the truth.
    """
    law = bs.get_law(law)
    rng = np.random.default_rng(seed)
    if runs is None:
        frames = [
            bs.simulate_ladder(law, truth, seed=seed, group=name if len(truths) > 1 else None)
            for name, truth in truths.items()
        ]
        runs = bs.read_runs(
            pd.concat(frames, ignore_index=True),
            params="params",
            tokens="tokens",
            loss="loss",
            group="group" if len(truths) > 1 else None,
        )
    model = build_model(ModelSpec(name=law.name, law=law), runs)
    grouped = len(truths) > 1
    shape = (chains, draws) + ((len(truths),) if grouped else ())
    order = list(model.group_names) if grouped else list(truths)
    reported = {
        key: np.stack([np.full((chains, draws), truths[g][key]) for g in order], axis=-1).reshape(
            shape
        )
        * np.exp(spread * rng.standard_normal(shape))
        for key in law.reported_names
    }
    samples = {
        k: np.asarray(v, float) for k, v in law.from_reported(reported, model.log_ref).items()
    }
    samples["sigma"] = 0.01 * np.exp(0.1 * rng.standard_normal(shape))
    samples["nu"] = 5.0 * np.exp(0.1 * rng.standard_normal(shape))
    if model.n_sweeps:
        samples["tau_sweep"] = 0.01 * np.exp(0.1 * rng.standard_normal((chains, draws)))
        samples["sweep_z"] = rng.standard_normal((chains, draws, model.n_sweeps))
        samples["sweep_effect"] = samples["tau_sweep"][..., None] * samples["sweep_z"]
    stats = {
        "diverging": np.zeros((chains, draws), bool),
        "energy": rng.standard_normal((chains, draws)),
        "n_steps": np.full((chains, draws), 7),
    }
    return Fit(model, samples, stats, runs, {"flops_per_token": 6.0, "warn": False})


def isoflop_frame(truth, budgets, offsets=None, noise=0.0, seed=0):
    """IsoFLOP sweeps from the Chinchilla law: per budget, N = N_opt(C) * e^offsets."""
    offsets = np.linspace(-1.2, 1.2, 9) if offsets is None else offsets
    rng = np.random.default_rng(seed)
    law = bs.get_law("chinchilla")
    rows = []
    for c in budgets:
        n = true_optimum(truth, c)[0] * np.exp(np.asarray(offsets, float))
        d = c / (6 * n)
        loss = law.loss(truth, params=n, tokens=d) * np.exp(noise * rng.standard_normal(n.size))
        rows.append(pd.DataFrame({"params": n, "tokens": d, "loss": loss, "budget": f"{c:.3g}"}))
    return pd.concat(rows, ignore_index=True)


def isoflop_runs(*args, **kwargs):
    frame = isoflop_frame(*args, **kwargs)
    return bs.read_runs(frame, params="params", tokens="tokens", loss="loss", sweep="budget")
