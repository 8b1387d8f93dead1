"""The README's example runs as written and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_prints_lambda_max_before_and_after():
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "README.md has no python example"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(blocks[0], "README.md", "exec"), {"__name__": "readme"})
    printed = out.getvalue()
    assert "lambda_max at init" in printed
    for name in ("sam", "xsam_paper"):
        line = next(ln for ln in printed.splitlines() if ln.strip().startswith(f"{name}:"))
        before, after = re.findall(r"lambda_max ([0-9.]+) -> ([0-9.]+)", line)[0]
        assert float(before) > 0 and float(after) > 0


def test_readme_names_the_test_command_that_ci_runs():
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "```bash\npytest\n```" in README.read_text(encoding="utf-8")
    assert ci.strip().splitlines()[-1].strip() == "pytest"
