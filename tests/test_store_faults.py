"""The results store and the sweep driver under faults.

Dead owners that look alive, two hosts sharing a sweep, concurrent creators of one new store,
read-only readers, a lost ``-wal``, a full disk. Each fault is injected here (zombies, faked host
names, a short lease, a file size limit), and no assertion depends on tight timing: waits poll
with generous deadlines.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from xsam_theory.cli import main
from xsam_theory.sweeps import StoreError, SweepSpec, SweepStore, load_records, run_sweep

ROOT = Path(__file__).resolve().parents[1]

#: runs of about 0.1-0.5 s each (xsam with an exact eigenvector on a 4x4 factorization)
STEPS_SLOW = 800


def spec(name="faults", steps=30, seeds=(0, 1), rhos=(0.02, 0.05), alphas=(0.5, 1.0)):
    return SweepSpec(
        name=name,
        problem={"name": "factorization", "n": 4},
        steps=steps,
        seeds=list(seeds),
        init={"kind": "normal"},
        optimizers=[
            {
                "preset": "xsam_paper",
                "lr": 0.05,
                "eigvec_source": "exact",
                "grid": {"rho": list(rhos), "alpha": list(alphas)},
            }
        ],
    )


def child_env():
    """The environment of a child Python: this checkout importable from any folder."""
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


def register(store, sp):
    runs = sp.runs()
    store.register_sweep(sp.name, sp.to_dict(), [(r.hash, r.config) for r in runs])
    return [r.hash for r in runs]


def set_heartbeat(path, hashes, heartbeat):
    con = sqlite3.connect(path, timeout=30)
    with con:
        con.executemany(
            "UPDATE runs SET heartbeat = ? WHERE hash = ?", [(heartbeat, h) for h in hashes]
        )
    con.close()


class DeadlineStream:
    """A progress stream that keeps what is written and raises once ``seconds`` have passed.

    A sweep that would wait forever thus fails the test instead of hanging it.
    """

    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        if time.monotonic() > self.deadline:
            raise TimeoutError(f"the sweep was still waiting after the deadline:\n{self.text}")
        return len(s)

    def flush(self) -> None:
        pass


# -- defect 1: ownership by a heartbeat lease ------------------------------------------------


def test_a_zombie_owner_does_not_hold_its_runs_past_the_lease(tmp_path):
    path = tmp_path / "s.sqlite"
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # never reaped: a zombie
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{zombie.pid}/stat") as f:
                    if f.read().rpartition(")")[2].split()[0] == "Z":
                        break
            except FileNotFoundError:  # pragma: no cover - not Linux
                break
            time.sleep(0.05)
        with SweepStore(path) as st:
            hashes = register(st, spec())
            st.claim(hashes, f"{socket.gethostname()}|{zombie.pid}|dead")
        set_heartbeat(path, hashes, time.time() - 5)  # beyond the lease below
        stream = DeadlineStream(20)
        result = run_sweep(
            spec(), path, workers=1, resume=True, lease_s=2, poll=0.1, progress=stream
        )
        assert result.ok and result.ran == len(hashes)
    finally:
        zombie.wait()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_a_zombie_owner_on_this_host_is_proven_dead_and_taken_over_at_once(tmp_path):
    """A zombie owner on this host is proven dead and its claim taken over at once.

    The one shortcut past the lease: a claim made here whose process is now a zombie (or gone, or
    another process under its PID) is taken over even with a fresh heartbeat.
    """
    from xsam_theory.sweeps.store import _process_identity, owner_proven_dead

    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        owner = f"{socket.gethostname()}|{child.pid}|tok|{_process_identity(child.pid)}"
        assert not owner_proven_dead(owner), "alive: the lease decides"
        with SweepStore(tmp_path / "s.sqlite") as st:
            hashes = register(st, spec())
            st.claim(hashes, owner)
            assert st.claim(hashes, "me|2|x", lease_s=600) == ([], hashes)
            child.stdin.close()  # it exits and, never reaped, stays a zombie
            deadline = time.monotonic() + 30
            while not owner_proven_dead(owner) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert st.claim(hashes, "me|2|x", lease_s=600) == (hashes, [])
    finally:
        child.wait()


def test_the_heartbeat_timer_keeps_claims_fresh_while_the_caller_is_busy(tmp_path):
    from xsam_theory.sweeps.store import Heartbeat

    path = tmp_path / "s.sqlite"
    with SweepStore(path) as st:
        hashes = register(st, spec())
        st.claim(hashes[:2], "me|1|x")
        set_heartbeat(path, hashes[:2], 0.0)
        with Heartbeat(path, "me|1|x", period=0.05) as beat:
            deadline = time.monotonic() + 30
            while beat.beats < 2 and time.monotonic() < deadline:
                sum(range(10_000))  # the calling thread keeps computing
        assert beat.beats >= 2 and beat.error is None
        assert st.claim(hashes, "other|2|y", lease_s=60) == (hashes[2:], hashes[:2])


@pytest.mark.parametrize("pid", ["1", "self"])
def test_a_live_pid_that_is_not_the_owner_does_not_hold_its_runs(tmp_path, pid):
    """A live PID that is not the owner does not hold its runs once the heartbeat is past the lease.

    PID 1 (a restarted container) and a reused PID (here: this very process) are alive, but the
    claim's heartbeat is older than the lease: the runs are taken over.
    """
    pid = str(os.getpid()) if pid == "self" else pid
    with SweepStore(tmp_path / "s.sqlite") as st:
        hashes = register(st, spec())
        st.claim(hashes, f"{socket.gethostname()}|{pid}|gone")
    set_heartbeat(tmp_path / "s.sqlite", hashes, time.time() - 120)
    with SweepStore(tmp_path / "s.sqlite") as st:
        claimed, busy = st.claim(hashes, "me|2|new", lease_s=60)
        assert claimed == hashes and busy == []


def test_a_wait_for_another_host_says_who_holds_the_runs_and_when_the_lease_ends(tmp_path):
    path = tmp_path / "s.sqlite"
    with SweepStore(path) as st:
        hashes = register(st, spec())
        st.claim(hashes[:2], "other-host|4242|abcd")  # its heartbeat is now; it never beats
    stream = DeadlineStream(60)
    result = run_sweep(spec(), path, workers=1, resume=True, lease_s=3, poll=0.1, progress=stream)
    assert result.ok and result.ran == len(hashes), "taken over once the lease expired"
    assert "waiting for 2 runs held by other-host (pid 4242)" in stream.text, stream.text
    assert "lease expires" in stream.text


@pytest.mark.parametrize("lease", [0, -1, math.nan, math.inf, True, "60", None])
def test_the_lease_is_validated(tmp_path, lease):
    with pytest.raises(ValueError, match="lease_s must be a finite number of seconds > 0"):
        run_sweep(spec(), tmp_path / "s.sqlite", workers=1, lease_s=lease)
    assert not (tmp_path / "s.sqlite").exists(), "refused before the store is touched"


def test_the_heartbeat_period_scales_with_the_lease():
    from xsam_theory.sweeps.store import DEFAULT_LEASE_S, heartbeat_period

    assert DEFAULT_LEASE_S <= 120
    assert heartbeat_period(60) == pytest.approx(10)
    assert heartbeat_period(3) == pytest.approx(0.5)
    assert heartbeat_period(6000) <= 60


# -- defect 2: claims in batches, heartbeats from a timer ------------------------------------


def test_runs_are_claimed_in_batches_not_all_up_front(tmp_path):
    path = tmp_path / "s.sqlite"
    running = []

    def count_running(output):
        con = sqlite3.connect(path, timeout=30)
        running.append(
            con.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
        )
        con.close()

    result = run_sweep(spec(seeds=(0, 1, 2)), path, workers=1, on_result=count_running)
    assert result.ok and len(result) == 12
    assert max(running) <= 3, f"at most a small batch is claimed at once, saw {running}"


DRIVER = """\
import socket, sys
socket.gethostname = lambda: sys.argv[1]
from xsam_theory.sweeps import SweepSpec, run_sweep
spec = SweepSpec.from_dict({spec!r})
with open(sys.argv[2], "a") as log:
    result = run_sweep(spec, sys.argv[3], workers=1, resume=True, lease_s=2, poll=0.1,
                       on_result=lambda out: print(out["hash"], file=log, flush=True))
assert result.ok, [r.message for r in result.failed]
"""


def test_two_hosts_sharing_a_sweep_compute_each_run_once(tmp_path):
    """Two hosts sharing a sweep compute each run once.

    Each driver's runs outlast the 2 s lease many times over (a driver that claimed them all up
    front and refreshed them only between results would lose them to the other).
    """
    sp = spec(name="shared", steps=STEPS_SLOW, seeds=(0, 1, 2, 3), alphas=(0.5, 1.0, 1.5))
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(spec=sp.to_dict()))
    store = tmp_path / "shared.sqlite"
    SweepStore(store).close()  # both drivers then open an existing store
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), host, str(tmp_path / f"{host}.log"), str(store)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for host in ("host-a", "host-b")
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    computed = [
        line.split()[0]
        for host in ("host-a", "host-b")
        for line in (tmp_path / f"{host}.log").read_text().splitlines()
    ]
    assert len(sp.runs()) == 24
    assert sorted(computed) == sorted(r.hash for r in sp.runs()), (
        "every run computed exactly once across the two hosts"
    )
    assert all(r.attempts == 1 for r in load_records(store, "shared"))


# -- defect 3: concurrent creation of one new store ------------------------------------------


def _open_new_stores(folder: str, rounds: int, barrier, errors) -> None:
    for r in range(rounds):
        barrier.wait(timeout=120)
        try:
            with SweepStore(Path(folder) / f"round{r}.sqlite", timeout=60) as st:
                st.counts()
        except Exception as e:  # every failure is the finding
            errors.put(f"round {r}: {type(e).__name__}: {e}")


def test_many_processes_creating_one_new_store_at_once_all_succeed(tmp_path):
    ctx = multiprocessing.get_context("fork")
    n, rounds = 8, 25
    barrier, errors = ctx.Barrier(n), ctx.Queue()
    procs = [
        ctx.Process(target=_open_new_stores, args=(str(tmp_path), rounds, barrier, errors))
        for _ in range(n)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert [p.exitcode for p in procs] == [0] * n
    assert found == [], f"{len(found)} of {n * rounds} opens failed: {found[:5]}"
    with SweepStore(tmp_path / "round0.sqlite", read_only=True) as st:
        assert st.counts() == {"pending": 0, "running": 0, "done": 0, "failed": 0}


# -- defect 10: read-only readers, a lost -wal, a full disk, attempts ------------------------


def folder_state(folder):
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in Path(folder).iterdir()}


def test_reading_a_store_writes_nothing(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    run_sweep(spec(), path, workers=1)
    before = folder_state(tmp_path)
    with SweepStore(path, read_only=True) as st:
        assert st.counts()["done"] == 8
        with pytest.raises(StoreError, match="read-only"):
            st.claim([r.hash for r in st.records()], "me|1|x")
    assert len(load_records(path, "faults")) == 8
    assert main(["results", str(path)]) == 0
    assert "8 runs shown" in capsys.readouterr().out
    assert folder_state(tmp_path) == before, "no -wal, no -shm, no write to the file"


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0,
    reason="needs a non-root POSIX user for a read-only folder",
)
def test_a_store_in_a_read_only_folder_can_be_read(tmp_path, capsys):  # pragma: no cover
    folder = tmp_path / "ro"
    folder.mkdir()
    run_sweep(spec(), folder / "s.sqlite", workers=1)
    folder.chmod(0o555)
    try:
        assert main(["results", str(folder / "s.sqlite")]) == 0
        assert "8 runs shown" in capsys.readouterr().out
    finally:
        folder.chmod(0o755)


def test_a_finished_sweep_is_all_in_the_sqlite_file_even_with_another_reader(tmp_path):
    path = tmp_path / "s.sqlite"
    readers = []

    def open_a_reader(output):  # another process reads the store while the sweep runs
        if not readers:
            readers.append(sqlite3.connect(path, timeout=30))
            readers[0].execute("SELECT COUNT(*) FROM runs").fetchone()

    try:
        run_sweep(spec(), path, workers=1, on_result=open_a_reader)
        copy = tmp_path / "copy" / "s.sqlite"
        copy.parent.mkdir()
        shutil.copy(path, copy)  # the .sqlite alone, no -wal
    finally:
        readers[0].close()
    with warnings.catch_warnings():  # it was open elsewhere when copied: a -wal was expected
        warnings.simplefilter("ignore")
        records = load_records(copy)
    assert [r.status for r in records] == ["done"] * 8


KILLED_WRITER = """\
import os, sys
from xsam_theory.sweeps import SweepSpec, SweepStore
from xsam_theory.sweeps.worker import execute_run
spec = SweepSpec.from_dict({spec!r})
st = SweepStore(sys.argv[1])
runs = spec.runs()
st.register_sweep(spec.name, spec.to_dict(), [(r.hash, r.config) for r in runs])
st.claim([r.hash for r in runs], "killed|1|x")
for r in runs:
    st.complete(execute_run(r.config))
os.kill(os.getpid(), 9)
"""


def test_a_copy_without_its_wal_is_reported_not_shown_empty(tmp_path, capsys):
    path = tmp_path / "s.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER.format(spec=spec().to_dict()))
    proc = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        env=child_env(),
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert Path(f"{path}-wal").exists()
    copy = tmp_path / "copy.sqlite"
    shutil.copy(path, copy)
    assert main(["results", str(copy)]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "copy.sqlite-wal" in captured.err, captured
    assert main(["results", str(path)]) == 0, "in place, with its -wal, all runs are there"
    captured = capsys.readouterr()
    assert "8 runs shown" in captured.out and "warning" not in captured.err


FULL_DISK = """\
import os, resource, sys
from xsam_theory.sweeps import StoreError, SweepSpec, SweepStore, run_sweep
spec = SweepSpec.from_dict({spec!r})
path = sys.argv[1]
with SweepStore(path) as st:
    runs = spec.runs()
    st.register_sweep(spec.name, spec.to_dict(), [(r.hash, r.config) for r in runs])
limit = os.path.getsize(path) + 120_000
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
try:
    run_sweep(spec, path, workers=1, resume=True)
except StoreError as e:
    print("STORE ERROR:", type(e).__name__, e)
else:
    sys.exit("the file size limit did not strike")
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
with SweepStore(path, read_only=True) as st:
    print("DONE BEFORE", st.counts(spec.name)["done"])
result = run_sweep(spec, path, workers=1, resume=True, lease_s=2, poll=0.1)
print("RESUMED", result.ok, result.ran, [r.attempts for r in result])
"""


def test_a_full_disk_is_reported_as_such_and_the_sweep_resumes(tmp_path):
    """A full disk is reported as such, the store stays intact and the sweep resumes.

    A file size limit (``ulimit -f``) strikes part-way: the error says the disk is full and the
    store intact; a resume computes the rest, and every run counts one attempt (claims that never
    started count none).
    """
    sp = spec(steps=400, seeds=(0, 1, 2, 3))
    path = tmp_path / "s.sqlite"
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK.format(spec=sp.to_dict()))
    proc = subprocess.run(
        [sys.executable, str(script), str(path)],
        capture_output=True,
        env=child_env(),
        text=True,
        timeout=180,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    message = out[out.index("STORE ERROR") : out.index("DONE BEFORE")]
    assert "StoreFullError" in message and "full" in message and "intact" in message, message
    assert "resume" in message and "corrupted" not in message and "recompute" not in message
    done_before = int(out.split("DONE BEFORE")[1].split()[0])
    assert 0 < done_before < 16, "the limit struck part-way"
    assert f"RESUMED True {16 - done_before} {[1] * 16}" in out, out


def test_attempts_count_computations_not_claims(tmp_path):
    with SweepStore(tmp_path / "s.sqlite") as st:
        hashes = register(st, spec())
        st.claim(hashes, "me|1|a")
        assert st.release("me|1|a") == len(hashes)
        st.claim(hashes, "me|1|b")
        st.release("me|1|b")
        assert {r.attempts for r in st.records()} == {0}


def test_resuming_a_sweep_after_a_code_change_says_its_runs_are_stale(tmp_path, monkeypatch):
    """The same spec planned by changed code is refused with the reason: the source changed.

    Without the reason the message would read "a different sweep" of the same size and version,
    which names no difference at all; a spec that really differs gets no such remark.
    """
    from xsam_theory import provenance

    spec = {
        "name": "same",
        "problem": {"name": "factorization", "n": 3},
        "optimizers": [{"preset": "sam", "lr": 0.05}],
        "seeds": [0],
        "steps": 3,
    }
    store = tmp_path / "s.sqlite"
    run_sweep(spec, store, workers=1)
    old = provenance.source_digest()
    monkeypatch.setattr(provenance, "source_digest", lambda problem=None: "0123456789abcdef")
    with pytest.raises(StoreError, match="the same spec, but the code changed") as info:
        run_sweep(spec, store, workers=1, resume=True)
    assert f"source digest {old} -> 0123456789abcdef" in str(info.value)
    monkeypatch.undo()
    with pytest.raises(StoreError) as other:
        run_sweep({**spec, "steps": 4}, store, workers=1, resume=True)
    assert "different sweep" in str(other.value) and "code changed" not in str(other.value)
