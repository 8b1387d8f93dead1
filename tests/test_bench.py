"""``xsam-theory bench``: the harness itself (timing, rows, targets), on the tiny model only.

The numbers are not checked (targets are reported, never asserted); what is checked is that
every section produces its rows, that the targets are evaluated from them, and that the JSON
report holds the environment.
"""

from __future__ import annotations

import json

import pytest

from xsam_theory.bench import BenchConfig, Timing, evaluate_targets, interleaved, run_bench
from xsam_theory.cli import main


def test_interleaved_round_robin_and_statistics():
    calls = []
    times = interleaved({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3,
                        warmup=1)
    assert calls == ["a", "b"] * 4
    assert all(len(t.samples) == 3 for t in times.values())
    t = Timing((3.0, 1.0, 2.0))
    assert (t.median, t.min, t.max) == (2.0, 1.0, 3.0)


def test_bench_tiny_sections_and_targets(tmp_path):
    lines = []
    cfg = BenchConfig(models=("tiny",), repeats=1, quick=True,
                      sections=("kernels", "eigen", "steps"))
    report = run_bench(cfg, lines.append)
    text = "\n".join(lines)
    assert "numpy R-op HVP cached" in text and "Targets" in text
    eig = report.rows("eigen", model="tiny")
    assert {r["name"] for r in eig} >= {"package Lanczos (40 steps)",
                                        "PyHessian-style power (tol 1e-3)"}
    lz = report.rows("eigen", name="package Lanczos (40 steps)")[0]
    assert lz["n_hvp"] == 40 and lz["rel_error"] < 1e-3
    ids = [t["id"] for t in report.targets]
    assert ids == [f"T{i}" for i in range(1, 9)]
    status = {t["id"]: t["status"] for t in report.targets}
    assert status["T1"] == "n/a"            # needs the medium model
    assert status["T3"] in ("met", "NOT met") and status["T4"] == "n/a"
    assert evaluate_targets(report) == report.targets
    if "torch" in report.env:
        assert report.rows("kernels", name="torch double-backward HVP reusing graph")
        assert report.rows("steps", name="torch X-SAM/SAM vs bound")


def test_cli_bench_json_and_argument_errors(tmp_path, monkeypatch):
    import xsam_theory.bench as bench

    monkeypatch.setattr(bench, "DEFAULT_SECTIONS", ("eigen",))   # the cheapest section
    with pytest.raises(SystemExit):
        main(["bench", "--models", "gigantic"])
    with pytest.raises(SystemExit):
        main(["bench", "--backend", "numpy", "--device", "tpu"])
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "tiny", "--repeats", "1", "--quick", "--json",
                 str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["environment"]["pools"] and "loadavg_start" in data["environment"]
    assert data["targets"][0]["id"] == "T1"
    assert data["sections"]["eigen"][0]["model"] == "tiny"
    with pytest.raises(ValueError, match="section"):
        BenchConfig(sections=("everything",))


def test_threads_option_limits_the_pools_for_the_run_only():
    from threadpoolctl import threadpool_info

    before = [i["num_threads"] for i in threadpool_info()]
    seen = []
    report = run_bench(BenchConfig(models=("tiny",), repeats=1, quick=True, threads=1,
                                   sections=("eigen",)),
                       lambda line: seen.append([i["num_threads"] for i in threadpool_info()]))
    assert report.env["threads"] == 1 and all(n == 1 for n in seen[0])
    assert [i["num_threads"] for i in threadpool_info()] == before
