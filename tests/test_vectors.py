"""The direct NumPy paths of ``norm`` and ``unit`` agree with the rescaled array-API path.

``norm``/``unit`` take a shortcut for float64 NumPy vectors (``math.hypot`` up to 16 entries,
one dot product beyond) and the rescaled, branch-free formula otherwise. The oracle here is the
rescaled formula itself, run through ``array_api_strict`` (which never takes the shortcut), and
exact rational arithmetic for a few cases.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
import pytest

from xsam_theory.vectors import norm, unit

strict = pytest.importorskip("array_api_strict")


@pytest.mark.parametrize("dim", [1, 2, 3, 16, 17, 64, 1000])
@pytest.mark.parametrize("scale", [2.0**-800, 1e-150, 1.0, 1e150, 2.0**800])
def test_direct_and_rescaled_paths_agree(dim, scale):
    rng = np.random.default_rng([dim, 7])
    for _ in range(20):
        u = rng.standard_normal(dim) * scale
        fast, slow = float(norm(u)), float(norm(strict.asarray(u)))
        assert fast == pytest.approx(slow, rel=4 * dim**0.5 * 2.0**-52)
        uf, us = unit(u), np.asarray(unit(strict.asarray(u)))
        np.testing.assert_allclose(uf, us, rtol=0, atol=4 * dim**0.5 * 2.0**-52)
        assert abs(float(norm(uf)) - 1.0) <= 4 * dim**0.5 * 2.0**-52


def test_norm_is_within_two_ulps_of_the_exact_norm():
    """The norm is within 2 ulps of the exact norm computed in 60-digit decimal arithmetic.

    Both the direct path (math.hypot, within 1 ulp) and the rescaled path (max-scaling, then a
    float64 sum of squares) stay within 2 ulps.
    """
    getcontext().prec = 60
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(300):
        u = rng.standard_normal(int(rng.integers(1, 40))) * 10.0 ** rng.integers(-300, 300)
        exact = sum(Decimal(x) ** 2 for x in u.tolist()).sqrt()
        n = float(norm(u))
        worst = max(worst, float(abs(Decimal(n) - exact) / Decimal(math.ulp(n))))
    assert worst <= 2.0, worst


@pytest.mark.parametrize(
    "u",
    [
        np.zeros(3),
        np.zeros(40),
        np.array([5e-324, 0.0]),
        np.array([1e308, 1e308]),
        np.full(40, 1e200),
    ],
)
def test_edge_vectors_take_the_safe_path(u):
    """Zero stays exactly zero, subnormal and huge vectors neither underflow nor overflow."""
    n = float(norm(u))
    assert math.isfinite(n)
    assert (n == 0.0) == (not np.any(u))
    v = unit(u)
    assert np.all(np.isfinite(v))
    if np.any(u):
        assert float(norm(v)) == pytest.approx(1.0, rel=1e-15)
    else:
        assert not np.any(v)
