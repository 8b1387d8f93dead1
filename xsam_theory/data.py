r"""Datasets for the generalization study (claim P-GEN: docs/claims/P-GEN.md).

How the datasets become problems: docs/algorithms.md#A-problems.

A seeded teacher–student generator, scikit-learn's ``load_digits`` and a ``make_classification``
set, each with fixed train / validation / test splits, and datasets a user registers
(:func:`register_dataset`).

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
dependency: ``pip install "xsam-theory[digits]"``; so does ``make_classification``, which draws
a fresh Gaussian-cluster classification problem per seed (its ``flip_y`` label noise hits every
split, the test split included).

**Your own data.** ``register_dataset("mydata", load_mydata)`` (or
``xsam-theory verify --datasets mypackage.module:load_mydata``) with a loader that takes no
arguments and returns ``(X, y)``: ``X`` finite floats of shape ``(n, d)``, ``y`` ``n`` integer
labels (any integer values; they are renumbered ``0 .. K-1``), at least two classes. The package
splits the rows (stratified, 60/20/20 by default, fixed by the seed) and standardizes them with
the training rows' statistics; a loader that returns NaN or inf, lengths that differ, one class,
or arrays of the wrong dimension is rejected with a ``ValueError`` naming the dataset. Sweeps
run in worker processes, which find the loader by its importable ``module:qualname``; a loader
that has none (a lambda, a local function, one defined in ``__main__``) is still accepted, and
the studies run such a dataset in the calling process (see :func:`importable_path`).

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

import functools
import hashlib
import importlib
import math
import re
from collections.abc import Callable, Sequence
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
    "dataset_digest",
    "digits",
    "generated_classification",
    "has_digits",
    "importable_path",
    "load_dataset",
    "mlp_problem",
    "register_dataset",
    "resolve_dataset",
    "split_indices",
    "standardize",
    "teacher_student",
    "user_dataset",
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
        """The number of input features (columns of every split's ``X``)."""
        return int(self.train.X.shape[1])

    def split(self, name: str) -> Split:
        """The split called ``train``, ``val`` or ``test``."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name)


# -- building blocks -----------------------------------------------------------------------------


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    f = tuple(float(x) for x in fractions)
    if (
        len(f) != 3
        or any(not math.isfinite(x) or x <= 0 for x in f)
        or not math.isclose(sum(f), 1.0, abs_tol=1e-9)
    ):
        raise ValueError(
            f"fractions must be three positive numbers summing to 1 "
            f"(train, val, test), got {fractions!r}"
        )
    return f  # type: ignore[return-value]


def split_indices(
    labels: Any,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    *,
    seed: int = 0,
    stratify: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        raise ValueError(
            f"a split came out empty with fractions {fractions} on "
            f"{y.shape[0]} rows; use more data or larger fractions"
        )
    return out  # type: ignore[return-value]


def standardize(
    train: np.ndarray, *others: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    r"""Standardize ``train`` and ``others`` with the statistics of ``train`` alone.

    Returns ``(mean, scale, [standardized train, *standardized others])`` with the per-feature
    mean and standard deviation (``ddof=0``) of ``train`` alone; ``scale = 1`` for a feature that
    is constant on ``train`` (so it maps to 0 there, never to NaN).
    """
    train = np.asarray(train, dtype=np.float64)
    if train.ndim != 2 or train.shape[0] < 1:
        raise ValueError(f"train must be a non-empty 2-D array, got shape {train.shape}")
    mean = train.mean(axis=0)
    scale = train.std(axis=0)
    scale = np.where(scale > 0.0, scale, 1.0)
    arrays = [(np.asarray(x, dtype=np.float64) - mean) / scale for x in (train, *others)]
    return mean, scale, arrays


def corrupt_labels(
    y: np.ndarray, rate: float, n_classes: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Replace labels at random by a uniformly drawn *different* class.

    Each label is replaced independently with probability ``rate``. Returns
    ``(noisy labels, mask of replaced labels)``.
    """
    if not (math.isfinite(rate) and 0.0 <= rate <= 1.0):
        raise ValueError(f"label_noise must be a probability in [0, 1], got {rate!r}")
    if n_classes < 2 and rate > 0:
        raise ValueError("label noise needs at least 2 classes")
    y = np.asarray(y, dtype=np.int64)
    mask = rng.random(y.shape[0]) < rate
    shift = rng.integers(1, max(n_classes, 2), size=y.shape[0])  # 1 .. K-1: never the same
    noisy = np.where(mask, (y + shift) % max(n_classes, 1), y)
    return noisy, mask


def _assemble(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    idx: tuple[np.ndarray, ...],
    n_classes: int,
    label_noise: float,
    seed: int,
    options: dict[str, Any],
) -> Dataset:
    mean, scale, (Xtr, Xva, Xte) = standardize(X[idx[0]], X[idx[1]], X[idx[2]])
    rng = np.random.default_rng([seed, _NOISE])
    splits = []
    for k, (rows, Xs) in enumerate(zip(idx, (Xtr, Xva, Xte))):
        labels = y[rows].astype(np.int64)
        if k < 2 and label_noise > 0:  # train and validation: the labels one holds
            labels, mask = corrupt_labels(labels, label_noise, n_classes, rng)
        else:  # test: the true labels
            mask = np.zeros(rows.size, dtype=bool)
        splits.append(Split(Xs, labels, rows, mask))
    return Dataset(
        name, n_classes, *splits, mean=mean, scale=scale, seed=int(seed), options=options
    )


# -- the datasets -------------------------------------------------------------------------------


def teacher_student(
    n_train: int = 512,
    n_val: int = 256,
    n_test: int = 1024,
    *,
    d_in: int = 16,
    n_classes: int = 4,
    teacher_hidden: int = 32,
    label_noise: float = 0.0,
    seed: int = 0,
) -> Dataset:
    r"""Classification data labelled by a seeded random teacher network.

    :math:`x \sim \mathcal N(0, I_{d_{in}})`; the teacher is a tanh MLP
    ``(d_in, teacher_hidden, n_classes)`` drawn with PyTorch's default init scaled by
    :math:`\sqrt 3` per layer (outputs of order 1, as
    :meth:`~xsam_theory.problems.MLP.teacher_student`), and the label is its argmax. The pool of
    ``n_train + n_val + n_test`` i.i.d. samples is split by a seeded permutation; label noise
    (see the module docstring) hits the training and validation labels only.
    """
    for k, v in (
        ("n_train", n_train),
        ("n_val", n_val),
        ("n_test", n_test),
        ("d_in", d_in),
        ("teacher_hidden", teacher_hidden),
    ):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{k} must be an integer >= 1, got {v!r}")
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    n = n_train + n_val + n_test
    X = np.random.default_rng([seed, _INPUTS]).standard_normal((n, d_in))
    widths = (d_in, teacher_hidden, n_classes)
    w_teacher = math.sqrt(3.0) * torch_default_init(widths, np.random.default_rng([seed, _TEACHER]))
    xp = array_api_compat.numpy  # the teacher always runs in NumPy
    teacher = MLP(widths, X, np.zeros((n, n_classes)), loss="squared", xp=xp)
    y = np.argmax(to_numpy(teacher.outputs(xp.asarray(w_teacher))), axis=1)
    perm = np.random.default_rng([seed, _SPLIT]).permutation(n)
    idx = (
        np.sort(perm[:n_train]),
        np.sort(perm[n_train : n_train + n_val]),
        np.sort(perm[n_train + n_val :]),
    )
    options = {
        "n_train": n_train,
        "n_val": n_val,
        "n_test": n_test,
        "d_in": d_in,
        "n_classes": n_classes,
        "teacher_hidden": teacher_hidden,
        "label_noise": label_noise,
    }
    return _assemble("teacher_student", X, y, idx, n_classes, label_noise, seed, options)


def has_digits() -> bool:
    """Whether scikit-learn (hence ``load_digits``) is installed."""
    try:
        import sklearn.datasets  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """``load_digits`` once per process (it reads a compressed CSV on every call)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(f"the digits dataset needs scikit-learn: {DIGITS_EXTRA}") from None
    X, y = load_digits(return_X_y=True)
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    X.flags.writeable = False
    y.flags.writeable = False
    return X, y


def digits(
    fractions: Sequence[float] = (0.6, 0.2, 0.2), *, label_noise: float = 0.0, seed: int = 0
) -> Dataset:
    """scikit-learn's ``load_digits``, split and standardized.

    The data: 1,797 8×8 grey-level images, 10 classes, 64 features in 0..16. They get a
    stratified seeded split (:func:`split_indices`) and training-split standardization. Needs
    the ``digits`` extra.
    """
    X, y = _digits_arrays()
    idx = split_indices(y, fractions, seed=seed, stratify=True)
    options = {"fractions": list(_check_fractions(fractions)), "label_noise": label_noise}
    return _assemble(
        "digits",
        np.asarray(X, dtype=np.float64),
        np.asarray(y),
        idx,
        10,
        label_noise,
        seed,
        options,
    )


def generated_classification(
    n_samples: int = 1000,
    n_features: int = 20,
    *,
    n_informative: int = 6,
    n_redundant: int = 4,
    n_classes: int = 4,
    flip_y: float = 0.1,
    class_sep: float = 1.0,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    seed: int = 0,
) -> Dataset:
    """scikit-learn's ``make_classification`` drawn from ``seed``, split and standardized.

    The data are Gaussian clusters on the vertices of a hypercube, with ``n_informative``
    informative features, ``n_redundant`` linear combinations of them, the rest noise, and with
    ``make_classification``'s own label noise: a fraction ``flip_y`` of *all* rows (the test
    split included) get a uniformly drawn class, possibly the same one. A stratified seeded
    split (:func:`split_indices`) and training-split standardization follow.
    Needs scikit-learn (the ``digits`` extra).
    """
    try:
        from sklearn.datasets import make_classification
    except ImportError:
        raise ImportError(f"make_classification needs scikit-learn: {DIGITS_EXTRA}") from None
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_classes=n_classes,
        flip_y=flip_y,
        class_sep=class_sep,
        random_state=int(np.random.default_rng([seed, _INPUTS]).integers(2**31 - 1)),
    )
    idx = split_indices(y, fractions, seed=seed, stratify=True)
    options = {
        "n_samples": n_samples,
        "n_features": n_features,
        "n_informative": n_informative,
        "n_redundant": n_redundant,
        "n_classes": n_classes,
        "flip_y": flip_y,
        "class_sep": class_sep,
        "fractions": list(_check_fractions(fractions)),
    }
    return _assemble(
        "make_classification",
        np.asarray(X, dtype=np.float64),
        np.asarray(y),
        idx,
        n_classes,
        0.0,
        seed,
        options,
    )


#: the built-in datasets: name -> ``loader(**options, seed=...)``
DATASETS = {
    "teacher_student": teacher_student,
    "digits": digits,
    "make_classification": generated_classification,
}


# -- user datasets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserLoader:
    """A registered user dataset: its loader and, when it has one, its import path.

    ``path`` is the ``module:qualname`` by which worker processes import the loader (``None``:
    the calling process only).
    """

    name: str
    loader: Callable[[], Any]
    path: str | None


#: name -> :class:`UserLoader`, filled by :func:`register_dataset`
USER_DATASETS: dict[str, UserLoader] = {}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_RAW_CACHE: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, int]] = {}


def importable_path(loader: Callable[..., Any]) -> str | None:
    """The ``"module:qualname"`` by which a fresh process imports ``loader``, else ``None``.

    The path is returned only if importing it gives back ``loader`` itself; else ``None``
    (lambdas, functions defined inside functions, anything defined in ``__main__``, objects
    without a name).
    """
    module = getattr(loader, "__module__", None)
    qualname = getattr(loader, "__qualname__", None)
    if not module or not qualname or module == "__main__" or "<" in qualname:
        return None
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError):
        return None
    return f"{module}:{qualname}" if obj is loader else None


def _import_loader(path: str) -> Callable[[], Any]:
    module, _, qualname = path.partition(":")
    if not module or not qualname:
        raise ValueError(f"a dataset loader is named 'package.module:function', got {path!r}")
    try:
        obj: Any = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"dataset loader {path!r}: cannot import it ({e})") from None
    if not callable(obj):
        raise ValueError(f"dataset loader {path!r} is not callable")
    return obj


def register_dataset(name: str, loader: Callable[[], Any]) -> str:
    """Make ``loader`` the dataset ``name``; returns ``name``.

    ``loader`` takes no arguments and returns ``(X, y)`` (see the module docstring). It becomes
    the dataset ``name`` for :func:`load_dataset`, :func:`mlp_problem` and the generalization
    study (``ExperimentContext(datasets=(name,))``). Registering a name again replaces it; the
    built-in names cannot be taken.

    The loader is called only when the dataset is used; it is checked then (:func:`check_xy`).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(
            f"dataset names start with a letter or '_' and hold letters, digits, "
            f"'_', '-' and '.', got {name!r}"
        )
    if name in DATASETS:
        raise ValueError(f"dataset {name!r} is built in; register yours under another name")
    if not callable(loader):
        raise ValueError(f"dataset {name!r}: the loader must be callable, got {loader!r}")
    USER_DATASETS[name] = UserLoader(name, loader, importable_path(loader))
    for key in [k for k in _RAW_CACHE if k[0] == name]:
        del _RAW_CACHE[key]
    return name


def resolve_dataset(spec: str) -> tuple[str, str | None]:
    """``(name, loader path)`` for a dataset named on the command line.

    ``spec`` is a built-in name (path ``None``), a registered name (the loader's
    ``module:qualname``, or ``None`` if it has none), or ``"package.module:function"`` (named
    after ``function``; imported here, so a typo fails now, not in a worker).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"a dataset is a name or 'package.module:function', got {spec!r}")
    spec = spec.strip()
    if spec in DATASETS:
        return spec, None
    if spec in USER_DATASETS:
        return spec, USER_DATASETS[spec].path
    if ":" in spec:
        _import_loader(spec)
        return spec.rpartition(":")[2].rpartition(".")[2], spec
    raise ValueError(
        f"unknown dataset {spec!r}: built in are {sorted(DATASETS)}, registered "
        f"{sorted(USER_DATASETS) or 'none'}; or name a loader "
        "'package.module:function' returning (X, y)"
    )


def check_xy(name: str, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """A loader's output, checked and brought to the arrays a classifier uses.

    Args:
        name: The dataset's name, quoted in every error.
        X: The features, one row per sample.
        y: The class labels, one per sample (integers, or floats or booleans holding integers).

    Returns:
        ``(X as float64 (n, d), y renumbered 0 .. K-1 as int64, K)``.

    Raises:
        ValueError: Naming the dataset, for non-numeric or non-finite inputs, non-integer
            labels, wrong dimensions, lengths that differ, or fewer than two classes.
    """
    Xa, ya = _checked_arrays(name, X, y)
    classes, labels = np.unique(_integer_labels(name, ya), return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            f"dataset {name!r}: y holds a single class ({classes.tolist()}); a "
            "classifier needs at least two"
        )
    return Xa, labels.astype(np.int64), int(classes.size)


def _checked_arrays(name: str, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(X as float64, y as an array)``, with their shapes and ``X``'s values checked.

    Raises:
        ValueError: Naming the dataset, unless ``X`` is numeric, finite and 2-D with at least 3
            rows and 1 feature, and ``y`` is 1-D with one entry per row of ``X``.
    """
    try:
        Xa = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"dataset {name!r}: X must be numeric ({e})") from None
    ya = np.asarray(y)
    if Xa.ndim != 2:
        raise ValueError(
            f"dataset {name!r}: X must be 2-D (samples x features), got shape {Xa.shape}"
        )
    if ya.ndim != 1:
        raise ValueError(
            f"dataset {name!r}: y must be 1-D (one label per sample), got shape {ya.shape}"
        )
    if Xa.shape[0] != ya.shape[0]:
        raise ValueError(
            f"dataset {name!r}: X has {Xa.shape[0]} rows but y has {ya.shape[0]} labels"
        )
    if Xa.shape[1] < 1 or Xa.shape[0] < 3:
        raise ValueError(
            f"dataset {name!r}: need at least 3 rows and 1 feature, got X of shape {Xa.shape}"
        )
    if not np.all(np.isfinite(Xa)):
        bad = int(np.sum(~np.isfinite(Xa)))
        raise ValueError(f"dataset {name!r}: X holds {bad} NaN or infinite value(s)")
    return Xa, ya


def _integer_labels(name: str, ya: np.ndarray) -> np.ndarray:
    """``ya`` with booleans read as 0 and 1, checked to hold integer values.

    Raises:
        ValueError: Naming the dataset, unless ``ya`` has an integer dtype, or a floating-point
            one holding finite integer values.
    """
    if ya.dtype.kind == "b":
        return ya.astype(np.int64)
    if ya.dtype.kind == "f":
        if not np.all(np.isfinite(ya)) or np.any(ya != np.round(ya)):
            raise ValueError(
                f"dataset {name!r}: y must hold integer class labels, got "
                f"non-integer values such as {ya[ya != np.round(ya)][:3].tolist()}"
            )
    elif ya.dtype.kind not in "iu":
        raise ValueError(
            f"dataset {name!r}: y must hold integer class labels, got dtype {ya.dtype}"
        )
    return ya


def dataset_digest(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 (first 16 hex digits) of the checked arrays.

    A run configuration records it, so that a changed loader makes new runs and a worker that
    loads other data notices.
    """
    h = hashlib.sha256()
    for a in (np.ascontiguousarray(X, dtype=np.float64), np.ascontiguousarray(y, np.int64)):
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _user_raw(name: str, loader: str | None) -> tuple[np.ndarray, np.ndarray, int]:
    """The checked ``(X, y, K)`` of a user dataset, loaded once per process."""
    key = (name, loader or "")
    if key not in _RAW_CACHE:
        if loader is not None:
            fn = _import_loader(loader)
        elif name in USER_DATASETS:
            fn = USER_DATASETS[name].loader
        else:
            raise ValueError(
                f"dataset must be one of {sorted(DATASETS)} or a registered one "
                f"({sorted(USER_DATASETS) or 'none registered'}), got {name!r}"
            )
        out = fn()
        if not isinstance(out, tuple) or len(out) != 2:
            raise ValueError(
                f"dataset {name!r}: the loader must return a tuple (X, y), got {type(out).__name__}"
            )
        _RAW_CACHE[key] = check_xy(name, *out)
    return _RAW_CACHE[key]


def user_dataset(
    name: str,
    *,
    loader: str | None = None,
    fractions: Sequence[float] = (0.6, 0.2, 0.2),
    label_noise: float = 0.0,
    digest: str | None = None,
    seed: int = 0,
) -> Dataset:
    """A user dataset with a stratified split and training-split standardization.

    The data come from the registered ``name``, or from the loader ``module:qualname``; the
    split is drawn from ``seed``. ``digest``: the :func:`dataset_digest` the data must have
    (``ValueError`` otherwise).
    """
    X, y, k = _user_raw(name, loader)
    if digest is not None and dataset_digest(X, y) != digest:
        raise ValueError(
            f"dataset {name!r}: the loader returned other data than when the study "
            f"was planned (digest {dataset_digest(X, y)} != {digest}); is it "
            "deterministic?"
        )
    try:
        idx = split_indices(y, fractions, seed=seed, stratify=True)
    except ValueError as e:
        raise ValueError(f"dataset {name!r}: {e}") from None
    options = {
        "fractions": list(_check_fractions(fractions)),
        "label_noise": label_noise,
        "loader": loader,
    }
    return _assemble(name, X, y, idx, k, label_noise, seed, options)


def load_dataset(name: str, *, seed: int = 0, **options: Any) -> Dataset:
    """The dataset ``name`` with its options.

    ``name`` is one of :data:`DATASETS`, or a name registered with :func:`register_dataset`.
    """
    if name in DATASETS:
        return DATASETS[name](seed=seed, **options)
    if name in USER_DATASETS or options.get("loader"):
        return user_dataset(name, seed=seed, **options)
    raise ValueError(
        f"dataset must be one of {sorted(DATASETS)} or a registered one "
        f"({sorted(USER_DATASETS) or 'none registered'}), got {name!r}"
    )


# -- as an MLP problem ---------------------------------------------------------------------------


def mlp_problem(
    dataset: str = "teacher_student",
    hidden: Sequence[int] = (32,),
    *,
    seed: int = 0,
    activation: str = "tanh",
    l2: float = 0.0,
    options: dict[str, Any] | None = None,
) -> MLP:
    """The cross-entropy :class:`~xsam_theory.problems.MLP` on a dataset's training split.

    (The problems: docs/algorithms.md#A-problems.)

    The dataset is ``load_dataset(dataset, seed=seed, **options)``; the layer sizes are
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
    problem.held_out = {
        name: MLP(widths, ds.split(name).X, ds.split(name).y, **kw) for name in ("val", "test")
    }
    problem.dataset = ds
    return problem


def _mlp_problem_init(problem: MLP, seed: int) -> np.ndarray:
    """PyTorch's default init from the run seed (a stream apart from the dataset's)."""
    return to_numpy(problem.init_params(np.random.default_rng([seed, _INIT])))


mlp_problem.default_init = _mlp_problem_init  # type: ignore[attr-defined]
