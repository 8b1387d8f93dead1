"""Backend neutrality: the problems and optimizers run unchanged on ``array_api_strict`` arrays.

``array_api_strict`` implements the array API standard and nothing else, so any NumPy-only call
in the numerical core fails here. The results must equal the NumPy backend's (the same float64
operations, so only summation-order differences are allowed).
"""

from __future__ import annotations

import array_api_strict as xps
import numpy as np
import pytest

from xsam_theory import MLP, Quadratic, preset, run_trajectory
from xsam_theory.backend import to_numpy
from xsam_theory.optimizers import PRESETS, REFERENCE_OPTIONS

PROBLEMS = {
    "quadratic": lambda: Quadratic.from_spectrum([4.0, 2.0, 1.0, -0.5], seed=1),
    "mlp": lambda: MLP.teacher_student((4, 6, 3), 24, seed=2),
}


def _config(name):
    if name == "gd":
        return preset("gd", lr=0.05)
    return preset(name, lr=0.05, rho=0.05)


@pytest.mark.parametrize("problem_name", sorted(PROBLEMS))
@pytest.mark.parametrize("preset_name", sorted(PRESETS))
def test_every_preset_runs_on_array_api_strict_and_matches_numpy(problem_name, preset_name):
    problem = PROBLEMS[problem_name]()
    w0 = np.random.default_rng(0).standard_normal(problem.dim) * 0.5
    cfg = _config(preset_name)
    ref = run_trajectory(problem, cfg, w0, 6, seed=1)
    strict = run_trajectory(problem.convert(xps), cfg, xps.asarray(w0), 6, seed=1)
    np.testing.assert_allclose(strict.iterates, ref.iterates, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(strict.diagnostics["loss"], ref.diagnostics["loss"], rtol=1e-11)


def test_reference_schedule_with_power_iteration_on_array_api_strict():
    problem = MLP.teacher_student((4, 6, 3), 24, seed=2)
    w0 = problem.init_params(3)
    cfg = preset(
        "xsam", lr=0.1, rho=0.05, alpha=0.3, **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 2}
    )
    ref = run_trajectory(problem, cfg, w0, 8, seed=4, batch_size=4)
    strict = run_trajectory(
        problem.convert(xps), cfg, xps.asarray(to_numpy(w0)), 8, seed=4, batch_size=4
    )
    assert ref.diagnostics["refreshed"].sum() >= 2
    np.testing.assert_allclose(strict.iterates, ref.iterates, rtol=1e-10, atol=1e-13)
