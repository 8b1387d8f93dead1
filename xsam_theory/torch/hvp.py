r"""Hessian-vector products of a scalar loss with respect to a list of parameters (autograd).

Two modes:

* **double backward** (:class:`GradientGraph`): one backward pass with ``create_graph=True``
  gives :math:`g = \nabla L` *with its graph*; every HVP is then one more backward pass through
  that graph, :math:`Hv = \nabla_w \langle g, v\rangle`, reusing the forward pass and the first
  backward (``retain_graph=True``). On the CPU this is the faster mode
  (docs/performance.md#perf-anchors: 1.6–2.0x a gradient when the graph is reused, 2.6–3.1x
  fresh).
* **forward-over-reverse** (:func:`forward_over_reverse_hvp`): ``torch.func.jvp`` of
  ``torch.func.grad``, :math:`Hv = \frac{d}{dt}\nabla L(w + tv)|_{t=0}`; no graph is kept, but
  every HVP redoes the forward and backward passes (3.2–8x a gradient on the CPU). The loss must
  be a pure function of the parameters (no in-place buffer updates, e.g. BatchNorm in train
  mode, inside the transform).

Parameters are a list of tensors, the layout of ``torch.nn.utils.parameters_to_vector``:
:func:`flatten` and :func:`unflatten` convert between that list and one flat vector, with a
parameter that has no gradient (``None``, it does not influence the loss) standing for zeros.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "GradientGraph",
    "flatten",
    "forward_over_reverse_hvp",
    "module_loss_function",
    "unflatten",
]


def _check_params(params: Sequence[Tensor]) -> None:
    if not params:
        raise ValueError("no parameters given")
    dtypes = {p.dtype for p in params}
    devices = {p.device for p in params}
    if len(dtypes) > 1 or len(devices) > 1:
        raise ValueError(
            "all parameters must share one dtype and one device to form a flat vector, got "
            f"dtypes {sorted(map(str, dtypes))} and devices {sorted(map(str, devices))}"
        )


def flatten(tensors: Sequence[Tensor | None], params: Sequence[Tensor]) -> Tensor:
    """One flat vector from per-parameter tensors; ``None`` stands for zeros of that shape.

    >>> p = [torch.zeros(2, 2), torch.zeros(3)]
    >>> flatten([torch.ones(2, 2), None], p).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """
    if len(tensors) != len(params):
        raise ValueError(f"got {len(tensors)} tensors for {len(params)} parameters")
    parts = [
        torch.zeros(p.numel(), dtype=p.dtype, device=p.device) if t is None else t.reshape(-1)
        for t, p in zip(tensors, params)
    ]
    return torch.cat(parts)


def unflatten(flat: Tensor, params: Sequence[Tensor]) -> list[Tensor]:
    """Split a flat vector into views shaped like ``params`` (inverse of :func:`flatten`)."""
    sizes = [p.numel() for p in params]
    if flat.ndim != 1 or flat.shape[0] != sum(sizes):
        raise ValueError(f"flat vector must have shape ({sum(sizes)},), got {tuple(flat.shape)}")
    return [t.view_as(p) for t, p in zip(torch.split(flat, sizes), params)]


class GradientGraph:
    r"""The gradient of ``loss`` with respect to ``params``, with its graph kept for HVPs.

    ``GradientGraph(loss, params)`` runs one backward pass with ``create_graph=True``.
    :attr:`grads` holds the detached per-parameter gradients (``None`` where a parameter does
    not influence the loss); :meth:`hvp` applies the Hessian to a flat vector by one more
    backward pass through the kept graph:

    .. math::
        Hv = \nabla_w \langle \nabla L(w), v\rangle .

    Each call counts one HVP in :attr:`n_hvp`. Call :meth:`release` (or drop the object) to
    free the graph.

    >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    >>> gg = GradientGraph((w[0] ** 2 * w[1]), [w])       # H = [[2 w1, 2 w0], [2 w0, 0]]
    >>> gg.hvp(torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
    [4.0, 2.0]
    """

    def __init__(self, loss: Tensor, params: Sequence[Tensor]):
        params = list(params)
        _check_params(params)
        if loss.ndim != 0:
            raise ValueError(f"loss must be a scalar tensor, got shape {tuple(loss.shape)}")
        if not loss.requires_grad:
            raise ValueError("loss does not depend on any parameter that requires grad")
        self.params = params
        graph = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        self._graph: list[Tensor | None] = list(graph)
        self.grads: list[Tensor | None] = [None if g is None else g.detach() for g in graph]
        self.n_hvp = 0

    def hvp(self, v: Tensor) -> Tensor:
        """:math:`Hv` for a flat vector ``v`` (one double-backward pass)."""
        self.n_hvp += 1
        vs = unflatten(v, self.params)
        # Gradient entries that are constant in w (no graph) contribute H = 0 there.
        pairs = [(g, u) for g, u in zip(self._graph, vs) if g is not None and g.requires_grad]
        if not pairs:
            return torch.zeros_like(v)
        outs, grad_outputs = zip(*pairs)
        hv = torch.autograd.grad(
            outs, self.params, grad_outputs=grad_outputs, retain_graph=True, allow_unused=True
        )
        return flatten(hv, self.params)

    def release(self) -> None:
        """Free the kept graph; :meth:`hvp` can no longer be called."""
        self._graph = [None] * len(self.params)


def forward_over_reverse_hvp(
    func: Callable[..., Tensor], params: Sequence[Tensor], v: Tensor
) -> Tensor:
    r""":math:`Hv` by forward-mode differentiation of the reverse-mode gradient (``torch.func``).

    ``func(*tensors)`` returns the scalar loss as a pure function of tensors shaped like
    ``params``; ``v`` is a flat vector. Computes
    :math:`\frac{d}{dt}\nabla L(w + tv)\big|_{t=0}` with one ``jvp`` of ``grad``.

    >>> w = torch.tensor([1.0, 2.0], dtype=torch.float64)
    >>> forward_over_reverse_hvp(lambda t: t[0] ** 2 * t[1], [w],
    ...                          torch.tensor([1.0, 0.0], dtype=torch.float64)).tolist()
    [4.0, 2.0]
    """
    params = [p.detach() for p in params]
    _check_params(params)
    argnums = tuple(range(len(params)))
    grad_fn = torch.func.grad(func, argnums=argnums)
    _, tangent = torch.func.jvp(grad_fn, tuple(params), tuple(unflatten(v, params)))
    return flatten(list(tangent), params)


class _ClosureModule(torch.nn.Module):
    """A model and a closure wrapped for ``torch.func.functional_call``.

    ``functional_call`` can then substitute the model's parameters while the closure (which calls
    the model) runs.
    """

    def __init__(self, model: torch.nn.Module, closure: Callable[[], Tensor]):
        super().__init__()
        self.model = model
        self._closure = closure

    def forward(self) -> Tensor:
        return self._closure()


def module_loss_function(
    model: torch.nn.Module, closure: Callable[[], Tensor], params: Sequence[Tensor]
) -> Callable[..., Tensor]:
    """``func(*tensors)``: the loss ``closure()`` computes with ``params`` replaced by ``tensors``.

    Uses public ``torch.func.functional_call``; the model's other parameters and its buffers stay
    its own. For :func:`forward_over_reverse_hvp`.
    """
    by_id = {id(p): name for name, p in model.named_parameters()}
    missing = [i for i, p in enumerate(params) if id(p) not in by_id]
    if missing:
        raise ValueError(f"parameters at positions {missing} are not parameters of the model")
    names = ["model." + by_id[id(p)] for p in params]
    shim = _ClosureModule(model, closure)

    def func(*tensors: Any) -> Tensor:
        return torch.func.functional_call(shim, dict(zip(names, tensors)), ())

    return func
