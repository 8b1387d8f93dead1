"""Small helpers shared by several figures."""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.problems import Problem
from xsam_theory.spectral import HessianOperator, top_eigenpair


def matched_step_length(problem: Problem, w0: Any, eta: float, rho: float) -> float:
    r"""The learning rate that gives a normalized method the first step length of SAM at ``lr=eta``.

    For X-SAM and NSAM the rate is :math:`\eta\,\|\nabla L(w_0 + \rho\hat g_0)\|` (a normalized
    step's ``lr`` is a length, F-NORM; P-LMAX matches methods the same way).
    """
    g = problem.grad(w0)
    g_adv = problem.grad(w0 + rho * g / np.linalg.norm(g))
    return float(eta * np.linalg.norm(g_adv))


def lambda_max(problem: Problem, w: Any, method: str = "lanczos") -> float:
    """The algebraic top Hessian eigenvalue at ``w`` (full batch)."""
    return float(top_eigenpair(HessianOperator.from_problem(problem, w), method).eigenvalue)
