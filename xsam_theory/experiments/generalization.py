r"""The runs of the generalization study (claim P-GEN).

Every method is trained under one schedule on each dataset, its learning rate tuned on seeds
the comparison never sees, then evaluated on fresh seeds at the chosen rate and at the rates
next to it. Measurements only; the claim :mod:`xsam_theory.claims.p_gen` judges them and the
``generalization`` figure draws them. Background: docs/theory.md#T-xsam-setup (the paper's
setting), docs/algorithms.md#A-schedule (the reference schedule of ``v``) and
docs/claims.md#C-p-protocol (tuning seeds, ablation, divergence).

Protocol (fixed before looking at the numbers):

* **Datasets** (:mod:`xsam_theory.data`). ``teacher_student``: :math:`x\sim\mathcal N(0, I_6)`,
  labels from a seeded tanh teacher ``(6, 8, 3)``, 1,024 training, 512 validation and 2,048 test
  samples, 20 % label noise on the training and validation labels (a uniformly drawn other
  class), clean test labels; sized so that the training loss of the best method reaches the
  noise floor :math:`H = -(1-p)\ln(1-p) - p\ln\frac{p}{K-1}` (0.639 nats), which is recorded
  as a check. ``digits``: scikit-learn's ``load_digits``. ``make_classification``:
  scikit-learn's generator (1,500 rows, 10 features of which 5 informative and 2 redundant, 3
  classes, ``class_sep`` 1.0, ``flip_y`` 0.1: noisy labels in every split). Real and generated
  data get a stratified 60/20/20 split. Inputs are standardized with training-split statistics.
  Each seed draws its own dataset (teacher and inputs, or the split), initialization (PyTorch
  default), minibatch order and first power-iteration vector, shared by every method (paired
  design). Datasets registered with :func:`xsam_theory.data.register_dataset` or named as
  ``module:function`` (``ExperimentContext.datasets``) replace the defaults. ``quick`` runs
  teacher–student only (smaller: 512 / 256 / 1,024 samples, hidden width 16), which needs no
  scikit-learn; without scikit-learn the other defaults are skipped, and said so.
* **Model**: tanh MLP with one hidden layer of 32 units, softmax cross-entropy, float64.
* **Training**: the authors' base optimizer — SGD with momentum 0.9, weight decay 5e-4, cosine
  learning-rate decay over the run — on ``drop_last`` minibatches of ``n_train // 8`` (8 steps
  per epoch on every dataset), 20 epochs (teacher–student 30; quick: 10). ρ = 0.05 for every
  SAM variant. The eigenvector comes from the authors' reference schedule
  (:data:`~xsam_theory.optimizers.REFERENCE_OPTIONS`): 5 warm-started power steps on the
  minibatch Hessian at epoch step 5, plain SAM until the first ``v``; Eigen-SAM's reference
  period (100) exceeds the 8-step epoch, so it uses X-SAM's period 5 (else it would never
  compute ``v``).
* **Methods**: SGD, SAM, Eigen-SAM (α = 0.2), X-SAM paper rule at the authors' α = 0.2 and at
  α = 0.5, X-SAM symmetric rule (α = 0.2), and the α = 0 ablation ``nsam`` (the paper rule at
  α = 0 under the same schedule: SAM until the first ``v``, normalized SAM after). X-SAM's step
  is :math:`\hat g_{adv} - \alpha|\langle\hat g_{adv}, v\rangle| v`, so X-SAM − nsam is the
  effect of the eigenvector correction and nsam − SAM that of the gradient normalization.
  α = 0.5 is the largest α well inside the range (0, 1) in which the paper's argument
  applies (α ≥ 1 is where the correction can freeze or reverse the step along ``v``); it gives
  the correction 2.5 times the authors' weight, a chance to show an effect that α = 0.2 may be
  too small to produce. The median :math:`|\langle\hat g_{adv}, v\rangle|` of each run is
  recorded: the correction moves the unit step by at most α times it.
* **Learning rate**: each method's rate is the one with the lowest mean *validation* loss over
  the tuning seeds (a diverged run counts as infinite loss; ties go to the smaller rate), which
  are disjoint from the evaluation seeds (fresh data draws and initializations; for digits and
  user data the rows are one pool, so what is fresh is the split, not the rows). The grid is
  the half-decade ladder :data:`LADDER`; every method starts from the same three rates
  :data:`START_RATES`, and while a method's choice lies at an edge of its grid, the next ladder
  rate beyond that edge is added (recorded in ``tuning.extended``), so that the choice is
  bracketed by rates that were tried. The test split is never read for selection.
* **Plateau**: training is long enough when the epoch-mean minibatch training loss fell, over the
  last quarter of training, by at most :data:`PLATEAU_FRACTION` (2 %) of its fall over the whole
  run (``E[3K/4] − E[K] ≤ 0.02·(E[1] − E[K])``, ``E[k]`` the mean over epoch ``k``). Recorded per
  evaluation run (``plateau_met``); runs that miss it stay in.
* **Evaluation**: every method at its chosen rate on the evaluation seeds; at ``default`` and
  ``full`` also every method of a comparison at the ladder rates next to its chosen one (the
  rate-sensitivity table). Measured at the end: training, validation and test loss and accuracy
  and λ_max of the full training-loss Hessian (Lanczos, at the chosen rates only). A diverged
  run has no metrics and is counted.
* **Comparisons** (:data:`COMPARISONS`): per dataset, per-seed paired differences of test loss
  and accuracy, X-SAM − SAM, X-SAM − ablation, X-SAM − SGD and X-SAM(α = 0.5) − ablation, at the
  chosen rates and at every pairing of neighbouring rates.
* **Scales**: ``quick`` 3 evaluation seeds and 1 tuning seed, no neighbouring rates;
  ``default`` 10 and 2; ``full`` 30 and 4.
* **Changed after a first run** (nothing else was): teacher–student's epochs went from 20 to
  30, because at 20 no teacher–student run met the plateau criterion; λ_max was dropped from
  the neighbouring-rate runs (budget). The first run's per-seed differences had been seen
  (X-SAM − SAM test loss on teacher–student was positive on 8 of 10 seeds at 20 epochs, on 10
  of 10 at 30); the change answers the plateau criterion, not a verdict.
* **Results are kept**: every run goes through :func:`~xsam_theory.sweeps.run_sweep` into a
  SQLite store (``OUT/p_gen/runs.sqlite`` under ``xsam-theory verify --out OUT``), so an
  interrupted study resumes. ``ctx.workers`` worker processes (``1``: in this process); a user
  loader that worker processes cannot import by name runs in this process, and the evidence
  says so.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from xsam_theory import data
from xsam_theory.experiments.context import ExperimentContext, reusable
from xsam_theory.experiments.sweep import run_experiment_sweep, run_store
from xsam_theory.optimizers import REFERENCE_OPTIONS
from xsam_theory.stats import paired_difference, t_interval

__all__ = [
    "COMPARISONS",
    "LADDER",
    "METHODS",
    "PLATEAU_FRACTION",
    "START_RATES",
    "DataPlan",
    "Plan",
    "generalization_evidence",
    "ladder_neighbours",
    "noise_floor",
    "plan",
    "plateau",
    "select_rate",
]


@dataclass(frozen=True)
class Method:
    """A method of the study: its optimizer preset and α (``None``: the preset has none)."""

    preset: str
    alpha: float | None = None
    eigenvector: bool = False


#: method label -> how it is built
METHODS: dict[str, Method] = {
    "sgd": Method("gd"),
    "sam": Method("sam"),
    "eigen_sam": Method("eigen_sam", 0.2, True),
    "xsam_paper": Method("xsam_paper", 0.2, True),
    "xsam_paper_alpha0.5": Method("xsam_paper", 0.5, True),
    "xsam_symmetric": Method("xsam_symmetric", 0.2, True),
    "nsam": Method("nsam", 0.0, True),
}
#: (id, a, b): the paired differences a − b the claim judges, per dataset
COMPARISONS = (
    ("xsam-vs-sam", "xsam_paper", "sam"),
    ("xsam-vs-ablation", "xsam_paper", "nsam"),
    ("xsam-vs-sgd", "xsam_paper", "sgd"),
    ("xsam-alpha0.5-vs-ablation", "xsam_paper_alpha0.5", "nsam"),
)
#: further paired differences reported (not judged): normalization, rules, Eigen-SAM
REPORTED_PAIRS = (
    ("nsam", "sam"),
    ("sam", "sgd"),
    ("xsam_symmetric", "sam"),
    ("xsam_paper", "xsam_symmetric"),
    ("eigen_sam", "sam"),
    ("xsam_paper_alpha0.5", "xsam_paper"),
)
RHO = 0.05
BASE_OPTIONS = {"momentum": 0.9, "weight_decay": 5e-4, "lr_schedule": "cosine"}
EIGEN_OPTIONS = {k: getattr(v, "value", v) for k, v in REFERENCE_OPTIONS["xsam"].items()}
#: the learning-rate ladder (half decades) and the three rates every method starts from
LADDER = (1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
START_RATES = (0.03, 0.1, 0.3)
STEPS_PER_EPOCH = 8
#: teacher–student needs more epochs than the others to reach its noise floor and plateau
TEACHER_STUDENT_EPOCHS = 30
PLATEAU_FRACTION = 0.02
TUNING_SEED_OFFSET = 10_000
#: evaluation results (column -> sweep result expression)
EVAL_RESULTS = {
    "train_loss": "final_loss",
    "train_accuracy": "final_accuracy",
    "val_loss": "final_loss@val",
    "val_accuracy": "final_accuracy@val",
    "test_loss": "final_loss@test",
    "test_accuracy": "final_accuracy@test",
    "lambda_max": "spectral.lambda_max:last",
}
#: tuning results: no test metric is computed for selection
TUNE_RESULTS = {
    "train_loss": "final_loss",
    "val_loss": "final_loss@val",
    "val_accuracy": "final_accuracy@val",
}
METRICS = tuple(EVAL_RESULTS)


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataPlan:
    """One dataset of the study.

    Attributes:
        name: the dataset's name in the evidence and the subclaim ids.
        dataset: what :func:`xsam_theory.data.load_dataset` is called with.
        options: its options (for a user dataset: ``loader`` path and ``digest``).
        hidden: hidden widths of the MLP.
        epochs: training epochs (of :data:`STEPS_PER_EPOCH` steps).
        n_train: training rows (the minibatch is ``n_train // STEPS_PER_EPOCH``).
        in_process: run in this process (a loader workers cannot import).
        noise_floor: the training loss of the Bayes classifier under the label noise, where known.
    """

    name: str
    dataset: str
    options: dict[str, Any]
    hidden: tuple[int, ...]
    epochs: int
    n_train: int
    in_process: bool = False
    noise_floor: float | None = None

    @property
    def batch_size(self) -> int:
        """Minibatch size: ``n_train // STEPS_PER_EPOCH``."""
        return self.n_train // STEPS_PER_EPOCH

    @property
    def steps(self) -> int:
        """Training steps: ``epochs * STEPS_PER_EPOCH``."""
        return self.epochs * STEPS_PER_EPOCH

    def problem(self) -> dict[str, Any]:
        """The sweep runner's problem table: an MLP of widths ``hidden`` on ``dataset``."""
        return {
            "name": "xsam_theory.data:mlp_problem",
            "dataset": self.dataset,
            "hidden": list(self.hidden),
            "options": dict(self.options),
        }

    def setup(self) -> dict[str, Any]:
        """The dataset's setup as recorded in the evidence."""
        return {
            "dataset": self.dataset,
            "options": self.options,
            "hidden": list(self.hidden),
            "epochs": self.epochs,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "n_train": self.n_train,
            "in_process": self.in_process,
            "noise_floor": self.noise_floor,
        }


@dataclass(frozen=True)
class Plan:
    """The study at one scale."""

    scale: str
    datasets: tuple[DataPlan, ...]
    eval_seeds: tuple[int, ...]
    tuning_seeds: tuple[int, ...]
    neighbours: bool
    skipped: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def noise_floor(label_noise: float, n_classes: int) -> float:
    r"""Expected cross-entropy of the Bayes classifier under uniform label noise ``p``.

    Each label is replaced with probability ``p`` by a uniform other class; the loss is
    :math:`-(1-p)\ln(1-p) - p\ln\frac{p}{K-1}` (0 for ``p = 0``).
    """
    p, k = float(label_noise), int(n_classes)
    if not 0.0 <= p < 1.0 or k < 2:
        raise ValueError(f"need 0 <= label_noise < 1 and n_classes >= 2, got {p}, {k}")
    return 0.0 if p == 0 else float(-(1 - p) * math.log(1 - p) - p * math.log(p / (k - 1)))


_TS = {"d_in": 6, "n_classes": 3, "teacher_hidden": 8, "label_noise": 0.2}
_MC = {
    "n_samples": 1500,
    "n_features": 10,
    "n_informative": 5,
    "n_redundant": 2,
    "n_classes": 3,
    "class_sep": 1.0,
    "flip_y": 0.1,
}
SPLIT = [0.6, 0.2, 0.2]


def _builtin_plan(name: str, quick: bool, epochs: int) -> DataPlan:
    if name == "teacher_student":
        sizes = (
            {"n_train": 512, "n_val": 256, "n_test": 1024}
            if quick
            else {"n_train": 1024, "n_val": 512, "n_test": 2048}
        )
        return DataPlan(
            name,
            name,
            {**_TS, **sizes},
            (16,) if quick else (32,),
            epochs if quick else TEACHER_STUDENT_EPOCHS,
            sizes["n_train"],
            noise_floor=noise_floor(_TS["label_noise"], _TS["n_classes"]),
        )
    if name == "digits":
        options: dict[str, Any] = {"fractions": SPLIT, "label_noise": 0.0}
    else:
        options = {**_MC, "fractions": SPLIT}
    n_train = len(data.load_dataset(name, seed=0, **options).train)
    return DataPlan(name, name, options, (32,), epochs, n_train)


def _user_plan(spec: str, epochs: int) -> DataPlan:
    name, loader = data.resolve_dataset(spec)
    X, y, _ = data._user_raw(name, loader)
    options = {"fractions": SPLIT, "loader": loader, "digest": data.dataset_digest(X, y)}
    ds = data.load_dataset(name, seed=0, **options)
    if len(ds.train) < 2 * STEPS_PER_EPOCH:
        raise ValueError(
            f"dataset {name!r}: {len(ds.train)} training rows; the study needs at "
            f"least {2 * STEPS_PER_EPOCH} ({STEPS_PER_EPOCH} minibatches of 2)"
        )
    return DataPlan(name, name, options, (32,), epochs, len(ds.train), in_process=loader is None)


def plan(ctx: ExperimentContext) -> Plan:
    """The protocol's settings at ``ctx.scale`` for ``ctx.datasets`` (``None``: the defaults)."""
    quick = ctx.scale == "quick"
    epochs = ctx.pick(10, 20, 20)
    skipped: dict[str, str] = {}
    notes: list[str] = []
    wanted = (
        list(ctx.datasets)
        if ctx.datasets is not None
        else ctx.pick(
            ["teacher_student"],
            ["teacher_student", "digits", "make_classification"],
            ["teacher_student", "digits", "make_classification"],
        )
    )
    plans: list[DataPlan] = []
    for spec in wanted:
        if spec in data.DATASETS:
            if spec != "teacher_student" and not data.has_digits():
                skipped[spec] = f"scikit-learn is not installed ({data.DIGITS_EXTRA})"
                continue
            plans.append(_builtin_plan(spec, quick, epochs))
        else:
            dp = _user_plan(spec, epochs)
            if dp.in_process:
                notes.append(
                    f"{dp.name}: its loader cannot be imported by name in a worker "
                    "process (a lambda, a local function or one in __main__), so its "
                    "runs ran in this process, one at a time"
                )
            plans.append(dp)
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise ValueError(f"two datasets of the study share a name: {names}")
    n_eval, n_tune = ctx.pick(3, 10, 30), ctx.pick(1, 2, 4)
    return Plan(
        ctx.scale,
        tuple(plans),
        tuple(ctx.seed + i for i in range(n_eval)),
        tuple(ctx.seed + TUNING_SEED_OFFSET + i for i in range(n_tune)),
        neighbours=not quick,
        skipped=skipped,
        notes=tuple(notes),
    )


# -- pure helpers ------------------------------------------------------------------------------


def select_rate(mean_val: dict[float, float]) -> float:
    """The rate with the lowest mean validation loss.

    Diverged runs count as ``inf``; ties go to the smaller rate. ``ValueError`` if every rate
    diverged.
    """
    finite = {lr: v for lr, v in mean_val.items() if math.isfinite(v)}
    if not finite:
        raise ValueError("every tuning run diverged at every rate tried")
    return min(finite, key=lambda lr: (finite[lr], lr))


def ladder_neighbours(lr: float) -> tuple[float | None, float | None]:
    """The ladder rates just below and above ``lr`` (``None`` beyond the ladder's ends)."""
    k = LADDER.index(lr)
    return (LADDER[k - 1] if k > 0 else None, LADDER[k + 1] if k + 1 < len(LADDER) else None)


def plateau(losses: np.ndarray, epochs: int) -> dict[str, Any]:
    """The plateau criterion on per-step minibatch losses.

    With epoch means ``E[1..K]``, ``drop = E[ceil(3K/4)] − E[K]`` and ``total = E[1] − E[K]``,
    the criterion is met if ``drop ≤ PLATEAU_FRACTION · max(total, 0)`` (a run that did not fall
    at all has not plateaued unless it did not fall in the last quarter either).
    """
    x = np.asarray(losses, dtype=float)
    if x.size < epochs * STEPS_PER_EPOCH or not np.all(np.isfinite(x)):
        return {"met": False, "drop": math.nan, "total": math.nan}
    e = x[: epochs * STEPS_PER_EPOCH].reshape(epochs, STEPS_PER_EPOCH).mean(axis=1)
    q = max(0, math.ceil(0.75 * epochs) - 1)
    drop, total = float(e[q] - e[-1]), float(e[0] - e[-1])
    return {"met": bool(drop <= PLATEAU_FRACTION * max(total, 0.0)), "drop": drop, "total": total}


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _summary(x: Sequence[float]) -> dict[str, Any]:
    a = np.asarray(x, dtype=float)
    a = a[np.isfinite(a)]
    out: dict[str, Any] = {
        "n": int(a.size),
        "mean": float(a.mean()) if a.size else math.nan,
        "sd": float(a.std(ddof=1)) if a.size > 1 else math.nan,
        "ci95": [math.nan, math.nan],
    }
    if a.size > 1:
        iv = t_interval(a)
        out["ci95"] = [iv.low, iv.high]
    return out


def _paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    out: dict[str, Any] = {"n": int(ok.sum()), "mean": math.nan, "ci95": [math.nan, math.nan]}
    if ok.sum() >= 2:
        iv = paired_difference(x[ok], y[ok])
        out.update(mean=iv.estimate, ci95=[iv.low, iv.high])
    return out


def _key(lr: float) -> str:
    return f"{lr:g}"


# -- running -----------------------------------------------------------------------------------


def _entry(label: str, lrs: Sequence[float], steps: int) -> dict[str, Any]:
    m = METHODS[label]
    entry: dict[str, Any] = {
        "preset": m.preset,
        "label": label,
        **BASE_OPTIONS,
        "total_steps": steps,
        "grid": {"lr": [float(x) for x in lrs]},
    }
    if m.preset != "gd":
        entry["rho"] = RHO
    if m.alpha is not None and m.preset != "nsam":
        entry["alpha"] = m.alpha
    if m.eigenvector:
        entry.update(EIGEN_OPTIONS)
    return entry


@dataclass
class _Runner:
    """Runs sweeps into one store with one executor per kind (pool / in-process)."""

    store: Path
    pool: Any
    local: Any
    progress: IO[str] | None
    counts: dict[str, float] = field(
        default_factory=lambda: {"runs": 0, "ran": 0, "run_seconds": 0.0}
    )

    def run(
        self,
        phase: str,
        dp: DataPlan,
        runs: dict[str, Sequence[float]],
        seeds: Sequence[int],
        results: dict[str, str],
        monitors: list[dict[str, Any]],
        trajectories: bool,
    ) -> list[tuple[Any, Any]]:
        """Every (method, rate) in ``runs`` on every seed: ``[(RunRecord, Trajectory|None)]``."""
        from xsam_theory.sweeps import SweepSpec, SweepStore

        entries = [_entry(m, lrs, dp.steps) for m, lrs in runs.items() if lrs]
        if not entries:
            return []
        spec = SweepSpec(
            name=f"p_gen-{dp.name}-{phase}",
            problem=dp.problem(),
            optimizers=entries,
            seeds=list(seeds),
            steps=dp.steps,
            batch_size=dp.batch_size,
            iterate_every=None,
            monitors=monitors,
            results=results,
            store_trajectory=trajectories,
            problem_seed_param="seed",
            description=f"P-GEN {phase} runs on {dp.name}",
        )
        executor = self.local if dp.in_process else self.pool
        result = run_experiment_sweep(
            spec, self.store, executor=executor, progress=self.progress or False
        )
        if result.failed:
            first = result.failed[0]
            raise RuntimeError(
                f"{len(result.failed)} P-GEN run(s) on {dp.name} failed, e.g. "
                f"{first.method} seed {first.seed}: "
                f"{first.message.strip().splitlines()[-1:]}"
            )
        self.counts["runs"] += len(result.records)
        self.counts["ran"] += result.ran
        self.counts["run_seconds"] += sum(r.wall_s or 0.0 for r in result.records)
        if not trajectories:
            return [(r, None) for r in result.records]
        with SweepStore(self.store, create=False) as st:
            return [
                (r, st.trajectory(r) if r.outcome == "completed" else None) for r in result.records
            ]


def _tune(runner: _Runner, dp: DataPlan, pl: Plan) -> dict[str, Any]:
    """Tuning rounds: start at :data:`START_RATES`, extend the grid past an edge that is chosen.

    The next ladder rate beyond an edge is added while a method's choice lies on it.
    """
    grid = {m: list(START_RATES) for m in METHODS}
    extended: dict[str, list[float]] = {m: [] for m in METHODS}
    per_seed: dict[str, dict[float, list[float]]] = {m: {} for m in METHODS}
    todo = {m: list(START_RATES) for m in METHODS}
    rounds = 0
    while any(todo.values()):
        rounds += 1
        for r, _ in runner.run("tune", dp, todo, pl.tuning_seeds, TUNE_RESULTS, [], False):
            v = r.results.get("val_loss", math.nan)
            ok = r.outcome == "completed" and _finite(v)
            lr = float(r.config["optimizer"]["lr"])
            per_seed[r.method].setdefault(lr, []).append(float(v) if ok else math.inf)
        todo = {}
        for m in METHODS:
            means = {lr: float(np.mean(v)) for lr, v in per_seed[m].items()}
            best = select_rate(means)
            lo, hi = min(grid[m]), max(grid[m])
            step = None
            if best == lo and lo != LADDER[0]:
                step = LADDER[LADDER.index(lo) - 1]
            elif best == hi and hi != LADDER[-1] and math.isfinite(means[hi]):
                step = LADDER[LADDER.index(hi) + 1]
            todo[m] = [step] if step is not None else []
            if step is not None:
                grid[m].append(step)
                extended[m].append(step)
    mean_val = {m: {lr: float(np.mean(v)) for lr, v in per_seed[m].items()} for m in METHODS}
    selected = {m: select_rate(mean_val[m]) for m in METHODS}
    return {
        "start_rates": list(START_RATES),
        "grid": {m: sorted(grid[m]) for m in METHODS},
        "extended": extended,
        "rounds": rounds,
        "val_loss_per_seed": {
            m: {
                _key(lr): [v if math.isfinite(v) else "diverged" for v in vs]
                for lr, vs in sorted(per_seed[m].items())
            }
            for m in METHODS
        },
        "mean_val_loss": {
            m: {
                _key(lr): (v if math.isfinite(v) else "diverged")
                for lr, v in sorted(mean_val[m].items())
            }
            for m in METHODS
        },
        "selected_lr": selected,
        "at_grid_edge": {m: selected[m] in (min(grid[m]), max(grid[m])) for m in METHODS},
    }


def _median_abs_c(traj: Any) -> float:
    c = np.asarray(traj.diagnostics.get("c", ()), dtype=float)
    c = np.abs(c[np.isfinite(c)])
    return float(np.median(c)) if c.size else math.nan


def _evaluate(
    runner: _Runner, dp: DataPlan, pl: Plan, selected: dict[str, float]
) -> dict[str, dict[float, dict[str, list[Any]]]]:
    """Evaluate every method at its chosen rate, and optionally at the neighbouring rates.

    With ``pl.neighbours``, every method of a comparison is also run at the ladder rates next to
    its chosen one (without λ_max). All runs use the evaluation seeds. Returns
    ``{method: {lr: {column: [per seed]}}}``.
    """
    compared = {m for _, a, b in COMPARISONS for m in (a, b)}
    at_selected = {m: [selected[m]] for m in METHODS}
    neighbours: dict[str, list[float]] = {}
    if pl.neighbours:
        neighbours = {
            m: [x for x in ladder_neighbours(selected[m]) if x is not None]
            for m in METHODS
            if m in compared
        }
    monitors = [{"type": "spectral", "every": dp.steps, "method": "lanczos", "tol": 1e-4}]
    results_without = {k: v for k, v in EVAL_RESULTS.items() if k != "lambda_max"}
    index = {s: k for k, s in enumerate(pl.eval_seeds)}
    n = len(pl.eval_seeds)
    columns = (*METRICS, "diverged", "plateau_met", "plateau_drop", "plateau_total", "median_abs_c")
    table: dict[str, dict[float, dict[str, list[Any]]]] = {m: {} for m in METHODS}
    for runs, results, mons, phase in (
        (at_selected, EVAL_RESULTS, monitors, "eval"),
        (neighbours, results_without, [], "neighbours"),
    ):
        for m, lrs in runs.items():
            for lr in lrs:
                table[m][lr] = {c: [math.nan] * n for c in columns}
        for r, traj in runner.run(phase, dp, runs, pl.eval_seeds, results, mons, True):
            row = table[r.method][float(r.config["optimizer"]["lr"])]
            k = index[r.seed]
            row["diverged"][k] = r.outcome != "completed"
            if r.outcome != "completed":
                row["plateau_met"][k] = False
                continue
            for q in METRICS:
                v = r.results.get(q, math.nan)
                row[q][k] = float(v) if _finite(v) else math.nan
            p = plateau(traj.diagnostics["loss"], dp.epochs)
            row["plateau_met"][k], row["plateau_drop"][k], row["plateau_total"][k] = (
                p["met"],
                p["drop"],
                p["total"],
            )
            row["median_abs_c"][k] = _median_abs_c(traj)
    return table


def _rate_table(
    table: dict[str, dict[float, dict[str, list[Any]]]], selected: dict[str, float]
) -> list[dict[str, Any]]:
    """The method × rate × metric table: mean, sd, 95 % t interval over the evaluation seeds."""
    rows = []
    for m, by_lr in table.items():
        for lr, cols in sorted(by_lr.items()):
            role = "selected" if lr == selected[m] else "lower" if lr < selected[m] else "upper"
            for q in (*METRICS, "median_abs_c"):
                rows.append(
                    {
                        "method": m,
                        "lr": lr,
                        "role": role,
                        "metric": q,
                        **_summary(cols[q]),
                        "n_diverged": int(sum(cols["diverged"])),
                    }
                )
    return rows


def _comparisons(
    table: dict[str, dict[float, dict[str, list[Any]]]], selected: dict[str, float]
) -> dict[str, Any]:
    """Per comparison, the raw per-seed values at the chosen and at the neighbouring rates.

    These are what the claim builds its subclaims from.
    """
    out = {}
    for cid, a, b in COMPARISONS:

        def cols(m: str, lr: float) -> dict[str, list[Any]]:
            c = table[m][lr]
            return {
                "test_loss": c["test_loss"],
                "test_accuracy": c["test_accuracy"],
                "diverged": c["diverged"],
            }

        pairings = [
            {"lr_a": la, "lr_b": lb, "a": cols(a, la), "b": cols(b, lb)}
            for la in sorted(table[a])
            for lb in sorted(table[b])
            if (la, lb) != (selected[a], selected[b])
        ]
        out[cid] = {
            "a": a,
            "b": b,
            "lr_a": selected[a],
            "lr_b": selected[b],
            "same_rate": selected[a] == selected[b],
            "values": {"a": cols(a, selected[a]), "b": cols(b, selected[b])},
            "neighbours": pairings,
        }
    return out


def _dataset_evidence(runner: _Runner, dp: DataPlan, pl: Plan) -> dict[str, Any]:
    tuning = _tune(runner, dp, pl)
    selected = tuning["selected_lr"]
    table = _evaluate(runner, dp, pl, selected)
    at_selected = {m: table[m][selected[m]] for m in METHODS}
    per_method = {
        m: {q: _summary(at_selected[m][q]) for q in (*METRICS, "median_abs_c")} for m in METHODS
    }
    diverged = {
        m: [s for s, d in zip(pl.eval_seeds, at_selected[m]["diverged"]) if d] for m in METHODS
    }
    plateau_counts = {
        m: {
            "met": int(sum(bool(x) for x in at_selected[m]["plateau_met"])),
            "n": len(pl.eval_seeds),
        }
        for m in METHODS
    }
    reported = {
        f"{a} - {b}": {
            q: _paired(at_selected[a][q], at_selected[b][q])
            for q in ("test_loss", "test_accuracy", "train_loss", "lambda_max")
        }
        for a, b in REPORTED_PAIRS
    }
    out: dict[str, Any] = {
        "setup": dp.setup(),
        "tuning": tuning,
        "per_seed": {
            m: {q: at_selected[m][q] for q in (*METRICS, "diverged", "plateau_met", "median_abs_c")}
            for m in METHODS
        },
        "per_method": per_method,
        "diverged_seeds": diverged,
        "n_diverged": {m: len(v) for m, v in diverged.items()},
        "plateau": plateau_counts,
        "rate_table": _rate_table(table, selected),
        "rate_per_seed": {
            m: {_key(lr): cols for lr, cols in sorted(by_lr.items())} for m, by_lr in table.items()
        },
        "comparisons": _comparisons(table, selected),
        "reported_pairs": reported,
    }
    if dp.noise_floor is not None:
        best = min(
            METHODS,
            key=lambda m: (
                per_method[m]["train_loss"]["mean"]
                if _finite(per_method[m]["train_loss"]["mean"])
                else math.inf
            ),
        )
        train = per_method[best]["train_loss"]["mean"]
        out["noise_floor"] = {
            "floor": dp.noise_floor,
            "best_method": best,
            "best_train_loss": train,
            "ratio": train / dp.noise_floor,
            "reached": bool(train <= 1.1 * dp.noise_floor),
            "rule": "reached if the lowest mean final training loss of any "
            "method is at most 1.1 x the floor",
        }
    return out


@reusable
def generalization_evidence(
    ctx: ExperimentContext,
    *,
    store: str | Path | None = None,
    progress: IO[str] | bool | None = None,
) -> dict[str, Any]:
    """Run the study at ``ctx.scale`` (see the module docstring) and return its evidence.

    Args:
        ctx: the experiment context: scale, seed, backend, datasets, workers and ``out_dir``.
        store: the SQLite store of the runs (default: ``ctx.out_dir/p_gen/runs.sqlite``, else a
            temporary one). Finished runs in it are reused.
        progress: where the sweeps draw progress (``True``: stderr; ``None``: stderr if
            ``ctx.progress``; ``False``: silent).
    """
    from xsam_theory.sweeps import LocalExecutor

    if progress is None:
        progress = ctx.progress
    stream = sys.stderr if progress is True else (progress or None)
    pl = plan(ctx)
    with ExitStack() as stack:
        if store is None:
            store, temporary = run_store(ctx, stack, "p_gen/runs.sqlite")
        else:
            store, temporary = Path(store), False
            store.parent.mkdir(parents=True, exist_ok=True)
        local = stack.enter_context(LocalExecutor(1))
        pool = (
            local
            if ctx.workers == 1 or all(d.in_process for d in pl.datasets)
            else stack.enter_context(LocalExecutor(ctx.workers))
        )
        runner = _Runner(store, pool, local, stream)
        per_dataset = {dp.name: _dataset_evidence(runner, dp, pl) for dp in pl.datasets}
        store_text = "temporary (removed after the study)" if temporary else str(store)
    evidence = {
        "protocol": {
            "methods": {m: {"preset": x.preset, "alpha": x.alpha} for m, x in METHODS.items()},
            "rho": RHO,
            "base": BASE_OPTIONS,
            "eigenvector": EIGEN_OPTIONS,
            "ladder": list(LADDER),
            "start_rates": list(START_RATES),
            "lr_selection": "argmin of the mean validation loss over the tuning seeds; "
            "grid extended while the choice is at an edge",
            "steps_per_epoch": STEPS_PER_EPOCH,
            "plateau_rule": f"E[ceil(3K/4)] - E[K] <= {PLATEAU_FRACTION} (E[1] - E[K]) "
            "on epoch-mean minibatch training losses",
            "comparisons": [list(c) for c in COMPARISONS],
            "neighbouring_rates": pl.neighbours,
            "scale": pl.scale,
            "backend": "numpy (the sweep runner's), float64",
        },
        "tuning_seeds": list(pl.tuning_seeds),
        "eval_seeds": list(pl.eval_seeds),
        "datasets": per_dataset,
        "skipped_datasets": pl.skipped,
        "notes": list(pl.notes),
        "compute": {**runner.counts, "workers": getattr(pool, "workers", 1)},
        "store": store_text,
    }
    return evidence
