r"""Verdicts, subclaims and the multiple-comparison policy of the paper (P) claims.

A leaf module (it imports only :mod:`xsam_theory.stats`), so that figures may draw verdicts
without importing the claims ledger.

**Subclaims.** A P claim is judged through named subclaims (``"digits/xsam-vs-sam"``,
``"quadratic/paper/alpha=0.5"``, ...), each a comparison with an estimate, a 95 % interval, its
sample size, the raw per-seed values it was computed from and a verdict. The claim's headline
verdict follows a rule over some of its subclaims, written in the claim's method text.

**Multiple comparisons (Holm).** One claim's subclaims form one family. Each subclaim gets a
two-sided p-value from the test behind its interval (Student t for t intervals, the percentile
bootstrap's tail for bootstrap intervals), and the family's p-values are adjusted by Holm's
step-down method, which controls the family-wise error rate at :data:`FAMILY_ALPHA` = 0.05
under any dependence between the subclaims:

.. math::

    p_{(i)}^{\mathrm{Holm}} = \max_{j \le i} \min\bigl(1, (m - j + 1)\, p_{(j)}\bigr)

for the p-values sorted increasingly :math:`p_{(1)} \le \dots \le p_{(m)}`. A subclaim
``holds`` when its adjusted p-value is below 0.05 and its estimate lies on the claimed side,
``fails`` when the adjusted p-value is below 0.05 and the estimate lies on the other side, and is
``inconclusive`` otherwise. The reported ``interval`` is the unadjusted 95 % interval (an effect
size with its uncertainty); ``interval_simultaneous`` is the Bonferroni interval at level
1 − 0.05/m, which covers all m effects at once. **Divergence counts:** a subclaim whose
claimed-better side diverged in any paired seed cannot hold (``n_diverged`` says how many).

The protocol in words: docs/claims.md#C-p-protocol; the statistics behind it, with the measured
coverage of the intervals: docs/statistics.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np

from xsam_theory import stats

__all__ = [
    "FAMILY_ALPHA",
    "Subclaim",
    "Verdict",
    "headline",
    "holm",
    "judge_family",
    "subclaim",
    "verdict_from_interval",
]

#: the family-wise error rate of one claim's subclaims
FAMILY_ALPHA = 0.05


class Verdict(str, Enum):
    """The verdict of a claim or subclaim: holds, fails, inconclusive or error.

    Their meaning per kind of claim: docs/claims.md#C-verdicts.
    """

    HOLDS = "holds"
    FAILS = "fails"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


def verdict_from_interval(low: float, high: float, *, better_if: str = "negative") -> Verdict:
    """The verdict of an interval for a claimed sign.

    ``holds`` if the interval excludes 0 on the claimed side, ``fails`` if it excludes 0 on the
    other side, ``inconclusive`` if it contains 0 (or is not finite). For ``better_if =
    "negative"``: holds iff ``high < 0``, fails iff ``low > 0``.
    """
    if better_if not in ("negative", "positive"):
        raise ValueError(f"better_if must be 'negative' or 'positive', got {better_if!r}")
    if not (math.isfinite(low) and math.isfinite(high)):
        return Verdict.INCONCLUSIVE
    if high < 0:
        return Verdict.HOLDS if better_if == "negative" else Verdict.FAILS
    if low > 0:
        return Verdict.HOLDS if better_if == "positive" else Verdict.FAILS
    return Verdict.INCONCLUSIVE


@dataclass(frozen=True)
class Subclaim:
    """One comparison of a P claim (see the module docstring).

    ``samples`` are the per-seed (or per-run) values the estimate and interval are computed
    from, so that anyone can recompute them; ``better_if`` says which sign supports the claim.
    ``verdict`` is :attr:`Verdict.INCONCLUSIVE` until :func:`judge_family` has adjusted the
    family's p-values (or the verdict was set by a rule the claim states, ``test="rule"``).
    """

    id: str
    statement: str
    estimate: float
    interval: tuple[float, float]
    n: int
    better_if: str
    samples: tuple[float, ...] = ()
    test: str = "t"
    p_value: float = math.nan
    p_adjusted: float = math.nan
    interval_simultaneous: tuple[float, float] = (math.nan, math.nan)
    n_diverged: int = 0
    verdict: Verdict = Verdict.INCONCLUSIVE
    extra: dict[str, Any] = field(default_factory=dict)
    #: the resampling seed of a ``test="bootstrap"`` subclaim (its simultaneous interval reuses it)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.better_if not in ("negative", "positive"):
            raise ValueError(
                f"subclaim {self.id!r}: better_if must be 'negative' or "
                f"'positive', got {self.better_if!r}"
            )
        if self.test not in ("t", "bootstrap", "rule"):
            raise ValueError(
                f"subclaim {self.id!r}: test must be 't', 'bootstrap' or 'rule', got {self.test!r}"
            )

    def to_json(self) -> dict[str, Any]:
        """The evidence record ``{"id", "statement", "estimate", "interval", "n", ...}``.

        The record also holds ``"verdict"`` and the subclaim's other fields (test, p-values,
        simultaneous interval, samples); non-finite numbers are written as text by the ledger.
        """
        return {
            "id": self.id,
            "statement": self.statement,
            "estimate": self.estimate,
            "interval": list(self.interval),
            "n": self.n,
            "verdict": Verdict(self.verdict).value,
            "better_if": self.better_if,
            "test": self.test,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "interval_simultaneous": list(self.interval_simultaneous),
            "n_diverged": self.n_diverged,
            "samples": list(self.samples),
            **({"bootstrap_seed": self.seed} if self.test == "bootstrap" else {}),
            **self.extra,
        }


def subclaim(
    id: str,
    statement: str,
    samples: Iterable[float],
    *,
    better_if: str,
    test: str = "t",
    n_diverged: int = 0,
    seed: int = 0,
    level: float = 0.95,
    **extra: Any,
) -> Subclaim:
    r"""A subclaim from its per-seed values (finite ones; divergences are counted apart).

    ``test="t"``: mean with the Student-t interval :math:`\bar x \pm t_{n-1,0.975}\,s/\sqrt n`
    and the one-sample t-test's p-value :math:`2P(T_{n-1} \ge |\bar x|\sqrt n/s)`;
    ``test="bootstrap"``: the percentile bootstrap of the mean (``seed``) and its two-sided tail
    p-value (:func:`xsam_theory.stats.bootstrap_p_value`). Fewer than 2 values give a NaN
    interval and p-value (an inconclusive subclaim).
    """
    x = np.asarray(list(samples), dtype=float)
    if x.ndim != 1:
        raise ValueError(f"subclaim {id!r}: samples must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(
            f"subclaim {id!r}: samples must be finite (count divergences in "
            f"n_diverged), got {x.tolist()}"
        )
    est, lo, hi, p = (float(x.mean()) if x.size else math.nan), math.nan, math.nan, math.nan
    if x.size >= 2:
        if test == "t":
            iv = stats.t_interval(x, level)
            p = stats.t_test_p_value(x)
        elif test == "bootstrap":
            iv = stats.bootstrap_interval(x, level, seed=seed)
            p = stats.bootstrap_p_value(x, seed=seed)
        else:
            raise ValueError(
                f"subclaim {id!r}: test must be 't' or 'bootstrap' for samples, got {test!r}"
            )
        lo, hi = iv.low, iv.high
    return Subclaim(
        id,
        statement,
        est,
        (lo, hi),
        int(x.size),
        better_if,
        tuple(float(v) for v in x),
        test,
        p,
        n_diverged=int(n_diverged),
        extra=extra,
        seed=int(seed),
    )


def holm(p_values: Sequence[float]) -> list[float]:
    r"""Holm's step-down adjusted p-values (see the module docstring).

    :math:`p^{\mathrm{Holm}}_{(i)} = \max_{j \le i}\min(1, (m - j + 1)p_{(j)})` over the
    p-values sorted increasingly (docs/claims.md#C-p-protocol).

    NaN stays NaN and does not count towards the family size.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size == 0:
        return out.tolist()
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise ValueError(f"p-values must lie in [0, 1], got {p[ok].tolist()}")
    m = ok.size
    order = ok[np.argsort(p[ok], kind="stable")]
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def judge_family(subclaims: Sequence[Subclaim], alpha: float = FAMILY_ALPHA) -> list[Subclaim]:
    r"""The subclaims of one claim with Holm-adjusted p-values, intervals and verdicts.

    The intervals are Bonferroni simultaneous intervals (see the module docstring), at level
    :math:`1 - \alpha/m` with :math:`m` the number of finite p-values. A subclaim holds when
    :math:`p^{\mathrm{Holm}} < \alpha` with the estimate on the claimed side, fails when it is
    on the other side, else is inconclusive; a diverged seed turns ``holds`` into
    ``inconclusive``. Subclaims with ``test="rule"`` keep the verdict they were given and are not
    part of the family (docs/claims.md#C-p-protocol).
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"judge_family: alpha must lie in (0, 1), got {alpha!r}")
    family = [k for k, s in enumerate(subclaims) if s.test != "rule"]
    m = sum(1 for k in family if math.isfinite(subclaims[k].p_value))
    adjusted = dict(zip(family, holm([subclaims[k].p_value for k in family])))
    out = []
    for k, s in enumerate(subclaims):
        if s.test == "rule":
            out.append(s)
            continue
        p_adj = adjusted[k]
        verdict = Verdict.INCONCLUSIVE
        if (
            math.isfinite(p_adj)
            and p_adj < alpha
            and math.isfinite(s.estimate)
            and s.estimate != 0.0
        ):
            on_claimed_side = (s.estimate < 0) == (s.better_if == "negative")
            verdict = Verdict.HOLDS if on_claimed_side else Verdict.FAILS
        if s.n_diverged and verdict is Verdict.HOLDS:
            verdict = Verdict.INCONCLUSIVE
        simultaneous = (math.nan, math.nan)
        if m and len(s.samples) >= 2:
            level = 1 - alpha / m
            x = np.asarray(s.samples)
            iv = (
                stats.t_interval(x, level)
                if s.test == "t"
                else stats.bootstrap_interval(x, level, seed=s.seed)
            )
            simultaneous = (iv.low, iv.high)
        out.append(
            replace(s, p_adjusted=p_adj, verdict=verdict, interval_simultaneous=simultaneous)
        )
    return out


def headline(subclaims: Sequence[Subclaim], ids: Sequence[str]) -> Verdict:
    """The rule most P claims state: ``holds`` if every named subclaim holds.

    ``fails`` if any fails, ``inconclusive`` otherwise (also when ``ids`` names none that exist).
    The headline rules are stated in each claim's method (docs/claims.md#C-p-protocol).
    """
    by_id = {s.id: s for s in subclaims}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise ValueError(f"headline names unknown subclaim(s) {missing}; known: {list(by_id)}")
    verdicts = [Verdict(by_id[i].verdict) for i in ids]
    if not verdicts:
        return Verdict.INCONCLUSIVE
    if Verdict.FAILS in verdicts:
        return Verdict.FAILS
    if all(v is Verdict.HOLDS for v in verdicts):
        return Verdict.HOLDS
    return Verdict.INCONCLUSIVE
