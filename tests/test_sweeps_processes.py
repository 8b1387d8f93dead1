"""Processes under faults.

A killed or interrupted ``sweep`` driver leaves no worker behind, a module in the working directory
that breaks the workers' start-up is named, an unreachable Dask scheduler fails fast, and an unknown
``--device`` is a clear error.

Processes are found through ``/proc`` (parent-PID chains), so the orphan tests run on Linux only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from xsam_theory.backend import backend_from_arguments, get_backend, resolve_backend, set_backend
from xsam_theory.cli import main
from xsam_theory.sweeps import LocalExecutor, SweepSpec
from xsam_theory.sweeps.executors import DaskExecutor

ROOT = Path(__file__).resolve().parents[1]
HAS_PROC = Path("/proc/self/stat").exists()
needs_proc = pytest.mark.skipif(not HAS_PROC, reason="finds processes through /proc")

#: four runs of a minute or more each (0.1 to 0.4 ms a step): always killed mid-run
LONG_TOML = """\
name = "long"
steps = 400000
seeds = [0, 1, 2, 3]

[problem]
name = "factorization"
n = 3

[init]
kind = "normal"

[[optimizers]]
preset = "sam"
lr = 0.01
"""

OK_TOML = """\
name = "ok"
steps = 5
seeds = [0, 1]

[problem]
name = "factorization"
n = 3

[init]
kind = "normal"

[[optimizers]]
preset = "sam"
lr = 0.05
"""


def child_env() -> dict[str, str]:
    """The environment of a CLI subprocess: this checkout importable from any directory."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def process_table() -> dict[int, tuple[int, str]]:
    """``{pid: (parent pid, state)}`` of every live process, from ``/proc/*/stat``."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        table[int(entry)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    """The live descendants of ``pid`` (children, their children, ...)."""
    table = process_table()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (a zombie waiting to be reaped counts as gone)."""
    table = process_table()
    return {p for p in pids if p in table and table[p][1] != "Z"}


def wait_until(predicate, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def kill_all(pids: set[int]) -> None:
    """Clean-up after a failed assertion: SIGKILL each process this test started, by PID."""
    for p in alive(pids):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


@needs_proc
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_a_killed_sweep_driver_leaves_no_process_behind(tmp_path, signum):
    """Killing the driver of ``sweep --workers 2`` mid-run ends all 4 descendants within seconds.

    The 4 descendants are 2 workers, the forkserver and the resource tracker; the driver is killed
    in the middle of long runs.
    """
    (tmp_path / "long.toml").write_text(LONG_TOML)
    proc = subprocess.Popen(
        [sys.executable, "-m", "xsam_theory", "sweep", "long.toml", "--workers", "2", "--quiet"],
        cwd=tmp_path,
        env=child_env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    family: set[int] = set()
    try:
        started = wait_until(
            lambda: len(descendants(proc.pid)) >= 4 or proc.poll() is not None, timeout=60
        )
        family = descendants(proc.pid)
        assert started and proc.poll() is None and len(family) >= 4, (
            f"the sweep did not start its workers: {family}, {proc.poll()}"
        )
        time.sleep(1.0)  # the workers are inside their runs
        family |= descendants(proc.pid)
        os.kill(proc.pid, signum)
        proc.wait(timeout=30)  # reaped at once: a zombie driver would look alive to children
        gone = wait_until(lambda: not alive(family), timeout=20)
        assert gone, f"left behind after {signal.Signals(signum).name}: {alive(family)}"
        if signum == signal.SIGTERM:
            assert proc.returncode == 130
            assert "interrupted" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(family)
        proc.stderr.close()


def long_configs(n: int) -> list[dict]:
    spec = SweepSpec.from_dict(
        {
            "name": "long",
            "problem": {"name": "factorization", "n": 3},
            "steps": 400_000,
            "seeds": list(range(n)),
            "init": {"kind": "normal"},
            "optimizers": [{"preset": "sam", "lr": 0.01}],
        }
    )
    return [r.config for r in spec.runs()]


def pool_workers() -> set[int]:
    """The local pool's worker processes: this process's grandchildren by way of a child."""
    table = process_table()
    children = {p for p, (ppid, _) in table.items() if ppid == os.getpid()}
    return {p for p, (ppid, state) in table.items() if ppid in children and state != "Z"}


@needs_proc
def test_an_interrupted_local_executor_ends_its_busy_workers_at_once(tmp_path):
    """Ctrl-C (``KeyboardInterrupt``) while two workers are inside long runs ends them at once.

    Leaving the executor terminates them instead of waiting minutes for their runs to finish.
    """
    before = pool_workers()
    workers: set[int] = set()
    t_interrupt = None
    try:
        with pytest.raises(KeyboardInterrupt), LocalExecutor(2, tick=0.2) as ex:
            for ticks, out in enumerate(ex.map_unordered(long_configs(2))):
                assert out is None, "a run of minutes finished"
                workers = pool_workers() - before
                if len(workers) >= 2 and ticks >= 5:
                    t_interrupt = time.monotonic()
                    raise KeyboardInterrupt
        assert time.monotonic() - t_interrupt < 15, "close() waited for the runs to finish"
        assert wait_until(lambda: not alive(workers), timeout=15), alive(workers)
    finally:
        kill_all(workers)


@needs_proc
def test_a_worker_exits_when_its_driver_is_gone(tmp_path):
    """The watchdog alone, without the CLI.

    A driver script holding a pool in a long run is SIGKILLed; its workers exit by themselves.
    """
    script = tmp_path / "driver.py"
    script.write_text(
        "import sys\n"
        "from xsam_theory.sweeps import LocalExecutor\n"
        "from tests.test_sweeps_processes import long_configs\n"
        "if __name__ == '__main__':\n"
        "    with LocalExecutor(2, tick=0.2) as ex:\n"
        "        for _ in ex.map_unordered(long_configs(2)):\n"
        "            pass\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    family: set[int] = set()
    try:
        assert wait_until(lambda: len(descendants(proc.pid)) >= 4, timeout=60)
        time.sleep(1.0)
        family = descendants(proc.pid)
        proc.kill()
        proc.wait(timeout=30)
        assert wait_until(lambda: not alive(family), timeout=20), alive(family)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(family)


def console_script(tmp_path: Path) -> Path:
    """A stand-in for the installed ``xsam-theory`` entry point, outside the working directory.

    A console script's directory, not the working directory, heads the driver's sys.path.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "xsam_theory_cli.py"
    script.write_text(
        "import sys\nfrom xsam_theory.cli import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    return script


@pytest.mark.parametrize(
    "content",
    [
        'print("my own numbers module")\n',
        'raise ImportError("my own numbers module")\n',
    ],
    ids=["a-script", "raises-ImportError"],
)
def test_a_module_in_the_working_directory_that_breaks_the_workers_is_named(tmp_path, content):
    """``numbers.py`` and ``random.py`` in the working directory shadow the standard library.

    They do so in the worker processes (whose ``sys.path`` starts with the working directory): the
    sweep says which file broke which import, and does not blame a missing ``__main__`` guard.
    """
    script = console_script(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (work / "ok.toml").write_text(OK_TOML)
    (work / "numbers.py").write_text(content)
    (work / "random.py").write_text(content)
    out = subprocess.run(
        [sys.executable, str(script), "sweep", "ok.toml", "--workers", "2"],
        cwd=work,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the worker processes could not start"), out.stderr
    assert "numbers.py" in last and str(work) in last, last
    assert 'Traceback (most recent call last):\n  File "' + str(script) not in out.stderr
    assert "__main__" not in last, last


def test_a_script_without_a_main_guard_is_told_about_it(tmp_path):
    """The ``__main__`` guard hint remains for a script that starts a sweep at import time."""
    (tmp_path / "ok.toml").write_text(OK_TOML)
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from xsam_theory.sweeps import run_sweep\nrun_sweep('ok.toml', 'ok.sqlite', workers=2)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert 'if __name__ == "__main__":' in out.stderr.strip().splitlines()[-1], out.stderr


def test_worker_import_error_is_an_import_error():
    """The CLI reports ImportError as ``error: ...`` (exit 2); a worker start-up failure is one."""
    from xsam_theory.sweeps.executors import WorkerImportError

    assert issubclass(WorkerImportError, ImportError)


@pytest.fixture
def distributed():
    return pytest.importorskip("distributed")


def test_an_unreachable_dask_scheduler_fails_fast_naming_the_address(distributed):
    t0 = time.monotonic()
    with pytest.raises(ValueError, match=r"tcp://127\.0\.0\.1:1") as info:
        with DaskExecutor("tcp://127.0.0.1:1", connect_timeout=1.0):
            pass
    assert time.monotonic() - t0 < 20
    assert isinstance(info.value, ConnectionError)
    assert "1 s" in str(info.value)


def test_the_sweep_command_reports_an_unreachable_scheduler(
    tmp_path, monkeypatch, capsys, distributed
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.toml").write_text(OK_TOML)
    t0 = time.monotonic()
    assert main(["sweep", "ok.toml", "--scheduler", "tcp://127.0.0.1:1", "--quiet"]) == 2
    assert time.monotonic() - t0 < 25, "waited for the 30 s default connect timeout"
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "tcp://127.0.0.1:1" in err, err


def test_dask_connect_timeout_is_checked():
    for bad in (0, -1.0, float("nan"), True, "5"):
        with pytest.raises(ValueError, match="connect_timeout"):
            DaskExecutor("tcp://127.0.0.1:1", connect_timeout=bad)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("device", ["tpu", "foo", "cuda:x", "cuda:-1", ""])
def test_an_unknown_device_is_a_value_error_naming_it_and_the_accepted_forms(backend, device):
    pytest.importorskip("torch")
    with pytest.raises(ValueError) as info:
        backend_from_arguments(SimpleNamespace(backend=backend, device=device))
    message = str(info.value)
    assert repr(device) in message and "cuda:N" in message, message


def test_resolve_backend_rejects_a_device_torch_cannot_parse():
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"'tpu'.*cpu, cuda or cuda:N"):
        resolve_backend("torch", "tpu")


@pytest.mark.parametrize("device", ["mps", "meta", "cpu:0", "CUDA"])
def test_devices_torch_knows_but_the_package_does_not_support_are_refused(device):
    """The package's math is float64: the cpu, or CUDA."""
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match="cuda:N"):
        resolve_backend("torch", device)


def test_set_backend_checks_the_device_form():
    """A bad device is refused when it is set, not when the first array is created."""
    pytest.importorskip("torch")
    with pytest.raises(ValueError, match=r"'tpu' is not one of cpu, cuda or cuda:N"):
        set_backend("torch", "tpu")
    assert get_backend() == ("numpy", None)


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "--quick", "--device", "tpu"],
        ["verify", "--quick", "--backend", "torch", "--device", "cuda:x"],
        ["bench", "--quick", "--device", "foo"],
        ["bench", "--quick", "--backend", "torch", "--device", "tpu"],
    ],
)
def test_the_cli_reports_an_unknown_device_before_any_work(argv, tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err and "cuda:N" in err and "Traceback" not in err, err
