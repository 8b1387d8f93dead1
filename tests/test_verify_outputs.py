"""The outputs of verify and figures under faults.

A figure that cannot be drawn or written (an exception, a full disk) is an error (exit 3) that
leaves the previous outputs as they were; the output folder always holds claims.json, report.md
and figures/ of one run; output paths are checked before any work (exit 2); cached runs are
keyed by the source digest and reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import xsam_theory.figures as figures
import xsam_theory.verify as verify
from xsam_theory import io, provenance
from xsam_theory.cli import main
from xsam_theory.experiments.sweep import run_experiment_sweep, store_tally
from xsam_theory.figures import FIGURES, FigureSpec, Table

ROOT = Path(__file__).resolve().parents[1]

# -- a figure that costs nothing to draw -----------------------------------------------------------
_TINY = types.ModuleType("xsam_theory.figures._tiny_test")
_TINY.ID, _TINY.TITLE, _TINY.SUMMARY = "tiny", "tiny", "a test figure"


def _tiny_data(ctx):
    t = Table()
    t.add_series({"x": [0.0, 1.0, 2.0], "y": [1.0, 0.5, 0.25]})
    return t


def _tiny_plot(table, ctx):
    from xsam_theory.figures.style import new_figure

    fig, ax = new_figure(3.0, 2.0)
    ax.plot(table.col("x"), table.col("y"))
    return fig


_TINY.data, _TINY.plot = _tiny_data, _tiny_plot


@pytest.fixture
def tiny_geometry(monkeypatch):
    """The claims' ``geometry`` figure replaced by the tiny one, drawn in this process."""
    monkeypatch.setitem(sys.modules, _TINY.__name__, _TINY)
    monkeypatch.setitem(
        FIGURES, "geometry", FigureSpec("geometry", "_tiny_test", draws_claim_evidence=True)
    )


def _previous_outputs(out: Path) -> dict[str, bytes]:
    """Outputs of an earlier run, a user's file and a run store in ``out``; their bytes."""
    (out / "figures").mkdir(parents=True)
    (out / "claims.json").write_text('{"old": true}')
    (out / "report.md").write_text("old report ![geometry](figures/geometry.png)")
    for ext in ("png", "pdf", "csv"):
        (out / "figures" / f"geometry.{ext}").write_text(f"old {ext}")
    (out / "notes.txt").write_text("the user's")
    (out / "sweeps.sqlite").write_bytes(b"a store")
    return _snapshot(out)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {
        p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()
    }


def _no_temporaries(out: Path) -> bool:
    return not [p for p in out.rglob(".*") if p.name.endswith(".tmp")]


# -- item 5: a figure that cannot be drawn or written ----------------------------------------------
def test_a_figure_that_fails_to_draw_is_an_error_and_the_previous_outputs_stay(
    tmp_path, monkeypatch, capsys, tiny_geometry
):
    out = tmp_path / "out"
    before = _previous_outputs(out)

    def no_ink(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(figures, "make_figure", no_ink)
    status = main(["verify", "--quick", "--only", "D-G1", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert status == verify.OUTPUT_FAILED == 3
    assert "error: figure 'geometry' could not be drawn or written (RuntimeError: no ink)" in err
    assert "Traceback" not in err
    assert _snapshot(out) == before and _no_temporaries(out)


_FULL_DISK = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))   # a nearly full disk
    from xsam_theory.cli import main
    sys.exit(main(["verify", "--quick", "--only", "D-G1", "--out", sys.argv[1], "--quiet"]))
""")


def test_a_full_disk_while_the_background_process_writes_a_figure_is_an_error(tmp_path):
    """A full disk while verify's background process writes a figure is an error.

    The geometry figure (its CSV is larger than the limit) is drawn by verify's second process while
    the checks run; the write error comes back, verify exits 3 and the old outputs are untouched.
    """
    out = tmp_path / "out"
    before = _previous_outputs(out)
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert run.returncode == 3, run.stdout + run.stderr
    assert "error: figure 'geometry' could not be drawn or written" in run.stderr
    assert "File too large" in run.stderr and "Traceback" not in run.stderr
    assert _snapshot(out) == before and _no_temporaries(out)


def test_outputs_of_one_run_replace_the_previous_set_whole(tmp_path, capsys, tiny_geometry):
    out = tmp_path / "out"
    before = _previous_outputs(out)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed_run = out / f".verify.{dead.pid}@{io._host()}.0badc0de.tmp"  # a killed verify's
    (killed_run / "figures").mkdir(parents=True)

    assert main(["verify", "--quick", "--only", "D-G1", "--out", str(out), "--quiet"]) == 0
    doc = json.loads((out / "claims.json").read_text())
    assert doc["source_digest"] == provenance.package_digest()
    assert [c["figure"] for c in doc["claims"]] == ["figures/geometry.png"]
    new = _snapshot(out)
    for ext in ("png", "pdf", "csv"):
        assert new[f"figures/geometry.{ext}"] != before[f"figures/geometry.{ext}"]
    assert "y" in new["figures/geometry.csv"].decode()  # the tiny figure's numbers
    assert new["notes.txt"] == before["notes.txt"] and new["sweeps.sqlite"] == b"a store"
    assert not killed_run.exists() and _no_temporaries(out)

    # a run without figures: the previous run's figures go with its report
    assert main(["verify", "--quick", "--only", "D-CURV", "--out", str(out), "--quiet"]) == 0
    assert not (out / "figures").exists()
    assert [c["id"] for c in json.loads((out / "claims.json").read_text())["claims"]] == ["D-CURV"]
    assert "figures/" not in (out / "report.md").read_text()
    assert (out / "notes.txt").exists() and (out / "sweeps.sqlite").exists()
    capsys.readouterr()


# -- figures --out: the three files of a figure together -------------------------------------------
@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setitem(sys.modules, _TINY.__name__, _TINY)
    monkeypatch.setitem(FIGURES, "tiny", FigureSpec("tiny", "_tiny_test"))


def test_a_figure_whose_write_fails_part_way_keeps_its_previous_three_files(
    tmp_path, monkeypatch, capsys, tiny
):
    import xsam_theory.figures.style as style

    out = tmp_path / "figs"
    out.mkdir()
    for ext in ("png", "pdf", "csv"):
        (out / f"tiny.{ext}").write_text(f"old {ext}")
    before = _snapshot(out)
    real = style.write_figure

    def disk_fills_after_the_png(fig, table, folder, stem, *, draft=False):
        real(fig, table, folder, stem, draft=draft)  # all three written ...
        (Path(folder) / f"{stem}.csv").unlink()  # ... but the CSV did not fit
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(style, "write_figure", disk_fills_after_the_png)
    assert figures.main(str(out), ["tiny"], quick=True) == 3
    err = capsys.readouterr().err
    assert "error: figure 'tiny' could not be made or written" in err
    assert "No space left on device" in err
    assert _snapshot(out) == before and _no_temporaries(out)

    monkeypatch.setattr(style, "write_figure", real)
    assert figures.main(str(out), ["tiny"], quick=True) == 0
    after = _snapshot(out)
    assert all(after[f"tiny.{ext}"] != before[f"tiny.{ext}"] for ext in ("png", "pdf", "csv"))
    assert _no_temporaries(out)


# -- item 7: output paths checked before any work --------------------------------------------------
@pytest.fixture
def a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("x")

    def must_not_run(*args, **kwargs):
        raise AssertionError("work started before the output path was checked")

    monkeypatch.setattr(verify, "run_ledger", must_not_run)
    monkeypatch.setattr(figures, "make_figure", must_not_run)
    return tmp_path / "a_file"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "--quick", "--out", "a_file"], "--out a_file: is a file, not a folder"),
        (["verify", "--full", "--out", "a_file/sub"], "--out a_file/sub: a_file is a file, so no"),
        (["figures", "--quick", "--out", "a_file"], "--out a_file: is a file, not a folder"),
        (["figures", "--out", "a_file/x/y"], "--out a_file/x/y: a_file is a file, so no"),
    ],
)
def test_an_output_path_that_cannot_be_a_folder_is_refused_before_any_work(
    a_file, capsys, argv, message
):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {message}" in err and "Traceback" not in err
    assert a_file.read_text() == "x"


def test_an_unwritable_output_location_is_refused_before_any_work(a_file, capsys):
    if os.geteuid() != 0:
        locked = a_file.parent / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = str(locked / "out")
    elif Path("/sys").is_dir():
        target = f"/sys/xsam-theory-test-{os.getpid()}"
    else:
        pytest.skip("running as root without a location root cannot write")
    assert main(["verify", "--quick", "--out", target]) == 2
    assert main(["figures", "--quick", "--out", target]) == 2
    err = capsys.readouterr().err
    assert err.count("error: --out") == 2 and "Traceback" not in err


# -- item 6: cached runs keyed by the source digest ------------------------------------------------
def _tiny_sweep(name: str = "tiny") -> dict:
    return {
        "name": name,
        "problem": {"name": "factorization", "n": 3},
        "optimizers": [{"preset": "sam", "lr": 0.05, "rho": 0.05}],
        "seeds": [0, 1],
        "steps": 5,
    }


def test_an_experiment_sweep_reuses_runs_of_the_same_code_and_recomputes_after_a_change(
    tmp_path, monkeypatch
):
    store = tmp_path / "s.sqlite"
    with store_tally() as first:
        a = run_experiment_sweep(_tiny_sweep(), store, workers=1)
    with store_tally() as again:
        b = run_experiment_sweep(_tiny_sweep(), store, workers=1)
    assert (first.runs, first.cached, a.ran) == (2, 0, 2)
    assert (again.runs, again.cached, b.ran) == (2, 2, 0) and a.name == b.name

    monkeypatch.setattr(provenance, "source_digest", lambda problem=None: "0123456789abcdef")
    with store_tally() as changed:
        c = run_experiment_sweep(_tiny_sweep(), store, workers=1)  # no "different sweep"
    assert (changed.runs, changed.cached, c.ran) == (2, 0, 2) and c.name != a.name
    assert c.name.startswith("tiny-") and {r.config["source_digest"] for r in c.records} == {
        "0123456789abcdef"
    }


def test_verify_reuses_its_store_only_for_the_same_code_and_says_so(tmp_path, monkeypatch, capsys):
    out = tmp_path / "out"
    argv = ["verify", "--quick", "--only", "P-LMAX", "--out", str(out), "--quiet", "--no-figures"]

    def cached() -> dict:
        doc = json.loads((out / "claims.json").read_text())
        return doc["claims"][0]["evidence"]["cached_runs"]

    assert main(argv) == 0
    first = cached()
    assert first["cached"] == 0 and first["runs"] > 0
    assert main(argv) == 0  # same code: read back
    assert cached() == {"cached": first["runs"], "runs": first["runs"]}
    assert (
        f"{first['runs']} of {first['runs']} sweep runs were read from the run store"
        in (out / "report.md").read_text()
    )
    monkeypatch.setattr(provenance, "source_digest", lambda problem=None: "0123456789abcdef")
    assert main(argv) == 0  # changed code: computed afresh
    assert cached() == {"cached": 0, "runs": first["runs"]}
    assert (
        f"All {first['runs']} sweep runs were computed by this run"
        in (out / "report.md").read_text()
    )
    assert "read from the run store" in capsys.readouterr().out


def test_the_package_digest_covers_every_source_file(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "a.py").write_text("x = 1\n")
    (pkg / "sub" / "b.py").write_text("y = 2\n")
    (pkg / "data.txt").write_text("not code")
    monkeypatch.setattr(provenance, "_PACKAGE_ROOT", pkg)

    def digest() -> str:
        provenance.package_digest.cache_clear()
        return provenance.package_digest()

    try:
        d0 = digest()
        (pkg / "data.txt").write_text("changed, still not code")
        assert digest() == d0
        (pkg / "sub" / "b.py").write_text("y = 3\n")
        d1 = digest()
        assert d1 != d0
        (pkg / "sub" / "c.py").write_text("")
        assert digest() != d1
    finally:
        monkeypatch.undo()
        provenance.package_digest.cache_clear()


def test_a_user_problem_adds_its_module_source_to_the_digest(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "user_problem_mod.py"
    body = (
        "from xsam_theory.problems import Ravine\n"
        "def build(lam0=1.0):\n    return Ravine(lam0={})\n"
    )
    source.write_text(body.format("lam0"))
    name = "user_problem_mod:build"
    d0 = provenance.source_digest(name)
    assert d0 != provenance.source_digest() and d0 != provenance.source_digest("ravine")
    assert provenance.source_digest("ravine") == provenance.source_digest()

    source.write_text(body.format("2 * lam0"))  # the user edits the problem
    sys.modules.pop("user_problem_mod")
    provenance._functions_digest.cache_clear()
    assert provenance.source_digest(name) != d0
    sys.modules.pop("user_problem_mod", None)
