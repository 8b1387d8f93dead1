r"""Multilayer perceptrons with exact gradients (backprop) and exact HVPs (the R-operator).

Layer :math:`l = 1..L` has weights :math:`W_l \in \mathbb R^{d_l\times d_{l-1}}` and bias
:math:`b_l \in \mathbb R^{d_l}` (PyTorch's ``nn.Linear`` layout, so ``w`` is what
``torch.nn.utils.parameters_to_vector`` gives for an ``nn.Sequential`` of linear layers):

.. math::
    a_0 = X,\quad z_l = a_{l-1} W_l^\top + b_l,\quad a_l = \varphi(z_l)\ (l<L),\quad f(X) = z_L,

    L(w) = \frac1n\sum_{i=1}^n \ell\big(f(x_i), y_i\big) + \frac{\kappa}{2}\|w\|^2,

with :math:`\ell` the softmax cross-entropy :math:`-\sum_c y_c \log\mathrm{softmax}(z)_c` or the
squared loss :math:`\tfrac12\|z - y\|^2`, and :math:`\kappa` the optional L2 coefficient.

The HVP applies the R-operator :math:`\mathcal R\{\cdot\} = \frac{d}{dt}(\cdot)(w + tV)|_{t=0}` to
the forward and backward passes (Pearlmutter 1994). Forward and backward caches are computed once
per point and reused by every HVP there. ``k`` directions are processed together with the sample
axis first (arrays of shape ``(n, k, d)``) so that every product is one large matrix product.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from xsam_theory.backend import asarray, device_of, namespace, placement, to_numpy
from xsam_theory.checks import check_real, check_seed
from xsam_theory.problems.base import HESSIAN_CHUNK_BYTES, Point, Problem

__all__ = ["ACTIVATIONS", "LOSSES", "MLP", "torch_default_init"]

LOSSES = ("cross_entropy", "squared")


@dataclass(frozen=True)
class Activation:
    r"""A smooth activation with its first two derivatives, written for any array namespace."""

    name: str

    def values(self, xp: ModuleType, z: Any) -> tuple[Any, Any, Any]:
        r""":math:`(\varphi(z), \varphi'(z), \varphi''(z))`."""
        a, d1 = self.first(xp, z)
        return a, d1, self.second(xp, a, d1)

    def first(self, xp: ModuleType, z: Any) -> tuple[Any, Any]:
        r""":math:`(\varphi(z), \varphi'(z))` (what the gradient needs)."""
        if self.name == "tanh":
            # tanh' = 1 - tanh^2
            t = xp.tanh(z)
            return t, 1.0 - t * t
        # softplus(z) = log(1 + e^z);  softplus' = sigmoid(z) = (1 + tanh(z/2))/2.
        # Written with tanh and logaddexp: no overflow.
        s = 0.5 * (1.0 + xp.tanh(0.5 * z))
        return xp.logaddexp(xp.zeros_like(z), z), s

    def second(self, xp: ModuleType, a: Any, d1: Any) -> Any:
        r""":math:`\varphi''(z)` from :math:`a = \varphi(z)` and :math:`\varphi'(z)`.

        tanh'' = :math:`-2\tanh(z)(1 - \tanh^2 z)`, softplus'' = :math:`\sigma(z)(1 - \sigma(z))`.
        """
        if self.name == "tanh":
            return -2.0 * a * d1
        return d1 * (1.0 - d1)


ACTIVATIONS = {"tanh": Activation("tanh"), "softplus": Activation("softplus")}


def _layer_widths(widths: Sequence[int]) -> tuple[int, ...]:
    """``widths`` as a tuple of ``int``, checked: at least two layer sizes, each an integer >= 1.

    ``2.5`` and ``True`` are refused, never truncated or read as 1.
    """
    try:
        sizes = tuple(widths)
    except TypeError:
        sizes = (widths,)
    if len(sizes) < 2 or any(
        isinstance(d, bool) or not isinstance(d, numbers.Integral) or d < 1 for d in sizes
    ):
        raise ValueError(f"widths must hold >= 2 layer sizes, each an integer >= 1, got {widths!r}")
    return tuple(int(d) for d in sizes)


def torch_default_init(widths: Sequence[int], seed: int | np.random.Generator = 0) -> np.ndarray:
    r"""Parameters drawn like PyTorch's ``nn.Linear`` default.

    Every weight and bias is drawn from :math:`U(-1/\sqrt{d_{l-1}}, 1/\sqrt{d_{l-1}})`
    (``kaiming_uniform_(a=√5)`` reduces to this bound). ``seed``: an integer >= 0 or a
    ``numpy.random.Generator``.
    """
    rng = np.random.default_rng(check_seed(seed, generator_ok=True))
    parts = []
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        bound = 1.0 / math.sqrt(d_in)
        parts.append(rng.uniform(-bound, bound, size=d_out * d_in))
        parts.append(rng.uniform(-bound, bound, size=d_out))
    return np.concatenate(parts)


class _MLPPoint(Point):
    problem: MLP

    def __init__(self, problem: MLP, w: Any, X: Any, Y: Any):
        super().__init__(problem, w)
        self.X, self.Y = X, Y
        self.layers = problem.unflatten(w)
        self._forward_done = False
        self._backward_done = False
        self._curvature: list[Any] | None = None

    # -- forward / backward caches ----------------------------------------------------------
    def _forward(self) -> None:
        if self._forward_done:
            return
        xp, act = self.xp, self.problem.activation
        a = self.X
        self.a, self.d1 = [a], []
        n_layers = len(self.layers)
        for l, (W, b) in enumerate(self.layers):
            z = a @ xp.matrix_transpose(W)
            z += b  # z_l = a_{l-1} W_l^T + b_l
            if l < n_layers - 1:
                a, d1 = act.first(xp, z)  # a_l = phi(z_l), phi'(z_l)
                self.a.append(a)
                self.d1.append(d1)
            else:
                self.out = z
        n = self.X.shape[0]
        if self.problem.loss_name == "cross_entropy":
            m = xp.max(self.out, axis=1, keepdims=True)
            logp = self.out - (m + xp.log(xp.sum(xp.exp(self.out - m), axis=1, keepdims=True)))
            self.P = xp.exp(logp)  # softmax(z_L)
            data_loss = -xp.sum(self.Y * logp) / n
        else:
            r = self.out - self.Y
            data_loss = 0.5 * xp.sum(r * r) / n
        kappa = self.problem.l2
        self._loss = data_loss + (0.5 * kappa) * xp.vecdot(self.w, self.w) if kappa else data_loss
        self._forward_done = True

    def _backward(self) -> None:
        if self._backward_done:
            return
        self._forward()
        xp = self.xp
        n = self.X.shape[0]
        # delta_L = dL/dz_L:  (softmax(z_L) - Y)/n  or  (z_L - Y)/n
        if self.problem.loss_name == "cross_entropy":
            delta = (self.P - self.Y) / n
        else:
            delta = (self.out - self.Y) / n
        self.deltas: list[Any] = [None] * len(self.layers)
        self.errors: list[Any] = [None] * len(self.layers)  # e_{l-1} = delta_l W_l
        grads_W, grads_b = [None] * len(self.layers), [None] * len(self.layers)
        for l in range(len(self.layers) - 1, -1, -1):
            W, _ = self.layers[l]
            self.deltas[l] = delta
            grads_W[l] = xp.matrix_transpose(delta) @ self.a[l]  # dL/dW_l = delta_l^T a_{l-1}
            grads_b[l] = xp.sum(delta, axis=0)  # dL/db_l = sum_i delta_l
            if l > 0:
                e = delta @ W  # e_{l-1} = delta_l W_l
                self.errors[l - 1] = e
                delta = self.d1[l - 1] * e  # delta_{l-1} = phi'(z) * e
        g = self.problem.flatten(grads_W, grads_b)
        if self.problem.l2:
            g = g + self.problem.l2 * self.w
        self._grad = g
        self._backward_done = True

    @property
    def loss(self) -> Any:
        self._forward()
        return self._loss

    @property
    def grad(self) -> Any:
        self._backward()
        return self._grad

    @property
    def outputs(self) -> Any:
        """Network outputs :math:`f(X) = z_L`, shape ``(n, d_L)``."""
        self._forward()
        return self.out

    # -- R-operator -----------------------------------------------------------------------
    def _curvature_terms(self) -> list[Any]:
        r""":math:`\varphi''(z_l)\odot e_l` per hidden layer, computed once per point.

        Every HVP at this point needs it; the gradient does not.
        """
        if self._curvature is None:
            act = self.problem.activation
            self._curvature = [
                act.second(self.xp, a, d1) * e for a, d1, e in zip(self.a[1:], self.d1, self.errors)
            ]
        return self._curvature

    def hvp_batch(self, V: Any) -> Any:
        r""":math:`H v_j` for each row :math:`v_j` of ``V`` by the R-operator.

        .. math::
            \mathcal R z_l = \mathcal R a_{l-1} W_l^\top + a_{l-1} V_{W_l}^\top + V_{b_l},\quad
            \mathcal R a_l = \varphi'(z_l)\odot\mathcal R z_l,

            \mathcal R\delta_L = \tfrac1n\big(P\odot\mathcal R z_L - P\,(P\cdot\mathcal R z_L)\big)
            \ \text{(cross-entropy)},\quad \tfrac1n\mathcal R z_L\ \text{(squared)},

            \mathcal R\frac{\partial L}{\partial W_l} = \mathcal R\delta_l^\top a_{l-1}
            + \delta_l^\top \mathcal R a_{l-1},\quad
            \mathcal R\frac{\partial L}{\partial b_l} = \textstyle\sum_i \mathcal R\delta_l,

            \mathcal R e_{l-1} = \mathcal R\delta_l W_l + \delta_l V_{W_l},\quad
            \mathcal R\delta_{l-1} = \varphi''(z_{l-1})\odot\mathcal R z_{l-1}\odot e_{l-1}
            + \varphi'(z_{l-1})\odot\mathcal R e_{l-1},

        plus :math:`\kappa v` for the L2 term. The directions are processed in blocks whose
        ``(n, k, width)`` intermediates stay under :meth:`MLP.hvp_block` (large temporaries
        would be page-faulted in afresh by every allocation); each block is one pass.
        """
        self._backward()
        k = V.shape[0]
        block = self.problem.hvp_block(self.X.shape[0], self.w)
        if k <= block:
            return self._hvp_block(V)
        return self.xp.concat(
            [self._hvp_block(V[i : i + block, :]) for i in range(0, k, block)], axis=0
        )

    def _hvp_block(self, V: Any) -> Any:
        xp, p = self.xp, self.problem
        k = V.shape[0]
        n = self.X.shape[0]
        VW, Vb = p.unflatten_batch(V)  # (k, d_l, d_{l-1}), (k, d_l)
        n_layers = len(self.layers)
        curvature = self._curvature_terms() if n_layers > 1 else []

        # R-forward, arrays of shape (n, k, d); every array below is this pass's own, so the
        # elementwise updates are done in place (no temporaries)
        Ra = None
        Rz_list, Ra_list = [], [None]
        for l, (W, _) in enumerate(self.layers):
            d_out, d_in = W.shape
            # a_{l-1} V_W^T for all k directions: (n, d_in) @ (d_in, k*d_out) -> (n, k, d_out)
            VW_rows = xp.reshape(VW[l], (k * d_out, d_in))
            Rz = xp.reshape(self.a[l] @ xp.matrix_transpose(VW_rows), (n, k, d_out))
            Rz += Vb[l]
            if Ra is not None:
                Rz += xp.reshape(
                    xp.reshape(Ra, (n * k, d_in)) @ xp.matrix_transpose(W), (n, k, d_out)
                )
            Rz_list.append(Rz)
            if l < n_layers - 1:
                Ra = xp.expand_dims(self.d1[l], axis=1) * Rz
                Ra_list.append(Ra)

        # R of the output error
        RzL = Rz_list[-1]
        if p.loss_name == "cross_entropy":
            P = xp.expand_dims(self.P, axis=1)
            PRz = P * RzL
            Rdelta = (PRz - P * xp.sum(PRz, axis=2, keepdims=True)) / n
        else:
            Rdelta = RzL / n

        # R-backward
        out_W, out_b = [None] * n_layers, [None] * n_layers
        for l in range(n_layers - 1, -1, -1):
            W, _ = self.layers[l]
            d_out, d_in = W.shape
            delta, a = self.deltas[l], self.a[l]
            # R dL/dW_l = Rdelta^T a_{l-1} + delta^T Ra_{l-1}
            RgW = xp.reshape(
                xp.matrix_transpose(xp.reshape(Rdelta, (n, k * d_out))) @ a, (k, d_out, d_in)
            )
            if Ra_list[l] is not None:
                t = xp.matrix_transpose(delta) @ xp.reshape(Ra_list[l], (n, k * d_in))
                RgW += xp.permute_dims(xp.reshape(t, (d_out, k, d_in)), (1, 0, 2))
            out_W[l] = RgW
            out_b[l] = xp.sum(Rdelta, axis=0)
            if l > 0:
                # R e_{l-1} = Rdelta W_l + delta V_W_l
                Re = xp.reshape(xp.reshape(Rdelta, (n * k, d_out)) @ W, (n, k, d_in))
                VW_cols = xp.reshape(xp.permute_dims(VW[l], (1, 0, 2)), (d_out, k * d_in))
                Re += xp.reshape(delta @ VW_cols, (n, k, d_in))
                # R delta_{l-1} = phi''(z) Rz e + phi'(z) Re  (phi''(z) e cached per point)
                Re *= xp.expand_dims(self.d1[l - 1], axis=1)
                Rz_prev = Rz_list[l - 1]
                Rz_prev *= xp.expand_dims(curvature[l - 1], axis=1)
                Re += Rz_prev
                Rdelta = Re
        HV = p.flatten_batch(out_W, out_b)
        if p.l2:
            HV = HV + p.l2 * V
        return HV


class MLP(Problem):
    r"""A fully connected network on fixed data (see the module docstring for the formulas).

    :math:`L(w) = \frac1n\sum_i \ell(f(x_i), y_i) + \frac{\kappa}{2}\|w\|^2`, gradient by
    backpropagation, HVPs by the R-operator (docs/algorithms.md#A-problems).

    Args:
        widths: layer widths ``(d_0, d_1, ..., d_L)``, integers >= 1; ``d_0`` inputs, ``d_L``
            outputs.
        X: inputs, shape ``(n, d_0)``.
        Y: targets. Cross-entropy: integer class labels ``(n,)`` or rows of class probabilities
            ``(n, d_L)`` (one-hot or soft, each summing to 1). Squared loss: ``(n, d_L)``.
        activation: ``"tanh"`` (default) or ``"softplus"``.
        loss: ``"cross_entropy"`` (default) or ``"squared"``.
        l2: L2 coefficient :math:`\kappa \ge 0` (adds :math:`\tfrac\kappa2\|w\|^2`).
    """

    def __init__(
        self,
        widths: Sequence[int],
        X: Any,
        Y: Any,
        *,
        activation: str = "tanh",
        loss: str = "cross_entropy",
        l2: float = 0.0,
        xp: ModuleType | None = None,
    ):
        widths = _layer_widths(widths)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        if isinstance(l2, bool) or not (math.isfinite(l2) and l2 >= 0):
            raise ValueError(f"l2 must be a finite number >= 0, got {l2!r}")
        X_np, Y_np = to_numpy(X), to_numpy(Y)
        check_real("X", X_np)
        check_real("Y", Y_np)
        if X_np.ndim != 2 or X_np.shape[1] != widths[0]:
            raise ValueError(f"X must have shape (n, {widths[0]}), got {X_np.shape}")
        n = X_np.shape[0]
        if n == 0:
            raise ValueError("X is empty: the MLP needs at least one data point")
        if not np.all(np.isfinite(X_np)):
            raise ValueError("X contains non-finite values (NaN or inf)")
        Y_np = _check_targets(Y_np, n, widths[-1], loss)
        self.widths = widths
        self.loss_name = loss
        self.activation = ACTIVATIONS[activation]
        self.l2 = float(l2)
        self.n_samples = n
        self.shapes = [(d_out, d_in) for d_in, d_out in zip(widths[:-1], widths[1:])]
        self.dim = sum(o * i + o for o, i in self.shapes)
        xp, device = placement(X, xp)
        self._xp = xp
        self.X = xp.asarray(X_np, dtype=xp.float64, device=device)
        self.Y = xp.asarray(Y_np, dtype=xp.float64, device=device)

    # -- constructors ---------------------------------------------------------------------------
    @classmethod
    def teacher_student(
        cls,
        widths: Sequence[int],
        n_samples: int = 512,
        *,
        teacher_widths: Sequence[int] | None = None,
        loss: str = "cross_entropy",
        activation: str = "tanh",
        label_noise: float = 0.0,
        l2: float = 0.0,
        seed: int = 0,
    ) -> MLP:
        r"""Data from a seeded random teacher network; the student has layer sizes ``widths``.

        :math:`x_i \sim \mathcal N(0, I_{d_0})`; the teacher (tanh, widths ``teacher_widths``,
        default ``(d_0, 64, d_L)``) is drawn with PyTorch's default init scaled up by
        :math:`\sqrt 3` per layer so that its outputs are :math:`O(1)`. Cross-entropy: the label is
        the teacher's argmax, replaced by a uniform random class with probability ``label_noise``.
        Squared loss: the target is the teacher's output plus ``label_noise`` times
        :math:`\mathcal N(0, I)`.
        """
        widths = _layer_widths(widths)
        teacher_widths = _layer_widths(teacher_widths or (widths[0], 64, widths[-1]))
        if teacher_widths[0] != widths[0] or teacher_widths[-1] != widths[-1]:
            raise ValueError(
                f"teacher_widths {teacher_widths} must share input and output sizes with {widths}"
            )
        if n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {n_samples}")
        if not (0.0 <= label_noise and math.isfinite(label_noise)):
            raise ValueError(f"label_noise must be finite and >= 0, got {label_noise}")
        if loss == "cross_entropy" and label_noise > 1.0:
            raise ValueError(f"label_noise is a probability for cross_entropy, got {label_noise}")
        rng = np.random.default_rng(check_seed(seed))
        X = rng.standard_normal((n_samples, widths[0]))
        w_teacher = math.sqrt(3.0) * torch_default_init(teacher_widths, rng)
        teacher = cls(
            teacher_widths, X, np.zeros((n_samples, widths[-1])), loss="squared", xp=_numpy_xp()
        )
        out = to_numpy(teacher.at(_numpy_xp().asarray(w_teacher)).outputs)
        if loss == "cross_entropy":
            labels = np.argmax(out, axis=1)
            flip = rng.random(n_samples) < label_noise
            labels[flip] = rng.integers(0, widths[-1], size=int(flip.sum()))
            Y = labels
        else:
            Y = out + label_noise * rng.standard_normal(out.shape)
        return cls(widths, X, Y, activation=activation, loss=loss, l2=l2)

    def init_params(self, seed: int | np.random.Generator = 0) -> Any:
        """Initial parameters drawn like PyTorch's ``nn.Linear`` default.

        See :func:`torch_default_init`.
        """
        return asarray(torch_default_init(self.widths, seed), like=self.X)

    # -- layout ---------------------------------------------------------------------------------
    def unflatten(self, w: Any) -> list[tuple[Any, Any]]:
        """Split ``w`` into ``[(W_1, b_1), ..., (W_L, b_L)]`` (views where the backend allows)."""
        xp, out, off = namespace(w), [], 0
        for d_out, d_in in self.shapes:
            W = xp.reshape(w[off : off + d_out * d_in], (d_out, d_in))
            off += d_out * d_in
            out.append((W, w[off : off + d_out]))
            off += d_out
        return out

    def unflatten_batch(self, V: Any) -> tuple[list[Any], list[Any]]:
        """Split the rows of ``V`` (shape ``(k, dim)``) into per-layer arrays.

        The arrays have shapes ``(k, d_l, d_{l-1})`` and ``(k, d_l)``.
        """
        xp, k, off = namespace(V), V.shape[0], 0
        Ws, bs = [], []
        for d_out, d_in in self.shapes:
            Ws.append(xp.reshape(V[:, off : off + d_out * d_in], (k, d_out, d_in)))
            off += d_out * d_in
            bs.append(V[:, off : off + d_out])
            off += d_out
        return Ws, bs

    def flatten(self, Ws: Sequence[Any], bs: Sequence[Any]) -> Any:
        """Inverse of :meth:`unflatten`."""
        xp = namespace(Ws[0])
        return xp.concat([t for W, b in zip(Ws, bs) for t in (xp.reshape(W, (-1,)), b)])

    def flatten_batch(self, Ws: Sequence[Any], bs: Sequence[Any]) -> Any:
        """Inverse of :meth:`unflatten_batch`."""
        xp = namespace(Ws[0])
        k = Ws[0].shape[0]
        return xp.concat([t for W, b in zip(Ws, bs) for t in (xp.reshape(W, (k, -1)), b)], axis=1)

    # -- protocol -------------------------------------------------------------------------------
    @property
    def xp(self) -> ModuleType:
        """The array namespace of the data ``X`` and ``Y``."""
        return self._xp

    def at(self, w: Any, batch: Any = None) -> _MLPPoint:
        """The loss and its derivatives at ``w`` on samples ``batch`` (``None``: all samples)."""
        idx = self._batch_indices(batch)
        self._check_point(w)
        if idx is None:
            X, Y = self.X, self.Y
        else:
            i = self._xp.asarray(idx, device=device_of(self.X))
            X, Y = self._xp.take(self.X, i, axis=0), self._xp.take(self.Y, i, axis=0)
        return _MLPPoint(self, w, X, Y)

    def outputs(self, w: Any, batch: Any = None) -> Any:
        """Network outputs :math:`f(X)` on ``batch``."""
        return self.at(w, batch).outputs

    def accuracy(self, w: Any, batch: Any = None) -> float:
        """Fraction of samples whose argmax output matches the argmax target (classification)."""
        point = self.at(w, batch)
        xp = self._xp
        hit = xp.argmax(point.outputs, axis=1) == xp.argmax(point.Y, axis=1)
        return float(xp.mean(xp.astype(hit, xp.float64)))

    def convert(self, xp: ModuleType, device: Any = None) -> MLP:
        """The same MLP with its data in namespace ``xp`` (on ``device``)."""
        new = object.__new__(MLP)
        new.__dict__.update(self.__dict__)
        new._xp = xp
        new.X = xp.asarray(to_numpy(self.X), dtype=xp.float64, device=device)
        new.Y = xp.asarray(to_numpy(self.Y), dtype=xp.float64, device=device)
        return new

    def hessian_chunk(self) -> int:
        """How many directions one batched HVP takes when the dense Hessian is assembled.

        About eight ``(n, k, width)`` float64 arrays are live per batched HVP; ``k`` keeps them
        under :data:`HESSIAN_CHUNK_BYTES`.
        """
        # ~8 live (n, k, width) float64 arrays per batched HVP
        n, width = self.n_samples, max(self.widths)
        return max(1, min(self.dim, HESSIAN_CHUNK_BYTES // (8 * 8 * n * width)))

    def hvp_block(self, n: int, like: Any) -> int:
        """How many directions one R-operator pass takes on ``n`` samples.

        As many as keep each ``(n, k, width)`` float64 intermediate under :data:`HVP_BLOCK_BYTES`
        on a CPU (larger temporaries are fresh ``mmap`` regions that the kernel zero-fills page by
        page on every allocation, which costs more than the wider matrix products gain), and under
        1 GiB on an accelerator.
        """
        budget = HVP_BLOCK_BYTES if _on_cpu(like) else 2**30
        return max(1, budget // (8 * n * max(self.widths)))


def _check_targets(Y: np.ndarray, n: int, n_out: int, loss: str) -> np.ndarray:
    if loss == "cross_entropy":
        if Y.ndim == 1:
            if Y.shape[0] != n:
                raise ValueError(f"labels must have shape ({n},), got {Y.shape}")
            if not np.issubdtype(Y.dtype, np.integer) or Y.min() < 0 or Y.max() >= n_out:
                raise ValueError(
                    f"labels must be integers in [0, {n_out}), got {Y.dtype} "
                    f"in [{Y.min()}, {Y.max()}]"
                )
            return np.eye(n_out)[Y]
        if Y.shape != (n, n_out):
            raise ValueError(f"Y must have shape ({n}, {n_out}) or ({n},), got {Y.shape}")
        if not np.all(np.isfinite(Y)) or np.any(Y < 0) or not np.allclose(Y.sum(axis=1), 1.0):
            raise ValueError("cross-entropy targets must be finite, non-negative rows summing to 1")
        return Y.astype(float)
    if Y.ndim == 1 and n_out == 1:
        Y = Y[:, None]
    if Y.shape != (n, n_out):
        raise ValueError(f"Y must have shape ({n}, {n_out}), got {Y.shape}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("Y contains non-finite values (NaN or inf)")
    return Y.astype(float)


#: CPU memory budget (bytes) of one ``(n, k, width)`` intermediate of a batched HVP. Measured
#: on the reference problem (docs/performance.md#perf-T2): 1 MiB blocks are as fast as or
#: faster than 4 and 16 MiB everywhere, up to 3x (medium model, 16 directions on 128 samples).
HVP_BLOCK_BYTES = 2**20


def _on_cpu(x: Any) -> bool:
    """Whether ``x`` lives in host memory.

    NumPy: ``"cpu"``; torch: ``device(type="cpu")``; array_api_strict: ``CPU_DEVICE``.
    """
    device = device_of(x)
    return getattr(device, "type", None) == "cpu" or "cpu" in str(device).lower()


def _numpy_xp() -> ModuleType:
    import array_api_compat.numpy as xp_numpy

    return xp_numpy
