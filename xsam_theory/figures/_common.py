"""Small helpers shared by several figures."""

from __future__ import annotations

from typing import Any

import numpy as np

from xsam_theory.problems import Problem
from xsam_theory.spectral import HessianOperator, top_eigenpair


def matched_step_length(problem: Problem, w0: Any, eta: float, rho: float) -> float:
    r"""The learning rate that gives a normalized method the first step length of SAM at ``lr=eta``.

    For X-SAM and NSAM the rate is :math:`\eta\,\|\nabla L(w_0 + \rho\hat g_0)\|`, with
    :math:`\hat g_0 = \nabla L(w_0)/\|\nabla L(w_0)\|`: a normalized step's ``lr`` is a length
    (claim F-NORM; docs/algorithms.md#A-presets), and P-LMAX matches methods the same way.

    Args:
        problem: The problem (full-batch gradients).
        w0: The start point.
        eta: SAM's learning rate.
        rho: SAM's radius.

    Returns:
        The step length :math:`\eta\|g_{adv}(w_0)\|`.
    """
    g = problem.grad(w0)
    g_adv = problem.grad(w0 + rho * g / np.linalg.norm(g))
    return float(eta * np.linalg.norm(g_adv))


def lambda_max(problem: Problem, w: Any, method: str = "lanczos") -> float:
    r"""The algebraic top Hessian eigenvalue :math:`\lambda_1(\nabla^2 L(w))` at ``w``, full batch.

    Computed by :func:`~xsam_theory.spectral.top_eigenpair` on exact Hessian-vector products
    (``method`` as there: docs/algorithms.md#A-eigenvector-sources).
    """
    return float(top_eigenpair(HessianOperator.from_problem(problem, w), method).eigenvalue)
