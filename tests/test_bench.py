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
        models=("tiny",), repeats=1, quick=True, sections=("kernels", "eigen", "lanczos", "steps")
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
    assert ids == [f"T{i}" for i in range(1, 12)]
    # the Lanczos section: tiny alone stands in for small/medium; rows found by key
    for batch in (MINIBATCH, N_SAMPLES):
        lz = report.find(RowKey("lanczos", Kernel.LANCZOS_STEPS, model="tiny", batch=batch))
        alone = report.find(RowKey("lanczos", Kernel.LANCZOS_HVPS, model="tiny", batch=batch))
        assert lz["n_hvp"] == alone["n_hvp"] == 40
        ratio = report.find(
            RowKey("lanczos", Kernel.LANCZOS_STEPS_OVER_HVPS, model="tiny", batch=batch)
        )
        assert ratio["ratio"] == pytest.approx(lz["median_s"] / alone["median_s"], rel=1e-12)
    tol = report.find(RowKey("lanczos", Kernel.LANCZOS_TOL_OVER_ARPACK, model="tiny"))
    arpack = report.find(RowKey("lanczos", Kernel.ARPACK_TOL, model="tiny"))
    assert tol["n_hvp_arpack"] == arpack["n_hvp"] > 0 and tol["rel_diff"] < 1e-6
    on = report.find(RowKey("steps", Kernel.STEP_XSAM_DIAGNOSTICS, Library.PACKAGE))
    assert on["seconds_per_step"] > 0
    status = {t["id"]: t["status"] for t in report.targets}
    assert status["T1"] == "n/a"  # needs the medium model
    assert status["T3"] in ("met", "NOT met") and status["T4"] == "n/a"
    assert status["T5"] in ("met", "NOT met") and status["T11"] in ("met", "NOT met")
    assert status["T9"] == status["T10"] == "n/a"  # no small or medium model
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
    for model, batch, ratio in (
        ("small", MINIBATCH, 1.10),
        ("small", N_SAMPLES, 1.05),
        ("medium", MINIBATCH, 1.0),
        ("medium", N_SAMPLES, 1.15),
    ):
        report.add(
            "lanczos",
            key_row(
                None,
                Kernel.LANCZOS_STEPS_OVER_HVPS,
                model=model,
                batch=batch,
                steps=40,
                ratio=ratio,
            ),
        )
    for model, time_ratio, n_lz, n_ar in (("tiny", 0.5, 30, 60), ("small", 0.8, 40, 50)):
        report.add(
            "lanczos",
            key_row(
                None,
                Kernel.LANCZOS_TOL_OVER_ARPACK,
                model=model,
                batch=MINIBATCH,
                tol=1e-6,
                time_ratio=time_ratio,
                hvp_ratio=n_lz / n_ar,
                n_hvp_lanczos=n_lz,
                n_hvp_arpack=n_ar,
                accurate=True,
            ),
        )
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
    "T9": "40-step Lanczos / its HVPs on small: batch 128: 1.10x, batch 2048: 1.05x",
    "T10": "40-step Lanczos / its HVPs on medium: batch 128: 1.00x, batch 2048: 1.15x",
    "T11": "Lanczos / ARPACK at tol 1e-06: tiny 0.50x (30/60 HVPs), small 0.80x (40/50 HVPs)",
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
    # a quick run: no medium Lanczos rows; T10 names the missing row, T9 still reads small's
    report.sections["lanczos"] = [r for r in report.sections["lanczos"] if r["model"] != "medium"]
    got = {t["id"]: t for t in evaluate_targets(report)}
    assert got["T10"]["status"] == "n/a" and got["T10"]["measured"] == (
        "not measured: no row lanczos[kernel=lanczos_steps_over_hvps, model=medium, batch=128] "
        "(full bench only: the medium model)"
    )
    assert got["T9"]["measured"] == EXPECTED_MEASURED["T9"] and got["T9"]["status"] == "met"
    report.sections["lanczos"] = [r for r in report.sections["lanczos"] if r["batch"] != N_SAMPLES]
    assert "model=small, batch=2048" in evaluate_targets(report)[8]["measured"]
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


def test_new_targets_miss_by_their_arithmetic():
    """T9/T10 miss above 1.15x on any batch; T11 above 0.8x, or when less accurate than ARPACK."""
    report = _synthetic_report()
    for row in report.sections["lanczos"]:
        if row["kernel"] == Kernel.LANCZOS_STEPS_OVER_HVPS.value and row["batch"] == N_SAMPLES:
            row["ratio"] = 1.16
    got = {t["id"]: t for t in evaluate_targets(report)}
    assert got["T9"]["status"] == got["T10"]["status"] == "NOT met"
    assert got["T9"]["ratio"] == got["T10"]["ratio"] == 1.16
    assert got["T11"]["status"] == "met" and got["T11"]["hvp_ratio"] == 0.8
    tiny = report.find(RowKey("lanczos", Kernel.LANCZOS_TOL_OVER_ARPACK, model="tiny"))
    tiny["accurate"] = False
    t11 = evaluate_targets(report)[10]
    assert (
        t11["status"] == "NOT met" and "tiny 0.50x (30/60 HVPs, less accurate)" in t11["measured"]
    )
    tiny["accurate"], tiny["time_ratio"] = True, 0.81
    t11 = evaluate_targets(report)[10]
    assert t11["status"] == "NOT met" and t11["time_ratio"] == 0.81


def test_t5_reads_the_package_step_without_diagnostics_and_shows_it_with_them():
    report = _synthetic_report()
    report.add(
        "steps",
        key_row(
            Library.PACKAGE,
            Kernel.XSAM_OVER_SAM_BOUND_DIAGNOSTICS,
            model="small",
            ratio_to_bound=1.2,
        ),
    )
    t5 = evaluate_targets(report)[4]
    assert t5["status"] == "met" and t5["ratio_to_bound"] == 1.0
    assert t5["measured"] == (
        "X-SAM/SAM = package small 1.00 x bound (package with diagnostics on: small 1.20)"
    )


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("gd", {"momentum": 0.9, "weight_decay": 1e-3}),
        ("sam", {"rho": 0.05}),
        ("usam", {"rho": 0.05}),
        ("eigen_sam", {"rho": 0.05, "alpha": 0.3, "refresh_every": 2}),
        ("xsam", {"rho": 0.05, "alpha": 0.3, "refresh_every": 2}),
        (
            "xsam",
            {
                "rho": 0.05,
                "alpha": 0.2,
                "schedule": "reference",
                "eigvec_source": "power",
                "refresh_every": 2,
                "power_steps": 3,
                "steps_per_epoch": 5,
                "momentum": 0.5,
            },
        ),
    ],
)
def test_step_without_diagnostics_takes_bit_identical_steps(name, options):
    """``diagnostics=False`` changes no iterate, eigenvector or counter, only the NaN norms/angles.

    The default run's vector diagnostics are finite where defined, so the NaNs are the opt-out's.
    """
    import math

    import numpy as np

    from xsam_theory.optimizers import init_state, preset, step
    from xsam_theory.optimizers.step import VECTOR_DIAGNOSTICS, StepInfo
    from xsam_theory.problems.mlp import MLP

    problem = MLP.teacher_student((5, 7, 3), 40, teacher_widths=(5, 4, 3), seed=1)
    config = preset(name, lr=0.1, **options)
    on = off = init_state(problem, np.asarray(problem.init_params(0)), config, seed=3)
    batches = np.random.default_rng(0).permutation(np.tile(np.arange(40), 3)).reshape(-1, 8)
    for batch in batches:
        on, info_on = step(problem, on, config, batch)
        off, info_off = step(problem, off, config, batch, diagnostics=False)
        for field in ("w", "v", "momentum"):
            a, b = getattr(on, field), getattr(off, field)
            assert (a is None and b is None) or np.array_equal(a, b)
        assert (on.step, on.epoch_step) == (off.step, off.epoch_step)
        for field in StepInfo.FIELDS:
            x, y = getattr(info_on, field), getattr(info_off, field)
            if field in VECTOR_DIAGNOSTICS:
                assert math.isnan(y)
            elif isinstance(x, float) and math.isnan(x):
                assert math.isnan(y)
            else:
                assert x == y, field
        assert math.isfinite(info_on.grad_norm)
    assert on.v is not None or config.method.value in ("gd", "sam", "usam")


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


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("sam", {"rho": 0.05}),
        ("usam", {"rho": 0.05, "momentum": 0.9, "weight_decay": 1e-3}),
        ("eigen_sam", {"rho": 0.05, "alpha": 0.2, "eigvec_source": "power", "power_steps": 3}),
        ("xsam", {"rho": 0.05, "alpha": 0.2, "eigvec_source": "power", "power_steps": 4}),
        ("xsam", {"rho": 0.05, "alpha": 0.0, "eigvec_source": "lanczos"}),
    ],
)
def test_in_place_vector_work_of_the_steps_is_bit_identical(name, options, monkeypatch):
    """The steps' in-place NumPy paths (T5's per-step vector work) give the plain formulas' bits.

    Reference: the same run with every in-place helper replaced by its plain expression
    (``w + eps``, ``w - eta * u``, ``rho * unit(g)``, ``unit(Au)`` with a separate norm) and
    X-SAM's direction written out as ``unit(g_adv) - (alpha * |<unit(g_adv), v>|) * v``.
    """
    import importlib

    import numpy as np

    directions = importlib.import_module("xsam_theory.optimizers.directions")
    step_mod = importlib.import_module("xsam_theory.optimizers.step")
    power = importlib.import_module("xsam_theory.spectral.power")
    from xsam_theory.optimizers import init_state, preset, step
    from xsam_theory.problems.mlp import MLP
    from xsam_theory.vectors import norm, unit

    problem = MLP.teacher_student((5, 7, 3), 40, teacher_widths=(5, 4, 3), seed=1)
    config = preset(name, lr=0.1, **options)
    batches = np.random.default_rng(0).permutation(np.tile(np.arange(40), 3)).reshape(-1, 8)

    def run() -> list:
        state = init_state(problem, np.asarray(problem.init_params(0)), config, seed=3)
        states = []
        for batch in batches:
            state, _ = step(problem, state, config, batch, diagnostics=False)
            states.append(state)
        return states

    fast = run()
    monkeypatch.setattr(step_mod, "_add_into_own", lambda w, eps: w + eps)
    monkeypatch.setattr(step_mod, "_minus_scaled", lambda w, eta, u: w - eta * u)
    monkeypatch.setattr(directions, "_scale_own", lambda u, s: s * u)
    monkeypatch.setattr(power, "_host_unit", lambda u: (unit(u), float(norm(u))))
    plain = run()
    for a, b in zip(fast, plain, strict=True):
        for field in ("w", "v", "momentum"):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None and y is None) or np.array_equal(x, y), field
        assert a.eigenvalue == b.eigenvalue or (a.eigenvalue != a.eigenvalue)
    rng = np.random.default_rng(5)
    for _ in range(20):
        g_adv, v = (
            rng.standard_normal(50) * 10.0 ** rng.integers(-150, 150),
            unit(rng.normal(size=50)),
        )
        d, c = directions.xsam_direction(g_adv, v, 0.3)
        g_hat = unit(g_adv)
        assert np.array_equal(d, g_hat - (0.3 * abs(np.vecdot(g_hat, v))) * v)
        assert float(c) == float(np.vecdot(g_hat, v))
