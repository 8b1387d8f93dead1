"""The SQLite results store: schema, claims, atomic completion, foreign and corrupted files."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys

import pytest

from xsam_theory.sweeps import StoreError, SweepExistsError, SweepSpec, SweepStore
from xsam_theory.sweeps.store import (
    APPLICATION_ID,
    _process_identity,
    claim_is_live,
    new_owner,
    owner_proven_dead,
)
from xsam_theory.sweeps.worker import decode_trajectory, execute_run


def spec(name="s", rhos=(0.01, 0.1), steps=4):
    return SweepSpec(
        name=name,
        problem={"name": "factorization", "n": 2},
        steps=steps,
        seeds=[0, 1],
        optimizers=[{"preset": "sam", "lr": 0.05, "grid": {"rho": list(rhos)}}],
    )


def register(store, sp, **kw):
    runs = sp.runs()
    store.register_sweep(sp.name, sp.to_dict(), [(r.hash, r.config) for r in runs], **kw)
    return runs


def test_a_new_store_is_tagged_in_wal_mode_while_open_and_self_contained_when_closed(tmp_path):
    path = tmp_path / "deep" / "s.sqlite"
    with SweepStore(path) as st:
        runs = register(st, spec())
        assert st.counts() == {"pending": 4, "running": 0, "done": 0, "failed": 0}
        assert st.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "checkpointed"
    assert con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    con.close()
    assert sorted(p.name for p in path.parent.iterdir()) == ["s.sqlite"]
    with SweepStore(path, create=False) as st:
        assert [r.hash for r in st.records("s")] == [r.hash for r in runs]
        assert st.sweeps()[0]["name"] == "s" and st.spec("s")["name"] == "s"


def test_claim_complete_release_cycle(tmp_path):
    with SweepStore(tmp_path / "s.sqlite") as st:
        runs = register(st, spec())
        hashes = [r.hash for r in runs]
        claimed, busy = st.claim(hashes[:3], "me|1|a")
        assert claimed == hashes[:3] and busy == []
        out = execute_run(runs[0].config)
        assert st.complete(out)
        assert not st.complete(out), "a done run is never overwritten"
        failed = {**execute_run(runs[1].config), "status": "failed", "message": "boom"}
        assert st.complete(failed)
        assert st.release("me|1|a") == 1
        assert st.statuses(hashes) == dict(zip(hashes, ["done", "failed", "pending", "pending"]))
        record = st.records("s", status="done")[0]
        assert record.results == out["results"] and record.attempts == 1
        traj = st.trajectory(record.hash[:10])
        assert traj.n_steps == 4
        assert decode_trajectory(out["trajectory"]).n_steps == 4
        # failed and pending runs are claimable again; done ones are not
        claimed, _ = st.claim(hashes, "me|1|b")
        assert claimed == hashes[1:]


def test_claims_live_by_their_lease_and_proven_dead_owners_are_taken_over(tmp_path):
    here = socket.gethostname()
    live = new_owner()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = f"{here}|{proc.pid}|x|{_process_identity(proc.pid)}"
    finally:
        proc.kill()
        proc.wait()
    assert claim_is_live(live, 100.0, lease_s=10.0, now=105.0)
    assert not claim_is_live(live, 100.0, lease_s=10.0, now=111.0), "a live PID is no excuse"
    assert not claim_is_live(live, None, lease_s=10.0)
    proven = _process_identity(os.getpid()) != ""  # /proc tells process identities here
    assert owner_proven_dead(dead) is proven
    assert not owner_proven_dead(f"{here}|{os.getpid()}|x"), "no process identity: no proof"
    assert not owner_proven_dead(f"elsewhere|1|x|{_process_identity(1)}")
    assert claim_is_live("elsewhere|1|x", 100.0, lease_s=10.0, now=105.0)
    assert not claim_is_live("elsewhere|1|x", 100.0, lease_s=10.0, now=111.0)
    with SweepStore(tmp_path / "s.sqlite") as st:
        hashes = [r.hash for r in register(st, spec())]
        st.claim(hashes[:2], live)
        st.claim(hashes[2:], dead)
        me = new_owner()
        claimed, busy = st.claim(hashes, me)
        assert busy == hashes[:2] + ([] if proven else hashes[2:])
        assert claimed == (hashes[2:] if proven else [])
        holders = st.holders(hashes, exclude=me)
        assert (holders[0].owner, holders[0].runs) == (live, 2)
        assert f"2 runs held by {here} (pid {os.getpid()})" in holders[0].describe()


def test_registering_the_same_sweep_needs_resume_and_a_different_one_is_refused(tmp_path):
    with SweepStore(tmp_path / "s.sqlite") as st:
        register(st, spec())
        with pytest.raises(SweepExistsError, match="resume"):
            register(st, spec())
        register(st, spec(), resume=True)
        with pytest.raises(StoreError, match="different sweep named 's'"):
            register(st, spec(rhos=(0.5,)), resume=True)
        # a second sweep sharing runs adds only its new runs
        register(st, spec(name="t", rhos=(0.1, 0.2)))
        assert sum(st.counts().values()) == 6
        assert {r.sweeps for r in st.records()} == {("s",), ("s", "t"), ("t",)}


@pytest.mark.parametrize(
    "content, match",
    [
        (b"hello, this is a text file\n", "not an SQLite database"),
        (bytes(range(256)) * 8, "not an SQLite database"),
    ],
)
def test_foreign_files_get_a_clear_error(tmp_path, content, match):
    path = tmp_path / "x.sqlite"
    path.write_bytes(content)
    with pytest.raises(StoreError, match=match):
        SweepStore(path)
    assert path.read_bytes() == content, "a foreign file is never modified"


def test_a_foreign_sqlite_database_is_refused(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="SQLite database but not an xsam-theory results store"):
        SweepStore(path)


def test_a_store_from_a_newer_version_is_refused(tmp_path):
    path = tmp_path / "s.sqlite"
    SweepStore(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(StoreError, match="newer xsam-theory"):
        SweepStore(path)


def test_a_missing_store_is_an_error_when_reading(tmp_path):
    with pytest.raises(StoreError, match="no results store"):
        SweepStore(tmp_path / "nope.sqlite", create=False)


def test_a_corrupted_store_gets_a_clear_error(tmp_path):
    path = tmp_path / "s.sqlite"
    with SweepStore(path) as st:
        runs = register(st, spec(steps=30))
        st.claim([r.hash for r in runs], "me|1|a")
        for r in runs:
            st.complete(execute_run(r.config))
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    data = bytearray(path.read_bytes())
    assert len(data) > 3 * page
    data[page : len(data)] = os.urandom(len(data) - page)  # keep the header page only
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupted"):
        with SweepStore(path) as st:
            st.records()
            st.check()
