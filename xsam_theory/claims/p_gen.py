r"""P-GEN: X-SAM generalizes better than SAM and SGD.

The paper's experiments, here on small MLPs, with the α = 0 ablation that separates the
eigenvector correction from X-SAM's gradient normalization.

The runs and measurements are :mod:`xsam_theory.experiments.generalization` (its docstring
states the protocol: datasets, methods, schedule, rate tuning on separate seeds, plateau
criterion, neighbouring rates). This module states the claim, builds its subclaims from the
per-seed numbers and applies the headline rule.

**Subclaims** (one family, per dataset ``D``), each on the per-seed paired differences of test
loss at the tuned rates, a − b, claimed negative:

* ``D/xsam-vs-sam``: X-SAM (paper rule, α = 0.2) − SAM;
* ``D/xsam-vs-ablation``: X-SAM − its α = 0 twin (the correction's own effect);
* ``D/xsam-vs-sgd``: X-SAM − SGD;
* ``D/xsam-alpha0.5-vs-ablation``: X-SAM at α = 0.5 − the α = 0 twin.

Each gets the mean with its 95 % t interval, the one-sample t test's p-value, Holm's adjustment
across the whole family (:func:`~xsam_theory.claims.verdicts.judge_family`), and a verdict;
seeds where either side diverged leave the pair, and a subclaim whose X-SAM side diverged on any
seed cannot hold (``n_diverged``). Alongside: the paired test-accuracy difference with its
interval (not judged), and ``tuning_sensitive``: whether some pairing of the grid rates next to
the two chosen rates (evaluated on the same evaluation seeds) has a 95 % t interval that excludes
0 on the side opposite to the subclaim's estimate, with the number of such pairings out of the
(up to 8) evaluated (not computed at ``quick``, where those rates are not run: ``null``).

**Headline rule**: ``holds`` if ``D/xsam-vs-sam`` holds on every dataset run, ``fails`` if it
fails on any, ``inconclusive`` otherwise. The attribution sentence reads the correction's own
effect off ``D/xsam-vs-ablation`` and the normalization's off the (reported, unjudged) paired
difference α = 0 ablation − SAM.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, claim
from xsam_theory.claims.verdicts import Subclaim, Verdict, headline, judge_family, subclaim
from xsam_theory.experiments.generalization import COMPARISONS, generalization_evidence
from xsam_theory.stats import t_interval

__all__ = [
    "HEADLINE_RULE",
    "LABELS",
    "attributable_to",
    "attribution",
    "build_subclaims",
    "check_p_gen",
    "headline_ids",
    "reverses",
]

LABELS = {
    "sgd": "SGD",
    "sam": "SAM",
    "nsam": "the alpha = 0 ablation",
    "xsam_paper": "X-SAM (paper rule, alpha = 0.2)",
    "xsam_paper_alpha0.5": "X-SAM (paper rule, alpha = 0.5)",
}
HEADLINE_RULE = (
    "holds if '<dataset>/xsam-vs-sam' holds on every dataset run, fails if it fails "
    "on any, inconclusive otherwise (subclaims: Holm-adjusted paired t tests of "
    "per-seed test-loss differences at the tuned rates, family-wise 5% over all of "
    "the claim's subclaims; a subclaim whose X-SAM side diverged cannot hold)"
)


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    if x.size < 2:
        return (float(x.mean()) if x.size else math.nan), math.nan, math.nan
    iv = t_interval(x)
    return iv.estimate, iv.low, iv.high


def _pair(a: dict[str, Any], b: dict[str, Any], metric: str) -> np.ndarray:
    """Per-seed a − b of ``metric`` over the seeds where both runs finished."""
    x, y = np.asarray(a[metric], dtype=float), np.asarray(b[metric], dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok] - y[ok]


def reverses(estimate: float, low: float, high: float) -> bool:
    """Whether an interval excludes 0 on the side opposite to ``estimate``'s sign.

    True when ``estimate < 0 < low`` or ``high < 0 < estimate``: a pairing of neighbouring
    learning rates whose interval reverses the chosen rates' difference (tuning sensitivity).
    """
    if not (math.isfinite(estimate) and math.isfinite(low) and math.isfinite(high)):
        return False
    return (estimate < 0 and low > 0) or (estimate > 0 and high < 0)


def build_subclaims(evidence: dict[str, Any]) -> list[Subclaim]:
    r"""The (not yet judged) subclaims of every dataset, from the raw per-seed numbers.

    Each comparison ``a - b`` of :data:`COMPARISONS` (X-SAM − SAM, X-SAM − ablation, ...) is the
    per-seed paired difference of test loss :math:`\ell_a(s) - \ell_b(s)` over the seeds where
    both runs finished (better if negative), with a Student-t interval; the runs that diverged
    are counted apart (docs/claims.md#C-p-protocol).
    """
    out = []
    for name, d in evidence["datasets"].items():
        for cid, a, b in COMPARISONS:
            comp = d["comparisons"][cid]
            va, vb = comp["values"]["a"], comp["values"]["b"]
            diff = _pair(va, vb, "test_loss")
            acc = _pair(va, vb, "test_accuracy")
            acc_est, acc_lo, acc_hi = _interval(acc)
            est = float(diff.mean()) if diff.size else math.nan
            pairings, sensitive, n_reversing = [], None, None
            if evidence["protocol"]["neighbouring_rates"]:
                for p in comp["neighbours"]:
                    x = _pair(p["a"], p["b"], "test_loss")
                    e, lo, hi = _interval(x)
                    pairings.append(
                        {
                            "lr_a": p["lr_a"],
                            "lr_b": p["lr_b"],
                            "estimate": e,
                            "interval": [lo, hi],
                            "n": int(x.size),
                            "reverses": reverses(est, lo, hi),
                        }
                    )
                n_reversing = sum(p["reverses"] for p in pairings)
                sensitive = n_reversing > 0
            out.append(
                subclaim(
                    f"{name}/{cid}",
                    f"on {name}, {LABELS[a]} reaches a lower test loss than {LABELS[b]}, each at "
                    "its tuned learning rate (per-seed paired difference < 0)",
                    diff,
                    better_if="negative",
                    test="t",
                    n_diverged=int(sum(bool(x) for x in va["diverged"])),
                    dataset=name,
                    method_a=a,
                    method_b=b,
                    lr_a=comp["lr_a"],
                    lr_b=comp["lr_b"],
                    same_rate=comp["same_rate"],
                    metric="test_loss",
                    other_diverged=int(sum(bool(x) for x in vb["diverged"])),
                    accuracy={
                        "estimate": acc_est,
                        "interval": [acc_lo, acc_hi],
                        "n": int(acc.size),
                        "better_if": "positive",
                        "samples": acc.tolist(),
                    },
                    tuning_sensitive=sensitive,
                    n_reversing_pairings=n_reversing,
                    neighbour_pairings=pairings,
                )
            )
    return out


def headline_ids(evidence: dict[str, Any]) -> list[str]:
    """The subclaims the headline rule reads: every dataset's ``xsam-vs-sam``."""
    return [f"{name}/xsam-vs-sam" for name in evidence["datasets"]]


def _fmt(s: Subclaim) -> str:
    lo, hi = s.interval
    return f"{s.estimate:+.3g} [{lo:+.3g}, {hi:+.3g}] {Verdict(s.verdict).value}"


def attributable_to(evidence: dict[str, Any], judged: list[Subclaim]) -> str:
    """What the headline is attributable to, in a clause.

    Either the eigenvector correction (judged by the ``xsam-vs-ablation`` subclaims) or X-SAM's
    gradient normalization.
    """
    by_id = {s.id: s for s in judged}
    names = list(evidence["datasets"])
    corr = {n: Verdict(by_id[f"{n}/xsam-vs-ablation"].verdict) for n in names}
    holds_corr = [n for n in names if corr[n] is Verdict.HOLDS]
    xsam = {n: Verdict(by_id[f"{n}/xsam-vs-sam"].verdict) for n in names}
    better = [n for n in names if xsam[n] is Verdict.HOLDS]
    worse = [n for n in names if xsam[n] is Verdict.FAILS]
    if better and all(corr[n] is Verdict.HOLDS for n in better):
        why = (
            f"where X-SAM beats SAM ({', '.join(better)}) its correction's own effect holds "
            "too, so the difference is attributable to the eigenvector correction"
        )
    elif better:
        why = (
            f"where X-SAM beats SAM ({', '.join(better)}) the correction's own effect is not "
            "established, so the difference is attributable to X-SAM's gradient "
            "normalization"
        )
    else:
        why = "X-SAM beats SAM on no dataset"
    if worse:
        why += f"; X-SAM is worse than SAM on {', '.join(worse)}"
    if holds_corr:
        why += f"; the correction's own effect holds on {', '.join(holds_corr)}"
    elif not better:
        why += ", and the correction's own effect is established on none"
    return why


def attribution(evidence: dict[str, Any], judged: list[Subclaim]) -> str:
    """One sentence summing up the headline and what it is attributable to.

    It names the headline differences, the correction's own effect, the normalization's (the
    reported ablation − SAM difference), and :func:`attributable_to`.
    """
    by_id = {s.id: s for s in judged}
    names = list(evidence["datasets"])
    norm = []
    for n in names:
        p = evidence["datasets"][n]["reported_pairs"]["nsam - sam"]["test_loss"]
        norm.append(f"{n} {p['mean']:+.3g} [{p['ci95'][0]:+.3g}, {p['ci95'][1]:+.3g}]")
    why = attributable_to(evidence, judged)
    sensitive = [
        s.id for s in judged if s.extra.get("tuning_sensitive") and s.id.endswith("/xsam-vs-sam")
    ]
    xs = "; ".join(f"{n} {_fmt(by_id[f'{n}/xsam-vs-sam'])}" for n in names)
    cs = "; ".join(f"{n} {_fmt(by_id[f'{n}/xsam-vs-ablation'])}" for n in names)
    tail = f"; tuning-sensitive: {', '.join(sensitive)}" if sensitive else ""
    return (
        f"Test loss X-SAM - SAM: {xs}; the correction's own effect (X-SAM - alpha=0 "
        f"ablation): {cs}; normalization (ablation - SAM, unjudged 95% t): "
        f"{'; '.join(norm)} — {why}{tail}."
    )


@claim(
    "P-GEN",
    "P",
    "X-SAM generalizes better than SAM and SGD: lower test loss (and higher "
    "test accuracy) on teacher-student MLPs, the digits data and generated classification "
    "data.",
    method="SGD-momentum base, cosine lr, minibatches; SGD, SAM, Eigen-SAM, X-SAM paper rule "
    "(alpha 0.2 and 0.5), symmetric rule, alpha=0 ablation under one schedule; each "
    "method's lr from a half-decade grid (extended until the choice is interior) by "
    "mean validation loss on tuning seeds disjoint from the evaluation seeds; per "
    "dataset subclaims xsam-vs-sam, xsam-vs-ablation, xsam-vs-sgd, "
    "xsam-alpha0.5-vs-ablation on paired per-seed test-loss differences; headline: "
    + HEADLINE_RULE,
    tolerance="Holm-adjusted paired t tests, family-wise 5% over the claim's subclaims; "
    "95% t intervals reported",
    facts=("T-xsam-setup", "A-reference-code"),
    figure="generalization",
)
def check_p_gen(ctx: ExperimentContext) -> Outcome:
    """Check P-GEN: X-SAM's test loss against SAM, SGD and the α = 0 ablation, paired by seed.

    Rests on docs/theory.md#T-xsam-setup, docs/algorithms.md#A-reference-code. The claim's page:
    docs/claims/P-GEN.md.
    """
    ev = generalization_evidence(ctx)
    judged = judge_family(build_subclaims(ev))
    ids = headline_ids(ev)
    verdict = headline(judged, ids) if ids else Verdict.INCONCLUSIVE
    by_id = {s.id: s for s in judged}
    key = "; ".join(f"{i.split('/')[0]}: X-SAM - SAM test loss {_fmt(by_id[i])}" for i in ids)
    if ev["skipped_datasets"]:
        key += "; skipped: " + ", ".join(ev["skipped_datasets"])
    evidence = {
        **ev,
        "subclaims": [s.to_json() for s in judged],
        "headline": {
            "rule": HEADLINE_RULE,
            "subclaims": ids,
            "verdict": Verdict(verdict).value,
            "attribution": attribution(ev, judged),
            "attributable_to": attributable_to(ev, judged),
        },
    }
    return Outcome(verdict, key or "no dataset ran", evidence)
