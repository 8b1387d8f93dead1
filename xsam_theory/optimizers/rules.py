r"""Every decision of the SAM-family step, once: which formula applies when.

The formulas live in :mod:`xsam_theory.optimizers.directions`; this module decides, from the
configuration, the counters and whether an eigenvector ``v`` exists yet, which of them a step
uses. The NumPy step (:func:`xsam_theory.optimizers.step`) and the torch optimizers
(:class:`xsam_theory.torch.SAMFamily`) both call these functions and keep only their own
bookkeeping (problem evaluation, parameter groups, saving and writing back the weights), so a
rule written here holds on both. One step reads:

1. :func:`refresh_due` (from the counters): is ``v`` recomputed before this step?
   :func:`eigvec_start` warm-starts the eigensolver; :func:`finish_eigvec` orients its result.
2. :func:`plan` (from the configuration and whether ``v`` exists): the step's :class:`Phase`,
   its :class:`Ascent` (which perturbation :math:`\varepsilon`, and whether a second gradient
   is needed) and its :class:`Descent` (which direction :math:`d`).
3. :func:`perturbation` and :func:`direction` apply the planned formulas to vectors.
4. :func:`advance` moves the counters on (global step, per-epoch step with its restart).

**Adding a variant.** Give it its option in :class:`~xsam_theory.optimizers.OptimizerConfig`
(a :class:`~xsam_theory.optimizers.Method` or a switch) and, if it has a new formula, the pure
map in :mod:`~xsam_theory.optimizers.directions`; then decide it here: a member of
:class:`Ascent` or :class:`Descent`, its branch in :func:`ascent_of` / :func:`descent_of`,
and its formula in the table of :func:`perturbation` / :func:`direction`. Nothing else changes:
:func:`~xsam_theory.optimizers.step`, the trajectory runner and the torch optimizers pick it up.

The reference schedule (``schedule="reference"``, the authors' training loop) differs from the
standard one in three rules, all here: ``v`` is first computed at the per-epoch step
``refresh_every`` (never at 0) and then every ``refresh_every`` steps of an epoch
(:func:`refresh_due`); the per-epoch counter restarts every ``steps_per_epoch`` steps while
``v`` persists (:func:`advance`); before the first ``v`` (:attr:`Phase.BEFORE_V`) X-SAM takes
the raw SAM step :math:`d = g_{adv}` and Eigen-SAM perturbs by USAM's :math:`\rho g`. The
schedules step by step: docs/algorithms.md#A-schedule; what the authors' loop does:
docs/algorithms.md#A-reference-code.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from xsam_theory.optimizers.config import (
    EigvecSource,
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
from xsam_theory.spectral.angles import orient
from xsam_theory.vectors import unit

__all__ = [
    "Ascent",
    "Descent",
    "Phase",
    "StepPlan",
    "advance",
    "ascent_of",
    "descent_of",
    "direction",
    "eigvec_start",
    "epoch_counter_never_restarts",
    "finish_eigvec",
    "perturbation",
    "phase_of",
    "plan",
    "refresh_due",
    "refresh_never_happens",
]


class Phase(str, Enum):
    """Where a step stands relative to the first eigenvector.

    See docs/algorithms.md#A-schedule.

    Attributes:
        BEFORE_V: the reference schedule before its first ``v`` (the authors' loop then takes
            plain SAM steps, see the module docstring).
        REGULAR: every other step (any step of the standard schedule, and the reference
            schedule once ``v`` exists).
    """

    BEFORE_V = "before_v"
    REGULAR = "regular"


class Ascent(str, Enum):
    r"""The ascent step :math:`\varepsilon` of a step.

    Attributes:
        NONE: no ascent (GD): :math:`\varepsilon = 0`, no second gradient.
        NORMALIZED: SAM's :math:`\varepsilon = \rho\hat g`.
        UNNORMALIZED: USAM's :math:`\varepsilon = \rho g`.
        EIGEN_SAM: :math:`\varepsilon = \rho(\hat g + \alpha\,\mathrm{sign}\langle g,v\rangle
            (v - \langle\hat g,v\rangle\hat g))` (docs/algorithms.md#A-eigen-sam).
    """

    NONE = "none"
    NORMALIZED = "normalized"
    UNNORMALIZED = "unnormalized"
    EIGEN_SAM = "eigen_sam"


class Descent(str, Enum):
    r"""The descent direction :math:`d` built from :math:`g_{adv} = \nabla L(w+\varepsilon)`.

    Attributes:
        RAW: :math:`d = g_{adv}` (GD, SAM, USAM, Eigen-SAM; X-SAM before the first ``v`` of
            the reference schedule, or with ``normalize=False`` and no ``v``).
        NORMALIZED: :math:`d = \hat g_{adv}` (X-SAM without ``v``: :math:`\alpha = 0`).
        CORRECTED: X-SAM's :math:`d = u - \alpha(|\gamma|\text{ or }\gamma)v`
            (:func:`~xsam_theory.optimizers.directions.xsam_direction`,
            docs/algorithms.md#A-xsam-forms).
    """

    RAW = "raw"
    NORMALIZED = "normalized"
    CORRECTED = "corrected"


@dataclass(frozen=True)
class StepPlan:
    r"""The decisions of one step, taken before any vector is touched.

    Attributes:
        phase: before or after the first ``v`` (:class:`Phase`).
        ascent: the perturbation (:class:`Ascent`).
        descent: the direction (:class:`Descent`).
        second_gradient: whether :math:`\nabla L(w+\varepsilon)` is evaluated; ``False``
            when there is no ascent or :math:`\rho = 0` (then :math:`g_{adv} = g` exactly).
    """

    phase: Phase
    ascent: Ascent
    descent: Descent
    second_gradient: bool


# -- the phase and the plan ---------------------------------------------------------------------


def phase_of(config: OptimizerConfig, has_v: bool) -> Phase:
    """The phase of a step.

    Args:
        config: the optimizer's configuration.
        has_v: whether an eigenvector exists at this step (after a refresh due at it).

    Returns:
        ``BEFORE_V`` under the reference schedule while no ``v`` exists, else ``REGULAR``.
    """
    if config.schedule is Schedule.REFERENCE and not has_v:
        return Phase.BEFORE_V
    return Phase.REGULAR


def ascent_of(config: OptimizerConfig, phase: Phase, has_v: bool) -> Ascent:
    r"""Which perturbation a step takes.

    Rules: GD has none; Eigen-SAM with a ``v`` uses its own; Eigen-SAM before the reference
    schedule's first ``v`` uses USAM's :math:`\rho g` (the authors' code); every other step
    uses the configured ``perturbation`` (SAM's :math:`\rho\hat g` or USAM's :math:`\rho g`;
    also Eigen-SAM without ``v`` at :math:`\alpha = 0`).

    Args:
        config: the optimizer's configuration.
        phase: the step's phase (:func:`phase_of`).
        has_v: whether an eigenvector exists at this step.

    Returns:
        The :class:`Ascent` of the step.
    """
    if config.method is Method.GD:
        return Ascent.NONE
    if config.method is Method.EIGEN_SAM and has_v:
        return Ascent.EIGEN_SAM
    if config.method is Method.EIGEN_SAM and phase is Phase.BEFORE_V:
        return Ascent.UNNORMALIZED
    if config.perturbation is Perturbation.NORMALIZED:
        return Ascent.NORMALIZED
    return Ascent.UNNORMALIZED


def descent_of(config: OptimizerConfig, phase: Phase, has_v: bool) -> Descent:
    r"""Which direction a step descends along.

    Rules: X-SAM with a ``v`` is corrected; X-SAM without ``v`` outside the reference
    schedule's first phase (:math:`\alpha = 0`) takes :math:`\hat g_{adv}` (``normalize``)
    or :math:`g_{adv}`; X-SAM before the reference schedule's first ``v`` and every other
    method take :math:`g_{adv}`.

    Args:
        config: the optimizer's configuration.
        phase: the step's phase (:func:`phase_of`).
        has_v: whether an eigenvector exists at this step.

    Returns:
        The :class:`Descent` of the step.
    """
    if config.method is not Method.XSAM or phase is Phase.BEFORE_V:
        return Descent.RAW
    if has_v:
        return Descent.CORRECTED
    return Descent.NORMALIZED if config.normalize else Descent.RAW


def plan(config: OptimizerConfig, has_v: bool) -> StepPlan:
    """All decisions of a step (:func:`phase_of`, :func:`ascent_of`, :func:`descent_of`).

    Args:
        config: the optimizer's configuration.
        has_v: whether an eigenvector exists at this step (after a refresh due at it).

    Returns:
        The :class:`StepPlan`; its ``second_gradient`` is ``ascent != NONE and rho != 0``.
    """
    phase = phase_of(config, has_v)
    ascent = ascent_of(config, phase, has_v)
    return StepPlan(
        phase=phase,
        ascent=ascent,
        descent=descent_of(config, phase, has_v),
        second_gradient=ascent is not Ascent.NONE and config.rho != 0.0,
    )


# -- the planned formulas -------------------------------------------------------------------------


def perturbation(config: OptimizerConfig, ascent: Ascent, g: Any, v: Any) -> Any:
    r"""The perturbation :math:`\varepsilon` that ``ascent`` names.

    Args:
        config: supplies :math:`\rho` and :math:`\alpha`.
        ascent: the planned ascent (not ``NONE``).
        g: the gradient at ``w`` (flat vector).
        v: the eigenvector (used by ``EIGEN_SAM`` only; may be ``None`` otherwise).

    Returns:
        :math:`\rho\hat g`, :math:`\rho g` or Eigen-SAM's perturbation
        (:mod:`~xsam_theory.optimizers.directions`).

    Raises:
        ValueError: for ``Ascent.NONE`` (there is no perturbation to compute).
    """
    if ascent is Ascent.EIGEN_SAM:
        return eigen_sam_perturbation(g, v, config.rho, config.alpha)
    if ascent is Ascent.NONE:
        raise ValueError("Ascent.NONE has no perturbation")
    return sam_perturbation(g, config.rho, normalize=ascent is Ascent.NORMALIZED)


def direction(
    config: OptimizerConfig, descent: Descent, g_adv: Any, v: Any
) -> tuple[Any, Any | None]:
    r"""The descent direction :math:`d` that ``descent`` names, and X-SAM's coefficient.

    Args:
        config: supplies :math:`\alpha` and X-SAM's switches.
        descent: the planned descent.
        g_adv: the gradient at :math:`w + \varepsilon` (flat vector).
        v: the eigenvector (used by ``CORRECTED`` only).

    Returns:
        ``(d, c)``: ``d`` is :math:`g_{adv}` itself (``RAW``, the same object),
        :math:`\hat g_{adv}` or X-SAM's corrected direction; ``c`` is
        :math:`\langle\hat g_{adv}, v\rangle` for ``CORRECTED`` and ``None`` otherwise.
    """
    if descent is Descent.CORRECTED:
        return xsam_direction(
            g_adv,
            v,
            config.alpha,
            sign_rule=config.sign_rule,
            normalize=config.normalize,
            coefficient=config.coefficient,
        )
    if descent is Descent.NORMALIZED:
        return unit(g_adv), None
    return g_adv, None


# -- the eigenvector ------------------------------------------------------------------------------


def refresh_due(config: OptimizerConfig, step: int, epoch_step: int) -> bool:
    """Whether ``v`` is recomputed before the step with these counters.

    Standard schedule: at global steps ``0, k, 2k, ...``; reference schedule: at per-epoch
    steps ``k, 2k, ...`` (never 0), with ``k = refresh_every``. Never for a configuration that
    uses no eigenvector (docs/algorithms.md#A-schedule).

    Args:
        config: the optimizer's configuration.
        step: the global step index ``t`` (0 for the first step).
        epoch_step: the reference schedule's per-epoch counter.

    Returns:
        Whether the step refreshes ``v``.
    """
    if not config.uses_eigvec:
        return False
    if config.schedule is Schedule.REFERENCE:
        return epoch_step % config.refresh_every == 0 and epoch_step > 0
    return step % config.refresh_every == 0


def eigvec_start(v: Any, v_start: Any) -> Any:
    """The eigensolver's start vector: warm start from the current ``v``, else ``v_start``.

    Args:
        v: the current eigenvector, or ``None`` before the first refresh.
        v_start: the seeded random start vector.

    Returns:
        ``v`` if it exists, else ``v_start``.
    """
    return v_start if v is None else v


def finish_eigvec(config: OptimizerConfig, v: Any) -> Any:
    """The eigenvector a refresh stores, from the eigensolver's unit vector ``v``.

    Power iteration (the reference semantics) keeps the orientation its iterations give;
    ``exact`` and ``lanczos`` vectors are put in the canonical orientation (largest-magnitude
    entry positive, :func:`~xsam_theory.spectral.orient`) and multiplied by ``eigvec_sign``
    (docs/algorithms.md#A-eigenvector-sources).

    Args:
        config: supplies ``eigvec_source`` and ``eigvec_sign``.
        v: the eigensolver's vector.

    Returns:
        ``v`` (power) or ``eigvec_sign * orient(v)``.
    """
    if config.eigvec_source is EigvecSource.POWER:
        return v
    return config.eigvec_sign * orient(v)


# -- the counters ---------------------------------------------------------------------------------


def advance(config: OptimizerConfig, step: int, epoch_step: int) -> tuple[int, int]:
    """The counters after a completed step.

    The global step increases by one; the per-epoch step too, restarting at 0 when it reaches
    ``steps_per_epoch`` (never when that is ``None``; docs/algorithms.md#A-schedule).

    Args:
        config: supplies ``steps_per_epoch``.
        step: the global step index of the completed step.
        epoch_step: its per-epoch counter.

    Returns:
        ``(step + 1, next epoch_step)``.
    """
    epoch_step += 1
    if config.steps_per_epoch is not None and epoch_step >= config.steps_per_epoch:
        epoch_step = 0
    return step + 1, epoch_step


def epoch_counter_never_restarts(config: OptimizerConfig) -> bool:
    """Whether a run of ``config`` relies on a per-epoch restart that nothing will do.

    True for an eigenvector method on the reference schedule with ``steps_per_epoch=None``: the
    counter then counts global steps, unlike the authors' loop (a caller that knows the epoch
    length sets it, or restarts the counter itself).

    Args:
        config: the optimizer's configuration.

    Returns:
        ``uses_eigvec and schedule == "reference" and steps_per_epoch is None``.
    """
    return (
        config.uses_eigvec
        and config.schedule is Schedule.REFERENCE
        and config.steps_per_epoch is None
    )


def refresh_never_happens(config: OptimizerConfig) -> bool:
    """Whether the reference schedule's epochs are too short for any refresh.

    The per-epoch counter restarts before reaching ``refresh_every`` when
    ``steps_per_epoch <= refresh_every``, so ``v`` is never computed.

    Args:
        config: the optimizer's configuration.

    Returns:
        ``uses_eigvec and schedule == "reference" and steps_per_epoch <= refresh_every``.
    """
    return (
        config.uses_eigvec
        and config.schedule is Schedule.REFERENCE
        and config.steps_per_epoch is not None
        and config.steps_per_epoch <= config.refresh_every
    )
