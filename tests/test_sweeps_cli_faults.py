"""The ``sweep`` and ``results`` commands under bad input and signals.

Output paths checked before any run, spec values that cannot make a run (seeds that are not a
list of non-negative integers, NaN or inf anywhere), ``--where`` values of the wrong kind, grids
too large to expand, SIGTERM handled like Ctrl-C, and the ``--lease`` option.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xsam_theory.cli import main
from xsam_theory.sweeps import SweepSpec, run_sweep
from xsam_theory.sweeps import commands as sweep_commands
from xsam_theory.sweeps import spec as spec_module

ROOT = Path(__file__).resolve().parents[1]

OK_TOML = """\
name = "ok"
steps = 5
seeds = [0, 1]

[problem]
name = "factorization"
n = 3

[[optimizers]]
preset = "sam"
"""

#: 16 runs of roughly 0.07 s each (on an idle core): long enough to be stopped part-way
SLOW_TOML = """\
name = "slow"
steps = 500
seeds = [0, 1]

[problem]
name = "factorization"
n = 4

[init]
kind = "normal"

[[optimizers]]
preset = "xsam_paper"
lr = 0.05
eigvec_source = "exact"
grid = { rho = [0.02, 0.05], alpha = [0.0, 0.5, 1.0, 1.5] }

[[monitors]]
type = "spectral"
every = 250
method = "exact"
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A working directory with ``a_file`` (a plain file) and ``ok.toml`` (a tiny spec)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("a plain file\n")
    (tmp_path / "ok.toml").write_text(OK_TOML)
    return tmp_path


@pytest.fixture
def no_runs(monkeypatch):
    """Fail the test if the sweep command reaches the runner."""

    def refuse(*args, **kwargs):
        raise AssertionError("run_sweep was called: the bad input was not refused first")

    monkeypatch.setattr(sweep_commands, "run_sweep", refuse)


def cli_error(argv, capsys) -> str:
    """Run the CLI on ``argv``; it must exit 2 with ``error: ...`` and no traceback."""
    try:
        status = main(argv)
    except SystemExit as e:  # argparse's parser.error
        status = e.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "error: " in err and "Traceback" not in err
    return err


def unwritable_folder() -> Path:
    """A folder in which no file can be created, even by root (``/sys`` on Linux)."""
    folder = Path("/sys")
    try:
        (folder / ".xsam-write-test").touch()
    except OSError:
        return folder
    (folder / ".xsam-write-test").unlink()
    pytest.skip("no unwritable folder on this system")


# -- output paths checked before any work -------------------------------------------------------


@pytest.mark.parametrize(
    "store, message",
    [
        ("a_file/x.sqlite", "a_file is a file, not a folder"),
        (".", ". is a folder; give a file name inside it"),
        ("UNWRITABLE/x.sqlite", "no file can be created in"),
    ],
)
def test_a_store_path_that_cannot_be_written_is_refused_before_any_run(
    workdir, no_runs, capsys, store, message
):
    if store.startswith("UNWRITABLE"):
        store = store.replace("UNWRITABLE", str(unwritable_folder()))
    err = cli_error(["sweep", "ok.toml", "--store", store, "--workers", "1"], capsys)
    assert "cannot write the results store" in err and message in err


@pytest.fixture(scope="module")
def ok_store(tmp_path_factory):
    """A finished store of the tiny spec (two runs)."""
    d = tmp_path_factory.mktemp("ok")
    (d / "ok.toml").write_text(OK_TOML)
    result = run_sweep(d / "ok.toml", d / "ok.sqlite", workers=1)
    assert result.ok
    return d / "ok.sqlite"


@pytest.mark.parametrize(
    "csv, message",
    [
        (".", ". is a folder; give a file name inside it"),
        ("a_file/x.csv", "a_file is a file, not a folder"),
    ],
)
def test_a_csv_path_that_cannot_be_written_is_refused_before_reading(
    workdir, ok_store, capsys, csv, message
):
    err = cli_error(["results", str(ok_store), "--csv", csv], capsys)
    assert f"cannot write --csv {csv}" in err and message in err
    assert main(["results", str(ok_store), "--csv", "new/folder/t.csv"]) == 0
    assert (workdir / "new" / "folder" / "t.csv").read_text().count("\n") == 3


def test_no_probe_file_is_left_behind(tmp_path):
    assert sweep_commands.unwritable_file(tmp_path / "x.sqlite") is None
    assert list(tmp_path.iterdir()) == []


# -- spec values --------------------------------------------------------------------------------

SEEDS_FORM = "seeds must be a list of distinct non-negative integers, e.g. seeds = [0, 1, 2]"


@pytest.mark.parametrize(
    "seeds, message",
    [
        (3, f"{SEEDS_FORM}; got 3"),
        ([0, -1], f"seeds[1] = -1 is negative; {SEEDS_FORM}"),
        ([0.5], f"seeds[0] = 0.5 is not an integer; {SEEDS_FORM}"),
        ([True, 1], f"seeds[0] = True is not an integer; {SEEDS_FORM}"),
        (["0"], f"seeds[0] = '0' is not an integer; {SEEDS_FORM}"),
    ],
)
def test_seeds_must_be_a_list_of_non_negative_integers(seeds, message):
    data = {
        "name": "s",
        "problem": {"name": "factorization", "n": 3},
        "optimizers": [{"preset": "sam"}],
        "seeds": seeds,
    }
    with pytest.raises(ValueError) as info:
        SweepSpec.from_dict(data)
    assert str(info.value) == message


def test_seeds_as_an_int_in_a_spec_file_is_a_clear_cli_error(workdir, no_runs, capsys):
    (workdir / "s.toml").write_text(OK_TOML.replace("seeds = [0, 1]", "seeds = 3"))
    err = cli_error(["sweep", "s.toml"], capsys)
    assert f"s.toml: {SEEDS_FORM}; got 3" in err


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"problem": {"name": "quadratic", "eigenvalues": [2.0, 1.0], "seed": -1}},
            "problem.seed = -1: a seed must be a non-negative integer",
        ),
        (
            {
                "problem": {"name": "quadratic", "eigenvalues": [2.0, 1.0]},
                "grid": {"problem.seed": [0, -2]},
            },
            "grid['problem.seed'][1] = -2: a seed must be a non-negative integer",
        ),
    ],
)
def test_a_negative_problem_seed_is_refused_in_the_spec_not_by_numpy(changes, message):
    data = {
        "name": "s",
        "problem": {"name": "factorization", "n": 3},
        "optimizers": [{"preset": "sam"}],
        **changes,
    }
    with pytest.raises(ValueError) as info:
        SweepSpec.from_dict(data).runs()
    assert str(info.value) == message


@pytest.mark.parametrize(
    "changes, where",
    [
        (
            {"optimizers": [{"preset": "sam", "grid": {"rho": [0.1, float("nan")]}}]},
            "optimizers[0].grid.rho[1] is nan",
        ),
        (
            {"problem": {"name": "quadratic", "eigenvalues": [2.0, float("inf")]}},
            "problem.eigenvalues[1] is inf",
        ),
        ({"init": {"kind": "normal", "scale": float("-inf")}}, "init.scale is -inf"),
        ({"grid": {"lr": [float("nan")]}}, "grid.lr[0] is nan"),
    ],
)
def test_a_nan_or_inf_anywhere_in_a_spec_names_its_place(changes, where):
    data = {
        "name": "s",
        "problem": {"name": "factorization", "n": 3},
        "optimizers": [{"preset": "sam"}],
        **changes,
    }
    with pytest.raises(ValueError) as info:
        SweepSpec.from_dict(data)
    assert str(info.value) == f"{where}: sweep spec values must be finite numbers"


def test_a_nan_in_a_spec_file_is_a_clear_cli_error(workdir, no_runs, capsys):
    (workdir / "nan.toml").write_text(OK_TOML + "grid = { rho = [0.1, nan] }\n")
    err = cli_error(["sweep", "nan.toml"], capsys)
    assert "nan.toml: optimizers[0].grid.rho[1] is nan" in err


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no sweep spec file at missing.toml"),
        ("name = \n", "invalid TOML"),
        ('name = "x"\nstepz = 3\n', "unknown sweep spec key(s) ['stepz']"),
    ],
)
def test_a_missing_or_malformed_spec_file_is_a_clear_cli_error(
    workdir, no_runs, capsys, content, message
):
    if content is not None:
        (workdir / "missing.toml").write_text(content)
    assert message in cli_error(["sweep", "missing.toml"], capsys)


# -- --where ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "where, message",
    [
        (
            "rho>abc",
            "--where 'rho>abc': column 'optimizer.rho' holds numbers, and 'abc' is not a number",
        ),
        ("seed=abc", "column 'seed' holds numbers, and 'abc' is not a number"),
        (
            "status<1",
            "--where 'status<1': column 'status' holds text; compare it with = or != or with text",
        ),
        ("nosuchcol=1", "--where 'nosuchcol': no such column; columns are ['attempts',"),
    ],
)
def test_a_where_value_of_the_wrong_kind_or_column_is_an_error(ok_store, capsys, where, message):
    assert message in cli_error(["results", str(ok_store), "--where", where], capsys)


def test_where_conditions_of_the_right_kind_still_filter(ok_store, capsys):
    assert (
        main(
            [
                "results",
                str(ok_store),
                "--where",
                "seed>=1",
                "--where",
                "status=done",
                "--where",
                "rho=null",
            ]
        )
        == 0
    )
    assert "0 runs shown" in capsys.readouterr().out
    assert main(["results", str(ok_store), "--where", "seed>=1", "--where", "status=done"]) == 0
    assert "1 runs shown" in capsys.readouterr().out


# -- grids too large to expand ------------------------------------------------------------------


def huge_spec() -> SweepSpec:
    """10 million runs: 10^6 grid points times 10 seeds."""
    values = [0.01 * (k + 1) for k in range(10)]
    return SweepSpec(
        name="huge",
        problem={"name": "factorization", "n": 3},
        seeds=list(range(10)),
        steps=5,
        grid={
            "lr": values,
            "rho": values,
            "steps": list(range(1, 11)),
            "iterate_every": list(range(1, 11)),
        },
        optimizers=[{"preset": "sam", "grid": {"momentum": values, "weight_decay": values}}],
    )


def test_a_sweep_above_the_limit_is_refused_before_it_is_expanded(monkeypatch, tmp_path):
    def expanded(*args, **kwargs):
        raise AssertionError("the grid was expanded before its size was checked")

    monkeypatch.setattr(SweepSpec, "_config", expanded)
    spec = huge_spec()
    assert spec.run_count() == 10_000_000 > spec_module.MAX_RUNS
    message = (
        f"the sweep expands to 10,000,000 runs, more than the limit of "
        f"{spec_module.MAX_RUNS:,}; check the grid and seeds, or pass --force "
        "(force=True) to run it anyway"
    )
    with pytest.raises(ValueError) as info:
        spec.runs()
    assert str(info.value) == message
    with pytest.raises(ValueError, match="10,000,000 runs"):
        run_sweep(spec, tmp_path / "huge.sqlite", workers=1)
    assert not (tmp_path / "huge.sqlite").exists()


def test_force_runs_a_sweep_above_the_limit(monkeypatch, workdir, capsys):
    monkeypatch.setattr(spec_module, "MAX_RUNS", 1)
    err = cli_error(["sweep", "ok.toml", "--workers", "1", "--quiet"], capsys)
    assert "the sweep expands to 2 runs, more than the limit of 1" in err
    assert not (workdir / "ok.sqlite").exists()
    assert main(["sweep", "ok.toml", "--workers", "1", "--quiet", "--force"]) == 0
    assert "ok: 2 runs, 2 done" in capsys.readouterr().out
    result = run_sweep(workdir / "ok.toml", workdir / "api.sqlite", workers=1, force=True)
    assert result.ok and len(result) == 2


# -- --lease ------------------------------------------------------------------------------------


@pytest.mark.parametrize("lease", ["0", "-1", "abc", "nan", "inf"])
def test_lease_must_be_a_positive_number_of_seconds(workdir, no_runs, capsys, lease):
    err = cli_error(["sweep", "ok.toml", f"--lease={lease}"], capsys)
    assert f"--lease: must be a positive number of seconds, got {lease!r}" in err


def test_lease_reaches_run_sweep_and_its_default_is_run_sweeps(workdir, monkeypatch):
    seen = []

    def fake_run_sweep(spec, store, **kwargs):
        seen.append(kwargs)
        raise KeyboardInterrupt  # stop here: only the arguments matter

    monkeypatch.setattr(sweep_commands, "run_sweep", fake_run_sweep)
    assert main(["sweep", "ok.toml", "--workers", "1", "--lease", "2.5"]) == 130
    assert main(["sweep", "ok.toml", "--workers", "1"]) == 130
    assert seen[0]["lease_s"] == 2.5 and "lease_s" not in seen[1]
    assert (
        sweep_commands.sweep_command("ok.toml", workers=1, lease_s=0, err=open(os.devnull, "w"))
        == 2
    )


def test_lease_is_explained_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert (
        "--lease SECONDS how long another driver sharing the store waits before it takes "
        "over the runs claimed by a driver that stopped sending heartbeats" in help_text
    )


# -- SIGTERM ------------------------------------------------------------------------------------


def test_the_sigterm_handler_is_restored_after_the_command(workdir, capsys):
    before = signal.getsignal(signal.SIGTERM)
    assert main(["sweep", "ok.toml", "--workers", "1", "--quiet"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def done_runs(store: Path) -> int:
    """Runs marked done in a store that may not exist yet (0 then)."""
    if not store.exists():
        return 0
    try:
        con = sqlite3.connect(store, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM runs WHERE status = 'done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_stops_a_sweep_like_ctrl_c_and_resume_completes_it(tmp_path, workers):
    (tmp_path / "slow.toml").write_text(SLOW_TOML)
    store = tmp_path / "slow.sqlite"
    argv = [
        sys.executable,
        "-m",
        "xsam_theory",
        "sweep",
        "slow.toml",
        "--store",
        str(store),
        "--workers",
        str(workers),
        "--quiet",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        argv,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while done_runs(store) < 1 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted: finished runs are stored; rerun with --resume to continue" in err
    assert "Traceback" not in err
    con = sqlite3.connect(store)
    statuses = dict(con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))
    con.close()
    assert 1 <= statuses.get("done", 0) < 16, statuses
    assert "running" not in statuses, f"claims not released: {statuses}"
    resumed = subprocess.run(
        [*argv, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "slow: 16 runs, 16 done" in resumed.stdout
