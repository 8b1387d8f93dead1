"""The problem protocol: objectives with exact first and second derivatives.

The problems and how the optimizers use them: docs/algorithms.md#A-problems.

A :class:`Problem` maps a flat parameter vector ``w`` (shape ``(dim,)``) to a loss. Everything a
method needs at one point — loss, gradient, Hessian-vector products — comes from a
:class:`Point`, made by ``problem.at(w, batch)``. A point computes the forward (and backward)
pass once and reuses it for every HVP asked of it, which is what makes spectral methods cheap.

Problems with data (``n_samples`` not ``None``) define the loss as the *mean* of per-sample
losses, and every method takes ``batch``: ``None`` for the full data or an integer index array
for a minibatch. Problems without data ignore ``batch`` only when it is ``None``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import ModuleType
from typing import Any

import numpy as np

from xsam_theory.backend import namespace, to_numpy
from xsam_theory.checks import check_directions, check_vector

__all__ = ["Point", "Problem", "check_vector"]

# Default memory budget (bytes) for the intermediate arrays of one batched HVP when a dense
# Hessian is assembled; chunks of directions are sized to fit it.
HESSIAN_CHUNK_BYTES = 256 * 2**20


class Point(ABC):
    """Loss, gradient and Hessian-vector products of a problem at one parameter vector.

    Attributes ``loss`` (0-d array) and ``grad`` (shape ``(dim,)``) are computed on first use.
    """

    def __init__(self, problem: Problem, w: Any):
        self.problem = problem
        self.w = w
        self.xp: ModuleType = namespace(w)

    @property
    @abstractmethod
    def loss(self) -> Any:
        """:math:`L(w)` as a 0-d array."""

    @property
    @abstractmethod
    def grad(self) -> Any:
        r""":math:`\nabla L(w)`, shape ``(dim,)``."""

    def hvp(self, v: Any) -> Any:
        r""":math:`H v` with :math:`H = \nabla^2 L(w)` (exact), shape ``(dim,)``.

        ``ValueError`` unless ``v`` is a finite real vector of shape ``(dim,)``.
        """
        check_vector("v", v, self.problem.dim)
        return self.hvp_batch(self.xp.expand_dims(v, axis=0))[0, :]

    @abstractmethod
    def hvp_batch(self, V: Any) -> Any:
        r""":math:`V H` for ``k`` directions stacked as the rows of ``V``, in one pass.

        ``V`` has shape ``(k, dim)``.
        """

    def hessian(self) -> Any:
        r"""The dense Hessian :math:`H` (shape ``(dim, dim)``), assembled from batched HVPs."""
        xp, d = self.xp, self.problem.dim
        eye = xp.eye(d, dtype=self.w.dtype, device=_device(self.w))
        step = self.problem.hessian_chunk()
        blocks = [self.hvp_batch(eye[i : i + step, :]) for i in range(0, d, step)]
        return xp.concat(blocks, axis=0)


def _device(x: Any) -> Any:
    from xsam_theory.backend import device_of

    return device_of(x)


class Problem(ABC):
    """An objective ``L: R^dim -> R`` with exact derivatives (docs/algorithms.md#A-problems).

    Subclasses implement :meth:`at`. The convenience methods below (``loss``, ``grad``, ``hvp``,
    ``hvp_batch``, ``hessian``) build a fresh :class:`Point` each call.
    """

    #: number of parameters
    dim: int
    #: number of data points (``None`` for problems without data)
    n_samples: int | None = None

    @abstractmethod
    def at(self, w: Any, batch: Any = None) -> Point:
        """The loss and its derivatives at ``w`` on ``batch`` (``None``: all data)."""

    @abstractmethod
    def convert(self, xp: ModuleType, device: Any = None) -> Problem:
        """The same problem with its arrays in namespace ``xp`` (on ``device``)."""

    @property
    @abstractmethod
    def xp(self) -> ModuleType:
        """The array namespace of the problem's own arrays."""

    # -- conveniences -------------------------------------------------------------------------
    def loss(self, w: Any, batch: Any = None) -> Any:
        """:math:`L(w)` on ``batch`` (``None``: all data)."""
        return self.at(w, batch).loss

    def grad(self, w: Any, batch: Any = None) -> Any:
        r""":math:`\nabla L(w)` on ``batch`` (``None``: all data), shape ``(dim,)``."""
        return self.at(w, batch).grad

    def hvp(self, w: Any, v: Any, batch: Any = None) -> Any:
        r""":math:`\nabla^2 L(w)\,v`.

        ``ValueError`` for a direction ``v`` that is not a finite real vector of shape ``(dim,)``.
        """
        return self.at(w, batch).hvp(v)

    def hvp_batch(self, w: Any, V: Any, batch: Any = None) -> Any:
        r""":math:`V\,\nabla^2 L(w)` for the rows of ``V``.

        ``ValueError`` unless ``V`` is a finite real array of shape ``(k, dim)``.
        """
        point = self.at(w, batch)
        check_directions("V", V, self.dim)
        return point.hvp_batch(V)

    def hessian(self, w: Any, batch: Any = None) -> Any:
        r"""The dense Hessian :math:`\nabla^2 L(w)` on ``batch``, shape ``(dim, dim)``."""
        return self.at(w, batch).hessian()

    def hessian_chunk(self) -> int:
        """How many directions one batched HVP takes when the dense Hessian is assembled."""
        return max(1, self.dim)

    # -- checks shared by subclasses ----------------------------------------------------------
    def _check_point(self, w: Any) -> None:
        check_vector("w", w, self.dim)

    def _batch_indices(self, batch: Any) -> np.ndarray | None:
        """Validate ``batch`` and return it as a NumPy integer array (``None`` for all data)."""
        if batch is None:
            return None
        if self.n_samples is None:
            raise ValueError(f"{type(self).__name__} has no data, so batch must be None")
        idx = to_numpy(batch)
        if idx.ndim != 1 or idx.size == 0:
            raise ValueError(f"batch must be a non-empty 1-D index array, got shape {idx.shape}")
        if not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"batch must hold integer indices, got dtype {idx.dtype}")
        if idx.min() < 0 or idx.max() >= self.n_samples:
            raise ValueError(
                f"batch indices must lie in [0, {self.n_samples}), got range "
                f"[{idx.min()}, {idx.max()}]"
            )
        return idx
