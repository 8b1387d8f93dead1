"""Spectral tools against independent oracles.

Oracles: ``numpy.linalg.eigh`` of the dense matrix, the spectrum a quadratic was *built* from
(``Quadratic.from_spectrum``), closed forms (the power-iteration rate,
docs/theory.md#T-power-rate; the Kaniel–Paige–Saad bound, docs/theory.md#T-lanczos-bound;
Hutchinson's mean and variance), and an HVP counter kept outside the operator.
"""

from __future__ import annotations

import itertools
import math

import array_api_strict
import numpy as np
import pytest
from numpy.polynomial import chebyshev

from xsam_theory.problems.quadratic import Quadratic, random_orthogonal
from xsam_theory.spectral import (
    EigenResult,
    HessianOperator,
    TraceEstimate,
    angle_to_subspace,
    eigh_spectrum,
    exact_top,
    hutchinson_trace,
    lanczos,
    lanczos_eigsh,
    orient,
    power_iteration,
    shifted_power_iteration,
    top_eigenpair,
    top_eigenspace,
)

# -- helpers ------------------------------------------------------------------------------------


def operator(q: Quadratic) -> HessianOperator:
    """The Hessian of ``q`` as an operator, in ``q``'s own namespace."""
    xp = q.xp
    return HessianOperator.from_problem(q, xp.zeros((q.dim,), dtype=xp.float64))


class CountingMatrix:
    """Applies a NumPy matrix to rows and counts the rows itself, independently of ``n_hvp``."""

    def __init__(self, H: np.ndarray):
        self.H = H
        self.rows = 0

    def __call__(self, V: np.ndarray) -> np.ndarray:
        self.rows += V.shape[0]
        return V @ self.H

    def operator(self) -> HessianOperator:
        return HessianOperator(self, self.H.shape[0], xp=np_xp(), dtype=np.float64, device="cpu")


def np_xp():
    import array_api_compat.numpy as xp

    return xp


def dense(q: Quadratic) -> np.ndarray:
    return np.asarray(q.hessian_matrix, dtype=float)


def oracle(q: Quadratic) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs by numpy.linalg.eigh, descending."""
    lam, V = np.linalg.eigh(dense(q))
    return lam[::-1], V[:, ::-1]


def tan_angle(u: np.ndarray, v: np.ndarray) -> float:
    """Tan of the angle between the lines of u and unit v: ||u - (u.v)v|| / |u.v|."""
    c = float(u @ v)
    return float(np.linalg.norm(u - c * v)) / abs(c)


SMALL_GAP = np.concatenate([[10.0, 9.0], np.linspace(8.0, -2.0, 48)])  # the T-lanczos-bound example


# -- top eigenpair: eigsh and Krylov Lanczos against numpy.linalg.eigh ----------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_eigsh_top_matches_dense_eigh(seed):
    rng = np.random.default_rng(seed)
    q = Quadratic.from_spectrum(rng.uniform(-3.0, 10.0, size=60), seed=seed)
    lam, V = oracle(q)
    res = lanczos_eigsh(operator(q))
    assert res.eigenvalue == pytest.approx(lam[0], rel=1e-10)
    assert abs(float(np.asarray(res.eigenvector) @ V[:, 0])) == pytest.approx(1.0, abs=1e-8)
    assert res.converged and res.residuals[0] < 1e-10 * abs(lam[0])
    assert "LA" in res.method


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_krylov_lanczos_top_matches_dense_eigh(seed):
    rng = np.random.default_rng(seed)
    q = Quadratic.from_spectrum(
        np.concatenate([[12.0], rng.uniform(-3.0, 9.0, size=79)]), seed=seed
    )
    lam, V = oracle(q)
    res = lanczos(operator(q), None, 40, seed=seed)
    assert res.eigenvalue == pytest.approx(lam[0], rel=1e-10)
    assert abs(float(np.asarray(res.eigenvector) @ V[:, 0])) == pytest.approx(1.0, abs=1e-8)
    assert res.converged and res.n_hvp == 40 and res.iterations == 40
    # the exact residual is bounded by the classical estimate |beta_m e_m^T s| (up to round-off)
    assert res.residuals[0] <= res.residual_estimates[0] + 1e-12


def test_top_k_all_methods_match_dense_eigh():
    k = 4
    q = Quadratic.from_spectrum(
        np.concatenate([[9.0, 7.5, 6.0, 5.0], np.linspace(4, -4, 56)]), seed=3
    )
    lam, V = oracle(q)
    op = operator(q)
    for res in (lanczos_eigsh(op, k), lanczos(op, None, 50, k), exact_top(op, k)):
        assert res.eigenvalues.shape == (k,)
        np.testing.assert_allclose(res.eigenvalues, lam[:k], rtol=1e-10)
        Y = np.asarray(res.eigenvectors)
        assert Y.shape == (q.dim, k)
        np.testing.assert_allclose(Y.T @ Y, np.eye(k), atol=1e-10)
        np.testing.assert_allclose(np.abs(np.sum(Y * V[:, :k], axis=0)), 1.0, atol=1e-8)
        np.testing.assert_allclose(  # reported residuals are the true ||Hv - lam v||
            res.residuals, np.linalg.norm(dense(q) @ Y - Y * res.eigenvalues, axis=0), atol=1e-12
        )


def test_eigh_spectrum_full_and_descending():
    q = Quadratic.from_spectrum(np.linspace(-5.0, 5.0, 12), seed=4)
    res = eigh_spectrum(q.hessian_matrix)
    np.testing.assert_allclose(res.eigenvalues, np.sort(q.eigenvalues)[::-1], atol=1e-12)
    assert np.all(np.diff(res.eigenvalues) <= 0) and res.n_hvp == 0
    assert np.max(res.residuals) < 1e-12


@pytest.mark.parametrize("dim", [2, 3])
def test_eigsh_small_dim_falls_back_to_dense(dim):
    q = Quadratic.from_spectrum(np.arange(dim, 0, -1.0) * 1.5, seed=5)
    lam, _ = oracle(q)
    full = lanczos_eigsh(operator(q), dim)
    assert "dense" in full.method and full.n_hvp == dim
    np.testing.assert_allclose(full.eigenvalues, lam, rtol=1e-12)
    part = lanczos_eigsh(operator(q), dim - 1)
    np.testing.assert_allclose(part.eigenvalues, lam[: dim - 1], rtol=1e-10)


def test_krylov_lanczos_breakdown_on_few_distinct_eigenvalues():
    # 3 distinct eigenvalues: the Krylov space is invariant after 3 steps, so Lanczos stops there
    q = Quadratic.from_spectrum(np.repeat([4.0, 1.0, -2.0], 10), seed=6)
    res = lanczos(operator(q), None, 15, k=3)
    assert "breakdown" in res.method and res.n_hvp == 3 and res.iterations == 3
    np.testing.assert_allclose(res.eigenvalues, [4.0, 1.0, -2.0], atol=1e-12)
    assert res.converged and np.all(np.isfinite(np.asarray(res.eigenvectors)))


# -- power iteration: the reference semantics and the dominant-magnitude pitfall ---------------
# (docs/theory.md#T-dominant-negative)


def test_power_iteration_returns_dominant_negative_and_flips_sign():
    q = Quadratic.dominant_negative(30, seed=7)  # top 5, most negative -7
    op = operator(q)
    v0 = np.random.default_rng(0).standard_normal(q.dim)
    res = power_iteration(op, v0, 100)
    assert res.eigenvalue == pytest.approx(-7.0, abs=1e-8)
    assert res.n_hvp == 101 and res.iterations == 100
    us = [np.asarray(power_iteration(op, v0, s, rayleigh=False).eigenvector) for s in range(60, 66)]
    for a, b in itertools.pairwise(us):  # consecutive iterates point in opposite directions
        assert float(a @ b) == pytest.approx(-1.0, abs=1e-9)
    # Lanczos returns the algebraic top instead
    assert lanczos_eigsh(op).eigenvalue == pytest.approx(5.0, rel=1e-10)
    assert lanczos(op, v0, 30).eigenvalue == pytest.approx(5.0, rel=1e-10)
    assert top_eigenpair(op, "power", v0=v0, steps=100).eigenvalue == pytest.approx(-7, abs=1e-8)
    assert top_eigenpair(op, "exact").eigenvalue == pytest.approx(5.0, rel=1e-12)


def test_shifted_power_iteration_recovers_algebraic_top():
    q = Quadratic.dominant_negative(30, seed=7)
    v0 = np.random.default_rng(1).standard_normal(q.dim)
    res = shifted_power_iteration(operator(q), v0, 200, shift=7.0)
    assert res.eigenvalue == pytest.approx(5.0, abs=1e-8)
    _, V = oracle(q)
    assert abs(float(np.asarray(res.eigenvector) @ V[:, 0])) == pytest.approx(1.0, abs=1e-8)
    assert res.n_hvp == 201


def test_power_iteration_rayleigh_false_belongs_to_last_input_vector():
    q = Quadratic.from_spectrum(np.linspace(6.0, -1.0, 10), seed=8)
    H, op = dense(q), operator(q)
    v0 = np.random.default_rng(2).standard_normal(q.dim)
    prev = np.asarray(power_iteration(op, v0, 4, rayleigh=False).eigenvector)  # u_4
    res = power_iteration(op, v0, 5, rayleigh=False)  # returns u_5, eigenvalue of u_4
    assert res.n_hvp == 5
    assert res.eigenvalue == pytest.approx(float(prev @ H @ prev), rel=1e-12)
    assert res.residuals[0] == pytest.approx(
        float(np.linalg.norm(H @ prev - res.eigenvalue * prev)), rel=1e-10
    )
    u5 = np.asarray(res.eigenvector)
    np.testing.assert_allclose(u5, H @ prev / np.linalg.norm(H @ prev), atol=1e-14)


def test_power_iteration_rate_bound_f81():
    q = Quadratic.from_spectrum(SMALL_GAP, seed=9)  # |lam2|/|lam1| = 0.9
    _, V = oracle(q)
    ratio = 9.0 / 10.0
    op = operator(q)
    v0 = np.random.default_rng(3).standard_normal(q.dim)
    tan0 = tan_angle(v0 / np.linalg.norm(v0), V[:, 0])
    for k in range(2, 31):
        u = np.asarray(power_iteration(op, v0, k, rayleigh=False).eigenvector)
        # round-off allowance: ~1e-13 absolute on tan(theta)
        assert tan_angle(u, V[:, 0]) <= ratio**k * tan0 + 1e-13


def kps_bound(lam: np.ndarray, tan0: float, k: int) -> float:
    """T-lanczos-bound: (lam1 - lamn) (tan angle(q0, v1) / T_{k-1}(1 + 2 gamma))^2."""
    gamma = (lam[0] - lam[1]) / (lam[1] - lam[-1])
    t = chebyshev.chebval(1.0 + 2.0 * gamma, [0.0] * (k - 1) + [1.0])
    return float((lam[0] - lam[-1]) * (tan0 / t) ** 2)


def test_kaniel_paige_saad_bound_f82():
    q = Quadratic.from_spectrum(SMALL_GAP, seed=10)
    lam, V = oracle(q)
    op = operator(q)
    v0 = np.random.default_rng(4).standard_normal(q.dim)
    tan0 = tan_angle(v0 / np.linalg.norm(v0), V[:, 0])
    for k in range(2, 31):
        res = lanczos(op, v0, k)
        assert res.n_hvp == k
        err = lam[0] - res.eigenvalue
        # 0 <= err <= bound, each side with ~1e-13 absolute allowance for round-off
        assert -1e-13 <= err <= kps_bound(lam, tan0, k) + 1e-13
    # and Lanczos needs far fewer HVPs than power iteration for this small gap (L-LANCZOS)
    assert lam[0] - lanczos(op, v0, 20).eigenvalue < 1e-8
    assert lam[0] - power_iteration(op, v0, 19).eigenvalue > 1e-4  # also 20 HVPs


def test_lanczos_beats_power_rayleigh_quotient_at_equal_hvps():
    q = Quadratic.from_spectrum(np.linspace(10.0, 0.0, 40), seed=11)  # PSD
    op = operator(q)
    v0 = np.random.default_rng(5).standard_normal(q.dim)
    for k in range(1, 21):
        p = power_iteration(op, v0, k)  # u_k in K_{k+1}: k + 1 HVPs
        lz = lanczos(op, v0, k + 1)
        assert p.n_hvp == lz.n_hvp == k + 1
        assert lz.eigenvalue >= p.eigenvalue - 1e-12
        p_free = power_iteration(op, v0, k, rayleigh=False)  # u_{k-1} in K_k: k HVPs
        lz_k = lanczos(op, v0, k)
        assert p_free.n_hvp == lz_k.n_hvp == k
        assert lz_k.eigenvalue >= p_free.eigenvalue - 1e-12


# -- HVP accounting ---------------------------------------------------------------------------


def test_reported_hvp_counts_equal_calls_made():
    q = Quadratic.from_spectrum(np.linspace(5.0, -3.0, 25), seed=12)
    counter = CountingMatrix(dense(q))
    op = counter.operator()
    v0 = np.random.default_rng(6).standard_normal(q.dim)
    expected = {
        "eigsh": None,
        "lanczos": 10,
        "power": 8,
        "power_free": 7,
        "shifted": 5,
        "exact": 25,
        "dispatch_power": 4,
    }
    calls = {
        "eigsh": lambda: lanczos_eigsh(op, 2),
        "lanczos": lambda: lanczos(op, v0, 10, 2),
        "power": lambda: power_iteration(op, v0, 7),
        "power_free": lambda: power_iteration(op, v0, 7, rayleigh=False),
        "shifted": lambda: shifted_power_iteration(op, v0, 4, 3.0),
        "exact": lambda: exact_top(op, 3),
        "dispatch_power": lambda: top_eigenpair(op, "power", v0=v0, steps=3),
    }
    for name, call in calls.items():
        before = counter.rows
        res = call()
        made = counter.rows - before
        assert res.n_hvp == made, name
        if expected[name] is not None:
            assert made == expected[name], name
        else:  # ARPACK's Lanczos steps plus one batched residual product of k = 2 vectors
            assert made == res.iterations + 2
    before = counter.rows
    tr = hutchinson_trace(op, 37, block=8)
    assert tr.n_hvp == counter.rows - before == 37


# -- Hutchinson ---------------------------------------------------------------------------------


def test_hutchinson_is_unbiased():
    q = Quadratic.from_spectrum(np.linspace(4.0, -1.0, 12), seed=13)
    H = dense(q)
    op = operator(q)
    n_seeds, n_probes = 300, 6
    est = np.array(
        [hutchinson_trace(op, n_probes, seed=s, block=4).estimate for s in range(n_seeds)]
    )
    var_probe = 2.0 * (np.sum(H**2) - np.sum(np.diag(H) ** 2))  # Var(z^T H z), Rademacher
    se = math.sqrt(var_probe / (n_probes * n_seeds))
    assert abs(est.mean() - np.trace(H)) <= 4.0 * se
    # the reported standard errors estimate the true one, sqrt(var_probe / n_probes)
    errs = np.array([hutchinson_trace(op, 50, seed=s).stderr for s in range(40)])
    assert np.sqrt(np.mean(errs**2)) == pytest.approx(math.sqrt(var_probe / 50), rel=0.2)


def test_hutchinson_exact_for_diagonal():
    lam = np.array([3.0, -1.5, 0.25, 7.0, 2.0])
    for q in (Quadratic.diagonal_from(lam), Quadratic.from_spectrum(lam, seed=None)):
        tr = hutchinson_trace(operator(q), 5, seed=3, block=2)
        assert isinstance(tr, TraceEstimate)
        assert tr.estimate == pytest.approx(lam.sum(), rel=1e-14)
        assert tr.stderr <= 1e-14 and tr.n_probes == 5 and tr.n_hvp == 5
    assert math.isnan(hutchinson_trace(operator(Quadratic.diagonal_from(lam)), 1).stderr)


# -- angles, eigenspaces, orientation ------------------------------------------------------------


def test_angle_to_repeated_top_eigenspace():
    q = Quadratic.repeated_top(20, multiplicity=3, seed=14)
    Q3 = q.eigenvectors[:, :3]  # the eigenspace the quadratic was built with (oracle)
    spec = eigh_spectrum(q.hessian_matrix)
    B = top_eigenspace(spec.eigenvalues, spec.eigenvectors)
    assert B.shape == (20, 3)
    np.testing.assert_allclose(np.asarray(B).T @ np.asarray(B), np.eye(3), atol=1e-12)
    rng = np.random.default_rng(7)
    R = random_orthogonal(3, seed=15)
    for _ in range(5):
        u_in = Q3 @ rng.standard_normal(3)
        assert angle_to_subspace(u_in, B) < 1e-10
        assert angle_to_subspace(-u_in, B @ R) < 1e-10
        u = rng.standard_normal(20)
        closed = math.degrees(math.acos(min(1.0, np.linalg.norm(Q3.T @ u) / np.linalg.norm(u))))
        assert angle_to_subspace(u, B) == pytest.approx(closed, rel=1e-10)
        assert angle_to_subspace(u, B @ R) == pytest.approx(closed, rel=1e-10)
    # whichever vector eigsh picks inside the eigenspace, its angle to the eigenspace is 0
    assert angle_to_subspace(lanczos_eigsh(operator(q)).eigenvector, B) < 1e-6
    # a single (non-repeated) top gives a one-dimensional eigenspace
    one = Quadratic.from_spectrum([3.0, 2.0, 1.0], seed=1)
    s1 = eigh_spectrum(one.hessian_matrix)
    assert top_eigenspace(s1.eigenvalues, s1.eigenvectors).shape == (3, 1)


def test_zero_vectors_and_zero_hessian_give_no_nan():
    B = np.eye(4)[:, :2]
    assert math.isnan(angle_to_subspace(np.zeros(4), B))
    np.testing.assert_array_equal(orient(np.zeros(3)), np.zeros(3))
    op = operator(Quadratic(np.zeros((4, 4))))
    v0 = np.array([1.0, -2.0, 0.5, 3.0])
    for rayleigh in (True, False):
        res = power_iteration(op, v0, 5, rayleigh=rayleigh)
        u = np.asarray(res.eigenvector)
        assert np.all(np.isfinite(u)) and np.linalg.norm(u) == pytest.approx(1.0)
        np.testing.assert_allclose(u, v0 / np.linalg.norm(v0))
        assert res.eigenvalue == 0.0 and res.residuals[0] == 0.0 and res.n_hvp == 1
    lz = lanczos(op, v0, 5)
    assert lz.eigenvalue == 0.0 and lz.n_hvp == 1 and "breakdown" in lz.method
    assert np.all(np.isfinite(np.asarray(lz.eigenvector)))
    with pytest.raises(ValueError, match="nonzero"):
        power_iteration(op, np.zeros(4), 3)


def test_orient_convention():
    np.testing.assert_array_equal(orient(np.array([0.5, -2.0, 1.0])), [-0.5, 2.0, -1.0])
    np.testing.assert_array_equal(orient(np.array([-1.0, 1.0])), [1.0, -1.0])  # tie: first
    M = np.array([[1.0, -0.2], [-3.0, 0.1]])
    np.testing.assert_array_equal(orient(M), [[-1.0, 0.2], [3.0, -0.1]])  # column by column
    q = Quadratic.from_spectrum(np.linspace(3.0, -3.0, 15), seed=16)
    Y = np.asarray(lanczos_eigsh(operator(q), 3).eigenvectors)
    np.testing.assert_array_equal(orient(Y), Y)
    assert np.all(Y[np.argmax(np.abs(Y), axis=0), range(3)] > 0)


def test_invalid_method_and_options_raise():
    op = operator(Quadratic.from_spectrum([2.0, 1.0, 0.0], seed=0))
    with pytest.raises(ValueError, match="bogus"):
        top_eigenpair(op, "bogus")
    with pytest.raises(ValueError, match="steps"):
        top_eigenpair(op, "power")
    with pytest.raises(ValueError, match="k must"):
        lanczos_eigsh(op, 0)
    with pytest.raises(ValueError, match="shape"):
        lanczos(op, np.ones(5), 2)


def test_eigen_result_record():
    res = exact_top(np.diag([1.0, 4.0, 2.0]), 2)
    assert isinstance(res, EigenResult) and res.k == 2 and res.n_hvp == 0
    assert res.eigenvalue == 4.0 and res.eigenvector.shape == (3,)
    with pytest.raises(AttributeError):
        res.n_hvp = 3  # frozen


# -- array_api_strict: the array-API code paths ------------------------------------------------


def strict(q: Quadratic) -> Quadratic:
    return q.convert(array_api_strict)


def test_array_api_strict_lanczos_and_eigsh():
    q = Quadratic.from_spectrum(np.concatenate([[8.0], np.linspace(6.0, -3.0, 29)]), seed=17)
    lam, V = oracle(q)
    op = operator(strict(q))
    v0 = array_api_strict.asarray(np.random.default_rng(8).standard_normal(q.dim))
    res = lanczos(op, v0, 25, k=2)
    assert type(res.eigenvectors) is type(v0)
    assert res.eigenvalues[0] == pytest.approx(lam[0], rel=1e-10)
    assert res.eigenvalues[1] == pytest.approx(lam[1], rel=1e-6)  # smaller gap: slower
    y = np.asarray(res.eigenvectors[:, 0])
    assert abs(float(y @ V[:, 0])) == pytest.approx(1.0, abs=1e-8)
    ref = lanczos(operator(q), np.asarray(v0), 25, k=2)  # same computation on NumPy
    np.testing.assert_allclose(res.eigenvalues, ref.eigenvalues, rtol=1e-12)
    assert lanczos_eigsh(op).eigenvalue == pytest.approx(lam[0], rel=1e-10)
    B = top_eigenspace(res.eigenvalues, res.eigenvectors)
    assert angle_to_subspace(res.eigenvectors[:, 0], B) < 1e-10
    assert eigh_spectrum(strict(q).hessian_matrix).eigenvalue == pytest.approx(lam[0], rel=1e-12)


def test_array_api_strict_power_and_hutchinson():
    q = Quadratic.dominant_negative(20, seed=18)
    op = operator(strict(q))
    v0 = array_api_strict.asarray(np.random.default_rng(9).standard_normal(q.dim))
    res = power_iteration(op, v0, 100)
    assert res.eigenvalue == pytest.approx(-7.0, abs=1e-8)
    assert type(res.eigenvector) is type(v0)
    assert shifted_power_iteration(op, v0, 250, 7.0).eigenvalue == pytest.approx(5.0, abs=1e-8)
    tr = hutchinson_trace(op, 30, seed=4, block=7)
    ref = hutchinson_trace(operator(q), 30, seed=4, block=7)
    assert tr.estimate == pytest.approx(ref.estimate, rel=1e-12)
    assert tr.n_hvp == 30


def test_torch_cpu_matches_numpy():
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp_torch

    q = Quadratic.dominant_negative(25, seed=19)
    op_t = operator(q.convert(xp_torch))
    op_n = operator(q)
    v0 = np.random.default_rng(10).standard_normal(q.dim)
    v0_t = torch.asarray(v0, dtype=torch.float64)
    for f in (
        lambda op, v: lanczos(op, v, 20, 2),
        lambda op, v: power_iteration(op, v, 30),
        lambda op, v: shifted_power_iteration(op, v, 30, 7.0),
    ):
        rt, rn = f(op_t, v0_t), f(op_n, v0)
        assert isinstance(rt.eigenvectors, torch.Tensor)
        np.testing.assert_allclose(rt.eigenvalues, rn.eigenvalues, rtol=1e-12)
        np.testing.assert_allclose(rt.eigenvectors.numpy(), rn.eigenvectors, atol=1e-10)
        assert rt.n_hvp == rn.n_hvp
    tr_t, tr_n = hutchinson_trace(op_t, 20, seed=1), hutchinson_trace(op_n, 20, seed=1)
    assert tr_t.estimate == pytest.approx(tr_n.estimate, rel=1e-12)
