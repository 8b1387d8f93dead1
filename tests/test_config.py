"""The optimizer configuration: unused options, the canonical form, the method names.

Options a method does not use are refused; the canonical form merges configurations that
differ only in inert options, and only configurations whose steps are identical; the preset
names are the one vocabulary of method names.

The oracle for "identical steps" is the step itself: both configurations are run for five NumPy
steps on a small MLP and their iterates and diagnostics compared bit for bit.
"""

from __future__ import annotations

import json
import re
import sqlite3
import warnings

import numpy as np
import pytest
from hypothesis import given, settings

from xsam_theory import MLP, OptimizerConfig, preset
from xsam_theory.optimizers import PRESETS, REFERENCE_OPTIONS
from xsam_theory.strategies import optimizer_config_pairs, optimizer_configs
from xsam_theory.sweeps import StoreError, SweepSpec, SweepStore
from xsam_theory.trajectory import Trajectory, run_trajectory

#: a small MLP whose Hessian changes from step to step (dimension 17)
PROBLEM = MLP(
    (2, 3, 2), np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [-1.0, 0.5]]), np.array([0, 1, 1, 0])
)
W0 = np.random.default_rng(7).standard_normal(PROBLEM.dim)
STEPS = 5


def _run(cfg: OptimizerConfig) -> Trajectory:
    with warnings.catch_warnings():
        # steps_per_epoch <= refresh_every under the reference schedule warns; not tested here
        warnings.simplefilter("ignore", UserWarning)
        return run_trajectory(PROBLEM, cfg, W0, STEPS, seed=3, on_nonfinite="stop")


def _bits(a: np.ndarray) -> bytes:
    """The bytes of a float array, with -0.0 read as +0.0.

    The sign of an exact zero is the one difference that adding an exact ``0 * v`` may make.
    """
    return (np.asarray(a, dtype=np.float64) + 0.0).tobytes()


def _identical(a: Trajectory, b: Trajectory) -> bool:
    """Same status, bit-identical iterates, and equal diagnostics (NaN where the other is NaN)."""
    if (a.status, a.message, a.iterates.shape) != (b.status, b.message, b.iterates.shape):
        return False
    if _bits(a.iterates) != _bits(b.iterates):
        return False
    return all(
        np.array_equal(
            a.diagnostics[k], b.diagnostics[k], equal_nan=a.diagnostics[k].dtype.kind == "f"
        )
        for k in a.diagnostics
    )


# -- options a method does not use ------------------------------------------------------------

UNUSED = [
    (
        ("sam", {"sign_rule": "symmetric"}),
        "sign_rule='symmetric' is not used by method 'sam': it is a switch of X-SAM's corrected "
        "direction",
    ),
    (
        ("sam", {"coefficient": "raw"}),
        "coefficient='raw' is not used by method 'sam': it is a switch of X-SAM's corrected "
        "direction",
    ),
    (
        ("sam", {"normalize": False}),
        "normalize=False is not used by method 'sam': it is a switch of X-SAM's corrected "
        "direction",
    ),
    (
        ("sam", {"eigvec_source": "power"}),
        "eigvec_source='power' is not used by method 'sam': only eigen_sam and xsam compute an "
        "eigenvector v",
    ),
    (
        ("sam", {"power_steps": 9}),
        "power_steps=9 is not used by method 'sam': only eigen_sam and xsam compute an eigenvector "
        "v",
    ),
    (
        ("usam", {"refresh_every": 7}),
        "refresh_every=7 is not used by method 'usam': only eigen_sam and xsam compute an "
        "eigenvector v",
    ),
    (
        ("sam", {"alpha": 0.5}),
        "alpha=0.5 is not used by method 'sam': only eigen_sam and xsam have a correction strength",
    ),
    (("gd", {"rho": 0.05}), "rho=0.05 is not used by method 'gd': gd takes no ascent step"),
    (
        ("eigen_sam", {"perturbation": "unnormalized"}),
        "perturbation='unnormalized' is not used by method 'eigen_sam': only sam and xsam take the "
        "ascent step rho g/||g|| or rho g (gd takes none, eigen_sam its own)",
    ),
    (
        ("xsam", {"power_steps": 9}),
        "power_steps=9 is not used by method 'xsam_paper' with eigvec_source='lanczos': only power "
        "iteration runs a fixed number of steps",
    ),
    (
        ("xsam_symmetric", {"eigvec_source": "exact", "eigen_tol": 1e-6}),
        "eigen_tol=1e-06 is not used by method 'xsam_symmetric' with eigvec_source='exact': only "
        "the Lanczos eigensolver has a tolerance",
    ),
    (
        ("eigen_sam", {"eigvec_source": "power", "eigvec_sign": -1}),
        "eigvec_sign=-1 is not used by method 'eigen_sam' with eigvec_source='power': power "
        "iteration keeps the orientation its iterations give",
    ),
    (
        ("xsam", {"steps_per_epoch": 10}),
        "steps_per_epoch=10 is not used by method 'xsam_paper' with schedule='standard': only the "
        "reference schedule restarts its counter each epoch",
    ),
    (
        ("sam", {"total_steps": 100}),
        "total_steps=100 is not used by method 'sam' with lr_schedule='constant': only the cosine "
        "learning-rate schedule has a length",
    ),
    (
        ("sam", {"schedule": "reference"}),
        "schedule='reference' is not used by method 'sam': only eigen_sam and xsam compute an "
        "eigenvector v",
    ),
]


@pytest.mark.parametrize(("call", "message"), UNUSED, ids=[m.split(" is")[0] for _, m in UNUSED])
def test_an_option_the_method_does_not_use_raises_naming_option_method_and_why(call, message):
    name, options = call
    with pytest.raises(ValueError) as info:
        preset(name, **options)
    assert str(info.value) == message


CONTRADICTIONS = [
    (
        ("nsam", {"alpha": 0.5}),
        "alpha=0.5 contradicts preset 'nsam' (X-SAM's paper form at alpha = 0, the normalized SAM "
        "step: alpha=0.0); use preset 'xsam' or 'xsam_paper'",
    ),
    (
        ("sam", {"perturbation": "unnormalized"}),
        "perturbation='unnormalized' contradicts preset 'sam' (SAM with the normalized "
        "perturbation rho g/||g||: perturbation='normalized'); use preset 'usam'",
    ),
    (
        ("xsam_symmetric", {"sign_rule": "paper"}),
        "sign_rule='paper' contradicts preset 'xsam_symmetric' (X-SAM, symmetric form: "
        "sign_rule='symmetric'); use preset 'xsam' or 'xsam_paper'",
    ),
    (
        ("xsam_projector", {"normalize": True}),
        "normalize=True contradicts preset 'xsam_projector' (X-SAM, projector form: "
        "normalize=False)",
    ),
    (
        ("gd", {"method": "xsam"}),
        "method='xsam' contradicts preset 'gd' (gradient descent: method='gd')",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"),
    CONTRADICTIONS,
    ids=[c[0] + "-" + next(iter(c[1])) for c, _ in CONTRADICTIONS],
)
def test_an_option_that_contradicts_the_named_method_raises(call, message):
    """``preset("nsam", alpha=0.5)`` used to give alpha = 0 silently."""
    name, options = call
    with pytest.raises(ValueError) as info:
        preset(name, **options)
    assert str(info.value) == message


def test_a_defining_option_repeated_with_its_own_value_is_accepted():
    assert preset("nsam", alpha=0.0) == preset("nsam")
    assert preset("xsam_symmetric", sign_rule="symmetric") == preset("xsam_symmetric")
    assert preset("usam", perturbation="unnormalized") == preset("usam")


def test_an_unknown_value_of_a_defining_option_gets_the_usual_message():
    with pytest.raises(
        ValueError,
        match=r"^sign_rule must be one of 'paper', 'symmetric', "
        r"got 'abs'$",
    ):
        preset("xsam_symmetric", sign_rule="abs")


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("xsam_symmetric", {"alpha": 0.0}),  # the alpha = 0 ablation twin
        ("xsam_projector", {"alpha": 0.0, "eigvec_source": "power", "power_steps": 9}),
        ("eigen_sam", {"alpha": 0.0, "eigvec_source": "exact", "eigvec_sign": -1}),
        ("usam", {"rho": 0.0}),
        (
            "xsam_raw_projection",
            {
                "alpha": 0.0,
                "schedule": "reference",
                "steps_per_epoch": 4,
                **REFERENCE_OPTIONS["xsam"],
            },
        ),
    ],
)
def test_options_inert_only_by_a_value_are_accepted(name, options):
    cfg = preset(name, **options)
    assert cfg.inert_options()
    for option in cfg.inert_options():
        assert option in cfg.to_dict()


# -- the canonical form -----------------------------------------------------------------------


@given(optimizer_configs())
def test_from_dict_of_to_dict_is_the_canonical_configuration(cfg):
    data = cfg.to_dict()
    assert json.loads(json.dumps(data)) == data
    back = OptimizerConfig.from_dict(data)
    assert back == cfg.canonical()
    assert back.canonical() == back  # canonical forms are fixed points
    assert back.to_dict() == data


def test_float_options_are_floats_in_the_dictionary():
    """``rho=0`` and ``rho=0.0`` are one run: one JSON text, one hash."""
    a, b = preset("sam", rho=0, lr=1), preset("sam", rho=0.0, lr=1.0)
    assert json.dumps(a.to_dict(), sort_keys=True) == json.dumps(b.to_dict(), sort_keys=True)


@given(optimizer_config_pairs())
@settings(max_examples=200)
def test_configurations_with_equal_canonical_forms_take_identical_steps(pair):
    """Soundness of the canonical form: equal dictionaries mean identical steps.

    Equal dictionaries (so equal run hashes) only for configurations whose five steps on an MLP
    agree bit for bit, diagnostics included.
    """
    a, b = pair
    if a.to_dict() == b.to_dict():
        assert _identical(_run(a), _run(b)), (a, b)


#: pairs whose steps differ: their canonical forms must differ too (checked, and the steps
#: checked to differ, so that the pair is a real counterexample to merging them)
DIFFERENT = {
    "paper-vs-symmetric": (
        preset("xsam_paper", alpha=0.5, eigvec_source="exact"),
        preset("xsam_symmetric", alpha=0.5, eigvec_source="exact"),
    ),
    "nsam-vs-sam": (preset("nsam"), preset("sam")),
    "alpha0-normalized-vs-raw": (
        preset("xsam_paper", alpha=0.0),
        preset("xsam_projector", alpha=0.0),
    ),
    "alpha0-reference-vs-standard": (
        preset("xsam_symmetric", alpha=0.0, **REFERENCE_OPTIONS["xsam"]),
        preset("xsam_symmetric", alpha=0.0),
    ),
    "eigen-sam-alpha0-reference": (
        preset("eigen_sam", alpha=0.0, **REFERENCE_OPTIONS["xsam"]),
        preset("eigen_sam", alpha=0.0),
    ),
    "usam-vs-sam": (preset("usam", rho=0.3), preset("sam", rho=0.3)),
    "eigvec-sign-paper": (
        preset("xsam_paper", alpha=0.5, eigvec_source="exact"),
        preset("xsam_paper", alpha=0.5, eigvec_source="exact", eigvec_sign=-1),
    ),
    # the symmetric rule is invariant under v -> -v, but c and the angle to v are not
    "eigvec-sign-symmetric": (
        preset("xsam_symmetric", alpha=0.5, eigvec_source="exact"),
        preset("xsam_symmetric", alpha=0.5, eigvec_source="exact", eigvec_sign=-1),
    ),
    # alpha = 0 under the reference schedule: v exists, c is reported
    "alpha0-reference-power-steps": (
        preset("nsam", **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 2, "power_steps": 1}),
        preset("nsam", **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 2, "power_steps": 8}),
    ),
    "power-steps": (
        preset("xsam", alpha=0.5, eigvec_source="power", power_steps=1),
        preset("xsam", alpha=0.5, eigvec_source="power", power_steps=8),
    ),
    "refresh-every": (
        preset("xsam", alpha=0.5, refresh_every=1),
        preset("xsam", alpha=0.5, refresh_every=2),
    ),
    "steps-per-epoch": (
        preset("xsam", **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 2}, steps_per_epoch=2),
        preset("xsam", **{**REFERENCE_OPTIONS["xsam"], "refresh_every": 2}, steps_per_epoch=3),
    ),
    "total-steps": (
        preset("sam", lr_schedule="cosine", total_steps=3),
        preset("sam", lr_schedule="cosine", total_steps=10),
    ),
    "perturbation-xsam": (
        preset("xsam", rho=0.3, alpha=0.5),
        preset("xsam", rho=0.3, alpha=0.5, perturbation="unnormalized"),
    ),
}


@pytest.mark.parametrize("pair", DIFFERENT.values(), ids=DIFFERENT)
def test_configurations_whose_steps_differ_have_different_canonical_forms(pair):
    a, b = pair
    assert not _identical(_run(a), _run(b))
    assert a.to_dict() != b.to_dict()


SAME = {
    "alpha0-ablation-twin": (preset("xsam_symmetric", alpha=0.0), preset("nsam")),
    "alpha0-raw-projection": (preset("xsam_raw_projection", alpha=0.0), preset("nsam")),
    "alpha0-eigvec-options": (
        preset("xsam", alpha=0.0, eigvec_source="power", power_steps=9, refresh_every=4),
        preset("nsam"),
    ),
    "alpha0-reference-sign-rule": (
        preset("xsam_symmetric", alpha=0.0, **REFERENCE_OPTIONS["xsam"]),
        preset("nsam", **REFERENCE_OPTIONS["xsam"]),
    ),
    "rho0-usam": (preset("usam", rho=0.0), preset("sam", rho=0.0)),
    "eigen-sam-alpha0-eigvec": (
        preset("eigen_sam", alpha=0.0, eigvec_source="exact", eigvec_sign=-1),
        preset("eigen_sam", alpha=0.0),
    ),
}


@pytest.mark.parametrize("pair", SAME.values(), ids=SAME)
def test_configurations_that_differ_only_in_inert_options_have_one_canonical_form(pair):
    a, b = pair
    assert a != b and a.to_dict() == b.to_dict()
    assert _identical(_run(a), _run(b))


def test_sweep_runs_that_differ_only_in_inert_options_have_one_hash():
    def runs(*entries):
        return SweepSpec(
            name="s", problem={"name": "factorization", "n": 3}, optimizers=list(entries), steps=2
        ).runs()

    twins = runs(
        {"preset": "xsam_symmetric", "alpha": 0.0, "label": "ablation"},
        {"preset": "nsam", "label": "ablation"},
        {
            "preset": "xsam",
            "alpha": 0.0,
            "eigvec_source": "power",
            "power_steps": 9,
            "label": "ablation",
        },
    )
    assert len(twins) == 1
    distinct = runs(
        {"preset": "xsam_symmetric", "alpha": 0.5, "label": "x"},
        {"preset": "xsam_paper", "alpha": 0.5, "label": "x"},
    )
    assert len(distinct) == 2


# -- the store's schema version ---------------------------------------------------------------


@pytest.mark.parametrize("read_only", [False, True])
def test_a_store_of_schema_1_is_refused_with_what_to_do(tmp_path, read_only):
    """Run hashes changed with the canonical form: a schema-1 store's hashes never match."""
    path = tmp_path / "old.sqlite"
    SweepStore(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 1")
    con.close()
    with pytest.raises(StoreError) as info:
        SweepStore(path, read_only=read_only)
    assert str(info.value) == (
        f"{path} was written by an older xsam-theory (store schema 1) whose run hashes are not "
        "comparable: use a new store file or rerun the sweeps"
    )


def test_a_new_store_has_schema_2(tmp_path):
    path = tmp_path / "new.sqlite"
    SweepStore(path).close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    con.close()


# -- one vocabulary ---------------------------------------------------------------------------

METHOD_NAMES = [
    "eigen_sam",
    "gd",
    "nsam",
    "sam",
    "usam",
    "xsam",
    "xsam_paper",
    "xsam_projector",
    "xsam_raw_projection",
    "xsam_symmetric",
]


def test_the_method_names_are_the_preset_names_and_a_typo_lists_them():
    assert sorted(PRESETS) == METHOD_NAMES
    with pytest.raises(ValueError) as info:
        preset("xsam_symetric")
    assert str(info.value) == f"preset must be one of {METHOD_NAMES}, got 'xsam_symetric'"
    spec = SweepSpec(
        name="s", problem={"name": "factorization", "n": 3}, optimizers=[{"preset": "Xsam"}]
    )
    with pytest.raises(
        ValueError, match=re.escape(f"preset must be one of {METHOD_NAMES}, got 'Xsam'")
    ):
        spec.runs()


@pytest.mark.parametrize("name", METHOD_NAMES)
def test_method_name_gives_the_preset_name_back(name):
    # "xsam" is another name of "xsam_paper"; "nsam" is xsam_paper at alpha = 0
    want = {"xsam": "xsam_paper", "nsam": "xsam_paper"}.get(name, name)
    assert preset(name).method_name == want
