r"""Datasets for the generalization study (SPEC §3, claim P-GEN): a seeded teacher–student
generator and scikit-learn's ``load_digits``, each with fixed train / validation / test splits.

Every dataset is a function of its seed alone. The seed feeds independent streams
(``np.random.default_rng([seed, STREAM])``) for the inputs, the teacher, the split and the label
noise, so changing one option never reshuffles the others. Inputs are standardized with the mean
and standard deviation of the **training split only**,

.. math::
    \tilde x = (x - \mu_{\text{train}}) / \sigma_{\text{train}}
    \qquad(\sigma = 1 \text{ for a feature that is constant on the training split}),

and the same map is applied to the validation and test inputs, so nothing about the held-out
splits leaks into training.

Label noise (``label_noise = p``) replaces each label of the *training and validation* splits,
independently with probability ``p``, by a uniformly drawn *different* class, so ``p`` is the
corruption rate itself; the test labels stay clean (the test split measures how well the true
function was learned). Each :class:`Split` records which labels were replaced.

``load_digits`` (1,797 8×8 images, 10 classes) ships inside scikit-learn, an optional
dependency: ``pip install "xsam-theory[digits]"``.

:func:`mlp_problem` turns a dataset into the :class:`~xsam_theory.problems.MLP` of its training
split, with the validation and test splits attached as ``problem.held_out`` — the form the sweep
runner evaluates held-out metrics on (``final_loss@test``, see
:func:`xsam_theory.sweeps.registry.resolve_results`).

>>> ds = teacher_student(n_train=64, n_val=32, n_test=32, d_in=4, n_classes=3, seed=1)
>>> ds.train.X.shape, ds.val.X.shape, ds.test.X.shape
((64, 4), (32, 4), (32, 4))
>>> bool(abs(ds.train.X.mean(axis=0)).max() < 1e-12)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat.numpy
import numpy as np

from xsam_theory.backend import to_numpy
from xsam_theory.problems.mlp import MLP, torch_default_init

__all__ = [
    "DATASETS",
    "Dataset",
    "Split",
    "corrupt_labels",
    "digits",
    "has_digits",
    "load_dataset",
    "mlp_problem",
    "split_indices",
    "standardize",
    "teacher_student",
]

# independent random streams of one dataset seed
_INPUTS, _TEACHER, _SPLIT, _NOISE, _INIT = 0xDA7A, 0x7EAC, 0x5B17, 0x401E, 0x1417

#: the pip extra that provides ``load_digits``
DIGITS_EXTRA = 'pip install "xsam-theory[digits]"  (or: pip install "scikit-learn>=1.3")'


@dataclass(frozen=True)
class Split:
    """One split of a dataset.

    Attributes:
        X: standardized inputs, shape ``(n, d)``.
        y: integer class labels, shape ``(n,)`` (after label noise, if any).
        index: the rows of the source data this split holds (digits: rows of ``load_digits``;
            teacher–student: sample ids of the generated pool).
        corrupted: boolean mask, ``True`` where label noise replaced the label.
    """

    X: np.ndarray
    y: np.ndarray
    index: np.ndarray
    corrupted: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class Dataset:
    """A dataset with its train / validation / test splits and the standardization used.

    Attributes:
        name: ``"teacher_student"`` or ``"digits"``.
        n_classes: number of classes.
        train, val, test: the :class:`Split` s.
        mean, scale: the per-feature training mean and standard deviation (1 where constant)
            that standardized every split.
        seed: the dataset seed.
        options: the generator's options (JSON-ready), for the record.
    """

    name: str
    n_classes: int
    train: Split
    val: Split
    test: Split
    mean: np.ndarray
    scale: np.ndarray
    seed: int
    options: dict[str, Any]

    @property
    def n_features(self) -> int:
        return int(self.train.X.shape[1])

    def split(self, name: str) -> Split:
        """The split called ``train``, ``val`` or ``test``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)


# -- building blocks -----------------------------------------------------------------------------

def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if len(f) != 3 or any(not math.isfinite(x) or x <= 0 for x in f) or \
            not math.isclose(sum(f), 1.0, abs_tol=1e-9):
        raise ValueError(f"fractions must be three positive numbers summing to 1 "
                         f"(train, val, test), got {fractions!r}")
    return f  # type: ignore[return-value]


def split_indices(labels: Any, fractions: Sequence[float] = (0.6, 0.2, 0.2), *, seed: int = 0,
                  stratify: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint train / validation / test row indices, drawn from ``seed``.

    ``labels`` is the label array (or, with ``stratify=False``, anything of the right length, or
    the number of rows). Stratified: within each class a seeded permutation is cut at
    ``round(f_train·n_c)`` and ``round((f_train + f_val)·n_c)``, so every split keeps the class
    proportions; the three index arrays are sorted and together hold every row exactly once.

    >>> tr, va, te = split_indices(np.repeat([0, 1], 10), (0.6, 0.2, 0.2), seed=0)
    >>> len(tr), len(va), len(te), len(set(tr) | set(va) | set(te))
    (12, 4, 4, 20)
    """
    f_tr, f_val, _ = _check_fractions(fractions)
    if isinstance(labels, (int, np.integer)):
        if stratify:
            raise ValueError("stratify=True needs the label array, not a count")
        y = np.zeros(int(labels), dtype=np.int64)
    else:
        y = np.asarray(labels)
        if y.ndim != 1:
            raise ValueError(f"labels must be 1-D, got shape {y.shape}")
        if not stratify:
            y = np.zeros(y.shape[0], dtype=np.int64)
    if y.shape[0] < 3:
        raise ValueError(f"need at least 3 rows to split, got {y.shape[0]}")
    rng = np.random.default_rng([seed, _SPLIT])
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == c))
        a = round(f_tr * rows.size)
        b = round((f_tr + f_val) * rows.size)
        for k, chunk in enumerate((rows[:a], rows[a:b], rows[b:])):
            parts[k].append(chunk)
    out = tuple(np.sort(np.concatenate(p)).astype(np.int64) for p in parts)
    if any(o.size == 0 for o in out):
        raise ValueError(f"a split came out empty with fractions {fractions} on "
                         f"{y.shape[0]} rows; use more data or larger fractions")
    return out  # type: ignore[return-value]


def standardize(train: np.ndarray, *others: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    r"""``(mean, scale, [standardized train, *standardized others])`` with the per-feature mean
    and standard deviation (``ddof=0``) of ``train`` alone; ``scale = 1`` for a feature that is
    constant on ``train`` (so it maps to 0 there, never to NaN)."""
    train = np.asarray(train, dtype=np.float64)
    if train.ndim != 2 or train.shape[0] < 1:
        raise ValueError(f"train must be a non-empty 2-D array, got shape {train.shape}")
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale = np.where(scale > 0.0, scale, 1.0)
    arrays = [(np.asarray(x, dtype=np.float64) - mean) / scale for x in (train, *others)]
    return mean, scale, arrays


def corrupt_labels(y: np.ndarray, rate: float, n_classes: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Replace each label, independently with probability ``rate``, by a uniformly drawn
    *different* class. Returns ``(noisy labels, mask of replaced labels)``."""
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"label_noise must be a probability in [0, 1], got {rate!r}")
    if n_classes < 2 and rate > 0:
        raise ValueError("label noise needs at least 2 classes")
    y = np.asarray(y, dtype=np.int64)
    mask = rng.random(y.shape[0]) < rate
    shift = rng.integers(1, max(n_classes, 2), size=y.shape[0])   # 1 .. K-1: never the same
    noisy = np.where(mask, (y + shift) % max(n_classes, 1), y)
    return noisy, mask


def _assemble(name: str, X: np.ndarray, y: np.ndarray, idx: tuple[np.ndarray, ...],
              n_classes: int, label_noise: float, seed: int,
              options: dict[str, Any]) -> Dataset:
    mean, scale, (Xtr, Xva, Xte) = standardize(X[idx[0]], X[idx[1]], X[idx[2]])
    rng = np.random.default_rng([seed, _NOISE])
    splits = []
    for k, (rows, Xs) in enumerate(zip(idx, (Xtr, Xva, Xte))):
        labels = y[rows].astype(np.int64)
        if k < 2 and label_noise > 0:           # train and validation: the labels one holds
            labels, mask = corrupt_labels(labels, label_noise, n_classes, rng)
        else:                                    # test: the true labels
            mask = np.zeros(rows.size, dtype=bool)
        splits.append(Split(Xs, labels, rows, mask))
    return Dataset(name, n_classes, *splits, mean=mean, scale=scale, seed=int(seed),
                   options=options)


# -- the datasets -------------------------------------------------------------------------------

def teacher_student(n_train: int = 512, n_val: int = 256, n_test: int = 1024, *, d_in: int = 16,
                    n_classes: int = 4, teacher_hidden: int = 32, label_noise: float = 0.0,
                    seed: int = 0) -> Dataset:
    r"""Classification data labelled by a seeded random teacher network.

    :math:`x \sim \mathcal N(0, I_{d_{in}})`; the teacher is a tanh MLP
    ``(d_in, teacher_hidden, n_classes)`` drawn with PyTorch's default init scaled by
    :math:`\sqrt 3` per layer (outputs of order 1, as
    :meth:`~xsam_theory.problems.MLP.teacher_student`), and the label is its argmax. The pool of
    ``n_train + n_val + n_test`` i.i.d. samples is split by a seeded permutation; label noise
    (see the module docstring) hits the training and validation labels only.
    """
    for k, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("d_in", d_in),
                 ("teacher_hidden", teacher_hidden)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{k} must be an integer >= 1, got {v!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or \
            n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    n = n_train + n_val + n_test
    X = np.random.default_rng([seed, _INPUTS]).standard_normal((n, d_in))
    widths = (d_in, teacher_hidden, n_classes)
    w_teacher = math.sqrt(3.0) * torch_default_init(widths, np.random.default_rng([seed,
                                                                                   _TEACHER]))
    xp = array_api_compat.numpy                       # the teacher always runs in NumPy
    teacher = MLP(widths, X, np.zeros((n, n_classes)), loss="squared", xp=xp)
    y = np.argmax(to_numpy(teacher.outputs(xp.asarray(w_teacher))), axis=1)
    perm = np.random.default_rng([seed, _SPLIT]).permutation(n)
    idx = (np.sort(perm[:n_train]), np.sort(perm[n_train:n_train + n_val]),
           np.sort(perm[n_train + n_val:]))
    options = {"n_train": n_train, "n_val": n_val, "n_test": n_test, "d_in": d_in,
               "n_classes": n_classes, "teacher_hidden": teacher_hidden,
               "label_noise": label_noise}
    return _assemble("teacher_student", X, y, idx, n_classes, label_noise, seed, options)


def has_digits() -> bool:
    """Whether scikit-learn (hence ``load_digits``) is installed."""
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return False
    return True


def digits(fractions: Sequence[float] = (0.6, 0.2, 0.2), *, label_noise: float = 0.0,
           seed: int = 0) -> Dataset:
    """scikit-learn's ``load_digits`` (1,797 8×8 grey-level images, 10 classes, 64 features in
    0..16) with a stratified seeded split (:func:`split_indices`) and training-split
    standardization. Needs the ``digits`` extra."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(f"the digits dataset needs scikit-learn: {DIGITS_EXTRA}") from None
    X, y = load_digits(return_X_y=True)
    idx = split_indices(y, fractions, seed=seed, stratify=True)
    options = {"fractions": list(_check_fractions(fractions)), "label_noise": label_noise}
    return _assemble("digits", np.asarray(X, dtype=np.float64), np.asarray(y), idx, 10,
                     label_noise, seed, options)


#: name -> loader(**options, seed=...)
DATASETS = {"teacher_student": teacher_student, "digits": digits}


def load_dataset(name: str, *, seed: int = 0, **options: Any) -> Dataset:
    """The dataset ``name`` (one of :data:`DATASETS`) with its options."""
    try:
        loader = DATASETS[name]
    except KeyError:
        raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {name!r}") from None
    return loader(seed=seed, **options)


# -- as an MLP problem ---------------------------------------------------------------------------

def mlp_problem(dataset: str = "teacher_student", hidden: Sequence[int] = (32,), *,
                seed: int = 0, activation: str = "tanh", l2: float = 0.0,
                options: dict[str, Any] | None = None) -> MLP:
    """The cross-entropy :class:`~xsam_theory.problems.MLP` on the training split of
    ``load_dataset(dataset, seed=seed, **options)``, with layer sizes
    ``(n_features, *hidden, n_classes)``.

    The validation and test splits come along as ``problem.held_out = {"val": MLP, "test":
    MLP}`` (same widths, activation and loss), and the dataset itself as ``problem.dataset``.
    Usable as a sweep problem: ``{"name": "xsam_theory.data:mlp_problem", "dataset": ...}``;
    its initial point (``init.kind = "default"``) is PyTorch's default init drawn from the run
    seed.
    """
    ds = load_dataset(dataset, seed=seed, **(options or {}))
    widths = (ds.n_features, *(int(h) for h in hidden), ds.n_classes)
    kw: dict[str, Any] = {"activation": activation, "loss": "cross_entropy", "l2": l2}
    problem = MLP(widths, ds.train.X, ds.train.y, **kw)
    problem.held_out = {name: MLP(widths, ds.split(name).X, ds.split(name).y, **kw)
                        for name in ("val", "test")}
    problem.dataset = ds
    return problem


def _mlp_problem_init(problem: MLP, seed: int) -> np.ndarray:
    """PyTorch's default init from the run seed (a stream apart from the dataset's)."""
    return to_numpy(problem.init_params(np.random.default_rng([seed, _INIT])))


mlp_problem.default_init = _mlp_problem_init  # type: ignore[attr-defined]
