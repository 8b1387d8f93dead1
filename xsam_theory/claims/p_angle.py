r"""P-ANGLE, orientation-free: λ_max falls less per step when the gradient is more aligned with v.

Along SAM training, :math:`\lambda_{\max}` falls less per step when
:math:`|\cos\angle(g, v)|` is larger, with the training phase controlled.

The paper's statement is oriented ("when ∠(g, v) ≤ 90°"), but ``v`` has no natural sign, so only
:math:`|\cos|` is intrinsic; the oriented form is the subject of F-ORIENT
(:mod:`xsam_theory.claims.angle_orientation`). The runs and every per-run number come from
:mod:`xsam_theory.experiments.angle` (its docstring states the protocol): full-batch SAM on
teacher–student MLPs at two rates, per step the top eigenpair, :math:`|\cos_t|` and
:math:`\Delta\lambda_t = \lambda_{t+1} - \lambda_t`.

Per run, two statistics compare steps only within windows of 10 consecutive steps (so the
slow drift of both :math:`|\cos|` and :math:`\Delta\lambda` over training cannot make the
association), both in units of the run's within-window SD of :math:`\Delta\lambda`:

* ``within-window``: in each window, mean :math:`\Delta\lambda` of the 5 steps with the largest
  :math:`|\cos|` minus that of the 5 smallest, averaged over windows;
* ``regression-slope``: the slope of :math:`\Delta\lambda` on :math:`\log_{10}|\cos|` with a
  fixed effect per window.

The claim predicts both positive. Subclaims: each statistic pooled over all runs, and per rate
(``lr=0.5/...``, ``lr=2/...``); the sample is one number per run (runs are independent), the
interval a Student-t interval over runs, the p-value the one-sample t-test; the six form one
Holm family (:func:`xsam_theory.claims.verdicts.judge_family`). A diverged run counts in
``n_diverged`` and keeps its subclaims from holding.

Headline rule: ``holds`` if the pooled ``within-window`` and ``regression-slope`` subclaims both
hold, ``fails`` if either fails, ``inconclusive`` otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, claim
from xsam_theory.claims.verdicts import Subclaim, headline, judge_family, subclaim
from xsam_theory.experiments.angle import (
    LRS,
    abs_cos_quantiles,
    angle_runs,
    angle_setup,
    run_statistics,
)

HEADLINE_IDS = ("within-window", "regression-slope")
HEADLINE_RULE = (
    "holds if the pooled 'within-window' and 'regression-slope' subclaims both "
    "hold (Holm-adjusted over the six subclaims), fails if either fails, "
    "inconclusive otherwise"
)
ATTRIBUTION = (
    "a within-run association between |cos angle(g, v)| and the next step's change "
    "of lambda_max along full-batch SAM on small teacher-student MLPs, with no "
    "intervention on the angle: it is not causal, and says nothing about X-SAM's "
    "correction"
)
STATISTICS = {"within-window": "within_window", "regression-slope": "slope"}
STATEMENTS = {
    "within-window": "within windows of 10 steps, the 5 steps with the largest |cos| have a "
    "larger delta-lambda than the 5 smallest (within-window SDs)",
    "regression-slope": "with a fixed effect per 10-step window, delta-lambda rises with "
    "log10|cos| (within-window SDs per decade)",
}


def _lr_label(lr: float) -> str:
    return f"lr={lr:g}"


def angle_subclaims(per_run: list[dict[str, Any]], seed: int = 0) -> list[Subclaim]:
    r"""The six subclaims (pooled and per rate, both statistics), Holm-judged as one family.

    They are built from the per-run numbers of
    :func:`xsam_theory.experiments.angle.run_statistics`: the within-window split effect and the
    within-window slope on :math:`\log_{10}|\cos|`, pooled over runs and per rate, each a mean
    over runs with a t interval (better if positive: λ_max falls less when :math:`|\cos|` is
    larger). Protocol: docs/claims.md#C-p-protocol; the argument: docs/theory.md#T-eig-gradient.
    """
    groups: list[tuple[str, list[dict[str, Any]]]] = [("", per_run)]
    groups += [(f"{_lr_label(lr)}/", [r for r in per_run if r["lr"] == lr]) for lr in LRS]
    out = []
    for prefix, rows in groups:
        for name, key in STATISTICS.items():
            ok = [r for r in rows if not r["diverged"] and np.isfinite(r[key])]
            where = f"at {prefix[:-1]}" if prefix else "over both rates"
            out.append(
                subclaim(
                    f"{prefix}{name}",
                    f"{STATEMENTS[name]}, {where}",
                    [r[key] for r in ok],
                    better_if="positive",
                    test="t",
                    seed=seed,
                    n_diverged=sum(r["diverged"] for r in rows),
                    seeds=[r["seed"] for r in ok],
                    lrs=[r["lr"] for r in ok],
                )
            )
    return judge_family(out)


@claim(
    "P-ANGLE",
    "P",
    "Along full-batch SAM training, lambda_max falls less per step when "
    "|cos angle(g, v)| is larger (orientation-free), with the training phase controlled.",
    method="full-batch SAM (rho 0.05, lr 0.5 and 2) on tanh teacher-student MLPs, 20+ "
    "independent runs at the default scale; every step the top Hessian eigenpair "
    "(warm-started ARPACK, relative residual <= 1e-9) and |cos angle(g, v)|; per run, "
    "within 10-step windows, delta-lambda of the steps with larger vs smaller |cos| "
    "and the slope of delta-lambda on log10|cos| with window fixed effects; "
    "t intervals over runs; six subclaims (pooled and per rate) Holm-adjusted. "
    f"Headline rule: {HEADLINE_RULE}.",
    tolerance="a subclaim holds when its Holm-adjusted p < 0.05 with a positive estimate "
    "and no diverged run; fails when p < 0.05 with a negative estimate",
    facts=("T-xsam-abstract", "T-eig-gradient"),
    figure="angle",
)
def check_p_angle(ctx: ExperimentContext) -> Outcome:
    """Check P-ANGLE: λ_max falls less per step when ``|cos∠(g, v)|`` is larger (Holm-judged).

    Rests on docs/theory.md#T-xsam-abstract, docs/theory.md#T-eig-gradient. The claim's page:
    docs/claims/P-ANGLE.md.
    """
    runs = angle_runs(ctx, reuse=True)
    per_run = [run_statistics(r) for r in runs]
    judged = angle_subclaims(per_run, seed=ctx.seed)
    verdict = headline(judged, HEADLINE_IDS)
    by_id = {s.id: s for s in judged}
    accuracy = {
        "max_relative_residual": max(r["max_relative_residual"] for r in per_run),
        "median_abs_dlam": float(np.median([r["median_abs_dlam"] for r in per_run])),
        "note": "|lambda_t - lambda_1(w_t)| <= the residual ||Hv - lambda v||, so the "
        "eigenvalue error is below max_relative_residual * lambda",
    }
    evidence = {
        "hyperparameters": angle_setup(ctx),
        "n_runs": len(runs),
        "n_diverged": sum(r.diverged for r in runs),
        "abs_cos_quantiles": {
            "all": abs_cos_quantiles(runs),
            **{_lr_label(lr): abs_cos_quantiles([r for r in runs if r.lr == lr]) for lr in LRS},
        },
        "eigenvalue_accuracy": accuracy,
        "subclaims": [s.to_json() for s in judged],
        "headline": {
            "rule": HEADLINE_RULE,
            "subclaims": list(HEADLINE_IDS),
            "verdict": verdict.value,
            "attribution": ATTRIBUTION,
            "attributable_to": "a within-run association along SAM training (not "
            "causal; it says nothing about X-SAM's correction)",
        },
        "runs": [
            {**stats, "dlam": r.dlam, "abs_cos": r.abs_cos} for stats, r in zip(per_run, runs)
        ],
    }
    ww, sl = by_id["within-window"], by_id["regression-slope"]
    key = (
        f"within-window {ww.estimate:+.3f} SD [{ww.interval[0]:+.3f}, {ww.interval[1]:+.3f}], "
        f"slope {sl.estimate:+.3f} SD/decade [{sl.interval[0]:+.3f}, {sl.interval[1]:+.3f}], "
        f"{ww.n} runs; median |cos| {evidence['abs_cos_quantiles']['all']['median']:.1e}"
    )
    return Outcome(verdict, key, evidence)
