r"""P-CONV's runs of X-SAM with a decaying step, and the rate each form is expected to reach.

X-SAM with :math:`\eta_t = \eta_0/\sqrt{t+1}`: the best gradient norm so far, its log-log slope per
seed, divergence per seed, and the rate each form is expected to reach. The derivation below
is docs/theory.md#T-normalized-rate (checked by :mod:`xsam_theory.symbolic.rates`); its
relation to the paper's convergence statement: docs/theory.md#T-xsam-convergence; what
happens at α = 1 and α > 1: docs/theory.md#T-freeze and docs/theory.md#T-escape.

**Which rate to expect (derivation).** Take :math:`L` :math:`\ell`-smooth and bounded below by
:math:`L^*`, and a step :math:`w_{t+1} = w_t - \eta_t d_t`. The descent lemma gives
:math:`L(w_{t+1}) \le L(w_t) - \eta_t\langle g_t, d_t\rangle + \tfrac{\ell}{2}\eta_t^2\|d_t\|^2`;
summed over :math:`t < T`,

.. math::
    \sum_{t<T}\eta_t\langle g_t, d_t\rangle \le L(w_0) - L^* + \tfrac{\ell}{2}\sum_{t<T}
    \eta_t^2\|d_t\|^2 .

*Normalized step* (paper, symmetric and raw-projection forms: :math:`\|d\| \le 1 + \alpha`, step
length :math:`\eta_t\|d\|`). If :math:`\langle g, d\rangle \ge \beta\|g\|` for some
:math:`\beta > 0`, then :math:`\min_{t<T}\|g_t\| \le (A + B H_T)/S_T` with
:math:`A = (L(w_0) - L^*)/(\beta\eta_0)`, :math:`B = \ell(1+\alpha)^2\eta_0/(2\beta)`,
:math:`S_T = \sum_{k\le T} k^{-1/2} \sim 2\sqrt T` and :math:`H_T = \sum_{k\le T}k^{-1} \sim \ln T`
(:mod:`xsam_theory.symbolic.rates`): a rate :math:`\ln T/\sqrt T`, log-log slope
:math:`-1/2`. When does :math:`\beta` exist? On the convex quadratic :math:`\tfrac12 w^\top Hw`
with exact top eigenvector :math:`v`: :math:`g_{adv} = g + \rho H\hat g`, so
:math:`\langle g, \hat g_{adv}\rangle \ge \|g\|(\|g\| + \rho\lambda_{min})/(\|g\| +
\rho\lambda_{max}) \ge \|g\|/\kappa`; every eigencomponent of :math:`g_{adv}` has the sign of
:math:`g`'s, so :math:`c = \langle\hat g_{adv}, v\rangle` has the sign of :math:`\langle g,
v\rangle`, and the paper rule (:math:`v`-component :math:`(1 \mp \alpha)c`) and the symmetric rule
(:math:`(1-\alpha)c`) keep :math:`\langle g, d\rangle \ge (1-\alpha)\|g\|/\kappa`:
:math:`\beta = (1-\alpha)/\kappa`, **only for** :math:`\alpha < 1`. At :math:`\alpha = 1` the
:math:`v`-component vanishes (F-FREEZE); above 1 it points uphill (F-ESCAPE). The raw-projection
form's :math:`v`-component is :math:`c(1 - \alpha\|g_{adv}\|)` when :math:`c > 0`, so the same
argument needs :math:`\alpha\|g_{adv}\| < 1` along the run (recorded per seed). On a nonconvex
loss (the MLP) SAM's fixed :math:`\rho` costs :math:`\langle g, \hat g_{adv}\rangle \ge \|g\| -
2\ell\rho`: the bound gains a term :math:`2\ell\rho/\beta` that does not decay (constant-ρ SAM
is only guaranteed a neighbourhood); the expected slope is that of the decaying part, an
assumption the MLP cells test rather than a theorem.

*Unnormalized step* (projector form, :math:`d = Pg_{adv}`, :math:`P = I - \alpha vv^\top`). With
:math:`\langle g, d\rangle \ge \beta\|g\|^2` and :math:`\|d\| \le \|g\| + \ell\rho` bounded
along the run, :math:`\min_{t<T}\|g_t\|^2 \le (A + BH_T)/S_T`: slope :math:`-1/4` for
:math:`\|g\|` — the worst case of any unnormalized step, used on the MLP. On the quadratic the
normalized perturbation adds :math:`\langle g, P\rho H\hat g\rangle \ge (1-\alpha)\rho
\lambda_{min}\|g\|`, a normalized-step decrease: the quadratic's projector cells expect
:math:`-1/2`.

*Minibatch.* With a stochastic :math:`g_B`, :math:`\langle g, \hat g_B\rangle \ge \|g\| -
2\|g_B - g\|`: a normalized step's bound gains :math:`2\,\mathbb E\|g_B - g\|`, which decays
only if the minibatch noise vanishes where the gradient does. The expected slope is the
full-batch one; each minibatch cell reports the noise term :math:`2\sigma_B` at the last
iterate (RMS over one epoch's minibatches) next to the best gradient norm reached, so a flat
slope can be traced to it.

*Finite T.* The bound's log factor flattens its slope at finite :math:`T`; the largest such
flattening, whatever the constants, is the slope of :math:`(H_T/S_T)^p` plus :math:`p/2`
(:func:`~xsam_theory.symbolic.rates.finite_t_allowance`, 0.15 on :math:`16 \le T \le 2048`).
The threshold of a cell is ``expected_slope + allowance``.

**Protocol (fixed before looking at the numbers).**

* Problems: the quadratic ``diag(10, 4, 1)`` in a seeded random basis, start
  :math:`\mathcal N(0, I)`, exact :math:`v`; a tanh teacher–student MLP (cross-entropy, 96
  samples, PyTorch default init), :math:`v` by Lanczos every 10 steps; full batch, and
  minibatches of 16 (6 per epoch, reshuffled) for the MLP.
* ρ = 0.05. :math:`\eta_0` = 0.1 (a step length for the normalized forms; the projector form's
  gradient multiplier on the quadratic), 0.5 for the projector form on the MLP (as SAM).
* Per seed: :math:`\mathrm{best}(T) = \min_{t<T}\|\nabla L(w_t)\|` (full-batch gradient, also
  in minibatch runs) on :math:`T = 2^k`, :math:`16 \le T \le T_{max}`, and its least-squares
  log-log slope; the median over steps of :math:`|c| = |\langle\hat g_{adv}, v\rangle|` (how
  much the correction can act). **Diverged**: a non-finite value, or a final full-batch
  :math:`\|\nabla L\|` above the start's.
* Constant step (reported): the paper rule at α = 0.5 on the quadratic with
  :math:`\eta \in \{\eta_0, \eta_0/2, \eta_0/4\}`; the tail mean of :math:`\|g\|` over the last
  quarter against the bound of the same descent lemma over the tail,
  :math:`\kappa\,(L(w_{t_0})/(\eta n) + \tfrac{\lambda_{max}}{2}(1+\alpha)^2\eta)/(1-\alpha)`.

The quadratic runs use :func:`quadratic_runs`, a loop vectorized over seeds that computes the four
forms' steps with exact :math:`v`; :func:`fast_path_deviation` compares it with
:func:`xsam_theory.optimizers.step` (recorded in the evidence). The MLP runs use the package's
trajectory runner.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsam_theory.experiments.context import ExperimentContext
from xsam_theory.experiments.loops import trajectory
from xsam_theory.optimizers import preset
from xsam_theory.problems import MLP, Quadratic
from xsam_theory.spectral import orient
from xsam_theory.stats import loglog_slope
from xsam_theory.symbolic.rates import finite_t_allowance

__all__ = [
    "BATCH",
    "FORMS",
    "MLP_SAMPLES",
    "QUADRATIC_EIGENVALUES",
    "RHO",
    "Cell",
    "CellResult",
    "constant_step",
    "expected_slope",
    "fast_path_deviation",
    "grid_for",
    "measure",
    "mlp_runs",
    "plan",
    "quadratic_runs",
    "run_cell",
]

FORMS = {
    "paper": "xsam_paper",
    "symmetric": "xsam_symmetric",
    "projector": "xsam_projector",
    "raw_projection": "xsam_raw_projection",
}
#: (sign rule is paper, step normalized, coefficient from the normalized g_adv) per form
_SWITCHES = {
    "paper": (True, True, True),
    "symmetric": (False, True, True),
    "projector": (False, False, False),
    "raw_projection": (True, True, False),
}
QUADRATIC_EIGENVALUES = (10.0, 4.0, 1.0)
RHO = 0.05
MLP_SAMPLES = 96
BATCH = 16
REFRESH = 10


@dataclass(frozen=True)
class Cell:
    """One (problem, form, alpha, batch) combination; ``batch`` is ``"full"`` or ``"minibatch"``."""

    problem: str
    form: str
    alpha: float
    batch: str = "full"

    def __post_init__(self) -> None:
        if self.problem not in ("quadratic", "mlp"):
            raise ValueError(f"problem must be 'quadratic' or 'mlp', got {self.problem!r}")
        if self.form not in FORMS:
            raise ValueError(f"form must be one of {list(FORMS)}, got {self.form!r}")
        if not (math.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha must be finite and >= 0, got {self.alpha!r}")
        if self.batch not in ("full", "minibatch"):
            raise ValueError(f"batch must be 'full' or 'minibatch', got {self.batch!r}")
        if self.batch == "minibatch" and self.problem != "mlp":
            raise ValueError(
                f"minibatch cells need a problem with data (mlp), got {self.problem!r}"
            )

    @property
    def id(self) -> str:
        """The cell's id, ``problem/form/alpha=...`` plus ``/minibatch`` for a minibatch cell."""
        return f"{self.problem}/{self.form}/alpha={self.alpha:g}" + (
            "/minibatch" if self.batch == "minibatch" else ""
        )

    @property
    def normalized(self) -> bool:
        """Whether the cell's form takes a normalized step."""
        return _SWITCHES[self.form][1]

    @property
    def eta0(self) -> float:
        """The initial step: 0.5 for an unnormalized form on the MLP, else 0.1."""
        return 0.5 if (self.problem == "mlp" and not self.normalized) else 0.1


@dataclass(frozen=True)
class CellResult:
    """Per-seed measurements of one cell (arrays over seeds)."""

    cell: Cell
    seeds: tuple[int, ...]
    grid: np.ndarray
    best: np.ndarray  # (n_seeds, len(grid)): best(T) on the grid
    slopes: np.ndarray  # per-seed log-log slope (NaN where best is not finite/positive)
    initial: np.ndarray  # ||grad L(w_0)||
    final: np.ndarray  # ||grad L(w_T)|| (inf when the run stopped non-finite)
    diverged: np.ndarray  # bool
    max_alpha_gadv: np.ndarray  # max_t alpha ||g_adv|| (the raw-projection condition)
    noise_floor: np.ndarray  # 2 sigma_B at the last iterate (minibatch); NaN otherwise
    median_abs_c: np.ndarray  # median over steps of |<g_adv/|g_adv|, v>| (NaN at alpha = 0)


def grid_for(t_max: int) -> np.ndarray:
    """The dyadic grid ``T = 2^k``, ``16 <= T <= t_max``."""
    if t_max < 64:
        raise ValueError(f"t_max must be >= 64 (3 grid points), got {t_max}")
    return 2 ** np.arange(4, int(math.log2(t_max)) + 1)


def expected_slope(cell: Cell) -> float:
    r"""The derived log-log slope of the bound on ``best(T)`` (module docstring).

    It is -1/2 for a normalized step and for the projector form on the quadratic, -1/4 for the
    projector form elsewhere: :math:`\min_{t<T}\|g_t\| \lesssim \ln T/\sqrt T` for a
    normalized step, :math:`\min_{t<T}\|g_t\|^2 \lesssim \ln T/\sqrt T` for an unnormalized one
    (docs/theory.md#T-normalized-rate).
    """
    return -0.5 if (cell.normalized or cell.problem == "quadratic") else -0.25


def allowance(cell: Cell, grid: np.ndarray) -> float:
    """The finite-T allowance for the cell's bound on ``grid``.

    The largest flattening of the slope of :math:`(H_T/S_T)^p` on ``grid`` plus :math:`p/2`,
    with :math:`p = 1` for an expected slope of -1/2 and :math:`p = 1/2` for -1/4
    (:func:`xsam_theory.symbolic.rates.finite_t_allowance`; docs/theory.md#T-normalized-rate).
    """
    return finite_t_allowance(grid, 1.0 if expected_slope(cell) == -0.5 else 0.5)


# -- the quadratic: a loop vectorized over seeds --------------------------------------------------
def _quadratic_problem(seed: int) -> tuple[Quadratic, np.ndarray, np.ndarray]:
    q = Quadratic.from_spectrum(list(QUADRATIC_EIGENVALUES), seed=5000 + seed)
    w0 = np.random.default_rng([seed, 5]).standard_normal(len(QUADRATIC_EIGENVALUES))
    v = np.asarray(orient(q.eigenvectors[:, 0]), dtype=float)
    return q, w0, v


def _unit_rows(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = np.sqrt(np.einsum("si,si->s", u, u))
    safe = np.where(n > 0, n, 1.0)
    return np.where(n[:, None] > 0, u / safe[:, None], 0.0), n


def quadratic_runs(
    form: str,
    alpha: float,
    eta0: float,
    seeds: tuple[int, ...],
    steps: int,
    *,
    schedule: str = "inv_sqrt",
) -> dict[str, np.ndarray]:
    r"""X-SAM (``form``, exact :math:`v`, :math:`\rho` = :data:`RHO`) on the seeds' quadratics.

    All seeds run at once. Returns ``grad_norm`` (seeds, steps + 1) for :math:`w_0 \dots w_T`,
    ``loss`` likewise, and ``adv_grad_norm`` (seeds, steps). A seed whose iterate stops being finite
    keeps ``inf`` from there on. ``schedule``: ``inv_sqrt`` or ``constant``.
    """
    if form not in FORMS:
        raise ValueError(f"form must be one of {list(FORMS)}, got {form!r}")
    if schedule not in ("inv_sqrt", "constant"):
        raise ValueError(f"schedule must be 'inv_sqrt' or 'constant', got {schedule!r}")
    probs = [_quadratic_problem(s) for s in seeds]
    H = np.stack([np.asarray(q.hessian_matrix, dtype=float) for q, _, _ in probs])
    w = np.stack([w0 for _, w0, _ in probs]).astype(float)
    v = np.stack([v for _, _, v in probs])
    paper, normalize, coef_normalized = _SWITCHES[form]
    n = len(seeds)
    gn, loss = np.full((n, steps + 1), np.inf), np.full((n, steps + 1), np.inf)
    agn, cs = np.full((n, steps), np.inf), np.full((n, steps), np.nan)
    alive = np.ones(n, dtype=bool)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps + 1):
            g = np.einsum("sij,sj->si", H, w)
            gn[alive, t] = np.sqrt(np.einsum("si,si->s", g, g))[alive]
            loss[alive, t] = 0.5 * np.einsum("si,si->s", w, g)[alive]
            alive &= np.isfinite(gn[:, t]) & np.all(np.isfinite(w), axis=1)
            if t == steps:
                break
            eta = eta0 / math.sqrt(t + 1) if schedule == "inv_sqrt" else eta0
            g_hat, _ = _unit_rows(g)
            g_adv = np.einsum("sij,sj->si", H, w + RHO * g_hat)
            ga_hat, ga_norm = _unit_rows(g_adv)
            agn[alive, t] = ga_norm[alive]
            cs[alive, t] = np.einsum("si,si->s", ga_hat, v)[alive]
            c = np.einsum("si,si->s", ga_hat if coef_normalized else g_adv, v)
            gamma = np.abs(c) if paper else c
            d = (ga_hat if normalize else g_adv) - (alpha * gamma)[:, None] * v
            w = np.where(alive[:, None], w - eta * d, w)
    return {"grad_norm": gn, "loss": loss, "adv_grad_norm": agn, "c": cs}


def fast_path_deviation(form: str, alpha: float, seed: int, steps: int = 64) -> float:
    """Largest relative difference of ``||grad||`` between the fast path and the package's step.

    The fast path is :func:`quadratic_runs`, the package's own step
    :func:`~xsam_theory.experiments.loops.trajectory` (exact ``v``); both run ``steps`` steps of one
    seed.
    """
    q, w0, _ = _quadratic_problem(seed)
    cfg = preset(
        FORMS[form],
        lr=0.1,
        rho=RHO,
        alpha=alpha,
        lr_schedule="inv_sqrt",
        eigvec_source="exact",
        refresh_every=2**62,
    )
    ref = trajectory(q, cfg, w0, steps, iterate_every=None).diagnostics["grad_norm"]
    fast = quadratic_runs(form, alpha, 0.1, (seed,), steps)["grad_norm"][0, :steps]
    return float(np.max(np.abs(fast - ref) / np.maximum(np.abs(ref), 1e-300)))


# -- the MLP: the package's trajectory runner ----------------------------------------------------
def _mlp_problem(seed: int, widths: tuple[int, ...]) -> tuple[MLP, np.ndarray]:
    p = MLP.teacher_student(widths, MLP_SAMPLES, seed=6000 + seed)
    return p, np.asarray(p.init_params(7000 + seed), dtype=float)


def _noise_floor(p: MLP, w: np.ndarray, seed: int) -> float:
    r""":math:`2\sigma_B`: twice the RMS of :math:`\|g_B - g\|` over one epoch's minibatches."""
    g = np.asarray(p.grad(w))
    perm = np.random.default_rng([seed, 0xF100]).permutation(MLP_SAMPLES)
    devs = [
        float(np.sum((np.asarray(p.grad(w, perm[i : i + BATCH])) - g) ** 2))
        for i in range(0, MLP_SAMPLES - BATCH + 1, BATCH)
    ]
    return 2.0 * math.sqrt(float(np.mean(devs)))


def mlp_runs(
    cell: Cell,
    seeds: tuple[int, ...],
    steps: int,
    widths: tuple[int, ...],
    ctx: ExperimentContext | None = None,
) -> dict[str, np.ndarray]:
    """The cell's MLP runs.

    Returns full-batch ``grad_norm`` (seeds, steps + 1) (``inf`` after a non-finite stop),
    ``adv_grad_norm`` (seeds, steps) and ``noise_floor`` (seeds).
    """
    n = len(seeds)
    gn, agn = np.full((n, steps + 1), np.inf), np.full((n, steps), np.inf)
    cs = np.full((n, steps), np.nan)
    floor = np.full(n, math.nan)
    mini = cell.batch == "minibatch"
    for i, s in enumerate(seeds):
        p, w0 = _mlp_problem(s, widths)
        cfg = preset(
            FORMS[cell.form],
            lr=cell.eta0,
            rho=RHO,
            alpha=cell.alpha,
            lr_schedule="inv_sqrt",
            eigvec_source="lanczos",
            refresh_every=REFRESH,
        )
        traj = trajectory(
            p,
            cfg,
            w0,
            steps,
            ctx=ctx,
            seed=s,
            on_nonfinite="stop",
            batch_size=BATCH if mini else None,
            iterate_every=1 if mini else None,
        )
        k = traj.n_steps
        agn[i, :k] = traj.diagnostics["adv_grad_norm"]
        cs[i, :k] = traj.diagnostics["c"]
        with np.errstate(over="ignore", invalid="ignore"):
            if mini:
                full = [float(np.linalg.norm(np.asarray(p.grad(w)))) for w in traj.iterates]
                gn[i, : len(full)] = full
            else:
                gn[i, :k] = traj.diagnostics["grad_norm"]
                if traj.status != "diverged":
                    gn[i, k] = float(np.linalg.norm(np.asarray(p.grad(traj.final_w))))
        if traj.status == "diverged":
            gn[i, k:] = np.inf
        elif mini:
            floor[i] = _noise_floor(p, np.asarray(traj.final_w), s)
    return {"grad_norm": gn, "adv_grad_norm": agn, "noise_floor": floor, "c": cs}


# -- one cell -------------------------------------------------------------------------------------
def _per_seed(grad_norm: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """best(T) on ``grid`` and its log-log slope, per seed (NaN slope if not finite/positive)."""
    best = np.minimum.accumulate(grad_norm[:, :-1], axis=1)[:, grid - 1]
    slopes = np.full(best.shape[0], math.nan)
    for i, b in enumerate(best):
        if np.all(np.isfinite(b)) and np.all(b > 0):
            slopes[i] = loglog_slope(grid, b).estimate
    return best, slopes


def run_cell(
    cell: Cell,
    seeds: tuple[int, ...],
    t_max: int,
    *,
    widths: tuple[int, ...] = (6, 10, 3),
    ctx: ExperimentContext | None = None,
) -> CellResult:
    """All seeds of one cell: best(T) on the grid, slopes, divergence (module docstring)."""
    grid = grid_for(t_max)
    if cell.problem == "quadratic":
        runs = quadratic_runs(cell.form, cell.alpha, cell.eta0, seeds, t_max)
        floor = np.full(len(seeds), math.nan)
    else:
        runs = mlp_runs(cell, seeds, t_max, widths, ctx)
        floor = runs["noise_floor"]
    gn = runs["grad_norm"]
    best, slopes = _per_seed(gn, grid)
    initial, final = gn[:, 0], gn[:, -1]
    diverged = ~np.isfinite(final) | (final > initial)
    with np.errstate(invalid="ignore"):
        max_ag = cell.alpha * np.max(
            np.where(np.isfinite(runs["adv_grad_norm"]), runs["adv_grad_norm"], np.inf), axis=1
        )
    abs_c = np.abs(runs["c"])
    med_c = np.array(
        [
            np.median(r[np.isfinite(r)]) if cell.alpha > 0 and np.any(np.isfinite(r)) else math.nan
            for r in abs_c
        ]
    )
    return CellResult(
        cell, tuple(seeds), grid, best, slopes, initial, final, diverged, max_ag, floor, med_c
    )


# -- the plan per scale ---------------------------------------------------------------------------
def headline_alphas(ctx: ExperimentContext) -> tuple[float, ...]:
    """The authors' rule's alphas in (0, 1) tested at this scale."""
    return ctx.pick((0.5,), (0.2, 0.5), (0.2, 0.5, 0.8))


def plan(ctx: ExperimentContext) -> dict[str, Any]:
    """Cells, seeds and lengths per scale.

    The cells are the headline cells (paper rule, alpha in (0, 1), full batch on both problems and
    minibatch on the MLP), the alpha = 0 ablation, and subclaim cells (other forms, alpha >= 1).
    """
    a_head = headline_alphas(ctx)
    head = (
        [Cell("quadratic", "paper", a) for a in a_head]
        + [Cell("mlp", "paper", a) for a in a_head]
        + [Cell("mlp", "paper", a, "minibatch") for a in a_head]
    )
    quad_alphas = ctx.pick((0.5, 1.5), (0.2, 0.5, 0.8, 1.0, 1.5), (0.2, 0.5, 0.8, 1.0, 1.5, 2.0))
    quad_forms = ctx.pick(("paper",), tuple(FORMS), tuple(FORMS))
    other = [Cell("quadratic", "paper", 0.0)]
    other += [
        Cell("quadratic", f, a)
        for f in quad_forms
        for a in quad_alphas
        if Cell("quadratic", f, a) not in head
    ]
    other += ctx.pick(
        [],
        [Cell("mlp", "paper", 0.0), Cell("mlp", "projector", 0.5), Cell("mlp", "paper", 1.5)],
        [
            Cell("mlp", "paper", 0.0),
            Cell("mlp", "projector", 0.5),
            Cell("mlp", "symmetric", 0.5),
            Cell("mlp", "raw_projection", 0.5),
            Cell("mlp", "paper", 1.0),
            Cell("mlp", "paper", 1.5),
        ],
    )
    return {
        "headline": head,
        "other": other,
        "quadratic_seeds": ctx.pick(10, 20, 40),
        "mlp_seeds": ctx.pick(3, 6, 10),
        "quadratic_t_max": ctx.pick(1024, 2048, 4096),
        "mlp_t_max": ctx.pick(256, 512, 1024),
        "mlp_widths": ctx.pick((6, 10, 3), (6, 10, 3), (8, 16, 3)),
    }


def constant_step(
    seeds: tuple[int, ...],
    t_max: int,
    alpha: float = 0.5,
    etas: tuple[float, ...] = (0.1, 0.05, 0.025),
) -> dict[str, Any]:
    """Paper rule, constant step, quadratic: the tail mean of ``||g||`` against its bound.

    Per eta and seed: the tail mean of ``||g||`` (last quarter), its descent-lemma bound,
    divergence; and per seed the log-log slope of the tail mean against eta.
    """
    lam_max, kappa = (
        max(QUADRATIC_EIGENVALUES),
        max(QUADRATIC_EIGENVALUES) / min(QUADRATIC_EIGENVALUES),
    )
    tails, bounds, div = [], [], []
    n = t_max // 4
    for eta in etas:
        r = quadratic_runs("paper", alpha, eta, seeds, t_max, schedule="constant")
        gn, loss = r["grad_norm"], r["loss"]
        t0 = t_max - n
        tails.append(np.mean(gn[:, t0:t_max], axis=1))
        bounds.append(
            kappa * (loss[:, t0] / (eta * n) + 0.5 * lam_max * (1 + alpha) ** 2 * eta) / (1 - alpha)
        )
        div.append(~np.isfinite(gn[:, -1]) | (gn[:, -1] > gn[:, 0]))
    tails_a, bounds_a, div_a = np.array(tails), np.array(bounds), np.array(div)
    slopes = [
        float(np.polyfit(np.log(etas), np.log(tails_a[:, i]), 1)[0])
        if np.all(np.isfinite(tails_a[:, i])) and np.all(tails_a[:, i] > 0)
        else math.nan
        for i in range(len(seeds))
    ]
    return {
        "alpha": alpha,
        "etas": list(etas),
        "tail_steps": n,
        "tail_mean_grad_norm": tails_a.tolist(),
        "bound": bounds_a.tolist(),
        "diverged": div_a.tolist(),
        "n_diverged": int(np.any(div_a, axis=0).sum()),
        "slope_vs_eta": slopes,
    }


def measure(ctx: ExperimentContext) -> dict[str, Any]:
    """Every cell of the scale's :func:`plan`, the constant-step runs and the fast path's deviation.

    ``results`` maps id -> :class:`CellResult`; the fast path's deviation is measured from the
    package's step.
    """
    p = plan(ctx)
    seeds_q = tuple(ctx.seed + s for s in range(p["quadratic_seeds"]))
    seeds_m = tuple(ctx.seed + s for s in range(p["mlp_seeds"]))
    results: dict[str, CellResult] = {}
    for cell in p["headline"] + p["other"]:
        quad = cell.problem == "quadratic"
        results[cell.id] = run_cell(
            cell,
            seeds_q if quad else seeds_m,
            p["quadratic_t_max"] if quad else p["mlp_t_max"],
            widths=p["mlp_widths"],
            ctx=ctx,
        )
    forms = sorted({c.form for c in p["headline"] + p["other"] if c.problem == "quadratic"})
    deviation = {f: fast_path_deviation(f, 0.5, ctx.seed) for f in forms}
    return {
        "plan": p,
        "results": results,
        "seeds_quadratic": seeds_q,
        "seeds_mlp": seeds_m,
        "constant_step": constant_step(seeds_q, p["quadratic_t_max"]),
        "fast_path_deviation": deviation,
    }
