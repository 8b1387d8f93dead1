r"""P-CONV: the paper rule with α ∈ (0, 1) converges at the rate derived for its normalized step.

The authors' rule (paper form) with α ∈ (0, 1) and :math:`\eta_t = \eta_0/\sqrt{t+1}` converges at
the rate derived for its normalized step, full batch and minibatch, with no diverged seed. Other
forms and α ≥ 1 are subclaims: α = 1 is F-FREEZE's case, α > 1 F-ESCAPE's.

The runs, the derivation of the expected slopes and the protocol are in
:mod:`xsam_theory.experiments.convergence`. This module judges them:

* **Cell subclaim** (one per problem × form × α × batch): the per-seed log-log slopes of
  :math:`\min_{t<T}\|\nabla L\|` minus the cell's threshold (expected slope + finite-T
  allowance); ``holds`` if their mean is below 0 (slope at or below the derived rate), ``fails``
  if above, by a t-test Holm-adjusted across all cell subclaims of the claim (family-wise 0.05).
  **Any diverged seed fails the cell by rule** (a run that ended with a larger gradient than it
  started with, or non-finite, did not converge), whatever the other seeds' slopes.
* **Constant step** (reported, not in the headline): with constant η the paper rule at α = 0.5
  stays within the descent-lemma neighbourhood bound on the quadratic, for every seed and η, and
  no seed diverges (rule).
* **Headline rule**: ``holds`` if every headline cell (paper rule, α ∈ (0, 1): quadratic full
  batch, MLP full batch, MLP minibatch) holds; ``fails`` if any fails; else ``inconclusive``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, claim
from xsam_theory.claims.verdicts import Subclaim, Verdict, headline, judge_family, subclaim
from xsam_theory.experiments.convergence import (
    CellResult,
    allowance,
    expected_slope,
    measure,
)
from xsam_theory.stats import t_interval

HEADLINE_RULE = (
    "holds if every headline cell (paper rule, alpha in (0, 1); quadratic full "
    "batch, MLP full batch, MLP minibatch) holds; fails if any fails; else "
    "inconclusive"
)


def tied_to(alpha: float) -> str | None:
    """The F claim that predicts a cell's behaviour outside the derivation (alpha >= 1).

    α = 1: F-FREEZE (docs/theory.md#T-freeze); α > 1: F-ESCAPE (docs/theory.md#T-escape);
    ``None`` for α < 1, where docs/theory.md#T-xsam-convergence applies.
    """
    if alpha == 1.0:
        return "F-FREEZE"
    if alpha > 1.0:
        return "F-ESCAPE"
    return None


def role(r: CellResult, headline_ids: set[str]) -> str:
    """The cell's role in the claim: headline, the alpha = 0 ablation, or subclaim.

    The headline cells are fixed by :data:`HEADLINE_RULE`; α = 0 is the ablation that
    attributes the rate (docs/claims.md#C-p-protocol).
    """
    if r.cell.id in headline_ids:
        return "headline"
    if r.cell.alpha == 0.0:
        return "ablation (alpha = 0: normalized SAM)"
    return "subclaim"


def _finite(x: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in np.asarray(x, dtype=float)]


def cell_subclaim(r: CellResult, kind: str) -> Subclaim:
    r"""The cell's subclaim: a t-test of the slopes, or ``fails`` by rule.

    The per-seed slopes :math:`b_s` of :math:`\log\min_{t<T}\|\nabla L(w_t)\|` against
    :math:`\log T` are shifted by the threshold :math:`\tau = b^* + a` (the derived slope
    :math:`b^*` of docs/theory.md#T-normalized-rate plus the finite-T allowance :math:`a`) and
    t-tested: the subclaim holds when :math:`E[b_s - \tau] < 0`. It ``fails`` by rule when a seed
    diverged (docs/claims.md#C-p-protocol).
    """
    c = r.cell
    exp, allow = expected_slope(c), allowance(c, r.grid)
    threshold = exp + allow
    finite = r.slopes[np.isfinite(r.slopes)]
    n_div = int(r.diverged.sum())
    link = tied_to(c.alpha)
    statement = (
        f"{c.id}: per-seed slope of log min_t<T ||grad|| vs log T at or below "
        f"{exp:g} + {allow:.3f} (derived rate + finite-T allowance), no seed diverged"
        + (f"; {link} predicts it does not converge" if link else "")
    )
    s = subclaim(
        c.id,
        statement,
        finite - threshold,
        better_if="negative",
        n_diverged=n_div,
        problem=c.problem,
        form=c.form,
        alpha=c.alpha,
        batch=c.batch,
        role=kind,
        tied_to=link,
        expected_slope=exp,
        allowance=allow,
        threshold=threshold,
    )
    if n_div:
        s = dataclasses.replace(s, test="rule", verdict=Verdict.FAILS)
    return s


def cell_record(r: CellResult, s: Subclaim) -> dict[str, Any]:
    """The evidence record of a cell.

    It holds what the issue asks for plus the raw per-seed numbers (slopes, initial and final
    gradient norms, best(T) on the grid) the checks recompute from.
    """
    finite = r.slopes[np.isfinite(r.slopes)]
    if finite.size >= 2:
        iv = t_interval(finite)
        slope, interval = iv.estimate, [iv.low, iv.high]
    else:
        slope = float(finite.mean()) if finite.size else math.nan
        interval = [math.nan, math.nan]
    c = r.cell
    return {
        "id": c.id,
        "problem": c.problem,
        "form": c.form,
        "alpha": c.alpha,
        "batch": c.batch,
        "n_seeds": len(r.seeds),
        "n_diverged": int(r.diverged.sum()),
        "slope": slope,
        "interval": interval,
        "expected_slope": s.extra["expected_slope"],
        "allowance": s.extra["allowance"],
        "threshold": s.extra["threshold"],
        "verdict": Verdict(s.verdict).value,
        "role": s.extra["role"],
        "tied_to": s.extra["tied_to"],
        "eta0": c.eta0,
        "seeds": list(r.seeds),
        "seed_slopes": _finite(r.slopes),
        "initial_grad_norm": _finite(r.initial),
        "final_grad_norm": _finite(r.final),
        "diverged": r.diverged.tolist(),
        "T_grid": r.grid.tolist(),
        "best_grad_norm": [_finite(b) for b in r.best],
        "max_alpha_adv_grad_norm": _finite(r.max_alpha_gadv),
        "noise_floor": _finite(r.noise_floor),
        "median_abs_c": _finite(r.median_abs_c),
    }


def constant_step_subclaim(cs: dict[str, Any]) -> Subclaim:
    r"""Rule: every seed's tail mean within its descent-lemma bound at every eta, none diverged.

    Holds when :math:`\text{tail mean of }\|\nabla L\| / \text{bound} \le 1` for every seed and
    constant step :math:`\eta`, the bound being the :math:`O(\eta)` neighbourhood of the
    normalized step (docs/theory.md#T-ngd); the estimate reported is the log-log slope of the
    tail mean against :math:`\eta` (1 for an :math:`O(\eta)` neighbourhood).
    """
    tails, bounds = np.array(cs["tail_mean_grad_norm"]), np.array(cs["bound"])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = tails / bounds
    ok = bool(np.all(np.isfinite(ratio)) and np.all(ratio <= 1.0)) and cs["n_diverged"] == 0
    slopes = [x for x in cs["slope_vs_eta"] if math.isfinite(x)]
    s = subclaim(
        "quadratic/paper/alpha=0.5/constant-step",
        "constant eta: the tail mean of ||grad|| stays within the descent-lemma "
        "neighbourhood bound (O(eta)) for every seed and eta; no seed diverged; "
        "estimate: log-log slope of the tail mean against eta (1 for an O(eta) "
        "neighbourhood), reported",
        slopes,
        better_if="positive",
        n_diverged=cs["n_diverged"],
        max_tail_over_bound=float(np.nanmax(ratio)),
    )
    return dataclasses.replace(s, test="rule", verdict=Verdict.HOLDS if ok else Verdict.FAILS)


def _attributable_to(records: list[dict[str, Any]]) -> str:
    """In a clause, what the rate is attributable to.

    The clause names the normalized step if the α = 0 ablation (normalized SAM, same schedule and
    step lengths) reaches the rate in every ablation cell, else says what the ablation does.
    """
    abl = [r for r in records if r["alpha"] == 0.0]
    if not abl:
        return "not attributed: no alpha = 0 ablation at this scale"
    if all(r["verdict"] == "holds" for r in abl):
        return (
            "the normalized step: the alpha = 0 ablation (normalized SAM) reaches the same "
            "rate, so the correction is not what makes X-SAM converge"
        )
    return "partly the correction: the alpha = 0 ablation does not reach the rate in " + ", ".join(
        r["id"] for r in abl if r["verdict"] != "holds"
    )


def _attribution(records: list[dict[str, Any]]) -> str:
    """One sentence from the numbers on the headline slopes and the ablation.

    It gives the headline slopes and what the alpha = 0 ablation (normalized SAM, same schedule
    and step lengths) reaches.
    """
    head = [r for r in records if r["role"] == "headline"]
    txt = ", ".join(f"{r['id']} {r['slope']:.2f} ({r['verdict']})" for r in head)
    abl = [r for r in records if r["alpha"] == 0.0]
    sentence = f"Headline slopes: {txt}"
    if not abl:
        return sentence + "; no alpha = 0 ablation at this scale, so no attribution."
    atxt = ", ".join(f"{r['id']} {r['slope']:.2f} ({r['verdict']})" for r in abl)
    if all(r["verdict"] == "holds" for r in abl):
        return (
            sentence + f"; the alpha = 0 ablation (normalized SAM) reaches the rate too "
            f"({atxt}): the rate is the normalized step's, not the correction's."
        )
    return sentence + f"; alpha = 0 ablation (normalized SAM): {atxt}."


@claim(
    "P-CONV",
    "P",
    "With eta_t = eta0/sqrt(t+1) the authors' rule with alpha in (0, 1) reaches the rate "
    "derived for its normalized step (best ||grad|| ~ log T/sqrt T), full batch and "
    "minibatch, with no diverged seed; other forms and alpha >= 1 are subclaims (F-FREEZE, "
    "F-ESCAPE).",
    method="per cell (problem x form x alpha x batch, seeds): least-squares log-log slope of "
    "min_{t<T} ||grad L|| on T = 2^k; subclaim: per-seed slopes minus (expected slope "
    "+ finite-T allowance), t-test, Holm across cells; any diverged seed (non-finite or "
    "final ||grad|| above the start's) fails the cell. Headline rule: "
    + HEADLINE_RULE
    + ". Constant-eta neighbourhood bound reported as a rule subclaim.",
    tolerance="threshold = derived slope (-1/2 normalized steps and the projector form on the "
    "quadratic, -1/4 unnormalized elsewhere) + allowance (slope of (H_T/S_T)^p + "
    "p/2 on the grid, 0.14-0.17); Holm family-wise 0.05; zero diverged seeds",
    facts=(
        "T-ngd",
        "T-normalized-rate",
        "T-xsam-convergence",
        "T-freeze",
        "T-escape",
        "T-projector-usam",
    ),
    backends=("numpy", "torch"),
    figure="convergence",
)
def check_p_conv(ctx: ExperimentContext) -> Outcome:
    """Check P-CONV: judge every cell's slopes and the constant-step bound, then the headline.

    Rests on docs/theory.md#T-ngd, docs/theory.md#T-normalized-rate,
    docs/theory.md#T-xsam-convergence, docs/theory.md#T-freeze, docs/theory.md#T-escape,
    docs/theory.md#T-projector-usam. The claim's page: docs/claims/P-CONV.md.
    """
    m = measure(ctx)
    heads = {c.id for c in m["plan"]["headline"]}
    results: dict[str, CellResult] = m["results"]
    raw = [cell_subclaim(r, role(r, heads)) for r in results.values()]
    raw.append(constant_step_subclaim(m["constant_step"]))
    judged = judge_family(raw)
    by_id = {s.id: s for s in judged}
    records = [cell_record(r, by_id[k]) for k, r in results.items()]
    head_ids = [c.id for c in m["plan"]["headline"]]
    verdict = headline(judged, head_ids)
    held = [i for i in head_ids if by_id[i].verdict is Verdict.HOLDS]
    failed = sorted(s.id for s in judged if s.verdict is Verdict.FAILS)
    key = f"headline {verdict.value}: {len(held)}/{len(head_ids)} headline cells hold; " + (
        f"fails: {', '.join(failed)}" if failed else "no cell fails"
    )
    evidence = {
        "cells": records,
        "subclaims": [s.to_json() for s in judged],
        "headline": {
            "rule": HEADLINE_RULE,
            "subclaims": head_ids,
            "verdict": verdict.value,
            "attribution": _attribution(records),
            "attributable_to": _attributable_to(records),
        },
        "constant_step": m["constant_step"],
        "fast_path_deviation": m["fast_path_deviation"],
        "hyperparameters": {
            k: (list(v) if isinstance(v, tuple) else v)
            for k, v in m["plan"].items()
            if k not in ("headline", "other")
        },
    }
    return Outcome(verdict, key, evidence)
