"""xsam-theory: check the theory of SAM and X-SAM with evidence.

The public API in one place::

    from xsam_theory import MLP, Quadratic, preset, run_trajectory, top_eigenpair

A tour: docs/python.md; what every optimizer computes: docs/algorithms.md; the theory the
checks rely on: docs/theory.md; the claims and their verdicts: docs/claims.md.
"""

from xsam_theory._version import __version__
from xsam_theory.backend import get_backend, set_backend, use_backend
from xsam_theory.optimizers import (
    PRESETS,
    REFERENCE_OPTIONS,
    CorrectionRule,
    OptimizerConfig,
    OptimizerState,
    StepInfo,
    init_state,
    preset,
    step,
    xsam_direction,
)
from xsam_theory.problems import (
    MLP,
    Factorization,
    Point,
    Problem,
    Quadratic,
    Ravine,
    TwoBlockFactorization,
)
from xsam_theory.spectral import HessianOperator, top_eigenpair
from xsam_theory.trajectory import (
    NonFiniteError,
    SpectralMonitor,
    TraceMonitor,
    Trajectory,
    run_trajectory,
)

__all__ = [
    "MLP",
    "PRESETS",
    "REFERENCE_OPTIONS",
    "CorrectionRule",
    "Factorization",
    "HessianOperator",
    "NonFiniteError",
    "OptimizerConfig",
    "OptimizerState",
    "Point",
    "Problem",
    "Quadratic",
    "Ravine",
    "SpectralMonitor",
    "StepInfo",
    "TraceMonitor",
    "Trajectory",
    "TwoBlockFactorization",
    "__version__",
    "get_backend",
    "init_state",
    "preset",
    "run_trajectory",
    "set_backend",
    "step",
    "top_eigenpair",
    "use_backend",
    "xsam_direction",
]
