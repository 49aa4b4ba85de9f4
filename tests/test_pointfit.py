"""The point-fit baseline: Huber on log loss by L-BFGS-B with bootstrap intervals."""

import numpy as np

import bayescale as bs
from bayescale.laws import get_law
from bayescale.laws.simulate import HOFFMANN_2022
from bayescale.trust._pointfit import point_fit


def test_point_fit_recovers_the_law_and_its_bootstrap_covers_the_truth():
    frame = bs.simulate_ladder("chinchilla", noise=0.005, seed=3)
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss")
    law = get_law("chinchilla")
    base = point_fit(runs, law, bootstrap=60, seed=0)
    group = base.groups[0]
    reported = lambda x: law.to_reported(  # noqa: E731
        {n: x[..., i] for i, n in enumerate(group.names)}, group.log_ref
    )
    estimate, boot = reported(group.estimate), reported(group.boot)
    for name in ("E", "alpha", "beta"):
        spread = np.std(boot[name])
        assert abs(estimate[name] - HOFFMANN_2022[name]) < 4 * spread + 1e-3, name
    # the law's prediction 10x beyond the ladder: the bootstrap interval holds the truth
    target = {"params": np.array([7e9]), "tokens": np.array([1.4e11])}
    predicted = base.predict(target, np.zeros(1, int), prob=0.95)
    truth = law.loss(HOFFMANN_2022, **target)
    assert predicted["lower"][0] <= truth[0] <= predicted["upper"][0]
    assert abs(predicted["median"][0] / truth[0] - 1) < 0.01


def test_groups_with_too_few_runs_get_no_point_fit():
    frame = bs.simulate_ladder("chinchilla", seed=0)
    frame["arm"] = ["a"] * (len(frame) - 3) + ["b"] * 3
    runs = bs.read_runs(frame, params="params", tokens="tokens", loss="loss", group="arm")
    base = point_fit(runs, get_law("chinchilla"), bootstrap=0)
    assert base.groups[0] is not None and base.groups[1] is None
    out = base.predict({"params": np.array([1e9]), "tokens": np.array([2e10])}, np.array([1]), 0.95)
    assert np.isnan(out["median"][0])
