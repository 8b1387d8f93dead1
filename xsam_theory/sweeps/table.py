"""Stored runs as a tidy table: one flat row per run, filters, CSV, text, pandas.

A row holds ``hash``, ``method``, ``seed``, the configuration leaves as dotted names
(``optimizer.rho``, ``problem.n``, ``init.kind``, ...; lists as JSON text), the scalar results
under their column names, and ``status``, ``outcome``, ``attempts``, ``wall_s``, ``message``.
:func:`tidy` keeps, by default, only the configuration columns that vary between the rows
(examples: docs/sweeps.md).
"""

from __future__ import annotations

import csv
import io
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from xsam_theory.io import atomic_write
from xsam_theory.sweeps.store import RunRecord

__all__ = [
    "Filter",
    "filter_rows",
    "flat_row",
    "format_table",
    "parse_where",
    "tidy",
    "to_dataframe",
    "write_csv",
]

_LEAD = ("hash", "method", "seed")
_TAIL = ("status", "outcome", "attempts", "wall_s", "message")
_SKIP = {"results", "monitors", "package_version", "backend", "method", "seed"}


def _flatten(obj: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, f"{name}.", out)
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        else:
            out[name] = value


def config_columns(config: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration leaves of a run as ``{dotted.name: value}`` (lists as JSON text)."""
    out: dict[str, Any] = {}
    _flatten({k: v for k, v in config.items() if k not in _SKIP}, "", out)
    return out


def flat_row(record: RunRecord) -> dict[str, Any]:
    """Every column of one run (see the module docstring)."""
    return {
        "hash": record.hash,
        "method": record.method,
        "seed": record.seed,
        **config_columns(record.config),
        **record.results,
        "status": record.status,
        "outcome": record.outcome,
        "attempts": record.attempts,
        "wall_s": record.wall_s,
        "message": record.message,
    }


def tidy(records: Iterable[RunRecord], *, columns: str = "varying") -> list[dict[str, Any]]:
    """One flat row per run.

    Args:
        records: the run records (of a store or a sweep result).
        columns: ``"varying"`` keeps the configuration columns whose value differs between the
            records (plus ``hash``, ``method``, ``seed``, the results and the status columns);
            ``"all"`` keeps every configuration leaf.
    """
    if columns not in ("varying", "all"):
        raise ValueError(f"columns must be 'varying' or 'all', got {columns!r}")
    records = list(records)
    configs = [config_columns(r.config) for r in records]
    names: list[str] = []
    for c in configs:
        names += [k for k in c if k not in names]
    if columns == "varying":
        names = [
            k for k in names if len({json.dumps(c.get(k), sort_keys=True) for c in configs}) > 1
        ]
    result_names: list[str] = []
    for r in records:
        result_names += [k for k in r.results if k not in result_names]
    rows = []
    for r, c in zip(records, configs):
        row = {"hash": r.hash, "method": r.method, "seed": r.seed}
        row.update({k: c.get(k) for k in names})
        row.update({k: r.results.get(k) for k in result_names})
        row.update(
            {
                "status": r.status,
                "outcome": r.outcome,
                "attempts": r.attempts,
                "wall_s": r.wall_s,
                "message": _first_line(r.message),
            }
        )
        rows.append(row)
    return rows


def _first_line(message: str) -> str:
    lines = [ln for ln in (message or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


# -- filters ------------------------------------------------------------------------------------

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
_WHERE = re.compile(r"\s*(?P<key>[^=!<>\s]+)\s*(?P<op>!=|<=|>=|==|=|<|>)\s*(?P<value>.*?)\s*")


class Filter:
    """One ``KEY OP VALUE`` condition (``OP`` in ``= == != < <= > >=``) on a flat row.

    ``KEY`` is a column name or its unique last dotted part (``rho`` for ``optimizer.rho``);
    ``VALUE`` is read as JSON when it parses (numbers, ``true``, ``null``), as text otherwise.
    :meth:`check_column` refuses a value that cannot compare with a column's values (text
    for a column of numbers, a number ordered against text).

    >>> Filter.parse("rho>=0.05")({"optimizer.rho": 0.1})
    True
    """

    def __init__(self, key: str, op: str, value: Any):
        self.key, self.op, self.value = key, "=" if op == "==" else op, value

    def __str__(self) -> str:
        value = self.value if isinstance(self.value, str) else json.dumps(self.value)
        return f"{self.key}{self.op}{value}"

    @classmethod
    def parse(cls, text: str) -> Filter:
        """The filter ``KEY OP VALUE`` in ``text``; ``ValueError`` if ``text`` has another form."""
        m = _WHERE.fullmatch(text)
        if m is None:
            raise ValueError(f"--where takes KEY=VALUE (or !=, <, <=, >, >=), got {text!r}")
        raw = m["value"]
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        return cls(m["key"], m["op"], value)

    def column(self, names: Sequence[str]) -> str:
        """The column this filter's key refers to, among ``names``."""
        if self.key in names:
            return self.key
        hits = [n for n in names if n.rsplit(".", 1)[-1] == self.key or n.endswith("." + self.key)]
        if len(hits) == 1:
            return hits[0]
        if not hits:
            raise ValueError(f"--where {self.key!r}: no such column; columns are {sorted(names)}")
        raise ValueError(f"--where {self.key!r} is ambiguous: {sorted(hits)}")

    def check_column(self, column: str, values: Iterable[Any]) -> None:
        """Refuse (``ValueError``) a value of the wrong kind for ``column``.

        The column's values are ``values`` (``None``, an empty cell, is ignored): a column of
        numbers compares only with a number (or ``null`` for ``=``/``!=``); an ordering (``<``,
        ``>``, ...) on a column of text needs text.
        """
        kinds = {_kind(v) for v in values if v is not None}
        want = _kind(self.value)
        if (
            kinds == {"number"}
            and want != "number"
            and not (self.value is None and self.op in ("=", "!="))
        ):
            raise ValueError(
                f"--where {str(self)!r}: column {column!r} holds numbers, and "
                f"{self.value!r} is not a number"
            )
        if kinds == {"text"} and self.op not in ("=", "!=") and want != "text":
            raise ValueError(
                f"--where {str(self)!r}: column {column!r} holds text; compare "
                "it with = or != or with text"
            )

    def __call__(self, row: Mapping[str, Any]) -> bool:
        """Whether ``row`` satisfies the condition.

        An ordering between values that do not compare (``TypeError``) is false.
        """
        have = row.get(self.column(list(row)))
        want = self.value
        if isinstance(want, (list, dict)) and isinstance(have, str):
            want = json.dumps(want)
        if self.op in ("=", "!="):
            equal = have == want or (isinstance(have, str) and have == str(want))
            return equal if self.op == "=" else not equal
        try:
            return bool(_OPS[self.op](have, want))
        except TypeError:
            return False


def _kind(value: Any) -> str:
    """``"number"``, ``"text"`` or ``"other"`` (booleans, lists, tables, ``None``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "number"
    return "text" if isinstance(value, str) else "other"


def parse_where(conditions: Iterable[str]) -> list[Filter]:
    """Parse ``--where`` conditions (all must hold)."""
    return [Filter.parse(c) for c in conditions]


def filter_rows(records: Sequence[RunRecord], filters: Sequence[Filter]) -> list[RunRecord]:
    """The records whose full flat row satisfies every filter.

    A filter on an unknown column, or with a value that cannot compare with its column, is a
    ``ValueError``.
    """
    if not filters:
        return list(records)
    rows = [flat_row(r) for r in records]
    names = sorted({k for row in rows for k in row})
    for f in filters:
        column = f.column(names)  # an unknown or ambiguous key is an error even with no rows
        f.check_column(column, (row.get(column) for row in rows))
    return [r for r, row in zip(records, rows) if all(f(row) for f in filters)]


# -- output -------------------------------------------------------------------------------------


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)
    return v


def write_csv(rows: Sequence[Mapping[str, Any]], path: str) -> None:
    """Write rows as CSV (full float precision), atomically."""
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_csv_value(row.get(k)) for k in names])
    atomic_write(path, lambda f: f.write(text.getvalue().encode("utf-8")))


def _cell(v: Any, key: str) -> str:
    if v is None:
        return ""
    if key == "hash":
        return str(v)[:12]
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}" if math.isfinite(v) else str(v)
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def format_table(rows: Sequence[Mapping[str, Any]], *, drop_empty: bool = True) -> str:
    """Rows as an aligned text table (hash shortened to 12 characters, floats to 6 digits)."""
    if not rows:
        return "(no runs)"
    names: list[str] = []
    for row in rows:
        names += [k for k in row if k not in names]
    if drop_empty:
        names = [k for k in names if any(row.get(k) not in (None, "") for row in rows)]
    cells = [[_cell(row.get(k), k) for k in names] for row in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(names)]
    lines = [
        "  ".join(k.ljust(w) for k, w in zip(names, widths)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(cell_row, widths)).rstrip() for cell_row in cells
    ]
    return "\n".join(lines)


def to_dataframe(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Rows as a :class:`pandas.DataFrame` (pandas is optional: ``ImportError`` says so)."""
    try:
        import pandas as pd
    except ImportError as e:
        raise ImportError(
            "to_dataframe needs pandas (pip install pandas); the plain rows "
            "(list of dicts) need nothing"
        ) from e
    return pd.DataFrame(list(rows))
