"""The bench's report: rows per section, found by their keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from xsam_theory.bench.config import BenchConfig
from xsam_theory.bench.keys import Kernel, Library, RowKey, label
from xsam_theory.bench.timing import Timing

__all__ = ["NotMeasured", "Report", "key_row", "timed_row"]


class NotMeasured(LookupError):
    """A target's measurement is not in the report; ``key`` says which."""

    def __init__(self, key: RowKey):
        """Record the missing row's ``key``."""
        super().__init__(f"no row {key}")
        self.key = key


@dataclass
class Report:
    """Everything one run measured: its configuration, environment, rows and targets."""

    config: BenchConfig
    env: dict[str, Any]
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, section: str, row: dict[str, Any]) -> None:
        """Append ``row`` to ``section``."""
        self.sections.setdefault(section, []).append(row)

    def rows(self, section: str, **match: Any) -> list[dict[str, Any]]:
        """The rows of ``section`` whose fields equal ``match`` (enums compared by value)."""
        want = {k: v.value if isinstance(v, Enum) else v for k, v in match.items()}
        return [
            r for r in self.sections.get(section, []) if all(r.get(k) == v for k, v in want.items())
        ]

    def find(self, key: RowKey) -> dict[str, Any]:
        """The first row ``key`` matches.

        Raises:
            NotMeasured: no row matches.
        """
        return self.find_all(key)[0]

    def find_all(self, key: RowKey) -> list[dict[str, Any]]:
        """Every row ``key`` matches (at least one).

        Raises:
            NotMeasured: no row matches.
        """
        found = self.rows(key.section, **key.fields())
        if not found:
            raise NotMeasured(key)
        return found

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: environment, sections, targets, seconds."""
        return {
            "environment": self.env,
            "sections": self.sections,
            "targets": self.targets,
            "seconds": self.seconds,
        }


def key_row(library: Library | None, kernel: Kernel, **extra: Any) -> dict[str, Any]:
    """A row: its display label as ``name``, its keys ``kernel`` and ``library``, and ``extra``.

    ``library`` is left out when it is ``None``; enums are stored as their values.
    """
    row: dict[str, Any] = {"name": label(library, kernel), "kernel": kernel.value}
    if library is not None:
        row["library"] = library.value
    return {**row, **extra}


def timed_row(
    library: Library | None, kernel: Kernel, timing: Timing, **extra: Any
) -> dict[str, Any]:
    """:func:`key_row` with the timing's fields (``median_s``, ``min_s``, ...) before ``extra``."""
    return key_row(library, kernel, **timing.to_dict(), **extra)
