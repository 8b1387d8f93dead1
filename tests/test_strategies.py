"""The strategies of :mod:`xsam_theory.strategies` deliver what they promise.

A property is only as good as its inputs: a "symmetric" matrix must be symmetric, its spectrum
the one requested, a "unit" vector of norm 1, a "valid" configuration accepted. The spectrum is
checked to ``64 n eps max|lambda|`` (Weyl: assembling Q diag(lambda) Q^T perturbs H by
O(n eps ||H||), and eigvalsh is backward stable); eigenvalues far below ``||H||`` are therefore
checked absolutely, which is all a condition number up to 1e8 allows.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from xsam_theory import OptimizerConfig
from xsam_theory.strategies import (  # noqa: F401  (symmetric_case/mlp_case: eval of reprs)
    EIGENVALUE_KINDS,
    MAX_CONDITION,
    SCALE_RANGE,
    finite_vectors,
    mlp_case,
    mlp_cases,
    optimizer_configs,
    orthogonal_matrices,
    problem_cases,
    symmetric_case,
    symmetric_matrices,
    unit_vectors,
)

EPS = np.finfo(float).eps


@given(symmetric_matrices(max_dim=8))
def test_symmetric_matrices_are_symmetric_with_the_requested_spectrum(case):
    """Symmetric cases are symmetric bit for bit, with the requested spectrum and basis.

    H == H^T bit for bit; eigvalsh(H) = the requested eigenvalues to 64 n eps ||H||; the basis is
    orthogonal to 16 n eps (exactly the identity when basis_seed is None).
    """
    n = case.dim
    assert case.H.shape == (n, n) and np.array_equal(case.H, case.H.T)
    lam = np.linalg.eigvalsh(case.H)[::-1]
    assert np.max(np.abs(lam - case.eigenvalues)) <= 64 * n * EPS * case.scale
    Q = case.eigenvectors
    assert np.max(np.abs(Q.T @ Q - np.eye(n))) <= 16 * n * EPS
    if case.basis_seed is None:
        assert np.array_equal(Q, np.eye(n))
    assert np.all(np.diff(case.eigenvalues) <= 0)


@given(
    st.sampled_from(EIGENVALUE_KINDS).flatmap(
        lambda k: st.tuples(st.just(k), symmetric_matrices(kinds=(k,), max_dim=8))
    )
)
def test_each_spectrum_kind_has_its_structure(kind_case):
    """Each spectrum kind has its scale, condition and defining structure.

    Scale in [1e-8, 1e8] and condition <= 1e8 (up to the rounding of 10**x), plus each kind's
    defining structure: PSD / both signs / exactly repeated top / a top gap in [1e-12, 1e-1]
    relative / a dominant negative eigenvalue below a positive top / exact zeros.
    """
    kind, case = kind_case
    lam = case.eigenvalues
    assert case.kind == kind
    lo, hi = SCALE_RANGE
    assert lo * (1 - 1e-12) <= case.scale <= hi * (1 + 1e-12)
    nonzero = np.abs(lam[lam != 0])
    assert np.max(nonzero) / np.min(nonzero) <= MAX_CONDITION * (1 + 1e-9)
    if kind in ("psd", "repeated_top", "near_repeated_top"):
        assert np.all(lam > 0)
    if kind == "indefinite":
        assert np.any(lam > 0) and np.any(lam < 0)
    if kind == "repeated_top":
        assert case.top_multiplicity >= 2
    if kind == "near_repeated_top":
        rel_gap = (lam[0] - lam[1]) / lam[0]
        assert 1e-12 * (1 - 1e-3) <= rel_gap <= 0.1 * (1 + 1e-9)
    if kind == "dominant_negative":
        assert lam[-1] < 0 < lam[0] < -lam[-1]
        assert np.all(np.abs(lam[:-1]) < -lam[-1])
    if kind == "singular":
        assert np.all(lam >= 0) and np.any(lam == 0) and np.any(lam > 0)
        assert math.isinf(case.condition)


@given(symmetric_matrices(max_dim=5))
def test_symmetric_case_repr_rebuilds_the_same_matrix(case):
    """The repr of a case is a call of symmetric_case that rebuilds H bit for bit.

    Paste it into an @example.
    """
    again = eval(repr(case))
    assert np.array_equal(again.H, case.H) and again.kind == case.kind


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), unit_vectors(n))))
def test_unit_vectors_have_unit_norm(nv):
    n, v = nv
    assert v.shape == (n,) and np.all(np.isfinite(v))
    assert abs(math.hypot(*v) - 1.0) <= 4 * n * EPS


@given(st.integers(1, 8).flatmap(finite_vectors))
def test_finite_vectors_are_finite_and_bounded(x):
    assert np.all(np.isfinite(x)) and np.all(np.abs(x) <= 2.0**1000)


@given(st.integers(1, 8).flatmap(lambda n: st.tuples(st.just(n), orthogonal_matrices(n))))
def test_orthogonal_matrices_are_orthogonal(nq):
    n, Q = nq
    assert np.max(np.abs(Q.T @ Q - np.eye(n))) <= 16 * n * EPS


@given(mlp_cases())
def test_mlp_cases_are_consistent_and_reproducible(m):
    """MLP cases are consistent and their repr reproduces them.

    The parameter vector fits the network, loss and gradient are finite, and the repr is a mlp_case
    call that rebuilds the same data and parameters.
    """
    p = m.problem
    assert m.w.shape == (p.dim,) and p.widths == m.widths and p.n_samples == m.n_samples
    assert math.isfinite(float(p.loss(m.w))) and np.all(np.isfinite(p.grad(m.w)))
    again = eval(repr(m))
    assert np.array_equal(again.w, m.w) and np.array_equal(again.problem.X, p.X)
    assert np.array_equal(again.problem.Y, p.Y)


@given(problem_cases())
def test_problem_cases_are_evaluable(pc):
    assert pc.w.shape == (pc.problem.dim,)
    assert math.isfinite(float(pc.problem.loss(pc.w)))
    assert np.all(np.isfinite(pc.problem.grad(pc.w)))


@given(optimizer_configs())
def test_valid_optimizer_configs_are_accepted_silently_and_round_trip(cfg):
    """Every drawn configuration is valid and survives to_dict/from_dict.

    Valid means no error and no warning for alpha in [0, 2].
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = OptimizerConfig.from_dict(cfg.to_dict())
    assert again == cfg.canonical()  # options the values make inert take their off value
