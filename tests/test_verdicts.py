"""The verdict rules of the P claims (:mod:`xsam_theory.claims.verdicts`).

Subclaims, Holm's family adjustment (against a brute-force closed test and a published example),
simultaneous intervals, the divergence rule and the headline rule.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sps

from xsam_theory import stats
from xsam_theory.claims.verdicts import (
    FAMILY_ALPHA,
    Subclaim,
    Verdict,
    headline,
    holm,
    judge_family,
    subclaim,
    verdict_from_interval,
)


# -- Holm ---------------------------------------------------------------------------------------
def closed_test_bonferroni(p: list[float]) -> list[float]:
    """Holm's adjusted p-values by their definition, by brute-force closed testing.

    Marcus, Peritz & Gabriel's closed testing with Bonferroni tests of the intersections: hypothesis
    i is rejected at level a iff every intersection containing i is, so its adjusted p-value is the
    largest Bonferroni p-value min(1, |S| min_{j in S} p_j) over the index sets S that contain i.
    """
    m = len(p)
    out = []
    for i in range(m):
        worst = 0.0
        for size in range(1, m + 1):
            for S in itertools.combinations(range(m), size):
                if i in S:
                    worst = max(worst, min(1.0, size * min(p[j] for j in S)))
        out.append(worst)
    return out


@pytest.mark.parametrize("seed", range(40))
def test_holm_is_the_closed_bonferroni_test(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(1, 8))
    p = rng.uniform(0, 0.2, m) ** rng.uniform(0.5, 2)
    if seed % 4 == 0 and m > 1:
        p[1] = p[0]  # ties
    assert holm(p.tolist()) == pytest.approx(closed_test_bonferroni(p.tolist()), abs=1e-15)


def test_holm_worked_example():
    # by hand: sorted .005, .01, .03, .04 -> 4(.005) = .02, 3(.01) = .03, 2(.03) = .06,
    # max(1(.04), .06) = .06, returned in the input order
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_nan_and_edges():
    out = holm([0.01, math.nan, 0.04])
    assert math.isnan(out[1])
    assert out[0] == pytest.approx(0.02) and out[2] == pytest.approx(0.04)  # m = 2, not 3
    assert all(math.isnan(v) for v in holm([math.nan, math.nan]))
    assert holm([]) == []
    assert holm([0.3]) == [0.3]
    assert holm([0.9, 0.8]) == [1.0, 1.0]
    for bad in ([-0.1], [1.5]):
        with pytest.raises(ValueError, match="p-values"):
            holm(bad)


# -- subclaims --------------------------------------------------------------------------------
def test_subclaim_t_record_matches_scipy():
    x = [-0.3, -0.1, -0.25, -0.4, 0.05]
    s = subclaim("a/b", "a beats b", x, better_if="negative", note="kept")
    lo, hi = sps.t.interval(0.95, 4, loc=np.mean(x), scale=sps.sem(x))
    assert s.interval == pytest.approx((lo, hi))
    assert s.p_value == pytest.approx(sps.ttest_1samp(x, 0).pvalue)
    assert s.estimate == pytest.approx(np.mean(x)) and s.n == 5
    assert s.verdict is Verdict.INCONCLUSIVE  # until judged
    rec = s.to_json()
    assert {"id", "statement", "estimate", "interval", "n", "verdict", "samples"} <= set(rec)
    assert rec["samples"] == x and rec["note"] == "kept" and rec["verdict"] == "inconclusive"
    assert "bootstrap_seed" not in rec


def test_subclaim_bootstrap_record():
    x = np.random.default_rng(0).normal(1.0, 1.0, 25)
    s = subclaim("b", "b", x, better_if="positive", test="bootstrap", seed=4)
    iv = stats.bootstrap_interval(x, seed=4)
    assert s.interval == (iv.low, iv.high)
    assert s.p_value == stats.bootstrap_p_value(x, seed=4)
    assert s.to_json()["bootstrap_seed"] == 4


def test_subclaim_with_fewer_than_two_values_is_open():
    for x in ([], [1.0]):
        s = subclaim("c", "c", x, better_if="positive")
        assert math.isnan(s.interval[0]) and math.isnan(s.p_value) and s.n == len(x)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(samples=[1.0, 2.0], better_if="up"), "better_if"),
        (dict(samples=[1.0, np.nan], better_if="positive"), "finite"),
        (dict(samples=[[1.0, 2.0]], better_if="positive"), "1-D"),
        (dict(samples=[1.0, 2.0], better_if="positive", test="rule"), "test"),
        (dict(samples=[1.0, 2.0], better_if="positive", test="wilcoxon"), "test"),
    ],
)
def test_bad_subclaims(kwargs, match):
    with pytest.raises(ValueError, match=match) as err:
        subclaim("bad/id", "s", **kwargs)
    assert "bad/id" in str(err.value)


def test_verdict_from_interval():
    assert verdict_from_interval(-2, -1) is Verdict.HOLDS
    assert verdict_from_interval(1, 2) is Verdict.FAILS
    assert verdict_from_interval(1, 2, better_if="positive") is Verdict.HOLDS
    assert verdict_from_interval(-2, -1, better_if="positive") is Verdict.FAILS
    assert verdict_from_interval(-1, 1) is Verdict.INCONCLUSIVE
    assert verdict_from_interval(math.nan, 1) is Verdict.INCONCLUSIVE
    with pytest.raises(ValueError, match="better_if"):
        verdict_from_interval(1, 2, better_if="up")


# -- judge_family -----------------------------------------------------------------------------
def _sample_with_p(p: float, n: int = 8, sign: float = 1.0) -> np.ndarray:
    """A sample whose one-sample t-test p-value is ``p`` (shape fixed, scaled mean)."""
    base = np.linspace(-1, 1, n)
    base = base / base.std(ddof=1)
    t = sps.t.isf(p / 2, n - 1)
    return sign * t / math.sqrt(n) + base


def test_family_verdicts_follow_holm():
    fam = [
        subclaim("strong", "s", _sample_with_p(0.001), better_if="positive"),
        subclaim("weak", "w", _sample_with_p(0.03), better_if="positive"),
        subclaim("wrong-way", "x", _sample_with_p(0.002, sign=-1), better_if="positive"),
        subclaim("null", "n", _sample_with_p(0.6), better_if="positive"),
    ]
    assert [s.p_value for s in fam] == pytest.approx([0.001, 0.03, 0.002, 0.6])
    judged = judge_family(fam)
    p_adj = holm([s.p_value for s in fam])
    assert [s.p_adjusted for s in judged] == pytest.approx(p_adj)
    assert [s.verdict for s in judged] == [
        Verdict.HOLDS,
        Verdict.INCONCLUSIVE,
        Verdict.FAILS,
        Verdict.INCONCLUSIVE,
    ]
    # alone, the weak one holds: the family adjustment is what keeps it open (0.03 * 2 > 0.05)
    assert judge_family([fam[1]])[0].verdict is Verdict.HOLDS
    assert judged[1].p_adjusted == pytest.approx(0.06)


def test_simultaneous_intervals_are_bonferroni():
    fam = [
        subclaim(f"s{k}", "s", _sample_with_p(p), better_if="positive")
        for k, p in enumerate([0.01, 0.2, 0.04])
    ]
    judged = judge_family(fam)
    for s in judged:
        iv = stats.t_interval(np.asarray(s.samples), 1 - FAMILY_ALPHA / 3)
        assert s.interval_simultaneous == pytest.approx((iv.low, iv.high))
        assert (
            s.interval_simultaneous[0]
            <= s.interval[0]
            <= s.interval[1]
            <= s.interval_simultaneous[1]
        )
    boot = judge_family(
        [
            subclaim(
                "b", "b", _sample_with_p(0.01, n=25), better_if="positive", test="bootstrap", seed=3
            )
        ]
    )[0]
    iv = stats.bootstrap_interval(np.asarray(boot.samples), 1 - FAMILY_ALPHA, seed=3)
    assert boot.interval_simultaneous == (iv.low, iv.high)


def test_divergence_rule():
    good = _sample_with_p(1e-4)
    held = judge_family([subclaim("d", "d", good, better_if="positive")])[0]
    assert held.verdict is Verdict.HOLDS
    diverged = judge_family([subclaim("d", "d", good, better_if="positive", n_diverged=1)])[0]
    assert diverged.verdict is Verdict.INCONCLUSIVE and diverged.n_diverged == 1
    # divergence never turns a failure into anything else
    bad = judge_family([subclaim("d", "d", good, better_if="negative", n_diverged=2)])[0]
    assert bad.verdict is Verdict.FAILS


def test_nan_p_values_stay_open_and_do_not_count():
    fam = [
        subclaim("few", "f", [1.0], better_if="positive"),
        subclaim("ok", "o", _sample_with_p(0.03), better_if="positive"),
    ]
    judged = judge_family(fam)
    assert judged[0].verdict is Verdict.INCONCLUSIVE and math.isnan(judged[0].p_adjusted)
    assert math.isnan(judged[0].interval_simultaneous[0])
    assert judged[1].p_adjusted == pytest.approx(0.03)  # family of one
    assert judged[1].verdict is Verdict.HOLDS


def test_zero_samples_never_hold():
    judged = judge_family(
        [
            subclaim("z", "z", np.zeros(5), better_if="positive"),
            subclaim("zb", "z", np.zeros(5), better_if="negative", test="bootstrap"),
        ]
    )
    assert [s.verdict for s in judged] == [Verdict.INCONCLUSIVE] * 2
    assert [s.p_value for s in judged] == [1.0, 1.0]


def test_rule_subclaims_keep_their_verdict_and_stay_out_of_the_family():
    rule = Subclaim(
        "rule", "r", 0.0, (math.nan, math.nan), 3, "positive", test="rule", verdict=Verdict.FAILS
    )
    fam = [rule, subclaim("t", "t", _sample_with_p(0.03), better_if="positive")]
    judged = judge_family(fam)
    assert judged[0] == rule
    assert judged[1].p_adjusted == pytest.approx(0.03) and judged[1].verdict is Verdict.HOLDS
    assert headline(judged, ["rule", "t"]) is Verdict.FAILS


def test_headline_rule():
    def sc(id, verdict):
        return Subclaim(id, id, 1.0, (0.5, 1.5), 3, "positive", test="rule", verdict=verdict)

    subs = [
        sc("h1", Verdict.HOLDS),
        sc("h2", Verdict.HOLDS),
        sc("i", Verdict.INCONCLUSIVE),
        sc("f", Verdict.FAILS),
    ]
    assert headline(subs, ["h1", "h2"]) is Verdict.HOLDS
    assert headline(subs, ["h1", "i"]) is Verdict.INCONCLUSIVE
    assert headline(subs, ["h1", "i", "f"]) is Verdict.FAILS
    assert headline(subs, []) is Verdict.INCONCLUSIVE
    with pytest.raises(ValueError, match="unknown subclaim"):
        headline(subs, ["h1", "nope"])


def test_bad_family_alpha():
    fam = [subclaim("t", "t", [1.0, 2.0, 3.0], better_if="positive")]
    for alpha in (0.0, 1.0, -0.05, math.nan):
        with pytest.raises(ValueError, match="alpha"):
            judge_family(fam, alpha)


def test_bad_subclaim_records():
    with pytest.raises(ValueError, match="better_if"):
        Subclaim("x", "x", 0.0, (0.0, 0.0), 2, "sideways")
    with pytest.raises(ValueError, match="test"):
        Subclaim("x", "x", 0.0, (0.0, 0.0), 2, "positive", test="z")
