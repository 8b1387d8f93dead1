"""docs/algorithms.md's option and preset tables match OPTION_USE and PRESETS (no drift)."""

import re
from pathlib import Path

from xsam_theory.optimizers import OPTION_USE, PRESETS

PAGE = Path(__file__).resolve().parents[1] / "docs" / "algorithms.md"


def _section(anchor: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index(f"({anchor})=")
    end = text.find("\n(A-", start + 1)
    return text[start : end if end > 0 else None]


def _first_cells(section: str) -> list[str]:
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]


def test_option_table_is_option_use():
    rows = {}
    for line in _section("A-options").splitlines():
        m = re.match(r"\| `(\w+)` \| ([^|]+) \| `([^`]+)` \|", line)
        if m:
            rows[m.group(1)] = (m.group(2).strip(), m.group(3))
    assert list(rows) == list(OPTION_USE)
    for name, use in OPTION_USE.items():
        methods, off = rows[name]
        if len(use.methods) < 4:
            assert set(methods.split(", ")) == {m.value for m in use.methods}, name
        shown = getattr(use.off, "value", use.off)
        assert off == (f'"{shown}"' if isinstance(shown, str) else repr(shown)), name


def test_preset_table_is_presets():
    names = _first_cells(_section("A-presets").split("In words:")[0])
    assert names == list(PRESETS)
