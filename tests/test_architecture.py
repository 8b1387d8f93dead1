"""The layering of the package: experiments measure, claims judge, figures draw.

* ``xsam_theory.experiments`` never imports ``xsam_theory.claims`` (measurement knows nothing
  of verdicts) and importing it registers no claim;
* ``xsam_theory.figures`` imports experiments, never claims, except the leaf
  ``xsam_theory.claims.verdicts``, which itself imports nothing of the package but ``stats``;
* there is no import cycle between the claims and the figures packages;
* the ``verify`` command lives outside ``claims/``.

Imports are read from the source (module level and inside functions alike), so a lazy import
cannot hide a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "xsam_theory"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ``xsam_theory`` module that ``path`` imports, anywhere in the file."""
    return _imports_in(
        path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py"
    )


def _imports_in(source: str, module: str, is_pkg: bool) -> set[str]:
    tree = ast.parse(source)
    here = module.split(".")
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("xsam_theory"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_pkg else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join([*base, *([node.module] if node.module else [])])
            else:
                mod = node.module or ""
            if mod.startswith("xsam_theory"):
                out.add(mod)
                # ``from pkg import sub`` may import a submodule
                out.update(
                    f"{mod}.{a.name}"
                    for a in node.names
                    if (PACKAGE.parent / Path(*f"{mod}.{a.name}".split(".")))
                    .with_suffix(".py")
                    .exists()
                )
    return out


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_experiments_never_import_claims():
    bad = {
        m: sorted(i for i in deps if _within(i, "xsam_theory.claims"))
        for m, deps in _graph().items()
        if _within(m, "xsam_theory.experiments")
    }
    assert not {m: d for m, d in bad.items() if d}


def test_figures_import_no_claim_module_but_the_verdicts_leaf():
    bad = {
        m: sorted(
            i
            for i in deps
            if _within(i, "xsam_theory.claims") and i != "xsam_theory.claims.verdicts"
        )
        for m, deps in _graph().items()
        if _within(m, "xsam_theory.figures")
    }
    assert not {m: d for m, d in bad.items() if d}


def test_verdicts_module_is_a_leaf():
    deps = _graph()["xsam_theory.claims.verdicts"]
    assert deps <= {"xsam_theory", "xsam_theory.stats"}, deps


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        m = todo.pop()
        for d in graph.get(m, ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def test_no_import_cycle_between_claims_and_figures():
    graph = _graph()
    claims = [m for m in graph if _within(m, "xsam_theory.claims")]
    figures = [m for m in graph if _within(m, "xsam_theory.figures")]
    from_figures = set().union(*(_reachable(graph, f) for f in figures))
    from_claims = set().union(*(_reachable(graph, c) for c in claims))
    # figures may reach the verdicts leaf; nothing in figures may reach a claim that reaches back
    reached_claims = {c for c in claims if c in from_figures}
    assert reached_claims <= {"xsam_theory.claims.verdicts"}, reached_claims
    # and no claim reaches a figure, so the two packages cannot import each other
    assert not [f for f in figures if f in from_claims], "claims import figures"


def test_verify_lives_outside_claims():
    assert (PACKAGE / "verify.py").exists()
    assert not (PACKAGE / "claims" / "verify.py").exists()


@pytest.mark.parametrize("module", ["xsam_theory.experiments", "xsam_theory.figures"])
def test_importing_measurements_registers_no_claim(module):
    """In a fresh interpreter, importing every module of ``module`` leaves the registry empty."""
    code = (
        "import importlib, pkgutil\n"
        f"import {module} as pkg\n"
        "for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + '.'):\n"
        "    importlib.import_module(m.name)\n"
        "import sys\n"
        "reg = sys.modules.get('xsam_theory.claims.registry')\n"
        "print(0 if reg is None else len(reg.CLAIMS))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0", out.stdout + out.stderr


def test_the_import_reader_sees_lazy_and_relative_imports():
    """The checks above can fail: function-level and relative imports of a claim are found."""
    src = (
        "def data():\n    from xsam_theory.claims.p_angle import x\n"
        "def more():\n    from ..claims import registry\n"
    )
    found = _imports_in(src, "xsam_theory.figures.probe", is_pkg=False)
    assert "xsam_theory.claims.p_angle" in found
    assert "xsam_theory.claims.registry" in found
