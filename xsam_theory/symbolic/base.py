"""The record every symbolic derivation returns.

The derivations themselves are listed in docs/theory.md, section by section, under "Checked by".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

__all__ = ["Derivation", "interval_nonnegative"]


@dataclass(frozen=True)
class Derivation:
    """A sympy result with its numeric twin.

    What each derivation proves, and the theory section it belongs to, is stated in the
    docstring of the function that returns it and under "Checked by" in docs/theory.md.

    Attributes:
        name: what was derived.
        expr: the sympy expression (or a tuple/dict of expressions).
        symbols: the free symbols, in the order ``func`` takes them.
        func: ``sympy.lambdify(symbols, expr, "numpy")``.
        assumptions: the assumptions under which ``expr`` holds, in words.
        proved: named sub-results that sympy established (each ``True``), e.g. identities that
            simplify to zero or inequalities reduced to sign-definite factors.
    """

    name: str
    expr: Any
    symbols: tuple[sp.Symbol, ...]
    func: Callable[..., Any]
    assumptions: str
    proved: dict[str, bool] = field(default_factory=dict)

    @property
    def all_proved(self) -> bool:
        """Whether at least one sub-result was recorded and sympy proved every one."""
        return bool(self.proved) and all(self.proved.values())


def derivation(
    name: str,
    expr: Any,
    symbols: tuple[sp.Symbol, ...],
    assumptions: str,
    proved: dict[str, bool] | None = None,
) -> Derivation:
    """Build a :class:`Derivation`, lambdifying ``expr`` over ``symbols``.

    Args:
        name: what was derived.
        expr: the sympy expression (or a tuple/dict of expressions).
        symbols: the free symbols, in the order the numeric twin takes them.
        assumptions: the assumptions under which ``expr`` holds, in words.
        proved: named sub-results and whether sympy established each one.

    Returns:
        The :class:`Derivation`, with ``func = sympy.lambdify(symbols, expr, "numpy")``.
    """
    return Derivation(
        name, expr, symbols, sp.lambdify(symbols, expr, "numpy"), assumptions, dict(proved or {})
    )


def interval_nonnegative(expr: sp.Expr, var: sp.Symbol, domain: sp.Interval) -> bool:
    r"""Whether sympy shows ``expr(var) >= 0`` for every ``var`` in ``domain``.

    ``expr`` must be univariate in ``var``; the solution set of the inequality must contain
    ``domain``. Used for sign statements over an interval, e.g. :math:`2a - a^2 \ge 0` on
    :math:`[0, 2]` (docs/theory.md#T-fixed-points).

    Args:
        expr: a univariate sympy expression in ``var``.
        var: the variable.
        domain: the interval on which the sign is claimed.

    Returns:
        True when ``domain`` is a subset of the solution set of ``expr >= 0``.
    """
    sol = sp.solve_univariate_inequality(expr >= 0, var, relational=False)
    return bool(domain.is_subset(sol))
