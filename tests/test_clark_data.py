"""clark2022 on the shared Clark et al. 2022 runs: fit E <= 64, predict E = 128..512 per router.

The fit set is every run with at most 64 experts (the Dense runs, E = 1, included): 132 runs
of 4 groups (Dense, S-Base, Hash, RL-R) fitted with ``pooling="shared"`` (the dense law is
common, each router has its own gains and transform). The 61 runs with 128, 256 or 512
experts are held out. Per-E power laws in N (``kaplan_n``, one per expert count) cannot
predict an unseen E at all; the baseline here is what such a table does in practice: the
curve of the nearest seen expert count (E = 64, fitted per router on its E = 64 runs) used
for every larger E.

Measured (4 x 500 + 500 draws, seed 0, CPU; clark2022 fit 58 s, the test 74-164 s on the
shared 2-core machine, diagnostics ok; run with
``.venv/bin/python -m pytest -q tests/test_clark_data.py``):

=========  ====  =======================  ==========================
router     runs  clark2022 error / cov.   E = 64 curve error / cov.
=========  ====  =======================  ==========================
Hash         20  0.87% / 0.90             3.9% / 0.65
RL-R         15  1.09% / 1.00             4.1% / 0.47
S-Base       26  1.08% / 0.92             4.0% / 0.73
=========  ====  =======================  ==========================

(median relative error of the posterior-predictive median; coverage of the 95% predictive
interval, whose median width is 8% of the loss for clark2022). The E = 64 curve is biased
(+3.7 to +4.1%: more experts do help), clark2022 is not (-0.1 to +0.7%). The file's runs of
one (N, E) differ by up to 7% (their total parameter counts differ), which the law cannot
see: the Student-t noise has nu 1.7 [1.2, 2.7], sigma 0.6%.
"""

import numpy as np
import pandas as pd
import pytest
from conftest import sampled

import bayescale as bs

SAMPLER = {"chains": 4, "draws": 500, "warmup": 500, "seed": 0, "progress": False}
COLUMNS = {"params": "dense_parameter_count", "loss": "loss_validation"}


@pytest.fixture(scope="module")
def split(shared_data):
    df = pd.read_csv(shared_data / "clark2022_moe_routing.csv")
    return df[df.num_experts <= 64], df[df.num_experts > 64]


@pytest.fixture(scope="module")
def fits(split):
    train, _ = split
    law = bs.fit(
        train,
        **sampled(
            law="clark2022",
            inputs={"E": "num_experts"},
            group="router_type",
            pooling="shared",
            **COLUMNS,
            **SAMPLER,
        ),
    )
    nearest = train[train.num_experts == 64]
    # kaplan_n's reported N_c = N_ref e^(log_term/alpha_N) overflows to inf in draws with
    # alpha_N near 0 (RL-R has 4 runs at E = 64), and its sd is nan; predictions do not use N_c
    with np.errstate(over="ignore", invalid="ignore"):
        baseline = bs.fit(
            nearest,
            **sampled(law="kaplan_n", group="router_type", pooling="none", **COLUMNS, **SAMPLER),
        )
    return law, baseline


def scores(prediction, observed: np.ndarray) -> dict:
    ratio = prediction.median / observed
    return {
        "error": float(np.median(np.abs(ratio - 1))),
        "coverage": float(np.mean((prediction.lower <= observed) & (observed <= prediction.upper))),
        # the predictive sd of one run, from the 95% interval (relative)
        "sd": float(np.median((prediction.upper - prediction.lower) / prediction.median)) / 3.92,
    }


@pytest.mark.slow
def test_clark2022_predicts_unseen_expert_counts_per_router(fits, split):
    law, baseline = fits
    _, held = split
    assert law.diagnostics.ok and baseline.diagnostics.ok
    assert set(held.router_type) == {"S-Base", "Hash", "RL-R"}
    for router, rows in held.groupby("router_type"):
        observed = rows.loss_validation.to_numpy()
        n = rows.dense_parameter_count.to_numpy()
        ours = scores(
            law.predict(params=n, at={"E": rows.num_experts.to_numpy()}, group=router), observed
        )
        with np.errstate(over="ignore", invalid="ignore"):
            nearest = scores(baseline.predict(params=n, group=router), observed)
        # nominal 95%, less three binomial sds of a coverage over len(rows) runs
        floor = 0.95 - 3 * np.sqrt(0.95 * 0.05 / len(rows))
        assert ours["coverage"] >= floor, (router, ours, floor)  # measured 0.90-1.00
        # within the law's own predictive sd (measured errors 0.9-1.1%, sd ~2%)
        assert ours["error"] < ours["sd"], (router, ours)
        # and well below the nearest seen E's curve (measured 3.9-4.1%)
        assert ours["error"] < 0.5 * nearest["error"], (router, ours, nearest)
