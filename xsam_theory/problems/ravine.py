r"""The ravine toy :math:`L(x, y) = \tfrac12 \lambda_0 (1 + y^2) x^2`.

Its minimizers form the line :math:`x = 0`, along which the sharpness
:math:`\lambda_1 = \lambda_0(1 + y^2)` grows away from :math:`y = 0`. SAM bouncing across the
ravine drifts along it toward :math:`y = 0`; GD with :math:`\eta\lambda_1 < 2` does not
(derivation: docs/theory.md#T-drift; the problems: docs/algorithms.md#A-problems).
"""

from __future__ import annotations

import math
from functools import cached_property
from types import ModuleType
from typing import Any

from xsam_theory.backend import default_namespace, namespace
from xsam_theory.problems.base import Point, Problem

__all__ = ["Ravine"]


def _check_floating(problem: Problem, w: Any) -> None:
    """``problem``'s shape/finiteness check on ``w``, plus a real floating dtype."""
    problem._check_point(w)
    if not namespace(w).isdtype(w.dtype, "real floating"):
        raise ValueError(f"{type(problem).__name__}: w must be real floating, got dtype {w.dtype}")


class _RavinePoint(Point):
    problem: Ravine

    @cached_property
    def _parts(self) -> tuple[Any, Any, Any]:
        x, y = self.w[0], self.w[1]
        return x, y, self.problem.lam0 * (1.0 + y * y)

    @property
    def loss(self) -> Any:
        x, _, s = self._parts
        return 0.5 * s * x * x

    @cached_property
    def grad(self) -> Any:
        x, y, s = self._parts
        return self.xp.stack([s * x, self.problem.lam0 * y * x * x])

    def _entries(self) -> tuple[Any, Any, Any]:
        x, y, s = self._parts
        lam0 = self.problem.lam0
        return s, 2.0 * lam0 * x * y, lam0 * x * x  # h_xx, h_xy, h_yy

    def hvp_batch(self, V: Any) -> Any:
        shape = tuple(getattr(V, "shape", ()))
        if len(shape) != 2 or shape[1] != 2:
            raise ValueError(f"Ravine: V must have shape (k, 2), got {shape}")
        hxx, hxy, hyy = self._entries()
        u, v = V[:, 0], V[:, 1]
        return self.xp.stack([hxx * u + hxy * v, hxy * u + hyy * v], axis=1)

    def hessian(self) -> Any:
        xp = self.xp
        hxx, hxy, hyy = self._entries()
        return xp.stack([xp.stack([hxx, hxy]), xp.stack([hxy, hyy])])


class Ravine(Problem):
    r""":math:`L(x, y) = \tfrac12 \lambda_0 (1 + y^2) x^2` with ``w = (x, y)``.

    .. math::
        \nabla L = \bigl(\lambda_0(1+y^2)\,x,\ \lambda_0\, y\, x^2\bigr), \qquad
        \nabla^2 L = \lambda_0 \begin{pmatrix} 1 + y^2 & 2xy \\ 2xy & x^2 \end{pmatrix}.

    At a minimizer :math:`x = 0` the Hessian is :math:`\mathrm{diag}(\lambda_0(1+y^2), 0)`, so
    :math:`\lambda_1 = \lambda_0(1+y^2)` (:meth:`sharpness`) with eigenvector :math:`e_x`, and
    :math:`\nabla\lambda_1 = (0, 2\lambda_0 y)` (:meth:`grad_sharpness`). No data:
    ``batch`` must be ``None``. The drift of SAM along the ravine is derived in
    docs/theory.md#T-drift.

    Args:
        lam0 (float): The curvature :math:`\lambda_0 > 0` across the ravine at :math:`y = 0`.

    Examples:
        >>> import numpy as np
        >>> toy = Ravine(lam0=5.0)
        >>> w = np.array([0.0, 0.5])
        >>> float(toy.sharpness(w)), toy.grad_sharpness(w).tolist()
        (6.25, [0.0, 5.0])
        >>> toy.hessian(w).tolist()
        [[6.25, 0.0], [0.0, 0.0]]
    """

    dim = 2
    n_samples = None

    def __init__(self, lam0: float = 5.0, *, xp: ModuleType | None = None):
        try:
            lam0 = float(lam0)
        except (TypeError, ValueError):
            raise ValueError(f"Ravine: lam0 must be a positive number, got {lam0!r}") from None
        if not (math.isfinite(lam0) and lam0 > 0):
            raise ValueError(f"Ravine: lam0 must be a positive finite number, got {lam0!r}")
        self.lam0 = lam0
        self._xp = xp if xp is not None else default_namespace()

    def __repr__(self) -> str:
        return f"Ravine(lam0={self.lam0!r})"

    @property
    def xp(self) -> ModuleType:
        """The array namespace the problem reports (it holds no arrays)."""
        return self._xp

    def at(self, w: Any, batch: Any = None) -> _RavinePoint:
        """The loss and its derivatives at ``w`` (no data: ``batch`` must be ``None``)."""
        self._batch_indices(batch)
        _check_floating(self, w)
        return _RavinePoint(self, w)

    def convert(self, xp: ModuleType, device: Any = None) -> Ravine:
        """The same problem, reporting namespace ``xp`` (no arrays held; ``device`` unused)."""
        return Ravine(self.lam0, xp=xp)

    # -- closed forms ---------------------------------------------------------------------------
    def sharpness(self, w: Any) -> Any:
        r""":math:`\lambda_0(1 + y^2)`: the top Hessian eigenvalue at a minimizer :math:`(0, y)`."""
        _check_floating(self, w)
        return self.lam0 * (1.0 + w[1] * w[1])

    def grad_sharpness(self, w: Any) -> Any:
        r""":math:`\nabla_w[\lambda_0(1 + y^2)] = (0, 2\lambda_0 y)`, shape ``(2,)``."""
        _check_floating(self, w)
        y = w[1]
        return namespace(w).stack([0.0 * y, 2.0 * self.lam0 * y])
