"""``xsam-theory bench``: the harness itself (timing, rows, targets), on the tiny model only.

The numbers are not checked (targets are reported, never asserted); what is checked is that
every section produces its rows, that the targets are evaluated from them by the rows' keys
(never their display labels), and that the JSON report holds the environment.
"""

from __future__ import annotations

import json

import pytest

import xsam_theory.bench.config as bench_config
from xsam_theory.bench import (
    LABELS,
    MINIBATCH,
    N_SAMPLES,
    BenchConfig,
    Kernel,
    Library,
    Report,
    RowKey,
    Timing,
    evaluate_targets,
    interleaved,
    run_bench,
)
from xsam_theory.bench.report import key_row, timed_row
from xsam_theory.cli import main


def test_interleaved_round_robin_and_statistics():
    calls = []
    times = interleaved(
        {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, 3, warmup=1
    )
    assert calls == ["a", "b"] * 4
    assert all(len(t.samples) == 3 for t in times.values())
    t = Timing((3.0, 1.0, 2.0))
    assert (t.median, t.min, t.max) == (2.0, 1.0, 3.0)


def test_bench_tiny_sections_and_targets(tmp_path, monkeypatch):
    """A real run with every display label reworded.

    The rows carry the new labels, and the targets still find their measurements (they read keys,
    never labels).
    """
    renamed = {key: f"reworded {i}" for i, key in enumerate(LABELS)}
    for key, text in renamed.items():
        monkeypatch.setitem(LABELS, key, text)
    lines = []
    cfg = BenchConfig(
        models=("tiny",), repeats=1, quick=True, sections=("kernels", "eigen", "steps")
    )
    report = run_bench(cfg, lines.append)
    text = "\n".join(lines)
    assert renamed[(Library.NUMPY, Kernel.HVP_CACHED)] in text and "Targets" in text
    assert "numpy R-op HVP cached" not in text
    eig = report.rows("eigen", model="tiny")
    assert {r["kernel"] for r in eig} >= {Kernel.EIGEN_LANCZOS.value, Kernel.EIGEN_PYHESSIAN.value}
    lz = report.find(RowKey("eigen", Kernel.EIGEN_LANCZOS, model="tiny"))
    assert lz["name"] == renamed[(None, Kernel.EIGEN_LANCZOS)]
    assert lz["n_hvp"] == 40 and lz["rel_error"] < 1e-3
    ids = [t["id"] for t in report.targets]
    assert ids == [f"T{i}" for i in range(1, 9)]
    status = {t["id"]: t["status"] for t in report.targets}
    assert status["T1"] == "n/a"  # needs the medium model
    assert status["T3"] in ("met", "NOT met") and status["T4"] == "n/a"
    assert status["T5"] in ("met", "NOT met")
    assert evaluate_targets(report) == report.targets
    if "torch" in report.env:
        assert status["T6"] in ("met", "NOT met")
        assert report.rows("kernels", library=Library.TORCH, kernel=Kernel.HVP_CACHED)
        assert report.rows("steps", library=Library.TORCH, kernel=Kernel.XSAM_OVER_SAM_BOUND)


def _synthetic_report() -> Report:
    """A report holding one row per measurement T1-T8 read, with round numbers.

    The target lines for these numbers are worked out by hand below.
    """
    N, T, P = Library.NUMPY, Library.TORCH, Library.PACKAGE_ON_TORCH
    report = Report(BenchConfig(models=("tiny",), repeats=1), {})

    def t(s):
        return Timing((s,))

    report.add("ceiling", timed_row(N, Kernel.GEMM, t(1.0), gflops=100.0))
    full = {"model": "medium", "batch": N_SAMPLES}
    report.add("kernels", timed_row(N, Kernel.GRADIENT, t(0.02), gflops=80.0, **full))
    report.add("kernels", timed_row(T, Kernel.GRADIENT, t(0.02), **full))
    small = {"model": "small", "batch": MINIBATCH}
    report.add("kernels", timed_row(N, Kernel.HVP_CACHED, t(1.0), ratio_to_gradient=1.5, **small))
    report.add("kernels", timed_row(N, Kernel.HVP_FRESH, t(1.0), ratio_to_gradient=2.5, **small))
    report.add("kernels", timed_row(N, Kernel.HVP_16_BATCHED, t(0.5), **small))
    report.add("kernels", timed_row(N, Kernel.HVP_16_SINGLE, t(1.0), **small))
    tiny = {"model": "tiny", "batch": MINIBATCH}
    for lib, cached, fresh in ((P, 0.9, 1.8), (T, 1.0, 2.0)):
        report.add("kernels", timed_row(lib, Kernel.HVP_CACHED, t(cached), **tiny))
        report.add("kernels", timed_row(lib, Kernel.HVP_FRESH, t(fresh), **tiny))
    report.add(
        "eigen",
        timed_row(
            None,
            Kernel.EIGEN_LANCZOS,
            t(0.1),
            model="tiny",
            n_hvp=40,
            rel_error=1e-9,
            residual=1e-5,
        ),
    )
    report.add("hessian", key_row(None, Kernel.HESSIAN, batch=MINIBATCH, total_s=0.5))
    report.add(
        "steps",
        key_row(Library.PACKAGE, Kernel.XSAM_OVER_SAM_BOUND, model="small", ratio_to_bound=1.0),
    )
    report.add("verify", key_row(None, Kernel.VERIFY_QUICK, seconds=30.0, exit_status=0))
    report.add("threads", key_row(N, Kernel.EIGSH_UNLIMITED_OVER_LIMITED, ratio=2.0))
    return report


EXPECTED_MEASURED = {
    "T1": "1.00x torch, 80% of GEMM ceiling",
    "T2": "cached 1.50x, fresh 2.50x gradient; 16 batched = 0.50x 16 single (small, worst batch)",
    "T3": "rel. error <= 1.0e-09 with 40 HVPs (tiny 1e-09); residual <= 1.0e-05",
    "T4": "batch 128: 0.50 s",
    "T5": "X-SAM/SAM = package small 1.00 x bound",
    "T6": "package R-op / torch double backward = tiny/128: 0.90 cached, 0.90 fresh",
    "T7": "verify --quick 30.0 s",
    "T8": "competing BLAS pools limited inside eigsh (unlimited / limited: numpy 2.0x)",
}


def test_targets_read_rows_by_key_so_renaming_a_label_changes_nothing(monkeypatch):
    before = evaluate_targets(_synthetic_report())
    assert {t["id"]: t["measured"] for t in before} == EXPECTED_MEASURED
    assert all(t["status"] == "met" for t in before)
    for i, key in enumerate(list(LABELS)):
        monkeypatch.setitem(LABELS, key, f"renamed {i}")
    report = _synthetic_report()
    assert (
        report.find(RowKey("kernels", Kernel.GRADIENT, Library.NUMPY))["name"] != "numpy gradient"
    )
    assert evaluate_targets(report) == before


def test_a_missing_measurement_is_reported_as_not_measured_by_its_key():
    report = _synthetic_report()
    report.sections["kernels"] = [
        r
        for r in report.sections["kernels"]
        if not (r["library"] == "torch" and r["kernel"] == "gradient")
    ]
    report.sections.pop("verify")
    got = {t["id"]: t for t in evaluate_targets(report)}
    assert got["T1"]["status"] == "n/a"
    assert got["T1"]["measured"] == (
        "not measured: no row kernels[kernel=gradient, library=torch, model=medium, "
        "batch=2048] (needs the medium model, NumPy and torch on the CPU)"
    )
    assert got["T7"]["status"] == "n/a"
    assert got["T7"]["measured"].startswith("not measured: no row verify[kernel=verify_quick]")
    assert got["T7"]["target"].startswith("verify --quick <= 60 s, default <= 5 min")
    others = {tid: t["measured"] for tid, t in got.items() if tid not in ("T1", "T7")}
    assert others == {k: v for k, v in EXPECTED_MEASURED.items() if k not in ("T1", "T7")}
    # T6 needs all four of its rows: without torch's fresh HVP it names that row
    report.sections["kernels"] = [
        r
        for r in report.sections["kernels"]
        if not (r["library"] == "torch" and r["kernel"] == "hvp_fresh")
    ]
    t6 = evaluate_targets(report)[5]
    assert (
        t6["status"] == "n/a"
        and "kernels[kernel=hvp_fresh, library=torch, model=tiny, batch=128]" in t6["measured"]
    )


def test_cli_bench_json_and_argument_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_config, "DEFAULT_SECTIONS", ("eigen",))  # the cheapest section
    with pytest.raises(SystemExit):
        main(["bench", "--models", "gigantic"])
    with pytest.raises(SystemExit):
        main(["bench", "--backend", "numpy", "--device", "tpu"])
    out = tmp_path / "bench.json"
    assert main(["bench", "--models", "tiny", "--repeats", "1", "--quick", "--json", str(out)]) == 0
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
    report = run_bench(
        BenchConfig(models=("tiny",), repeats=1, quick=True, threads=1, sections=("eigen",)),
        lambda line: seen.append([i["num_threads"] for i in threadpool_info()]),
    )
    assert report.env["threads"] == 1 and all(n == 1 for n in seen[0])
    assert [i["num_threads"] for i in threadpool_info()] == before
