"""Objectives with exact derivatives (SPEC §3).

The :class:`Problem` / :class:`Point` protocol, quadratics, the factorization and ravine toys,
and multilayer perceptrons.
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
