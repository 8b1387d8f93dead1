"""Vector primitives with exact zero branches (SPEC §2: a zero vector is never divided by its norm).

Every function here takes arrays from any array-API namespace and is branch-free, so it neither
synchronises a GPU nor lets a NaN out of a finite input.
"""

from __future__ import annotations

import math
from typing import Any

from xsam_theory.backend import namespace

__all__ = ["angle_deg", "cosine", "inner", "norm", "unit"]


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
    xp = namespace(u)
    m = _max_abs(u)
    return m * xp.linalg.vector_norm(u / m)


def inner(u: Any, v: Any) -> Any:
    r""":math:`\langle u, v\rangle` for two vectors, as a 0-d array."""
    xp = namespace(u, v)
    return xp.vecdot(u, v)


def unit(u: Any) -> Any:
    r""":math:`\hat u = u/\|u\|`, and exactly ``0`` where :math:`u = 0`.

    >>> import numpy as np
    >>> unit(np.array([3.0, 4.0])).tolist(), unit(np.zeros(2)).tolist()
    ([0.6, 0.8], [0.0, 0.0])
    >>> unit(np.array([3e-200, 4e-200])).tolist(), unit(np.array([3e200, 4e200])).tolist()
    ([0.6, 0.8], [0.6, 0.8])
    """
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

    ``oriented=True``: :math:`\arccos\cos\angle(u,v) \in [0°, 180°]`.
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
