"""Interval estimates and tests for the empirical (P) claims.

t and percentile-bootstrap intervals of a mean, paired differences, log–log slopes, and the
two-sided p-values that go with them. Everything random is seeded; results are plain floats.
``docs/statistics.md`` states when each is used (the percentile bootstrap undercovers at small
samples: the t interval is the default); docs/claims.md#C-p-protocol how the claims use them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

__all__ = [
    "Interval",
    "bootstrap_interval",
    "bootstrap_p_value",
    "loglog_slope",
    "paired_difference",
    "t_interval",
    "t_test_p_value",
]


@dataclass(frozen=True)
class Interval:
    """An estimate with a two-sided confidence interval."""

    estimate: float
    low: float
    high: float
    level: float
    n: int
    method: str
    std: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        """The interval's fields as a dict."""
        return asdict(self)


def _check_level(level: Any, where: str) -> float:
    if (
        isinstance(level, bool)
        or not isinstance(level, (int, float, np.floating))
        or not 0.0 < float(level) < 1.0
    ):
        raise ValueError(f"{where}: level must be a number in (0, 1), got {level!r}")
    return float(level)


def _sample(x: Any, where: str) -> np.ndarray:
    """``x`` as a finite 1-D float sample of size >= 2, or a ValueError naming ``where``."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"{where} needs a 1-D sample of size >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{where} got non-finite values: {x[~np.isfinite(x)].tolist()}")
    return x


def _resample_means(
    x: np.ndarray, n_boot: Any, seed: int, statistic: str, where: str
) -> np.ndarray:
    """``n_boot`` bootstrap replicates of the mean (or median) of ``x``.

    The resampled indices are ``default_rng(seed).integers(0, n, (n_boot, n))``.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"{where}: n_boot must be a positive integer, got {n_boot!r}")
    if statistic not in _STATISTICS:
        raise ValueError(
            f"{where}: statistic must be one of {sorted(_STATISTICS)}, got {statistic!r}"
        )
    idx = np.random.default_rng(seed).integers(0, x.size, size=(int(n_boot), x.size))
    return _STATISTICS[statistic](x[idx], axis=1)


_STATISTICS = {"mean": np.mean, "median": np.median}


def t_interval(x: Any, level: float = 0.95) -> Interval:
    r"""Mean with the Student-t interval :math:`\bar x \pm t_{n-1,(1+\ell)/2}\, s/\sqrt n`.

    ``s`` is the sample standard deviation, with ``n - 1`` degrees of freedom. A sample with zero
    spread gives the zero-width interval at its mean.
    """
    level = _check_level(level, "t_interval")
    x = _sample(x, "t_interval")
    if np.all(x == x[0]):  # exactly, not up to the rounding of the mean
        return Interval(float(x[0]), float(x[0]), float(x[0]), level, int(x.size), "t", 0.0)
    m, s = float(x.mean()), float(x.std(ddof=1))
    h = float(sps.t.ppf(0.5 + level / 2, x.size - 1)) * s / math.sqrt(x.size)
    return Interval(m, m - h, m + h, level, int(x.size), "t", s)


def bootstrap_interval(
    x: Any, level: float = 0.95, *, n_boot: int = 4000, seed: int = 0, statistic: str = "mean"
) -> Interval:
    r"""Percentile bootstrap interval of the mean (or median) of a 1-D sample.

    The :math:`(1 \mp \ell)/2` quantiles (linear interpolation) of the statistic over ``n_boot``
    resamples of size ``n`` drawn with replacement (``seed``). It is the same interval as
    ``scipy.stats.bootstrap(..., method="percentile")`` with the same generator.

    It undercovers at small ``n`` (nominal 95 %: about 90 % at n = 10 and 75 % at n = 3 for
    normal data; see ``docs/statistics.md``); :func:`t_interval` is the default.
    """
    level = _check_level(level, "bootstrap_interval")
    x = _sample(x, "bootstrap_interval")
    boots = _resample_means(x, n_boot, seed, statistic, "bootstrap_interval")
    lo, hi = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2])
    f = _STATISTICS[statistic]
    return Interval(
        float(f(x)),
        float(lo),
        float(hi),
        level,
        int(x.size),
        f"bootstrap-{statistic}",
        float(x.std(ddof=1)),
    )


def t_test_p_value(x: Any, mu: float = 0.0) -> float:
    r"""Two-sided p-value of the one-sample t-test of :math:`E[x] = \mu`.

    It is :math:`2\,P(T_{n-1} \ge |\bar x - \mu| / (s/\sqrt n))`. A sample with zero spread gives
    1 if its mean equals ``mu`` and 0 otherwise (where ``scipy.stats.ttest_1samp`` gives NaN).
    """
    x = _sample(x, "t_test_p_value")
    if not math.isfinite(mu):
        raise ValueError(f"t_test_p_value: mu must be finite, got {mu!r}")
    if np.all(x == x[0]):
        return 1.0 if x[0] == mu else 0.0
    m, s = float(x.mean()), float(x.std(ddof=1))
    t = (m - mu) / (s / math.sqrt(x.size))
    return float(min(1.0, 2.0 * sps.t.sf(abs(t), x.size - 1)))


def bootstrap_p_value(x: Any, *, n_boot: int = 4000, seed: int = 0) -> float:
    r"""Two-sided percentile-bootstrap p-value of "the mean is 0".

    Twice the smaller tail of the bootstrap distribution of the mean beyond 0,
    :math:`2\min(P^*(\bar x^* \le 0), P^*(\bar x^* \ge 0))` capped at 1, with the same resamples
    as :func:`bootstrap_interval` (``seed``), so that the 95 % interval excludes 0 exactly when
    this is below 0.05 (up to the quantile interpolation). Resampling p-values are never 0: the
    tail count is :math:`(k + 1)/(B + 1)`, so the smallest is :math:`2/(B + 1)`.
    """
    x = _sample(x, "bootstrap_p_value")
    boots = _resample_means(x, n_boot, seed, "mean", "bootstrap_p_value")
    # (k + 1)/(B + 1): a resampling p-value is never exactly 0
    tail = (min(int(np.sum(boots <= 0)), int(np.sum(boots >= 0))) + 1) / (n_boot + 1)
    return float(min(1.0, 2.0 * tail))


def paired_difference(a: Any, b: Any, level: float = 0.95) -> Interval:
    r"""Mean of the per-seed differences ``a - b`` with a t interval.

    With :math:`d_s = a_s - b_s`: :math:`\bar d \pm t_{n-1,(1+\ell)/2}\,s_d/\sqrt n`, the paired
    t interval, as ``scipy.stats.ttest_rel(a, b).confidence_interval``.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}")
    return t_interval(a - b, level)


def loglog_slope(x: Any, y: Any, level: float = 0.95) -> Interval:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x`, with its t interval.

    The slope is :math:`\hat\beta`; the t interval is
    :math:`\hat\beta \pm t_{n-2,(1+\ell)/2}\,\mathrm{se}(\hat\beta)` (the standard error of
    ``scipy.stats.linregress``).
    """
    level = _check_level(level, "loglog_slope")
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError(
            f"loglog_slope needs two 1-D samples of equal size >= 3, got shapes "
            f"{x.shape} and {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("loglog_slope got non-finite values")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("loglog_slope needs positive x and y")
    if np.all(x == x[0]):
        raise ValueError("loglog_slope needs at least two distinct x values")
    res = sps.linregress(np.log(x), np.log(y))
    h = float(sps.t.ppf(0.5 + level / 2, x.size - 2)) * float(res.stderr)
    return Interval(
        float(res.slope),
        float(res.slope) - h,
        float(res.slope) + h,
        level,
        int(x.size),
        "ols-loglog",
        float(res.stderr),
    )
