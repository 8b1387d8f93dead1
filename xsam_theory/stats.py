"""Interval estimates for the empirical (P) claims: t and bootstrap intervals, paired differences,
log–log slopes. All are seeded and return plain floats."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

__all__ = ["Interval", "bootstrap_interval", "bootstrap_p_value", "loglog_slope",
           "paired_difference", "t_interval", "t_test_p_value"]


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

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def t_interval(x: Any, level: float = 0.95) -> Interval:
    r"""Mean with the Student-t interval :math:`\bar x \pm t_{n-1,(1+\ell)/2}\, s/\sqrt n`."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"t_interval needs a 1-D sample of size >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("t_interval got non-finite values")
    m, s = float(x.mean()), float(x.std(ddof=1))
    h = float(sps.t.ppf(0.5 + level / 2, x.size - 1)) * s / math.sqrt(x.size)
    return Interval(m, m - h, m + h, level, int(x.size), "t", s)


def bootstrap_interval(x: Any, level: float = 0.95, *, n_boot: int = 4000, seed: int = 0,
                       statistic: str = "mean") -> Interval:
    """Percentile bootstrap interval of the mean (or median) of a 1-D sample."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"bootstrap_interval needs a 1-D sample of size >= 2, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("bootstrap_interval got non-finite values")
    f = {"mean": np.mean, "median": np.median}[statistic]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = f(x[idx], axis=1)
    lo, hi = np.quantile(boots, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(float(f(x)), float(lo), float(hi), level, int(x.size),
                    f"bootstrap-{statistic}", float(x.std(ddof=1)))


def t_test_p_value(x: Any, mu: float = 0.0) -> float:
    r"""Two-sided p-value of the one-sample t-test of :math:`E[x] = \mu`:
    :math:`2\,P(T_{n-1} \ge |\bar x - \mu| / (s/\sqrt n))`. A sample with zero spread gives
    1 if its mean equals ``mu`` and 0 otherwise."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"t_test_p_value needs a 1-D sample of size >= 2, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("t_test_p_value got non-finite values")
    m, s = float(x.mean()), float(x.std(ddof=1))
    if s == 0.0:
        return 1.0 if m == mu else 0.0
    t = (m - mu) / (s / math.sqrt(x.size))
    return float(min(1.0, 2.0 * sps.t.sf(abs(t), x.size - 1)))


def bootstrap_p_value(x: Any, *, n_boot: int = 4000, seed: int = 0) -> float:
    r"""Two-sided percentile-bootstrap p-value of "the mean is 0": twice the smaller tail of the
    bootstrap distribution of the mean beyond 0, :math:`2\min(P^*(\bar x^* \le 0),
    P^*(\bar x^* \ge 0))` capped at 1, with the same resamples as :func:`bootstrap_interval`
    (``seed``), so that the 95 % interval excludes 0 exactly when this is below 0.05 (up to
    the quantile interpolation)."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"bootstrap_p_value needs a 1-D sample of size >= 2, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("bootstrap_p_value got non-finite values")
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    # (k + 1)/(B + 1): a resampling p-value is never exactly 0
    tail = (min(int(np.sum(boots <= 0)), int(np.sum(boots >= 0))) + 1) / (n_boot + 1)
    return float(min(1.0, 2.0 * tail))


def paired_difference(a: Any, b: Any, level: float = 0.95) -> Interval:
    """Mean of the per-seed differences ``a - b`` with a t interval."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal shapes, got {a.shape} and {b.shape}")
    return t_interval(a - b, level)


def loglog_slope(x: Any, y: Any, level: float = 0.95) -> Interval:
    r"""Least-squares slope of :math:`\log y` against :math:`\log x` with its t interval."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size < 3:
        raise ValueError("loglog_slope needs two 1-D samples of equal size >= 3")
    if np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("loglog_slope needs positive x and y")
    res = sps.linregress(np.log(x), np.log(y))
    h = float(sps.t.ppf(0.5 + level / 2, x.size - 2)) * float(res.stderr)
    return Interval(float(res.slope), float(res.slope) - h, float(res.slope) + h, level,
                    int(x.size), "ols-loglog", float(res.stderr))
