r"""F-ORIENT: the oriented form of P-ANGLE depends on the sign convention of ``v``.

The paper states its angle condition with an orientation ("when ∠(g, v) ≤ 90°, SAM's
regularization of λ_max weakens"), but an eigenvector is defined only up to sign, and neither
the paper nor its code fixes one. The oriented statistic of that statement,

.. math::

    D_s = \operatorname{mean}\{\Delta\lambda_t : s_t\cos_t \ge 0\}
        - \operatorname{mean}\{\Delta\lambda_t : s_t\cos_t < 0\},

with :math:`\cos_t` measured against the canonical :math:`v_t` (largest-magnitude entry
positive) and :math:`s_t = \pm 1` a sign convention, is odd under the flip
:math:`s \to -s` whenever no :math:`\cos_t` is exactly 0: the two bins swap, so
:math:`D_{-s} = -D_s` exactly (floating-point subtraction is anti-symmetric), and so do the
interval over runs and a decisive verdict.

Check, on the P-ANGLE runs (:mod:`xsam_theory.experiments.angle`, shared in the process):

1. at least two runs have steps on both sides of 90° under the canonical convention (a
   statistic exists to flip; with an orientation-free angle every step falls in the ≤ 90° bin
   and this fails);
2. every such run has :math:`D_{\text{negated}} = -D_{\text{canonical}}` exactly and no
   :math:`\cos_t = 0`;
3. the pooled estimate (mean over runs) is non-zero under the canonical convention and has the
   opposite sign under the negated one; if the canonical Student-t interval over runs excludes 0
   (a decisive oriented verdict, the claim's "holds"/"fails"), the negated verdict is the
   opposite one.

``holds`` when all three hold, ``fails`` otherwise. Reported alongside, descriptively: the same
statistic under two further conventions (a fixed random reference vector per run; continuity of
``v`` along the run), and the fraction of steps at which the side of 90° changes (at η = 0.5
it changes rarely, so the two bins are blocks of training time, not comparable steps).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.claims.verdicts import verdict_from_interval
from xsam_theory.experiments.angle import (
    BURN_IN,
    CONVENTIONS,
    LRS,
    angle_runs,
    angle_setup,
    run_statistics,
    summary_interval,
)

FLIP = ("canonical", "negated")
OPPOSITE = {Verdict.HOLDS: Verdict.FAILS, Verdict.FAILS: Verdict.HOLDS}


def oriented_summary(per_run: list[dict[str, Any]], convention: str) -> dict[str, Any]:
    """The oriented statistic under ``convention``: mean, 95 % t interval and verdict.

    Taken over the runs where both sides have steps; the oriented claim's verdict counts a
    positive statistic as support. The statistic is :math:`D_s` of the module docstring (mean
    Δλ at acute minus at obtuse oriented angles); background: docs/theory.md#T-xsam-abstract.
    """
    s = summary_interval([r[f"oriented_{convention}"] for r in per_run if not r["diverged"]])
    verdict = verdict_from_interval(s["ci_low"], s["ci_high"], better_if="positive")
    return {**s, "verdict": verdict.value}


def flip_findings(per_run: list[dict[str, Any]], n_zero_cos: int) -> dict[str, Any]:
    r"""Conditions 1–3 of the module docstring on the per-run numbers.

    Per run: both sides of 90° have steps, :math:`D_{-s} = -D_s` exactly and no
    :math:`\cos_t = 0`; pooled: the estimate changes sign with the convention and a decisive
    canonical verdict turns into the opposite one.
    """
    both = [r for r in per_run if not r["diverged"] and math.isfinite(r["oriented_canonical"])]
    exact = all(r["oriented_negated"] == -r["oriented_canonical"] for r in both)
    same_runs = all(
        math.isfinite(r["oriented_negated"]) == math.isfinite(r["oriented_canonical"])
        for r in per_run
        if not r["diverged"]
    )
    c, n = oriented_summary(per_run, "canonical"), oriented_summary(per_run, "negated")
    sign_flips = (
        math.isfinite(c["estimate"])
        and c["estimate"] != 0
        and np.sign(n["estimate"]) == -np.sign(c["estimate"])
    )
    vc = Verdict(c["verdict"])
    verdict_flips = (Verdict(n["verdict"]) is OPPOSITE[vc]) if vc in OPPOSITE else None
    return {
        "runs_with_both_sides": len(both),
        "exact_negation": bool(exact and same_runs),
        "zero_cosines": int(n_zero_cos),
        "pooled_sign_flips": bool(sign_flips),
        "decisive": vc in OPPOSITE,
        "verdict_flips": verdict_flips,
    }


def flip_verdict(found: dict[str, Any]) -> Verdict:
    """The verdict of the flip findings.

    ``holds`` when conditions 1-3 of the module docstring hold (:func:`flip_findings`), ``fails``
    otherwise.
    """
    ok = (
        found["runs_with_both_sides"] >= 2
        and found["exact_negation"]
        and found["zero_cosines"] == 0
        and found["pooled_sign_flips"]
        and found["verdict_flips"] is not False
    )
    return Verdict.HOLDS if ok else Verdict.FAILS


def _median(x: list[float]) -> float:
    x = [v for v in x if math.isfinite(v)]
    return float(np.median(x)) if x else float("nan")


@claim(
    "F-ORIENT",
    "F",
    "The oriented P-ANGLE statement ('lambda_max falls less per step when "
    "angle(g, v) <= 90 deg') depends on v's sign convention: negating the convention "
    "negates the oriented statistic on every run, so its sign and any decisive verdict "
    "reverse.",
    method="on the P-ANGLE runs (full-batch SAM, teacher-student MLPs), per run the mean "
    "delta-lambda with angle <= 90 deg minus with angle > 90 deg, v canonical "
    "(largest entry positive) and negated; pooled over runs with a t interval; also "
    "reported under a fixed random reference vector and under continuity of v",
    tolerance="exact: per run D(negated) == -D(canonical) in floating point, >= 2 runs with "
    "both sides, no cos exactly 0, pooled sign reverses, a decisive verdict "
    "reverses",
    facts=("T-xsam-abstract",),
    figure="angle",
)
def check_f_orient(ctx: ExperimentContext) -> Outcome:
    """Check F-ORIENT: negating v's sign convention negates the oriented statistic on every run.

    Rests on docs/theory.md#T-xsam-abstract. The claim's page: docs/claims/F-ORIENT.md.
    """
    runs = angle_runs(ctx, reuse=True)
    per_run = [run_statistics(r) for r in runs]
    n_zero = int(sum(np.count_nonzero(r.cos[BURN_IN:] == 0) for r in runs))
    found = flip_findings(per_run, n_zero)
    conventions = {c: oriented_summary(per_run, c) for c in CONVENTIONS}
    by_lr = {
        f"lr={lr:g}": {c: oriented_summary([r for r in per_run if r["lr"] == lr], c) for c in FLIP}
        for lr in LRS
    }
    evidence = {
        "hyperparameters": angle_setup(ctx),
        **found,
        "conventions": conventions,
        "by_lr": by_lr,
        "side_switch_fraction_median": {
            "all": _median([r["side_switch_fraction"] for r in per_run]),
            **{
                f"lr={lr:g}": _median([r["side_switch_fraction"] for r in per_run if r["lr"] == lr])
                for lr in LRS
            },
        },
        "runs": [
            {
                k: r[k]
                for k in (
                    "seed",
                    "lr",
                    "diverged",
                    "side_switch_fraction",
                    *(f"oriented_{c}" for c in CONVENTIONS),
                )
            }
            for r in per_run
        ],
    }
    c, n = conventions["canonical"], conventions["negated"]
    key = (
        f"canonical {c['estimate']:+.2e} ({c['verdict']}) vs negated {n['estimate']:+.2e} "
        f"({n['verdict']}), {found['runs_with_both_sides']} runs with both sides"
    )
    return Outcome(flip_verdict(found), key, evidence)
