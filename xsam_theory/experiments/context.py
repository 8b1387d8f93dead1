"""How an experiment runs: its scale, base seed, backend and where it may keep its runs.

One :class:`ExperimentContext` is handed to every measurement in :mod:`xsam_theory.experiments`
and, through ``xsam-theory verify``, to every check of the claims ledger. Scales are the three
budgets of the ledger on 2 CPU cores: ``quick`` (under a minute for the whole ledger: CI and the
tests), ``default`` (under 5 minutes: what a newcomer runs) and ``full`` (under 30 minutes:
paper-scale seeds and grids). The scales in the ledger: docs/claims.md#C-scales.
"""

from __future__ import annotations

import copy
import functools
import numbers
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from xsam_theory.checks import check_seed

__all__ = ["SCALES", "ExperimentContext", "reusable"]

SCALES = ("quick", "default", "full")


@dataclass(frozen=True)
class ExperimentContext:
    """How an experiment runs.

    Attributes:
        scale: ``quick`` | ``default`` | ``full``.
        seed: the base seed, an integer >= 0; every experiment derives its seeds from it.
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
        object.__setattr__(self, "seed", check_seed(self.seed))
        if self.datasets is not None:
            if isinstance(self.datasets, str):
                raise ValueError(
                    f"datasets must be a sequence of names, got the string {self.datasets!r}"
                )
            names = tuple(str(d).strip() for d in self.datasets)
            if not names or any(not d for d in names):
                raise ValueError(f"datasets must be non-empty names, got {self.datasets!r}")
            object.__setattr__(self, "datasets", names)
        if self.workers is not None and (
            isinstance(self.workers, bool)
            or not isinstance(self.workers, numbers.Integral)
            or self.workers < 1
        ):
            raise ValueError(f"workers must be a positive integer or None, got {self.workers!r}")

    def pick(self, quick: Any, default: Any, full: Any) -> Any:
        """The value for the current scale."""
        return {"quick": quick, "default": default, "full": full}[self.scale]

    def rng(self, stream: int = 0) -> np.random.Generator:
        """A generator seeded by ``(seed, stream)``: independent streams per purpose."""
        return np.random.default_rng([self.seed, stream])

    def measurement_key(self) -> tuple[Any, ...]:
        """What a measurement's result depends on: scale, seed, backend, device, datasets.

        Not where runs are kept, how many workers ran them or whether progress was drawn.
        """
        return (self.scale, self.seed, self.backend, self.device, self.datasets)


F = TypeVar("F", bound=Callable[..., Any])

#: results of :func:`reusable` measurements in this process, newest last
_RESULTS: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
_MAX_RESULTS = 8


def reusable(measure: F) -> F:
    """Let a figure draw the result a claim's check just measured, instead of measuring again.

    ``measure(ctx)`` always runs (a check reads no earlier result, so a changed implementation,
    e.g. a mutation test, is measured afresh; the exception is two claims that judge one
    experiment, which both ask ``reuse=True``) and its result is kept for this process under
    ``ctx.measurement_key()``. ``measure(ctx, reuse=True)`` returns a
    copy of the kept result when there is one, else runs. Calls with other arguments neither
    read nor keep results.
    """

    @functools.wraps(measure)
    def wrapper(ctx: ExperimentContext, *args: Any, reuse: bool = False, **options: Any) -> Any:
        key = (measure.__module__, measure.__qualname__, ctx.measurement_key())
        if args or options:
            return measure(ctx, *args, **options)
        if reuse and key in _RESULTS:
            return copy.deepcopy(_RESULTS[key])
        result = measure(ctx)
        _RESULTS[key] = copy.deepcopy(result)
        _RESULTS.move_to_end(key)
        while len(_RESULTS) > _MAX_RESULTS:
            _RESULTS.popitem(last=False)
        return result

    return wrapper  # type: ignore[return-value]
