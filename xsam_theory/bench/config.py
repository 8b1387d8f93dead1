"""What the bench measures (:class:`BenchConfig`) and the environment it records."""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xsam_theory._version import __version__

__all__ = [
    "DEFAULT_SECTIONS",
    "MINIBATCH",
    "MIN_SAMPLE_S",
    "MODELS",
    "N_SAMPLES",
    "TEACHER",
    "BenchConfig",
    "environment",
    "loadavg",
    "torch_or_none",
]

#: Student widths of the reference problem plus the GPU-only "large" one.
MODELS = {
    "tiny": (32, 64, 10),
    "small": (32, 256, 256, 10),
    "medium": (32, 1024, 1024, 10),
    "large": (32, 4096, 4096, 10),
}
N_SAMPLES = 2048
MINIBATCH = 128
#: shortest sample of a timing (see :func:`~xsam_theory.bench.timing.interleaved`)
MIN_SAMPLE_S = 0.05
#: every section, in the order they run
DEFAULT_SECTIONS = (
    "ceiling",
    "kernels",
    "eigen",
    "lanczos",
    "hessian",
    "steps",
    "threads",
    "verify",
)
TEACHER = (32, 64, 10)


@dataclass
class BenchConfig:
    """What to measure. ``quick`` shrinks repeats and sections to stay under 2 minutes.

    A CUDA ``device`` forces the torch backend; ``repeats`` defaults to 3 (quick) or 7.

    Raises:
        ValueError: an unknown model, backend or section, or ``repeats``/``threads`` below 1.
    """

    backend: str = "numpy"
    device: str | None = None
    quick: bool = False
    models: tuple[str, ...] = ("tiny", "small", "medium")
    repeats: int | None = None
    threads: int | None = None
    sections: tuple[str, ...] = field(default_factory=lambda: DEFAULT_SECTIONS)
    verify_command: Sequence[str] | None = None

    def __post_init__(self) -> None:
        _known("model", self.models, MODELS)
        _known("section", self.sections, DEFAULT_SECTIONS)
        if self.backend not in ("numpy", "torch"):
            raise ValueError(f"backend must be 'numpy' or 'torch', got {self.backend!r}")
        if self.cuda:
            self.backend = "torch"
        if self.repeats is None:
            self.repeats = 3 if self.quick else 7
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")

    @property
    def cuda(self) -> bool:
        """Whether the device is a CUDA device."""
        return self.device is not None and str(self.device).startswith("cuda")


def _known(what: str, given: Sequence[str], known: Sequence[str]) -> None:
    """Raise ``ValueError`` naming the entries of ``given`` that are not in ``known``."""
    unknown = [g for g in given if g not in known]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; known: {', '.join(known)}")


def torch_or_none() -> Any:
    """The ``torch`` module, or ``None`` when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def environment(cfg: BenchConfig) -> dict[str, Any]:
    """Versions, CPU, BLAS vendors and thread pools (threadpoolctl), and the GPU if used.

    Args:
        cfg: the run's configuration (its backend, device, repeats... are recorded).

    Returns:
        The report's ``environment`` record.
    """
    import scipy

    from xsam_theory.threads import pool_info

    env: dict[str, Any] = {
        "package_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "backend": cfg.backend,
        "device": str(cfg.device or "cpu"),
        "quick": cfg.quick,
        "repeats": cfg.repeats,
        "threads": cfg.threads,
        "models": list(cfg.models),
    }
    torch = torch_or_none()
    if torch is not None:
        env["torch"] = torch.__version__
        env["torch_cuda_available"] = bool(torch.cuda.is_available())
        if cfg.cuda:
            env["gpu"] = torch.cuda.get_device_name(torch.device(cfg.device))
    env.update(pool_info())
    env["loadavg_start"] = loadavg()
    return env


def _cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo``, else ``platform.processor()``."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or ""


def loadavg() -> list[float] | None:
    """The 1/5/15-minute load averages (other processes competing for the cores)."""
    try:
        return [float(x) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None
