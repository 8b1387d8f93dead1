"""P-LMAX: X-SAM regularizes λ_max more than SAM, and SAM more than GD, at matched training loss.

Protocol (fixed before looking at the numbers):

* Problems: (a) the scalar factorization ½(xy − 1)² from unbalanced starts x ~ U(2, 3),
  y ~ U(0.2, 0.5) (GD stops at a sharp minimizer there, theory-notes F4.4); (b) a tanh
  teacher–student MLP (data seed 3000 + base seed) with cross-entropy, full batch, PyTorch
  default init. One start per seed, shared by all methods. Runs go through the sweep runner.
* Methods: GD, SAM (ρ), X-SAM paper rule (α = 0.5, exact / Lanczos top eigenvector refreshed every
  step / every 5 steps), and the α = 0 ablation (normalized SAM) which separates the effect of
  X-SAM's normalization from the eigenvector correction (F-CONFOUND). Every method uses the same
  cosine learning-rate schedule over ``T`` steps (the authors' schedule). GD and SAM take
  ``lr = η``; the normalized methods take ``lr = η · mean_seeds ‖g_adv(w_0)‖``, i.e. SAM's mean
  first step length (a normalized step's ``lr`` is a length, F-NORM).
* Matched training loss: λ_max is measured (dense / Lanczos, full batch) at the first iterate whose
  training loss is ≤ L* = ``loss_fraction`` × L(w_0); a run that never gets there is reported and
  left out of the paired comparison. λ_max at the end of the budget is reported too.
* Statistics: per-seed paired differences, t interval 95 %. Verdict per problem: ``holds`` if
  both λ(X-SAM) − λ(SAM) and λ(SAM) − λ(GD) have intervals below 0; ``fails`` if either interval
  lies above 0; ``inconclusive`` otherwise. Overall: ``holds`` if it holds on both problems,
  ``fails`` if it fails on either, else ``inconclusive``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xsam_theory.claims.registry import ExperimentContext, Outcome, Verdict, claim
from xsam_theory.experiments.sweep import sweep_runs
from xsam_theory.problems import Factorization, Problem
from xsam_theory.spectral import HessianOperator, top_eigenpair
from xsam_theory.stats import paired_difference
from xsam_theory.sweeps import build_problem, initial_point
from xsam_theory.sweeps.registry import problem_factory

METHODS = ("gd", "sam", "xsam", "nsam")


def _lambda_max(problem: Problem, w: np.ndarray, method: str) -> float:
    return float(top_eigenpair(HessianOperator.from_problem(problem, w), method).eigenvalue)


def unbalanced_factorization() -> Factorization:
    """The scalar factorization ½(xy − 1)²; its default init draws the unbalanced start
    x ~ U(2, 3), y ~ U(0.2, 0.5) from the run seed (a problem factory for the sweep runner)."""
    return Factorization()


def _unbalanced_start(problem: Problem, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 77])
    return np.array([rng.uniform(2, 3), rng.uniform(0.2, 0.5)])


unbalanced_factorization.default_init = _unbalanced_start  # type: ignore[attr-defined]


def _optimizers(eta: float, rho: float, alpha: float, steps: int, step_len: float,
                eig: dict[str, Any]) -> list[dict[str, Any]]:
    cos = {"lr_schedule": "cosine", "total_steps": steps}
    return [
        {"label": "gd", "preset": "gd", "lr": eta, **cos},
        {"label": "sam", "preset": "sam", "lr": eta, "rho": rho, **cos},
        {"label": "xsam", "preset": "xsam_paper", "lr": step_len, "rho": rho, "alpha": alpha,
         **eig, **cos},
        {"label": "nsam", "preset": "nsam", "lr": step_len, "rho": rho, **cos},
    ]


def _study(ctx: ExperimentContext, name: str, problem_spec: dict[str, Any], seeds: list[int], *,
           eta: float, rho: float, alpha: float, steps: int, loss_fraction: float,
           eig: dict[str, Any], eig_method: str) -> dict[str, Any]:
    problem = build_problem(problem_spec)
    starts = {s: initial_point(problem, {"kind": "default"}, s,
                               default_init=problem_factory(problem_spec["name"]).init)
              for s in seeds}
    adv = []
    for w0 in starts.values():
        g = problem.grad(w0)
        adv.append(float(np.linalg.norm(problem.grad(w0 + rho * g / np.linalg.norm(g)))))
    step_len = eta * float(np.mean(adv))
    spec = {"name": f"P-LMAX-{name}", "problem": problem_spec, "seeds": seeds, "steps": steps,
            "init": {"kind": "default"}, "iterate_every": 1,
            "optimizers": _optimizers(eta, rho, alpha, steps, step_len, eig)}
    per_seed: dict[int, dict[str, dict[str, float]]] = {s: {} for s in seeds}
    for rec, traj in sweep_runs(ctx, spec):
        seed, method = rec.config["seed"], rec.config["method"]
        w0 = traj.iterates[0]
        target = loss_fraction * float(problem.loss(w0))
        loss = traj.diagnostics["loss"]
        hit = np.flatnonzero(loss <= target)
        per_seed[seed][method] = {
            "lambda_at_matched_loss": (_lambda_max(problem, traj.iterates[hit[0]], eig_method)
                                       if hit.size else math.nan),
            "step_at_matched_loss": int(hit[0]) if hit.size else -1,
            "lambda_final": _lambda_max(problem, traj.iterates[-1], eig_method),
            "loss_final": float(loss[-1]) if loss.size else math.nan,
            "status": traj.status}
    rows = [per_seed[s] for s in seeds]
    cmp = {f"{a} - {b}": _compare(rows, a, b)
           for a, b in (("xsam", "sam"), ("sam", "gd"), ("xsam", "nsam"))}
    summary = {m: {k: float(np.nanmean([r[m][k] for r in rows]))
                   for k in ("lambda_at_matched_loss", "lambda_final", "loss_final")}
               for m in METHODS}
    reached = {m: int(sum(r[m]["step_at_matched_loss"] >= 0 for r in rows)) for m in METHODS}
    return {"problem": name, "verdict": _problem_verdict(cmp).value, "paired": cmp,
            "mean_per_method": summary, "runs_reaching_matched_loss": reached,
            "hyperparameters": {"problem": problem_spec, "eta": eta, "rho": rho,
                                "alpha": alpha, "steps": steps, "loss_fraction": loss_fraction,
                                "normalized_step_length": step_len, "eigvec": eig},
            "seeds": seeds, "per_seed": rows}


def _compare(per_seed: list[dict[str, dict[str, float]]], a: str, b: str) -> dict[str, Any]:
    x = np.array([r[a]["lambda_at_matched_loss"] for r in per_seed])
    y = np.array([r[b]["lambda_at_matched_loss"] for r in per_seed])
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 2:
        return {"pairs": int(ok.sum()), "mean": None, "interval95": [math.nan, math.nan]}
    iv = paired_difference(x[ok], y[ok])
    return {"pairs": int(ok.sum()), "mean": iv.estimate, "interval95": [iv.low, iv.high],
            "std": iv.std}


def _problem_verdict(cmp: dict[str, dict[str, Any]]) -> Verdict:
    xs, sg = cmp["xsam - sam"]["interval95"], cmp["sam - gd"]["interval95"]
    if any(math.isfinite(iv[0]) and iv[0] > 0 for iv in (xs, sg)):
        return Verdict.FAILS
    if all(math.isfinite(iv[1]) and iv[1] < 0 for iv in (xs, sg)):
        return Verdict.HOLDS
    return Verdict.INCONCLUSIVE


@claim("P-LMAX", "P", "X-SAM regularizes lambda_max more effectively than SAM (and SAM than GD), "
       "at matched training loss, on the factorization problem and small MLPs.",
       method="paired seeds; cosine schedule; lambda_max at the first iterate with loss <= "
              "fraction x initial loss; t intervals of per-seed differences",
       tolerance="95% t interval of paired differences must exclude 0", facts=("F4.4", "F7.6"),
       figure="lambda-max")
def check_p_lmax(ctx: ExperimentContext) -> Outcome:
    n_seeds = ctx.pick(4, 10, 20)
    seeds = [ctx.seed + s for s in range(n_seeds)]

    widths = ctx.pick((6, 12, 3), (8, 24, 4), (8, 32, 4))
    fact = _study(ctx, "factorization",
                  {"name": "xsam_theory.claims.p_lmax:unbalanced_factorization"}, seeds,
                  eta=0.05, rho=0.05, alpha=0.5, steps=ctx.pick(1500, 3000, 6000),
                  loss_fraction=1e-4, eig={"eigvec_source": "exact"}, eig_method="exact")
    net = _study(ctx, "mlp", {"name": "mlp_teacher_student", "widths": list(widths),
                              "n_samples": 128, "seed": 3000 + ctx.seed}, seeds,
                 eta=0.5, rho=0.05, alpha=0.5, steps=ctx.pick(150, 400, 800),
                 loss_fraction=0.3, eig={"eigvec_source": "lanczos", "refresh_every": 5},
                 eig_method="lanczos")
    verdicts = {fact["verdict"], net["verdict"]}
    verdict = (Verdict.FAILS if "fails" in verdicts else
               Verdict.HOLDS if verdicts == {"holds"} else Verdict.INCONCLUSIVE)

    def fmt(study: dict[str, Any]) -> str:
        m = study["paired"]["xsam - sam"]["mean"]
        return f"{study['problem']}: {study['verdict']} (X-SAM - SAM {m:+.3g})" if m is not None \
            else f"{study['problem']}: {study['verdict']}"

    key = "; ".join(fmt(s) for s in (fact, net))
    return Outcome(verdict, key, {"factorization": fact, "mlp": net})
