r"""Properties of the pure maps.

X-SAM's correction geometry (G1–G4), orientation, reductions, and the zero/underflow/overflow
branches of the vector primitives (docs/algorithms.md#A-conventions,
docs/theory.md#T-correction-identities).

Tolerances. Every map here is a handful of dot products and axpys on vectors of dimension
``n <= 8`` whose inputs are unit vectors (after normalization). ``c = <ĝ, v>`` then carries an
*absolute* error of about ``(n + 2) eps`` (not relative to ``c``), which the correction
multiplies by ``alpha``; every other term has size <= 1. The bound used throughout is
``TOL(alpha) = 16 (n + 2) eps (1 + alpha)`` (and ``TOL (1 + alpha)`` for quadratic quantities
such as ``||d||^2``). Measured on 40,000 random inputs (alpha up to 1e3, gradient scales 2^-1000
to 2^1000) the worst error is 0.08 TOL, so the margin is > 10x, and any real violation of the
exact identities G1–G4 is O(1). An earlier version scaled with ``1 + alpha |c|`` instead and was
too tight by design for small ``|c|`` and large ``alpha`` (worst 0.74 of it); it was widened to
the bound derived here, not to an arbitrary constant. Scale never enters: the maps normalize
first.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from xsam_theory.optimizers import eigen_sam_perturbation, sam_perturbation, xsam_direction
from xsam_theory.optimizers.config import CorrectionRule
from xsam_theory.strategies import finite_vectors, unit_vectors
from xsam_theory.vectors import angle_deg, cosine, norm, unit

EPS = np.finfo(float).eps

dims = st.integers(1, 8)
alphas = st.one_of(st.floats(0.0, 2.0), st.floats(0.0, 1e3))  # full domain alpha >= 0
#: gradient scales 2^k: from the underflow region (squared norm < smallest subnormal) to the
#: overflow region (squared norm > largest double)
scales = st.integers(-1000, 1000)


def tol(n: int, alpha: float) -> float:
    return 16 * (n + 2) * EPS * (1.0 + alpha)


def reference_unit(x: np.ndarray) -> np.ndarray:
    """x/||x|| computed independently: exact power-of-two rescaling, then math.hypot."""
    m = float(np.max(np.abs(x)))
    if m == 0.0:
        return np.zeros_like(x)
    _, e = math.frexp(m)
    y = np.ldexp(x, -e)  # exact: a power-of-two scaling of normal or subnormal numbers
    return y / math.hypot(*y)


@st.composite
def geometry_inputs(draw):
    """(g, v, alpha): g = 2^k ĝ at any scale, v a unit vector (tiny components included)."""
    n = draw(dims)
    g = np.ldexp(draw(unit_vectors(n)), draw(scales))
    return g, draw(unit_vectors(n)), draw(alphas)


def _example(g, v, alpha):
    return (np.asarray(g, dtype=float), np.asarray(v, dtype=float), alpha)


# Counterexamples found during development (kept; see docs/testing.md):
#  * a gradient whose squared norm underflows: unit() returned it unnormalized (norm 0 -> divide
#    by 1), so d had length ~1e-170 instead of ~1 (G2 failed). Fixed in xsam_theory/vectors.py.
#  * a gradient whose squared norm overflows: unit() returned the zero vector (norm inf) and
#    numpy warned "overflow encountered in multiply". Same fix.
UNDERFLOW = _example([1e-170, 2e-170], [1.0, 0.0], 0.5)
OVERFLOW = _example([1e200, 1e200], [0.6, 0.8], 1.5)


@given(geometry_inputs())
@example(UNDERFLOW)
@example(OVERFLOW)
def test_G1_component_along_v(inp):
    """G1: <d, v> = c − alpha|c| for every alpha >= 0 and every gradient scale."""
    g, v, alpha = inp
    d, c = xsam_direction(g, v, alpha)
    gh = reference_unit(g)
    c_ref = float(gh @ v)
    assert abs(float(c) - c_ref) <= tol(g.size, 0.0)
    assert abs(float(d @ v) - (c_ref - alpha * abs(c_ref))) <= tol(g.size, alpha)


@given(geometry_inputs())
@example(UNDERFLOW)
@example(OVERFLOW)
def test_G2_norm_identity(inp):
    """G2: ||d||^2 = 1 − c^2 + (c − alpha|c|)^2 (= 1 − 2 alpha c|c| + alpha^2 c^2)."""
    g, v, alpha = inp
    d, _ = xsam_direction(g, v, alpha)
    c = float(reference_unit(g) @ v)
    want = 1.0 - c * c + (c - alpha * abs(c)) ** 2
    assert abs(float(d @ d) - want) <= tol(g.size, alpha) * (1.0 + alpha)


@given(geometry_inputs())
@example(_example([0.6, 0.8], [0.6, 0.8], 2.0))  # c = 1, alpha = 2: a reflection, ||d|| = 1
@example(_example([0.6, 0.8], [0.6, 0.8], 1.0))  # c = 1, alpha = 1: d = 0 (T-fixed-points)
def test_G2_norm_bound_holds_exactly_when_c_positive_and_alpha_at_most_two(inp):
    """G2: for c > 0, ||d|| <= 1 iff alpha in [0, 2]; for c < 0 and alpha > 0, ||d|| > 1.

    Up to round-off at the boundary: |c| or alpha at the ends of their ranges.
    """
    g, v, alpha = inp
    d, _ = xsam_direction(g, v, alpha)
    c = float(reference_unit(g) @ v)
    excess = float(d @ d) - 1.0  # = alpha c^2 (alpha - 2 sign(c)) exactly
    t = tol(g.size, alpha) * (1.0 + alpha)
    margin = alpha * c * c * abs(alpha - 2.0 * math.copysign(1.0, c))
    if margin <= t:
        return  # on the boundary: round-off decides, nothing to check
    if c > 0 and alpha <= 2.0:
        assert excess <= t
    else:
        assert excess > 0.0


@given(geometry_inputs())
@example(_example([1.0, 0.0], [0.6, 0.8], 1e3))
def test_G3_correction_never_decreases_the_angle_to_v(inp):
    """G3: angle(d, v) >= angle(ĝ, v) for every alpha >= 0.

    That is, <d, v> <= c ||d|| (the division-free form, which also covers d = 0).
    """
    g, v, alpha = inp
    d, _ = xsam_direction(g, v, alpha)
    c = float(reference_unit(g) @ v)
    assert float(d @ v) <= c * float(np.linalg.norm(d)) + 2 * tol(g.size, alpha)


@given(geometry_inputs())
@example(UNDERFLOW)
def test_G4_inner_product_with_the_normalized_gradient(inp):
    """G4: <d, ĝ> = 1 − alpha c|c| (a descent direction unless alpha c|c| >= 1)."""
    g, v, alpha = inp
    d, _ = xsam_direction(g, v, alpha)
    gh = reference_unit(g)
    c = float(gh @ v)
    assert abs(float(d @ gh) - (1.0 - alpha * c * abs(c))) <= tol(g.size, alpha)


@given(geometry_inputs())
def test_paper_rule_under_v_flip_gains_exactly_two_alpha_abs_c_v(inp):
    """d(v) − d(−v) = −2 alpha |c| v for the paper rule (not invariant when alpha c != 0).

    Derivation: docs/theory.md#T-orientation.

    Likewise −2 alpha |<g, v>| v for the raw-projection form; c(−v) = −c(v) bit for bit.
    """
    g, v, alpha = inp
    d_plus, c_plus = xsam_direction(g, v, alpha)
    d_minus, c_minus = xsam_direction(g, -v, alpha)
    assert float(c_minus) == -float(c_plus)
    a = alpha * abs(float(c_plus))
    np.testing.assert_allclose(d_plus - d_minus, -2.0 * a * v, rtol=0, atol=4 * EPS * (1.0 + a))
    raw = CorrectionRule.RAW_PROJECTION.switches
    r_plus, _ = xsam_direction(g, v, alpha, **raw)
    r_minus, _ = xsam_direction(g, -v, alpha, **raw)
    a_raw = alpha * abs(float(g @ v))
    np.testing.assert_allclose(
        r_plus - r_minus, -2.0 * a_raw * v, rtol=0, atol=4 * EPS * (1.0 + a_raw)
    )


@given(geometry_inputs())
def test_symmetric_projector_and_eigen_sam_are_invariant_under_v_flip_bit_for_bit(inp):
    """The symmetric rule, projector form and Eigen-SAM's perturbation ignore the orientation of v.

    Negation is exact in floating point, so the results agree bit for bit.
    """
    g, v, alpha = inp
    for rule in (CorrectionRule.SYMMETRIC, CorrectionRule.PROJECTOR):
        d_plus, _ = xsam_direction(g, v, alpha, **rule.switches)
        d_minus, _ = xsam_direction(g, -v, alpha, **rule.switches)
        assert np.array_equal(d_plus, d_minus)
    e_plus = eigen_sam_perturbation(g, v, 0.05, alpha)
    e_minus = eigen_sam_perturbation(g, -v, 0.05, alpha)
    assert np.array_equal(e_plus, e_minus)


def unit_or_zero(n):
    """The documented domain of v: a unit vector, or the zero vector (no estimate)."""
    return st.one_of(unit_vectors(n), st.just(np.zeros(n)))


# Counterexample found by the stress profile (kept): a non-unit v of size 2^512 makes the raw
# coefficient <g, v> overflow, and 0 * inf = NaN at alpha = 0. v is documented to be a unit
# vector (or 0), so the property is stated on that domain; this input is outside it.
@given(st.integers(1, 8).flatmap(lambda n: st.tuples(finite_vectors(n), unit_or_zero(n))))
@example((np.array([0.0, 0.0, 2.0**512]), np.array([0.0, 0.0, 1.0])))
def test_alpha_zero_reduces_every_form_to_its_base_bit_for_bit(gv):
    """At alpha = 0 every form reduces to its base, bit for bit.

    The normalized forms return unit(g_adv) and the projector returns g_adv, bit for bit, for any
    finite g_adv (zero, subnormal or huge) and v a unit or zero vector.
    """
    g, v = gv
    for rule in CorrectionRule:
        d, _ = xsam_direction(g, v, 0.0, **rule.switches)
        base = unit(g) if rule.switches["normalize"] else g
        assert np.array_equal(d, base)
    assert np.array_equal(eigen_sam_perturbation(g, v, 0.3, 0.0), sam_perturbation(g, 0.3))


@st.composite
def any_gradient_and_direction(draw):
    """G any finite vector (zero, subnormal, huge); v a unit vector or the zero vector."""
    n = draw(dims)
    g = draw(finite_vectors(n))
    v = draw(unit_or_zero(n))
    return g, v, draw(st.floats(0.0, 10.0)), draw(st.floats(0.0, 10.0))


@given(any_gradient_and_direction())
@example((*_example([0.0, 0.0], [0.0, 0.0], 0.5), 0.1))  # zero gradient, zero direction
@example((*_example([5e-324, 0.0], [1.0, 0.0], 0.5), 0.1))  # subnormal gradient
@example((*_example([0.0, 0.0, 1.0, 1.0, 1.0], [0.0] * 5, 0.0), 5e-324))  # subnormal radius
def test_pure_maps_return_finite_values_from_finite_inputs(inp):
    """No NaN or inf from finite inputs (docs/algorithms.md#A-conventions).

    Zero gradients give a zero perturbation and a zero normalized direction, zero directions give no
    correction, subnormal and huge gradients are normalized correctly.
    """
    g, v, alpha, rho = inp
    zero = not np.any(g)
    for rule in CorrectionRule:
        d, c = xsam_direction(g, v, alpha, **rule.switches)
        assert np.all(np.isfinite(d)) and math.isfinite(float(c))
        if zero:
            assert not np.any(d)
    for normalize in (True, False):
        eps = sam_perturbation(g, rho, normalize=normalize)
        assert np.all(np.isfinite(eps))
    eps = sam_perturbation(g, rho)
    if zero:
        assert not np.any(eps)
    else:
        # relative round-off, plus one subnormal quantum per component for radii so small that
        # rho * ĝ leaves the normal range (found by the stress profile: rho = 5e-324)
        assert abs(math.hypot(*eps) - rho) <= 4 * g.size * (EPS * rho + 5e-324)
    e = eigen_sam_perturbation(g, v, rho, alpha)
    assert np.all(np.isfinite(e))
    if zero:
        assert not np.any(e)


@given(st.integers(1, 8).flatmap(finite_vectors))
@example(np.array([1e-170, 1e-170]))  # squared norm underflows to 0
@example(np.array([1e200, -1e200, 3.0]))  # squared norm overflows to inf
@example(np.array([5e-324]))  # the smallest subnormal
def test_norm_and_unit_are_exact_to_round_off_at_every_scale(x):
    """The norm and unit vector are exact to round-off at every scale.

    ||x|| equals math.hypot (an independent, overflow- and underflow-free reference) to 2 n eps
    relative; unit(x) is 0 exactly when x = 0, otherwise x/||x|| to 4 n eps per component, with
    norm 1 to 4 n eps.
    """
    n = x.size
    ref = math.hypot(*x)
    got = float(norm(x))
    assert abs(got - ref) <= 2 * n * EPS * ref
    u = unit(x)
    if not np.any(x):
        assert not np.any(u)
        return
    assert np.all(np.isfinite(u))
    np.testing.assert_allclose(u, reference_unit(x), rtol=0, atol=4 * n * EPS)
    assert abs(math.hypot(*u) - 1.0) <= 4 * n * EPS


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(finite_vectors(n), finite_vectors(n))))
def test_cosine_and_angles_are_bounded_and_defined_exactly_when_both_vectors_are_nonzero(uv):
    """The cosine and angles are bounded, and defined exactly when both vectors are nonzero.

    Cos in [−1, 1]; angles in [0°, 180°] (oriented) and [0°, 90°] (orientation-free), the latter
    invariant under v -> −v; NaN ("not available") exactly when a vector is zero.
    """
    u, v = uv
    c = float(cosine(u, v))
    assert -1.0 <= c <= 1.0
    a, a_free = angle_deg(u, v), angle_deg(u, v, oriented=False)
    if not np.any(u) or not np.any(v):
        assert math.isnan(a) and math.isnan(a_free)
        return
    assert 0.0 <= a <= 180.0 and 0.0 <= a_free <= 90.0
    assert angle_deg(u, -v, oriented=False) == a_free
    assert abs(a + angle_deg(u, -v) - 180.0) <= 1e-9


# Counterexample found by the stress profile (kept): Eigen-SAM took sign<g, v> from the raw
# gradient, and <g/2, v> = 0.5 * 5e-324 underflows to 0, so halving g dropped the correction
# (sign 0). Fixed in xsam_theory/optimizers/directions.py: the sign is taken from <ĝ, v>.
@given(geometry_inputs(), st.integers(-900, 900))
@example((np.array([0.0, 1.0]), np.array([1.0, 5e-324]), 1.0), -1)
@example((np.array([3.34095589e-052, 1.32384217e-272, 0.0]), np.array([0.0, 1.0, 0.0]), 1.0), -172)
def test_normalized_forms_and_eigen_sam_depend_on_the_gradient_only_through_its_direction(inp, k):
    """The normalized forms and Eigen-SAM depend on the gradient only through its direction.

    Scaling g_adv by s = 2^k > 0 leaves the paper and symmetric directions, and Eigen-SAM's
    perturbation (as a function of g), unchanged up to round-off: they see ĝ only.
    """
    g, v, alpha = inp
    with np.errstate(over="ignore", under="ignore"):
        gs = np.ldexp(g, k)
    if not np.all(np.isfinite(gs)) or not np.array_equal(np.ldexp(gs, -k), g):
        # 2^k g is not representable exactly (a component overflowed or lost bits to underflow):
        # there is no scaled gradient to compare. (Eigen-SAM's sign<g, v> is discontinuous, so
        # even a component of relative size 1e-220 lost to underflow may flip it; found by the
        # stress profile, kept below as an example of this guard.)
        return
    for rule in (CorrectionRule.PAPER, CorrectionRule.SYMMETRIC):
        d1, _ = xsam_direction(g, v, alpha, **rule.switches)
        d2, _ = xsam_direction(gs, v, alpha, **rule.switches)
        np.testing.assert_allclose(d2, d1, rtol=0, atol=tol(g.size, alpha))
    e1 = eigen_sam_perturbation(g, v, 0.05, alpha)
    e2 = eigen_sam_perturbation(gs, v, 0.05, alpha)
    np.testing.assert_allclose(e2, e1, rtol=0, atol=0.05 * tol(g.size, alpha))
