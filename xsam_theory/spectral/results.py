r"""Result records of the spectral tools, and the input helpers they share.

Every spectral method returns a frozen :class:`EigenResult` that explains itself: the pairs, their
residuals :math:`\|Hv - \lambda v\|`, how many Hessian-vector products (HVPs) the method spent,
whether it converged, and how many iterations it ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xsam_theory.backend import namespace, to_numpy
from xsam_theory.checks import check_real, check_seed

__all__ = ["EigenResult"]


@dataclass(frozen=True)
class EigenResult:
    r"""Eigenpairs :math:`(\lambda_i, v_i)` of a symmetric operator :math:`H`, with diagnostics.

    Attributes:
        eigenvalues (numpy.ndarray): Shape ``(k,)``, float, on the host. In descending algebraic
            order (:math:`\lambda_1 \ge \lambda_2 \ge \dots`) for every method except power
            iteration, which returns one eigenvalue estimate of the *dominant*
            (largest-:math:`|\lambda|`) pair.
        eigenvectors (array): Shape ``(dim, k)`` in the operator's namespace and on its device;
            column ``i`` is the unit vector belonging to ``eigenvalues[i]``.
        residuals (numpy.ndarray): Shape ``(k,)``: :math:`\|H v_i - \lambda_i v_i\|` per pair (each
            method's docstring says which vector a residual belongs to when that is not obvious).
        n_hvp (int): HVPs the method spent (the change of the operator's ``n_hvp`` counter).
        converged (bool): Whether the method's stated convergence criterion holds for every returned
            pair.
        method (str): Which algorithm produced the result, with notes (fallbacks, breakdown).
        iterations (int): Iterations run (power steps, Lanczos steps, ARPACK restarts; ``0`` for
            dense methods).
        residual_estimates (numpy.ndarray or None): Shape ``(k,)`` when the method has cheap
            residual estimates (Lanczos: :math:`|\beta_m e_m^\top s_i|`), else ``None``.
    """

    eigenvalues: np.ndarray
    eigenvectors: Any = field(repr=False)
    residuals: np.ndarray
    n_hvp: int
    converged: bool
    method: str
    iterations: int
    residual_estimates: np.ndarray | None = None

    def __post_init__(self) -> None:
        lam = np.asarray(self.eigenvalues, dtype=float)
        res = np.asarray(self.residuals, dtype=float)
        if lam.ndim != 1 or res.shape != lam.shape:
            raise ValueError(
                f"eigenvalues and residuals must be 1-D of equal length, got shapes "
                f"{lam.shape} and {res.shape}"
            )
        shape = tuple(self.eigenvectors.shape)
        if len(shape) != 2 or shape[1] != lam.shape[0]:
            raise ValueError(f"eigenvectors must have shape (dim, {lam.shape[0]}), got {shape}")
        object.__setattr__(self, "eigenvalues", lam)
        object.__setattr__(self, "residuals", res)

    @property
    def k(self) -> int:
        """Number of returned pairs."""
        return int(self.eigenvalues.shape[0])

    @property
    def eigenvalue(self) -> float:
        """The first eigenvalue (the algebraic top, or the dominant one for power iteration)."""
        return float(self.eigenvalues[0])

    @property
    def eigenvector(self) -> Any:
        """The first eigenvector, shape ``(dim,)``, in the operator's namespace."""
        return self.eigenvectors[:, 0]


# -- helpers shared by the spectral modules (private) ------------------------------------------


def _to_backend(op: Any, x: Any) -> Any:
    """``x`` (NumPy or any backend) as an array in ``op``'s namespace, dtype and device."""
    try:
        same = namespace(x) is op.xp
    except TypeError:
        same = False
    if same:
        if x.dtype != op.dtype:
            x = op.xp.astype(x, op.dtype)
        return x
    return op.xp.asarray(np.ascontiguousarray(to_numpy(x)), dtype=op.dtype, device=op.device)


def _start_vector(op: Any, v0: Any, seed: int) -> Any:
    """A finite, nonzero start vector of shape ``(dim,)`` on the operator's backend.

    ``v0=None`` draws a standard normal vector on the host from ``numpy.random.default_rng(seed)``
    (the same vector on every backend), rescaled so that its largest entry has magnitude 1.
    Raises ``ValueError`` for a wrong shape, non-finite entries or the zero vector (which spans
    no Krylov space), and for a ``seed`` that is not an integer >= 0 (``None`` included: it would
    not be reproducible).
    """
    seed = check_seed(seed)
    if v0 is None:
        v0 = np.random.default_rng(seed).standard_normal(op.dim)
    elif hasattr(v0, "dtype"):
        check_real("v0", v0)  # a complex or bool v0 would be cast silently
    v = _to_backend(op, v0)
    shape = tuple(v.shape)
    if shape != (op.dim,):
        raise ValueError(f"v0 must have shape ({op.dim},), got {shape}")
    xp = op.xp
    if not bool(xp.all(xp.isfinite(v))):
        raise ValueError("v0 contains non-finite values (NaN or inf)")
    m = xp.max(xp.abs(v))
    if float(m) == 0.0:
        raise ValueError("v0 must be nonzero")
    # only the direction matters: rescale to max|v_i| = 1 so that normalizing it can neither
    # underflow (a tiny nonzero v0 would have norm 0) nor overflow
    return v / m


def _check_symmetric(H: Any) -> None:
    r"""Raise ``ValueError`` unless ``H`` is a finite real square matrix, symmetric up to round-off.

    Tolerance: :math:`\max|H - H^\top| \le \max(10^{-12}, 10^3\varepsilon)\max|H|`
    (``1e-12`` relative in float64, as :class:`~xsam_theory.problems.Quadratic`; ``1.2e-4`` in
    float32). A non-symmetric "Hessian" would otherwise be read silently: ``eigh`` uses one
    triangle, Lanczos and power iteration the whole matrix, and each gives another answer.
    """
    xp = namespace(H)
    check_real("H", H)
    if H.ndim != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {tuple(H.shape)}")
    if H.shape[0] == 0:
        return
    if not bool(xp.all(xp.isfinite(H))):
        raise ValueError("H contains non-finite values (NaN or inf)")
    asym = float(xp.max(xp.abs(H - xp.matrix_transpose(H))))
    scale = float(xp.max(xp.abs(H)))
    eps = float(np.finfo(to_numpy(xp.zeros((1,), dtype=H.dtype)).dtype).eps)
    if asym > max(1e-12, 1e3 * eps) * max(scale, np.finfo(np.float64).tiny):
        raise ValueError(f"H is not symmetric: max |H - H^T| = {asym:.3e}")


def _column_norms(xp: Any, R: Any) -> np.ndarray:
    """Euclidean norms of the columns of ``R`` (shape ``(dim, k)``), on the host."""
    return np.asarray(to_numpy(xp.linalg.vector_norm(R, axis=0)), dtype=float).reshape(-1)


def _check_k(k: int, dim: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= dim:
        raise ValueError(f"k must be an integer in [1, dim={dim}], got {k!r}")
    return int(k)
