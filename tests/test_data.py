"""The datasets of the generalization study (xsam_theory.data).

Splits are disjoint and fixed by the seed, standardization uses training statistics only, label
noise has the rate it claims.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from xsam_theory import data
from xsam_theory.data import (
    corrupt_labels,
    digits,
    load_dataset,
    mlp_problem,
    split_indices,
    standardize,
    teacher_student,
)

needs_sklearn = pytest.mark.skipif(not data.has_digits(), reason="scikit-learn not installed")

SMALL = dict(n_train=200, n_val=100, n_test=300, d_in=5, n_classes=3, teacher_hidden=8)


# -- standardization ------------------------------------------------------------------------------


def test_standardize_uses_training_statistics_only():
    rng = np.random.default_rng(0)
    train = rng.normal(3.0, 2.0, size=(50, 4))
    val = rng.normal(-5.0, 9.0, size=(20, 4))
    mean, scale, (a, b) = standardize(train, val)
    np.testing.assert_allclose(mean, train.mean(axis=0), rtol=0, atol=1e-14)
    np.testing.assert_allclose(scale, train.std(axis=0), rtol=1e-14)
    np.testing.assert_allclose(a.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(a.std(axis=0), 1.0, rtol=1e-13)
    np.testing.assert_allclose(b, (val - train.mean(axis=0)) / train.std(axis=0), rtol=1e-14)
    # the held-out data cannot move the statistics: wildly different held-out inputs, same map
    mean2, scale2, (a2, _) = standardize(train, 1e6 * val + 7.0)
    assert np.array_equal(mean, mean2) and np.array_equal(scale, scale2)
    assert np.array_equal(a, a2)


def test_standardize_constant_feature_maps_to_zero_not_nan():
    train = np.array([[1.0, 4.0], [3.0, 4.0], [5.0, 4.0]])
    _, scale, (a, b) = standardize(train, np.array([[0.0, 5.0]]))
    assert scale[1] == 1.0
    assert np.all(a[:, 1] == 0.0) and b[0, 1] == 1.0
    assert np.all(np.isfinite(a)) and np.all(np.isfinite(b))


@needs_sklearn
def test_digits_standardized_with_training_rows_only():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    ds = digits(seed=3)
    tr = X[ds.train.index]
    sd = tr.std(axis=0)
    sd[sd == 0] = 1.0
    np.testing.assert_allclose(ds.mean, tr.mean(axis=0), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(ds.scale, sd, rtol=1e-14)
    for split in (ds.train, ds.val, ds.test):
        np.testing.assert_allclose(
            split.X, (X[split.index] - tr.mean(axis=0)) / sd, rtol=1e-12, atol=1e-12
        )
        assert np.array_equal(split.y, y[split.index])  # no label noise by default
    # the statistics are the training rows' and differ from those of all rows
    assert not np.allclose(ds.mean, X.mean(axis=0))


def test_teacher_student_training_split_is_standardized():
    ds = teacher_student(**SMALL, seed=2)
    np.testing.assert_allclose(ds.train.X.mean(axis=0), 0.0, atol=1e-13)
    np.testing.assert_allclose(ds.train.X.std(axis=0), 1.0, rtol=1e-13)
    # held-out splits use the training map, so they are only approximately standardized
    assert np.abs(ds.test.X.mean(axis=0)).max() > 1e-6


# -- splits ---------------------------------------------------------------------------------------


def test_split_indices_disjoint_complete_and_stratified():
    y = np.repeat(np.arange(4), [30, 50, 20, 100])
    tr, va, te = split_indices(y, (0.6, 0.2, 0.2), seed=5)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert np.array_equal(np.sort(np.concatenate([tr, va, te])), np.arange(y.size))
    for c, n_c in zip(range(4), (30, 50, 20, 100)):
        assert (y[tr] == c).sum() == round(0.6 * n_c)
        assert (y[va] == c).sum() == round(0.8 * n_c) - round(0.6 * n_c)


def test_split_indices_fixed_by_seed():
    y = np.repeat(np.arange(3), 40)
    a = split_indices(y, seed=7)
    b = split_indices(y, seed=7)
    c = split_indices(y, seed=8)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    tr, va, te = split_indices(120, (0.5, 0.25, 0.25), seed=1, stratify=False)
    assert (len(tr), len(va), len(te)) == (60, 30, 30)


@pytest.mark.parametrize(
    "fractions", [(0.5, 0.5), (0.6, 0.3, 0.3), (0.8, 0.2, 0.0), (1.2, -0.1, -0.1)]
)
def test_split_indices_rejects_bad_fractions(fractions):
    with pytest.raises(ValueError, match="fractions"):
        split_indices(np.zeros(30, dtype=int), fractions)


def test_teacher_student_splits_disjoint_sized_and_seeded():
    a = teacher_student(**SMALL, seed=4)
    b = teacher_student(**SMALL, seed=4)
    c = teacher_student(**SMALL, seed=5)
    assert (len(a.train), len(a.val), len(a.test)) == (200, 100, 300)
    ids = [set(s.index) for s in (a.train, a.val, a.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(range(600))
    for name in ("train", "val", "test"):
        assert np.array_equal(a.split(name).X, b.split(name).X)  # bit-identical
        assert np.array_equal(a.split(name).y, b.split(name).y)
    assert not np.array_equal(a.train.X, c.train.X)
    assert set(np.unique(a.train.y)) <= set(range(3))


@needs_sklearn
def test_digits_splits_disjoint_complete_and_seeded():
    a, b, c = digits(seed=0), digits(seed=0), digits(seed=1)
    ids = [set(s.index) for s in (a.train, a.val, a.test)]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert set().union(*ids) == set(range(1797))
    assert (len(a.train), len(a.val), len(a.test)) == (1078, 360, 359)
    assert all(
        np.array_equal(s.index, t.index)
        for s, t in zip((a.train, a.val, a.test), (b.train, b.val, b.test))
    )
    assert not np.array_equal(a.test.index, c.test.index)
    assert len(a.train) == len(c.train)  # the sizes do not depend on the seed
    assert np.array_equal(np.bincount(a.test.y), np.bincount(c.test.y))  # stratified


# -- label noise ----------------------------------------------------------------------------------


def test_corrupt_labels_rate_and_always_a_different_class():
    n, rate, k = 40_000, 0.2, 5
    y = np.random.default_rng(0).integers(0, k, n)
    noisy, mask = corrupt_labels(y, rate, k, np.random.default_rng(1))
    # the corruption rate is the rate asked for (binomial: 5 standard deviations)
    assert abs(mask.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    assert np.all(noisy[mask] != y[mask]) and np.array_equal(noisy[~mask], y[~mask])
    # the new class is uniform over the k - 1 others
    shift = (noisy[mask] - y[mask]) % k
    counts = np.bincount(shift, minlength=k)[1:]
    assert counts.min() > 0.9 * counts.mean()
    assert corrupt_labels(y, 0.0, k, np.random.default_rng(2))[1].sum() == 0


@pytest.mark.parametrize("rate", [-0.1, 1.5, float("nan")])
def test_corrupt_labels_rejects_bad_rate(rate):
    with pytest.raises(ValueError, match="label_noise"):
        corrupt_labels(np.zeros(5, dtype=int), rate, 3, np.random.default_rng(0))


def test_teacher_student_label_noise_hits_train_and_val_only():
    clean = teacher_student(**{**SMALL, "n_train": 4000}, seed=6)
    noisy = teacher_student(**{**SMALL, "n_train": 4000}, label_noise=0.3, seed=6)
    # the noise stream is separate: inputs and test labels are unchanged by the option
    for name in ("train", "val", "test"):
        assert np.array_equal(clean.split(name).X, noisy.split(name).X)
    assert np.array_equal(clean.test.y, noisy.test.y) and not noisy.test.corrupted.any()
    for name in ("train", "val"):
        s, c = noisy.split(name), clean.split(name)
        assert np.array_equal(s.corrupted, s.y != c.y)  # exactly the recorded labels changed
    rate = noisy.train.corrupted.mean()
    assert abs(rate - 0.3) < 5 * np.sqrt(0.3 * 0.7 / 4000)


@needs_sklearn
def test_digits_label_noise_rate():
    ds = digits(label_noise=0.25, seed=2)
    from sklearn.datasets import load_digits

    _, y = load_digits(return_X_y=True)
    assert np.array_equal(ds.train.corrupted, ds.train.y != y[ds.train.index])
    n = len(ds.train)
    assert abs(ds.train.corrupted.mean() - 0.25) < 5 * np.sqrt(0.25 * 0.75 / n)
    assert np.array_equal(ds.test.y, y[ds.test.index])


# -- errors and the MLP problem -------------------------------------------------------------------


def test_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    data._digits_arrays.cache_clear()  # load_digits is kept once loaded
    assert not data.has_digits()
    with pytest.raises(ImportError, match=r"xsam-theory\[digits\]"):
        digits()


def test_bad_options_raise_value_errors():
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_dataset("cifar")
    with pytest.raises(ValueError, match="n_classes"):
        teacher_student(n_classes=1)
    with pytest.raises(ValueError, match="n_train"):
        teacher_student(n_train=0)
    with pytest.raises(ValueError, match="label_noise"):
        teacher_student(**SMALL, label_noise=1.5)


def test_mlp_problem_carries_its_held_out_splits():
    p = mlp_problem("teacher_student", (7,), seed=3, options=SMALL)
    ds = p.dataset
    assert p.widths == (5, 7, 3) and p.n_samples == 200
    assert {k: v.n_samples for k, v in p.held_out.items()} == {"val": 100, "test": 300}
    w = mlp_problem.default_init(p, 11)
    assert np.array_equal(w, mlp_problem.default_init(p, 11))
    assert not np.array_equal(w, mlp_problem.default_init(p, 12))
    # the held-out problem is the same network on the other split
    direct = type(p)(p.widths, ds.test.X, ds.test.y)
    assert float(p.held_out["test"].loss(w)) == float(direct.loss(w))
    assert 0.0 <= p.held_out["test"].accuracy(w) <= 1.0


# -- make_classification ------------------------------------------------------------------------


@needs_sklearn
def test_make_classification_is_seeded_and_stratified():
    from sklearn.datasets import make_classification

    opts = dict(n_samples=600, n_features=6, n_informative=3, n_redundant=1, n_classes=3)
    a = load_dataset("make_classification", seed=4, **opts)
    b = load_dataset("make_classification", seed=4, **opts)
    c = load_dataset("make_classification", seed=5, **opts)
    assert np.array_equal(a.train.X, b.train.X) and not np.array_equal(a.train.X, c.train.X)
    assert len(a.train) == 360 and len(a.val) + len(a.test) == 240
    assert a.n_classes == 3 and a.n_features == 6 and a.options["flip_y"] == 0.1
    np.testing.assert_allclose(a.train.X.mean(axis=0), 0.0, atol=1e-12)
    # the rows are scikit-learn's, drawn from a state the seed fixes, and split stratified
    X, y = make_classification(
        n_samples=600,
        n_features=6,
        n_informative=3,
        n_redundant=1,
        n_classes=3,
        flip_y=0.1,
        class_sep=1.0,
        random_state=int(np.random.default_rng([4, data._INPUTS]).integers(2**31 - 1)),
    )
    ids = np.concatenate([a.train.index, a.val.index, a.test.index])
    assert np.array_equal(np.sort(ids), np.arange(600))
    assert np.array_equal(a.test.y, y[a.test.index])  # no further noise on top
    assert np.allclose(a.train.X * a.scale + a.mean, X[a.train.index])
    fractions = np.bincount(a.train.y) / np.bincount(y)
    assert np.all(np.abs(fractions - 0.6) < 0.01)


# -- user datasets -------------------------------------------------------------------------------


def _blobs():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (40, 3)), rng.normal(3, 2, (60, 3))])
    y = np.repeat([7, 9], [40, 60])  # any integer labels
    return X, y


def test_register_dataset_splits_stratified_and_standardizes_on_train_only():
    X, y = _blobs()
    data.register_dataset("blobs", _blobs)
    try:
        ds = load_dataset("blobs", seed=3)
    finally:
        data.USER_DATASETS.pop("blobs")
    assert ds.name == "blobs" and ds.n_classes == 2
    assert (len(ds.train), len(ds.val), len(ds.test)) == (60, 20, 20)
    assert np.bincount(ds.train.y).tolist() == [24, 36]  # 7 -> 0, 9 -> 1, proportions kept
    tr = X[ds.train.index]
    np.testing.assert_allclose(ds.mean, tr.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(
        ds.test.X, (X[ds.test.index] - tr.mean(axis=0)) / tr.std(axis=0), rtol=1e-12
    )
    assert np.array_equal(ds.test.y, (y[ds.test.index] == 9).astype(int))


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.array([[0.0, np.nan]] * 6), np.array([0, 1] * 3), "NaN or infinite"),
        (np.array([[0.0, np.inf]] * 6), np.array([0, 1] * 3), "NaN or infinite"),
        (np.zeros((6, 2)), np.array([0, 1] * 4), "6 rows but y has 8"),
        (np.zeros((6, 2)), np.zeros(6, dtype=int), "single class"),
        (np.zeros(6), np.array([0, 1] * 3), "2-D"),
        (np.zeros((6, 2, 1)), np.array([0, 1] * 3), "2-D"),
        (np.zeros((6, 2)), np.array([[0, 1]] * 3), "1-D"),
        (np.zeros((6, 2)), np.array([0.0, 1.5] * 3), "integer class labels"),
        (np.zeros((6, 2)), np.array(["a", "b"] * 3), "integer class labels"),
        ([["x", "y"]] * 6, np.array([0, 1] * 3), "numeric"),
    ],
)
def test_bad_user_data_raises_value_errors_naming_the_dataset(X, y, match):
    data.register_dataset("broken-set", lambda: (X, y))
    try:
        with pytest.raises(ValueError, match=match) as err:
            load_dataset("broken-set")
        assert "broken-set" in str(err.value)
    finally:
        data.USER_DATASETS.pop("broken-set")


def test_a_loader_must_return_a_pair():
    data.register_dataset("not_a_pair", lambda: np.zeros((5, 2)))
    try:
        with pytest.raises(ValueError, match=r"not_a_pair.*tuple"):
            load_dataset("not_a_pair")
    finally:
        data.USER_DATASETS.pop("not_a_pair")


def test_register_dataset_rejects_bad_names_and_builtins():
    with pytest.raises(ValueError, match="built in"):
        data.register_dataset("digits", _blobs)
    with pytest.raises(ValueError, match="dataset names"):
        data.register_dataset("a b", _blobs)
    with pytest.raises(ValueError, match="callable"):
        data.register_dataset("fine", 3)


def test_importable_path_finds_module_functions_and_refuses_lambdas_and_locals():
    assert data.importable_path(data.teacher_student) == "xsam_theory.data:teacher_student"
    assert data.importable_path(lambda: None) is None

    def local():
        return None

    assert data.importable_path(local) is None
    data.register_dataset("from_module", _blobs)
    try:
        assert data.USER_DATASETS["from_module"].path == f"{__name__}:_blobs"
        assert data.resolve_dataset("from_module") == ("from_module", f"{__name__}:_blobs")
    finally:
        data.USER_DATASETS.pop("from_module")


def test_resolve_dataset_by_module_function():
    assert data.resolve_dataset(f"{__name__}:_blobs") == ("_blobs", f"{__name__}:_blobs")
    assert data.resolve_dataset("digits") == ("digits", None)
    with pytest.raises(ValueError, match="cannot import"):
        data.resolve_dataset("no_such_module_xyz:f")
    with pytest.raises(ValueError, match="unknown dataset"):
        data.resolve_dataset("nothing_like_this")


def test_mlp_problem_from_a_loader_path_checks_the_digest():
    X, y = _blobs()
    Xc, yc, _ = data.check_xy("_blobs", X, y)
    digest = data.dataset_digest(Xc, yc)
    opts = {"loader": f"{__name__}:_blobs", "digest": digest}
    p = mlp_problem("_blobs", (4,), seed=1, options=opts)
    assert p.widths == (3, 4, 2) and p.n_samples == 60
    with pytest.raises(ValueError, match="other data"):
        mlp_problem("_blobs", (4,), seed=1, options={**opts, "digest": "0" * 16})
