"""P-GEN: a paper claim, checked as an experiment.

See xsam_theory.claims.p_gen and xsam_theory.experiments.generalization.

Theory: docs/theory.md#T-xsam-setup (what the paper reports); protocol:
docs/claims.md#C-p-protocol. Claim page: docs/claims/P-GEN.md.

Any verdict is a result. What must hold, checked independently of the package's statistics
code: every subclaim's estimate, 95 % t interval and p-value recomputed from the raw per-seed
numbers in the evidence with ``scipy.stats``; Holm's adjustment re-applied by a separate
implementation; every verdict and the headline re-derived from the stated rule; tuning and
evaluation seeds disjoint; each selected rate the argmin of the recorded mean validation losses
and not at an edge of its grid; divergences counted.
"""

import functools
import math

import numpy as np
import pytest
from oracles import holm_step_down
from scipy import stats

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.experiments.generalization import COMPARISONS, LADDER, METHODS, START_RATES


@functools.cache
def _quick():
    return run_claim("P-GEN", ExperimentContext(scale="quick", progress=False))


def _evidence():
    r = _quick()
    assert "traceback" not in r.evidence, r.evidence.get("traceback")
    return r.evidence


def _per_seed(values, metric):
    return np.asarray(values[metric], dtype=float)


def test_experiment_runs_with_the_schema():
    r = _quick()
    ev = _evidence()
    assert r.verdict in ("holds", "fails", "inconclusive")
    assert list(ev["datasets"]) == ["teacher_student"]  # quick: teacher-student only
    assert len(ev["eval_seeds"]) == 3 and len(ev["tuning_seeds"]) >= 1
    ids = [s["id"] for s in ev["subclaims"]]
    assert ids == [f"teacher_student/{cid}" for cid, _, _ in COMPARISONS]
    for s in ev["subclaims"]:
        assert {"id", "statement", "estimate", "interval", "n", "verdict"} <= set(s)
        assert s["tuning_sensitive"] is None  # no neighbours at quick
    h = ev["headline"]
    assert h["subclaims"] == ["teacher_student/xsam-vs-sam"] and h["verdict"] == r.verdict
    assert h["rule"] in r.method and h["attribution"]


def test_tuning_and_evaluation_seeds_are_disjoint():
    ev = _evidence()
    assert not set(ev["tuning_seeds"]) & set(ev["eval_seeds"])


def test_selected_rates_are_the_argmin_and_not_at_an_edge():
    ev = _evidence()
    for d in ev["datasets"].values():
        t = d["tuning"]
        for m in METHODS:
            grid = t["grid"][m]
            assert set(START_RATES) <= set(grid) <= set(LADDER)
            assert sorted(t["extended"][m]) == sorted(set(grid) - set(START_RATES))
            means = {}
            for lr in grid:
                vals = [
                    math.inf if v == "diverged" else v for v in t["val_loss_per_seed"][m][f"{lr:g}"]
                ]
                assert len(vals) == len(ev["tuning_seeds"])
                means[lr] = float(np.mean(vals))
            best = min(
                (lr for lr in grid if math.isfinite(means[lr])), key=lambda lr: (means[lr], lr)
            )
            assert t["selected_lr"][m] == best, m
            assert min(grid) < best < max(grid), (m, best, grid)  # bracketed by tried rates


def test_subclaims_recomputed_from_the_raw_per_seed_numbers():
    ev = _evidence()
    by_id = {s["id"]: s for s in ev["subclaims"]}
    for name, d in ev["datasets"].items():
        for cid, a, b in COMPARISONS:
            comp = d["comparisons"][cid]
            assert (comp["a"], comp["b"]) == (a, b)
            assert comp["lr_a"] == d["tuning"]["selected_lr"][a]
            assert comp["lr_b"] == d["tuning"]["selected_lr"][b]
            xa = _per_seed(comp["values"]["a"], "test_loss")
            xb = _per_seed(comp["values"]["b"], "test_loss")
            # the values are those of the methods at their selected rates
            assert np.array_equal(
                xa, np.asarray(d["per_seed"][a]["test_loss"], float), equal_nan=True
            )
            ok = np.isfinite(xa) & np.isfinite(xb)
            diff = xa[ok] - xb[ok]
            s = by_id[f"{name}/{cid}"]
            assert s["n"] == diff.size and np.allclose(s["samples"], diff, rtol=0, atol=0)
            assert s["n_diverged"] == sum(bool(x) for x in comp["values"]["a"]["diverged"])
            mean = diff.mean()
            h = stats.t.ppf(0.975, diff.size - 1) * diff.std(ddof=1) / math.sqrt(diff.size)
            assert s["estimate"] == pytest.approx(mean, rel=1e-12, abs=1e-15)
            assert s["interval"] == pytest.approx([mean - h, mean + h], rel=1e-10, abs=1e-15)
            if np.all(diff == 0):
                continue
            p = stats.ttest_1samp(diff, 0.0).pvalue
            assert s["p_value"] == pytest.approx(p, rel=1e-8)
            acc = (
                _per_seed(comp["values"]["a"], "test_accuracy")
                - _per_seed(comp["values"]["b"], "test_accuracy")
            )[ok]
            assert s["accuracy"]["estimate"] == pytest.approx(acc.mean(), abs=1e-15)


def test_holm_verdicts_and_headline_rederived():
    r = _quick()
    subs = r.evidence["subclaims"]
    p = [s["p_value"] for s in subs]
    finite = [i for i, x in enumerate(p) if isinstance(x, float) and math.isfinite(x)]
    adjusted = dict(zip(finite, holm_step_down([p[i] for i in finite])))
    for i, s in enumerate(subs):
        if i in adjusted:
            assert s["p_adjusted"] == pytest.approx(adjusted[i], rel=1e-12)
        q = adjusted.get(i, math.nan)
        verdict = "inconclusive"
        if math.isfinite(q) and q < 0.05:
            verdict = "holds" if s["estimate"] < 0 else "fails"
        if verdict == "holds" and s["n_diverged"] > 0:
            verdict = "inconclusive"
        assert s["verdict"] == verdict, s["id"]
    head = [s["verdict"] for s in subs if s["id"].endswith("/xsam-vs-sam")]
    expected = (
        "fails"
        if "fails" in head
        else "holds"
        if head and set(head) == {"holds"}
        else "inconclusive"
    )
    assert r.verdict == expected == r.evidence["headline"]["verdict"]


def test_divergences_are_counted_per_method():
    ev = _evidence()
    for d in ev["datasets"].values():
        for m in METHODS:
            div = d["per_seed"][m]["diverged"]
            assert d["n_diverged"][m] == sum(bool(x) for x in div)
            loss = np.asarray(d["per_seed"][m]["test_loss"], float)
            assert np.all(np.isnan(loss[np.asarray(div, bool)]))  # no metric from a divergence
