"""Optimizer options, their validation, and the named presets of SPEC §2.

One frozen :class:`OptimizerConfig` describes every method of the SAM family as a set of
switches; the presets (:func:`preset`, :data:`PRESETS`) name the combinations in the literature.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

__all__ = [
    "PRESETS",
    "Coefficient",
    "CorrectionRule",
    "EigvecSource",
    "LRSchedule",
    "Method",
    "OptimizerConfig",
    "Perturbation",
    "Schedule",
    "SignRule",
    "preset",
]


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class Method(_StrEnum):
    """The family member: which perturbation and which correction the step uses."""

    GD = "gd"
    SAM = "sam"
    EIGEN_SAM = "eigen_sam"
    XSAM = "xsam"


class Perturbation(_StrEnum):
    r"""SAM's ascent step: ``normalized`` :math:`\varepsilon = \rho\hat g`, or ``unnormalized``
    :math:`\rho g` (USAM)."""

    NORMALIZED = "normalized"
    UNNORMALIZED = "unnormalized"


class SignRule(_StrEnum):
    r"""X-SAM's sign: ``paper`` subtracts :math:`\alpha\,\mathrm{sign}(c)\,c\,v = \alpha|c|v`;
    ``symmetric`` subtracts :math:`\alpha c v` (invariant under :math:`v\to-v`)."""

    PAPER = "paper"
    SYMMETRIC = "symmetric"


class Coefficient(_StrEnum):
    r"""Where X-SAM's projection coefficient comes from:
    ``normalized`` :math:`\langle\hat g_{adv}, v\rangle`
    or ``raw`` :math:`\langle g_{adv}, v\rangle`."""

    NORMALIZED = "normalized"
    RAW = "raw"


class EigvecSource(_StrEnum):
    """How ``v`` is computed: dense ``exact`` eigh, ``lanczos`` (algebraic top), or ``power``
    (the reference: dominant |λ|)."""

    EXACT = "exact"
    LANCZOS = "lanczos"
    POWER = "power"


class Schedule(_StrEnum):
    """When ``v`` is refreshed and what happens before it exists (SPEC §2).

    ``standard``: ``v`` is computed at step 0 and every ``refresh_every`` steps after.
    ``reference``: the authors' loop — first refresh at step ``refresh_every`` (never at 0), the
    counter restarts every epoch while ``v`` persists, and before the first ``v`` X-SAM takes the
    raw SAM step (Eigen-SAM the USAM perturbation).
    """

    STANDARD = "standard"
    REFERENCE = "reference"


class LRSchedule(_StrEnum):
    r"""``constant`` :math:`\eta_0`; ``inv_sqrt`` :math:`\eta_0/\sqrt{t+1}`;
    ``cosine`` :math:`\eta_0(1+\cos(\pi t/T))/2` over ``total_steps`` :math:`T`."""

    CONSTANT = "constant"
    INV_SQRT = "inv_sqrt"
    COSINE = "cosine"


class CorrectionRule(_StrEnum):
    """The four X-SAM forms of SPEC §2, as presets over (sign_rule, normalize, coefficient)."""

    PAPER = "paper"                    # d = ĝ_adv − α|⟨ĝ_adv, v⟩| v   (the authors' code)
    SYMMETRIC = "symmetric"            # d = ĝ_adv − α⟨ĝ_adv, v⟩ v     ("Pnorm")
    PROJECTOR = "projector"            # d = g_adv − α⟨g_adv, v⟩ v     ("P", Thm 5.1's operator)
    RAW_PROJECTION = "raw_projection"  # d = ĝ_adv − α|⟨g_adv, v⟩| v   (third-party retyping)

    @property
    def switches(self) -> dict[str, Any]:
        return {
            CorrectionRule.PAPER: dict(sign_rule=SignRule.PAPER, normalize=True,
                                       coefficient=Coefficient.NORMALIZED),
            CorrectionRule.SYMMETRIC: dict(sign_rule=SignRule.SYMMETRIC, normalize=True,
                                           coefficient=Coefficient.NORMALIZED),
            CorrectionRule.PROJECTOR: dict(sign_rule=SignRule.SYMMETRIC, normalize=False,
                                           coefficient=Coefficient.RAW),
            CorrectionRule.RAW_PROJECTION: dict(sign_rule=SignRule.PAPER, normalize=True,
                                                coefficient=Coefficient.RAW),
        }[self]


_ENUM_FIELDS = {
    "method": Method,
    "perturbation": Perturbation,
    "sign_rule": SignRule,
    "coefficient": Coefficient,
    "eigvec_source": EigvecSource,
    "schedule": Schedule,
    "lr_schedule": LRSchedule,
}


@dataclass(frozen=True)
class OptimizerConfig:
    """Every option of the SAM-family step (SPEC §2). Invalid values raise ``ValueError``.

    Attributes:
        method: ``gd`` | ``sam`` | ``eigen_sam`` | ``xsam`` (see :class:`Method`).
        lr: base learning rate :math:`\\eta_0 > 0`.
        rho: SAM radius :math:`\\rho \\ge 0`.
        alpha: correction strength :math:`\\alpha \\ge 0` (Eigen-SAM, X-SAM); warns outside [0, 2].
        perturbation: ``normalized`` (SAM) or ``unnormalized`` (USAM) ascent step.
        sign_rule, normalize, coefficient: X-SAM's switches (see :class:`CorrectionRule`).
        eigvec_source: ``exact`` | ``lanczos`` | ``power``.
        refresh_every: refresh period of ``v`` in steps (>= 1).
        power_steps: power-iteration steps per refresh (>= 1).
        eigen_tol: relative tolerance of the Lanczos eigensolver (0: machine precision).
        eigvec_sign: +1 or -1; ``exact``/``lanczos`` vectors are put in the canonical orientation
            (largest-magnitude entry positive) and multiplied by this. Power iteration keeps the
            orientation its iterations give (reference semantics).
        schedule: ``standard`` | ``reference`` (see :class:`Schedule`).
        steps_per_epoch: length of an epoch for the reference schedule's step counter
            (``None``: set by the runner from the data, or never restart).
        momentum: heavy-ball coefficient :math:`\\mu \\in [0, 1)` (PyTorch SGD semantics).
        weight_decay: coupled L2 coefficient added to the direction (PyTorch SGD semantics).
        lr_schedule: ``constant`` | ``inv_sqrt`` | ``cosine``; ``total_steps`` for ``cosine``.
    """

    method: Method | str = Method.SAM
    lr: float = 0.1
    rho: float = 0.05
    alpha: float = 0.0
    perturbation: Perturbation | str = Perturbation.NORMALIZED
    sign_rule: SignRule | str = SignRule.PAPER
    normalize: bool = True
    coefficient: Coefficient | str = Coefficient.NORMALIZED
    eigvec_source: EigvecSource | str = EigvecSource.LANCZOS
    refresh_every: int = 1
    power_steps: int = 5
    eigen_tol: float = 0.0
    eigvec_sign: int = 1
    schedule: Schedule | str = Schedule.STANDARD
    steps_per_epoch: int | None = None
    momentum: float = 0.0
    weight_decay: float = 0.0
    lr_schedule: LRSchedule | str = LRSchedule.CONSTANT
    total_steps: int | None = None

    def __post_init__(self) -> None:
        for name, enum in _ENUM_FIELDS.items():
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                choices = ", ".join(repr(e.value) for e in enum)
                raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
        # NumPy scalars (np.float64(0.1), np.int64(5)) are accepted and stored as Python numbers,
        # so that configurations stay JSON-serializable and hash alike
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.floating):
                object.__setattr__(self, f.name, float(value))
            elif isinstance(value, np.integer):
                object.__setattr__(self, f.name, int(value))
            elif isinstance(value, np.bool_):
                object.__setattr__(self, f.name, bool(value))
        _check_number("lr", self.lr, lower=0.0, strict=True)
        _check_number("rho", self.rho, lower=0.0)
        _check_number("alpha", self.alpha, lower=0.0)
        _check_number("eigen_tol", self.eigen_tol, lower=0.0)
        _check_number("weight_decay", self.weight_decay, lower=0.0)
        _check_number("momentum", self.momentum, lower=0.0)
        if self.momentum >= 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be True or False, got {self.normalize!r}")
        _check_int("refresh_every", self.refresh_every, 1)
        _check_int("power_steps", self.power_steps, 1)
        if self.steps_per_epoch is not None:
            _check_int("steps_per_epoch", self.steps_per_epoch, 1)
        if self.total_steps is not None:
            _check_int("total_steps", self.total_steps, 1)
        if self.lr_schedule is LRSchedule.COSINE and self.total_steps is None:
            raise ValueError("lr_schedule 'cosine' needs total_steps (got None)")
        if self.eigvec_sign not in (1, -1):
            raise ValueError(f"eigvec_sign must be +1 or -1, got {self.eigvec_sign!r}")
        if self.method in (Method.GD, Method.SAM) and self.alpha != 0.0:
            raise ValueError(
                f"alpha is used only by eigen_sam and xsam; method {self.method.value!r} "
                f"got alpha={self.alpha!r}"
            )
        if self.method is Method.GD and self.rho != 0.0:
            raise ValueError(f"rho is not used by method 'gd'; got rho={self.rho!r}")
        if self.uses_eigvec and self.alpha > 2.0:
            warnings.warn(
                f"alpha={self.alpha} lies outside [0, 2]: the norm bound ||d|| <= 1 (G2) fails "
                "there", UserWarning, stacklevel=3,
            )

    @property
    def uses_eigvec(self) -> bool:
        """Whether the step needs the top eigenvector ``v``.

        Eigen-SAM and X-SAM need it when ``alpha > 0``; under the reference schedule also at
        ``alpha = 0``, because there the step changes form once ``v`` exists.
        """
        return self.method in (Method.EIGEN_SAM, Method.XSAM) and (
            self.alpha > 0.0 or self.schedule is Schedule.REFERENCE)

    def replace(self, **changes: Any) -> OptimizerConfig:
        """A copy with some options changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary (enums as their string values)."""
        return {f.name: (v.value if isinstance(v, Enum) else v)
                for f in dataclasses.fields(self) for v in [getattr(self, f.name)]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizerConfig:
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown optimizer option(s): {sorted(unknown)}")
        return cls(**data)


def _check_number(name: str, value: Any, *, lower: float, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < lower or (strict and value == lower):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {lower}, got {value!r}")


def _check_int(name: str, value: Any, lower: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lower:
        raise ValueError(f"{name} must be an integer >= {lower}, got {value!r}")


# -- presets ----------------------------------------------------------------------------------

def _gd(**kw: Any) -> OptimizerConfig:
    return OptimizerConfig(method=Method.GD, **{"rho": 0.0, **kw})


def _usam(**kw: Any) -> OptimizerConfig:
    return OptimizerConfig(method=Method.SAM, perturbation=Perturbation.UNNORMALIZED, **kw)


def _sam(**kw: Any) -> OptimizerConfig:
    return OptimizerConfig(method=Method.SAM, **kw)


def _nsam(**kw: Any) -> OptimizerConfig:
    # normalized SAM: X-SAM's paper rule at alpha = 0 (the authors' code at alpha = 0)
    return OptimizerConfig(method=Method.XSAM, **{**CorrectionRule.PAPER.switches, **kw,
                                                    "alpha": 0.0})


def _eigen_sam(**kw: Any) -> OptimizerConfig:
    return OptimizerConfig(method=Method.EIGEN_SAM, **{"alpha": 0.2, **kw})


def _xsam(rule: CorrectionRule) -> Any:
    def make(**kw: Any) -> OptimizerConfig:
        return OptimizerConfig(method=Method.XSAM, **{"alpha": 0.2, **rule.switches, **kw})

    make.__doc__ = f"X-SAM, {rule.value} form."
    return make


#: name -> factory(**options) -> OptimizerConfig
PRESETS = {
    "gd": _gd,
    "usam": _usam,
    "sam": _sam,
    "nsam": _nsam,
    "eigen_sam": _eigen_sam,
    "xsam": _xsam(CorrectionRule.PAPER),
    "xsam_paper": _xsam(CorrectionRule.PAPER),
    "xsam_symmetric": _xsam(CorrectionRule.SYMMETRIC),
    "xsam_projector": _xsam(CorrectionRule.PROJECTOR),
    "xsam_raw_projection": _xsam(CorrectionRule.RAW_PROJECTION),
}

#: Options of the authors' reference training loop (SPEC §2, theory-notes F1.5, F2.1).
REFERENCE_OPTIONS = {
    "xsam": dict(schedule=Schedule.REFERENCE, eigvec_source=EigvecSource.POWER, refresh_every=5,
                 power_steps=5),
    "eigen_sam": dict(schedule=Schedule.REFERENCE, eigvec_source=EigvecSource.POWER,
                      refresh_every=100, power_steps=5),
}


def preset(name: str, **options: Any) -> OptimizerConfig:
    """A named configuration (see :data:`PRESETS`) with ``options`` overriding its defaults.

    >>> preset("xsam_symmetric", lr=0.05, rho=0.1, alpha=0.5).sign_rule.value
    'symmetric'
    """
    try:
        factory = PRESETS[name]
    except KeyError:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}") from None
    return factory(**options)
