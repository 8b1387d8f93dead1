r"""Hypothesis strategies for hunting counterexamples in the SAM / X-SAM testbed.

The property suite in ``tests/test_properties_*.py`` is built from these strategies, and they are
public so that users can write their own properties against the same inputs::

    from hypothesis import given
    from xsam_theory.strategies import symmetric_matrices, unit_vectors

    @given(symmetric_matrices(kinds=("psd",), max_dim=5), unit_vectors(5))
    def test_my_claim(case, v): ...

Every structured input is built **by construction**, never by filtering with ``assume``: a
symmetric matrix is :math:`H = Q\,\mathrm{diag}(\lambda)\,Q^\top` with a spectrum
:math:`\lambda` drawn for the requested kind and an orthogonal basis :math:`Q` that is either
the identity or Haar-random from a seed. Generated values are small frozen records whose
``repr`` is a call of a public constructor (:func:`symmetric_case`, :func:`mlp_case`), so a
shrunk counterexample printed by hypothesis can be pasted into an ``@example`` as it is.

Needs ``hypothesis`` (the ``dev`` extra: ``pip install -e ".[dev]"``). The property suite and
its hypothesis profiles: docs/testing.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "xsam_theory.strategies needs hypothesis: pip install 'hypothesis>=6.100' "
        '(or pip install -e ".[dev]")'
    ) from e

from xsam_theory.optimizers.config import OptimizerConfig
from xsam_theory.problems import (
    MLP,
    Factorization,
    Problem,
    Quadratic,
    Ravine,
    TwoBlockFactorization,
)
from xsam_theory.problems.mlp import torch_default_init
from xsam_theory.problems.quadratic import random_orthogonal

__all__ = [
    "EIGENVALUE_KINDS",
    "INVALID_OPTION_VALUES",
    "MAX_CONDITION",
    "OPTION_SAMPLES",
    "SCALE_RANGE",
    "TINY_VALUES",
    "UNUSED_OPTIONS",
    "InvalidOption",
    "MLPCase",
    "ProblemCase",
    "SymmetricCase",
    "basis_seeds",
    "finite_vectors",
    "invalid_optimizer_options",
    "mlp_case",
    "mlp_cases",
    "optimizer_config_pairs",
    "optimizer_configs",
    "orthogonal_matrices",
    "problem_cases",
    "spectra",
    "symmetric_case",
    "symmetric_matrices",
    "tiny_component_values",
    "unit_vectors",
]

#: the spectrum kinds :func:`spectra` can build (and the smallest dimension each needs)
EIGENVALUE_KINDS = (
    "psd",
    "indefinite",
    "repeated_top",
    "near_repeated_top",
    "dominant_negative",
    "singular",
)
_MIN_DIM = {
    "psd": 1,
    "indefinite": 2,
    "repeated_top": 2,
    "near_repeated_top": 2,
    "dominant_negative": 2,
    "singular": 2,
}
#: largest condition number max|λ|/min|λ| the default strategies draw
MAX_CONDITION = 1e8
#: range of the spectral scale max|λ| the default strategies draw
SCALE_RANGE = (1e-8, 1e8)

#: exact values that stress zero branches and under/overflow: zeros, subnormals, tiny normals
TINY_VALUES = (
    0.0,
    -0.0,
    5e-324,
    -5e-324,
    1e-310,
    -1e-310,
    2.2250738585072014e-308,
    1e-300,
    -1e-200,
    1e-160,
    1e-25,
    -1e-16,
)


# -- symmetric matrices with a controlled spectrum ---------------------------------------------


@dataclass(frozen=True, eq=False)
class SymmetricCase:
    r"""A symmetric matrix :math:`H = Q\,\mathrm{diag}(\lambda)\,Q^\top` with its exact spectrum.

    Attributes:
        H: the matrix, shape ``(d, d)``, exactly symmetric (``H == H.T`` bit for bit).
        eigenvalues: :math:`\lambda` in descending algebraic order (what was asked for; the
            computed ``H`` has this spectrum up to :math:`O(d\,\varepsilon\max|\lambda|)`).
        eigenvectors: :math:`Q` with columns in the order of ``eigenvalues``.
        kind: one of :data:`EIGENVALUE_KINDS` (or ``"custom"``).
        basis_seed: ``None`` for :math:`Q = I`, else the seed of the Haar-random :math:`Q`.
    """

    H: np.ndarray = field(repr=False)
    eigenvalues: np.ndarray
    eigenvectors: np.ndarray = field(repr=False)
    kind: str = "custom"
    basis_seed: int | None = None

    @property
    def dim(self) -> int:
        """The dimension :math:`d` of the matrix (the number of eigenvalues)."""
        return int(self.eigenvalues.size)

    @property
    def scale(self) -> float:
        r""":math:`\|H\|_2 = \max_i |\lambda_i|`."""
        return float(np.max(np.abs(self.eigenvalues)))

    @property
    def condition(self) -> float:
        r""":math:`\max|\lambda| / \min|\lambda|` (``inf`` when an eigenvalue is zero)."""
        smallest = float(np.min(np.abs(self.eigenvalues)))
        return math.inf if smallest == 0.0 else self.scale / smallest

    @property
    def top_multiplicity(self) -> int:
        """How many eigenvalues equal the algebraic top one exactly."""
        return int(np.sum(self.eigenvalues == self.eigenvalues[0]))

    @property
    def top_gap(self) -> float:
        r"""The gap :math:`\lambda_1 - \lambda_{m+1}` below the top eigenvalue.

        :math:`m` is the top multiplicity; the gap is ``inf`` when every eigenvalue equals
        :math:`\lambda_1`.
        """
        m = self.top_multiplicity
        return math.inf if m == self.dim else float(self.eigenvalues[0] - self.eigenvalues[m])

    def quadratic(self, b: Any = None) -> Quadratic:
        r"""The :class:`~xsam_theory.problems.Quadratic` :math:`\tfrac12 w^\top Hw - b^\top w`."""
        return Quadratic(self.H, b, eigenvalues=self.eigenvalues, eigenvectors=self.eigenvectors)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        # hypothesis prints dataclasses field by field unless this (IPython) hook exists
        p.text(repr(self))

    def __repr__(self) -> str:
        lam = ", ".join(repr(float(x)) for x in self.eigenvalues)
        return f"symmetric_case([{lam}], basis_seed={self.basis_seed!r}, kind={self.kind!r})"


def symmetric_case(
    eigenvalues: Sequence[float], basis_seed: int | None = None, kind: str = "custom"
) -> SymmetricCase:
    r"""Build :math:`H = Q\,\mathrm{diag}(\lambda)\,Q^\top`, exactly symmetric.

    ``basis_seed=None`` gives :math:`Q = I`, else :math:`Q` is Haar-random from the seed. ``H`` is
    symmetrized as :math:`(H + H^\top)/2`, which is exactly symmetric in floating point because
    addition commutes.

    >>> case = symmetric_case([3.0, 1.0])
    >>> case.H.tolist(), case.condition
    ([[3.0, 0.0], [0.0, 1.0]], 3.0)
    """
    lam = np.asarray(eigenvalues, dtype=float)
    if lam.ndim != 1 or lam.size == 0:
        raise ValueError(f"eigenvalues must be a non-empty 1-D sequence, got shape {lam.shape}")
    if not np.all(np.isfinite(lam)):
        raise ValueError("eigenvalues contain non-finite values (NaN or inf)")
    order = np.argsort(-lam, kind="stable")
    lam = lam[order]
    Q = np.eye(lam.size) if basis_seed is None else random_orthogonal(lam.size, basis_seed)
    H = (Q * lam) @ Q.T
    H = 0.5 * (H + H.T)
    return SymmetricCase(H=H, eigenvalues=lam, eigenvectors=Q, kind=kind, basis_seed=basis_seed)


def _unit_interval() -> st.SearchStrategy[float]:
    return st.floats(0.0, 1.0, allow_nan=False)


@st.composite
def spectra(
    draw: Any,
    *,
    min_dim: int = 1,
    max_dim: int = 6,
    kinds: Sequence[str] = EIGENVALUE_KINDS,
    max_condition: float = MAX_CONDITION,
    scale_range: tuple[float, float] = SCALE_RANGE,
) -> tuple[str, np.ndarray]:
    r"""``(kind, eigenvalues)``: a spectrum of the requested kind, in descending order.

    With scale :math:`S = 10^{e}` (``e`` uniform in ``log10(scale_range)``) and condition
    :math:`\kappa = 10^{k} \le` ``max_condition``, magnitudes are :math:`S\kappa^{-t_i}`,
    :math:`t_i \in [0, 1]`, with :math:`t = 0` and :math:`t = 1` present, so
    :math:`\max|\lambda| = S` and :math:`\max|\lambda|/\min|\lambda| = \kappa` exactly (up to
    the rounding of the powers). Kinds:

    * ``psd``: all eigenvalues :math:`> 0`.
    * ``indefinite``: random signs with at least one of each.
    * ``repeated_top``: PSD, :math:`\lambda_1 = \dots = \lambda_m = S` exactly, ``m >= 2``.
    * ``near_repeated_top``: PSD, :math:`\lambda_2 = S(1 - \delta)`,
      :math:`\delta \in [10^{-12}, 10^{-1}]`.
    * ``dominant_negative``: :math:`\lambda_{\min} = -S` dominates in magnitude, the algebraic top
      :math:`\lambda_1 = S\cdot 10^{-u} > 0` (:math:`u > 0`), the rest in
      :math:`[-\lambda_1, \lambda_1]` (the power-iteration pitfall of
      docs/theory.md#T-dominant-negative).
    * ``singular``: PSD with one or more exact zeros (condition number infinite; the nonzero part
      has condition :math:`\le \kappa`).
    """
    allowed = [k for k in kinds if max(_MIN_DIM[k], min_dim) <= max_dim]
    if not allowed:
        raise ValueError(f"no kind in {tuple(kinds)} fits dimensions [{min_dim}, {max_dim}]")
    kind = draw(st.sampled_from(allowed))
    n = draw(st.integers(max(min_dim, _MIN_DIM[kind]), max_dim))
    lo, hi = (math.log10(s) for s in scale_range)
    e = draw(st.floats(lo, hi))
    k_max = math.log10(max_condition)
    k = draw(st.floats(0.01 if kind == "dominant_negative" else 0.0, max(k_max, 0.01)))
    S, kappa = 10.0**e, 10.0**k
    ts = [0.0] + [draw(_unit_interval()) for _ in range(n - 2)] + ([1.0] if n > 1 else [])
    mags = np.sort(np.array([S * kappa ** (-t) for t in ts]))[::-1]
    if kind == "psd":
        lam = mags
    elif kind == "singular":
        zeros = draw(st.integers(1, n - 1))
        lam = mags.copy()
        lam[n - zeros :] = 0.0
    elif kind == "indefinite":
        signs = np.array([draw(st.sampled_from([1.0, -1.0])) for _ in range(n)])
        if np.all(signs > 0):
            signs[-1] = -1.0
        elif np.all(signs < 0):
            signs[0] = 1.0
        lam = signs * mags
    elif kind == "repeated_top":
        m = draw(st.integers(2, n))
        lam = mags.copy()
        lam[:m] = S
    elif kind == "near_repeated_top":
        delta = 10.0 ** (-draw(st.floats(1.0, 12.0)))
        lam = mags.copy()
        lam[1] = S * (1.0 - delta)
        lam[2:] = np.minimum(lam[2:], lam[1])
    else:  # dominant_negative
        u = draw(st.floats(0.01, k))
        top = S * 10.0 ** (-u)
        rest = [draw(st.sampled_from([1.0, -1.0])) * min(m_, top) for m_ in mags[1:-1]]
        lam = np.array([top, *rest, -S])
    return kind, np.sort(np.asarray(lam, dtype=float))[::-1]


def basis_seeds() -> st.SearchStrategy[int | None]:
    """``None`` (the identity basis, what shrinking prefers) or a seed of a Haar-random basis."""
    return st.one_of(st.none(), st.integers(0, 2**32 - 1))


@st.composite
def symmetric_matrices(
    draw: Any,
    *,
    min_dim: int = 1,
    max_dim: int = 6,
    kinds: Sequence[str] = EIGENVALUE_KINDS,
    max_condition: float = MAX_CONDITION,
    scale_range: tuple[float, float] = SCALE_RANGE,
    basis: str = "any",
) -> SymmetricCase:
    """A :class:`SymmetricCase` with a spectrum from :func:`spectra`.

    ``basis``: ``"any"`` (identity or Haar-random), ``"identity"`` or ``"random"``.
    """
    kind, lam = draw(
        spectra(
            min_dim=min_dim,
            max_dim=max_dim,
            kinds=kinds,
            max_condition=max_condition,
            scale_range=scale_range,
        )
    )
    if basis == "identity":
        seed = None
    elif basis == "random":
        seed = draw(st.integers(0, 2**32 - 1))
    elif basis == "any":
        seed = draw(basis_seeds())
    else:
        raise ValueError(f"basis must be 'any', 'identity' or 'random', got {basis!r}")
    return symmetric_case(lam, basis_seed=seed, kind=kind)


def orthogonal_matrices(dim: int) -> st.SearchStrategy[np.ndarray]:
    """Orthogonal ``(dim, dim)`` matrices.

    Signed permutations (exact in floating point) or Haar-random ones (orthogonal to round-off).
    """

    @st.composite
    def signed_permutation(draw: Any) -> np.ndarray:
        perm = draw(st.permutations(range(dim)))
        signs = np.array([draw(st.sampled_from([1.0, -1.0])) for _ in range(dim)])
        return np.eye(dim)[:, list(perm)] * signs

    return st.one_of(
        signed_permutation(), st.integers(0, 2**32 - 1).map(lambda s: random_orthogonal(dim, s))
    )


# -- vectors -----------------------------------------------------------------------------------


def tiny_component_values() -> st.SearchStrategy[float]:
    """Exact zeros, subnormals and tiny normal numbers (see :data:`TINY_VALUES`)."""
    return st.sampled_from(TINY_VALUES)


def _components(tiny: bool) -> st.SearchStrategy[float]:
    plain = st.floats(-1.0, 1.0, allow_nan=False)
    return st.one_of(plain, tiny_component_values()) if tiny else plain


@st.composite
def unit_vectors(draw: Any, dim: int, *, tiny_components: bool = True) -> np.ndarray:
    r"""Unit vectors in :math:`\mathbb R^{dim}`.

    With ``tiny_components``, they may have exact-zero, subnormal or tiny components.

    Built without filtering: one pivot component has magnitude in :math:`[1/4, 1]`, so the raw
    vector is never zero and normalizing it neither underflows nor overflows;
    :math:`\|v\| = 1` to within a few ulps.
    """
    x = np.array([draw(_components(tiny_components)) for _ in range(dim)])
    pivot = draw(st.integers(0, dim - 1))
    x[pivot] = draw(st.sampled_from([1.0, -1.0])) * draw(st.floats(0.25, 1.0))
    return x / np.linalg.norm(x)


@st.composite
def finite_vectors(
    draw: Any, dim: int, *, min_exponent: int = -1074, max_exponent: int = 1000
) -> np.ndarray:
    r"""Any finite vector: mantissas times one common power of two.

    The mantissas lie in :math:`[-1, 1]` (zeros, subnormals and tiny values included); the power
    of two is :math:`2^k`, ``min_exponent <= k <= max_exponent``.

    This covers the zero vector (what shrinking prefers), vectors whose squared norm underflows
    (:math:`\|x\|^2 < 2^{-1074}`) and vectors whose squared norm overflows, with every entry
    finite (:math:`|x_i| \le 2^{1000}`).
    """
    mant = np.array([draw(_components(True)) for _ in range(dim)])
    k = draw(st.integers(min_exponent, max_exponent))
    return np.ldexp(mant, k)


# -- problems ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MLPCase:
    """An :class:`~xsam_theory.problems.MLP` on seeded data with a parameter vector ``w``."""

    problem: MLP = field(repr=False)
    w: np.ndarray = field(repr=False)
    widths: tuple[int, ...]
    n_samples: int
    activation: str
    loss: str
    l2: float
    seed: int
    w_scale: float

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        return (
            f"mlp_case(widths={self.widths!r}, n_samples={self.n_samples!r}, "
            f"activation={self.activation!r}, loss={self.loss!r}, l2={self.l2!r}, "
            f"seed={self.seed!r}, w_scale={self.w_scale!r})"
        )


def mlp_case(
    widths: Sequence[int],
    n_samples: int,
    activation: str = "tanh",
    loss: str = "cross_entropy",
    l2: float = 0.0,
    seed: int = 0,
    w_scale: float = 1.0,
) -> MLPCase:
    r"""An MLP on seeded random data, with a parameter vector ``w``.

    Inputs :math:`X \sim \mathcal N(0, I)` come from ``seed``, with integer labels
    (cross-entropy) or standard normal targets (squared loss), and
    ``w = w_scale * torch_default_init(widths)`` from the same generator.

    >>> case = mlp_case((2, 3, 2), 4)
    >>> case.problem.dim, case.w.shape
    (17, (17,))
    """
    widths = tuple(int(d) for d in widths)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, widths[0]))
    if loss == "cross_entropy":
        Y = rng.integers(0, widths[-1], size=n_samples)
    else:
        Y = rng.standard_normal((n_samples, widths[-1]))
    problem = MLP(widths, X, Y, activation=activation, loss=loss, l2=l2)
    w = w_scale * torch_default_init(widths, rng)
    return MLPCase(
        problem=problem,
        w=w,
        widths=widths,
        n_samples=int(n_samples),
        activation=activation,
        loss=loss,
        l2=float(l2),
        seed=int(seed),
        w_scale=float(w_scale),
    )


@st.composite
def mlp_cases(
    draw: Any, *, max_hidden_layers: int = 2, max_width: int = 5, max_samples: int = 6
) -> MLPCase:
    """Small MLPs, both activations and both losses, with or without L2.

    They have 0 to ``max_hidden_layers`` hidden layers of width ``1..max_width``, 1 to 4 inputs
    and outputs, and 1 to ``max_samples`` data points, at parameter scales :math:`10^{-2}` to
    :math:`10^{1}` of the PyTorch default init.
    """
    hidden = draw(st.lists(st.integers(1, max_width), max_size=max_hidden_layers))
    widths = (draw(st.integers(1, 4)), *hidden, draw(st.integers(1, 4)))
    return mlp_case(
        widths,
        draw(st.integers(1, max_samples)),
        activation=draw(st.sampled_from(["tanh", "softplus"])),
        loss=draw(st.sampled_from(["cross_entropy", "squared"])),
        l2=draw(st.sampled_from([0.0, 1e-3, 0.5])),
        seed=draw(st.integers(0, 2**32 - 1)),
        w_scale=10.0 ** draw(st.floats(-2.0, 1.0)),
    )


@dataclass(frozen=True, eq=False)
class ProblemCase:
    """A problem of the package with a parameter vector ``w`` at which to evaluate it."""

    name: str
    problem: Problem
    w: np.ndarray
    #: how the problem was built (its ``repr`` when it has a readable one)
    source: str = ""

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def __repr__(self) -> str:
        source = self.source or repr(self.problem)
        return f"ProblemCase({self.name!r}, {source}, w={self.w.tolist()!r})"


def _points(dim: int, bound: float = 2.0) -> st.SearchStrategy[np.ndarray]:
    return st.lists(st.floats(-bound, bound, allow_nan=False), min_size=dim, max_size=dim).map(
        lambda xs: np.array(xs, dtype=float)
    )


@st.composite
def problem_cases(draw: Any, *, max_dim: int = 6) -> ProblemCase:
    """One of every problem family at a point.

    A :class:`Quadratic` (spectrum from :func:`symmetric_matrices`, scales :math:`10^{-4}` to
    :math:`10^{4}`), a :class:`Factorization` (width 1-3, depth 1-4), the
    :class:`TwoBlockFactorization`, the :class:`Ravine`, and a small :class:`MLP`
    (:func:`mlp_cases`). Points have entries in :math:`[-2, 2]` (the MLP's come from
    :func:`mlp_cases`).
    """
    name = draw(st.sampled_from(["quadratic", "factorization", "two_block", "ravine", "mlp"]))
    if name == "quadratic":
        case = draw(symmetric_matrices(max_dim=max_dim, scale_range=(1e-4, 1e4)))
        b = draw(st.one_of(st.none(), _points(case.dim)))
        source = f"{case!r}.quadratic({None if b is None else b.tolist()!r})"
        return ProblemCase(name, case.quadratic(b), draw(_points(case.dim)), source)
    if name == "factorization":
        p = Factorization(draw(st.integers(1, 3)), draw(st.integers(1, 4)))
    elif name == "two_block":
        p = TwoBlockFactorization()
    elif name == "ravine":
        p = Ravine(10.0 ** draw(st.floats(-2.0, 2.0)))
    else:
        m = draw(mlp_cases())
        return ProblemCase(name, m.problem, m.w, repr(m))
    return ProblemCase(name, p, draw(_points(p.dim)))


# -- optimizer options -------------------------------------------------------------------------

#: every preset and the options it accepts beyond ``lr``
_PRESET_KINDS = {
    "gd": "gd",
    "usam": "sam",
    "sam": "sam",
    "nsam": "nsam",
    "eigen_sam": "eig",
    "xsam": "eig",
    "xsam_paper": "eig",
    "xsam_symmetric": "eig",
    "xsam_projector": "eig",
    "xsam_raw_projection": "eig",
}


@st.composite
def optimizer_configs(
    draw: Any,
    *,
    presets: Sequence[str] = tuple(_PRESET_KINDS),
    max_alpha: float = 2.0,
    eigvec_sources: Sequence[str] = ("exact", "lanczos", "power"),
    base_optimizer: bool = True,
) -> OptimizerConfig:
    """Valid :class:`~xsam_theory.optimizers.OptimizerConfig` values from the named presets.

    ``lr`` in :math:`[10^{-4}, 1]`, ``rho`` in :math:`[0, 0.5]`, ``alpha`` in
    ``[0, max_alpha]`` (``max_alpha > 2`` draws configurations that warn), any eigenvector source
    of ``eigvec_sources``, ``refresh_every`` 1-5, ``power_steps`` 1-6 (power iteration) or
    either sign orientation (``exact``, ``lanczos``), both schedules, and with
    ``base_optimizer`` momentum, weight decay and every learning-rate schedule. Only options the
    method uses are drawn (any other raises ``ValueError``).
    """
    name = draw(st.sampled_from(list(presets)))
    kind = _PRESET_KINDS[name]
    opts: dict[str, Any] = {"lr": 10.0 ** draw(st.floats(-4.0, 0.0))}
    if kind != "gd":
        opts["rho"] = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.5)))
    if kind == "eig":
        opts["alpha"] = draw(st.floats(0.0, max_alpha))
        source = opts["eigvec_source"] = draw(st.sampled_from(list(eigvec_sources)))
        opts["refresh_every"] = draw(st.integers(1, 5))
        if source == "power":  # the only source with a step count, and no orientation
            opts["power_steps"] = draw(st.integers(1, 6))
        else:
            opts["eigvec_sign"] = draw(st.sampled_from([1, -1]))
        opts["schedule"] = draw(st.sampled_from(["standard", "reference"]))
    if base_optimizer:
        opts["momentum"] = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.95)))
        opts["weight_decay"] = draw(st.one_of(st.just(0.0), st.floats(0.0, 1e-2)))
        schedule = draw(st.sampled_from(["constant", "inv_sqrt", "cosine"]))
        opts["lr_schedule"] = schedule
        if schedule == "cosine":
            opts["total_steps"] = draw(st.integers(1, 1000))
    from xsam_theory.optimizers import preset

    return preset(name, **opts)


#: a few valid values of every option, the off value (the default; 0 for rho) first, in an
#: order where an option comes after those it depends on; ``lr_schedule`` and ``total_steps``
#: are drawn together
OPTION_SAMPLES: dict[str, tuple[Any, ...]] = {
    "lr": (0.1, 0.02),
    "rho": (0.0, 0.05, 0.3),
    "alpha": (0.0, 0.4, 1.2),
    "perturbation": ("normalized", "unnormalized"),
    "sign_rule": ("paper", "symmetric"),
    "normalize": (True, False),
    "coefficient": ("normalized", "raw"),
    "eigvec_source": ("lanczos", "exact", "power"),
    "refresh_every": (1, 2, 3),
    "power_steps": (5, 1, 8),
    "eigen_tol": (0.0, 1e-3),
    "eigvec_sign": (1, -1),
    "schedule": ("standard", "reference"),
    "steps_per_epoch": (None, 2, 3),
    "momentum": (0.0, 0.5),
    "weight_decay": (0.0, 1e-2),
    "lr_schedule": (("constant", None), ("inv_sqrt", None), ("cosine", 3), ("cosine", 10)),
}


def _build(method: str, wanted: dict[str, Any]) -> OptimizerConfig:
    """The configuration of ``method`` with every wanted value that is valid.

    An option's wanted value is kept when it is valid given the options before it
    (:data:`OPTION_SAMPLES` order); otherwise the option takes its off value.
    """
    options: dict[str, Any] = {"method": method}
    for name, samples in OPTION_SAMPLES.items():
        for value in (wanted[name], samples[0]):
            trial = (
                {**options, "lr_schedule": value[0], "total_steps": value[1]}
                if name == "lr_schedule"
                else {**options, name: value}
            )
            try:
                OptimizerConfig(**trial)
            except ValueError:
                continue
            options = trial
            break
    return OptimizerConfig(**options)


@st.composite
def optimizer_config_pairs(
    draw: Any, *, max_changes: int = 3
) -> tuple[OptimizerConfig, OptimizerConfig]:
    """Two valid configurations over every option, the second a variant of the first.

    The first draws the family and every option from :data:`OPTION_SAMPLES` (an option its
    method does not use, or one the options before it rule out, keeps its off value); the second
    redraws 1 to ``max_changes`` of them: half the time among the options the first one's
    values make inert (:meth:`~xsam_theory.optimizers.OptimizerConfig.inert_options`), when it
    has some, otherwise among all (the family too). So the pair often differs only in inert
    options, and often in options that matter.

    Returns:
        ``(a, b)``.
    """
    method = draw(st.sampled_from(["gd", "sam", "eigen_sam", "xsam"]))
    wanted = {name: draw(st.sampled_from(samples)) for name, samples in OPTION_SAMPLES.items()}
    a = _build(method, wanted)
    inert = [name for name in a.inert_options() if name != "lr_schedule"]
    if inert and draw(st.booleans()):
        # the options that a's values make inert: the pairs whose canonical forms should agree
        changed = draw(st.sets(st.sampled_from(inert), min_size=1, max_size=max_changes))
    else:
        changed = draw(
            st.sets(st.sampled_from(["method", *OPTION_SAMPLES]), min_size=1, max_size=max_changes)
        )
    if "method" in changed:
        method = draw(
            st.sampled_from([m for m in ("gd", "sam", "eigen_sam", "xsam") if m != method])
        )
    current = {name: getattr(a, name) for name in OPTION_SAMPLES}
    current["lr_schedule"] = (a.lr_schedule.value, a.total_steps)
    for name in sorted(changed - {"method"}):
        others = [v for v in OPTION_SAMPLES[name] if v != current[name]]
        current[name] = draw(st.sampled_from(others))
    return a, _build(method, current)


@dataclass(frozen=True)
class InvalidOption:
    """Options for :class:`~xsam_theory.optimizers.OptimizerConfig` with one bad entry.

    The entry ``name = value`` is invalid or unused by the method; the constructor must raise
    ``ValueError`` naming both.
    """

    options: dict[str, Any]
    name: str
    value: Any


#: invalid values per option: negative radii, non-positive step sizes, non-finite numbers,
#: wrong types, unknown names
INVALID_OPTION_VALUES: dict[str, tuple[Any, ...]] = {
    "lr": (0.0, -0.1, -1e-300, math.nan, math.inf, -math.inf, True, "0.1", None),
    "rho": (-1e-12, -0.05, math.nan, math.inf, "0.05"),
    "alpha": (-1e-9, -0.5, math.nan, -math.inf),
    "refresh_every": (0, -3, 2.5, True, "5"),
    "power_steps": (0, -1, 1.0, None),
    "momentum": (1.0, 1.5, -0.1, math.nan),
    "weight_decay": (-1e-4, math.inf),
    "eigen_tol": (-1e-8, math.nan),
    "eigvec_sign": (0, 2, -2, 0.5),
    "normalize": ("yes", 1, 0, None),
    "steps_per_epoch": (0, -1, 1.5),
    "total_steps": (0, -10),
    "method": ("adam", "SAM", ""),
    "perturbation": ("sign", ""),
    "sign_rule": ("foo", "Paper", "abs"),
    "coefficient": ("half",),
    "eigvec_source": ("arnoldi", "LM"),
    "schedule": ("authors",),
    "lr_schedule": ("linear", "step"),
}


#: options a method does not use, each with the base options that make it unused and values
#: other than its off value: (base options, option, values). Written out by hand from the step's
#: definition, independently of ``OPTION_USE``.
_NO_EIGVEC = {
    "alpha": (0.3, 2.0),
    "eigvec_source": ("exact", "power"),
    "refresh_every": (2, 7),
    "power_steps": (1, 9),
    "eigen_tol": (1e-6, 0.5),
    "eigvec_sign": (-1,),
    "schedule": ("reference",),
    "steps_per_epoch": (1, 50),
}
_NOT_XSAM = {"sign_rule": ("symmetric",), "normalize": (False,), "coefficient": ("raw",)}
UNUSED_OPTIONS: tuple[tuple[dict[str, Any], str, tuple[Any, ...]], ...] = (
    *(
        ({"method": "gd", "rho": 0.0}, k, v)
        for k, v in {**_NO_EIGVEC, **_NOT_XSAM, "perturbation": ("unnormalized",)}.items()
    ),
    ({"method": "gd"}, "rho", (0.05, 1e-9)),
    *(
        ({"method": "sam", "perturbation": p}, k, v)
        for p in ("normalized", "unnormalized")
        for k, v in {**_NO_EIGVEC, **_NOT_XSAM}.items()
    ),
    *(
        ({"method": "eigen_sam", "alpha": 0.2}, k, v)
        for k, v in {**_NOT_XSAM, "perturbation": ("unnormalized",)}.items()
    ),
    *(
        ({"method": m, "alpha": 0.2, "eigvec_source": "lanczos"}, "power_steps", (1, 9))
        for m in ("eigen_sam", "xsam")
    ),
    *(
        ({"method": m, "alpha": 0.2, "eigvec_source": s}, "eigen_tol", (1e-6, 0.5))
        for m in ("eigen_sam", "xsam")
        for s in ("exact", "power")
    ),
    *(
        ({"method": m, "alpha": 0.2, "eigvec_source": "power"}, "eigvec_sign", (-1,))
        for m in ("eigen_sam", "xsam")
    ),
    *(
        ({"method": m, "alpha": a}, "steps_per_epoch", (1, 50))
        for m in ("eigen_sam", "xsam")
        for a in (0.0, 0.2)
    ),
    *(
        ({"method": m, "lr_schedule": s}, "total_steps", (1, 1000))
        for m in ("sam", "xsam")
        for s in ("constant", "inv_sqrt")
    ),
)


@st.composite
def invalid_optimizer_options(draw: Any) -> InvalidOption:
    """One invalid option, or one option the method does not use.

    Invalid: a value of :data:`INVALID_OPTION_VALUES` on top of valid X-SAM options. Unused: an
    entry of :data:`UNUSED_OPTIONS` (``alpha`` for GD/SAM, ``rho`` for GD, X-SAM's switches for
    the others, the eigenvector options for GD/SAM, ``power_steps`` without power iteration,
    ``steps_per_epoch`` without the reference schedule, ``total_steps`` without the cosine
    schedule, ...) with one of its values.

    Returns:
        The options; the constructor must raise ``ValueError`` naming the option and the value.
    """
    base: dict[str, Any] = {"method": "xsam", "lr": 0.1, "rho": 0.05, "alpha": 0.5}
    if draw(st.sampled_from(["value", "unused"])) == "unused":
        options, name, values = draw(st.sampled_from(UNUSED_OPTIONS))
        value = draw(st.sampled_from(values))
        return InvalidOption({"lr": 0.1, **options, name: value}, name, value)
    name = draw(st.sampled_from(sorted(INVALID_OPTION_VALUES)))
    value = draw(st.sampled_from(INVALID_OPTION_VALUES[name]))
    return InvalidOption({**base, name: value}, name, value)
