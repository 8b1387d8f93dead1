"""Array backends: one implementation of the math, several array libraries.

All numerical code in :mod:`xsam_theory` is written against the Python array API standard and
finds the namespace of its inputs with :func:`namespace` (``array_api_compat.array_namespace``).
NumPy is the default. The documented switch :func:`set_backend` selects the namespace in which
*new* arrays are created (problem data, initial points); arrays already created keep theirs.

This module is the only place with global state in the package, and it holds one thing:
the name of the default backend.

What the switch guarantees (float64 everywhere, NumPy and torch agreeing to 1e-10):
docs/algorithms.md#A-backends; a guide with examples: docs/torch.md.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import array_api_compat
import numpy as np

__all__ = [
    "BACKENDS",
    "add_backend_arguments",
    "apply_backend_arguments",
    "asarray",
    "backend_from_arguments",
    "check_device_form",
    "device_of",
    "get_backend",
    "namespace",
    "placement",
    "resolve_backend",
    "set_backend",
    "to_numpy",
    "use_backend",
]

BACKENDS = ("numpy", "torch")

#: the devices the package accepts, in words (its math is float64: the cpu, or CUDA with torch)
DEVICE_FORMS = "cpu, cuda or cuda:N (N a GPU index)"
_DEVICE_FORM = re.compile(r"cpu|cuda(:[0-9]+)?")

_default: dict[str, str | None] = {"backend": "numpy", "device": None}


def set_backend(name: str, device: str | None = None) -> None:
    """Select the namespace in which new arrays are created: ``"numpy"`` (default) or ``"torch"``.

    ``device`` is passed to the backend (``"cpu"``, ``"cuda"``, ``"cuda:N"``); it must be
    ``None`` or ``"cpu"`` for NumPy.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    check_device_form(device)
    if name == "numpy" and device not in (None, "cpu"):
        raise ValueError(f"device {device!r} is not available on the numpy backend")
    if name == "torch":
        _import_torch()
    _default["backend"] = name
    _default["device"] = None if name == "numpy" else (device or "cpu")


def get_backend() -> tuple[str, str | None]:
    """The current default backend and device, as ``(name, device)``."""
    return _default["backend"], _default["device"]  # type: ignore[return-value]


class use_backend:
    """Context manager: ``with use_backend("torch", "cpu"): ...``; restores the previous backend."""

    def __init__(self, name: str, device: str | None = None):
        self._new = (name, device)

    def __enter__(self) -> None:
        self._old = get_backend()
        set_backend(*self._new)

    def __exit__(self, *exc: object) -> None:
        set_backend(*self._old)


def resolve_backend(name: str, device: str | None = None) -> tuple[ModuleType, Any]:
    """The array-API namespace and device for a backend name, checked: ``(xp, device)``.

    ``("numpy", None | "cpu")`` gives NumPy's namespace and ``None``; ``("torch", device)``
    gives ``array_api_compat.torch`` and a ``torch.device`` (``"cpu"`` by default). Any other
    device — not of the form ``cpu``, ``cuda`` or ``cuda:N`` (``"tpu"``, ``"cuda:x"``, ``"mps"``),
    CUDA on the numpy backend, CUDA without a visible GPU or with an index beyond the GPUs
    present — is a ``ValueError`` naming it and what to use. Use it to move a problem:
    ``problem.convert(*resolve_backend("torch", "cuda"))``.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    check_device_form(device)
    if name == "numpy":
        if device not in (None, "cpu"):
            raise ValueError(
                f"device {device!r} needs the torch backend (--backend torch); "
                "the numpy backend runs on the cpu"
            )
        import array_api_compat.numpy as xp_numpy

        return xp_numpy, None
    torch = _import_torch()
    import array_api_compat.torch as xp_torch

    return xp_torch, _torch_device(torch, "cpu" if device is None else device)


def check_device_form(device: Any) -> None:
    """Raise ``ValueError`` unless ``device`` has a form the package supports.

    The forms are ``None``, ``cpu``, ``cuda`` and ``cuda:N``: the devices the package's float64
    math runs on (torch knows more kinds; the package supports these).
    """
    if device is not None and not (isinstance(device, str) and _DEVICE_FORM.fullmatch(device)):
        raise ValueError(f"device {device!r} is not one of {DEVICE_FORMS}")


def _torch_device(torch: ModuleType, device: str) -> Any:
    """The checked ``torch.device`` for a device of a valid form (see :func:`resolve_backend`)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r}: CUDA is not available to this torch "
                f"({torch.__version__}); use cpu"
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(
                f"device {device!r}: this machine has {count} GPU(s), cuda:0 to cuda:{count - 1}"
            )
    return dev


def add_backend_arguments(parser: Any, *, default: str = "numpy") -> None:
    """Add ``--backend numpy|torch`` and ``--device cpu|cuda[:N]`` to an argparse parser.

    The CLI's commands share this helper; :func:`apply_backend_arguments` turns the parsed
    values into the default backend for the duration of the command.
    """
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        default=default,
        help=f"array backend for the package's math (default {default})",
    )
    parser.add_argument(
        "--device",
        default=None,
        metavar="DEVICE",
        help="device for the torch backend: cpu (default) or cuda[:N]; "
        "--device cuda implies --backend torch",
    )


def backend_from_arguments(args: Any) -> tuple[str, str | None]:
    """The checked ``(name, device)`` of ``args.backend`` / ``args.device``.

    The arguments come from :func:`add_backend_arguments`. ``--device cuda`` with the default
    backend selects torch. Raises ``ValueError`` (with the reason) for an unavailable combination.
    """
    name, device = args.backend, args.device
    if device is not None and str(device).startswith("cuda") and name == "numpy":
        name = "torch"
    resolve_backend(name, device)
    return name, (None if name == "numpy" else (device or "cpu"))


def apply_backend_arguments(args: Any) -> Any:
    """Validate the backend arguments now and return a context manager that applies them.

    ``args.backend`` / ``args.device`` are checked by :func:`backend_from_arguments`; the context
    manager makes them the default backend and yields ``(name, device)``::

        with apply_backend_arguments(args) as (backend, device):
            ...   # problems built here live on that backend
    """
    name, device = backend_from_arguments(args)

    @contextlib.contextmanager
    def active() -> Iterator[tuple[str, str | None]]:
        with use_backend(name, device):
            yield name, device

    return active()


def _import_torch() -> ModuleType:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the torch backend needs PyTorch: install it with `pip install torch==2.13.0`"
        ) from e
    return torch


def default_namespace() -> ModuleType:
    """The array-API namespace of the current default backend."""
    name, _ = get_backend()
    if name == "torch":
        _import_torch()
        import array_api_compat.torch as xp_torch

        return xp_torch
    import array_api_compat.numpy as xp_numpy

    return xp_numpy


def placement(x: Any, xp: ModuleType | None = None) -> tuple[ModuleType, Any]:
    """Where arrays built from ``x`` should live: ``(namespace, device)``.

    An explicit ``xp`` wins (device ``None``: the namespace's default); otherwise an array keeps
    its own namespace and device, and plain Python/NumPy input goes to the default backend.
    """
    if xp is not None:
        return xp, None
    if not isinstance(x, (int, float, list, tuple, np.ndarray, np.generic)):
        try:
            return namespace(x), device_of(x)
        except TypeError:
            pass
    return default_namespace(), get_backend()[1]


#: what ``array_api_compat.array_namespace`` returns for NumPy arrays
_NUMPY_NAMESPACE = array_api_compat.array_namespace(np.empty(0))


def namespace(*arrays: Any) -> ModuleType:
    """The array-API namespace shared by ``arrays`` (``array_api_compat.array_namespace``).

    NumPy arrays take a shortcut to the same answer: the lookup runs several times per
    optimizer step, and the general one costs more than the step's arithmetic on small problems.
    """
    if arrays and all(type(a) is np.ndarray for a in arrays):
        return _NUMPY_NAMESPACE
    return array_api_compat.array_namespace(*arrays)


def device_of(x: Any) -> Any:
    """The device an array lives on (``array_api_compat.device``)."""
    return array_api_compat.device(x)


def asarray(x: Any, *, like: Any = None, xp: ModuleType | None = None, dtype: Any = None) -> Any:
    """Convert ``x`` to an array in the namespace (and on the device) of ``like``, or in ``xp``.

    With neither given, the current default backend (see :func:`set_backend`) is used and the
    dtype defaults to float64 for floating input.
    """
    if like is not None:
        xp = namespace(like)
        device = device_of(like)
        return xp.asarray(
            _host(x, xp), dtype=dtype if dtype is not None else like.dtype, device=device
        )
    if xp is None:
        xp = default_namespace()
        _, device = get_backend()
        if device is not None:
            return xp.asarray(_host(x, xp), dtype=dtype, device=device)
    return xp.asarray(_host(x, xp), dtype=dtype)


def _host(x: Any, xp: ModuleType) -> Any:
    """Make ``x`` acceptable to ``xp.asarray``: foreign arrays go through NumPy on the host."""
    if isinstance(x, (int, float, list, tuple, np.ndarray, np.generic)):
        return x
    try:
        if namespace(x) is xp:
            return x
    except TypeError:
        return x
    return to_numpy(x)


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy (or view) of an array from any supported backend, on the host."""
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, (int, float, list, tuple, np.generic)):
        return np.asarray(x)
    if array_api_compat.is_torch_array(x):
        return x.detach().cpu().numpy()
    try:
        return np.from_dlpack(x)
    except (TypeError, AttributeError, RuntimeError, BufferError):
        return np.asarray(x)
