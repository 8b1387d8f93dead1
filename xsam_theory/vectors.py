"""Vector primitives with exact zero branches: a zero vector is never divided by its norm.

The convention and what it guarantees: docs/algorithms.md#A-conventions.

Every function here takes arrays from any array-API namespace and is branch-free there, so it
neither synchronises a GPU nor lets a NaN out of a finite input. Float64 NumPy vectors whose
sum of squares is safely inside the float64 range take a direct path (one dot product), which
is as accurate and several times cheaper on the small problems whose steps run in loops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xsam_theory.backend import namespace

__all__ = ["angle_deg", "cosine", "inner", "norm", "unit"]


#: vectors up to this length take math.hypot (scaled, correctly rounded to within an ulp);
#: longer ones the dot product, whose sum of squares is safe inside _SAFE_SUMSQ
_HYPOT_MAX = 16
_SAFE_SUMSQ = (2.0**-900, 2.0**900)


def _numpy_norm(u: Any) -> float | None:
    r""":math:`\|u\|` of a float64 NumPy vector by a direct formula, when that is as accurate.

    The direct formula is used when it is as accurate as the rescaled one (short vectors:
    ``math.hypot``, which scales internally; long ones: :math:`\sqrt{\langle u,u\rangle}` when
    the sum of squares lies safely inside the float64 range); ``None`` for other namespaces and
    dtypes and for zero, tiny, huge or non-finite vectors, which take the rescaled, branch-free
    path.
    """
    if type(u) is not np.ndarray or u.dtype != np.float64 or u.ndim != 1:
        return None
    if u.size <= _HYPOT_MAX:
        n = math.hypot(*u.tolist())
        return n if _SAFE_SUMSQ[0] < n < _SAFE_SUMSQ[1] else None
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        s = float(u @ u)  # inf or a tiny value here only sends u to the rescaled path
    return math.sqrt(s) if _SAFE_SUMSQ[0] < s < _SAFE_SUMSQ[1] else None


def _max_abs(u: Any) -> Any:
    r""":math:`\max_i |u_i|` as a 0-d array, and ``1`` where it is ``0`` (a safe divisor)."""
    xp = namespace(u)
    m = xp.max(xp.abs(u))
    return xp.where(m > 0, m, xp.ones_like(m))


def norm(u: Any) -> Any:
    r"""Euclidean norm :math:`\|u\|` of a vector, as a 0-d array.

    Computed as :math:`m\,\|u/m\|` with :math:`m = \max_i|u_i|`, so that the sum of squares
    neither underflows (a nonzero vector whose squares are below the smallest subnormal would
    get norm 0) nor overflows (entries above ~1e154 would get norm inf).

    >>> import numpy as np
    >>> [float(norm(np.array([3.0, 4.0]) * s)) / s for s in (2.0**-700, 2.0**700)]
    [5.0, 5.0]
    """
    fast = _numpy_norm(u)
    if fast is not None:
        return np.float64(fast)
    xp = namespace(u)
    m = _max_abs(u)
    return m * xp.linalg.vector_norm(u / m)


def inner(u: Any, v: Any) -> Any:
    r""":math:`\langle u, v\rangle` for two vectors, as a 0-d array."""
    xp = namespace(u, v)
    return xp.vecdot(u, v)


def unit(u: Any) -> Any:
    r""":math:`\hat u = u/\|u\|`, and exactly ``0`` where :math:`u = 0`.

    No epsilon is added to the norm (docs/algorithms.md#A-conventions): a nonzero vector, however
    small or large, comes back as a unit vector.

    >>> import numpy as np
    >>> unit(np.array([3.0, 4.0])).tolist(), unit(np.zeros(2)).tolist()
    ([0.6, 0.8], [0.0, 0.0])
    >>> [bool(np.allclose(unit(np.array([3.0, 4.0]) * s), [0.6, 0.8], rtol=0, atol=2**-52))
    ...  for s in (1e-200, 1e200, 2.0**-1000, 2.0**1000)]     # no underflow, no overflow
    [True, True, True, True]
    """
    fast = _numpy_norm(u)
    if fast is not None:
        return u / fast
    xp = namespace(u)
    # rescale by max|u_i| first, so that the norm neither underflows (||u||^2 below the smallest
    # subnormal: u came back unnormalized) nor overflows (u came back as 0); then n is in
    # [1, sqrt(dim)], or 0 exactly where u == 0, and dividing by 1 returns the exact zero vector.
    s = u / _max_abs(u)
    n = xp.linalg.vector_norm(s)
    return s / xp.where(n > 0, n, xp.ones_like(n))


def cosine(u: Any, v: Any) -> Any:
    r""":math:`\cos\angle(u, v) = \langle u,v\rangle/(\|u\|\|v\|)`; ``0`` if either is zero."""
    xp = namespace(u, v)
    c = xp.vecdot(unit(u), unit(v))
    return xp.clip(c, -1.0, 1.0)


def angle_deg(u: Any, v: Any, *, oriented: bool = True) -> float:
    r"""The angle between ``u`` and ``v`` in degrees.

    ``oriented=True``: :math:`\arccos\cos\angle(u,v) \in [0°, 180°]` (the angles a step
    reports: docs/algorithms.md#A-step-report).
    ``oriented=False``: the orientation-free angle :math:`\arccos|\cos\angle(u,v)| \in [0°, 90°]`,
    which does not change under :math:`v \to -v`. Returns NaN if either vector is zero (the angle
    is undefined, and NaN here is a documented "not available", not a numerical failure).
    """
    if float(norm(u)) == 0.0 or float(norm(v)) == 0.0:
        return math.nan
    c = float(cosine(u, v))
    if not oriented:
        c = abs(c)
    return math.degrees(math.acos(c))
