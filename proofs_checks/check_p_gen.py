"""P-GEN: a paper claim, checked as an experiment (see xsam_theory.claims.p_gen).

Any verdict is a result; what must hold is that the experiment ran at the quick scale, that the
evidence holds every number the protocol promises (per method: mean, standard deviation and 95 %
interval of test loss and accuracy, λ_max and trace; per pair: the paired difference and its
interval), that the learning rates were chosen on validation data only, and that the verdict
follows from the X-SAM − SAM test-loss interval by the rule in the claim's module docstring.
"""

import functools
import math

import numpy as np
from scipy import stats

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.claims.p_gen import EVAL_RESULTS, METHODS, PAIRS, TUNE_RESULTS


@functools.cache
def _quick():
    return run_claim("P-GEN", ExperimentContext(scale="quick"))


def _finite(*xs):
    return all(isinstance(x, (int, float)) and math.isfinite(x) for x in xs)


def test_experiment_runs_and_reports_a_verdict_with_evidence():
    r = _quick()
    assert r.verdict in ("holds", "fails", "inconclusive"), r.evidence.get("traceback", r.key)
    assert "traceback" not in r.evidence
    assert list(r.evidence["datasets"]) == ["teacher_student"]       # quick: teacher-student
    assert len(r.evidence["protocol"]["seeds"]) == 3
    assert "X-SAM - SAM" in r.key


def test_evidence_holds_every_number():
    ev = _quick().evidence
    for d in ev["datasets"].values():
        n = len(d["seeds"])
        for m in METHODS:
            for q in ("test_loss", "test_accuracy", "lambda_max", "trace", "train_loss",
                      "val_loss"):
                s = d["per_method"][m][q]
                assert s["n"] == n and _finite(s["mean"], s["sd"], *s["ci95"]), (m, q, s)
                assert s["ci95"][0] <= s["mean"] <= s["ci95"][1]
            for q in d["per_seed"][m]:
                assert len(d["per_seed"][m][q]) == n
        for a, b in PAIRS:
            for q in ("test_loss", "test_accuracy", "lambda_max", "trace"):
                p = d["paired"][f"{a} - {b}"][q]
                assert p["n"] == n and _finite(p["mean"], p["sd"], *p["ci95"],
                                               *p["ci95_bootstrap"]), (a, b, q, p)


def test_intervals_are_the_t_intervals_of_the_per_seed_values():
    d = next(iter(_quick().evidence["datasets"].values()))
    a = np.array(d["per_seed"]["xsam_paper"]["test_loss"])
    b = np.array(d["per_seed"]["sam"]["test_loss"])
    diff = a - b
    h = stats.t.ppf(0.975, diff.size - 1) * diff.std(ddof=1) / math.sqrt(diff.size)
    p = d["paired"]["xsam_paper - sam"]["test_loss"]
    assert math.isclose(p["mean"], diff.mean(), rel_tol=1e-12)
    assert np.allclose(p["ci95"], [diff.mean() - h, diff.mean() + h], rtol=1e-12)
    s = d["per_method"]["sam"]["test_loss"]
    assert math.isclose(s["mean"], b.mean(), rel_tol=1e-12)
    assert math.isclose(s["sd"], b.std(ddof=1), rel_tol=1e-12)


def test_learning_rates_chosen_on_validation_from_one_grid():
    r = _quick()
    grid = r.evidence["protocol"]["lr_grid"]
    assert not any("@test" in e for e in TUNE_RESULTS.values())     # selection never sees test
    assert any("@test" in e for e in EVAL_RESULTS.values())
    for d in r.evidence["datasets"].values():
        t = d["tuning"]
        assert set(t["selected_lr"]) == set(METHODS)
        for m, lr in t["selected_lr"].items():
            assert lr in grid
            losses = t["mean_val_loss_by_lr"][m]
            assert set(losses) == {f"{g:g}" for g in grid}          # the same budget for all
            finite = {k: v for k, v in losses.items() if isinstance(v, float)}
            assert min(finite, key=finite.get) == f"{lr:g}"
            assert t["selected_at_grid_edge"][m] == (lr in (min(grid), max(grid)))
        assert not set(t["tuning_seeds"]) & set(d["seeds"])         # fresh draws for the test


def test_verdict_follows_from_the_paired_test_loss_interval():
    r = _quick()
    per_dataset = []
    for d in r.evidence["datasets"].values():
        lo, hi = d["paired"]["xsam_paper - sam"]["test_loss"]["ci95"]
        v = "holds" if hi < 0 else "fails" if lo > 0 else "inconclusive"
        assert d["verdict"] == v
        per_dataset.append(v)
    overall = ("fails" if "fails" in per_dataset else
               "holds" if set(per_dataset) == {"holds"} else "inconclusive")
    assert r.verdict == overall
