"""Problems with exact derivatives: derivative checks and closed-form facts.

The derivative checks (``derivative_checks.py``) compare every exact derivative against central
finite differences; the closed-form tests compare against facts derived by hand
(docs/theory.md#T-drift, docs/theory.md#T-flat-bias) through a dense NumPy ``eigh``, an oracle
independent of the HVP code.
"""

from __future__ import annotations

import doctest

import array_api_strict
import numpy as np
import pytest
from derivative_checks import check_problem_derivatives, rel_err

from xsam_theory.problems import factorization as factorization_module
from xsam_theory.problems import ravine as ravine_module
from xsam_theory.problems.base import Point, Problem
from xsam_theory.problems.factorization import Factorization, TwoBlockFactorization
from xsam_theory.problems.mlp import MLP
from xsam_theory.problems.quadratic import Quadratic
from xsam_theory.problems.ravine import Ravine

SEEDS = (0, 1, 2)


def _problems() -> list[tuple[str, object, list | None]]:
    rng = np.random.default_rng(123)
    return [
        ("quadratic-dense", Quadratic.from_spectrum([4.0, 2.0, 1.0, 0.5, 0.1], seed=3), None),
        ("quadratic-diagonal", Quadratic.diagonal_from([3.0, 1.0, 0.2, 2.0]), None),
        ("quadratic-indefinite", Quadratic.dominant_negative(5, seed=4), None),
        (
            "quadratic-with-b",
            Quadratic.from_spectrum([2.0, -1.0, 0.5], seed=5, b=rng.standard_normal(3)),
            None,
        ),
        ("factorization-scalar", Factorization(), None),
        ("factorization-vector-n3", Factorization(n=3, depth=2), None),
        ("factorization-depth3", Factorization(n=1, depth=3), None),
        ("factorization-depth4", Factorization(n=1, depth=4), None),
        ("factorization-n2-depth4", Factorization(n=2, depth=4), None),
        ("two-block-full", TwoBlockFactorization(), None),
        ("two-block-batch0", TwoBlockFactorization(), [0]),
        ("two-block-batch1", TwoBlockFactorization(), [1]),
        ("two-block-batch001", TwoBlockFactorization(), [0, 0, 1]),
        ("ravine", Ravine(lam0=5.0), None),
        ("mlp-ce-tanh", MLP.teacher_student((4, 6, 3), 20, seed=1), None),
        ("mlp-ce-tanh-batch", MLP.teacher_student((4, 6, 3), 20, seed=1), [0, 3, 7, 3]),
        (
            "mlp-squared-softplus-l2",
            MLP.teacher_student(
                (3, 5, 4, 2), 15, loss="squared", activation="softplus", l2=0.01, seed=2
            ),
            None,
        ),
        (
            "mlp-ce-softplus-deep",
            MLP.teacher_student((3, 4, 4, 4, 3), 12, activation="softplus", seed=3),
            [1, 2],
        ),
    ]


PROBLEMS = _problems()
IDS = [name for name, _, _ in PROBLEMS]


@pytest.mark.parametrize(("name", "problem", "batch"), PROBLEMS, ids=IDS)
@pytest.mark.parametrize("seed", SEEDS)
def test_derivatives_numpy(name, problem, batch, seed):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(problem.dim)
    b = None if batch is None else np.asarray(batch)
    check_problem_derivatives(problem, w, b, rng=rng)


@pytest.mark.parametrize(("name", "problem", "batch"), PROBLEMS, ids=IDS)
def test_derivatives_array_api_strict(name, problem, batch):
    """The same checks with every array in ``array_api_strict``: the code is array-API clean."""
    rng = np.random.default_rng(7)
    strict = problem.convert(array_api_strict)
    assert strict.xp is array_api_strict
    w = array_api_strict.asarray(rng.standard_normal(problem.dim))
    b = None if batch is None else array_api_strict.asarray(batch)
    check_problem_derivatives(strict, w, b, rng=rng)


@pytest.mark.parametrize(("name", "problem", "batch"), PROBLEMS, ids=IDS)
def test_torch_matches_autograd(name, problem, batch):
    """With torch installed, gradient and Hessian agree with autograd (float64, 1e-8).

    Autograd differentiates the problem's own loss expression, so this checks the hand-derived
    gradient and Hessian formulas against the loss formula, with no finite-difference error.
    """
    torch = pytest.importorskip("torch")
    import array_api_compat.torch as xp_torch

    rng = np.random.default_rng(9)
    tproblem = problem.convert(xp_torch)
    w = torch.asarray(rng.standard_normal(problem.dim), dtype=torch.float64)
    b = None if batch is None else torch.asarray(batch)
    check_problem_derivatives(tproblem, w, b, rng=rng)
    H_auto = torch.autograd.functional.hessian(lambda v: tproblem.loss(v, b), w)
    w_leaf = w.clone().requires_grad_(True)
    (g_auto,) = torch.autograd.grad(tproblem.loss(w_leaf, b), w_leaf)
    assert rel_err(tproblem.grad(w, b), g_auto) <= 1e-8
    assert rel_err(tproblem.hessian(w, b), H_auto) <= 1e-8


def test_ravine_derivatives_on_the_manifold():
    rng = np.random.default_rng(8)
    for y in (-1.3, 0.0, 0.4):
        check_problem_derivatives(Ravine(lam0=3.0), np.array([0.0, y]), rng=rng)


class _Sphere(Problem):
    """L = |w|^2 / 2 with gradient and HVP optionally scaled by (1 + error): a checker's target."""

    dim = 3

    def __init__(self, grad_error: float = 0.0, hvp_error: float = 0.0):
        self.grad_error, self.hvp_error = grad_error, hvp_error

    @property
    def xp(self):
        return np

    def convert(self, xp, device=None):
        return self

    def at(self, w, batch=None):
        problem = self

        class _P(Point):
            loss = property(lambda p: 0.5 * (p.w @ p.w))
            grad = property(lambda p: p.w * (1 + problem.grad_error))

            def hvp_batch(self, V):
                return V * (1 + problem.hvp_error)

        return _P(self, w)


def test_checker_catches_wrong_derivatives():
    """The checker itself: a gradient or HVP off by 1e-5 relative must fail it."""
    w = np.array([0.3, -1.2, 0.7])
    check_problem_derivatives(_Sphere(), w)
    with pytest.raises(AssertionError, match="gradient vs FD"):
        check_problem_derivatives(_Sphere(grad_error=1e-5), w)
    with pytest.raises(AssertionError, match="HVP vs FD"):
        check_problem_derivatives(_Sphere(hvp_error=1e-5), w)


def test_doctests():
    for module in (factorization_module, ravine_module):
        result = doctest.testmod(module)
        assert result.failed == 0, f"{module.__name__}: {result.failed} doctest(s) failed"


# -- factorization: closed forms ---------------------------------------------------------------
def _on_manifold(rng: np.random.Generator, n: int) -> np.ndarray:
    """A random minimizer of the depth-2 factorization: x^T y = 1."""
    x, y = rng.standard_normal(n), rng.standard_normal(n)
    y = y / (x @ y) if abs(x @ y) > 0.1 else x / (x @ x)
    return np.concatenate([x, y])


@pytest.mark.parametrize("n", [1, 3])
def test_factorization_sharpness_on_manifold(n):
    rng = np.random.default_rng(10 + n)
    problem = Factorization(n=n, depth=2)
    for _ in range(3):
        w = _on_manifold(rng, n)
        x, y = w[:n], w[n:]
        assert abs(float(problem.residual(w))) < 1e-12
        eig = np.linalg.eigh(problem.hessian(w))[0]
        expected = x @ x + y @ y
        assert rel_err(eig[-1], expected) < 1e-12
        assert rel_err(problem.sharpness_on_manifold(w), expected) < 1e-12
        np.testing.assert_allclose(eig[:-1], 0.0, atol=1e-12 * expected)


def test_factorization_scalar_flattest_minimizer():
    problem = Factorization()
    assert float(problem.sharpness_on_manifold(np.array([1.0, 1.0]))) == 2.0
    xs = np.linspace(0.3, 3.0, 50)
    sharp = [float(problem.sharpness_on_manifold(np.array([x, 1 / x]))) for x in xs]
    assert min(sharp) >= 2.0 - 1e-12


def test_factorization_deep_sharpness_on_manifold():
    """Depth 3: at a minimizer the Hessian is q q^T, so lambda_max = |q|^2."""
    rng = np.random.default_rng(12)
    problem = Factorization(n=2, depth=3)
    W = rng.uniform(0.5, 1.5, size=(3, 2))
    W[2] /= np.sum(np.prod(W, axis=0))  # now sum_j prod_i W_ij = 1
    w = W.ravel()
    assert abs(float(problem.residual(w))) < 1e-12
    lam = np.linalg.eigvalsh(problem.hessian(w))[-1]
    assert rel_err(problem.sharpness_on_manifold(w), lam) < 1e-12


@pytest.mark.parametrize(("n", "depth"), [(1, 2), (3, 2), (1, 3), (2, 4)])
def test_factorization_balancedness_conserved_by_gradient_flow(n, depth):
    """d/dt (W_ij^2 - W_kj^2) = -2 r (W_ij q_ij - W_kj q_kj) = 0 along -grad L."""
    rng = np.random.default_rng(20 + depth)
    problem = Factorization(n=n, depth=depth)
    for _ in range(3):
        w = rng.standard_normal(problem.dim)
        W, G = w.reshape(depth, n), np.asarray(problem.grad(w)).reshape(depth, n)
        for i in range(depth - 1):
            # gradient of D_j = W_ij^2 - W_(i+1)j^2 is 2 W_ij e_ij - 2 W_(i+1)j e_(i+1)j
            rate = 2 * W[i] * G[i] - 2 * W[i + 1] * G[i + 1]
            scale = 2 * np.abs(W[i] * G[i]) + 2 * np.abs(W[i + 1] * G[i + 1])
            assert np.all(np.abs(rate) <= 1e-13 * np.maximum(scale, 1e-300))


@pytest.mark.parametrize("n", [1, 3])
def test_factorization_gd_step_scales_invariant(n):
    """docs/theory.md#T-flat-bias: one GD step multiplies D = |x|^2 - |y|^2 by (1 - eta^2 r^2)."""
    rng = np.random.default_rng(30 + n)
    problem = Factorization(n=n, depth=2)
    for eta in (0.05, 0.3, 1.1):
        w = rng.standard_normal(2 * n)
        r = float(problem.residual(w))
        w_next = w - eta * np.asarray(problem.grad(w))
        D = w[:n] @ w[:n] - w[n:] @ w[n:]
        D_next = w_next[:n] @ w_next[:n] - w_next[n:] @ w_next[n:]
        assert rel_err(D_next, (1 - eta**2 * r**2) * D) < 1e-12


# -- two-block factorization --------------------------------------------------------------------
def test_two_block_hessian_at_minimizer():
    rng = np.random.default_rng(40)
    problem = TwoBlockFactorization()
    for _ in range(3):
        a, c = rng.uniform(0.3, 3.0, size=2) * rng.choice([-1, 1], size=2)
        w = np.array([a, 1 / a, c, 1 / c])
        np.testing.assert_allclose(problem.residuals(w), 0.0, atol=1e-15)
        blocks = np.array([a**2 + 1 / a**2, c**2 + 1 / c**2])
        np.testing.assert_allclose(problem.block_sharpness(w), blocks, rtol=1e-14)
        H = np.asarray(problem.hessian(w))
        assert np.all(H[:2, 2:] == 0) and np.all(H[2:, :2] == 0), "not block diagonal"
        # L = (l1 + l2) / 2: the full-batch eigenvalues are HALF the block sharpnesses
        eig = np.linalg.eigvalsh(H)
        np.testing.assert_allclose(eig[2:], np.sort(blocks / 2), rtol=1e-12)
        np.testing.assert_allclose(eig[:2], 0.0, atol=1e-12 * blocks.max())
        assert rel_err(np.trace(H), blocks.sum() / 2) < 1e-12
        # batch [s] is l_s alone: its top eigenvalue is the block sharpness itself
        for s in (0, 1):
            top = np.linalg.eigvalsh(np.asarray(problem.hessian(w, np.array([s]))))[-1]
            assert rel_err(top, blocks[s]) < 1e-12


def test_two_block_batch_weights():
    problem = TwoBlockFactorization()
    w = np.array([1.5, 0.2, -0.7, 2.0])
    l1, l2 = 0.5 * (1.5 * 0.2 - 1) ** 2, 0.5 * (-0.7 * 2.0 - 1) ** 2
    assert rel_err(problem.loss(w), (l1 + l2) / 2) < 1e-15
    assert rel_err(problem.loss(w, np.array([0])), l1) < 1e-15
    assert rel_err(problem.loss(w, np.array([1, 1])), l2) < 1e-15
    assert rel_err(problem.loss(w, np.array([0, 0, 1])), (2 * l1 + l2) / 3) < 1e-15


# -- ravine --------------------------------------------------------------------------------------
def test_ravine_sharpness_on_manifold():
    problem = Ravine(lam0=5.0)
    for y in (-2.0, -0.3, 0.0, 0.25, 1.7):
        w = np.array([0.0, y])
        eig = np.linalg.eigvalsh(np.asarray(problem.hessian(w)))
        expected = 5.0 * (1 + y**2)
        np.testing.assert_allclose(eig, [0.0, expected], rtol=1e-15, atol=0)
        assert float(problem.sharpness(w)) == expected
        # grad_sharpness against a central difference of sharpness (a quadratic in y: exact)
        h = 1e-3
        fd = [
            (float(problem.sharpness(w + h * e)) - float(problem.sharpness(w - h * e))) / (2 * h)
            for e in np.eye(2)
        ]
        np.testing.assert_allclose(problem.grad_sharpness(w), fd, rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(problem.grad_sharpness(w), [0.0, 10.0 * y])


# -- quadratic constructors ---------------------------------------------------------------------
def test_quadratic_from_spectrum_has_the_spectrum():
    lam = np.array([3.0, -1.0, 0.5, 7.0, 0.0])
    q = Quadratic.from_spectrum(lam, seed=11)
    H = np.asarray(q.H)
    np.testing.assert_allclose(np.linalg.eigvalsh(H), np.sort(lam), atol=1e-13)
    np.testing.assert_allclose(q.eigenvalues, np.sort(lam)[::-1])
    np.testing.assert_allclose(H @ q.eigenvectors, q.eigenvectors * q.eigenvalues, atol=1e-13)
    np.testing.assert_allclose(q.eigenvectors.T @ q.eigenvectors, np.eye(5), atol=1e-14)


def test_quadratic_repeated_top_has_the_multiplicity():
    q = Quadratic.repeated_top(8, top=10.0, multiplicity=3, seed=2)
    eig = np.linalg.eigvalsh(np.asarray(q.H))[::-1]
    assert np.sum(np.abs(eig - 10.0) < 1e-10) == 3
    assert eig[3] < 10.0 - 1.0


def test_quadratic_dominant_negative():
    q = Quadratic.dominant_negative(6, top=5.0, negative=-7.0, seed=3)
    eig = np.linalg.eigvalsh(np.asarray(q.H))
    assert abs(eig[0]) > eig[-1] > 0
    np.testing.assert_allclose([eig[0], eig[-1]], [-7.0, 5.0], rtol=1e-13)


def test_quadratic_diagonal_matches_dense():
    lam = [3.0, -1.0, 0.5]
    b = np.array([0.1, 0.2, -0.3])
    w = np.array([1.0, -2.0, 0.5])
    diag, dense = Quadratic.diagonal_from(lam, b=b), Quadratic(np.diag(lam), b)
    for method in ("loss", "grad", "hessian"):
        np.testing.assert_allclose(getattr(diag, method)(w), getattr(dense, method)(w), rtol=1e-15)


# -- validation ------------------------------------------------------------------------------------
def test_quadratic_rejects_bad_matrices():
    with pytest.raises(ValueError, match="square"):
        Quadratic(np.ones((2, 3)))
    with pytest.raises(ValueError, match="not symmetric"):
        Quadratic(np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        Quadratic(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    with pytest.raises(ValueError, match="non-finite"):
        Quadratic(np.array([1.0, np.inf]))
    with pytest.raises(ValueError, match="b must have shape"):
        Quadratic(np.eye(2), b=np.ones(3))


@pytest.mark.parametrize(
    "problem",
    [
        Quadratic.from_spectrum([1.0, 2.0]),
        Factorization(n=2, depth=2),
        TwoBlockFactorization(),
        Ravine(),
    ],
    ids=["quadratic", "factorization", "two-block", "ravine"],
)
def test_bad_points_raise(problem):
    d = problem.dim
    with pytest.raises(ValueError, match=r"w must have shape"):
        problem.loss(np.zeros(d + 1))
    with pytest.raises(ValueError, match=r"w must have shape"):
        problem.grad(np.zeros((1, d)))
    if not isinstance(problem, Quadratic):
        with pytest.raises(ValueError, match="real floating"):
            problem.loss(np.ones(d, dtype=int))
    w = np.ones(d)
    w[-1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        problem.loss(w)
    if problem.n_samples is None:
        with pytest.raises(ValueError, match=f"{type(problem).__name__} has no data"):
            problem.loss(np.ones(d), batch=np.array([0]))
    else:
        for bad in ([2], [-1], [0, 5]):
            with pytest.raises(ValueError, match=r"batch indices must lie in \[0, 2\)"):
                problem.loss(np.ones(d), batch=np.array(bad))
        with pytest.raises(ValueError, match="integer"):
            problem.loss(np.ones(d), batch=np.array([0.0]))
        with pytest.raises(ValueError, match="non-empty"):
            problem.loss(np.ones(d), batch=np.array([], dtype=int))


@pytest.mark.parametrize(
    "problem",
    [Factorization(n=2), TwoBlockFactorization(), Ravine()],
    ids=["factorization", "two-block", "ravine"],
)
def test_bad_directions_raise(problem):
    point = problem.at(np.ones(problem.dim))
    with pytest.raises(ValueError, match=type(problem).__name__):
        point.hvp_batch(np.ones((2, problem.dim + 1)))
    with pytest.raises(ValueError, match=type(problem).__name__):
        point.hvp_batch(np.ones(problem.dim))


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: Factorization(n=0), "Factorization: n must be a positive integer"),
        (lambda: Factorization(depth=1.5), "Factorization: depth must be a positive integer"),
        (lambda: Factorization(n=True), "Factorization: n must be a positive integer"),
        (lambda: Ravine(lam0=-1.0), "Ravine: lam0"),
        (lambda: Ravine(lam0=float("nan")), "Ravine: lam0"),
        (lambda: Ravine(lam0="big"), "Ravine: lam0"),
    ],
)
def test_bad_constructor_arguments_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()
