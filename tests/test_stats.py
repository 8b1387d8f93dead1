"""The interval and test helpers of :mod:`xsam_theory.stats`.

Checked against ``scipy.stats``, with their bad inputs and edge cases, and the coverage of the t
and percentile-bootstrap intervals by simulation (the numbers ``docs/statistics.md`` quotes).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from xsam_theory import stats

RNG = np.random.default_rng(20260)
SAMPLES = [
    RNG.standard_normal(n) * s + m
    for n, s, m in [(2, 1.0, 0.0), (3, 0.5, 2.0), (10, 2.0, -1.0), (20, 1e-3, 5.0), (57, 10.0, 0.3)]
]
SAMPLES.append(RNG.exponential(1.0, 15))


# -- agreement with scipy.stats ---------------------------------------------------------------
@pytest.mark.parametrize("x", SAMPLES)
@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
def test_t_interval_matches_scipy(x, level):
    iv = stats.t_interval(x, level)
    lo, hi = sps.t.interval(level, x.size - 1, loc=x.mean(), scale=sps.sem(x))
    assert iv.estimate == pytest.approx(x.mean(), rel=1e-14, abs=1e-14)
    assert (iv.low, iv.high) == pytest.approx((lo, hi), rel=1e-12, abs=1e-14)
    assert iv.n == x.size and iv.level == level and iv.method == "t"
    assert iv.std == pytest.approx(x.std(ddof=1), rel=1e-14)


@pytest.mark.parametrize("x", SAMPLES)
@pytest.mark.parametrize("mu", [0.0, 1.5, -1.0])
def test_t_test_p_value_matches_scipy(x, mu):
    assert stats.t_test_p_value(x, mu) == pytest.approx(
        sps.ttest_1samp(x, mu).pvalue, rel=1e-10, abs=1e-300
    )


@pytest.mark.parametrize("n", [2, 5, 30])
def test_paired_difference_matches_ttest_rel(n):
    rng = np.random.default_rng(n)
    a, b = rng.standard_normal(n), rng.standard_normal(n) + 0.3
    iv = stats.paired_difference(a, b)
    res = sps.ttest_rel(a, b)
    ci = res.confidence_interval(0.95)
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert stats.t_test_p_value(a - b) == pytest.approx(res.pvalue, rel=1e-10)


@pytest.mark.parametrize("n", [3, 4, 12, 40])
def test_loglog_slope_matches_linregress(n):
    rng = np.random.default_rng(n)
    x = np.geomspace(1, 1000, n)
    y = 3.0 * x**-0.7 * np.exp(0.2 * rng.standard_normal(n))
    iv = stats.loglog_slope(x, y, 0.9)
    res = sps.linregress(np.log(x), np.log(y))
    h = sps.t.ppf(0.95, n - 2) * res.stderr
    assert iv.estimate == pytest.approx(res.slope, rel=1e-12)
    assert (iv.low, iv.high) == pytest.approx((res.slope - h, res.slope + h), rel=1e-12)
    assert iv.std == pytest.approx(res.stderr, rel=1e-12)


def test_loglog_slope_of_an_exact_power_law():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    iv = stats.loglog_slope(x, 5 * x**-2)
    assert iv.estimate == pytest.approx(-2.0, abs=1e-12)
    assert iv.high - iv.low < 1e-10


@pytest.mark.parametrize("x", SAMPLES[1:])
@pytest.mark.parametrize("level", [0.9, 0.95])
def test_bootstrap_interval_is_scipys_percentile_bootstrap(x, level):
    # the same generator gives the same resamples: the intervals agree to rounding
    res = sps.bootstrap(
        (x,),
        np.mean,
        n_resamples=4000,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(7),
    )
    iv = stats.bootstrap_interval(x, level, n_boot=4000, seed=7)
    ci = res.confidence_interval
    assert (iv.low, iv.high) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-12)
    assert iv.estimate == pytest.approx(x.mean(), rel=1e-14)


def test_bootstrap_median_is_scipys_percentile_bootstrap():
    x = SAMPLES[-1]
    res = sps.bootstrap(
        (x,),
        np.median,
        n_resamples=3000,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(3),
    )
    iv = stats.bootstrap_interval(x, n_boot=3000, seed=3, statistic="median")
    assert (iv.low, iv.high) == pytest.approx(tuple(res.confidence_interval), rel=1e-12)
    assert iv.estimate == np.median(x) and iv.method == "bootstrap-median"


@pytest.mark.parametrize("x", SAMPLES[1:])
def test_bootstrap_p_value_from_scipys_bootstrap_distribution(x):
    res = sps.bootstrap(
        (x,),
        np.mean,
        n_resamples=2000,
        method="percentile",
        vectorized=True,
        random_state=np.random.default_rng(11),
    )
    boots = res.bootstrap_distribution
    tail = (min(np.sum(boots <= 0), np.sum(boots >= 0)) + 1) / (boots.size + 1)
    assert stats.bootstrap_p_value(x, n_boot=2000, seed=11) == pytest.approx(min(1, 2 * tail))


def test_bootstrap_p_value_agrees_with_its_interval():
    """The 95 % interval excludes 0 exactly when p < 0.05, up to the quantile interpolation.

    A disagreement needs 0 within one resample's gap of the interval's end.
    """
    rng = np.random.default_rng(5)
    disagree = 0
    for k in range(300):
        x = rng.standard_normal(12) + rng.uniform(0, 1.2)
        iv = stats.bootstrap_interval(x, n_boot=1000, seed=k)
        p = stats.bootstrap_p_value(x, n_boot=1000, seed=k)
        disagree += (iv.low > 0 or iv.high < 0) != (p < 0.05)
    assert disagree <= 3


# -- edge cases -------------------------------------------------------------------------------
def test_zero_spread():
    x = np.full(5, 0.1)  # the mean of this is not exactly 0.1 in floating point
    iv = stats.t_interval(x)
    assert (iv.estimate, iv.low, iv.high, iv.std) == (0.1, 0.1, 0.1, 0.0)
    assert stats.t_test_p_value(x, 0.1) == 1.0 and stats.t_test_p_value(x) == 0.0
    assert stats.t_test_p_value(np.zeros(3)) == 1.0
    b = stats.bootstrap_interval(x)
    assert b.low == pytest.approx(0.1) and b.high == pytest.approx(0.1)
    assert stats.bootstrap_p_value(np.zeros(4)) == 1.0
    # all resamples are > 0: the smallest p-value a bootstrap of 4000 resamples can give
    assert stats.bootstrap_p_value(x) == pytest.approx(2 / 4001)
    assert stats.paired_difference(np.ones(3), np.ones(3)).high == 0.0


def test_n_equals_two():
    x = np.array([1.0, 3.0])
    iv = stats.t_interval(x)
    # t_{1, 0.975} = 12.706..., s = sqrt(2), s / sqrt(2) = 1
    assert (iv.low, iv.high) == pytest.approx((2 - 12.7062047, 2 + 12.7062047), rel=1e-8)
    assert stats.t_test_p_value(x) == pytest.approx(sps.ttest_1samp(x, 0).pvalue, rel=1e-12)
    b = stats.bootstrap_interval(x, n_boot=10000)
    assert 1.0 <= b.low <= b.high <= 3.0


def test_interval_as_dict():
    iv = stats.Interval(1.0, 0.5, 1.5, 0.95, 4, "t")
    assert iv.as_dict() == {
        "estimate": 1.0,
        "low": 0.5,
        "high": 1.5,
        "level": 0.95,
        "n": 4,
        "method": "t",
        "std": iv.std,
    }


# -- bad input --------------------------------------------------------------------------------
SAMPLE_FUNCTIONS = [
    stats.t_interval,
    stats.bootstrap_interval,
    stats.t_test_p_value,
    stats.bootstrap_p_value,
]


@pytest.mark.parametrize("f", SAMPLE_FUNCTIONS)
@pytest.mark.parametrize(
    "bad, match",
    [
        ([1.0], "size >= 2"),
        ([], "size >= 2"),
        ([[1.0, 2.0], [3.0, 4.0]], "1-D"),
        ([1.0, np.nan, 2.0], "non-finite"),
        ([1.0, np.inf], "non-finite"),
    ],
)
def test_bad_samples(f, bad, match):
    with pytest.raises(ValueError, match=match) as err:
        f(bad)
    assert f.__name__ in str(err.value)


@pytest.mark.parametrize("f", [stats.t_interval, stats.bootstrap_interval])
@pytest.mark.parametrize("level", [0.0, 1.0, 95, -0.5, math.nan, "0.95", True])
def test_bad_level(f, level):
    with pytest.raises(ValueError, match="level"):
        f([1.0, 2.0, 3.0], level)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(statistic="mode"), "statistic"),
        (dict(n_boot=0), "n_boot"),
        (dict(n_boot=2.5), "n_boot"),
    ],
)
def test_bad_bootstrap_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        stats.bootstrap_interval([1.0, 2.0, 3.0], **kwargs)


def test_bad_t_test_mu_and_pairs():
    with pytest.raises(ValueError, match="mu"):
        stats.t_test_p_value([1.0, 2.0], math.nan)
    with pytest.raises(ValueError, match="equal shapes"):
        stats.paired_difference([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-finite"):
        stats.paired_difference([1.0, np.nan], [1.0, 2.0])


@pytest.mark.parametrize(
    "x, y, match",
    [
        ([1.0, 2.0], [1.0, 2.0], "size >= 3"),
        ([1.0, 2.0, 3.0], [1.0, 2.0], "equal size"),
        ([1.0, 0.0, 3.0], [1.0, 2.0, 3.0], "positive"),
        ([1.0, 2.0, 3.0], [1.0, -2.0, 3.0], "positive"),
        ([1.0, np.inf, 3.0], [1.0, 2.0, 3.0], "non-finite"),
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0], "distinct"),
    ],
)
def test_bad_loglog_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        stats.loglog_slope(x, y)


# -- coverage by simulation ---------------------------------------------------------------------
def _percentile_bootstrap_batch(
    X: np.ndarray, rng: np.random.Generator, n_boot: int, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stats.bootstrap_interval` for each row of ``X`` at once.

    One generator for all rows; the same algorithm: resample indices, row means,
    linear-interpolation quantiles.
    """
    n = X.shape[1]
    lows, highs = [], []
    for chunk in np.array_split(X, max(1, X.shape[0] // 250)):
        idx = rng.integers(0, n, size=(chunk.shape[0], n_boot, n))
        boots = np.take_along_axis(chunk[:, None, :], idx, axis=2).mean(axis=2)
        lo, hi = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2], axis=1)
        lows.append(lo)
        highs.append(hi)
    return np.concatenate(lows), np.concatenate(highs)


def test_batch_bootstrap_is_the_package_bootstrap():
    """The vectorized replica used for the coverage simulation is the package's bootstrap.

    It computes what :func:`stats.bootstrap_interval` computes (same generator state, same
    numbers).
    """
    x = np.random.default_rng(1).standard_normal((1, 20))
    lo, hi = _percentile_bootstrap_batch(x, np.random.default_rng(9), 4000)
    iv = stats.bootstrap_interval(x[0], n_boot=4000, seed=9)
    assert (lo[0], hi[0]) == pytest.approx((iv.low, iv.high), rel=1e-13)


#: simulated data sets per coverage estimate; the Monte-Carlo standard error of a 95 % coverage
#: is sqrt(.95 * .05 / 2000) = 0.5 %, so the 93-97 % band is 4 standard errors wide each side
N_SETS = 2000


def _coverage_t(X: np.ndarray, mu: float) -> float:
    hits = [iv.low <= mu <= iv.high for iv in map(stats.t_interval, X)]
    return float(np.mean(hits))


@pytest.mark.parametrize("n", [3, 10])
def test_t_interval_covers_95_percent_of_normal_means(n):
    X = np.random.default_rng([n, 1]).normal(2.0, 3.0, (N_SETS, n))
    assert 0.93 <= _coverage_t(X, 2.0) <= 0.97


@pytest.mark.parametrize("n", [50])
def test_percentile_bootstrap_covers_95_percent_of_normal_means_at_n_50(n):
    """At n = 50 the percentile bootstrap covers 93-97 % of normal means.

    At n = 50 it is within the band (94.3 % in 4,000 sets); at n = 20 it sits on its edge
    (92.6-93.5 %) and below that it undercovers (next test). 500 resamples per set keep this test
    under a second; the 2.5 % and 97.5 % quantiles of 500 resamples are what 4,000 give up to noise
    that averages out over the sets.
    """
    rng = np.random.default_rng([n, 2])
    X = rng.normal(2.0, 3.0, (N_SETS, n))
    lo, hi = _percentile_bootstrap_batch(X, rng, 500)  # 95.1 % here
    coverage = float(np.mean((lo <= 2.0) & (2.0 <= hi)))
    assert 0.93 <= coverage <= 0.97, coverage


@pytest.mark.parametrize("n, at_most", [(3, 0.80), (10, 0.925)])
def test_percentile_bootstrap_undercovers_small_samples(n, at_most):
    """The percentile bootstrap undercovers small samples as docs/statistics.md documents.

    About 75 % at n = 3 and 90 % at n = 10 for normal data, against a nominal 95 % (the percentile
    interval is too narrow by about sqrt((n-1)/n) and uses normal rather than t quantiles). If this
    test fails the bootstrap was changed and the documentation must follow.
    """
    rng = np.random.default_rng([n, 3])
    X = rng.normal(0.0, 1.0, (N_SETS, n))
    lo, hi = _percentile_bootstrap_batch(X, rng, 1000)
    assert float(np.mean((lo <= 0) & (0 <= hi))) <= at_most
