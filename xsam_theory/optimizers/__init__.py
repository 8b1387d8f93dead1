"""The SAM family — GD, USAM, SAM, Eigen-SAM, X-SAM (all four forms) — as pure step functions."""

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
