"""P-ANGLE: a paper claim, checked as an experiment (see xsam_theory.claims.p_angle).

Theory: docs/theory.md#T-xsam-abstract and docs/theory.md#T-eig-gradient; protocol:
docs/claims.md#C-p-protocol. Claim page: docs/claims/P-ANGLE.md.

Any verdict is a result. What must hold: every per-run statistic is recomputed here from the
per-step numbers in the evidence (Δλ and |cos| per kept step, with window matrices in NumPy,
not the experiment's functions); each subclaim's sample is exactly those per-run numbers for its
group; its interval and p-value are recomputed with scipy.stats; Holm is re-applied and the
verdicts and the headline re-derived from the rule in the method text.
"""

import functools
import math

import numpy as np
import pytest
from oracles import holm_step_down
from scipy import stats as sps

from xsam_theory.claims import ExperimentContext, get_claim, run_claim

WINDOW = 10


@functools.cache
def _quick():
    return run_claim("P-ANGLE", ExperimentContext(scale="quick", progress=False))


def _windows(x):
    x = np.asarray(x, dtype=float)
    n = x.size // WINDOW
    return x[: n * WINDOW].reshape(n, WINDOW)


def _per_run(dlam, abs_cos):
    """(within-window split, window-FE slope), both over the within-window SD of dlam."""
    y, a = _windows(dlam), _windows(abs_cos)
    yd = y - y.mean(axis=1, keepdims=True)
    sd = math.sqrt(float(np.mean(yd**2)))
    order = np.argsort(a, axis=1, kind="stable")
    ranked = np.take_along_axis(y, order, axis=1)
    split = (
        float(
            np.mean(ranked[:, WINDOW // 2 :].mean(axis=1) - ranked[:, : WINDOW // 2].mean(axis=1))
        )
        / sd
    )
    x = np.log10(np.maximum(a, 1e-16))
    xd = x - x.mean(axis=1, keepdims=True)
    slope = float(np.sum(xd * yd) / np.sum(xd**2)) / sd
    return split, slope


def test_experiment_runs_and_reports_the_schema():
    r = _quick()
    assert r.verdict in ("holds", "fails", "inconclusive"), r.evidence
    ev = r.evidence
    assert "traceback" not in ev
    assert {"rule", "subclaims", "verdict", "attribution"} <= set(ev["headline"])
    assert ev["headline"]["rule"] in get_claim("P-ANGLE").method
    assert ev["headline"]["subclaims"] == ["within-window", "regression-slope"]
    for s in ev["subclaims"]:
        assert {"id", "statement", "estimate", "interval", "n", "verdict", "samples"} <= set(s)
    q = ev["abs_cos_quantiles"]["all"]
    assert 0 <= q["q10"] <= q["q25"] <= q["median"] <= q["q75"] <= q["q90"] <= 1
    assert ev["n_runs"] == len(ev["runs"]) >= 6
    assert ev["eigenvalue_accuracy"]["max_relative_residual"] <= 1e-9 * (1 + 1e-6)


def test_per_run_statistics_recomputed_from_the_per_step_numbers():
    for run in _quick().evidence["runs"]:
        split, slope = _per_run(run["dlam"], run["abs_cos"])
        assert run["within_window"] == pytest.approx(split, rel=1e-9, abs=1e-12), run["seed"]
        assert run["slope"] == pytest.approx(slope, rel=1e-9, abs=1e-12), run["seed"]
        q = np.quantile(np.asarray(run["abs_cos"]), 0.5)
        assert run["median_abs_cos"] == pytest.approx(q, rel=1e-12)


def test_subclaims_recomputed_with_scipy_and_holm_reapplied():
    ev = _quick().evidence
    runs = [r for r in ev["runs"] if not r["diverged"]]
    groups = {"": runs} | {
        f"lr={lr:g}/": [r for r in runs if r["lr"] == lr] for lr in sorted({r["lr"] for r in runs})
    }
    expected, p_values = {}, []
    for prefix, rows in groups.items():
        for name, key in (("within-window", "within_window"), ("regression-slope", "slope")):
            x = np.array([r[key] for r in rows if np.isfinite(r[key])])
            expected[prefix + name] = x
    subs = ev["subclaims"]
    assert [s["id"] for s in subs] == list(expected)
    for s in subs:
        x = expected[s["id"]]
        assert np.array_equal(np.asarray(s["samples"]), x), s["id"]
        assert s["n"] == x.size
        assert s["estimate"] == pytest.approx(x.mean(), rel=1e-12)
        if x.size >= 2:
            lo, hi = sps.t.interval(0.95, x.size - 1, loc=x.mean(), scale=sps.sem(x))
            assert s["interval"] == pytest.approx([lo, hi], rel=1e-9, abs=1e-15), s["id"]
            p = sps.ttest_1samp(x, 0.0).pvalue
            assert s["p_value"] == pytest.approx(p, rel=1e-9, abs=1e-15), s["id"]
        p_values.append(s["p_value"])
    adjusted = holm_step_down(p_values)
    n_div = sum(r["diverged"] for r in ev["runs"])
    for s, p_adj in zip(subs, adjusted):
        assert s["p_adjusted"] == pytest.approx(p_adj, rel=1e-12), s["id"]
        want = "inconclusive"
        if p_adj < 0.05:
            want = "holds" if s["estimate"] > 0 else "fails"
        if want == "holds" and n_div:
            want = "inconclusive"
        assert s["verdict"] == want, s["id"]


def test_headline_follows_the_stated_rule():
    r = _quick()
    by = {s["id"]: s["verdict"] for s in r.evidence["subclaims"]}
    named = [by["within-window"], by["regression-slope"]]
    want = (
        "fails"
        if "fails" in named
        else "holds"
        if all(v == "holds" for v in named)
        else "inconclusive"
    )
    assert r.verdict == want == r.evidence["headline"]["verdict"]
