"""MLP-specific checks: spectrum against dense eigh, torch layout, data generation, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xsam_theory import MLP, HessianOperator, top_eigenpair
from xsam_theory.problems.mlp import torch_default_init


@pytest.fixture(scope="module")
def mlp2k():
    p = MLP.teacher_student((20, 64, 12), 256, seed=21)
    assert p.dim >= 2000
    return p, p.init_params(22)


def test_lanczos_top_eigenvalue_matches_dense_eigh_on_a_2000_parameter_mlp(mlp2k):
    p, w = mlp2k
    H = p.hessian(w)
    np.testing.assert_allclose(H, H.T, atol=1e-13 * np.abs(H).max())
    evals, evecs = np.linalg.eigh(0.5 * (H + H.T))
    res = top_eigenpair(HessianOperator.from_problem(p, w), "lanczos")
    assert res.eigenvalue == pytest.approx(evals[-1], rel=1e-10)
    assert abs(abs(np.asarray(res.eigenvector) @ evecs[:, -1]) - 1) < 1e-8
    assert 0 < res.n_hvp < 200


def test_hessian_is_the_gradient_jacobian(mlp2k):
    # a few columns of the assembled Hessian against central differences of the gradient
    p, w = mlp2k
    H = p.hessian(w)
    h = 1e-5
    for i in (0, 777, p.dim - 1):
        e = np.zeros(p.dim)
        e[i] = h
        fd = (p.grad(w + e) - p.grad(w - e)) / (2 * h)
        np.testing.assert_allclose(H[:, i], fd, atol=1e-7 * np.abs(fd).max() + 1e-12)


def test_layout_and_loss_match_torch_sequential():
    torch = pytest.importorskip("torch")
    p = MLP.teacher_student((5, 7, 3), 30, seed=2)
    w = p.init_params(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 3)
    ).double()
    torch.nn.utils.vector_to_parameters(torch.asarray(w), net.parameters())
    X, Y = torch.asarray(p.X), torch.asarray(p.Y)
    loss = torch.nn.functional.cross_entropy(net(X), Y.argmax(1))
    loss.backward()
    g = torch.cat([q.grad.reshape(-1) for q in net.parameters()]).numpy()
    assert float(p.loss(w)) == pytest.approx(loss.item(), rel=1e-13)
    np.testing.assert_allclose(p.grad(w), g, rtol=1e-10, atol=1e-14)


def test_softplus_squared_loss_and_l2_match_their_formulas():
    p = MLP.teacher_student((3, 4, 2), 10, loss="squared", activation="softplus", l2=0.3, seed=5)
    w = p.init_params(6)
    (W1, b1), (W2, b2) = p.unflatten(w)
    a = np.log1p(np.exp(p.X @ W1.T + b1))
    out = a @ W2.T + b2
    want = 0.5 * np.sum((out - p.Y) ** 2) / 10 + 0.15 * w @ w
    assert float(p.loss(w)) == pytest.approx(want, rel=1e-13)


def test_init_matches_torch_default_bounds():
    w = torch_default_init((10, 20, 5), seed=0)
    p = MLP.teacher_student((10, 20, 5), 8, seed=0)
    (W1, b1), (W2, b2) = p.unflatten(w)
    assert np.abs(W1).max() <= 1 / math.sqrt(10) and np.abs(b1).max() <= 1 / math.sqrt(10)
    assert np.abs(W2).max() <= 1 / math.sqrt(20) and np.abs(b2).max() <= 1 / math.sqrt(20)
    assert np.abs(W1).max() > 0.9 / math.sqrt(10)  # really uniform over the whole interval


def test_teacher_student_is_seeded_and_label_noise_flips_labels():
    a = MLP.teacher_student((6, 8, 4), 4000, seed=1)
    b = MLP.teacher_student((6, 8, 4), 4000, seed=1)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.Y, b.Y)
    noisy = MLP.teacher_student((6, 8, 4), 4000, seed=1, label_noise=0.4)
    changed = np.mean(noisy.Y.argmax(1) != a.Y.argmax(1))
    assert changed == pytest.approx(0.4 * 3 / 4, abs=0.03)  # a flip keeps the label w.p. 1/4
    counts = np.bincount(a.Y.argmax(1), minlength=4)
    assert counts.min() > 0  # the teacher uses every class


def test_accuracy_and_outputs():
    p = MLP.teacher_student((4, 8, 3), 50, seed=3)
    w = p.init_params(0)
    out = p.outputs(w)
    assert out.shape == (50, 3)
    acc = p.accuracy(w)
    assert acc == pytest.approx(np.mean(out.argmax(1) == p.Y.argmax(1)))
    assert p.accuracy(w, np.array([0, 1])) in (0.0, 0.5, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(widths=(3,)), "widths"),
        (dict(widths=(3, 0, 2)), "widths"),
        (dict(activation="relu"), "activation"),
        (dict(loss="hinge"), "loss"),
        (dict(l2=-1.0), "l2"),
        (dict(X=np.zeros((5, 4))), "X must have shape"),
        (dict(X=np.zeros((0, 3)), Y=np.zeros(0, dtype=int)), "empty"),
        (dict(X=np.full((5, 3), np.nan)), "non-finite"),
        (dict(Y=np.array([0, 1, 2, 3, 1])), "labels"),
        (dict(Y=np.array([0.0, 1, 1, 0, 1])), "labels"),
        (dict(Y=np.ones((5, 2))), "summing to 1"),
        (dict(Y=np.zeros((4, 2)) + 0.5), "shape"),
        (dict(Y=np.full((5, 2), np.inf), loss="squared"), "non-finite"),
    ],
)
def test_bad_inputs_raise_value_errors(kwargs, match):
    args = dict(widths=(3, 4, 2), X=np.zeros((5, 3)), Y=np.array([0, 1, 1, 0, 1]))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MLP(args.pop("widths"), args.pop("X"), args.pop("Y"), **args)
