r"""The runs behind P-ANGLE and F-ORIENT.

They measure the angle between the gradient and the top Hessian eigenvector along full-batch
SAM training, and the change of :math:`\lambda_{\max}` per step.

Measurements only: the claims :mod:`xsam_theory.claims.p_angle` (the orientation-free
statement) and :mod:`xsam_theory.claims.angle_orientation` (F-ORIENT, the oriented statement's
dependence on the sign convention of ``v``) judge them; the ``angle`` figure draws them.
Background: docs/theory.md#T-xsam-abstract (the paper's angle argument) and
docs/theory.md#T-eig-gradient (how the top eigenvalue changes along a step).

Protocol (fixed before looking at the association between :math:`|\cos|` and
:math:`\Delta\lambda`):

* Problem: a tanh teacher–student MLP with softmax cross-entropy (:meth:`MLP.teacher_student
  <xsam_theory.problems.MLP.teacher_student>`, 96 samples, data seed ``1000 + ctx.seed``), full
  batch; per run its own PyTorch-default initialization.
* Optimizer: SAM (normalized ascent step) with constant :math:`\eta`, :math:`\rho = 0.05`, no
  momentum, no weight decay. Two rates: :math:`\eta = 0.5`, where
  :math:`\eta\lambda_{\max}` stays below 0.5 (far from SAM's edge) and the gradient is nearly
  orthogonal to ``v``, and :math:`\eta = 2`, where :math:`\eta\lambda_{\max}` reaches ~1.8 early
  in training and the gradient swings into ``v``. The rates were chosen on
  :math:`\eta\lambda_{\max}` alone, before any statistic below was computed. Each run has its
  own initialization seed (``ctx.seed + k * n_seeds + s`` for rate ``k``, run ``s``), so the
  runs are independent.
* Every step ``t = 0 … T``: the algebraic top eigenpair :math:`(\lambda_t, v_t)` of the full
  Hessian at :math:`w_t` by ARPACK (``which="LA"``), warm-started from :math:`v_{t-1}` with a
  relative residual tolerance of :data:`EIG_TOL` (:math:`|\lambda_t - \lambda_1(w_t)| \le
  \|Hv_t - \lambda_t v_t\|`; the largest residual is reported against the typical
  :math:`|\Delta\lambda|`); the gradient :math:`g_t`; and, with :math:`v_t` in the package's
  canonical orientation (:func:`~xsam_theory.spectral.orient`: largest-magnitude entry
  positive), :math:`\cos_t = \langle g_t, v_t\rangle / \|g_t\|`. Also recorded, for other
  sign conventions of ``v``: the sign of :math:`\langle v_t, r\rangle` for a fixed random unit
  ``r`` per run, and the sign of :math:`\langle v_t, v_{t-1}\rangle`.
* :math:`\Delta\lambda_t = \lambda_{t+1} - \lambda_t`, paired with :math:`\cos_t`. The first
  :data:`BURN_IN` steps are dropped (the transient from initialization).
* Training phase is controlled by windows: the kept steps are cut into consecutive windows of
  :data:`WINDOW` steps (a trailing partial window is dropped), and every per-run statistic of
  the orientation-free test compares steps within a window only (:func:`window_split_effect`,
  :func:`window_slope`).
* A run diverges when the loss, the gradient or :math:`\lambda_t` stops being finite (or a step
  overflows); it is counted, and its steps are not used.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsam_theory import stats
from xsam_theory.experiments.context import ExperimentContext, reusable
from xsam_theory.optimizers import init_state, preset, step
from xsam_theory.problems import MLP
from xsam_theory.spectral import HessianOperator, lanczos_eigsh

__all__ = [
    "BURN_IN",
    "CONVENTIONS",
    "EIG_TOL",
    "LRS",
    "RHO",
    "WINDOW",
    "AngleRun",
    "abs_cos_quantiles",
    "angle_runs",
    "angle_setup",
    "convention_signs",
    "one_run",
    "oriented_difference",
    "run_statistics",
    "summary_interval",
    "window_slope",
    "window_split_effect",
]

LRS = (0.5, 2.0)
RHO = 0.05
N_SAMPLES = 96
BURN_IN = 10
WINDOW = 10
#: ARPACK's relative residual tolerance for each step's top eigenpair
EIG_TOL = 1e-9
EIG_NCV = 8
#: ``|cos|`` below this is floored before its logarithm (float64 rounding of a cosine is ~1e-16)
COS_FLOOR = 1e-16
#: sign conventions for ``v``: the package's canonical one, its negation, a fixed random
#: reference vector per run, and continuity along the run (starting from the canonical sign)
CONVENTIONS = ("canonical", "negated", "reference", "continuous")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


@dataclass(frozen=True)
class AngleRun:
    r"""One SAM run's per-step measurements (see the module docstring).

    ``lam`` has the ``T + 1`` values :math:`\lambda_0 … \lambda_T`; the other arrays have one
    entry per step ``t = 0 … T-1`` (measured at :math:`w_t`). ``cos`` is
    :math:`\langle g_t, v_t\rangle/\|g_t\|` with :math:`v_t` canonical; ``ref_sign`` the sign
    of :math:`\langle v_t, r\rangle`; ``prev_sign`` the sign of
    :math:`\langle v_t, v_{t-1}\rangle` (``+1`` at ``t = 0``); ``residual`` ARPACK's
    :math:`\|Hv_t - \lambda_t v_t\|/|\lambda_t|`. A diverged run keeps its steps up to the
    divergence and ``diverged`` is ``True``.
    """

    seed: int
    lr: float
    lam: np.ndarray
    cos: np.ndarray
    ref_sign: np.ndarray
    prev_sign: np.ndarray
    residual: np.ndarray
    loss: np.ndarray
    diverged: bool

    @property
    def dlam(self) -> np.ndarray:
        r"""Per-step change :math:`\lambda_{t+1} - \lambda_t` for kept steps (``t >= BURN_IN``)."""
        return np.diff(self.lam)[BURN_IN:]

    @property
    def kept_cos(self) -> np.ndarray:
        """``cos`` (canonical ``v``) for the kept steps."""
        return self.cos[BURN_IN:]

    @property
    def abs_cos(self) -> np.ndarray:
        r""":math:`|\cos\angle(g_t, v_t)|` for the kept steps (orientation-free)."""
        return np.abs(self.kept_cos)


def angle_setup(ctx: ExperimentContext) -> dict[str, Any]:
    """The hyperparameters of the runs at ``ctx``'s scale (what the evidence reports)."""
    n_seeds = ctx.pick(3, 12, 24)
    return {
        "widths": ctx.pick((6, 12, 3), (8, 24, 4), (8, 24, 4)),
        "steps": ctx.pick(60, 150, 300),
        "n_seeds_per_lr": n_seeds,
        "lrs": list(LRS),
        "rho": RHO,
        "n_samples": N_SAMPLES,
        "data_seed": 1000 + ctx.seed,
        "burn_in": BURN_IN,
        "window": WINDOW,
        "eig_tol": EIG_TOL,
        "eig_ncv": EIG_NCV,
        "seeds": {
            str(lr): [ctx.seed + k * n_seeds + s for s in range(n_seeds)]
            for k, lr in enumerate(LRS)
        },
    }


def one_run(widths: Sequence[int], data_seed: int, seed: int, lr: float, steps: int) -> AngleRun:
    """One full-batch SAM run with the per-step measurements of the module docstring."""
    problem = MLP.teacher_student(tuple(widths), n_samples=N_SAMPLES, seed=data_seed)
    config = preset("sam", lr=lr, rho=RHO)
    state = init_state(problem, np.asarray(problem.init_params(seed)), config, seed=seed)
    r = np.random.default_rng([seed, 7]).standard_normal(problem.dim)
    lam, cos, ref, prev, res, loss = [], [], [], [], [], []
    v = None
    diverged = False
    for t in range(steps + 1):
        try:
            point = problem.at(state.w)
            g = np.asarray(point.grad)
            if not (np.isfinite(float(point.loss)) and np.all(np.isfinite(g))):
                raise FloatingPointError("non-finite loss or gradient")
            op = HessianOperator.from_point(point)
            eig = lanczos_eigsh(op, 1, v0=v, tol=EIG_TOL, ncv=EIG_NCV, seed=seed)
            if not np.isfinite(eig.eigenvalue):
                raise FloatingPointError("non-finite top eigenvalue")
        except FloatingPointError:
            diverged = True
            break
        u = np.asarray(eig.eigenvector)
        lam.append(float(eig.eigenvalue))
        if t == steps:
            break
        cos.append(float(g @ u) / float(np.linalg.norm(g)))
        ref.append(1.0 if float(u @ r) >= 0 else -1.0)
        prev.append(1.0 if v is None or float(u @ v) >= 0 else -1.0)
        res.append(float(np.asarray(eig.residuals)[0]) / abs(eig.eigenvalue))
        loss.append(float(point.loss))
        v = u
        try:
            state, _ = step(problem, state, config)
        except FloatingPointError:
            diverged = True
            break
    n = len(lam) - 1  # steps with both endpoints measured
    arr = lambda x: np.asarray(x[:n], dtype=float)  # noqa: E731
    return AngleRun(
        seed,
        float(lr),
        np.asarray(lam, dtype=float),
        arr(cos),
        arr(ref),
        arr(prev),
        arr(res),
        arr(loss),
        diverged,
    )


def _run_job(job: tuple) -> AngleRun:
    with _one_blas_thread():
        return one_run(*job)


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """A context manager that runs a worker process's small dense algebra on one BLAS thread.

    Two processes share two cores; spinning BLAS threads would fight them. Without threadpoolctl
    it changes nothing.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _workers(ctx: ExperimentContext, n_jobs: int) -> int:
    if ctx.scale == "quick":  # a pool's start-up costs more than the quick runs
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(n_jobs, ctx.workers or cores))


@reusable
def angle_runs(ctx: ExperimentContext) -> list[AngleRun]:
    """Every run at ``ctx``'s scale, rate by rate, seed by seed (:func:`angle_setup`).

    P-ANGLE and F-ORIENT judge the same runs: both ask ``angle_runs(ctx, reuse=True)``, so the
    first measures and the second reads its result (:func:`~xsam_theory.experiments.context.
    reusable`). Default and full scales run in a local process pool (``ctx.workers``, default:
    the cores); the runs do not depend on how many workers ran them.
    """
    setup = angle_setup(ctx)
    jobs = [
        (setup["widths"], setup["data_seed"], s, lr, setup["steps"])
        for lr in LRS
        for s in setup["seeds"][str(lr)]
    ]
    workers = _workers(ctx, len(jobs))
    if workers == 1:
        return [one_run(*job) for job in jobs]
    methods = multiprocessing.get_all_start_methods()
    mp = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if mp.get_start_method() == "forkserver":
        mp.set_forkserver_preload(["xsam_theory.experiments.angle"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp) as pool:
        return list(pool.map(_run_job, jobs))


# -- per-run statistics (pure functions of the per-step arrays) --------------------------------


def _windows(n: int, window: int) -> list[slice]:
    if window < 2 or window % 2:
        raise ValueError(f"window must be an even integer >= 2, got {window!r}")
    return [slice(i, i + window) for i in range(0, n - window + 1, window)]


def _check_pair(dlam: np.ndarray, x: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    dlam, x = np.asarray(dlam, dtype=float), np.asarray(x, dtype=float)
    if dlam.shape != x.shape or dlam.ndim != 1:
        raise ValueError(
            f"dlam and {name} must be 1-D of equal length, got {dlam.shape} and {x.shape}"
        )
    return dlam, x


def within_window_sd(dlam: np.ndarray, window: int = WINDOW) -> float:
    r"""The within-window standard deviation of :math:`\Delta\lambda`.

    It is :math:`\sqrt{\operatorname{mean}_t (\Delta\lambda_t -
    \overline{\Delta\lambda}_{W(t)})^2}` over the complete windows (:math:`W(t)` the window of
    step ``t``); NaN without a window.
    """
    dlam = np.asarray(dlam, dtype=float)
    parts = [dlam[w] - dlam[w].mean() for w in _windows(dlam.size, window)]
    return float(np.sqrt(np.mean(np.concatenate(parts) ** 2))) if parts else float("nan")


def window_split_effect(dlam: np.ndarray, abs_cos: np.ndarray, window: int = WINDOW) -> float:
    r"""Within-window split, in units of the within-window SD of :math:`\Delta\lambda`.

    In each complete window of ``window`` steps, the mean :math:`\Delta\lambda` of the
    ``window/2`` steps with the largest :math:`|\cos|` minus that of the ``window/2`` with the
    smallest (ties broken by step order); the mean over windows, divided by
    :func:`within_window_sd`. Positive: larger :math:`|\cos|` goes with a larger
    :math:`\Delta\lambda` (λ_max falls less). NaN without a window or with zero spread.
    """
    dlam, abs_cos = _check_pair(dlam, abs_cos, "abs_cos")
    half = window // 2
    diffs = []
    for w in _windows(dlam.size, window):
        order = np.argsort(abs_cos[w], kind="stable")
        d = dlam[w]
        diffs.append(float(d[order[half:]].mean() - d[order[:half]].mean()))
    sd = within_window_sd(dlam, window)
    if not diffs or not sd > 0:
        return float("nan")
    return float(np.mean(diffs)) / sd


def window_slope(dlam: np.ndarray, abs_cos: np.ndarray, window: int = WINDOW) -> float:
    r"""Least-squares slope of :math:`\Delta\lambda` on :math:`\log_{10}|\cos|`.

    The slope is in within-window SDs of :math:`\Delta\lambda` per decade of :math:`|\cos|`, with
    a fixed effect per window.

    With :math:`\tilde x, \tilde y` the within-window deviations of
    :math:`x = \log_{10}\max(|\cos|, 10^{-16})` and :math:`y = \Delta\lambda`:
    :math:`\hat\beta = \sum\tilde x\tilde y / \sum\tilde x^2`, divided by
    :func:`within_window_sd`. The logarithm because :math:`|\cos|` spans decades (a slope on
    :math:`|\cos|` itself would be set by a handful of steps). NaN without a window.
    """
    dlam, abs_cos = _check_pair(dlam, abs_cos, "abs_cos")
    x = np.log10(np.maximum(abs_cos, COS_FLOOR))
    xs, ys = [], []
    for w in _windows(dlam.size, window):
        xs.append(x[w] - x[w].mean())
        ys.append(dlam[w] - dlam[w].mean())
    sd = within_window_sd(dlam, window)
    if not xs or not sd > 0:
        return float("nan")
    xt, yt = np.concatenate(xs), np.concatenate(ys)
    sxx = float(xt @ xt)
    return float(xt @ yt) / sxx / sd if sxx > 0 else float("nan")


def oriented_difference(dlam: np.ndarray, cos: np.ndarray) -> float:
    r"""The oriented statistic: mean Δλ at acute angles minus mean Δλ at obtuse angles.

    The mean of :math:`\Delta\lambda` over steps with :math:`\angle(g, v) \le 90°`
    (:math:`\cos \ge 0`) minus the mean over steps with :math:`\angle > 90°`; NaN when either
    side has no step. The paper's oriented statement (docs/theory.md#T-xsam-abstract); F-ORIENT
    shows it changes sign with the convention of ``v``.
    """
    dlam, cos = _check_pair(dlam, cos, "cos")
    le = cos >= 0
    if le.all() or not le.any():
        return float("nan")
    return float(dlam[le].mean() - dlam[~le].mean())


def convention_signs(run: AngleRun, convention: str) -> np.ndarray:
    r"""Per kept step, the sign ``s_t`` that turns the canonical :math:`v_t` into the convention's.

    ``canonical`` +1, ``negated`` -1, ``reference`` the sign of :math:`\langle v_t, r\rangle`,
    ``continuous`` the running product of the signs of :math:`\langle v_t, v_{t-1}\rangle` (so
    that consecutive ``v`` never point apart).
    """
    n = run.kept_cos.size
    if convention == "canonical":
        return np.ones(n)
    if convention == "negated":
        return -np.ones(n)
    if convention == "reference":
        return run.ref_sign[BURN_IN:]
    if convention == "continuous":
        return np.cumprod(run.prev_sign)[BURN_IN:]
    raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")


def run_statistics(run: AngleRun, window: int = WINDOW) -> dict[str, Any]:
    """The per-run numbers the claims judge (NaN where a run has too few steps)."""
    dlam, cos = run.dlam, run.kept_cos
    side = cos >= 0
    out: dict[str, Any] = {
        "seed": run.seed,
        "lr": run.lr,
        "diverged": run.diverged,
        "steps": int(dlam.size),
        "within_window": window_split_effect(dlam, np.abs(cos), window),
        "slope": window_slope(dlam, np.abs(cos), window),
        "within_window_sd": within_window_sd(dlam, window),
        "median_abs_cos": float(np.median(np.abs(cos))) if cos.size else float("nan"),
        "side_switch_fraction": float(np.mean(side[1:] != side[:-1]))
        if cos.size > 1
        else float("nan"),
        "max_relative_residual": float(run.residual.max()) if run.residual.size else float("nan"),
        "median_abs_dlam": float(np.median(np.abs(dlam))) if dlam.size else float("nan"),
    }
    for c in CONVENTIONS:
        out[f"oriented_{c}"] = oriented_difference(dlam, convention_signs(run, c) * cos)
    return out


def abs_cos_quantiles(runs: Sequence[AngleRun]) -> dict[str, float]:
    r"""Quantiles :data:`QUANTILES` of :math:`|\cos\angle(g, v)|` over all kept steps of ``runs``.

    Keyed ``q10``, ``q25``, ``median``, ``q75``, ``q90``.
    """
    a = np.concatenate([r.abs_cos for r in runs]) if runs else np.array([])
    if a.size == 0:
        return {k: float("nan") for k in ("q10", "q25", "median", "q75", "q90")}
    q = np.quantile(a, QUANTILES)
    return dict(zip(("q10", "q25", "median", "q75", "q90"), (float(x) for x in q)))


def summary_interval(samples: Sequence[float]) -> dict[str, float]:
    """Mean and 95 % Student-t interval of the finite ``samples`` (NaN below two)."""
    x = np.asarray([s for s in samples if np.isfinite(s)], dtype=float)
    if x.size < 2:
        return {
            "estimate": float(x.mean()) if x.size else float("nan"),
            "ci_low": float("nan"),
            "ci_high": float("nan"),
            "n": int(x.size),
        }
    iv = stats.t_interval(x)
    return {"estimate": iv.estimate, "ci_low": iv.low, "ci_high": iv.high, "n": int(x.size)}
