r"""The P-LMAX runs: λ_max of GD, SAM, X-SAM and its α = 0 ablation.

The methods' :math:`\lambda_{\max}` are compared at matched training loss and at the end of
equal budgets. Background: docs/theory.md#T-flat-bias (why SAM ends flatter on the
factorization), docs/theory.md#T-sam-lmax (where SAM's λ_max settles) and
docs/theory.md#T-confound (step length against correction).

Protocol (fixed before looking at the numbers):

* **Problems.** (a) ``factorization``: the scalar factorization :math:`\tfrac12(xy-1)^2` from
  unbalanced starts :math:`x \sim U(2, 3)`, :math:`y \sim U(0.2, 0.5)` (GD stops at a sharp
  minimizer, :math:`\lambda_{\max} = x^2 + y^2` on the manifold; SAM drifts towards the flattest
  one, :math:`|x| = |y| = 1`). (b) ``teacher_student``: a tanh MLP (6, 12, 3) on 128 samples of a
  seeded random teacher, cross-entropy. (c) ``digits``: a tanh MLP (64, 8, 10) on a 30 % training
  split (539 images) of scikit-learn's digits (:func:`xsam_theory.data.mlp_problem`),
  cross-entropy. Full batch everywhere. The data are drawn from the base seed; each
  evaluation seed draws one start that every method shares.
* **Methods** (:data:`METHODS`): GD, SAM (ρ), the X-SAM paper rule at α = 0.2 (the authors') and
  α = 0.5, and the α = 0 ablation ``nsam`` (normalized SAM). All use the same cosine schedule
  :math:`\eta_t = \eta_0 (1 + \cos(\pi t/T))/2` over the same ``T`` steps. X-SAM's ``v`` is the
  exact top eigenvector every step (factorization) or the Lanczos top eigenvector refreshed
  every few steps (the MLPs).
* **Step lengths.** GD and SAM take ``lr = η``. X-SAM's and the ablation's step is normalized, so
  their ``lr`` is a step *length* (F-NORM): they take ``lr = η · mean_seeds ‖g_adv(w_0)‖``, SAM's
  mean first step length (:func:`matched_step_length`). One rate per method, as a user sets it,
  computed from the starts alone (never from an outcome). X-SAM and the ablation share it, so
  the comparison that attributes an effect to the correction (X-SAM against α = 0) does not
  depend on this choice; the comparison with SAM does (it mixes the correction with the
  normalization).
* **Matched loss levels** (:func:`loss_levels`), per problem and seed, from that seed's runs.
  Losses are read at the stored iterates (every ``iterate_every`` steps; the grid on which
  λ_max can be measured). :math:`L_{\text{common}} = \max_m \min_t L_m(t)` over the methods
  that did not diverge is the deepest loss every such run reaches; :math:`L_{\text{best}} =
  \min_m \min_t L_m(t)` the best loss any run reaches. The **late** level is
  :math:`2 L_{\text{common}}` (within 2× of the loss the slowest method reaches); the **early**
  and **mid** levels are geometric between :math:`L_0` and the late level,
  :math:`L_k = L_0 (L_{\text{late}}/L_0)^{k/3}`, k = 1, 2. A run is measured at its first stored
  iterate with loss ≤ the level; a run that never gets there (it diverged first) is counted as
  unreached. **End**: the last iterate of the equal budget.
* **Divergence.** A run diverges when its loss becomes non-finite (the trajectory stops) or its
  final loss exceeds its initial loss. It is counted, never dropped silently.
* **Measurement.** :math:`\lambda_{\max}` of the full-batch Hessian at each measured iterate
  (dense ``eigh`` for the factorization, Lanczos otherwise).

:func:`lambda_max_evidence` returns the per-seed records; :func:`paired_log_ratios` pairs two
methods at one level. The claim :mod:`xsam_theory.claims.p_lmax` judges them; the
``lambda-max`` figure draws them.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsam_theory.data import mlp_problem
from xsam_theory.experiments.context import ExperimentContext, reusable
from xsam_theory.experiments.sweep import run_experiment_sweep, run_store
from xsam_theory.problems import Factorization, Problem
from xsam_theory.spectral import HessianOperator, top_eigenpair
from xsam_theory.sweeps import build_problem, initial_point
from xsam_theory.sweeps.executors import LocalExecutor
from xsam_theory.sweeps.registry import problem_factory

__all__ = [
    "COMPARISONS",
    "LEVELS",
    "METHODS",
    "PROBLEMS",
    "Setup",
    "diverged",
    "first_reaching",
    "lambda_max_evidence",
    "loss_levels",
    "matched_step_length",
    "paired_log_ratios",
    "setups",
    "unbalanced_factorization",
]

#: method label -> (preset, alpha); the X-SAM runs and the ablation differ in alpha only
METHODS: dict[str, tuple[str, float]] = {
    "gd": ("gd", 0.0),
    "sam": ("sam", 0.0),
    "xsam0.2": ("xsam_paper", 0.2),
    "xsam0.5": ("xsam_paper", 0.5),
    "nsam": ("xsam_paper", 0.0),
}
#: the matched training-loss levels, then the end of the budget
LEVELS = ("early", "mid", "late", "end")
#: comparison id -> (method a, method b): samples are ln(λ_a / λ_b)
COMPARISONS: dict[str, tuple[str, str]] = {
    "xsam0.2-vs-sam": ("xsam0.2", "sam"),
    "xsam0.5-vs-sam": ("xsam0.5", "sam"),
    "xsam0.2-vs-ablation": ("xsam0.2", "nsam"),
    "xsam0.5-vs-ablation": ("xsam0.5", "nsam"),
    "sam-vs-gd": ("sam", "gd"),
}
PROBLEMS = ("factorization", "teacher_student", "digits")
#: train / validation / test fractions of digits (only the training split is used here)
DIGITS_FRACTIONS = (0.3, 0.35, 0.35)
#: the late level as a multiple of the deepest loss every run reaches
LATE_FACTOR = 2.0


def unbalanced_factorization() -> Factorization:
    """The scalar factorization ½(xy − 1)² (a problem factory for the sweep runner).

    Its default init draws the unbalanced start x ~ U(2, 3), y ~ U(0.2, 0.5) from the run seed.
    On the manifold xy = 1 the sharpness is λ_max = x² + y² ≥ 2, with equality at the flattest
    minimizer ``|x| = |y| = 1`` (docs/theory.md#T-flat-bias).
    """
    return Factorization()


def _unbalanced_start(problem: Problem, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 77])
    return np.array([rng.uniform(2, 3), rng.uniform(0.2, 0.5)])


unbalanced_factorization.default_init = _unbalanced_start  # type: ignore[attr-defined]


@functools.lru_cache(maxsize=4)
def _digits_mlp(hidden: tuple[int, ...], seed: int) -> Problem:
    return mlp_problem("digits", hidden=hidden, seed=seed, options={"fractions": DIGITS_FRACTIONS})


def digits_mlp(hidden: Sequence[int] = (8,), seed: int = 0) -> Problem:
    """:func:`xsam_theory.data.mlp_problem` on digits with a 30 % training split.

    The split holds 539 images (:data:`DIGITS_FRACTIONS`). The problem is built once per process
    (every run of a sweep asks for the same problem; loading the data dominates a short run).
    """
    return _digits_mlp(tuple(int(h) for h in hidden), int(seed))


digits_mlp.default_init = mlp_problem.default_init  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Setup:
    """One problem of the study: its sweep problem table and its rates."""

    name: str
    problem: dict[str, Any]
    eta: float
    rho: float
    steps: int
    iterate_every: int
    eigvec: dict[str, Any] = field(default_factory=dict)
    measure: str = "lanczos"


def setups(ctx: ExperimentContext) -> list[Setup]:
    """The three problems at ``ctx``'s scale (see the module docstring)."""
    f_steps = ctx.pick(100, 400, 1500)
    t_steps = ctx.pick(40, 250, 600)
    d_steps = ctx.pick(40, 80, 200)
    refresh = ctx.pick(10, 5, 5)
    lanczos = {"eigvec_source": "lanczos", "refresh_every": refresh, "eigen_tol": 1e-8}
    return [
        Setup(
            "factorization",
            {"name": "xsam_theory.experiments.lambda_max:unbalanced_factorization"},
            eta=0.05,
            rho=0.05,
            steps=f_steps,
            iterate_every=1,
            eigvec={"eigvec_source": "exact"},
            measure="exact",
        ),
        Setup(
            "teacher_student",
            {
                "name": "mlp_teacher_student",
                "widths": [6, 12, 3],
                "n_samples": 128,
                "seed": 3000 + ctx.seed,
            },
            eta=0.5,
            rho=0.05,
            steps=t_steps,
            iterate_every=max(1, t_steps // 100),
            eigvec=lanczos,
        ),
        Setup(
            "digits",
            {
                "name": "xsam_theory.experiments.lambda_max:digits_mlp",
                "hidden": [8],
                "seed": ctx.seed,
            },
            eta=0.5,
            rho=0.05,
            steps=d_steps,
            iterate_every=max(1, d_steps // 50),
            eigvec=lanczos,
        ),
    ]


def matched_step_length(
    problem: Problem, starts: Sequence[np.ndarray], eta: float, rho: float
) -> float:
    r"""SAM's mean first step length over the starts, the ``lr`` of the normalized methods.

    It is :math:`\eta \cdot \operatorname{mean}_s \|\nabla L(w_0^s + \rho\,\hat g(w_0^s))\|`.
    """
    if not starts:
        raise ValueError("matched_step_length needs at least one start")
    lengths = []
    for w0 in starts:
        g = np.asarray(problem.grad(w0))
        lengths.append(float(np.linalg.norm(problem.grad(w0 + rho * g / np.linalg.norm(g)))))
    return eta * float(np.mean(lengths))


def _optimizers(setup: Setup, step_len: float) -> list[dict[str, Any]]:
    cos = {"lr_schedule": "cosine", "total_steps": setup.steps}
    out = []
    for label, (name, alpha) in METHODS.items():
        if name == "gd":
            out.append({"label": label, "preset": "gd", "lr": setup.eta, **cos})
        elif name == "sam":
            out.append({"label": label, "preset": "sam", "lr": setup.eta, "rho": setup.rho, **cos})
        else:
            # X-SAM and its ablation: identical tables but alpha (bit-for-bit twins at alpha=0)
            out.append(
                {
                    "label": label,
                    "preset": name,
                    "lr": step_len,
                    "rho": setup.rho,
                    "alpha": alpha,
                    **setup.eigvec,
                    **cos,
                }
            )
    return out


def loss_levels(l0: float, min_losses: Mapping[str, float]) -> dict[str, float]:
    r"""The matched levels of one problem and seed (see the module docstring).

    ``min_losses``: each non-diverged method's lowest loss at a stored iterate.
    :math:`L_{\text{late}} = 2\max_m \min_t L_m(t)`, :math:`L_{\text{early}} =
    L_0^{2/3} L_{\text{late}}^{1/3}`, :math:`L_{\text{mid}} = L_0^{1/3} L_{\text{late}}^{2/3}`;
    a late level at or above :math:`L_0` (no method got below half the start) collapses all three
    onto :math:`L_0`'s neighbourhood and is returned as it is.
    """
    if not (math.isfinite(l0) and l0 > 0):
        raise ValueError(f"loss_levels: the initial loss must be finite and > 0, got {l0!r}")
    finite = [v for v in min_losses.values() if math.isfinite(v)]
    if not finite:
        raise ValueError("loss_levels: no method has a finite lowest loss (all diverged)")
    late = LATE_FACTOR * max(max(finite), 0.0)
    if late <= 0.0:
        # every run reached exactly zero loss: the levels are the start and zero
        return {"early": l0 / 3.0, "mid": l0 / 9.0, "late": 0.0}
    if late >= l0:
        return {"early": late, "mid": late, "late": late}
    ratio = late / l0
    return {"early": l0 * ratio ** (1 / 3), "mid": l0 * ratio ** (2 / 3), "late": late}


def first_reaching(losses: np.ndarray, level: float) -> int:
    """Index of the first entry of ``losses`` that is ≤ ``level`` (``-1``: none)."""
    hit = np.flatnonzero(np.asarray(losses) <= level)
    return int(hit[0]) if hit.size else -1


def diverged(status: str, losses: np.ndarray) -> bool:
    """A run diverged if it stopped on a non-finite value or ended above its initial loss.

    Diverged runs are counted, not averaged (docs/claims.md#C-p-protocol).
    """
    losses = np.asarray(losses, dtype=float)
    return (
        status != "completed"
        or losses.size == 0
        or not np.isfinite(losses[-1])
        or losses[-1] > losses[0]
    )


#: relative tolerance of the Lanczos measurement (the compared effects are >= 1e-3 relative)
MEASURE_TOL = 1e-7


def _lambda_max(problem: Problem, w: np.ndarray, method: str) -> float:
    """Top Hessian eigenvalue at ``w`` (NaN if the eigensolver fails at a huge point)."""
    try:
        return float(
            top_eigenpair(
                HessianOperator.from_problem(problem, w), method, tol=MEASURE_TOL
            ).eigenvalue
        )
    except (ValueError, FloatingPointError, ArithmeticError):
        return math.nan


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with the sweeps extra
        yield
        return
    with threadpool_limits(limits=1):
        yield


def _stored_losses(problem: Problem, traj: Any) -> np.ndarray:
    """Training loss at each stored iterate.

    The per-step diagnostic where the step exists, else evaluated.
    """
    steps = np.asarray(traj.iterate_steps, dtype=int)
    diag = np.asarray(traj.diagnostics.get("loss", ()), dtype=float)
    out = np.empty(steps.size)
    for k, t in enumerate(steps):
        if t < diag.size:
            out[k] = diag[t]
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                out[k] = float(problem.loss(traj.iterates[k]))
    return out


def _study(
    ctx: ExperimentContext, setup: Setup, seeds: list[int], executor: LocalExecutor, store: Path
) -> dict[str, Any]:
    problem = build_problem(setup.problem)
    init = problem_factory(setup.problem["name"]).init
    starts = {s: initial_point(problem, {"kind": "default"}, s, default_init=init) for s in seeds}
    step_len = matched_step_length(problem, list(starts.values()), setup.eta, setup.rho)
    spec = {
        "name": f"P-LMAX-{setup.name}-{ctx.scale}-seed{ctx.seed}",
        "problem": setup.problem,
        "seeds": seeds,
        "steps": setup.steps,
        "init": {"kind": "default"},
        "iterate_every": setup.iterate_every,
        "optimizers": _optimizers(setup, step_len),
    }
    result = run_experiment_sweep(spec, store, executor=executor, progress=ctx.progress)
    if not result.ok:
        bad = [r for r in result.records if r.status != "done"]
        raise RuntimeError(f"{len(bad)} run(s) of {spec['name']} failed: {bad[0].message}")
    runs: dict[int, dict[str, Any]] = {s: {} for s in seeds}
    for rec in result.records:
        traj = result.trajectory(rec)
        runs[rec.config["seed"]][rec.config["method"]] = traj
    records = []
    with _one_blas_thread():
        for s in seeds:
            records.append(_measure_seed(problem, setup, s, runs[s]))
    return {
        "problem": setup.name,
        "problem_spec": setup.problem,
        "eta": setup.eta,
        "rho": setup.rho,
        "steps": setup.steps,
        "iterate_every": setup.iterate_every,
        "normalized_step_length": step_len,
        "eigvec": setup.eigvec,
        "measure": setup.measure,
        "seeds": seeds,
        "per_seed": records,
    }


def _measure_seed(
    problem: Problem, setup: Setup, seed: int, trajs: Mapping[str, Any]
) -> dict[str, Any]:
    losses = {m: _stored_losses(problem, trajs[m]) for m in METHODS}
    div = {m: diverged(trajs[m].status, losses[m]) for m in METHODS}
    l0 = float(losses["gd"][0])
    mins = {
        m: float(np.nanmin(losses[m])) if np.any(np.isfinite(losses[m])) else math.nan
        for m in METHODS
    }
    levels = loss_levels(l0, {m: v for m, v in mins.items() if not div[m]} or mins)
    methods = {}
    for m in METHODS:
        traj, loss = trajs[m], losses[m]
        steps = np.asarray(traj.iterate_steps, dtype=int)
        row: dict[str, Any] = {
            "status": traj.status,
            "diverged": bool(div[m]),
            "min_loss": mins[m],
            "final_loss": float(loss[-1]),
            "final_step": int(steps[-1]),
            "lambda": {},
            "step": {},
            "loss_at": {},
        }
        measured: dict[int, float] = {}
        for level in LEVELS:
            if level == "end":
                k = len(loss) - 1 if traj.status == "completed" else -1
            else:
                k = first_reaching(loss, levels[level])
            if k < 0:
                row["lambda"][level], row["step"][level], row["loss_at"][level] = (
                    math.nan,
                    -1,
                    math.nan,
                )
                continue
            if k not in measured:
                measured[k] = _lambda_max(problem, traj.iterates[k], setup.measure)
            row["lambda"][level] = measured[k]
            row["step"][level] = int(steps[k])
            row["loss_at"][level] = float(loss[k])
        methods[m] = row
    finite_mins = [v for v in mins.values() if math.isfinite(v)]
    return {
        "seed": seed,
        "initial_loss": l0,
        "levels": levels,
        "best_loss": min(finite_mins) if finite_mins else math.nan,
        "common_loss": levels["late"] / LATE_FACTOR,
        "methods": methods,
    }


def paired_log_ratios(
    per_seed: Sequence[Mapping[str, Any]], a: str, b: str, level: str
) -> dict[str, Any]:
    r"""Per-seed :math:`\ln(\lambda_a/\lambda_b)` at ``level``, and what was left out.

    Taken over the seeds where both runs have a finite positive :math:`\lambda_{\max}` there.

    Returns ``{"samples", "seeds", "unreached": {a: n, b: n}, "nonpositive": n,
    "diverged": {a: n, b: n}}``: ``unreached`` counts runs never measured at the level (they
    diverged first, or, at ``end``, stopped early), ``nonpositive`` pairs with a λ ≤ 0 (no
    logarithm), ``diverged`` runs that diverged anywhere (over all seeds).
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    samples, seeds = [], []
    unreached = {a: 0, b: 0}
    nonpositive = 0
    div = {a: 0, b: 0}
    for rec in per_seed:
        lam = {}
        for m in (a, b):
            row = rec["methods"][m]
            div[m] += bool(row["diverged"])
            x = row["lambda"][level]
            if x is None or not math.isfinite(x):
                unreached[m] += 1
            lam[m] = x
        la, lb = lam[a], lam[b]
        if la is None or lb is None or not (math.isfinite(la) and math.isfinite(lb)):
            continue
        if la <= 0 or lb <= 0:
            nonpositive += 1
            continue
        samples.append(math.log(la / lb))
        seeds.append(rec["seed"])
    return {
        "samples": samples,
        "seeds": seeds,
        "unreached": unreached,
        "nonpositive": nonpositive,
        "diverged": div,
    }


@reusable
def lambda_max_evidence(
    ctx: ExperimentContext, problems: Sequence[str] = PROBLEMS
) -> dict[str, Any]:
    """Run the study at ``ctx``'s scale.

    Returns ``{"methods", "levels", "seeds", "problems": {name: study}}``, each study with its
    rates and per-seed records (levels, per-method λ_max, step and loss at each level,
    divergence). Runs go through the sweep runner with ``ctx.workers`` local processes (``1``: in
    this process); ``ctx.out_dir`` keeps them (a rerun resumes).
    """
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        raise ValueError(f"problems must be among {PROBLEMS}, got {unknown}")
    n_seeds = ctx.pick(3, 10, 20)
    seeds = [ctx.seed + s for s in range(n_seeds)]
    chosen = [s for s in setups(ctx) if s.name in problems]
    with contextlib.ExitStack() as stack:
        store, _ = run_store(ctx, stack)
        executor = stack.enter_context(contextlib.closing(LocalExecutor(ctx.workers)))
        studies = {s.name: _study(ctx, s, seeds, executor, store) for s in chosen}
    return {
        "methods": {m: {"preset": p, "alpha": a} for m, (p, a) in METHODS.items()},
        "levels": list(LEVELS),
        "comparisons": {k: list(v) for k, v in COMPARISONS.items()},
        "late_factor": LATE_FACTOR,
        "seeds": seeds,
        "problems": studies,
    }
