"""bench/run.py's timing rule: one process per method, at the fewest draws that reach the target."""

import importlib.util
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))  # run.py imports bench/common.py, as when run as a script
_SPEC = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
run = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run)


def _result(wall, met, draws):
    return {"process_wall": wall, "time_to_ess": wall if met else None, "draws_for_ess": draws}


def test_bayescale_is_timed_by_its_rerun_with_fewer_draws_even_when_the_full_run_was_faster():
    # the full run happened to be faster (7.4 s) than the re-run with the draws that suffice
    # (8.3 s): taking the faster of the two gave bayescale alone a best-of-two
    full, part = _result(7.4, True, 1000), _result(8.3, True, 362)
    run._at_fewest_draws(full, part, 362)
    assert (full["time_to_ess"], full["draws_for_ess"]) == (8.3, 362)
    assert full["fewer_draws"] is part and full["process_wall"] == 7.4


def test_a_rerun_that_misses_the_target_leaves_the_full_run_timed():
    full, part = _result(8.0, True, 1000), _result(7.0, False, 362)
    run._at_fewest_draws(full, part, 362)
    assert (full["time_to_ess"], full["draws_for_ess"]) == (8.0, 1000)


def test_draws_for_target_asks_for_15_percent_above_1000_ess():
    # 4 chains x 1000 draws with min ESS 3181: ceil(1.15 * 1000 / (3181 / 4000) / 4) = 362
    assert (
        run._draws_for_target(
            {"min_ess_bulk": 3181.0, "draws_total": 4000, "settings": {"chains": 4}}
        )
        == 362
    )


def test_a_missed_rerun_is_retried_with_the_peers_rule_and_the_retry_is_timed():
    # the peers' rule: 15% above what the ESS per draw asks for, ceil(374 * 1.15 * 1000 /
    # 700) = 615, and at least 1.2x (a near miss, 983, or an R-hat miss): ceil(374 * 1.2)
    assert run._more_draws({"min_ess_bulk": 700.0}, 374) == 615
    assert run._more_draws({"min_ess_bulk": 983.0}, 374) == 449
    assert run._more_draws({"min_ess_bulk": 1500.0}, 374) == 449
    full = _result(9.3, True, 1000)
    run._at_fewest_draws(full, _result(8.4, False, 374), 374)
    assert (full["time_to_ess"], full["draws_for_ess"]) == (9.3, 1000)
    run._at_fewest_draws(full, _result(8.6, True, 449), 449)
    assert (full["time_to_ess"], full["draws_for_ess"]) == (8.6, 449)
    assert [t["draws"] for t in full["fewer_draws_tried"]] == [374, 449]
    assert [t["time_to_ess"] for t in full["fewer_draws_tried"]] == [None, 8.6]
