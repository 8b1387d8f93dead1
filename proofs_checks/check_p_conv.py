"""P-CONV: a paper claim, checked as an experiment (see xsam_theory.claims.p_conv).

Theory: docs/theory.md#T-normalized-rate and docs/theory.md#T-xsam-convergence; protocol:
docs/claims.md#C-p-protocol. Claim page: docs/claims/P-CONV.md.

Any verdict is a result. What must hold: the expected slopes follow from the sympy derivation
of the bounds' sums; every cell's interval, divergence count and verdict are recomputed here from
the raw per-seed numbers in the evidence (scipy.stats.t, not the package's stats helpers); the
Holm adjustment and the headline are re-derived; and a cell with a diverged seed cannot hold.
"""

import functools
import math

import numpy as np
import pytest
from oracles import holm_step_down
from scipy import stats as sps

from xsam_theory.claims import ExperimentContext, run_claim
from xsam_theory.claims.p_conv import cell_subclaim
from xsam_theory.experiments.convergence import Cell, expected_slope, run_cell
from xsam_theory.symbolic.rates import (
    asymptotic_slopes,
    exact_sums,
    finite_t_allowance,
    partial_sums,
)


@functools.cache
def _quick():
    return run_claim("P-CONV", ExperimentContext(scale="quick"))


def _t_interval(x):
    x = np.asarray(x, dtype=float)
    h = sps.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return x.mean() - h, x.mean() + h


def test_experiment_runs_and_reports_the_schema():
    r = _quick()
    assert r.verdict in ("holds", "fails", "inconclusive"), r.evidence
    ev = r.evidence
    assert "traceback" not in ev
    keys = {
        "problem",
        "form",
        "alpha",
        "batch",
        "n_seeds",
        "n_diverged",
        "slope",
        "interval",
        "expected_slope",
        "verdict",
    }
    assert ev["cells"] and all(keys <= set(c) for c in ev["cells"])
    assert {"rule", "subclaims", "verdict", "attribution"} <= set(ev["headline"])
    for s in ev["subclaims"]:
        assert {"id", "statement", "estimate", "interval", "n", "verdict"} <= set(s)
    # the headline is the authors' rule with alpha in (0, 1), full batch and minibatch
    by = {c["id"]: c for c in ev["cells"]}
    head = [by[i] for i in ev["headline"]["subclaims"]]
    assert all(c["form"] == "paper" and 0 < c["alpha"] < 1 for c in head)
    assert {c["batch"] for c in head} == {"full", "minibatch"}
    # every alpha >= 1 cell says which F claim it is tied to
    for c in ev["cells"]:
        assert (c["tied_to"] is not None) == (c["alpha"] >= 1), c["id"]
    assert max(ev["fast_path_deviation"].values()) < 1e-9


def test_cells_recomputed_from_raw_per_seed_numbers():
    ev = _quick().evidence
    for c in ev["cells"]:
        init = np.array(c["initial_grad_norm"], dtype=float)
        final = np.array([math.inf if x is None else x for x in c["final_grad_norm"]])
        diverged = ~np.isfinite(final) | (final > init)
        assert int(diverged.sum()) == c["n_diverged"], c["id"]
        # slopes from best(T) on the grid (np.polyfit, not the package's loglog_slope)
        grid = np.array(c["T_grid"], dtype=float)
        for b, s in zip(c["best_grad_norm"], c["seed_slopes"]):
            if s is None:
                continue
            assert np.polyfit(np.log(grid), np.log(np.array(b)), 1)[0] == pytest.approx(s, abs=1e-9)
        finite = [s for s in c["seed_slopes"] if s is not None]
        if len(finite) >= 2:
            lo, hi = _t_interval(finite)
            assert c["interval"] == pytest.approx([lo, hi], rel=1e-9, abs=1e-12), c["id"]
        exp = -0.5 if (c["form"] != "projector" or c["problem"] == "quadratic") else -0.25
        assert c["expected_slope"] == exp
        p = 1.0 if exp == -0.5 else 0.5
        assert c["threshold"] == pytest.approx(exp + finite_t_allowance(np.array(c["T_grid"]), p))


def test_verdicts_and_headline_rederived():
    ev = _quick().evidence
    subs = {s["id"]: s for s in ev["subclaims"]}
    family = [s for s in ev["subclaims"] if s["test"] != "rule"]
    # two-sided one-sample t p-values by scipy, Holm step-down written out (oracles.py)
    pv = {
        s["id"]: (sps.ttest_1samp(s["samples"], 0.0).pvalue if len(s["samples"]) >= 2 else math.nan)
        for s in family
    }
    adj = {i: a for i, a in zip(pv, holm_step_down(list(pv.values()))) if math.isfinite(a)}
    for c in ev["cells"]:
        s = subs[c["id"]]
        shifted = [x - c["threshold"] for x in c["seed_slopes"] if x is not None]
        assert s["samples"] == pytest.approx(shifted)
        if c["n_diverged"]:
            want = "fails"
        elif c["id"] in adj and adj[c["id"]] < 0.05:
            want = "holds" if np.mean(shifted) < 0 else "fails"
        else:
            want = "inconclusive"
        assert c["verdict"] == s["verdict"] == want, c["id"]
    heads = [subs[i]["verdict"] for i in ev["headline"]["subclaims"]]
    want = (
        "fails"
        if "fails" in heads
        else "holds"
        if all(v == "holds" for v in heads)
        else "inconclusive"
    )
    assert ev["headline"]["verdict"] == want == _quick().verdict


def test_a_diverging_cell_is_detected_and_cannot_hold():
    # the projector form with alpha = 1.5 diverges exponentially (F-ESCAPE); with a large eta0
    # at once. The cell must count every seed as diverged and fail by rule.
    cell = Cell("quadratic", "projector", 1.5)
    r = run_cell(cell, (0, 1, 2), 128)
    assert r.diverged.all()
    s = cell_subclaim(r, "subclaim")
    assert s.n_diverged == 3 and s.verdict.value == "fails" and s.test == "rule"


def test_one_diverged_seed_overrides_good_slopes():
    # take a converging cell and make one seed's final gradient exceed its start: the cell
    # must fail even though every slope is steep
    r = run_cell(Cell("quadratic", "paper", 0.5), (0, 1, 2, 3), 128)
    assert not r.diverged.any()
    import dataclasses

    bad = dataclasses.replace(r, diverged=np.array([False, True, False, False]))
    assert cell_subclaim(bad, "headline").verdict.value == "fails"
    assert cell_subclaim(r, "headline").verdict.value == "inconclusive"  # before judging


def test_the_expected_slopes_follow_from_the_sums():
    sums = partial_sums()
    assert sums.all_proved, sums.proved
    slopes = asymptotic_slopes()
    assert slopes.all_proved, slopes.proved
    # the exact sums lie between sympy's integral bounds
    S, H = exact_sums(4096)
    T = np.arange(1, 4097, dtype=float)
    s_lo, s_hi, h_lo, h_hi = (
        np.asarray(f(T), dtype=float) if np.ndim(f(T)) else f(T)
        for f in (
            lambda x: 2 * np.sqrt(x + 1) - 2,
            lambda x: 2 * np.sqrt(x) - 1,
            lambda x: np.log(x + 1),
            lambda x: 1 + np.log(x),
        )
    )
    lows = sums.func(T)
    assert np.allclose(lows[0], s_lo) and np.allclose(lows[2], h_lo)
    assert np.all((s_lo <= S + 1e-12) & (S <= s_hi + 1e-12))
    assert np.all((h_lo <= H + 1e-12) & (H <= h_hi + 1e-12))
    # the allowance shrinks towards 0 as the grid grows (the log factor washes out)
    grids = [2 ** np.arange(4, k + 1) for k in (8, 12, 16, 20)]
    allow = [finite_t_allowance(g) for g in grids]
    assert all(a > b > 0 for a, b in zip(allow, allow[1:]))
    assert expected_slope(Cell("mlp", "projector", 0.5)) == -0.25


def test_quadratic_runs_respect_the_derived_bound():
    # min_t<T ||g_t|| <= kappa (L0 + (lmax/2)(1+alpha)^2 eta0^2 H_T) / ((1-alpha) eta0 S_T) on
    # the convex quadratic with exact v, alpha < 1 (the derivation in experiments.convergence)
    from xsam_theory.experiments.convergence import QUADRATIC_EIGENVALUES, quadratic_runs

    lmax, kappa, eta0 = (
        max(QUADRATIC_EIGENVALUES),
        max(QUADRATIC_EIGENVALUES) / min(QUADRATIC_EIGENVALUES),
        0.1,
    )
    S, H = exact_sums(512)
    for form in ("paper", "symmetric"):
        for alpha in (0.0, 0.5, 0.9):
            r = quadratic_runs(form, alpha, eta0, tuple(range(8)), 512)
            best = np.minimum.accumulate(r["grad_norm"][:, :-1], axis=1)
            L0 = r["loss"][:, :1]
            bound = (
                kappa
                * (L0 + 0.5 * lmax * (1 + alpha) ** 2 * eta0**2 * H)
                / ((1 - alpha) * eta0 * S)
            )
            assert np.all(best <= bound), (form, alpha)
