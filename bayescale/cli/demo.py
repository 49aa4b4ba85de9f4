"""``bayescale demo``: simulate a ladder from Hoffmann's law, fit it, report.

A lab's ladder: six model sizes from 20M to 1.5B parameters, each trained at five token
multipliers (5 to 80 tokens per parameter), with 1% log-normal run-to-run noise. The
demo fits the Chinchilla law with the default robust likelihood and compares the
posterior with the truth, then predicts a 70B model on 1.4T tokens.
"""

from __future__ import annotations

import numpy as np

from ..laws.simulate import HOFFMANN_2022, simulate_ladder

__all__ = ["run_demo"]

TARGET = {"params": 70e9, "tokens": 1.4e12}


def run_demo(
    draws: int = 1000,
    warmup: int = 1000,
    chains: int = 4,
    seed: int = 0,
    progress: bool | None = None,
) -> tuple[dict, str]:
    """Run the demo; returns the JSON payload and the printed text.

    ``progress`` None shows the sampler's bar unless ``CI`` or ``BAYESCALE_NO_PROGRESS``
    is set (as :func:`bayescale.fit`).

    Example:
        >>> payload, text = run_demo(draws=200, warmup=200)   # doctest: +SKIP
        >>> payload["covered"]["alpha"]                      # doctest: +SKIP
        True
    """
    from ..data.runs import read_runs
    from ..inference.fitting import fit
    from ..settings import SamplerOptions

    frame = simulate_ladder("chinchilla", HOFFMANN_2022, noise=0.01, seed=seed)
    runs = read_runs(frame, params="params", tokens="tokens", loss="loss")
    sampler = SamplerOptions(chains=chains, draws=draws, warmup=warmup, progress=progress)
    result = fit(runs, "chinchilla", seed=seed, sampler=sampler)
    summary = result.summary()
    truth_loss = float(result.law.loss(HOFFMANN_2022, **TARGET))
    prediction = result.predict(**TARGET)
    covered = {
        k: bool(summary.loc[k, "lower"] <= v <= summary.loc[k, "upper"])
        for k, v in HOFFMANN_2022.items()
    }
    payload = result.to_dict()
    payload.update(
        {
            "truth": HOFFMANN_2022,
            "covered": covered,
            "target": TARGET,
            "prediction": prediction.to_dict(),
            "true_loss_at_target": truth_loss,
            "seconds": result.info["seconds"],
        }
    )
    table = summary[["median", "lower", "upper", "r_hat", "ess_bulk"]].copy()
    table.insert(0, "truth", [HOFFMANN_2022.get(k, np.nan) for k in table.index])
    lines = [
        f"Simulated {runs.n_runs} runs from Hoffmann et al. (2022): N in 2e7..1.5e9, "
        f"D/N in 5..80, 1% noise (seed {seed}).",
        f"Fitted {result.law.formula} with a Student-t likelihood on log loss: "
        f"{chains} chains x {draws} draws in {result.info['seconds']:.1f} s.",
        "",
        table.to_string(float_format=lambda v: f"{v:.4g}"),
        "",
        f"Diagnostics: {result.diagnostics.verdict()} (max R-hat {result.diagnostics.max_r_hat:.3f}, "
        f"{result.diagnostics.divergences} divergences, min bulk ESS {result.diagnostics.min_ess_bulk:.0f})",
        f"95% intervals cover the truth for {sum(covered.values())} of {len(covered)} parameters.",
        f"Next run at N=70B, D=1.4T: loss {prediction.median[0]:.3f} "
        f"[{prediction.lower[0]:.3f}, {prediction.upper[0]:.3f}] (truth {truth_loss:.3f}).",
    ]
    return payload, "\n".join(lines)
