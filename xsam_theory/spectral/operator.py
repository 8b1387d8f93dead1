"""Hessian operators that count their HVPs (every spectral method reports the HVPs it spent)."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from xsam_theory.backend import device_of, namespace
from xsam_theory.checks import check_directions, check_vector

__all__ = ["HessianOperator"]


class HessianOperator:
    r"""A symmetric linear operator :math:`v \mapsto Hv` with an HVP counter.

    ``matvec(v)`` applies ``H`` to one vector (shape ``(dim,)``); ``matmat(V)`` applies it to the
    ``k`` rows of ``V`` (shape ``(k, dim)``) in one pass and counts ``k`` HVPs. ``n_hvp`` is the
    running total; spectral methods report the difference they caused. A direction that is not
    a finite real array of the right shape raises ``ValueError`` naming it (``v`` or ``V``)
    before any HVP is spent: ``H`` applied to NaN would only give NaN. The spectral methods check
    their start vector once and then apply ``H`` to their own iterates unchecked
    (:meth:`_apply_one`, :meth:`_apply_rows`), which costs no device synchronisation per HVP.
    """

    def __init__(
        self,
        matmat: Callable[[Any], Any],
        dim: int,
        *,
        xp: ModuleType,
        dtype: Any,
        device: Any = None,
    ):
        self._matmat = matmat
        self.dim = int(dim)
        self.xp = xp
        self.dtype = dtype
        self.device = device
        self.n_hvp = 0

    @classmethod
    def from_point(cls, point: Any) -> HessianOperator:
        """The Hessian of a :class:`~xsam_theory.problems.base.Point` (reuses its caches)."""
        w = point.w
        return cls(
            point.hvp_batch, point.problem.dim, xp=namespace(w), dtype=w.dtype, device=device_of(w)
        )

    @classmethod
    def from_problem(cls, problem: Any, w: Any, batch: Any = None) -> HessianOperator:
        """The Hessian of ``problem`` at ``w`` on ``batch``."""
        return cls.from_point(problem.at(w, batch))

    @classmethod
    def from_matrix(cls, H: Any) -> HessianOperator:
        """A dense symmetric matrix as an operator.

        ``ValueError`` if it is not symmetric up to round-off.
        """
        from xsam_theory.spectral.results import _check_symmetric

        _check_symmetric(H)
        xp = namespace(H)
        return cls(lambda V: V @ H, H.shape[0], xp=xp, dtype=H.dtype, device=device_of(H))

    def matvec(self, v: Any) -> Any:
        """:math:`Hv` (one HVP)."""
        check_vector("v", v, self.dim)
        return self._apply_one(v)

    def matmat(self, V: Any) -> Any:
        """:math:`VH` for the rows of ``V`` (``k`` HVPs in one pass)."""
        check_directions("V", V, self.dim)
        return self._apply_rows(V)

    def _apply_one(self, v: Any) -> Any:
        """:meth:`matvec` without the input check, for a spectral method's own iterates."""
        return self._apply_rows(self.xp.expand_dims(v, axis=0))[0, :]

    def _apply_rows(self, V: Any) -> Any:
        """:meth:`matmat` without the input check (HVPs counted)."""
        self.n_hvp += int(V.shape[0])
        return self._matmat(V)

    def dense(self) -> Any:
        """The dense matrix, assembled from ``dim`` HVPs (for small problems)."""
        eye = self.xp.eye(self.dim, dtype=self.dtype, device=self.device)
        return self._apply_rows(eye)
