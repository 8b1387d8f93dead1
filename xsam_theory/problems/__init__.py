"""Objectives with exact derivatives (docs/algorithms.md#A-problems).

The :class:`Problem` / :class:`Point` protocol, quadratics, the factorization and ravine toys,
and multilayer perceptrons. Every problem gives its loss, gradient and Hessian-vector products
exactly (no finite differences).
"""

from __future__ import annotations

from xsam_theory.problems.base import Point, Problem
from xsam_theory.problems.factorization import Factorization, TwoBlockFactorization
from xsam_theory.problems.mlp import MLP
from xsam_theory.problems.quadratic import Quadratic, random_orthogonal
from xsam_theory.problems.ravine import Ravine

__all__ = [
    "MLP",
    "Factorization",
    "Point",
    "Problem",
    "Quadratic",
    "Ravine",
    "TwoBlockFactorization",
    "random_orthogonal",
]
