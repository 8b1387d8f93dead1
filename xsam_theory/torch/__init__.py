"""PyTorch-native tools: ``torch.optim`` SAM-family optimizers for any ``nn.Module``.

This subpackage is separate from the torch *backend* of the package's own math (which runs the
same array-API code on torch tensors: ``problem.convert(array_api_compat.torch, device)``, see
:mod:`xsam_theory.backend`). Here parameters are lists of tensors of a user's model and
derivatives come from autograd:

* :mod:`xsam_theory.torch.optim`: :func:`optimizer` builds any preset of
  :data:`xsam_theory.optimizers.PRESETS` by name (``optimizer("xsam_symmetric", params,
  lr=0.1)``); :class:`SAM`, :class:`USAM`, :class:`EigenSAM`, :class:`XSAM` are named shortcuts
  (the reference schedule available). All are one :class:`SAMFamily` optimizer that wraps a base
  ``torch.optim`` optimizer and shares its ``param_groups``. The step's decisions are the rules
  of :mod:`xsam_theory.optimizers.rules` and its formulas the pure maps of
  :mod:`xsam_theory.optimizers.directions`, applied to flat tensors, as in the NumPy step.
* :mod:`xsam_theory.torch.hvp`: Hessian-vector products by double backward (reusing the
  gradient's graph) or forward-over-reverse (``torch.func``).
* :mod:`xsam_theory.torch.lanczos`: torch adapters (tensor results) of the package's one Lanczos
  (:func:`xsam_theory.spectral.lanczos`) and its power iteration, on flat-vector HVPs.

Importing this subpackage imports torch. The optimizers' API: docs/algorithms.md#A-torch-optimizers;
the torch backend: docs/algorithms.md#A-backends.
"""

from __future__ import annotations

from xsam_theory.torch.hvp import (
    GradientGraph,
    flatten,
    forward_over_reverse_hvp,
    module_loss_function,
    unflatten,
)
from xsam_theory.torch.lanczos import TorchEigenResult, lanczos_top, power_iteration
from xsam_theory.torch.optim import (
    SAM,
    USAM,
    XSAM,
    EigenSAM,
    SAMFamily,
    lr_lambda,
    optimizer,
    optimizer_from_config,
)

__all__ = [
    "SAM",
    "USAM",
    "XSAM",
    "EigenSAM",
    "GradientGraph",
    "SAMFamily",
    "TorchEigenResult",
    "flatten",
    "forward_over_reverse_hvp",
    "lanczos_top",
    "lr_lambda",
    "module_loss_function",
    "optimizer",
    "optimizer_from_config",
    "power_iteration",
    "unflatten",
]
