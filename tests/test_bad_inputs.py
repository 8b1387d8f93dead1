"""Bad inputs get clear errors (docs/reliability.md, docs/bad_inputs.md).

The tables in ``docs/bad_inputs.md`` are executed row by row (Python calls, and ``xsam-theory``
command lines run in a fresh working directory), and two hypothesis properties sweep whole classes
of bad input.
"""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from xsam_theory import NonFiniteError, OptimizerConfig
from xsam_theory.cli import main as cli_main
from xsam_theory.strategies import InvalidOption, invalid_optimizer_options, problem_cases
from xsam_theory.sweeps import StoreError

DOC = Path(__file__).resolve().parents[1] / "docs" / "bad_inputs.md"

#: the bad inputs the issue names; each must have at least one row
REQUIRED = (
    "nan-parameters",
    "nan-inputs",
    "inf-targets",
    "shape-parameters",
    "shape-inputs",
    "empty-data",
    "negative-rho",
    "zero-lr",
    "negative-lr",
    "negative-alpha",
    "unknown-sign-rule",
    "refresh-zero",
    "non-symmetric-hessian",
    "zero-dim-quadratic",
    "sweep-seeds-int",
    "cli-sweep-seeds-int",
    "sweep-nan-in-grid",
    "cli-sweep-nan-in-grid",
    "cli-sweep-inf-in-problem",
    "sweep-lease-negative",
    "cli-sweep-lease-zero",
    "cli-sweep-store-under-file",
    "cli-results-text-file",
    "cli-verify-out-file",
    "cli-figures-out-file",
    "cli-verify-device-tpu",
    "cli-sweep-scheduler-unreachable",
    "resolve-device-tpu",
)

EXCEPTIONS = {"ValueError": ValueError, "NonFiniteError": NonFiniteError, "StoreError": StoreError}


def _cells(line: str) -> list[str]:
    r"""Cells of a markdown table row, splitting on unescaped pipes, unescaping ``\|``."""
    parts = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [p.strip().replace("\\|", "|") for p in parts]


def _code(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1]


CLI_HEADING = "\n## Command line\n"


def _parse() -> tuple[str, list[tuple[str, str, str]]]:
    """The Python setup block and the rows ``(id, call, error)`` of the Python table."""
    text = DOC.read_text(encoding="utf-8").split(CLI_HEADING)[0]
    setup = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    rows = []
    for line in text.splitlines():
        if line.startswith("| `"):
            cells = _cells(line)
            assert len(cells) == 4, line
            rows.append((_code(cells[0]), _code(cells[2]), _code(cells[3])))
    return setup, rows


def _parse_cli() -> tuple[dict[str, str], list[tuple[str, str, int, str]]]:
    """The setup files and the rows of the command-line table.

    The setup files are every fenced block of the document that starts with ``# file: NAME``, that
    line left out; the rows are ``(id, arguments, exit status, error)``.
    """
    text = DOC.read_text(encoding="utf-8")
    files = dict(re.findall(r"```[\w-]*\n# file: (\S+)\n(.*?)```", text, re.S))
    assert CLI_HEADING in text, "docs/bad_inputs.md has no '## Command line' section"
    rows = []
    for line in text.split(CLI_HEADING, 1)[1].splitlines():
        if line.startswith("| `"):
            cells = _cells(line)
            assert len(cells) == 5, line
            command = _code(cells[2])
            assert command.startswith("xsam-theory"), line
            rows.append(
                (
                    _code(cells[0]),
                    command.removeprefix("xsam-theory").strip(),
                    int(_code(cells[3])),
                    _code(cells[4]),
                )
            )
    return files, rows


SETUP, ROWS = _parse()
SETUP_FILES, CLI_ROWS = _parse_cli()


def test_the_table_covers_every_bad_input_the_issue_names():
    ids = [r[0] for r in ROWS] + [r[0] for r in CLI_ROWS]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    assert set(REQUIRED) <= set(ids)
    assert len(ROWS) >= 100
    assert {"a_file", "ok.toml", "notastore.sqlite", "empty.sqlite"} <= set(SETUP_FILES)
    assert len(CLI_ROWS) >= 39


def _enter_fresh_workdir(tmp_path, monkeypatch) -> None:
    """Make ``tmp_path`` the working directory, holding every setup file of the document."""
    for name, content in SETUP_FILES.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("row_id", "call", "error"), ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_row(row_id, call, error, tmp_path, monkeypatch):
    """One row of docs/bad_inputs.md raises (or warns) exactly the error shown.

    The call runs in a fresh working directory holding the setup files.
    """
    _enter_fresh_workdir(tmp_path, monkeypatch)
    namespace: dict = {}
    exec(SETUP, namespace)
    kind, message = error.split(": ", 1)
    if kind.endswith(" (warning)"):
        category = {"UserWarning": UserWarning}[kind.removesuffix(" (warning)")]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            eval(call, namespace)
        assert [str(w.message) for w in caught if issubclass(w.category, category)] == [message]
        return
    with pytest.raises(EXCEPTIONS[kind]) as info:
        eval(call, namespace)
    assert type(info.value).__name__ == kind
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("row_id", "args", "status", "error"), CLI_ROWS, ids=[r[0] for r in CLI_ROWS]
)
def test_bad_command_line_row(row_id, args, status, error, tmp_path, monkeypatch, capsys):
    """One command-line row of docs/bad_inputs.md exits with its status and error, no traceback.

    In a fresh working directory holding the setup files, ``xsam-theory ARGS`` exits with the status
    shown, its stderr contains the error text, and no traceback is printed.
    """
    _enter_fresh_workdir(tmp_path, monkeypatch)
    try:
        code = cli_main(shlex.split(args))
    except SystemExit as exit_:  # argparse's parser.error exits 2
        code = exit_.code
    out, err = capsys.readouterr()
    assert (code or 0) == status, (code, err)
    assert error in err, err
    assert "Traceback" not in out + err, out + err


# Pinned edge case (not a failure): ``True`` is an int in Python; lr=True must be rejected as
# "not a finite number" rather than accepted as lr = 1.
@given(invalid_optimizer_options())
@example(InvalidOption({"method": "xsam", "lr": True, "rho": 0.05, "alpha": 0.5}, "lr", True))
def test_every_invalid_option_raises_value_error_naming_the_option_and_value(bad):
    """Invalid options raise ValueError naming the option and the value.

    Which options are valid for which method: docs/algorithms.md#A-options.
    """
    with pytest.raises(ValueError) as info:
        OptimizerConfig(**bad.options)
    message = str(info.value)
    assert re.search(rf"\b{re.escape(bad.name)}\b", message), message
    assert repr(bad.value) in message, message


NON_FINITE = (np.nan, np.inf, -np.inf)


@given(problem_cases(), st.data())
def test_non_finite_parameters_anywhere_raise_a_clear_error(pc, data):
    """A NaN or ±inf at any position of w raises ValueError for every problem family.

    This holds for the loss, the gradient and the HVP alike (never a silent NaN).
    """
    i = data.draw(st.integers(0, pc.problem.dim - 1))
    w = pc.w.copy()
    w[i] = data.draw(st.sampled_from(NON_FINITE))
    v = np.ones(pc.problem.dim)
    for call in (
        lambda: pc.problem.loss(w),
        lambda: pc.problem.grad(w),
        lambda: pc.problem.hvp(w, v),
    ):
        with pytest.raises(ValueError, match=r"^w contains non-finite values \(NaN or inf\)$"):
            call()
