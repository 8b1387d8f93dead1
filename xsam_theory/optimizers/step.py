r"""One step of the SAM family as a pure function of (problem, state, config, batch).

.. math::
    \varepsilon = \text{perturbation}(g, v),\quad g_{adv} = \nabla L(w + \varepsilon),\quad
    d = \text{direction}(g_{adv}, v),

    b^+ = \mu\,b + (d + \lambda_{wd}\,w),\qquad w^+ = w - \eta_t\,b^+

(PyTorch SGD semantics; with :math:`\mu = 0` and :math:`\lambda_{wd} = 0`,
:math:`w^+ = w - \eta_t d`; docs/algorithms.md#A-base-step).
The state is an immutable record; the step returns a new one and the step's diagnostics
(docs/algorithms.md#A-step-report). The perturbations and directions are those of
docs/algorithms.md#A-xsam-forms (identities: docs/theory.md#T-correction-identities), the
schedule that of docs/algorithms.md#A-schedule.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from xsam_theory.backend import asarray, namespace
from xsam_theory.optimizers import rules
from xsam_theory.optimizers.config import EigvecSource, LRSchedule, OptimizerConfig
from xsam_theory.problems.base import Problem, check_vector
from xsam_theory.spectral import HessianOperator, power_iteration, top_eigenpair
from xsam_theory.vectors import inner, norm

__all__ = [
    "VECTOR_DIAGNOSTICS",
    "OptimizerState",
    "StepInfo",
    "finite_eigenpair",
    "init_state",
    "learning_rate",
    "step",
]


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
    """Diagnostics of one step.

    NaN marks a quantity that is not defined at this step (no ``v`` yet, a zero vector, no
    refresh), or a vector diagnostic (:data:`VECTOR_DIAGNOSTICS`) of a step taken with
    ``diagnostics=False``; it never stands for a numerical failure.
    """

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

    FIELDS = (
        "loss",
        "grad_norm",
        "adv_grad_norm",
        "direction_norm",
        "c",
        "angle_g_v",
        "angle_g_v_free",
        "angle_d_v",
        "angle_d_v_free",
        "eigenvalue",
        "refreshed",
        "lr",
        "n_grad",
        "n_hvp",
    )


def init_state(
    problem: Problem, w0: Any, config: OptimizerConfig, *, seed: int = 0
) -> OptimizerState:
    """The state before the first step; ``seed`` draws the first eigenvector start vector."""
    check_vector("w0", w0, problem.dim)
    v_start = None
    if config.uses_eigvec:
        rng = np.random.default_rng(seed)
        v_start = asarray(rng.standard_normal(problem.dim), like=w0)
    return OptimizerState(w=w0, v_start=v_start)


def learning_rate(config: OptimizerConfig, t: int) -> float:
    r"""The learning rate :math:`\eta_t` of step ``t``.

    ``constant`` :math:`\eta_0`, ``inv_sqrt`` :math:`\eta_0/\sqrt{t+1}`,
    ``cosine`` :math:`\eta_0\,(1 + \cos(\pi\min(t, T)/T))/2` with ``T = total_steps``.

    Args:
        config: supplies ``lr`` (:math:`\eta_0`), ``lr_schedule`` and ``total_steps``.
        t: the global step index.

    Returns:
        :math:`\eta_t`.
    """
    if config.lr_schedule is LRSchedule.CONSTANT:
        return config.lr
    if config.lr_schedule is LRSchedule.INV_SQRT:
        return config.lr / math.sqrt(t + 1)
    T = config.total_steps
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(t, T) / T))


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
        raise FloatingPointError(
            "non-finite Hessian-vector products (the Hessian overflows at this point)"
        ) from err
    if not (
        math.isfinite(float(res.eigenvalue)) and bool(op.xp.all(op.xp.isfinite(res.eigenvector)))
    ):
        raise FloatingPointError("non-finite eigenpair (the Hessian overflows at this point)")
    return res


def _refresh(point: Any, state: OptimizerState, config: OptimizerConfig) -> tuple[Any, float, int]:
    """New ``(v, eigenvalue, n_hvp)`` from the Hessian at ``point``; warm-started from ``v``."""
    op = HessianOperator.from_point(point)
    start = rules.eigvec_start(state.v, state.v_start)
    if config.eigvec_source is EigvecSource.POWER:
        # reference semantics: a fixed number of normalized power steps, dominant |λ|
        def compute() -> Any:
            return power_iteration(op, start, config.power_steps, rayleigh=False)
    else:

        def compute() -> Any:
            return top_eigenpair(op, config.eigvec_source.value, v0=start, tol=config.eigen_tol)

    res = finite_eigenpair(op, compute)
    return rules.finish_eigvec(config, res.eigenvector), float(res.eigenvalue), op.n_hvp


def _angles(dot: float, norms: float) -> tuple[float, float]:
    """(oriented, orientation-free) angle in degrees from <u,v> and ||u||·||v|| (NaN if 0)."""
    if norms == 0.0 or not math.isfinite(norms):
        return math.nan, math.nan
    cos = max(-1.0, min(1.0, dot / norms))
    return math.degrees(math.acos(cos)), math.degrees(math.acos(abs(cos)))


def _adversarial_gradient(
    problem: Problem, w: Any, g: Any, eps: Any, batch: Any, t: int, loss: float, rho: float
) -> Any:
    r""":math:`\nabla L(w + \varepsilon)` on ``batch``, an overflow reported as divergence.

    Raises:
        FloatingPointError: the gradient at ``w + eps`` is not finite because ``w + eps`` or
            ``g`` is not (a diverging run).
    """
    w_adv = _add_into_own(w, eps)
    try:
        return problem.grad(w_adv, batch)
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
            what = (
                f"non-finite perturbed point w + eps at step {t} "
                f"(||g|| = {float(norm(g)):.6g}, rho = {rho!r})"
            )
        raise FloatingPointError(what) from err


def _base_update(
    config: OptimizerConfig, state: OptimizerState, d: Any, eta: float
) -> tuple[Any, Any]:
    r"""PyTorch SGD's update from direction ``d``: ``(w⁺, momentum buffer)``.

    :math:`b^+ = \mu b + (d + \lambda_{wd} w)` (the first step starts from
    :math:`b = d + \lambda_{wd} w`; no buffer when :math:`\mu = 0`),
    :math:`w^+ = w - \eta_t b^+`.
    """
    w = state.w
    update = d if config.weight_decay == 0.0 else d + config.weight_decay * w
    buf = None
    if config.momentum != 0.0:
        buf = update if state.momentum is None else config.momentum * state.momentum + update
        update = buf
    return _minus_scaled(w, eta, update), buf


def _add_into_own(w: Any, eps: Any) -> Any:
    """``w + eps`` written into ``eps`` (new, owned by the step) for NumPy; same bits."""
    if type(eps) is np.ndarray and type(w) is np.ndarray and eps.dtype == w.dtype:
        return np.add(w, eps, out=eps)
    return w + eps


def _minus_scaled(w: Any, eta: float, u: Any) -> Any:
    """``w - eta * u`` in one new array for NumPy: ``eta * u`` written, ``w`` minus it in place.

    The same operations in the same order as the plain expression, so the same bits.
    """
    if type(u) is np.ndarray and type(w) is np.ndarray and u.dtype == w.dtype:
        t = np.multiply(eta, u)
        return np.subtract(w, t, out=t)
    return w - eta * u


#: the :class:`StepInfo` fields computed from vectors (norms and angles): NaN when a step is
#: taken with ``diagnostics=False``
VECTOR_DIAGNOSTICS = (
    "grad_norm",
    "adv_grad_norm",
    "direction_norm",
    "angle_g_v",
    "angle_g_v_free",
    "angle_d_v",
    "angle_d_v_free",
)


def _vector_diagnostics(g: Any, g_adv: Any, d: Any, v: Any) -> dict[str, float]:
    r"""The norms and angles of a step, each vector pass done once.

    :math:`\|g\|, \|g_{adv}\|, \|d\|` (a norm is reused where two vectors are the same
    object: :math:`g_{adv} = g` without a second gradient, :math:`d = g_{adv}` for a raw
    descent), and with ``v``: :math:`\|v\|` once for both angles, :math:`\langle g, v\rangle`
    and :math:`\langle d, v\rangle`, giving :math:`\angle(g, v)` and :math:`\angle(d, v)`
    (oriented and orientation-free, degrees). At most six passes over the vectors (X-SAM), two
    for SAM, one for GD.

    Args:
        g: the gradient at ``w``.
        g_adv: the gradient at ``w + eps`` (``g`` itself without a second gradient).
        d: the descent direction (``g_adv`` itself for a raw descent).
        v: the eigenvector, or ``None``.

    Returns:
        The :data:`VECTOR_DIAGNOSTICS` fields by name (angles NaN without ``v``).
    """
    g_norm = float(norm(g))
    adv_norm = g_norm if g_adv is g else float(norm(g_adv))
    d_norm = adv_norm if d is g_adv else float(norm(d))
    a_g = a_g_free = a_d = a_d_free = math.nan
    if v is not None:
        v_norm = float(norm(v))
        a_g, a_g_free = _angles(float(inner(g, v)), g_norm * v_norm)
        a_d, a_d_free = (a_g, a_g_free) if d is g else _angles(float(inner(d, v)), d_norm * v_norm)
    return {
        "grad_norm": g_norm,
        "adv_grad_norm": adv_norm,
        "direction_norm": d_norm,
        "angle_g_v": a_g,
        "angle_g_v_free": a_g_free,
        "angle_d_v": a_d,
        "angle_d_v_free": a_d_free,
    }


def _info(
    point_loss: float,
    vectors: dict[str, float] | None,
    c: Any,
    eigenvalue: float,
    refreshed: bool,
    eta: float,
    n_grad: int,
    n_hvp: int,
) -> StepInfo:
    """The step's :class:`StepInfo`; ``vectors=None``: the vector diagnostics are NaN."""
    if vectors is None:
        vectors = dict.fromkeys(VECTOR_DIAGNOSTICS, math.nan)
    return StepInfo(
        loss=point_loss,
        c=math.nan if c is None else float(c),
        eigenvalue=eigenvalue,
        refreshed=refreshed,
        lr=eta,
        n_grad=n_grad,
        n_hvp=n_hvp,
        **vectors,
    )


def step(
    problem: Problem,
    state: OptimizerState,
    config: OptimizerConfig,
    batch: Any = None,
    *,
    diagnostics: bool = True,
) -> tuple[OptimizerState, StepInfo]:
    """One optimizer step from ``state`` on ``batch`` (``None``: all data).

    The decisions (refresh, phase, ascent, descent, counters) are those of
    :mod:`xsam_theory.optimizers.rules`; the formulas those of
    :mod:`xsam_theory.optimizers.directions`; the update PyTorch SGD's (module docstring).

    Args:
        problem: the objective.
        state: the state before the step.
        config: the optimizer's configuration.
        batch: sample indices of the minibatch, or ``None`` for all data.
        diagnostics: compute the vector diagnostics of ``info`` (norms and angles,
            :data:`VECTOR_DIAGNOSTICS`: up to six passes over the vectors). ``False`` leaves
            them NaN and skips those passes, for callers that record none of them (the bench's
            timings); the new state is bit-identical either way.

    Returns:
        ``(new_state, info)``.

    Raises:
        FloatingPointError: the step overflows at a finite ``w`` (the perturbed point
            ``w + eps`` or the Hessian used for ``v`` is not finite): what a diverging run meets
            first.
    """
    t = state.step
    eta = learning_rate(config, t)
    point = problem.at(state.w, batch)
    g = point.grad
    loss = float(point.loss)

    v, eigenvalue, n_hvp = state.v, math.nan, 0
    refreshed = rules.refresh_due(config, t, state.epoch_step)
    if refreshed:
        v, eigenvalue, n_hvp = _refresh(point, state, config)
    plan = rules.plan(config, has_v=v is not None)
    g_adv, n_grad = g, 1  # ∇L(w + 0) = g: no second gradient
    if plan.second_gradient:
        eps = rules.perturbation(config, plan.ascent, g, v)
        g_adv, n_grad = (
            _adversarial_gradient(problem, state.w, g, eps, batch, t, loss, config.rho),
            2,
        )
    d, c = rules.direction(config, plan.descent, g_adv, v)
    w_new, buf = _base_update(config, state, d, eta)
    next_step, epoch_step = rules.advance(config, t, state.epoch_step)
    new_state = dataclasses.replace(
        state,
        w=w_new,
        step=next_step,
        epoch_step=epoch_step,
        v=v,
        momentum=buf,
        eigenvalue=eigenvalue if refreshed else state.eigenvalue,
    )
    vectors = _vector_diagnostics(g, g_adv, d, v) if diagnostics else None
    return new_state, _info(loss, vectors, c, eigenvalue, refreshed, eta, n_grad, n_hvp)
