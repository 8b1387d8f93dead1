r"""Quadratic objectives :math:`L(w) = \tfrac12 w^\top H w - b^\top w`.

``H`` is dense (shape ``(d, d)``, symmetric) or diagonal (shape ``(d,)``), PSD or indefinite.
Constructors build ``H`` with a prescribed spectrum in a random orthonormal basis, including a
repeated top eigenvalue and a dominant negative eigenvalue (the power-iteration pitfall:
docs/theory.md#T-dominant-negative). The problems: docs/algorithms.md#A-problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

import numpy as np

from xsam_theory.backend import device_of, placement, to_numpy
from xsam_theory.checks import check_real, check_seed
from xsam_theory.problems.base import Point, Problem

__all__ = ["Quadratic", "random_orthogonal"]


def random_orthogonal(dim: int, seed: int | np.random.Generator = 0) -> np.ndarray:
    """A Haar-distributed orthogonal matrix.

    QR of a Gaussian matrix with the sign of R fixed. ``seed``: an integer >= 0 or a
    ``numpy.random.Generator``.
    """
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    rng = np.random.default_rng(check_seed(seed, generator_ok=True))
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


class _QuadraticPoint(Point):
    problem: Quadratic

    @property
    def loss(self) -> Any:
        p, xp = self.problem, self.xp
        return 0.5 * xp.vecdot(self.w, self._Hw) - xp.vecdot(p.b, self.w)

    @property
    def grad(self) -> Any:
        return self._Hw - self.problem.b

    @property
    def _Hw(self) -> Any:
        if not hasattr(self, "_Hw_cache"):
            self._Hw_cache = self.problem._apply(self.w)
        return self._Hw_cache

    def hvp_batch(self, V: Any) -> Any:
        return self.problem._apply_rows(V)

    def hessian(self) -> Any:
        return self.problem.hessian_matrix


class Quadratic(Problem):
    r""":math:`L(w) = \tfrac12 w^\top H w - b^\top w`, gradient :math:`Hw - b`, Hessian :math:`H`.

    The problem of the closed forms (the SAM cycle, the edges, the X-SAM window:
    docs/theory.md#T-sam-cycle, docs/theory.md#T-window); the problems:
    docs/algorithms.md#A-problems.

    Args:
        H: symmetric ``(d, d)`` matrix, or a ``(d,)`` vector holding a diagonal ``H``.
        b: linear term (default ``0``).
        eigenvalues, eigenvectors: the exact spectrum when the constructor knows it
            (columns of ``eigenvectors``, eigenvalues in descending order).
    """

    def __init__(
        self,
        H: Any,
        b: Any = None,
        *,
        eigenvalues: Any = None,
        eigenvectors: Any = None,
        xp: ModuleType | None = None,
    ):
        H_np = to_numpy(H)
        check_real("H", H_np)
        if H_np.ndim not in (1, 2) or H_np.size == 0:
            raise ValueError(
                f"H must be a (d, d) matrix or a (d,) diagonal, got shape {H_np.shape}"
            )
        if H_np.ndim == 2 and H_np.shape[0] != H_np.shape[1]:
            raise ValueError(f"H must be square, got shape {H_np.shape}")
        if not np.all(np.isfinite(H_np)):
            raise ValueError("H contains non-finite values (NaN or inf)")
        if H_np.ndim == 2:
            asym = float(np.max(np.abs(H_np - H_np.T)))
            scale = float(np.max(np.abs(H_np)))
            if asym > 1e-12 * max(scale, 1e-300):
                raise ValueError(f"H is not symmetric: max |H - H^T| = {asym:.3e}")
        self.dim = int(H_np.shape[0])
        self.diagonal = H_np.ndim == 1
        xp, device = placement(H, xp)
        self._xp = xp
        self.H = xp.asarray(H_np, dtype=xp.float64, device=device)
        b_np = np.zeros(self.dim) if b is None else to_numpy(b)
        check_real("b", b_np)
        if b_np.shape != (self.dim,):
            raise ValueError(f"b must have shape ({self.dim},), got {b_np.shape}")
        if not np.all(np.isfinite(b_np)):
            raise ValueError("b contains non-finite values (NaN or inf)")
        self.b = xp.asarray(b_np, dtype=xp.float64, device=device)
        self.eigenvalues = None if eigenvalues is None else np.asarray(eigenvalues, dtype=float)
        self.eigenvectors = None if eigenvectors is None else np.asarray(eigenvectors, dtype=float)

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def from_spectrum(
        cls, eigenvalues: Sequence[float], *, seed: int | None = 0, b: Any = None
    ) -> Quadratic:
        r""":math:`H = Q\,\mathrm{diag}(\lambda)\,Q^\top` with a Haar-random orthogonal ``Q``.

        ``seed`` (an integer >= 0) draws ``Q``; ``seed=None`` keeps the standard basis
        (``Q = I``, a dense diagonal matrix): here ``None`` is a choice of basis, not fresh
        entropy, so the result is reproducible either way.
        """
        lam = np.asarray(eigenvalues, dtype=float)
        if lam.ndim != 1 or lam.size == 0:
            raise ValueError(f"eigenvalues must be a non-empty 1-D sequence, got shape {lam.shape}")
        order = np.argsort(-lam, kind="stable")
        lam = lam[order]
        Q = np.eye(lam.size) if seed is None else random_orthogonal(lam.size, seed)
        H = (Q * lam) @ Q.T
        H = 0.5 * (H + H.T)
        return cls(H, b, eigenvalues=lam, eigenvectors=Q)

    @classmethod
    def diagonal_from(cls, eigenvalues: Sequence[float], b: Any = None) -> Quadratic:
        """A diagonal quadratic stored as its diagonal (``H = diag(eigenvalues)``)."""
        lam = np.asarray(eigenvalues, dtype=float)
        order = np.argsort(-lam, kind="stable")
        return cls(lam, b, eigenvalues=lam[order], eigenvectors=np.eye(lam.size)[:, order])

    @classmethod
    def repeated_top(
        cls,
        dim: int,
        *,
        top: float = 10.0,
        multiplicity: int = 2,
        rest: tuple[float, float] = (0.1, 5.0),
        seed: int = 0,
    ) -> Quadratic:
        """Top eigenvalue ``top`` repeated ``multiplicity`` times, the rest spread over ``rest``."""
        if not 1 <= multiplicity <= dim:
            raise ValueError(f"multiplicity must lie in [1, dim={dim}], got {multiplicity}")
        lam = np.concatenate(
            [np.full(multiplicity, float(top)), np.linspace(rest[1], rest[0], dim - multiplicity)]
        )
        return cls.from_spectrum(lam, seed=seed)

    @classmethod
    def dominant_negative(
        cls,
        dim: int,
        *,
        top: float = 5.0,
        negative: float = -7.0,
        rest: tuple[float, float] = (-2.0, 3.0),
        seed: int = 0,
    ) -> Quadratic:
        """An indefinite ``H`` whose most negative eigenvalue dominates in magnitude.

        Eigenvalues ``top > 0`` (the algebraic top), ``negative`` with ``-negative > top`` (the
        dominant one, which power iteration finds instead: docs/theory.md#T-dominant-negative) and
        ``dim - 2`` values spread evenly over ``rest``, in a Haar-random basis drawn from ``seed``.

        Raises:
            ValueError: ``dim < 2``, or not ``-negative > top > 0``.
        """
        if dim < 2:
            raise ValueError(f"dim must be >= 2, got {dim}")
        if not -negative > top > 0:
            raise ValueError(f"need -negative > top > 0, got top={top}, negative={negative}")
        lam = np.concatenate(
            [[float(top)], np.linspace(rest[1], rest[0], dim - 2), [float(negative)]]
        )
        return cls.from_spectrum(lam, seed=seed)

    # -- protocol -------------------------------------------------------------------------------
    @property
    def xp(self) -> ModuleType:
        """The array namespace of ``H``."""
        return self._xp

    def at(self, w: Any, batch: Any = None) -> Point:
        """The loss and its derivatives at ``w`` (no data: ``batch`` must be ``None``)."""
        self._batch_indices(batch)
        self._check_point(w)
        return _QuadraticPoint(self, w)

    def convert(self, xp: ModuleType, device: Any = None) -> Quadratic:
        """The same quadratic with ``H`` in namespace ``xp`` (on ``device``)."""
        H = xp.asarray(to_numpy(self.H), dtype=xp.float64, device=device)
        return Quadratic(
            H, to_numpy(self.b), eigenvalues=self.eigenvalues, eigenvectors=self.eigenvectors
        )

    @property
    def hessian_matrix(self) -> Any:
        """The dense ``H`` (built from the diagonal when stored diagonally)."""
        if self.diagonal:
            xp = self._xp
            return xp.eye(self.dim, dtype=self.H.dtype, device=device_of(self.H)) * self.H
        return self.H

    def _apply(self, w: Any) -> Any:
        return self.H * w if self.diagonal else self.H @ w

    def _apply_rows(self, V: Any) -> Any:
        # rows of V times H (H symmetric): V H
        return V * self.H if self.diagonal else V @ self.H
