"""How an experiment runs: its scale, base seed, backend and where it may keep its runs.

One :class:`ExperimentContext` is handed to every measurement in :mod:`xsam_theory.experiments`
and, through ``xsam-theory verify``, to every check of the claims ledger. Scales are the three
budgets of the ledger on 2 CPU cores: ``quick`` (under a minute for the whole ledger: CI and the
tests), ``default`` (under 5 minutes: what a newcomer runs) and ``full`` (under 30 minutes:
paper-scale seeds and grids).
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["SCALES", "ExperimentContext"]

SCALES = ("quick", "default", "full")


@dataclass(frozen=True)
class ExperimentContext:
    """How an experiment runs.

    Attributes:
        scale: ``quick`` | ``default`` | ``full``.
        seed: the base seed; every experiment derives its seeds from it.
        backend, device: where the implementation under test runs (measurements stay NumPy).
        out_dir: a folder where runs may be kept (``verify --out``); ``None``: nothing is kept.
        progress: whether long experiments (sweeps) may draw progress on stderr.
        datasets: the datasets of the generalization study (names registered with
            :func:`xsam_theory.data.register_dataset` or ``module:function`` loaders);
            ``None``: the scale's defaults.
        workers: local worker processes for sweeps (``None``: the available cores).
    """

    scale: str = "default"
    seed: int = 0
    backend: str = "numpy"
    device: str | None = None
    out_dir: str | None = None
    progress: bool = True
    datasets: tuple[str, ...] | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) \
                or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        if self.datasets is not None:
            if isinstance(self.datasets, str):
                raise ValueError(f"datasets must be a sequence of names, got the string "
                                 f"{self.datasets!r}")
            names = tuple(str(d).strip() for d in self.datasets)
            if not names or any(not d for d in names):
                raise ValueError(f"datasets must be non-empty names, got {self.datasets!r}")
            object.__setattr__(self, "datasets", names)
        if self.workers is not None and (isinstance(self.workers, bool) or
                                         not isinstance(self.workers, numbers.Integral) or
                                         self.workers < 1):
            raise ValueError(f"workers must be a positive integer or None, got {self.workers!r}")

    def pick(self, quick: Any, default: Any, full: Any) -> Any:
        """The value for the current scale."""
        return {"quick": quick, "default": default, "full": full}[self.scale]

    def rng(self, stream: int = 0) -> np.random.Generator:
        """A generator seeded by ``(seed, stream)``: independent streams per purpose."""
        return np.random.default_rng([self.seed, stream])
