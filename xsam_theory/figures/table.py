"""The numbers a figure plots, as one tidy table (one row per plotted point), written as CSV.

A :class:`Table` is a list of rows (dictionaries) whose columns are the union of the rows' keys in
the order they first appear. Floats are written with ``repr`` (the shortest text that reads back
to the same float), so a test can compare the CSV against a closed form to the last bit.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Table", "read_csv"]


def _text(x: Any) -> str:
    if x is None:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        f = float(x)
        return (
            repr(f)
            if math.isfinite(f)
            else ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf"))
        )
    return str(x)


def _value(s: str) -> Any:
    if s == "":
        return None
    if s in ("true", "false"):
        return s == "true"
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


class Table:
    """Rows of named values; :meth:`col` and :meth:`where` select, :meth:`to_csv` writes.

    >>> t = Table()
    >>> t.add(series="a", x=1.0, y=2.5)
    >>> t.add(series="b", x=1.0, y=0.1)
    >>> t.where(series="b").col("y").tolist()
    [0.1]
    >>> print(t.to_csv().strip())
    series,x,y
    a,1.0,2.5
    b,1.0,0.1
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()):
        self.rows: list[dict[str, Any]] = []
        self.columns: list[str] = []
        for r in rows:
            self.add(**r)

    def add(self, **row: Any) -> None:
        """Append one row."""
        for k in row:
            if k not in self.columns:
                self.columns.append(k)
        self.rows.append(dict(row))

    def add_series(self, columns: Mapping[str, Any], **constant: Any) -> None:
        """Append one row per entry of the equal-length arrays in ``columns``.

        Each row also carries the ``constant`` values (e.g. the series name and its
        hyperparameters).
        """
        arrays = {k: np.asarray(v) for k, v in columns.items()}
        lengths = {a.shape[0] for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(
                f"columns must have equal lengths, got { {k: a.shape for k, a in arrays.items()} }"
            )
        n = lengths.pop()
        for i in range(n):
            self.add(**constant, **{k: a[i].item() for k, a in arrays.items()})

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def where(self, **match: Any) -> Table:
        """The rows whose columns equal every ``match`` value."""
        return Table(r for r in self.rows if all(r.get(k) == v for k, v in match.items()))

    def col(self, name: str, **match: Any) -> np.ndarray:
        """Column ``name`` (of the rows matching ``match``) as an array.

        Numbers as float64, missing values as NaN.
        """
        rows = self.where(**match).rows if match else self.rows
        vals = [r.get(name) for r in rows]
        if all(v is None or isinstance(v, (int, float, np.number, bool)) for v in vals):
            return np.array([math.nan if v is None else float(v) for v in vals])
        return np.array(vals, dtype=object)

    def unique(self, name: str, **match: Any) -> list[Any]:
        """Distinct values of column ``name``, in order of first appearance."""
        out: list[Any] = []
        for r in self.where(**match) if match else self:
            v = r.get(name)
            if v is not None and v not in out:
                out.append(v)
        return out

    def to_csv(self) -> str:
        """The table as CSV text: a header of the columns, then one line per row."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for r in self.rows:
            w.writerow([_text(r.get(c)) for c in self.columns])
        return buf.getvalue()


def read_csv(path: str | os.PathLike[str]) -> Table:
    """Read a CSV written by :meth:`Table.to_csv` (numbers back as int/float, empty as None)."""
    with open(Path(path), newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return Table({k: _value(v) for k, v in zip(header, row)} for row in reader)
