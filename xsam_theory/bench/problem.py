"""The reference problem and its torch twin."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xsam_theory.bench.config import (
    MINIBATCH,
    MODELS,
    N_SAMPLES,
    TEACHER,
    BenchConfig,
    torch_or_none,
)

__all__ = [
    "TorchStudent",
    "gradient_flops",
    "n_params",
    "problem_on_backend",
    "reference_problem",
    "sync_for",
    "to_backend",
]


def reference_problem(model: str) -> Any:
    """The bench's problem: a teacher-student MLP.

    X ~ N(0, 1) of shape (2048, 32) (seed 0), labels the argmax of a random tanh teacher
    32-64-10, mean softmax cross-entropy, student ``MODELS[model]``.

    Args:
        model: a key of :data:`~xsam_theory.bench.config.MODELS`.

    Returns:
        The :class:`~xsam_theory.problems.mlp.MLP` problem.
    """
    from xsam_theory.problems.mlp import MLP

    return MLP.teacher_student(MODELS[model], N_SAMPLES, teacher_widths=TEACHER, seed=0)


def n_params(widths: Sequence[int]) -> int:
    """Parameters of an MLP: ``sum(o i + o)`` over its layers ``i -> o``."""
    return sum(o * i + o for i, o in zip(widths[:-1], widths[1:]))


def gradient_flops(widths: Sequence[int], n: int) -> float:
    """FLOPs of one gradient on ``n`` points: 2 x the forward's, plus the hidden backward.

    Each layer ``i -> o`` costs ``2 n i o`` (multiply-add) in the forward and in its weight
    gradient; the backward products into every hidden layer add ``2 n i o`` for each layer but
    the first.
    """
    pairs = list(zip(widths[:-1], widths[1:]))
    fwd = sum(2.0 * n * i * o for i, o in pairs)
    back_in = sum(2.0 * n * i * o for i, o in pairs[1:])
    return 2.0 * fwd + back_in


def sync_for(cfg: BenchConfig) -> Callable[[], None] | None:
    """``torch.cuda.synchronize`` on a CUDA run, else ``None``."""
    torch = torch_or_none()
    if torch is not None and cfg.cuda:
        return torch.cuda.synchronize
    return None


def problem_on_backend(cfg: BenchConfig, model: str) -> tuple[Any, Any, Any]:
    """The problem, its start point (``init_params(1)``) and the minibatch, on the backend.

    Returns:
        ``(problem, w, batch)`` with ``batch = arange(MINIBATCH)``, all on ``cfg``'s backend
        and device.
    """
    problem = reference_problem(model)
    w = problem.init_params(1)
    batch = np.arange(MINIBATCH)
    if cfg.backend == "torch":
        from xsam_theory.backend import resolve_backend

        xp, dev = resolve_backend("torch", cfg.device)
        problem = problem.convert(xp, dev)
        import torch

        w = torch.tensor(np.asarray(w), device=dev)
        batch = torch.as_tensor(batch, device=dev)
    return problem, w, batch


def to_backend(op: Any, x: Any) -> Any:
    """``x`` as an array of the operator ``op``'s namespace and device."""
    from xsam_theory.spectral.results import _to_backend

    return _to_backend(op, x)


class TorchStudent:
    """The student as an ``nn.Sequential`` on a device, with autograd gradient and HVPs."""

    def __init__(
        self, torch: Any, problem: Any, w: np.ndarray, batch: np.ndarray | None, device: Any
    ):
        """Build the network with parameters ``w`` on ``device`` (first ``len(batch)`` points)."""
        from xsam_theory.torch.hvp import GradientGraph, forward_over_reverse_hvp

        self.torch = torch
        self.F = torch.nn.functional
        self._graph, self._forward_over_reverse = GradientGraph, forward_over_reverse_hvp
        self.net = _sequential(torch, problem.widths).double().to(device)
        torch.nn.utils.vector_to_parameters(torch.tensor(w, device=device), self.net.parameters())
        X = torch.tensor(np.asarray(problem.X), device=device)
        y = torch.tensor(np.asarray(problem.Y).argmax(1), device=device)
        if batch is not None:
            X, y = X[: len(batch)], y[: len(batch)]
        self.X, self.y = X, y
        self.params = list(self.net.parameters())
        self.names = [n for n, _ in self.net.named_parameters()]

    def loss(self) -> Any:
        """Mean cross-entropy of the network on its data."""
        return self.F.cross_entropy(self.net(self.X), self.y)

    def grad(self) -> Any:
        """The gradient by ``torch.autograd.grad``."""
        return self.torch.autograd.grad(self.loss(), self.params)

    def graph(self) -> Any:
        """The gradient with its graph kept, for HVPs that reuse it."""
        return self._graph(self.loss(), self.params)

    def hvp_fresh(self, v: Any) -> Any:
        """``H v`` by double backward through a new gradient graph."""
        return self.graph().hvp(v)

    def hvp_forward_over_reverse(self, v: Any) -> Any:
        """``H v`` by forward-mode differentiation of the reverse-mode gradient."""
        torch = self.torch

        def f(*ps: Any) -> Any:
            out = torch.func.functional_call(self.net, dict(zip(self.names, ps)), (self.X,))
            return self.F.cross_entropy(out, self.y)

        return self._forward_over_reverse(f, self.params, v)


def _sequential(torch: Any, widths: Sequence[int]) -> Any:
    """Linear layers ``widths[i] -> widths[i+1]`` with ``tanh`` between them."""
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        if i:
            layers.append(torch.nn.Tanh())
        layers.append(torch.nn.Linear(a, b))
    return torch.nn.Sequential(*layers)
