"""The `verify` command: outputs, schema, exit status, and the mutation check (docs/claims.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xsam_theory.claims import CLAIMS, ClaimResult, ExperimentContext, load_all, run_claim
from xsam_theory.claims.registry import Outcome, Verdict, claim, verdict_from_interval
from xsam_theory.cli import main
from xsam_theory.optimizers import directions
from xsam_theory.verify import exit_status, render_table


def test_verify_quick_writes_both_files_with_the_spec_schema(tmp_path, capsys):
    status = main(["verify", "--quick", "--only", "D-G1,D-G3", "--out", str(tmp_path), "--quiet"])
    assert status == 0
    doc = json.loads((tmp_path / "claims.json").read_text())
    for key in ("package_version", "backend", "device", "dtype", "seed", "quick", "claims"):
        assert key in doc
    assert doc["quick"] is True and doc["backend"] == "numpy"
    assert [c["id"] for c in doc["claims"]] == ["D-G1", "D-G3"]
    for c in doc["claims"]:
        for key in (
            "id",
            "kind",
            "statement",
            "method",
            "verdict",
            "evidence",
            "tolerance",
            "seconds",
        ):
            assert key in c
        assert c["verdict"] == "holds"
    report = (tmp_path / "report.md").read_text()
    assert "## D-G3 (D): holds" in report and CLAIMS["D-G3"].statement in report
    out = capsys.readouterr().out
    assert "D-G1" in out and "holds" in out and "exit status 0" in out


def test_unknown_claim_id_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["verify", "--quick", "--only", "D-G9", "--out", str(tmp_path)])
    assert e.value.code == 2


def _result(kind: str, verdict: str) -> ClaimResult:
    return ClaimResult("X", kind, "s", "m", verdict, "k", {}, "t", 0.0)


@pytest.mark.parametrize(
    ("kinds_verdicts", "status"),
    [
        ([("D", "holds"), ("P", "fails")], 0),
        ([("P", "error"), ("P", "inconclusive")], 0),
        ([("D", "holds"), ("L", "fails")], 1),
        ([("F", "error")], 1),
        ([("D", "inconclusive")], 0),
    ],
)
def test_exit_status_follows_spec(kinds_verdicts, status):
    assert exit_status([_result(k, v) for k, v in kinds_verdicts]) == status


def test_a_raising_check_becomes_an_error_verdict_with_traceback():
    load_all()

    @claim("T-RAISE", "D", "raises", method="m", tolerance="t")
    def boom(ctx: ExperimentContext) -> Outcome:
        raise ArithmeticError("deliberate")

    try:
        r = run_claim("T-RAISE", ExperimentContext(scale="quick"))
        assert r.verdict == "error" and "deliberate" in r.key
        assert "ArithmeticError" in r.evidence["traceback"]
        assert "T-RAISE" in render_table([r])
    finally:
        del CLAIMS["T-RAISE"]


def test_verdict_from_interval():
    assert verdict_from_interval(-2, -1) is Verdict.HOLDS
    assert verdict_from_interval(1, 2) is Verdict.FAILS
    assert verdict_from_interval(1, 2, better_if="positive") is Verdict.HOLDS
    assert verdict_from_interval(-1, 2) is Verdict.INCONCLUSIVE
    assert verdict_from_interval(float("nan"), 2) is Verdict.INCONCLUSIVE


# --- mutation check: breaking a formula behind a D/L claim makes a check fail ----------------


def _flipped_correction(
    g_adv, v, alpha, *, sign_rule="paper", normalize=True, coefficient="normalized"
):
    xp = namespace(g_adv, v)  # noqa: F821  (resolved in the original module's globals)
    sign_rule, coefficient = SignRule(sign_rule), Coefficient(coefficient)  # noqa: F821
    g_hat = unit(g_adv)  # noqa: F821
    c = xp.vecdot(g_hat, v)
    gamma = c if coefficient is Coefficient.NORMALIZED else xp.vecdot(g_adv, v)  # noqa: F821
    if sign_rule is SignRule.PAPER:  # noqa: F821
        gamma = xp.abs(gamma)
    base = g_hat if normalize else g_adv
    return base + (alpha * gamma) * v, c  # mutant: + instead of -


def _no_abs(g_adv, v, alpha, *, sign_rule="paper", normalize=True, coefficient="normalized"):
    xp = namespace(g_adv, v)  # noqa: F821
    g_hat = unit(g_adv)  # noqa: F821
    c = xp.vecdot(g_hat, v)
    base = g_hat if normalize else g_adv
    return base - (alpha * c) * v, c  # mutant: sign(c)·c replaced by c


def _halved_ascent(g, rho, *, normalize=True):
    return 0.5 * rho * unit(g) if normalize else rho * g  # noqa: F821  mutant: ε = ρĝ/2


@pytest.mark.parametrize(
    ("target", "mutant"),
    [
        ("xsam_direction", _flipped_correction),
        ("xsam_direction", _no_abs),
        ("sam_perturbation", _halved_ascent),
    ],
)
def test_mutating_a_formula_makes_a_derived_or_literature_claim_fail(monkeypatch, target, mutant):
    load_all()
    original = getattr(directions, target)
    monkeypatch.setattr(original, "__code__", mutant.__code__)
    ids = [cid for cid, c in CLAIMS.items() if c.kind.value in ("D", "L")]
    verdicts = {cid: run_claim(cid, ExperimentContext(scale="quick")).verdict for cid in ids}
    assert any(v in ("fails", "error") for v in verdicts.values()), verdicts


def test_mutants_leave_the_original_functions_intact_afterwards():
    d, _ = directions.xsam_direction(np.array([1.0, 1.0]), np.array([1.0, 0.0]), 0.5)
    np.testing.assert_allclose(d, [1 / np.sqrt(2) * 0.5, 1 / np.sqrt(2)])


# -- --backend torch -----------------------------------------------------------------------------
def test_run_steps_runs_the_implementation_on_the_context_backend():
    torch = pytest.importorskip("torch")
    from xsam_theory.experiments.loops import exact_v, quadratic_case, run_steps

    q, _ = quadratic_case("(10,4,1)", 0)
    cfg = exact_v("xsam_paper", lr=0.05, rho=0.05, alpha=0.5)
    w0 = np.random.default_rng(0).standard_normal(q.dim)
    on_numpy = run_steps(q, cfg, w0, 60)
    on_torch = run_steps(q, cfg, w0, 60, ctx=ExperimentContext(scale="quick", backend="torch"))
    assert isinstance(on_torch.state.w, torch.Tensor)
    assert isinstance(on_torch.iterates, np.ndarray)
    # docs/algorithms.md#A-backends: the backends agree to 1e-10 relative on 100-step
    # trajectories (float64)
    scale = np.linalg.norm(on_numpy.iterates, axis=1, keepdims=True)
    assert np.max(np.abs(on_torch.iterates - on_numpy.iterates) / scale) <= 1e-10


def test_verify_backend_torch_gives_the_numpy_verdicts_and_says_where_each_check_ran(
    tmp_path, capsys
):
    pytest.importorskip("torch")
    ids = "D-G1,F-WINDOW,F-TRAP,L-SAM2"
    assert (
        main(
            [
                "verify",
                "--quick",
                "--only",
                ids,
                "--out",
                str(tmp_path / "t"),
                "--backend",
                "torch",
                "--quiet",
                "--no-figures",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "verify",
                "--quick",
                "--only",
                ids,
                "--out",
                str(tmp_path / "n"),
                "--quiet",
                "--no-figures",
            ]
        )
        == 0
    )
    t = json.loads((tmp_path / "t" / "claims.json").read_text())
    n = json.loads((tmp_path / "n" / "claims.json").read_text())
    assert t["backend"] == "torch" and t["device"] == "cpu"
    on = {c["id"]: c["backend"] for c in t["claims"]}
    assert on == {
        "D-G1": "numpy",
        "F-WINDOW": "torch:cpu",
        "F-TRAP": "torch:cpu",
        "L-SAM2": "torch:cpu",
    }
    assert [c["verdict"] for c in t["claims"]] == [c["verdict"] for c in n["claims"]]
    # the same runs: the window ranges measured on torch equal NumPy's to round-off
    wt, wn = (
        {c["id"]: c for c in doc["claims"]}["F-WINDOW"]["evidence"]["paper_runs"] for doc in (t, n)
    )
    assert [r["fraction_plus"] for r in wt] == [r["fraction_plus"] for r in wn]
    rt = [r["max_transverse/eta"] for r in wt]
    rn = [r["max_transverse/eta"] for r in wn]
    assert np.allclose(rt, rn, rtol=1e-8, atol=1e-12)
    assert "torch:cpu" in capsys.readouterr().out


def test_verify_rejects_an_unavailable_device(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(SystemExit) as e:
        main(["verify", "--quick", "--only", "D-G1", "--device", "cuda", "--out", str(tmp_path)])
    assert e.value.code == 2


def test_ledger_order_does_not_depend_on_which_claim_module_was_imported_first():
    from xsam_theory.claims import MODULES

    load_all()
    want = list(CLAIMS)
    first = {c.check.__module__ for c in CLAIMS.values()}
    assert len(first) == len(MODULES)
    # simulate a late-registered module: move its claims to the end of the registry
    late = [cid for cid, c in CLAIMS.items() if c.check.__module__.endswith(MODULES[0])]
    for cid in late:
        CLAIMS[cid] = CLAIMS.pop(cid)
    assert list(CLAIMS) != want
    assert list(load_all()) == want


# -- figures in the report -----------------------------------------------------------------------
def test_verify_draws_each_claims_figure_and_the_report_shows_it(tmp_path):
    assert (
        main(["verify", "--quick", "--only", "D-G1,D-G2,D-CURV", "--out", str(tmp_path), "--quiet"])
        == 0
    )
    doc = json.loads((tmp_path / "claims.json").read_text())
    fig = {c["id"]: c["figure"] for c in doc["claims"]}
    assert fig == {"D-G1": "figures/geometry.png", "D-G2": "figures/geometry.png", "D-CURV": None}
    for ext in ("png", "pdf", "csv"):
        assert (tmp_path / "figures" / f"geometry.{ext}").stat().st_size > 0
    report = (tmp_path / "report.md").read_text()
    assert "![D-G1: figure geometry](figures/geometry.png)" in report


def test_every_figure_a_claim_names_exists():
    from xsam_theory.figures import FIGURES

    named = {c.figure for c in load_all().values()} - {None}
    assert named and named <= set(FIGURES)


def test_a_figure_that_fails_is_an_error_exit_and_leaves_the_verdicts_alone(
    tmp_path, monkeypatch, capsys
):
    """A figure that fails in this process is an error exit that leaves the verdicts alone.

    In this process (a figure that draws a claim's evidence is drawn here): the table still shows
    the verdicts, the figure is named, the exit status is 3 and nothing is written
    (tests/test_verify_outputs.py covers the background process, full disks and the previous
    outputs).
    """
    import dataclasses

    import xsam_theory.figures as figures
    import xsam_theory.verify as verify

    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(figures, "make_figure", broken)
    monkeypatch.setitem(
        verify.FIGURES,
        "geometry",
        dataclasses.replace(figures.FIGURES["geometry"], draws_claim_evidence=True),
    )
    assert main(["verify", "--quick", "--only", "D-G1", "--out", str(tmp_path), "--quiet"]) == 3
    out, err = capsys.readouterr()
    assert "D-G1" in out and "holds" in out
    assert "figure 'geometry' could not be drawn or written (RuntimeError: no ink)" in err
    assert not (tmp_path / "claims.json").exists() and not (tmp_path / "report.md").exists()


def test_a_file_named_figures_in_out_is_replaced_by_the_figures_folder(tmp_path):
    """A file named ``figures`` in the output folder is replaced by the figures folder.

    ``figures/`` is one of verify's outputs: whatever held that name is replaced with the rest of
    the previous run's outputs.
    """
    (tmp_path / "figures").write_text("not a folder")
    assert main(["verify", "--quick", "--only", "D-G1", "--out", str(tmp_path), "--quiet"]) == 0
    c = json.loads((tmp_path / "claims.json").read_text())["claims"][0]
    assert c["verdict"] == "holds" and c["figure"] == "figures/geometry.png"
    assert (tmp_path / "figures" / "geometry.png").stat().st_size > 0


def test_every_claim_has_its_proofs_checks_module():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "proofs_checks"
    have = {p.stem for p in root.glob("check_*.py")}
    want = {"check_" + cid.lower().replace("-", "_") for cid in load_all()}
    assert want == have


def test_report_shows_a_p_claims_headline_and_subclaims_table():
    """The report shows a P claim's headline and subclaims table, from the evidence alone.

    report.md renders each subclaim's estimate, interval, n, Holm p-value and verdict, and the
    headline rule with its attribution.
    """
    from xsam_theory.claims.verdicts import judge_family, subclaim
    from xsam_theory.verify import render_report

    subs = judge_family(
        [
            subclaim(
                "a/xsam-vs-sam", "X-SAM below SAM", [-1.0, -1.2, -0.9, -1.1], better_if="negative"
            ),
            subclaim(
                "a/xsam-vs-ablation",
                "X-SAM below nsam",
                [0.1, -0.1, 0.05, -0.02],
                better_if="negative",
            ),
        ]
    )
    ev = {
        "subclaims": [s.to_json() for s in subs],
        "headline": {
            "rule": "holds if a/xsam-vs-sam holds",
            "subclaims": ["a/xsam-vs-sam"],
            "verdict": "holds",
            "attribution": "normalization, not the correction",
        },
    }
    r = ClaimResult("P-TEST", "P", "s", "m", "holds", "k", ev, "t", 0.1)
    text = render_report(
        [r],
        {
            "package_version": "0",
            "backend": "numpy",
            "device": None,
            "dtype": "float64",
            "seed": 0,
            "scale": "quick",
        },
    )
    assert "**Headline: holds.**" in text and "normalization, not the correction" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| a/xsam-vs-sam |"))
    assert f"{subs[0].estimate:.3g}" in row and row.rstrip().endswith("| holds |")
    row = next(ln for ln in text.splitlines() if ln.startswith("| a/xsam-vs-ablation |"))
    assert row.rstrip().endswith("| inconclusive |")
