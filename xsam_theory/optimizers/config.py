r"""Optimizer options, which method uses which, their validation, and the named presets.

One frozen :class:`OptimizerConfig` describes every method of the SAM family as a set of
switches. Which method reads which switch is one table, :data:`OPTION_USE`; it drives both the
validation (an option a method does not read, given a value other than its "off" value, raises
``ValueError`` naming the option, the method and why) and the canonical form
(:meth:`OptimizerConfig.canonical`, :meth:`OptimizerConfig.to_dict`), in which options that a
*value* makes inert (X-SAM's sign rule at :math:`\alpha = 0`, the perturbation at
:math:`\rho = 0`, the eigenvector options when no eigenvector is computed) take their off
value, so that configurations that differ only in inert options have one dictionary and one
run hash (and configurations with one dictionary take identical steps).

The user-facing method names are the preset names (:data:`PRESETS`, :func:`preset`); the
:class:`Method` enum is the internal family a preset belongs to. Every preset's formula:
docs/algorithms.md#A-presets; the option table and its rules: docs/algorithms.md#A-options.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

__all__ = [
    "OPTION_USE",
    "PRESETS",
    "VALUE_INERT",
    "Coefficient",
    "CorrectionRule",
    "EigvecSource",
    "LRSchedule",
    "Method",
    "OptimizerConfig",
    "OptionUse",
    "Perturbation",
    "Preset",
    "Schedule",
    "SignRule",
    "preset",
]


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return self.value


class Method(_StrEnum):
    """The family a method belongs to: which perturbation and which correction its step uses.

    The user-facing method names are the preset names (:data:`PRESETS`): ``usam`` is the
    ``sam`` family with the unnormalized perturbation, ``nsam`` and the four ``xsam_*`` forms
    belong to the ``xsam`` family (docs/algorithms.md#A-presets).
    """

    GD = "gd"
    SAM = "sam"
    EIGEN_SAM = "eigen_sam"
    XSAM = "xsam"


class Perturbation(_StrEnum):
    r"""SAM's ascent step.

    ``normalized``: :math:`\varepsilon = \rho\hat g` (SAM); ``unnormalized``:
    :math:`\varepsilon = \rho g` (USAM, docs/theory.md#T-usam). With :math:`g = 0` both are
    exactly :math:`0` (docs/algorithms.md#A-conventions).
    """

    NORMALIZED = "normalized"
    UNNORMALIZED = "unnormalized"


class SignRule(_StrEnum):
    r"""X-SAM's sign rule.

    ``paper`` subtracts :math:`\alpha\,\mathrm{sign}(\gamma)\,\gamma\,v = \alpha|\gamma|v`;
    ``symmetric`` subtracts :math:`\alpha \gamma v` (invariant under :math:`v\to-v`; the paper
    rule is not: docs/theory.md#T-orientation). :math:`\gamma` is the coefficient of
    :class:`Coefficient` (docs/algorithms.md#A-xsam-forms).
    """

    PAPER = "paper"
    SYMMETRIC = "symmetric"


class Coefficient(_StrEnum):
    r"""Where X-SAM's projection coefficient comes from.

    ``normalized``: :math:`\gamma = \langle\hat g_{adv}, v\rangle`; ``raw``:
    :math:`\gamma = \langle g_{adv}, v\rangle` (docs/algorithms.md#A-xsam-forms).
    """

    NORMALIZED = "normalized"
    RAW = "raw"


class EigvecSource(_StrEnum):
    r"""How ``v`` is computed (docs/algorithms.md#A-eigenvector-sources).

    Dense ``exact`` eigh and ``lanczos`` give the algebraic top eigenpair; ``power`` runs
    ``power_steps`` warm-started steps :math:`u \leftarrow Hu/\|Hu\|` (the authors' routine),
    which converge to the eigenvector of largest :math:`|\lambda|`
    (docs/theory.md#T-dominant-negative).
    """

    EXACT = "exact"
    LANCZOS = "lanczos"
    POWER = "power"


class Schedule(_StrEnum):
    """When ``v`` is refreshed and what happens before it exists.

    ``standard``: ``v`` is computed at step 0 and every ``refresh_every`` steps after.
    ``reference``: the authors' loop — first refresh at step ``refresh_every`` (never at 0), the
    counter restarts every epoch while ``v`` persists, and before the first ``v`` X-SAM takes the
    raw SAM step (Eigen-SAM the USAM perturbation). Step by step:
    docs/algorithms.md#A-schedule.
    """

    STANDARD = "standard"
    REFERENCE = "reference"


class LRSchedule(_StrEnum):
    r"""The learning-rate schedule :math:`\eta_t`.

    ``constant`` :math:`\eta_0`; ``inv_sqrt`` :math:`\eta_0/\sqrt{t+1}`;
    ``cosine`` :math:`\eta_0(1+\cos(\pi \min(t, T)/T))/2` over ``total_steps`` :math:`T`
    (docs/algorithms.md#A-lr-schedules).
    """

    CONSTANT = "constant"
    INV_SQRT = "inv_sqrt"
    COSINE = "cosine"


class CorrectionRule(_StrEnum):
    r"""The four X-SAM forms, as presets over (sign_rule, normalize, coefficient).

    With :math:`c = \langle\hat g_{adv}, v\rangle`:

    * ``paper``: :math:`d = \hat g_{adv} - \alpha|c|v` (the authors' code);
    * ``symmetric``: :math:`d = \hat g_{adv} - \alpha c v`;
    * ``projector``: :math:`d = g_{adv} - \alpha\langle g_{adv}, v\rangle v`;
    * ``raw_projection``: :math:`d = \hat g_{adv} - \alpha|\langle g_{adv}, v\rangle| v`.

    Where each comes from: docs/algorithms.md#A-xsam-forms.
    """

    PAPER = "paper"  # d = ĝ_adv − α|⟨ĝ_adv, v⟩| v   (the authors' code)
    SYMMETRIC = "symmetric"  # d = ĝ_adv − α⟨ĝ_adv, v⟩ v     ("Pnorm")
    PROJECTOR = "projector"  # d = g_adv − α⟨g_adv, v⟩ v     ("P", Thm 5.1's operator)
    RAW_PROJECTION = "raw_projection"  # d = ĝ_adv − α|⟨g_adv, v⟩| v   (third-party retyping)

    @property
    def switches(self) -> dict[str, Any]:
        """The ``sign_rule``, ``normalize`` and ``coefficient`` values of this form."""
        return {
            CorrectionRule.PAPER: dict(
                sign_rule=SignRule.PAPER, normalize=True, coefficient=Coefficient.NORMALIZED
            ),
            CorrectionRule.SYMMETRIC: dict(
                sign_rule=SignRule.SYMMETRIC, normalize=True, coefficient=Coefficient.NORMALIZED
            ),
            CorrectionRule.PROJECTOR: dict(
                sign_rule=SignRule.SYMMETRIC, normalize=False, coefficient=Coefficient.RAW
            ),
            CorrectionRule.RAW_PROJECTION: dict(
                sign_rule=SignRule.PAPER, normalize=True, coefficient=Coefficient.RAW
            ),
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
_FLOAT_FIELDS = ("lr", "rho", "alpha", "eigen_tol", "momentum", "weight_decay")


# -- which method uses which option -----------------------------------------------------------


@dataclass(frozen=True)
class OptionUse:
    """When the step reads an option; one row of :data:`OPTION_USE` (docs/algorithms.md#A-options).

    Attributes:
        methods: the families whose step reads the option.
        off: the value that means "not set" (the only value the other families accept).
        why: why the other families do not read it (ends the error message).
        needs: ``(option, values)``: the option is read only while that other option has one of
            these values (``None``: always, for the families in ``methods``).
        needs_why: why it is not read under the other values of ``needs``.
    """

    methods: frozenset[Method]
    off: Any
    why: str
    needs: tuple[str, frozenset[Any]] | None = None
    needs_why: str = ""


_ASCENT = frozenset({Method.SAM, Method.EIGEN_SAM, Method.XSAM})
_EIGVEC = frozenset({Method.EIGEN_SAM, Method.XSAM})
_XSAM = frozenset({Method.XSAM})
_NO_V = "only eigen_sam and xsam compute an eigenvector v"
_SWITCH = "it is a switch of X-SAM's corrected direction"

#: option -> when the step reads it. Options every method reads (``lr``, ``momentum``,
#: ``weight_decay``, ``lr_schedule``) are not listed. The table in words:
#: docs/algorithms.md#A-options.
OPTION_USE: dict[str, OptionUse] = {
    "rho": OptionUse(_ASCENT, 0.0, "gd takes no ascent step"),
    "alpha": OptionUse(_EIGVEC, 0.0, "only eigen_sam and xsam have a correction strength"),
    "perturbation": OptionUse(
        frozenset({Method.SAM, Method.XSAM}),
        Perturbation.NORMALIZED,
        "only sam and xsam take the ascent step rho g/||g|| or rho g "
        "(gd takes none, eigen_sam its own)",
    ),
    "sign_rule": OptionUse(_XSAM, SignRule.PAPER, _SWITCH),
    "normalize": OptionUse(_XSAM, True, _SWITCH),
    "coefficient": OptionUse(_XSAM, Coefficient.NORMALIZED, _SWITCH),
    "eigvec_source": OptionUse(_EIGVEC, EigvecSource.LANCZOS, _NO_V),
    "refresh_every": OptionUse(_EIGVEC, 1, _NO_V),
    "power_steps": OptionUse(
        _EIGVEC,
        5,
        _NO_V,
        ("eigvec_source", frozenset({EigvecSource.POWER})),
        "only power iteration runs a fixed number of steps",
    ),
    "eigen_tol": OptionUse(
        _EIGVEC,
        0.0,
        _NO_V,
        ("eigvec_source", frozenset({EigvecSource.LANCZOS})),
        "only the Lanczos eigensolver has a tolerance",
    ),
    "eigvec_sign": OptionUse(
        _EIGVEC,
        1,
        _NO_V,
        ("eigvec_source", frozenset({EigvecSource.EXACT, EigvecSource.LANCZOS})),
        "power iteration keeps the orientation its iterations give",
    ),
    "schedule": OptionUse(_EIGVEC, Schedule.STANDARD, _NO_V),
    "steps_per_epoch": OptionUse(
        _EIGVEC,
        None,
        _NO_V,
        ("schedule", frozenset({Schedule.REFERENCE})),
        "only the reference schedule restarts its counter each epoch",
    ),
    "total_steps": OptionUse(
        frozenset(Method),
        None,
        "",
        ("lr_schedule", frozenset({LRSchedule.COSINE})),
        "only the cosine learning-rate schedule has a length",
    ),
}

_EIGVEC_OPTIONS = ("eigvec_source", "refresh_every", "power_steps", "eigen_tol", "eigvec_sign")

#: (condition, options, why): options that a *value* makes inert. They are accepted and take
#: their off value in the canonical form (the step is identical, diagnostics included;
#: docs/algorithms.md#A-options).
VALUE_INERT: tuple[tuple[Callable[[OptimizerConfig], bool], tuple[str, ...], str], ...] = (
    (lambda c: c.rho == 0.0, ("perturbation",), "at rho = 0 there is no ascent step"),
    (
        lambda c: c.method is Method.XSAM and c.alpha == 0.0,
        ("sign_rule", "coefficient"),
        "at alpha = 0 the correction alpha * gamma * v is zero (c does not depend on them)",
    ),
    (
        lambda c: c.method in _EIGVEC and not c.uses_eigvec,
        _EIGVEC_OPTIONS,
        "at alpha = 0 under the standard schedule no eigenvector is computed",
    ),
)


@dataclass(frozen=True)
class OptimizerConfig:
    r"""Every option of the SAM-family step. Invalid values raise ``ValueError``.

    An option the method does not read (see :data:`OPTION_USE`) must keep its off value
    (its default; ``0`` for ``rho``): anything else raises ``ValueError`` naming the option, the
    method and why it is not read. ``alpha > 2`` for a method that uses ``v`` warns: the bound
    :math:`\|d\| \le 1` of the paper form fails there (docs/theory.md#T-correction-identities).
    Every option and its rules: docs/algorithms.md#A-options.

    Attributes:
        method: the family, ``gd`` | ``sam`` | ``eigen_sam`` | ``xsam`` (see :class:`Method`;
            :func:`preset` takes the user-facing method names).
        lr: base learning rate :math:`\eta_0 > 0`.
        rho: SAM radius :math:`\rho \ge 0` (``0`` for ``gd``).
        alpha: correction strength :math:`\alpha \ge 0` (Eigen-SAM, X-SAM); warns outside [0, 2].
        perturbation: ``normalized`` (SAM) or ``unnormalized`` (USAM) ascent step (SAM, X-SAM).
        sign_rule, normalize, coefficient: X-SAM's switches (see :class:`CorrectionRule`).
        eigvec_source: ``exact`` | ``lanczos`` | ``power``.
        refresh_every: refresh period of ``v`` in steps (>= 1).
        power_steps: power-iteration steps per refresh (>= 1; ``power`` only).
        eigen_tol: relative tolerance of the Lanczos eigensolver (0: machine precision;
            ``lanczos`` only).
        eigvec_sign: +1 or -1; ``exact``/``lanczos`` vectors are put in the canonical orientation
            (largest-magnitude entry positive) and multiplied by this. Power iteration keeps the
            orientation its iterations give (reference semantics), so it takes only +1.
        schedule: ``standard`` | ``reference`` (see :class:`Schedule`).
        steps_per_epoch: length of an epoch for the reference schedule's step counter
            (``None``: set by the runner from the data, or never restart; ``reference`` only).
        momentum: heavy-ball coefficient :math:`\mu \in [0, 1)` (PyTorch SGD semantics:
            docs/algorithms.md#A-base-step).
        weight_decay: coupled L2 coefficient added to the direction (PyTorch SGD semantics).
        lr_schedule: ``constant`` | ``inv_sqrt`` | ``cosine``; ``total_steps`` for ``cosine``
            (and only there).
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
        """Coerce and validate every option (see the class docstring)."""
        self._coerce()
        self._check_values()
        self._check_used()
        if self.uses_eigvec and self.alpha > 2.0:
            warnings.warn(
                f"alpha={self.alpha} lies outside [0, 2]: the norm bound ||d|| <= 1 (G2) fails "
                "there",
                UserWarning,
                stacklevel=3,
            )

    def _coerce(self) -> None:
        """Enum names to enums; NumPy scalars to Python numbers.

        So configurations stay JSON-serializable and hash alike.
        """
        for name, enum in _ENUM_FIELDS.items():
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(value))
            except ValueError:
                choices = ", ".join(repr(e.value) for e in enum)
                raise ValueError(f"{name} must be one of {choices}, got {value!r}") from None
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.floating):
                object.__setattr__(self, f.name, float(value))
            elif isinstance(value, np.integer):
                object.__setattr__(self, f.name, int(value))
            elif isinstance(value, np.bool_):
                object.__setattr__(self, f.name, bool(value))

    def _check_values(self) -> None:
        """Check each option's own range; store float options as floats.

        ``rho=0`` and ``rho=0.0`` are then one configuration, with one dictionary.
        """
        for name in _FLOAT_FIELDS:
            _check_number(name, getattr(self, name), lower=0.0, strict=name == "lr")
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.momentum >= 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {self.momentum!r}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be True or False, got {self.normalize!r}")
        _check_int("refresh_every", self.refresh_every, 1)
        _check_int("power_steps", self.power_steps, 1)
        for name in ("steps_per_epoch", "total_steps"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        if self.lr_schedule is LRSchedule.COSINE and self.total_steps is None:
            raise ValueError("lr_schedule 'cosine' needs total_steps (got None)")
        if isinstance(self.eigvec_sign, bool) or self.eigvec_sign not in (1, -1):
            raise ValueError(f"eigvec_sign must be +1 or -1, got {self.eigvec_sign!r}")

    def _check_used(self) -> None:
        """Refuse an option the method does not read set to a value other than its off value.

        The rules are the rows of :data:`OPTION_USE`.
        """
        for name, use in OPTION_USE.items():
            value = getattr(self, name)
            if value == use.off:
                continue
            if self.method not in use.methods:
                raise ValueError(
                    f"{name}={_shown(value)} is not used by method {self.method_name!r}: {use.why}"
                )
            if use.needs is not None:
                other, values = use.needs
                if getattr(self, other) not in values:
                    raise ValueError(
                        f"{name}={_shown(value)} is not used by method {self.method_name!r} "
                        f"with {other}={_shown(getattr(self, other))}: {use.needs_why}"
                    )

    @property
    def uses_eigvec(self) -> bool:
        """Whether the step needs the top eigenvector ``v``.

        Eigen-SAM and X-SAM need it when ``alpha > 0``; under the reference schedule also at
        ``alpha = 0``, because there the step changes form once ``v`` exists
        (docs/algorithms.md#A-schedule).
        """
        return self.method in _EIGVEC and (self.alpha > 0.0 or self.schedule is Schedule.REFERENCE)

    @property
    def method_name(self) -> str:
        """The user-facing name of the method: the preset name of its family and switches.

        ``gd``, ``sam``, ``usam``, ``eigen_sam``, or for X-SAM the name of its form
        (``xsam_paper``, ``xsam_symmetric``, ``xsam_projector``, ``xsam_raw_projection``;
        ``xsam`` for a combination of switches that no preset names). ``nsam`` (X-SAM's paper
        form at alpha = 0) is named ``xsam_paper``: the two are one configuration.
        """
        if self.method is Method.SAM and self.perturbation is Perturbation.UNNORMALIZED:
            return "usam"
        if self.method is not Method.XSAM:
            return self.method.value
        switches = {
            "sign_rule": self.sign_rule,
            "normalize": self.normalize,
            "coefficient": self.coefficient,
        }
        for rule in CorrectionRule:
            if rule.switches == switches:
                return f"xsam_{rule.value}"
        return "xsam"

    def inert_options(self) -> tuple[str, ...]:
        """The options that this configuration's values make inert (:data:`VALUE_INERT`).

        Returns:
            Their names, in :data:`OPTION_USE` order; the step does not depend on them.
        """
        inert = {name for condition, names, _ in VALUE_INERT if condition(self) for name in names}
        return tuple(name for name in OPTION_USE if name in inert)

    def canonical(self) -> OptimizerConfig:
        """The configuration with every value-inert option at its off value.

        Two configurations with equal canonical forms take identical steps (iterates and
        diagnostics): ``preset("xsam_symmetric", alpha=0)`` and ``preset("nsam")`` have one
        canonical form. Options a method does not read at all are already at their off value
        (anything else is refused on construction).

        Returns:
            ``self`` with the options of :meth:`inert_options` replaced by
            :data:`OPTION_USE`'s off values.
        """
        changes = {
            name: OPTION_USE[name].off
            for name in self.inert_options()
            if getattr(self, name) != OPTION_USE[name].off
        }
        return dataclasses.replace(self, **changes) if changes else self

    def replace(self, **changes: Any) -> OptimizerConfig:
        """A copy with some options changed (validated again).

        Args:
            **changes: options to change, by name.

        Returns:
            The new configuration.

        Raises:
            ValueError: an invalid value, as for the constructor.
        """
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (:meth:`canonical`) as a plain JSON-ready dictionary.

        Every option is present; enums are their string values, float options floats. Equal
        dictionaries mean identical steps, so the dictionary is what run hashes are taken of.
        """
        config = self.canonical()
        return {
            f.name: (v.value if isinstance(v, Enum) else v)
            for f in dataclasses.fields(config)
            for v in [getattr(config, f.name)]
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> OptimizerConfig:
        """The configuration of a dictionary such as :meth:`to_dict` writes.

        ``from_dict(c.to_dict()) == c.canonical()``; missing options take their defaults.

        Raises:
            ValueError: for an unknown option, or any invalid value (as the constructor).
        """
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown optimizer option(s): {sorted(unknown)}")
        return cls(**data)


def _shown(value: Any) -> str:
    """``repr`` of an option value, enums as their string value."""
    return repr(value.value if isinstance(value, Enum) else value)


def _check_number(name: str, value: Any, *, lower: float, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if value < lower or (strict and value == lower):
        op = ">" if strict else ">="
        raise ValueError(f"{name} must be {op} {lower}, got {value!r}")


def _check_int(name: str, value: Any, lower: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < lower:
        raise ValueError(f"{name} must be an integer >= {lower}, got {value!r}")


# -- presets: the method names ----------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named method: a family, the options that define it, and defaults for the rest.

    Calling it with options gives the :class:`OptimizerConfig`; an option that contradicts a
    defining one (``preset("usam", perturbation="normalized")``,
    ``preset("nsam", alpha=0.5)``) raises ``ValueError`` naming the preset that has it.

    The presets and their formulas: docs/algorithms.md#A-presets.

    Attributes:
        name: the method name.
        summary: what the method is, in a few words.
        fixed: the defining options (``method`` among them).
        defaults: defaults that differ from :class:`OptimizerConfig`'s.
    """

    name: str
    summary: str
    fixed: Mapping[str, Any]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(self, **options: Any) -> OptimizerConfig:
        """The configuration of this method with ``options`` over its defaults."""
        config = OptimizerConfig(**{**self.defaults, **options, **self.fixed})
        for key, value in options.items():
            if key in self.fixed and value != self.fixed[key]:
                # validate the value alone first: an unknown name gets the usual message
                OptimizerConfig(**{**self.defaults, **self.fixed, key: value})
                raise ValueError(self._contradiction(key, value))
        return config

    def _contradiction(self, key: str, value: Any) -> str:
        wanted = {**self.fixed, key: value}
        others = [
            p.name
            for p in PRESETS.values()
            if p is not self and all(k in wanted and wanted[k] == v for k, v in p.fixed.items())
        ]
        hint = f"; use preset {' or '.join(map(repr, others))}" if others else ""
        return (
            f"{key}={_shown(value)} contradicts preset {self.name!r} ({self.summary}: "
            f"{key}={_shown(self.fixed[key])}){hint}"
        )


def _xsam_preset(name: str, rule: CorrectionRule) -> Preset:
    return Preset(
        name, f"X-SAM, {rule.value} form", {"method": Method.XSAM, **rule.switches}, {"alpha": 0.2}
    )


#: method name -> :class:`Preset` (call it with options to get an :class:`OptimizerConfig`);
#: the formula of each: docs/algorithms.md#A-presets
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("gd", "gradient descent", {"method": Method.GD}, {"rho": 0.0}),
        Preset(
            "usam",
            "SAM with the unnormalized perturbation rho g",
            {"method": Method.SAM, "perturbation": Perturbation.UNNORMALIZED},
        ),
        Preset(
            "sam",
            "SAM with the normalized perturbation rho g/||g||",
            {"method": Method.SAM, "perturbation": Perturbation.NORMALIZED},
        ),
        Preset(
            "nsam",
            "X-SAM's paper form at alpha = 0, the normalized SAM step",
            {"method": Method.XSAM, "alpha": 0.0, **CorrectionRule.PAPER.switches},
        ),
        Preset("eigen_sam", "Eigen-SAM", {"method": Method.EIGEN_SAM}, {"alpha": 0.2}),
        _xsam_preset("xsam", CorrectionRule.PAPER),
        _xsam_preset("xsam_paper", CorrectionRule.PAPER),
        _xsam_preset("xsam_symmetric", CorrectionRule.SYMMETRIC),
        _xsam_preset("xsam_projector", CorrectionRule.PROJECTOR),
        _xsam_preset("xsam_raw_projection", CorrectionRule.RAW_PROJECTION),
    )
}

#: Options of the authors' reference training loop: power iteration on the reference schedule,
#: refreshed every 5 (X-SAM) or 100 (Eigen-SAM) steps (docs/algorithms.md#A-reference-code,
#: docs/algorithms.md#A-eigensam-code).
REFERENCE_OPTIONS = {
    "xsam": dict(
        schedule=Schedule.REFERENCE,
        eigvec_source=EigvecSource.POWER,
        refresh_every=5,
        power_steps=5,
    ),
    "eigen_sam": dict(
        schedule=Schedule.REFERENCE,
        eigvec_source=EigvecSource.POWER,
        refresh_every=100,
        power_steps=5,
    ),
}


def preset(name: str, **options: Any) -> OptimizerConfig:
    """The configuration of the method ``name`` (see :data:`PRESETS`) with ``options``.

    Each preset's update formula: docs/algorithms.md#A-presets.

    Args:
        name: a method name: one of :data:`PRESETS`.
        **options: :class:`OptimizerConfig` options over the preset's defaults; they may not
            contradict the options that define the method.

    Returns:
        The validated configuration.

    Raises:
        ValueError: for an unknown name (the message lists the names), an invalid option, an
            option the method does not use, or one that contradicts the method.

    >>> preset("xsam_symmetric", lr=0.05, rho=0.1, alpha=0.5).sign_rule.value
    'symmetric'
    """
    try:
        factory = PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}") from None
    return factory(**options)
