"""Interleaved timing: every contender once per round, the median over the rounds."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Timing", "fmt_s", "interleaved"]

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Timing:
    """Seconds of one contender over the repeats of an interleaved measurement."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median sample, in seconds."""
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        """The shortest sample, in seconds."""
        return min(self.samples)

    @property
    def max(self) -> float:
        """The longest sample, in seconds."""
        return max(self.samples)

    def to_dict(self) -> dict[str, Any]:
        """The JSON fields ``median_s``, ``min_s``, ``max_s`` and ``repeats``."""
        return {
            "median_s": self.median,
            "min_s": self.min,
            "max_s": self.max,
            "repeats": len(self.samples),
        }

    def __str__(self) -> str:
        return f"{fmt_s(self.median)} [{fmt_s(self.min)}–{fmt_s(self.max)}]"


def fmt_s(s: float) -> str:
    """Seconds in s, ms or µs, whichever reads best.

    Args:
        s: a duration in seconds.

    Returns:
        ``"1.23 s"`` from 1 s up, ``"12.3 ms"`` from 1 ms up, ``"123 µs"`` below.
    """
    if s >= 1.0:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.1f} ms"
    return f"{s * 1e6:.0f} µs"


def interleaved(
    contenders: dict[K, Callable[[], Any]],
    repeats: int,
    *,
    warmup: int = 1,
    sync: Callable[[], None] | None = None,
    min_sample_s: float = 0.0,
) -> dict[K, Timing]:
    """Time every contender ``repeats`` times, in turn (round-robin), after ``warmup`` rounds.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before the clock starts and before it stops.
    With ``min_sample_s > 0`` (and a warmup round), a contender faster than that is called
    ``n = ceil(min_sample_s / t_warmup)`` times per sample (at most 1000) and the sample is the
    mean: on a shared machine a short call is either untouched or stretched by a whole scheduler
    time slice, while a longer sample absorbs its share of the competition, so ratios stay
    unbiased.

    Args:
        contenders: callables by key (any hashable: a label or a row key).
        repeats: samples kept per contender.
        warmup: rounds run first and discarded.
        sync: called before starting and before stopping the clock.
        min_sample_s: shortest sample (see above); 0 calls each contender once per sample.

    Returns:
        A :class:`Timing` per key, in the order of ``contenders``.
    """
    samples: dict[K, list[float]] = {key: [] for key in contenders}
    loops = dict.fromkeys(contenders, 1)
    for r in range(warmup + repeats):
        for key, fn in contenders.items():
            dt = _timed(fn, loops[key], sync)
            if r >= warmup:
                samples[key].append(dt)
            elif min_sample_s > 0 and r == warmup - 1:
                loops[key] = max(1, min(1000, math.ceil(min_sample_s / max(dt, 1e-7))))
    return {key: Timing(tuple(s)) for key, s in samples.items()}


def _timed(fn: Callable[[], Any], n: int, sync: Callable[[], None] | None) -> float:
    """Mean seconds of ``n`` calls of ``fn``, between two ``sync`` calls."""
    if sync:
        sync()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    if sync:
        sync()
    return (time.perf_counter() - t0) / n
