r"""One step of the SAM family as a pure function of (problem, state, config, batch).

.. math::
    \varepsilon = \text{perturbation}(g, v),\quad g_{adv} = \nabla L(w + \varepsilon),\quad
    d = \text{direction}(g_{adv}, v),

    b^+ = \mu\,b + (d + \lambda_{wd}\,w),\qquad w^+ = w - \eta_t\,b^+

(PyTorch SGD semantics; with :math:`\mu = 0` and :math:`\lambda_{wd} = 0`,
:math:`w^+ = w - \eta_t d`).
The state is an immutable record; the step returns a new one and the step's diagnostics.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsam_theory.backend import asarray, namespace
from xsam_theory.optimizers.config import (
    EigvecSource,
    LRSchedule,
    Method,
    OptimizerConfig,
    Perturbation,
    Schedule,
)
from xsam_theory.optimizers.directions import (
    eigen_sam_perturbation,
    sam_perturbation,
    xsam_direction,
)
from xsam_theory.problems.base import Problem, check_vector
from xsam_theory.spectral import HessianOperator, orient, power_iteration, top_eigenpair
from xsam_theory.vectors import inner, norm, unit

__all__ = ["OptimizerState", "StepInfo", "finite_eigenpair", "init_state", "learning_rate",
           "step"]


@dataclass(frozen=True)
class OptimizerState:
    """Everything a step needs from the past.

    Attributes:
        w: current parameters.
        step: global step index ``t`` (0 before the first step).
        epoch_step: the reference schedule's step counter within the current epoch.
        v: current unit eigenvector estimate, or ``None`` before the first refresh.
        v_start: the random start vector of the first power iteration / Lanczos run.
        eigenvalue: the eigenvalue estimate of the last refresh (NaN before the first).
        momentum: heavy-ball buffer ``b`` (``None`` until the first step with momentum).
    """

    w: Any
    step: int = 0
    epoch_step: int = 0
    v: Any = None
    v_start: Any = None
    eigenvalue: float = math.nan
    momentum: Any = None


@dataclass(frozen=True)
class StepInfo:
    """Diagnostics of one step (SPEC §2). NaN marks a quantity that is not defined at this step
    (no ``v`` yet, a zero vector, no refresh); it never stands for a numerical failure."""

    loss: float
    grad_norm: float
    adv_grad_norm: float
    direction_norm: float
    c: float
    angle_g_v: float
    angle_g_v_free: float
    angle_d_v: float
    angle_d_v_free: float
    eigenvalue: float
    refreshed: bool
    lr: float
    n_grad: int
    n_hvp: int

    FIELDS = ("loss", "grad_norm", "adv_grad_norm", "direction_norm", "c", "angle_g_v",
              "angle_g_v_free", "angle_d_v", "angle_d_v_free", "eigenvalue", "refreshed", "lr",
              "n_grad", "n_hvp")


def init_state(problem: Problem, w0: Any, config: OptimizerConfig, *,
               seed: int = 0) -> OptimizerState:
    """The state before the first step; ``seed`` draws the first eigenvector start vector."""
    check_vector("w0", w0, problem.dim)
    v_start = None
    if config.uses_eigvec:
        rng = np.random.default_rng(seed)
        v_start = asarray(rng.standard_normal(problem.dim), like=w0)
    return OptimizerState(w=w0, v_start=v_start)


def learning_rate(config: OptimizerConfig, t: int) -> float:
    r""":math:`\eta_t`: ``constant`` :math:`\eta_0`, ``inv_sqrt`` :math:`\eta_0/\sqrt{t+1}`,
    ``cosine`` :math:`\eta_0\,(1 + \cos(\pi\min(t, T)/T))/2`."""
    if config.lr_schedule is LRSchedule.CONSTANT:
        return config.lr
    if config.lr_schedule is LRSchedule.INV_SQRT:
        return config.lr / math.sqrt(t + 1)
    T = config.total_steps
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, T) / T))


def _refresh_due(config: OptimizerConfig, state: OptimizerState) -> bool:
    if not config.uses_eigvec:
        return False
    if config.schedule is Schedule.REFERENCE:
        c = state.epoch_step
        return c % config.refresh_every == 0 and c > 0
    return state.step % config.refresh_every == 0


def finite_eigenpair(op: HessianOperator, compute: Any) -> Any:
    """``compute()`` (a spectral method on ``op``), with an overflowing Hessian reported as such.

    At a finite but huge point (a diverging run) the Hessian-vector products can overflow; the
    eigensolvers then fail in their own ways (``ValueError`` from dense ``eigh``, an ARPACK
    error, or a NaN eigenvalue). Those become one ``FloatingPointError`` saying why, which
    :func:`~xsam_theory.trajectory.run_trajectory` treats as divergence.
    """
    try:
        res = compute()
    except (ValueError, RuntimeError) as err:
        probe = op.matvec(op.xp.ones((op.dim,), dtype=op.dtype, device=op.device))
        if bool(op.xp.all(op.xp.isfinite(probe))):
            raise
        raise FloatingPointError("non-finite Hessian-vector products (the Hessian overflows at "
                                 "this point)") from err
    if not (math.isfinite(float(res.eigenvalue))
            and bool(op.xp.all(op.xp.isfinite(res.eigenvector)))):
        raise FloatingPointError("non-finite eigenpair (the Hessian overflows at this point)")
    return res


def _refresh(point: Any, state: OptimizerState, config: OptimizerConfig) -> tuple[Any, float, int]:
    """New ``(v, eigenvalue, n_hvp)`` from the Hessian at ``point``; warm-started from ``v``."""
    op = HessianOperator.from_point(point)
    start = state.v if state.v is not None else state.v_start
    if config.eigvec_source is EigvecSource.POWER:
        # reference semantics: a fixed number of normalized power steps, dominant |λ|,
        # no re-orientation
        res = finite_eigenpair(
            op, lambda: power_iteration(op, start, config.power_steps, rayleigh=False))
        return res.eigenvector, float(res.eigenvalue), op.n_hvp
    res = finite_eigenpair(op, lambda: top_eigenpair(op, config.eigvec_source.value, v0=start,
                                                     tol=config.eigen_tol))
    v = config.eigvec_sign * orient(res.eigenvector)
    return v, float(res.eigenvalue), op.n_hvp


def _angles(dot: float, norms: float) -> tuple[float, float]:
    """(oriented, orientation-free) angle in degrees from <u,v> and ||u||·||v|| (NaN if 0)."""
    if norms == 0.0 or not math.isfinite(norms):
        return math.nan, math.nan
    cos = max(-1.0, min(1.0, dot / norms))
    return math.degrees(math.acos(cos)), math.degrees(math.acos(abs(cos)))


def step(problem: Problem, state: OptimizerState, config: OptimizerConfig,
         batch: Any = None) -> tuple[OptimizerState, StepInfo]:
    """One optimizer step from ``state`` on ``batch`` (``None``: all data).

    Raises ``FloatingPointError`` when the step overflows at a finite ``w`` (the perturbed point
    ``w + eps`` or the Hessian used for ``v`` is not finite): what a diverging run meets first.
    """
    w = state.w
    t = state.step
    eta = learning_rate(config, t)
    point = problem.at(w, batch)
    g = point.grad
    loss = float(point.loss)
    n_grad, n_hvp = 1, 0

    v, eigenvalue, refreshed = state.v, math.nan, False
    if _refresh_due(config, state):
        v, eigenvalue, n_hvp = _refresh(point, state, config)
        refreshed = True
    reference_pre_v = config.schedule is Schedule.REFERENCE and v is None

    # --- ascent step ε -------------------------------------------------------------------
    if config.method is Method.GD:
        eps = None
    elif config.method is Method.EIGEN_SAM and v is not None:
        # ε = ρ(ĝ + α sign(<g,v>)(v − <ĝ,v>ĝ))
        eps = eigen_sam_perturbation(g, v, config.rho, config.alpha)
    elif config.method is Method.EIGEN_SAM and reference_pre_v:
        # the Eigen-SAM reference perturbs by the unnormalized ρg before its first v
        eps = sam_perturbation(g, config.rho, normalize=False)
    else:
        # ε = ρĝ (SAM, X-SAM, Eigen-SAM at α = 0) or ρg (USAM)
        eps = sam_perturbation(g, config.rho,
                               normalize=config.perturbation is Perturbation.NORMALIZED)
    if eps is None or config.rho == 0.0:
        g_adv = g                       # ∇L(w + 0) = g: skip the second gradient
    else:
        w_adv = w + eps
        try:
            g_adv = problem.grad(w_adv, batch)
        except ValueError as err:
            xp = namespace(w_adv)
            if bool(xp.all(xp.isfinite(w_adv))):
                raise
            # a diverging run: the gradient overflowed at a finite w, or a finite but huge
            # gradient overflowed the ascent step; the problem's own finiteness check found it
            # (no extra check on the hot path)
            if not bool(xp.all(xp.isfinite(g))):
                what = f"non-finite gradient at the finite iterate of step {t} (loss {loss:.6g})"
            else:
                what = (f"non-finite perturbed point w + eps at step {t} "
                        f"(||g|| = {float(norm(g)):.6g}, rho = {config.rho!r})")
            raise FloatingPointError(what) from err
        n_grad += 1

    # --- descent direction d ----------------------------------------------------------------
    c = math.nan
    if config.method is Method.XSAM and v is not None:
        # d = base − α·(|γ| or γ)·v   (see xsam_direction)
        d, c_arr = xsam_direction(g_adv, v, config.alpha, sign_rule=config.sign_rule,
                                  normalize=config.normalize, coefficient=config.coefficient)
        c = float(c_arr)
    elif config.method is Method.XSAM and not reference_pre_v:
        d = unit(g_adv) if config.normalize else g_adv   # α = 0: no correction, v not needed
    else:
        d = g_adv                       # GD: d = g;  SAM/USAM/Eigen-SAM: d = ∇L(w + ε)

    # --- base optimizer (PyTorch SGD semantics) ----------------------------------------------
    direction = d if config.weight_decay == 0.0 else d + config.weight_decay * w
    if config.momentum == 0.0:
        buf = None
        update = direction
    else:
        # b ← μb + (d + wd·w); the first step starts from b = d + wd·w
        buf = direction if state.momentum is None else config.momentum * state.momentum + direction
        update = buf
    w_new = w - eta * update            # w⁺ = w − η_t b

    epoch_step = state.epoch_step + 1
    if config.steps_per_epoch is not None and epoch_step >= config.steps_per_epoch:
        epoch_step = 0
    new_state = dataclasses.replace(
        state, w=w_new, step=t + 1, epoch_step=epoch_step, v=v, momentum=buf,
        eigenvalue=eigenvalue if refreshed else state.eigenvalue,
    )
    g_norm = float(norm(g))
    adv_norm = g_norm if g_adv is g else float(norm(g_adv))
    d_norm = adv_norm if d is g_adv else float(norm(d))
    if v is not None:
        v_norm = float(norm(v))
        a_g, a_g_free = _angles(float(inner(g, v)), g_norm * v_norm)
        a_d, a_d_free = _angles(float(inner(d, v)), d_norm * v_norm)
    else:
        a_g = a_g_free = a_d = a_d_free = math.nan
    info = StepInfo(
        loss=loss,
        grad_norm=g_norm,
        adv_grad_norm=adv_norm,
        direction_norm=d_norm,
        c=c,
        angle_g_v=a_g,
        angle_g_v_free=a_g_free,
        angle_d_v=a_d,
        angle_d_v_free=a_d_free,
        eigenvalue=eigenvalue,
        refreshed=refreshed,
        lr=eta,
        n_grad=n_grad,
        n_hvp=n_hvp,
    )
    return new_state, info
