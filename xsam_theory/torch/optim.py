r"""``torch.optim`` optimizers of the SAM family for any ``nn.Module`` (SPEC §2, §7).

The API is the one practitioners know from davda54/sam: the optimizer wraps a *base* optimizer
(``torch.optim.SGD`` by default), shares its ``param_groups`` (so LR schedulers work), and offers
``first_step`` / ``second_step`` for a hand-written loop and ``step(closure)`` for the whole
thing::

    opt = XSAM(model.parameters(), torch.optim.SGD, rho=0.05, alpha=0.2, lr=0.1, momentum=0.9)

    def closure():                        # returns the loss; does NOT call backward
        return loss_fn(model(x), y)

    loss = opt.step(closure)

**The closure differs from davda54/sam: it must not call** ``backward()``. The optimizer
differentiates the loss itself so that, on steps where the eigenvector is refreshed, it can keep
the gradient's graph and compute Hessian-vector products by double backward without another
forward pass. A closure that calls ``backward()`` is detected and rejected.

Every update is one of the package's pure maps on flat vectors
(:func:`~xsam_theory.optimizers.directions.sam_perturbation`,
:func:`~xsam_theory.optimizers.directions.eigen_sam_perturbation`,
:func:`~xsam_theory.optimizers.directions.xsam_direction`), so the formulas exist once, and every
option is validated by :class:`~xsam_theory.optimizers.OptimizerConfig`.

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
* **BatchNorm and dropout.** Which Hessian the eigenvector belongs to is the option
  ``hessian_mode``: ``"train"`` is the Hessian of exactly the loss the closure computes, in the
  mode the model is in (on refresh steps the gradient's own graph is reused, so the batch
  statistics and the dropout mask are those of the gradient, and BatchNorm's running statistics
  are updated once, as in a plain step); ``"eval"`` (the reference code's choice) evaluates the
  closure once more with ``model.eval()`` for the HVPs and restores every module's own mode
  afterwards. The optimizer never switches modes unless told to: a ``model`` containing
  BatchNorm or dropout with ``hessian_mode`` left unset is an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from xsam_theory.optimizers.config import (
    REFERENCE_OPTIONS,
    CorrectionRule,
    EigvecSource,
    Method,
    OptimizerConfig,
    Perturbation,
    Schedule,
)
from xsam_theory.optimizers.directions import (
    eigen_sam_perturbation,
    sam_perturbation,
    xsam_direction,
)
from xsam_theory.optimizers.step import learning_rate
from xsam_theory.spectral.angles import orient
from xsam_theory.torch.hvp import (
    GradientGraph,
    flatten,
    forward_over_reverse_hvp,
    module_loss_function,
    unflatten,
)
from xsam_theory.torch.lanczos import lanczos_top, power_iteration
from xsam_theory.vectors import unit

__all__ = ["SAM", "USAM", "XSAM", "EigenSAM", "SAMFamily", "lr_lambda", "optimizer_from_config"]

Closure = Callable[[], Tensor]

#: OptimizerConfig fields that the SAM-family optimizer owns; every other keyword goes to the
#: base optimizer.
CONFIG_KEYS = ("rho", "alpha", "perturbation", "sign_rule", "normalize", "coefficient",
               "eigvec_source", "refresh_every", "power_steps", "eigvec_sign", "schedule",
               "steps_per_epoch")

HESSIAN_MODES = ("train", "eval")
HVP_MODES = ("double_backward", "forward_over_reverse")


def lr_lambda(config: OptimizerConfig) -> Callable[[int], float]:
    r"""The factor :math:`\eta_t/\eta_0` of ``config.lr_schedule``, for
    ``torch.optim.lr_scheduler.LambdaLR`` (step the scheduler once per optimizer step)."""
    return lambda t: learning_rate(config, t) / config.lr


def _has_mode_dependent_layers(model: torch.nn.Module) -> bool:
    """Whether ``model`` computes a different loss in train and eval mode (BatchNorm, dropout)."""
    kinds = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.modules.dropout._DropoutNd)
    return any(isinstance(m, kinds) for m in model.modules())


class SAMFamily(torch.optim.Optimizer):
    """SAM, USAM, Eigen-SAM and every X-SAM form as one ``torch.optim.Optimizer``.

    Args:
        params: parameters or parameter groups (as for any torch optimizer).
        base_optimizer: the base optimizer *class* (default ``torch.optim.SGD``); it is built on
            the same ``param_groups``, which this optimizer then shares.
        config: the method and its options (:class:`~xsam_theory.optimizers.OptimizerConfig`,
            e.g. from :func:`~xsam_theory.optimizers.preset`). Its ``lr``, ``momentum``,
            ``weight_decay`` and ``lr_schedule`` are *not* used: those belong to the base
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
        last_info: diagnostics of the last step as tensors (no host synchronisation):
            ``loss``, ``grad_norm``, ``adv_grad_norm``, ``direction_norm``, ``c``,
            ``eigenvalue``, ``refreshed``.
        n_grad, n_hvp: gradients and HVPs spent so far.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type = torch.optim.SGD,
                 config: OptimizerConfig | None = None, *, lanczos_steps: int = 20,
                 hessian_mode: str | None = None, model: torch.nn.Module | None = None,
                 hvp_mode: str = "double_backward", seed: int = 0, **base_kwargs: Any):
        if config is None:
            config = OptimizerConfig()
        if not isinstance(config, OptimizerConfig):
            raise ValueError(f"config must be an OptimizerConfig, got {type(config).__name__}")
        if not (isinstance(base_optimizer, type)
                and issubclass(base_optimizer, torch.optim.Optimizer)):
            raise ValueError("base_optimizer must be a torch.optim.Optimizer class (e.g. "
                             f"torch.optim.SGD), got {base_optimizer!r}")
        if isinstance(lanczos_steps, bool) or not isinstance(lanczos_steps, int) \
                or lanczos_steps < 1:
            raise ValueError(f"lanczos_steps must be an integer >= 1, got {lanczos_steps!r}")
        if hessian_mode is not None and hessian_mode not in HESSIAN_MODES:
            raise ValueError(f"hessian_mode must be one of {HESSIAN_MODES}, got {hessian_mode!r}")
        if hvp_mode not in HVP_MODES:
            raise ValueError(f"hvp_mode must be one of {HVP_MODES}, got {hvp_mode!r}")
        if model is not None and not isinstance(model, torch.nn.Module):
            raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
        if config.uses_eigvec:
            if isinstance(model, torch.nn.parallel.DistributedDataParallel):
                raise ValueError(
                    "Eigen-SAM / X-SAM under DistributedDataParallel are not supported: the "
                    "double-backward HVPs bypass DDP's gradient synchronisation, so each replica "
                    "would compute its own eigenvector (see README, 'torch optimizers')")
            if hessian_mode is None and model is not None and _has_mode_dependent_layers(model):
                raise ValueError(
                    "the model has BatchNorm or dropout layers, so the Hessian depends on the "
                    "mode: pass hessian_mode='train' (the closure's loss as it is) or 'eval' "
                    "(model.eval() for the HVPs, as in the reference code)")
            if hessian_mode == "eval" and model is None:
                raise ValueError("hessian_mode='eval' needs model= (the module to switch)")
            if hvp_mode == "forward_over_reverse" and model is None:
                raise ValueError("hvp_mode='forward_over_reverse' needs model= (for "
                                 "torch.func.functional_call)")
        self.config = config
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
        self.last_info: dict[str, Any] = {}

    # -- bookkeeping ------------------------------------------------------------------------
    def _params(self) -> list[Tensor]:
        params = [p for group in self.param_groups for p in group["params"] if p.requires_grad]
        if not params:
            raise ValueError("the optimizer has no parameter that requires grad")
        return params

    @property
    def n_grad(self) -> int:
        return self._counters["n_grad"]

    @property
    def n_hvp(self) -> int:
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
        """Whether the next step refreshes ``v`` (SPEC §2: ``standard`` refreshes at step 0 and
        every ``refresh_every`` steps; ``reference`` at epoch steps ``k, 2k, ...``, never 0)."""
        cfg = self.config
        if not cfg.uses_eigvec:
            return False
        if cfg.schedule is Schedule.REFERENCE:
            c = self._counters["epoch_step"]
            return c % cfg.refresh_every == 0 and c > 0
        return self._counters["step"] % cfg.refresh_every == 0

    def new_epoch(self) -> None:
        """Restart the reference schedule's step counter (``v`` persists), for loops that do not
        give ``steps_per_epoch``."""
        self._counters["epoch_step"] = 0

    # -- the eigenvector ----------------------------------------------------------------------
    def _start_vector(self, params: list[Tensor], support: list[bool]) -> Tensor:
        v = self._v(params)
        if v is not None:
            return v
        dim = sum(p.numel() for p in params)
        x = np.random.default_rng(self.seed).standard_normal(dim)
        start = torch.as_tensor(x, dtype=params[0].dtype).to(params[0].device)
        if not all(support):
            # zero on parameters without a gradient: their Hessian rows are zero, and so is v
            mask = flatten([torch.ones_like(p) if s else None for p, s in zip(params, support)],
                           params)
            start = start * mask
        return start

    def _refresh_with(self, hvp: Callable[[Tensor], Tensor], params: list[Tensor],
                      support: list[bool]) -> None:
        cfg = self.config
        start = self._start_vector(params, support)
        dim = start.shape[0]
        if cfg.eigvec_source is EigvecSource.POWER:
            # reference semantics: warm-started power steps, dominant |λ|, no re-orientation
            res = power_iteration(hvp, start, cfg.power_steps)
            v = res.eigenvector
        elif cfg.eigvec_source is EigvecSource.LANCZOS:
            res = lanczos_top(hvp, start, min(self.lanczos_steps, dim))
            v = cfg.eigvec_sign * res.eigenvector
        else:
            if dim > 20000:
                raise ValueError(f"eigvec_source='exact' assembles the dense Hessian; {dim} "
                                 "parameters is too many (use 'lanczos')")
            eye = torch.eye(dim, dtype=start.dtype, device=start.device)
            H = torch.stack([hvp(e) for e in eye])
            H = 0.5 * (H + H.T)
            lam, V = torch.linalg.eigh(H)
            v = cfg.eigvec_sign * orient(V[:, -1])
            res = None
            self._counters["n_hvp"] += dim
            self._eigenvalue = lam[-1]
        if res is not None:
            self._counters["n_hvp"] += res.n_hvp
            self._eigenvalue = res.eigenvalue
        self._set_v(v, params)
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
        """Recompute ``v`` at the current parameters from the Hessian of ``closure()``'s loss
        (in ``hessian_mode``), warm-started from the previous ``v``; returns the eigenvalue
        estimate. ``step(closure)`` calls this itself when :attr:`refresh_due`; a hand-written
        loop calls it before :meth:`first_step` on those steps."""
        params = self._params()
        with torch.enable_grad():
            if self.hvp_mode == "forward_over_reverse":
                assert self.model is not None
                func = module_loss_function(self.model, lambda: self._hessian_loss(closure),
                                            params)
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
    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Perturb the parameters by ε computed from their ``.grad`` (the gradient at ``w``)."""
        if self.refresh_due and self._refreshed_at != self._counters["step"]:
            raise RuntimeError(
                "this step refreshes the eigenvector: call refresh_eigenvector(closure) before "
                "first_step (or use step(closure), which does it)")
        cfg = self.config
        params = self._params()
        g = flatten([p.grad for p in params], params)
        v = self._v(params)
        reference_pre_v = cfg.schedule is Schedule.REFERENCE and v is None
        if cfg.method is Method.GD:
            eps = None
        elif cfg.method is Method.EIGEN_SAM and v is not None:
            # ε = ρ(ĝ + α sign(<g,v>)(v − <ĝ,v>ĝ))
            eps = eigen_sam_perturbation(g, v, cfg.rho, cfg.alpha)
        elif cfg.method is Method.EIGEN_SAM and reference_pre_v:
            eps = sam_perturbation(g, cfg.rho, normalize=False)   # the reference's USAM start
        else:
            eps = sam_perturbation(g, cfg.rho,
                                   normalize=cfg.perturbation is Perturbation.NORMALIZED)
        skip = eps is None or cfg.rho == 0.0
        if not skip:
            for p, e in zip(params, unflatten(eps, params)):
                self.state[p]["old_p"] = p.detach().clone()
                p.add_(e)
        self._pending = {"skip": skip, "reference_pre_v": reference_pre_v,
                         "grad_norm": torch.linalg.vector_norm(g)}
        self._counters["n_grad"] += 1
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore ``w``, turn the ``.grad`` (the gradient at ``w + ε``) into the direction ``d``
        and take the base optimizer's step."""
        if self._pending is None:
            raise RuntimeError("second_step without first_step")
        cfg = self.config
        pending, self._pending = self._pending, None
        params = self._params()
        g_adv = flatten([p.grad for p in params], params)
        v = self._v(params)
        c: Tensor | float = math.nan
        if cfg.method is Method.XSAM and v is not None:
            # d = base − α·(|γ| or γ)·v   (the package's xsam_direction)
            d, c = xsam_direction(g_adv, v, cfg.alpha, sign_rule=cfg.sign_rule,
                                  normalize=cfg.normalize, coefficient=cfg.coefficient)
        elif cfg.method is Method.XSAM and not pending["reference_pre_v"]:
            d = unit(g_adv) if cfg.normalize else g_adv
        else:
            d = g_adv
        if not pending["skip"]:
            self._counters["n_grad"] += 1
            for p in params:
                p.copy_(self.state[p].pop("old_p"))
        for p, d_p in zip(params, unflatten(d, params)):
            if p.grad is not None:
                p.grad.copy_(d_p)
        self.base_optimizer.step()
        self._opt_called = True   # LR schedulers check that the optimizer stepped
        refreshed = self._refreshed_at == self._counters["step"]
        self.last_info = {
            "grad_norm": pending["grad_norm"],
            "adv_grad_norm": torch.linalg.vector_norm(g_adv),
            "direction_norm": torch.linalg.vector_norm(d),
            "c": c,
            "eigenvalue": self._eigenvalue if refreshed else math.nan,
            "refreshed": refreshed,
        }
        cnt = self._counters
        cnt["step"] += 1
        cnt["epoch_step"] += 1
        if cfg.steps_per_epoch is not None and cnt["epoch_step"] >= cfg.steps_per_epoch:
            cnt["epoch_step"] = 0
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def step(self, closure: Closure | None = None) -> Tensor:  # type: ignore[override]
        """One full step: gradient, refresh of ``v`` when due, ε, adversarial gradient, update.

        ``closure()`` must evaluate the model on the current minibatch and *return* the loss
        without calling ``backward()``. Returns the loss at ``w`` (before the step).
        """
        if closure is None:
            raise ValueError("SAM-family optimizers need closure= (a function returning the "
                             "loss), or the first_step / second_step pair")
        params = self._params()
        due = self.refresh_due
        with torch.enable_grad():
            for p in params:
                p.grad = None
            loss = self._evaluate(closure, params)
            reuse = due and self.hessian_mode == "train" and self.hvp_mode == "double_backward"
            if reuse:
                gg = GradientGraph(loss, params)
                for p, g in zip(params, gg.grads):
                    p.grad = g
                self._refresh_with(gg.hvp, params, [g is not None for g in gg.grads])
                gg.release()
                del gg
            else:
                loss.backward()
        if due and not reuse:
            self.refresh_eigenvector(closure)
        self.first_step()
        if not self._pending["skip"]:   # type: ignore[index]
            with torch.enable_grad():
                for p in params:
                    p.grad = None
                self._evaluate(closure, params).backward()
        self.second_step()
        loss = loss.detach()
        self.last_info["loss"] = loss
        return loss

    @staticmethod
    def _evaluate(closure: Closure, params: list[Tensor]) -> Tensor:
        loss = closure()
        if not isinstance(loss, Tensor) or loss.ndim != 0:
            raise ValueError("closure must return the loss as a scalar tensor, got "
                             f"{type(loss).__name__} {getattr(loss, 'shape', '')}")
        if any(p.grad is not None for p in params):
            raise RuntimeError(
                "the closure called backward(): for SAM-family optimizers of xsam_theory the "
                "closure must only return the loss (the optimizer differentiates it)")
        if not loss.requires_grad:
            raise ValueError("the closure's loss does not depend on the parameters")
        return loss

    # -- persistence --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The eigenvector (per parameter), the counters, the base optimizer's state (momentum
        buffers) and the shared ``param_groups``."""
        sd = super().state_dict()
        sd["base_optimizer"] = self.base_optimizer.state_dict()
        eig = self._eigenvalue
        sd["sam_family"] = {
            "counters": dict(self._counters),
            "eigenvalue": float(eig) if isinstance(eig, Tensor) else eig,
            "refreshed_at": self._refreshed_at,
            "config": self.config.to_dict(),
            "seed": self.seed,
        }
        return sd

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        sd = dict(state_dict)
        try:
            base = sd.pop("base_optimizer")
            family = sd.pop("sam_family")
        except KeyError as e:
            raise ValueError(f"not a SAM-family optimizer state dict: no {e.args[0]!r}") from None
        if family["config"] != self.config.to_dict():
            raise ValueError("the state dict was saved with a different configuration: "
                             f"{family['config']} != {self.config.to_dict()}")
        self.base_optimizer.load_state_dict(base)
        super().load_state_dict(sd)
        self.base_optimizer.param_groups = self.param_groups
        self._counters = dict(family["counters"])
        self._eigenvalue = family["eigenvalue"]
        self._refreshed_at = family["refreshed_at"]
        self.seed = family["seed"]


def _split(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    config = {k: kwargs.pop(k) for k in CONFIG_KEYS if k in kwargs}
    return config, kwargs


_FAMILY_KEYS = ("lanczos_steps", "hessian_mode", "model", "hvp_mode", "seed")


def _family(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: kwargs.pop(k) for k in _FAMILY_KEYS if k in kwargs}


def _config(method: Method, options: dict[str, Any], base_kwargs: dict[str, Any]) -> \
        OptimizerConfig:
    lr = base_kwargs.get("lr", 1.0)
    lr = lr if isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0 else 1.0
    return OptimizerConfig(method=method, lr=float(lr), **options)


class SAM(SAMFamily):
    r"""SAM (Foret et al. 2021): :math:`\varepsilon = \rho\hat g`, update with
    :math:`\nabla L(w + \varepsilon)`.

    ``SAM(params, base_optimizer=torch.optim.SGD, rho=0.05, **base_kwargs)``.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type = torch.optim.SGD,
                 rho: float = 0.05, **kwargs: Any):
        family = _family(kwargs)
        options, base_kwargs = _split(kwargs)
        cfg = _config(Method.SAM, {"rho": rho, **options}, base_kwargs)
        super().__init__(params, base_optimizer, cfg, **family, **base_kwargs)


class USAM(SAMFamily):
    r"""Unnormalized SAM: :math:`\varepsilon = \rho g`."""

    def __init__(self, params: Iterable[Any], base_optimizer: type = torch.optim.SGD,
                 rho: float = 0.05, **kwargs: Any):
        family = _family(kwargs)
        options, base_kwargs = _split(kwargs)
        cfg = _config(Method.SAM, {"rho": rho, "perturbation": Perturbation.UNNORMALIZED,
                                   **options}, base_kwargs)
        super().__init__(params, base_optimizer, cfg, **family, **base_kwargs)


class EigenSAM(SAMFamily):
    r"""Eigen-SAM (Luo et al. 2024) as its authors implement it:
    :math:`\varepsilon = \rho(\hat g + \alpha\,\mathrm{sign}\langle g,v\rangle(v - \langle\hat g,
    v\rangle\hat g))`.

    Defaults are the authors' loop (``REFERENCE_OPTIONS["eigen_sam"]``): ``v`` by 5 warm-started
    power steps every 100 steps, first refresh at step 100, the unnormalized ``ρg`` perturbation
    before it. Pass ``schedule="standard"`` and ``eigvec_source="lanczos"`` for the testbed's
    default (refresh at step 0, algebraic top eigenvector).
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type = torch.optim.SGD,
                 rho: float = 0.05, alpha: float = 0.2, **kwargs: Any):
        family = _family(kwargs)
        options, base_kwargs = _split(kwargs)
        options = {**REFERENCE_OPTIONS["eigen_sam"], **options}
        cfg = _config(Method.EIGEN_SAM, {"rho": rho, "alpha": alpha, **options}, base_kwargs)
        super().__init__(params, base_optimizer, cfg, **family, **base_kwargs)


class XSAM(SAMFamily):
    r"""X-SAM (Duan, Chen, Guan 2026) in any of its four forms (``rule``):

    * ``"paper"`` (default, the authors' code): :math:`d = \hat g_{adv} - \alpha|c|v`;
    * ``"symmetric"``: :math:`d = \hat g_{adv} - \alpha c v`;
    * ``"projector"``: :math:`d = g_{adv} - \alpha\langle g_{adv},v\rangle v`;
    * ``"raw_projection"``: :math:`d = \hat g_{adv} - \alpha|\langle g_{adv},v\rangle| v`,

    with :math:`c = \langle\hat g_{adv}, v\rangle` and :math:`g_{adv} = \nabla L(w + \rho\hat g)`.
    Defaults are the authors' loop (``REFERENCE_OPTIONS["xsam"]``): ``v`` by 5 warm-started power
    steps every 5 steps, first refresh at step 5, plain SAM before it.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type = torch.optim.SGD,
                 rho: float = 0.05, alpha: float = 0.2, rule: str = "paper", **kwargs: Any):
        try:
            switches = CorrectionRule(rule).switches
        except ValueError:
            choices = ", ".join(repr(r.value) for r in CorrectionRule)
            raise ValueError(f"rule must be one of {choices}, got {rule!r}") from None
        family = _family(kwargs)
        options, base_kwargs = _split(kwargs)
        options = {**REFERENCE_OPTIONS["xsam"], **switches, **options}
        cfg = _config(Method.XSAM, {"rho": rho, "alpha": alpha, **options}, base_kwargs)
        super().__init__(params, base_optimizer, cfg, **family, **base_kwargs)


def optimizer_from_config(params: Iterable[Any], config: OptimizerConfig,
                          base_optimizer: type = torch.optim.SGD,
                          **kwargs: Any) -> SAMFamily:
    """A :class:`SAMFamily` optimizer for a package configuration (e.g. a :func:`preset`).

    With ``torch.optim.SGD`` as the base, the configuration's ``lr``, ``momentum`` and
    ``weight_decay`` become SGD's (PyTorch SGD semantics are the package's). A non-constant
    ``lr_schedule`` needs a scheduler: ``LambdaLR(opt, lr_lambda(config))``. Other keywords go to
    :class:`SAMFamily` (``seed``, ``lanczos_steps``, ``hessian_mode``, ``model``, ``hvp_mode``)
    or to the base optimizer.
    """
    family = _family(kwargs)
    if base_optimizer is torch.optim.SGD:
        kwargs = {"lr": config.lr, "momentum": config.momentum,
                  "weight_decay": config.weight_decay, **kwargs}
    return SAMFamily(params, base_optimizer, config, **family, **kwargs)
