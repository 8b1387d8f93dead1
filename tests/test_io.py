"""Atomic writes and output folders under faults.

File modes, abandoned temporaries, kills and full disks mid-write; output folders checked before
any work; sets of files replaced together.
"""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xsam_theory import io
from xsam_theory.io import (
    OutputPathError,
    atomic_write,
    prepare_output_folder,
    remove_stale_temporaries,
    replace_together,
    temporary_path,
)

ROOT = Path(__file__).resolve().parents[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "want"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_mode_the_umask_gives(tmp_path, umask, mask, want):
    umask(mask)
    path = atomic_write(tmp_path / "new.txt", lambda f: f.write(b"x"))
    assert _mode(path) == want


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o444])
def test_an_existing_file_keeps_its_mode(tmp_path, umask, mode):
    umask(0o077)
    path = tmp_path / "old.txt"
    path.write_bytes(b"old")
    path.chmod(mode)
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new" and _mode(path) == mode


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _host() -> str:
    return io._host()


def test_an_abandoned_temporary_is_removed_on_the_next_write_and_a_live_one_is_kept(tmp_path):
    target = tmp_path / "claims.json"
    dead = tmp_path / f".claims.json.{_dead_pid()}@{_host()}.0badc0de.tmp"
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".claims.json.{live_writer.pid}@{_host()}.1badc0de.tmp"
        elsewhere = tmp_path / ".claims.json.123@some-other-host.2badc0de.tmp"
        old_elsewhere = tmp_path / ".claims.json.123@some-other-host.3badc0de.tmp"
        other_file = tmp_path / ".report.md.1@x.4badc0de.tmp"  # another target's: untouched
        for p in (dead, live, elsewhere, old_elsewhere, other_file):
            p.write_bytes(b"half")
        two_days_ago = time.time() - 2 * 86400
        os.utime(old_elsewhere, (two_days_ago, two_days_ago))
        atomic_write(target, lambda f: f.write(b"{}"))
        assert not dead.exists() and not old_elsewhere.exists()
        assert live.exists() and elsewhere.exists() and other_file.exists()
        assert target.read_bytes() == b"{}"
    finally:
        live_writer.kill()
        live_writer.wait()


def test_a_temporary_named_with_this_process_id_but_not_made_by_it_is_abandoned(tmp_path):
    """A temporary named with our PID that this process did not create counts as abandoned.

    A container restart reuses PIDs, so such a temporary was left by an earlier process.
    """
    leftover = tmp_path / f".a.{os.getpid()}@{_host()}.5badc0de.tmp"
    leftover.mkdir()  # folders (staging areas) count too
    (leftover / "x").write_bytes(b"1")
    mine = temporary_path(tmp_path / "a")
    mine.write_bytes(b"in progress")
    assert remove_stale_temporaries(tmp_path / "a") == [leftover]
    assert mine.exists()


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from xsam_theory.io import atomic_write

    def write(f):
        f.write(b"new, half written")
        f.flush()
        print("writing", flush=True)
        time.sleep(60)

    atomic_write(sys.argv[1], write)
""")


def test_a_writer_killed_mid_write_leaves_the_old_target_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "report.md"
    target.write_bytes(b"old")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        leftovers = list(tmp_path.glob(".report.md.*.tmp"))
        assert len(leftovers) == 1
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert target.read_bytes() == b"old"
    assert leftovers[0].exists()  # the kill left it; nothing else removes it yet
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert list(tmp_path.glob(".report.md.*.tmp")) == []


_FULL_DISK = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    from xsam_theory.io import atomic_write
    try:
        atomic_write(sys.argv[1], lambda f: f.write(b"y" * 100_000))
    except OSError as e:
        print("OSError", e.errno)
""")


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no RLIMIT_FSIZE")
def test_a_full_disk_leaves_the_old_target_and_no_temporary(tmp_path):
    target = tmp_path / "figure.csv"
    target.write_bytes(b"old")
    out = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(target)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.stdout.startswith("OSError"), out.stdout + out.stderr
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["figure.csv"]


def test_a_writer_that_raises_leaves_the_old_target_and_no_temporary(tmp_path):
    target = tmp_path / "t.txt"
    target.write_bytes(b"old")

    def boom(f):
        f.write(b"partial")
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


# -- output folders ------------------------------------------------------------------------------
def test_an_output_folder_that_is_a_file_or_under_one_is_refused_before_any_work(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(OutputPathError, match="is a file, not a folder"):
        prepare_output_folder(a_file)
    with pytest.raises(OutputPathError, match="a_file is a file, so no folder"):
        prepare_output_folder(a_file / "sub" / "deeper")
    made = prepare_output_folder(tmp_path / "new" / "out")
    assert made.is_dir() and list(made.iterdir()) == []


def test_an_output_folder_that_cannot_be_written_is_refused(tmp_path):
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "out"
    elif Path("/sys").is_dir():
        target = Path("/sys") / f"xsam-theory-test-{os.getpid()}"  # root cannot mkdir here
    else:
        pytest.skip("running as root without a location root cannot write")
    try:
        with pytest.raises(OutputPathError, match=r"cannot (create|write)"):
            prepare_output_folder(target)
    finally:
        if os.geteuid() != 0:
            (tmp_path / "locked").chmod(0o700)


# -- replacing a set of entries together -----------------------------------------------------------
def test_replace_together_swaps_the_whole_set_and_keeps_other_entries(tmp_path):
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "old.png").write_bytes(b"old")
    (out / "report.md").write_text("old report")
    (out / "sweeps.sqlite").write_bytes(b"store")
    staging = temporary_path(out / "verify")
    (staging / "figures").mkdir(parents=True)
    (staging / "figures" / "new.png").write_bytes(b"new")
    (staging / "report.md").write_text("new report")
    replace_together(out, staging, ["report.md", "claims.json", "figures"])
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["figures", "report.md", "sweeps.sqlite", staging.name]
    )
    assert [p.name for p in (out / "figures").iterdir()] == ["new.png"]
    assert (out / "report.md").read_text() == "new report"
    assert (out / "sweeps.sqlite").read_bytes() == b"store"


def test_replace_together_puts_the_old_set_back_when_moving_in_fails(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a.png", "a.pdf", "a.csv"):
        (out / name).write_text("old " + name)
    staging = temporary_path(out / "a")
    staging.mkdir()
    for name in ("a.png", "a.pdf", "a.csv"):
        (staging / name).write_text("new " + name)
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 5:  # 3 moved out, 1 moved in, the 2nd move in fails
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(io.os, "replace", flaky)
    with pytest.raises(OSError):
        replace_together(out, staging, ["a.png", "a.pdf", "a.csv"])
    monkeypatch.undo()
    for name in ("a.png", "a.pdf", "a.csv"):
        assert (out / name).read_text() == "old " + name
    assert not list(out.glob(".replaced.*"))


def test_the_temporary_name_pattern_is_recognised():
    p = temporary_path(Path("/x") / "claims.json")
    assert p.name.startswith(f".claims.json.{os.getpid()}@{io._host()}.")
    assert p.name.endswith(".tmp") and not io.is_stale(p)
