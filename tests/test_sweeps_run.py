"""Running sweeps, and the ``sweep`` / ``results`` commands.

Executors agree bit for bit, reruns skip finished runs and retry failed ones, a killed sweep resumes
to the same table, and sweeps sharing a store never duplicate a run.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xsam_theory.cli import main
from xsam_theory.sweeps import (
    LocalExecutor,
    SweepExistsError,
    SweepSpec,
    SweepStore,
    register_problem,
    run_sweep,
)
from xsam_theory.sweeps.registry import PROBLEMS

ROOT = Path(__file__).resolve().parents[1]

#: twelve runs of about 0.15 s each: slow enough to kill a sweep part-way
SLOW_TOML = """\
name = "slow"
steps = 1000
seeds = [0, 1, 2]

[problem]
name = "factorization"
n = 4

[init]
kind = "normal"

[[optimizers]]
preset = "xsam_paper"
lr = 0.05
eigvec_source = "exact"
grid = {{ rho = [0.02, 0.05], alpha = [{alphas}] }}

[[monitors]]
type = "spectral"
every = 500
method = "exact"
"""


def store_rows(path):
    """What must agree between two stores: everything but timings and worker names."""
    con = sqlite3.connect(path)
    try:
        return con.execute(
            "SELECT hash, config, status, outcome, message, results, trajectory "
            "FROM runs ORDER BY hash"
        ).fetchall()
    finally:
        con.close()


def tiny_spec(name="tiny", rhos=(0.02, 0.1), steps=40):
    return SweepSpec(
        name=name,
        problem={"name": "factorization", "n": 3},
        steps=steps,
        seeds=[0, 1],
        init={"kind": "normal"},
        optimizers=[
            {
                "preset": "xsam_paper",
                "lr": 0.05,
                "eigvec_source": "exact",
                "grid": {"rho": list(rhos), "alpha": [0.0, 1.0]},
            }
        ],
        monitors=[{"type": "spectral", "every": 20, "method": "exact"}],
    )


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory):
    """The slow sweep, uninterrupted, on 2 local processes."""
    d = tmp_path_factory.mktemp("slow")
    spec = d / "slow.toml"
    spec.write_text(SLOW_TOML.format(alphas="0.5, 1.0"))
    store = d / "reference.sqlite"
    result = run_sweep(spec, store, workers=2)
    assert result.ok and result.ran == 12
    return spec, store


def test_in_process_and_process_pool_give_identical_stores(tmp_path):
    a = run_sweep(tiny_spec(), tmp_path / "a.sqlite", workers=1)
    b = run_sweep(tiny_spec(), tmp_path / "b.sqlite", workers=2)
    assert a.ok and b.ok and a.ran == b.ran == 8
    assert store_rows(tmp_path / "a.sqlite") == store_rows(tmp_path / "b.sqlite")
    rows = a.table()
    assert [r["optimizer.rho"] for r in rows[:4]] == [0.02, 0.02, 0.02, 0.02]
    assert {"final_loss", "final_grad_norm", "final_lambda_max"} <= set(rows[0])
    traj = a.trajectory(a.records[0])
    assert traj.n_steps == 40 and traj.iterates.shape == (2, 6)
    if importlib.util.find_spec("pandas") is None:
        with pytest.raises(ImportError, match="needs pandas"):
            a.dataframe()
    else:
        assert a.dataframe().shape[0] == 8


def test_rerun_skips_finished_runs_and_retries_failed_ones(tmp_path):
    calls = {"fail": True}

    def flaky(n: int = 3):
        if calls["fail"]:
            raise RuntimeError("flaky problem says no")
        return PROBLEMS["factorization"].build(n)

    register_problem("flaky_factorization", flaky)
    try:
        spec = SweepSpec(
            **{**tiny_spec().to_dict(), "problem": {"name": "flaky_factorization", "n": 3}}
        )
        first = run_sweep(spec, tmp_path / "s.sqlite", workers=1)
        assert len(first.failed) == 8 and "flaky problem says no" in first.failed[0].message
        with pytest.raises(SweepExistsError):
            run_sweep(spec, tmp_path / "s.sqlite", workers=1)
        calls["fail"] = False
        second = run_sweep(spec, tmp_path / "s.sqlite", workers=1, resume=True)
        assert second.ok and second.ran == 8 and {r.attempts for r in second} == {2}
        third = run_sweep(spec, tmp_path / "s.sqlite", workers=1, resume=True)
        assert third.ran == 0 and third.skipped == 8
    finally:
        PROBLEMS.pop("flaky_factorization")


def test_a_pool_worker_killed_mid_sweep_is_replaced_and_its_runs_rerun(tmp_path):
    reference = run_sweep(tiny_spec(steps=150), tmp_path / "ref.sqlite", workers=1)
    killed = []
    with LocalExecutor(2) as ex:

        def kill_a_worker(output):
            if not killed:
                pid = sorted(ex._pool._processes)[0]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)

        result = run_sweep(
            tiny_spec(steps=150), tmp_path / "pool.sqlite", executor=ex, on_result=kill_a_worker
        )
    assert killed and result.ok and reference.ok
    assert store_rows(tmp_path / "pool.sqlite") == store_rows(tmp_path / "ref.sqlite")


def test_a_run_that_kills_its_worker_fails_alone_and_the_others_finish(tmp_path, monkeypatch):
    (tmp_path / "killer_problem.py").write_text(
        "import os, signal\n"
        "from xsam_theory.problems import Factorization\n"
        "def make(n=3, die=False):\n"
        "    if die:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return Factorization(n)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = SweepSpec(
        **{
            **tiny_spec(rhos=(0.02,)).to_dict(),
            "seeds": [0],
            "problem": {"name": "killer_problem:make"},
            "grid": {"problem.die": [False, True]},
        }
    )
    result = run_sweep(spec, tmp_path / "s.sqlite", workers=2)
    assert len(result) == 4
    assert {r.config["problem"]["die"] for r in result.failed} == {True}
    assert len(result.failed) == 2 and "died while it ran alone" in result.failed[0].message
    assert all(r.status == "done" for r in result if not r.config["problem"]["die"])


def test_two_sweeps_sharing_a_store_do_not_duplicate_runs(tmp_path):
    store = tmp_path / "shared.sqlite"
    a = run_sweep(tiny_spec("a", rhos=(0.02, 0.1)), store, workers=1)
    b = run_sweep(tiny_spec("b", rhos=(0.1, 0.2)), store, workers=1)
    assert a.ran == 8 and b.ran == 4 and b.skipped == 4
    with SweepStore(store) as st:
        assert sum(st.counts().values()) == 12
        assert len(st.records("a")) == len(st.records("b")) == 8
    shared = {r.hash for r in a} & {r.hash for r in b}
    assert len(shared) == 4


def test_concurrent_sweeps_on_one_store_compute_each_run_once(tmp_path, slow_reference):
    spec, reference = slow_reference
    other = tmp_path / "other.toml"
    other.write_text(SLOW_TOML.format(alphas="1.0, 1.5").replace('"slow"', '"other"'))
    store = tmp_path / "shared.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "xsam_theory",
        "sweep",
        "--store",
        str(store),
        "--quiet",
        "--workers",
        "1",
    ]
    procs = [
        subprocess.Popen(
            [*cmd, str(s)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for s in (spec, other)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    con = sqlite3.connect(store)
    statuses = con.execute("SELECT status, attempts FROM runs").fetchall()
    con.close()
    assert len(statuses) == 18, "6 runs are shared: 12 + 12 - 6"
    assert set(statuses) == {("done", 1)}, "every run was computed exactly once"
    mine = {row[0]: row for row in store_rows(store)}
    assert all(mine[row[0]] == row for row in store_rows(reference))


def test_a_killed_sweep_resumes_to_the_same_table(tmp_path, slow_reference):
    spec, reference = slow_reference
    store = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "xsam_theory",
            "sweep",
            str(spec),
            "--store",
            str(store),
            "--workers",
            "2",
            "--quiet",
        ],
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        done = 0
        while done < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            if store.exists():
                try:
                    con = sqlite3.connect(store, timeout=5)
                    done = con.execute(
                        "SELECT COUNT(*) FROM runs WHERE status = 'done'"
                    ).fetchone()[0]
                    con.close()
                except sqlite3.OperationalError:  # the schema is not there yet
                    done = 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # the driver and its worker processes
        proc.wait()
    con = sqlite3.connect(store)
    statuses = dict(con.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"))
    con.close()
    assert 3 <= statuses.get("done", 0) < 12, f"not killed part-way: {statuses}"
    assert (
        main(["sweep", str(spec), "--store", str(store), "--workers", "2", "--quiet", "--resume"])
        == 0
    )
    assert store_rows(store) == store_rows(reference)


def test_sweep_and_results_commands(tmp_path, capsys, monkeypatch, slow_reference):
    spec, reference = slow_reference
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", str(spec), "--store", str(reference), "--workers", "1"]) == 2
    assert "already holds sweep 'slow' (12 of 12 runs done" in capsys.readouterr().err
    assert main(["results", str(reference), "--where", "alpha=1.0", "--where", "rho<0.03"]) == 0
    out = capsys.readouterr().out
    assert "slow (12/12 done, 0 failed); 3 runs shown" in out
    assert main(["results", str(reference), "--sweep", "slow", "--csv", "t.csv"]) == 0
    with open(tmp_path / "t.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {"optimizer.rho", "optimizer.alpha", "final_lambda_max"} <= set(
        rows[0]
    )
    assert main(["results", str(reference), "--where", "nosuch=1"]) == 2
    assert "no such column" in capsys.readouterr().err
    (tmp_path / "foreign.sqlite").write_text("not a store")
    assert main(["results", "foreign.sqlite"]) == 2
    assert "not an SQLite database" in capsys.readouterr().err
    assert main(["sweep", "missing.toml"]) == 2
    with pytest.raises(SystemExit):
        main(["sweep", str(spec), "--workers", "2", "--dask-local", "2"])


needs_dask = pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="needs dask.distributed (the sweeps extra)",
)


@needs_dask
def test_the_phase_grid_is_identical_on_two_local_processes_and_a_dask_local_cluster(
    tmp_path, capsys
):
    example = ROOT / "examples" / "sweeps" / "phase_quick.toml"
    pool, dask = tmp_path / "pool.sqlite", tmp_path / "dask.sqlite"
    assert main(["sweep", str(example), "--store", str(pool), "--workers", "2"]) == 0
    assert "48 runs, 48 done" in capsys.readouterr().out
    assert main(["sweep", str(example), "--store", str(dask), "--dask-local", "2"]) == 0
    captured = capsys.readouterr()
    assert "48 runs, 48 done" in captured.out
    assert "Dask LocalCluster (2 worker processes)" in captured.err
    assert store_rows(pool) == store_rows(dask)


@needs_dask
def test_a_dask_scheduler_address_works_and_agrees_with_this_process(tmp_path):
    from distributed import LocalCluster

    from xsam_theory.sweeps import DaskExecutor

    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        with DaskExecutor(cluster.scheduler_address) as ex:
            assert ex.describe() == f"Dask scheduler {cluster.scheduler_address}"
            a = run_sweep(tiny_spec(), tmp_path / "a.sqlite", executor=ex)
    b = run_sweep(tiny_spec(), tmp_path / "b.sqlite", workers=1)
    assert a.ok and b.ok
    assert store_rows(tmp_path / "a.sqlite") == store_rows(tmp_path / "b.sqlite")


@needs_dask
def test_a_worker_killed_during_a_dask_run_still_yields_a_complete_correct_table(
    tmp_path, slow_reference
):
    from xsam_theory.sweeps import DaskExecutor

    spec, reference = slow_reference
    killed = []
    with DaskExecutor(n_workers=2, processes=True) as ex:
        client = ex.client
        pids = client.run(os.getpid)

        def kill_a_busy_worker(output):
            if killed:
                return
            busy = {addr: keys for addr, keys in client.processing().items() if keys}
            if not busy:  # between two tasks: try again at the next result
                return
            addr = sorted(busy)[0]
            os.kill(pids[addr], signal.SIGKILL)
            killed.append(busy[addr])

        result = run_sweep(
            spec, tmp_path / "dask.sqlite", executor=ex, on_result=kill_a_busy_worker
        )
    assert killed and killed[0], "a worker died while it held runs"
    assert result.ok and len(result) == 12
    assert store_rows(tmp_path / "dask.sqlite") == store_rows(reference)


def test_the_guide_sweep_example_runs_as_written(tmp_path):
    """The Python example of ``docs/sweeps.md`` runs as written and prints one row per run."""
    text = (ROOT / "docs" / "sweeps.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    script = tmp_path / "guide_sweep.py"
    script.write_text(block)
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 * 2 + 2 * 2 * 2 and lines[0].startswith("sam 0.02 0.0 0 ")
    assert (tmp_path / "lmax_demo.sqlite").exists()


def test_local_executor_validates_workers():
    with pytest.raises(ValueError, match="workers must be"):
        LocalExecutor(0)
