r"""``torch.optim`` optimizers of the SAM family for any ``nn.Module``.

The API is the one practitioners know from davda54/sam: the optimizer wraps a *base* optimizer
(``torch.optim.SGD`` by default), shares its ``param_groups`` (so LR schedulers work), and offers
``first_step`` / ``second_step`` for a hand-written loop and ``step(closure)`` for the whole
thing::

    opt = XSAM(model.parameters(), torch.optim.SGD, rho=0.05, alpha=0.2, lr=0.1, momentum=0.9)
    opt = optimizer("xsam_symmetric", model.parameters(), lr=0.1, rho=0.05, alpha=0.2)

    def closure():                        # returns the loss; does NOT call backward
        return loss_fn(model(x), y)

    loss = opt.step(closure)

**Names.** The methods are named by the presets of :data:`xsam_theory.optimizers.PRESETS`
(``gd``, ``usam``, ``sam``, ``nsam``, ``eigen_sam``, ``xsam``, ``xsam_paper``,
``xsam_symmetric``, ``xsam_projector``, ``xsam_raw_projection``): :func:`optimizer` (or
:meth:`SAMFamily.from_preset`) builds any of them, and its ``config`` equals
``preset(name, ...)``. :class:`SAM`, :class:`USAM`, :class:`EigenSAM` and :class:`XSAM` are
named shortcuts (their :attr:`~SAMFamily.preset` says which), the last two with the authors'
training loop as their default options.

**The closure differs from davda54/sam: it must not call** ``backward()``. The optimizer
differentiates the loss itself so that, on steps where the eigenvector is refreshed, it can keep
the gradient's graph and compute Hessian-vector products by double backward without another
forward pass. A closure that calls ``backward()`` is detected and rejected.

Every decision of a step (refresh due, before or after the first ``v``, which perturbation and
which direction, the counters) is a rule of :mod:`xsam_theory.optimizers.rules`, and every
update one of the package's pure maps on flat vectors
(:mod:`xsam_theory.optimizers.directions`), both shared with the NumPy step; this module only
flattens the parameter groups, saves ``w`` and writes the results back. Every option is validated
by :class:`~xsam_theory.optimizers.OptimizerConfig`.

What the reference implementations get wrong, and what happens here:

* **Parameters whose** ``.grad`` **is None** (unused in the loss, or frozen with
  ``requires_grad=False``). The reference code concatenates only the gradients that exist and
  dots them with an eigenvector that covers all parameters, so every later entry is misaligned.
  Here every flat vector covers exactly the parameters of ``param_groups`` that require grad, in
  order; a missing gradient is a block of zeros. The start vector of the eigensolver is zero on
  parameters without a gradient at the refresh, so ``v`` is exactly zero there. A parameter whose
  gradient is None in the second pass is not updated (its ``.grad`` stays None, as every torch
  optimizer expects).
* **Zero gradients** are never divided by their norm (no ``+1e-12``): where ``g = 0`` the
  perturbation is exactly 0, where ``g_adv = 0`` the normalized direction is exactly 0.
* **Exceptions between the two passes.** If anything raises after the ascent (the closure in the
  second pass, a hook), ``step(closure)`` puts the weights back at ``w`` and undoes the step's
  refresh and counters before re-raising, so the next step starts where this one did. In a
  hand-written loop, :meth:`~SAMFamily.undo_ascent` does the same for the weights, and a second
  :meth:`~SAMFamily.first_step` without :meth:`~SAMFamily.second_step` restores ``w`` and
  refuses (its ``.grad`` was computed at ``w + ε``). BatchNorm's running statistics of a failed
  pass are not undone.
* **Non-finite losses and gradients** are never written into the weights: a NaN or inf loss, a
  non-finite gradient at ``w`` or at ``w + ε`` raises
  :class:`~xsam_theory.NonFiniteError` naming the step, with the weights at ``w``. (This costs
  one host synchronisation per pass.)
* **BatchNorm and dropout.** Which Hessian the eigenvector belongs to is the option
  ``hessian_mode``: ``"train"`` is the Hessian of exactly the loss the closure computes, in the
  mode the model is in (on refresh steps the gradient's own graph is reused, so the batch
  statistics and the dropout mask are those of the gradient, and BatchNorm's running statistics
  are updated once, as in a plain step); ``"eval"`` (the reference code's choice) evaluates the
  closure once more with ``model.eval()`` for the HVPs, *before* the step's first train-mode
  pass (the order of the two-pass API and of the reference code, so ``v`` sees the running
  statistics of the previous step), and restores every module's own mode afterwards. The
  optimizer never switches modes unless told to: a ``model`` containing BatchNorm or dropout with
  ``hessian_mode`` left unset is an error.
* **Epochs.** The reference schedule counts steps per epoch. Give ``steps_per_epoch``
  (``len(loader)``) or call :meth:`~SAMFamily.new_epoch` at the start of every epoch; an
  eigenvector method on the reference schedule with neither warns once, on its first step.

The whole API, with what is not supported (DDP for the eigenvector methods, AMP):
docs/algorithms.md#A-torch-optimizers; the formulas of the presets: docs/algorithms.md#A-presets;
where the package departs from the reference code: docs/algorithms.md#A-deviations.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xsam_theory.optimizers import rules
from xsam_theory.optimizers.config import (
    REFERENCE_OPTIONS,
    CorrectionRule,
    EigvecSource,
    OptimizerConfig,
    preset,
)
from xsam_theory.optimizers.step import learning_rate
from xsam_theory.torch.hvp import (
    GradientGraph,
    flatten,
    forward_over_reverse_hvp,
    module_loss_function,
    unflatten,
)
from xsam_theory.torch.lanczos import lanczos_top, power_iteration
from xsam_theory.trajectory import NonFiniteError

__all__ = [
    "SAM",
    "USAM",
    "XSAM",
    "EigenSAM",
    "SAMFamily",
    "lr_lambda",
    "optimizer",
    "optimizer_from_config",
]

Closure = Callable[[], Tensor]

#: OptimizerConfig fields that the SAM-family optimizer owns whatever the base optimizer; with
#: another base than SGD every other keyword goes to the base optimizer.
CONFIG_KEYS = (
    "rho",
    "alpha",
    "perturbation",
    "sign_rule",
    "normalize",
    "coefficient",
    "eigvec_source",
    "refresh_every",
    "power_steps",
    "eigen_tol",
    "eigvec_sign",
    "schedule",
    "steps_per_epoch",
)
#: Every OptimizerConfig option: with SGD as the base all of them belong to the configuration
#: (SGD's lr, momentum and weight decay are the package's).
ALL_CONFIG_KEYS = tuple(f.name for f in dataclasses.fields(OptimizerConfig) if f.name != "method")

HESSIAN_MODES = ("train", "eval")
HVP_MODES = ("double_backward", "forward_over_reverse")
#: the counters that describe the schedule's position (undone with a failed step); ``n_grad``
#: and ``n_hvp`` count work spent and are kept
_SCHEDULE_COUNTERS = ("step", "epoch_step", "refreshes")


def lr_lambda(config: OptimizerConfig) -> Callable[[int], float]:
    r"""The factor :math:`\eta_t/\eta_0` of ``config.lr_schedule`` for ``LambdaLR``.

    Step ``torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(config))`` once per optimizer step.
    The schedules (:math:`1`, :math:`1/\sqrt{t+1}`, :math:`(1+\cos(\pi\min(t,T)/T))/2`):
    docs/algorithms.md#A-lr-schedules.

    Args:
        config: the configuration whose ``lr_schedule`` to follow.

    Returns:
        ``t -> learning_rate(config, t) / config.lr``.
    """
    return lambda t: learning_rate(config, t) / config.lr


def _has_mode_dependent_layers(model: torch.nn.Module) -> bool:
    """Whether ``model`` computes a different loss in train and eval mode (BatchNorm, dropout)."""
    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
    return any(isinstance(m, kinds) for m in model.modules())


def _check_arguments(
    config: Any,
    base_optimizer: Any,
    lanczos_steps: Any,
    hessian_mode: Any,
    hvp_mode: Any,
    model: Any,
) -> None:
    """Raise ``ValueError`` naming the first invalid constructor argument."""
    if not isinstance(config, OptimizerConfig):
        raise ValueError(f"config must be an OptimizerConfig, got {type(config).__name__}")
    if not (isinstance(base_optimizer, type) and issubclass(base_optimizer, torch.optim.Optimizer)):
        raise ValueError(
            "base_optimizer must be a torch.optim.Optimizer class (e.g. "
            f"torch.optim.SGD), got {base_optimizer!r}"
        )
    if isinstance(lanczos_steps, bool) or not isinstance(lanczos_steps, int) or lanczos_steps < 1:
        raise ValueError(f"lanczos_steps must be an integer >= 1, got {lanczos_steps!r}")
    if hessian_mode is not None and hessian_mode not in HESSIAN_MODES:
        raise ValueError(f"hessian_mode must be one of {HESSIAN_MODES}, got {hessian_mode!r}")
    if hvp_mode not in HVP_MODES:
        raise ValueError(f"hvp_mode must be one of {HVP_MODES}, got {hvp_mode!r}")
    if model is not None and not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")


def _check_eigvec_setup(
    hessian_mode: str | None, hvp_mode: str, model: torch.nn.Module | None
) -> None:
    """Raise ``ValueError`` when the Hessian of an eigenvector method is ill-defined here."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        raise ValueError(
            "Eigen-SAM / X-SAM under DistributedDataParallel are not supported: the "
            "double-backward HVPs bypass DDP's gradient synchronisation, so each replica "
            "would compute its own eigenvector (see docs/algorithms.md#A-torch-optimizers)"
        )
    if hessian_mode is None and model is not None and _has_mode_dependent_layers(model):
        raise ValueError(
            "the model has BatchNorm or dropout layers, so the Hessian depends on the "
            "mode: pass hessian_mode='train' (the closure's loss as it is) or 'eval' "
            "(model.eval() for the HVPs, as in the reference code)"
        )
    if hessian_mode == "eval" and model is None:
        raise ValueError("hessian_mode='eval' needs model= (the module to switch)")
    if hvp_mode == "forward_over_reverse" and model is None:
        raise ValueError(
            "hvp_mode='forward_over_reverse' needs model= (for torch.func.functional_call)"
        )


_TORCH_DIR = os.path.dirname(torch.__file__)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this module and torch.

    (torch wraps ``step`` in its own hooks and ``no_grad``, so the depth is not fixed.)
    """
    frame, level = inspect.currentframe(), 1
    while frame is not None and (
        frame.f_code.co_filename == __file__ or frame.f_code.co_filename.startswith(_TORCH_DIR)
    ):
        frame, level = frame.f_back, level + 1
    return level - 1


def _all_finite(tensors: list[Tensor | None]) -> Tensor:
    """A boolean tensor: every entry of every given tensor is finite (no host sync)."""
    flags = [torch.isfinite(x).all() for x in tensors if x is not None]
    return torch.stack(flags).all() if flags else torch.tensor(True)


class SAMFamily(torch.optim.Optimizer):
    r"""GD, SAM, USAM, Eigen-SAM and every X-SAM form as one ``torch.optim.Optimizer``.

    Build one by preset name with :func:`optimizer` / :meth:`from_preset`, from a configuration
    with :func:`optimizer_from_config`, or through a named shortcut (:class:`SAM`, ...).

    One step on the flattened parameters :math:`w`: refresh ``v`` when due, then

    .. math::
        \varepsilon = \text{perturbation}(g, v),\quad
        g_{adv} = \nabla L(w + \varepsilon),\quad d = \text{direction}(g_{adv}, v),

    with the rules of :mod:`xsam_theory.optimizers.rules`, after which the base optimizer steps
    with :math:`d` as the gradient (for SGD: :math:`b \leftarrow \mu b + d + \lambda_{wd} w`,
    :math:`w \leftarrow w - \eta b`). The API: docs/algorithms.md#A-torch-optimizers.

    Args:
        params: parameters or parameter groups (as for any torch optimizer).
        base_optimizer: the base optimizer *class* (default ``torch.optim.SGD``); it is built on
            the same ``param_groups``, which this optimizer then shares.
        config: the method and its options (:class:`~xsam_theory.optimizers.OptimizerConfig`,
            e.g. from :func:`~xsam_theory.optimizers.preset`). Its ``lr``, ``momentum``,
            ``weight_decay`` and ``lr_schedule`` are *not* used here: those belong to the base
            optimizer and to a torch LR scheduler (see :func:`optimizer_from_config`).
        lanczos_steps: Krylov dimension of the torch-native Lanczos (``eigvec_source="lanczos"``);
            capped at the number of parameters.
        hessian_mode: ``"train"`` | ``"eval"`` (see the module docstring); required when
            ``model`` contains BatchNorm or dropout and the method uses an eigenvector.
        model: the ``nn.Module`` the parameters belong to; needed for ``hessian_mode="eval"``
            and ``hvp_mode="forward_over_reverse"``, and checked for BatchNorm/dropout.
        hvp_mode: ``"double_backward"`` (default; reuses the gradient's graph on refresh steps
            in train mode) or ``"forward_over_reverse"`` (``torch.func``; needs ``model``).
        seed: seeds the eigensolver's first start vector (NumPy ``default_rng(seed)``, the same
            vector as :func:`xsam_theory.optimizers.init_state`).
        **base_kwargs: passed to ``base_optimizer`` (``lr``, ``momentum``, ...).

    Attributes:
        PRESET: the preset a class stands for (``None`` for this general class).
        preset: the preset name this optimizer was built from, or ``None`` (built from a
            configuration).
        last_info: diagnostics of the last step as tensors (no host synchronisation):
            ``loss``, ``grad_norm``, ``adv_grad_norm``, ``direction_norm``, ``c``,
            ``eigenvalue``, ``refreshed``.
        n_grad, n_hvp: gradients and HVPs spent so far.

    Raises:
        ValueError: an invalid argument, named.
    """

    PRESET: str | None = None

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type = torch.optim.SGD,
        config: OptimizerConfig | None = None,
        *,
        lanczos_steps: int = 20,
        hessian_mode: str | None = None,
        model: torch.nn.Module | None = None,
        hvp_mode: str = "double_backward",
        seed: int = 0,
        **base_kwargs: Any,
    ):
        config = OptimizerConfig() if config is None else config
        _check_arguments(config, base_optimizer, lanczos_steps, hessian_mode, hvp_mode, model)
        if config.uses_eigvec:
            _check_eigvec_setup(hessian_mode, hvp_mode, model)
        self.config = config
        self.preset = self.PRESET
        self.lanczos_steps = lanczos_steps
        self.hessian_mode = hessian_mode or "train"
        self.hvp_mode = hvp_mode
        self.model = model
        self.seed = int(seed)
        super().__init__(params, dict(base_kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self._counters = {"step": 0, "epoch_step": 0, "n_grad": 0, "n_hvp": 0, "refreshes": 0}
        self._eigenvalue: Tensor | float = math.nan
        self._refreshed_at: int | None = None
        self._pending: dict[str, Any] | None = None
        self._epoch_restarted = False
        self._warned_epoch = False
        self.last_info: dict[str, Any] = {}

    @classmethod
    def from_preset(
        cls, name: str, params: Iterable[Any], base_optimizer: type = torch.optim.SGD, **kwargs: Any
    ) -> SAMFamily:
        """The optimizer of preset ``name`` (same as :func:`optimizer`).

        Args:
            name: a key of :data:`xsam_theory.optimizers.PRESETS`.
            params: parameters or parameter groups.
            base_optimizer: the base optimizer class.
            **kwargs: options of the preset, of :class:`SAMFamily` and of the base optimizer.

        Returns:
            A :class:`SAMFamily` whose ``config`` is ``preset(name, **options)``.
        """
        return optimizer(name, params, base_optimizer, **kwargs)

    # -- bookkeeping ------------------------------------------------------------------------
    def _params(self) -> list[Tensor]:
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        if not params:
            raise ValueError("the optimizer has no parameter that requires grad")
        return params

    @property
    def n_grad(self) -> int:
        """Gradients evaluated so far."""
        return self._counters["n_grad"]

    @property
    def n_hvp(self) -> int:
        """Hessian-vector products evaluated so far."""
        return self._counters["n_hvp"]

    @property
    def steps_taken(self) -> int:
        """Completed steps (the global step index ``t`` of the next step)."""
        return self._counters["step"]

    @property
    def eigenvector(self) -> Tensor | None:
        """The current unit eigenvector estimate ``v`` as a flat vector, or ``None``."""
        return self._v(self._params())

    @property
    def eigenvalue(self) -> Tensor | float:
        """The eigenvalue estimate of the last refresh (NaN before the first)."""
        return self._eigenvalue

    def _v(self, params: list[Tensor]) -> Tensor | None:
        parts = [self.state[p].get("eigvec") for p in params]
        if all(part is None for part in parts):
            return None
        return flatten(parts, params)

    def _set_v(self, v: Tensor, params: list[Tensor]) -> None:
        for p, part in zip(params, unflatten(v, params)):
            self.state[p]["eigvec"] = part.detach().clone()

    @property
    def refresh_due(self) -> bool:
        """Whether the next step refreshes ``v`` (:func:`xsam_theory.optimizers.rules.refresh_due`).

        ``standard`` refreshes at step 0 and every ``refresh_every`` steps; ``reference`` at
        per-epoch steps ``k, 2k, ...``, never 0.
        """
        return rules.refresh_due(self.config, self._counters["step"], self._counters["epoch_step"])

    def new_epoch(self) -> None:
        """Restart the reference schedule's per-epoch counter (``v`` persists).

        For loops that do not give ``steps_per_epoch``: call it at the start of every epoch,
        the first included.
        """
        self._counters["epoch_step"] = 0
        self._epoch_restarted = True

    def _warn_if_the_epoch_never_restarts(self) -> None:
        if (
            self._warned_epoch
            or self._epoch_restarted
            or not rules.epoch_counter_never_restarts(self.config)
        ):
            return
        self._warned_epoch = True
        warnings.warn(
            "the reference schedule's per-epoch step counter never restarts: steps_per_epoch "
            "is None and new_epoch() was not called, so v is refreshed every refresh_every "
            "global steps, not every refresh_every steps of each epoch as in the authors' loop. "
            "Pass steps_per_epoch=len(train_loader), or call opt.new_epoch() at the start of "
            "every epoch",
            UserWarning,
            stacklevel=_caller_stacklevel(),
        )

    # -- the eigenvector ----------------------------------------------------------------------
    def _random_start(self, params: list[Tensor], support: list[bool]) -> Tensor:
        dim = sum(p.numel() for p in params)
        x = np.random.default_rng(self.seed).standard_normal(dim)
        start = torch.as_tensor(x, dtype=params[0].dtype).to(params[0].device)
        if not all(support):
            # zero on parameters without a gradient: their Hessian rows are zero, and so is v
            mask = flatten(
                [torch.ones_like(p) if s else None for p, s in zip(params, support)], params
            )
            start = start * mask
        return start

    def _dense_top(self, hvp: Callable[[Tensor], Tensor], start: Tensor) -> tuple[Any, ...]:
        dim = start.shape[0]
        if dim > 20000:
            raise ValueError(
                f"eigvec_source='exact' assembles the dense Hessian; {dim} "
                "parameters is too many (use 'lanczos')"
            )
        eye = torch.eye(dim, dtype=start.dtype, device=start.device)
        H = torch.stack([hvp(e) for e in eye])
        H = 0.5 * (H + H.T)
        lam, V = torch.linalg.eigh(H)
        return V[:, -1], lam[-1], dim

    def _solve(self, hvp: Callable[[Tensor], Tensor], start: Tensor) -> tuple[Any, ...]:
        """``(eigenvector, eigenvalue, n_hvp)`` of the configured eigensolver (not oriented)."""
        cfg = self.config
        if cfg.eigvec_source is EigvecSource.POWER:
            res = power_iteration(hvp, start, cfg.power_steps)
        elif cfg.eigvec_source is EigvecSource.LANCZOS:
            res = lanczos_top(hvp, start, min(self.lanczos_steps, start.shape[0]))
        else:
            return self._dense_top(hvp, start)
        return res.eigenvector, res.eigenvalue, res.n_hvp

    def _refresh_with(
        self, hvp: Callable[[Tensor], Tensor], params: list[Tensor], support: list[bool]
    ) -> None:
        v = self._v(params)
        start = rules.eigvec_start(v, self._random_start(params, support) if v is None else None)
        vector, eigenvalue, n_hvp = self._solve(hvp, start)
        self._counters["n_hvp"] += n_hvp
        self._eigenvalue = eigenvalue
        self._set_v(rules.finish_eigvec(self.config, vector), params)
        self._counters["refreshes"] += 1
        self._refreshed_at = self._counters["step"]

    def _hessian_loss(self, closure: Closure) -> Tensor:
        """``closure()`` in the Hessian's mode (``eval``: every module's mode restored after)."""
        if self.hessian_mode != "eval":
            return closure()
        assert self.model is not None  # checked in __init__
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        try:
            return closure()
        finally:
            for m, training in modes:
                m.train(training)

    @torch.no_grad()
    def refresh_eigenvector(self, closure: Closure) -> Tensor | float:
        """Recompute ``v`` at the current parameters from the Hessian of ``closure()``'s loss.

        The Hessian is taken in ``hessian_mode``; the eigensolver is warm-started from the
        previous ``v``. ``step(closure)`` calls this itself when :attr:`refresh_due`; a
        hand-written loop calls it before :meth:`first_step` on those steps.

        Args:
            closure: returns the loss on the current minibatch (no ``backward()``).

        Returns:
            The eigenvalue estimate.
        """
        params = self._params()
        with torch.enable_grad():
            if self.hvp_mode == "forward_over_reverse":
                assert self.model is not None
                func = module_loss_function(self.model, lambda: self._hessian_loss(closure), params)
                probe = GradientGraph(self._hessian_loss(closure), params)
                support = [g is not None for g in probe.grads]
                probe.release()

                def hvp(v: Tensor) -> Tensor:
                    return forward_over_reverse_hvp(func, params, v)

                self._refresh_with(hvp, params, support)
            else:
                gg = GradientGraph(self._hessian_loss(closure), params)
                self._refresh_with(gg.hvp, params, [g is not None for g in gg.grads])
                gg.release()
        return self._eigenvalue

    # -- the two passes -----------------------------------------------------------------------
    def _check_finite(self, flags: list[Tensor], names: list[str]) -> None:
        """Raise :class:`~xsam_theory.NonFiniteError` for the first false flag (one sync)."""
        ok = torch.stack(flags).tolist()
        for good, name in zip(ok, names):
            if not good:
                t = self._counters["step"]
                raise NonFiniteError(
                    f"non-finite {name} at step {t}; the weights are left at the step's w",
                    t,
                    None,
                    None,
                )

    @torch.no_grad()
    def undo_ascent(self) -> None:
        """Put the weights back at ``w`` after a :meth:`first_step` (no-op when none is pending).

        For a hand-written loop in which something raised between the two passes.
        """
        pending, self._pending = self._pending, None
        if pending is None or not pending["plan"].second_gradient:
            return
        for p in self._params():
            old = self.state[p].pop("old_p", None)
            if old is not None:
                p.copy_(old)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Perturb the parameters by ε computed from their ``.grad`` (the gradient at ``w``).

        Args:
            zero_grad: zero the gradients afterwards.

        Raises:
            RuntimeError: a due refresh was skipped, or the previous :meth:`first_step` had no
                :meth:`second_step` (the weights are then put back at ``w`` first).
            NonFiniteError: the gradient at ``w`` is not finite (weights untouched).
        """
        self._warn_if_the_epoch_never_restarts()
        self._ascend(check_gradient=True)
        if zero_grad:
            self.zero_grad()

    def _ascend(self, *, check_gradient: bool) -> None:
        if self._pending is not None:
            self.undo_ascent()
            raise RuntimeError(
                "first_step called again without second_step (did the second pass raise?): the "
                "weights are back at w; compute the gradient at w again, then call first_step"
            )
        if self.refresh_due and self._refreshed_at != self._counters["step"]:
            raise RuntimeError(
                "this step refreshes the eigenvector: call refresh_eigenvector(closure) before "
                "first_step (or use step(closure), which does it)"
            )
        params = self._params()
        if check_gradient:
            self._check_finite([_all_finite([p.grad for p in params])], ["gradient"])
        g = flatten([p.grad for p in params], params)
        v = self._v(params)
        plan = rules.plan(self.config, has_v=v is not None)
        if plan.second_gradient:
            eps = rules.perturbation(self.config, plan.ascent, g, v)
            for p, e in zip(params, unflatten(eps, params)):
                self.state[p]["old_p"] = p.detach().clone()
                p.add_(e)
        self._pending = {"plan": plan, "grad_norm": torch.linalg.vector_norm(g)}
        self._counters["n_grad"] += 1

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w``, turn ``.grad`` (the gradient at ``w + ε``) into ``d``, take the base step.

        Args:
            zero_grad: zero the gradients afterwards.

        Raises:
            RuntimeError: no :meth:`first_step` before.
            NonFiniteError: the gradient at ``w + ε`` is not finite (the weights are put back
                at ``w``).
        """
        if self._pending is None:
            raise RuntimeError("second_step without first_step")
        pending = self._pending
        plan = pending["plan"]
        params = self._params()
        g_adv = flatten([p.grad for p in params], params)
        if plan.second_gradient:
            try:
                self._check_finite([_all_finite([g_adv])], ["gradient at w + eps"])
            except NonFiniteError:
                self.undo_ascent()
                raise
            self._counters["n_grad"] += 1
        d, c = rules.direction(self.config, plan.descent, g_adv, self._v(params))
        self.undo_ascent()
        for p, d_p in zip(params, unflatten(d, params)):
            if p.grad is not None:
                p.grad.copy_(d_p)
        self.base_optimizer.step()
        self._opt_called = True  # LR schedulers check that the optimizer stepped
        refreshed = self._refreshed_at == self._counters["step"]
        self.last_info = {
            "grad_norm": pending["grad_norm"],
            "adv_grad_norm": torch.linalg.vector_norm(g_adv),
            "direction_norm": torch.linalg.vector_norm(d),
            "c": math.nan if c is None else c,
            "eigenvalue": self._eigenvalue if refreshed else math.nan,
            "refreshed": refreshed,
        }
        cnt = self._counters
        cnt["step"], cnt["epoch_step"] = rules.advance(self.config, cnt["step"], cnt["epoch_step"])
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Tensor:  # type: ignore[override]
        """One full step: refresh of ``v`` when due, gradient, ε, adversarial gradient, update.

        If anything raises during the step, the weights, the eigenvector and the schedule's
        counters are put back as they were before it, and the error propagates.

        Args:
            closure: evaluates the model on the current minibatch and *returns* the loss,
                without calling ``backward()``.

        Returns:
            The loss at ``w`` (before the step).

        Raises:
            ValueError: no closure, or it returns no scalar loss depending on the parameters.
            RuntimeError: the closure called ``backward()``.
            NonFiniteError: a non-finite loss or gradient (the weights stay at ``w``).
        """
        if closure is None:
            raise ValueError(
                "SAM-family optimizers need closure= (a function returning the "
                "loss), or the first_step / second_step pair"
            )
        self._warn_if_the_epoch_never_restarts()
        params = self._params()
        saved = self._save_schedule(params)
        try:
            return self._full_step(closure, params)
        except BaseException:
            self.undo_ascent()
            self._restore_schedule(saved, params)
            raise

    def _save_schedule(self, params: list[Tensor]) -> dict[str, Any]:
        # a refresh replaces the per-parameter eigvec tensors, so references suffice
        return {
            "v": [self.state[p].get("eigvec") for p in params],
            "counters": {k: self._counters[k] for k in _SCHEDULE_COUNTERS},
            "eigenvalue": self._eigenvalue,
            "refreshed_at": self._refreshed_at,
        }

    def _restore_schedule(self, saved: dict[str, Any], params: list[Tensor]) -> None:
        for p, part in zip(params, saved["v"]):
            if part is None:
                self.state[p].pop("eigvec", None)
            else:
                self.state[p]["eigvec"] = part
        self._counters.update(saved["counters"])
        self._eigenvalue = saved["eigenvalue"]
        self._refreshed_at = saved["refreshed_at"]

    def _full_step(self, closure: Closure, params: list[Tensor]) -> Tensor:
        due = self.refresh_due
        reuse = due and self.hessian_mode == "train" and self.hvp_mode == "double_backward"
        if due and not reuse:
            # before the first pass: an eval-mode Hessian sees the running statistics as the
            # two-pass API and the reference code do (not yet updated by this step)
            self.refresh_eigenvector(closure)
        with torch.enable_grad():
            for p in params:
                p.grad = None
            loss = self._evaluate(closure, params)
            gg = GradientGraph(loss, params) if reuse else None
            if gg is None:
                loss.backward()
            else:
                for p, g in zip(params, gg.grads):
                    p.grad = g
            # before the HVPs and the ascent: nothing non-finite reaches v or the weights
            self._check_finite(
                [torch.isfinite(loss), _all_finite([p.grad for p in params])], ["loss", "gradient"]
            )
            if gg is not None:
                self._refresh_with(gg.hvp, params, [g is not None for g in gg.grads])
                gg.release()
                del gg
        loss = loss.detach()
        self._ascend(check_gradient=False)
        if self._pending["plan"].second_gradient:  # type: ignore[index]
            with torch.enable_grad():
                for p in params:
                    p.grad = None
                self._evaluate(closure, params).backward()
        self.second_step()
        self.last_info["loss"] = loss
        return loss

    @staticmethod
    def _evaluate(closure: Closure, params: list[Tensor]) -> Tensor:
        loss = closure()
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError(
                "closure must return the loss as a scalar tensor, got "
                f"{type(loss).__name__} {getattr(loss, 'shape', '')}"
            )
        if any(p.grad is not None for p in params):
            raise RuntimeError(
                "the closure called backward(): for SAM-family optimizers of xsam_theory the "
                "closure must only return the loss (the optimizer differentiates it)"
            )
        if not loss.requires_grad:
            raise ValueError("the closure's loss does not depend on the parameters")
        return loss

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, for ``torch.save``.

        Returns:
            The eigenvector (per parameter), the counters, the base optimizer's state (momentum
            buffers), the shared ``param_groups`` and the configuration.
        """
        sd = super().state_dict()
        sd["base_optimizer"] = self.base_optimizer.state_dict()
        eig = self._eigenvalue
        sd["sam_family"] = {
            "counters": dict(self._counters),
            "eigenvalue": float(eig) if isinstance(eig, Tensor) else eig,
            "refreshed_at": self._refreshed_at,
            "config": self.config.to_dict(),
            "seed": self.seed,
            "epoch_restarted": self._epoch_restarted,
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`'s output.

        Args:
            state_dict: saved by an optimizer of the same configuration.

        Raises:
            ValueError: not a SAM-family state dict, or saved with another configuration.
        """
        sd = dict(state_dict)
        try:
            base = sd.pop("base_optimizer")
            family = sd.pop("sam_family")
        except KeyError as e:
            raise ValueError(f"not a SAM-family optimizer state dict: no {e.args[0]!r}") from None
        if family["config"] != self.config.to_dict():
            raise ValueError(
                "the state dict was saved with a different configuration: "
                f"{family['config']} != {self.config.to_dict()}"
            )
        self.base_optimizer.load_state_dict(base)
        super().load_state_dict(sd)
        self.base_optimizer.param_groups = self.param_groups
        self._counters = dict(family["counters"])
        self._eigenvalue = family["eigenvalue"]
        self._refreshed_at = family["refreshed_at"]
        self.seed = family["seed"]
        self._epoch_restarted = family.get("epoch_restarted", False)


# -- building by preset name ------------------------------------------------------------------

_FAMILY_KEYS = ("lanczos_steps", "hessian_mode", "model", "hvp_mode", "seed")


def _default_lr(base_optimizer: type) -> float:
    """The base optimizer's own default ``lr`` (``torch.optim.SGD``: 1e-3)."""
    try:
        default = inspect.signature(base_optimizer).parameters["lr"].default
    except (KeyError, TypeError, ValueError):
        default = inspect.Parameter.empty
    if isinstance(default, (int, float)) and not isinstance(default, bool) and default > 0:
        return float(default)
    raise ValueError(f"{base_optimizer.__name__} has no default learning rate: pass lr=")


def _resolve(
    name: str, base_optimizer: type, kwargs: dict[str, Any], defaults: dict[str, Any]
) -> tuple[OptimizerConfig, dict[str, Any], dict[str, Any]]:
    """Split ``kwargs`` into the preset's configuration, the family's options and the base's.

    With ``torch.optim.SGD`` as the base every configuration option (``lr``, ``momentum``,
    ``weight_decay`` included) belongs to the configuration, and SGD gets its ``lr``,
    ``momentum`` and ``weight_decay`` from it. With another base the configuration takes the
    method's options (:data:`CONFIG_KEYS`) and the base's ``lr``; all else goes to the base.
    """
    family = {k: kwargs.pop(k) for k in _FAMILY_KEYS if k in kwargs}
    base_kwargs = dict(kwargs)
    is_sgd = base_optimizer is torch.optim.SGD
    keys = ALL_CONFIG_KEYS if is_sgd else CONFIG_KEYS
    options = {**defaults, **{k: base_kwargs.pop(k) for k in keys if k in base_kwargs}}
    if is_sgd:
        config = preset(name, **{"lr": _default_lr(base_optimizer), **options})
        base_kwargs.update(lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
        return config, family, base_kwargs
    lr = base_kwargs.get("lr")
    if lr is None and isinstance(base_optimizer, type):
        lr = _default_lr(base_optimizer)
    # a tensor learning rate stays the base's; the configuration's is then unused
    plain = isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0
    return preset(name, **{**options, "lr": float(lr) if plain else 1.0}), family, base_kwargs


def optimizer(
    name: str, params: Iterable[Any], base_optimizer: type = torch.optim.SGD, **kwargs: Any
) -> SAMFamily:
    """The torch optimizer of a preset: ``optimizer("xsam_symmetric", params, lr=0.1, ...)``.

    How the keyword arguments are split between the configuration, the optimizer and the base
    optimizer: docs/algorithms.md#A-torch-optimizers.

    Args:
        name: a key of :data:`xsam_theory.optimizers.PRESETS` (``gd``, ``usam``, ``sam``,
            ``nsam``, ``eigen_sam``, ``xsam``, ``xsam_paper``, ``xsam_symmetric``,
            ``xsam_projector``, ``xsam_raw_projection``).
        params: parameters or parameter groups.
        base_optimizer: the base optimizer class (default ``torch.optim.SGD``).
        **kwargs: the preset's options (any :class:`~xsam_theory.optimizers.OptimizerConfig`
            field with SGD as the base, which then runs the configuration's ``lr``,
            ``momentum`` and ``weight_decay``; with another base, the method's options and
            ``lr``), :class:`SAMFamily`'s (``seed``, ``lanczos_steps``, ``hessian_mode``,
            ``model``, ``hvp_mode``) and the base optimizer's (the rest).

    Returns:
        A :class:`SAMFamily` whose ``config`` is ``preset(name, **options)`` and whose
        ``preset`` is ``name``.

    Raises:
        ValueError: an unknown preset name or an invalid option, named.
    """
    config, family, base_kwargs = _resolve(name, base_optimizer, dict(kwargs), {})
    opt = SAMFamily(params, base_optimizer, config, **family, **base_kwargs)
    opt.preset = name
    return opt


def optimizer_from_config(
    params: Iterable[Any],
    config: OptimizerConfig,
    base_optimizer: type = torch.optim.SGD,
    **kwargs: Any,
) -> SAMFamily:
    """A :class:`SAMFamily` optimizer for a package configuration (e.g. a :func:`preset`).

    With ``torch.optim.SGD`` as the base, the configuration's ``lr``, ``momentum`` and
    ``weight_decay`` become SGD's (PyTorch SGD semantics are the package's). A non-constant
    ``lr_schedule`` needs a scheduler: ``LambdaLR(opt, lr_lambda(config))``.

    Args:
        params: parameters or parameter groups.
        config: the method and its options.
        base_optimizer: the base optimizer class.
        **kwargs: :class:`SAMFamily`'s options (``seed``, ``lanczos_steps``, ``hessian_mode``,
            ``model``, ``hvp_mode``) or the base optimizer's.

    Returns:
        The optimizer (its ``preset`` is ``None``).
    """
    family = {k: kwargs.pop(k) for k in _FAMILY_KEYS if k in kwargs}
    if base_optimizer is torch.optim.SGD:
        kwargs = {
            "lr": config.lr,
            "momentum": config.momentum,
            "weight_decay": config.weight_decay,
            **kwargs,
        }
    return SAMFamily(params, base_optimizer, config, **family, **kwargs)


# -- named shortcuts ------------------------------------------------------------------------------


class _RadiusShortcut(SAMFamily):
    """A preset whose only method option with a default here is ``rho`` (SAM, USAM)."""

    PRESET: str

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type = torch.optim.SGD,
        rho: float = 0.05,
        **kwargs: Any,
    ):
        config, family, base_kwargs = _resolve(
            self.PRESET, base_optimizer, {**kwargs, "rho": rho}, {}
        )
        super().__init__(params, base_optimizer, config, **family, **base_kwargs)


class SAM(_RadiusShortcut):
    r"""SAM (Foret et al. 2021), preset ``sam``.

    :math:`\varepsilon = \rho\hat g`, update with :math:`\nabla L(w + \varepsilon)`
    (docs/algorithms.md#A-presets).

    ``SAM(params, base_optimizer=torch.optim.SGD, rho=0.05, **kwargs)`` is
    ``optimizer("sam", params, base_optimizer, rho=rho, **kwargs)`` as a class.
    """

    PRESET = "sam"


class USAM(_RadiusShortcut):
    r"""Unnormalized SAM, preset ``usam``: :math:`\varepsilon = \rho g`.

    Update with :math:`\nabla L(w + \rho g)` (docs/algorithms.md#A-presets).

    ``USAM(params, base_optimizer=torch.optim.SGD, rho=0.05, **kwargs)`` is
    ``optimizer("usam", params, base_optimizer, rho=rho, **kwargs)`` as a class.
    """

    PRESET = "usam"


class EigenSAM(SAMFamily):
    r"""Eigen-SAM (Luo et al. 2024) as its authors implement it, preset ``eigen_sam``.

    :math:`\varepsilon = \rho(\hat g + \alpha\,\mathrm{sign}\langle g,v\rangle(v - \langle\hat g,
    v\rangle\hat g))`. Defaults are the authors' loop (``REFERENCE_OPTIONS["eigen_sam"]``): ``v``
    by 5 warm-started power steps every 100 steps, first refresh at step 100, the unnormalized
    ``ρg`` perturbation before it. Pass ``schedule="standard"`` and ``eigvec_source="lanczos"``
    for the testbed's default (refresh at step 0, algebraic top eigenvector), and
    ``steps_per_epoch`` for the reference loop's per-epoch counter. The perturbation:
    docs/algorithms.md#A-eigen-sam; the authors' loop: docs/algorithms.md#A-eigensam-code.
    """

    PRESET = "eigen_sam"

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type = torch.optim.SGD,
        rho: float = 0.05,
        alpha: float = 0.2,
        **kwargs: Any,
    ):
        config, family, base_kwargs = _resolve(
            self.PRESET,
            base_optimizer,
            {**kwargs, "rho": rho, "alpha": alpha},
            REFERENCE_OPTIONS["eigen_sam"],
        )
        super().__init__(params, base_optimizer, config, **family, **base_kwargs)


class XSAM(SAMFamily):
    r"""X-SAM (Duan, Chen, Guan 2026) in any of its four forms, presets ``xsam_<rule>``.

    * ``"paper"`` (default, the authors' code): :math:`d = \hat g_{adv} - \alpha|c|v`;
    * ``"symmetric"``: :math:`d = \hat g_{adv} - \alpha c v`;
    * ``"projector"``: :math:`d = g_{adv} - \alpha\langle g_{adv},v\rangle v`;
    * ``"raw_projection"``: :math:`d = \hat g_{adv} - \alpha|\langle g_{adv},v\rangle| v`,

    with :math:`c = \langle\hat g_{adv}, v\rangle` and :math:`g_{adv} = \nabla L(w + \rho\hat g)`.
    Defaults are the authors' loop (``REFERENCE_OPTIONS["xsam"]``): ``v`` by 5 warm-started power
    steps every 5 steps, first refresh at step 5, plain SAM before it; pass ``steps_per_epoch``
    for its per-epoch counter. The forms: docs/algorithms.md#A-xsam-forms; the authors' loop:
    docs/algorithms.md#A-reference-code.
    """

    PRESET = "xsam"

    def __init__(
        self,
        params: Iterable[Any],
        base_optimizer: type = torch.optim.SGD,
        rho: float = 0.05,
        alpha: float = 0.2,
        rule: str = "paper",
        **kwargs: Any,
    ):
        try:
            name = f"xsam_{CorrectionRule(rule).value}"
        except ValueError:
            choices = ", ".join(repr(r.value) for r in CorrectionRule)
            raise ValueError(f"rule must be one of {choices}, got {rule!r}") from None
        config, family, base_kwargs = _resolve(
            name, base_optimizer, {**kwargs, "rho": rho, "alpha": alpha}, REFERENCE_OPTIONS["xsam"]
        )
        super().__init__(params, base_optimizer, config, **family, **base_kwargs)
        self.preset = name
