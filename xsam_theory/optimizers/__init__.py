"""The SAM family — GD, USAM, SAM, Eigen-SAM, X-SAM (all four forms) — as pure step functions.

:func:`preset` names every method (docs/algorithms.md#A-presets); :class:`OptimizerConfig`
holds its options (docs/algorithms.md#A-options); :func:`step` takes one step
(docs/algorithms.md#A-base-step, docs/algorithms.md#A-step-report); the decisions of a step are
:mod:`xsam_theory.optimizers.rules` (docs/algorithms.md#A-schedule) and its formulas
:mod:`xsam_theory.optimizers.directions` (docs/algorithms.md#A-xsam-forms,
docs/algorithms.md#A-eigen-sam).
"""

from xsam_theory.optimizers.config import (
    OPTION_USE,
    PRESETS,
    REFERENCE_OPTIONS,
    Coefficient,
    CorrectionRule,
    EigvecSource,
    LRSchedule,
    Method,
    OptimizerConfig,
    OptionUse,
    Perturbation,
    Preset,
    Schedule,
    SignRule,
    preset,
)
from xsam_theory.optimizers.directions import (
    eigen_sam_perturbation,
    sam_perturbation,
    xsam_direction,
)
from xsam_theory.optimizers.step import (
    OptimizerState,
    StepInfo,
    init_state,
    learning_rate,
    step,
)

__all__ = [
    "OPTION_USE",
    "PRESETS",
    "REFERENCE_OPTIONS",
    "Coefficient",
    "CorrectionRule",
    "EigvecSource",
    "LRSchedule",
    "Method",
    "OptimizerConfig",
    "OptimizerState",
    "OptionUse",
    "Perturbation",
    "Preset",
    "Schedule",
    "SignRule",
    "StepInfo",
    "eigen_sam_perturbation",
    "init_state",
    "learning_rate",
    "preset",
    "sam_perturbation",
    "step",
    "xsam_direction",
]
