r"""P-LMAX: X-SAM ends at a lower λ_max than SAM (and SAM than GD) at matched training loss.

The runs, the matched loss levels and the protocol are in
:mod:`xsam_theory.experiments.lambda_max`. This module judges them:

* **Subclaims** ``"<problem>/<level>/<comparison>"`` for the problems ``factorization``,
  ``teacher_student``, ``digits``, the levels ``early``, ``mid``, ``late`` (matched training
  loss) and ``end`` (end of the equal budget), and the comparisons ``xsam0.2-vs-sam``,
  ``xsam0.5-vs-sam``, ``xsam0.2-vs-ablation``, ``xsam0.5-vs-ablation`` (X-SAM against its
  α = 0 twin: the correction's own effect) and ``sam-vs-gd``. Samples are the per-seed log
  ratios :math:`\ln(\lambda_a/\lambda_b)` (relative differences: λ_max differs several-fold
  between seeds and problems, and the log ratio is symmetric in a and b); ``holds`` when their
  mean is below 0 by a t-test Holm-adjusted over all 60 subclaims (family-wise 0.05), ``fails``
  when above. A run that never reached a level is counted in ``unreached``; a diverged run on
  the claimed-better side keeps the subclaim from holding.
* **Headline rule**: ``holds`` if ``xsam0.2-vs-sam`` and ``xsam0.5-vs-sam`` hold at the
  ``late`` level and at the ``end`` on every problem; ``fails`` if any of those 12 fails; else
  ``inconclusive``. The attribution sentence reads the ``xsam*-vs-ablation`` subclaims at the
  same levels: the correction, or the normalized step it comes with.
"""

from __future__ import annotations

import math
from typing import Any

from xsam_theory.claims.registry import ExperimentContext, Outcome, claim
from xsam_theory.claims.verdicts import Subclaim, Verdict, headline, judge_family, subclaim
from xsam_theory.experiments.lambda_max import (
    COMPARISONS,
    LEVELS,
    lambda_max_evidence,
    paired_log_ratios,
)

HEADLINE_LEVELS = ("late", "end")
HEADLINE_COMPARISONS = ("xsam0.2-vs-sam", "xsam0.5-vs-sam")
ABLATION_COMPARISONS = ("xsam0.2-vs-ablation", "xsam0.5-vs-ablation")

HEADLINE_RULE = (
    "holds if xsam0.2-vs-sam and xsam0.5-vs-sam hold at the late level and at the "
    "end of the budget on every problem (factorization, teacher_student, digits); "
    "fails if any of those fails; else inconclusive"
)

_LEVEL_TEXT = {
    "early": "at the early matched loss",
    "mid": "at the mid matched loss",
    "late": "at the late matched loss (2x the deepest loss every run reaches)",
    "end": "at the end of the equal budget",
}


def headline_ids(problems: list[str]) -> list[str]:
    """The subclaims the headline rule reads.

    ``problem/level/comparison`` for every problem, every level of :data:`HEADLINE_LEVELS` and
    every comparison of :data:`HEADLINE_COMPARISONS`.
    """
    return [
        f"{p}/{lv}/{c}" for p in problems for lv in HEADLINE_LEVELS for c in HEADLINE_COMPARISONS
    ]


def build_subclaims(evidence: dict[str, Any]) -> list[Subclaim]:
    r"""One unjudged subclaim per problem × level × comparison, from the per-seed records.

    The per-seed value is :math:`\ln(\lambda_{\max}^a/\lambda_{\max}^b)` at the matched
    training-loss level (:func:`xsam_theory.experiments.lambda_max.paired_log_ratios`); the
    subclaim holds when its mean is significantly below 0 after Holm's adjustment
    (docs/claims.md#C-p-protocol). Background: docs/theory.md#T-flat-bias.
    """
    out = []
    for problem, study in evidence["problems"].items():
        for level in LEVELS:
            for cid, (a, b) in COMPARISONS.items():
                pairs = paired_log_ratios(study["per_seed"], a, b, level)
                out.append(
                    subclaim(
                        f"{problem}/{level}/{cid}",
                        f"{problem}: lambda_max({a}) < lambda_max({b}) {_LEVEL_TEXT[level]} "
                        f"(mean of per-seed ln ratios < 0)",
                        pairs["samples"],
                        better_if="negative",
                        test="t",
                        n_diverged=pairs["diverged"][a],
                        seeds=pairs["seeds"],
                        unreached=pairs["unreached"],
                        nonpositive=pairs["nonpositive"],
                        diverged=pairs["diverged"],
                        methods=[a, b],
                        loss_level=level,
                        problem=problem,
                        samples_are="ln(lambda_a / lambda_b)",
                    )
                )
    return out


def _count(subs: list[Subclaim]) -> dict[str, int]:
    c = {"holds": 0, "fails": 0, "inconclusive": 0}
    for s in subs:
        c[Verdict(s.verdict).value] = c.get(Verdict(s.verdict).value, 0) + 1
    return c


def _headline_and_ablation(
    judged: list[Subclaim], problems: list[str]
) -> tuple[list[Subclaim], list[Subclaim]]:
    by_id = {s.id: s for s in judged}
    return (
        [by_id[i] for i in headline_ids(problems)],
        [
            by_id[f"{p}/{lv}/{c}"]
            for p in problems
            for lv in HEADLINE_LEVELS
            for c in ABLATION_COMPARISONS
        ],
    )


def attributable_to(judged: list[Subclaim], problems: list[str]) -> str:
    """Whether the correction itself accounts for X-SAM's difference from SAM, in a clause.

    The correction's effect is X-SAM against its α = 0 ablation at the headline levels.
    """
    _, abl = _headline_and_ablation(judged, problems)
    ca = _count(abl)
    if ca["holds"] == len(abl):
        why = "the correction itself lowers lambda_max wherever compared"
    elif ca["holds"] == 0 and ca["fails"] == 0:
        why = (
            "the correction's own effect is not distinguishable from 0, so any difference "
            "from SAM comes from the normalized step, not the correction"
        )
    elif ca["holds"] == 0:
        why = (
            "where the correction's own effect is resolved it raises lambda_max, so any "
            "lowering relative to SAM comes from the normalized step"
        )
    else:
        why = "the correction's own effect is mixed across problems and levels"
    return why


def attribution(judged: list[Subclaim], problems: list[str]) -> str:
    """One sentence: what the headline subclaims found and :func:`attributable_to`."""
    vs_sam, abl = _headline_and_ablation(judged, problems)
    cs, ca = _count(vs_sam), _count(abl)
    why = attributable_to(judged, problems)
    return (
        f"X-SAM vs SAM at the late level and end of budget: {cs['holds']} hold, "
        f"{cs['fails']} fail, {cs['inconclusive']} inconclusive of {len(vs_sam)}; X-SAM vs "
        f"its alpha = 0 ablation there: {ca['holds']} hold, {ca['fails']} fail, "
        f"{ca['inconclusive']} inconclusive of {len(abl)}: {why}."
    )


def _pct(s: Subclaim) -> str:
    return "n/a" if not math.isfinite(s.estimate) else f"{math.expm1(s.estimate) * 100:+.1f}%"


@claim(
    "P-LMAX",
    "P",
    "X-SAM regularizes lambda_max more effectively than SAM (and SAM than GD), "
    "at matched training loss, on the factorization problem and small MLPs.",
    method="GD, SAM, X-SAM paper rule (alpha 0.2, 0.5) and its alpha = 0 ablation, same "
    "cosine schedule; normalized methods' lr = eta x SAM's mean first step length; "
    "per problem (unbalanced scalar factorization, teacher-student MLP, digits MLP) "
    "and seed, lambda_max at the first stored iterate with training loss <= each of "
    "3 levels (late = 2x the deepest loss every non-diverged run reaches; early, mid "
    "geometric between L0 and late) and at the end of the budget; per-seed ln "
    "ratios, t test, Holm over all subclaims. Headline rule: " + HEADLINE_RULE,
    tolerance="Holm-adjusted p < 0.05 (family of 60 subclaims) on the claimed side; a "
    "diverged run on the claimed-better side prevents holds",
    facts=("T-flat-bias", "T-confound"),
    figure="lambda-max",
)
def check_p_lmax(ctx: ExperimentContext) -> Outcome:
    """Check P-LMAX: λ_max of X-SAM, SAM and GD at matched training loss (per-seed log ratios).

    Rests on docs/theory.md#T-flat-bias, docs/theory.md#T-confound. The claim's page:
    docs/claims/P-LMAX.md.
    """
    evidence = lambda_max_evidence(ctx)
    problems = list(evidence["problems"])
    judged = judge_family(build_subclaims(evidence))
    ids = headline_ids(problems)
    verdict = headline(judged, ids)
    by_id = {s.id: s for s in judged}
    key = f"{verdict.value}: xsam0.2 vs sam " + "; ".join(
        f"{p} late {_pct(by_id[f'{p}/late/xsam0.2-vs-sam'])} end "
        f"{_pct(by_id[f'{p}/end/xsam0.2-vs-sam'])}"
        for p in problems
    )
    evidence["subclaims"] = [s.to_json() for s in judged]
    evidence["headline"] = {
        "rule": HEADLINE_RULE,
        "subclaims": ids,
        "verdict": verdict.value,
        "attribution": attribution(judged, problems),
        "attributable_to": attributable_to(judged, problems),
    }
    return Outcome(verdict, key, evidence)
