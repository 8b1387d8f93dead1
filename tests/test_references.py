"""Every reference in the repository points at something inside the repository that exists.

The checker scans README.md, docs/**/*.md (and the site's own conf.py and _ext/), notebooks/*.py,
xsam_theory/**/*.py, proofs_checks/*, tests/*.py, scripts/*.py and pyproject.toml, and reports
``file:line: rule: message`` for

(a) ``link``: a markdown link or image ``[x](target)`` (in a markdown file, or in a notebook's
    markdown cell) whose relative target does not exist, or whose ``#anchor`` is not defined in
    the target page; the anchors of a page are its MyST target labels ``(ID)=`` and its heading
    slugs as MyST computes them (``myst_heading_anchors`` levels; exact case);
(b) ``path``: a repository path written as text, ``docs/theory.md#T-window`` or
    ``xsam_theory/symbolic/rates.py``, in code, docstrings, comments or pages, that does not
    exist (or names an anchor the page does not define);
(c) ``id``: a theory, algorithm, claims-page or performance anchor named on its own in quotes or
    backticks (``"T-sam-cycle"`` in a claim's ``facts``, a backticked ``A-presets``) that no page
    under docs/ declares;
(d) ``outside``: a mention of a document that is not part of the repository: the names of the
    outside specification, derivation and benchmark notes, a path into a sibling ``shared``
    folder, their fact numbering (a capital F, a number, a dot, a number) or a section sign;
(e) ``escape``: a relative link or path that resolves outside the repository root, or an
    absolute path of a particular machine (under /work, /home, /root or /Users) in a page, a
    notebook or pyproject.toml;
(f) ``name``: a dotted name of the package (``xsam_theory.symbolic.xsam_1d.v2_cycle_trap``) in
    a page, a notebook, the package, proofs_checks/ or scripts/, that does not import (module)
    or is not an attribute of what it names (tests are exempt: they make up modules on purpose).

Each rule has a unit test on a small synthetic tree; ``test_repository_references`` runs the
checker on this repository. The forbidden words are assembled from pieces below, so that this
file does not itself contain them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# --- what is scanned --------------------------------------------------------------------------

#: folders of the source tree that are build outputs or copies, never scanned
SKIPPED_DIRS = {"_build", "__pycache__", ".ipynb_checkpoints"}
#: generated inside docs/ by the site build (ignored by git)
GENERATED = ("docs/notebooks", "docs/api/generated")
#: paths through these folders are outputs of a build, not checked for existence
GENERATED_OUTPUT = {"_build"}
#: top-level folders whose paths are checked when written as text (rule b)
TOP_DIRS = (
    "docs",
    "xsam_theory",
    "tests",
    "scripts",
    "notebooks",
    "paper_figures",
    "proofs_checks",
    "examples",
)
#: text files that rule (b) may name at the top level
TOP_FILES = ("README.md", "pyproject.toml")
#: machine-specific absolute paths (rule e)
ABSOLUTE = re.compile(r"(?<![\w.~/-])/(?:work|home|root|Users)/[\w.-]")


def _generated(rel: str) -> bool:
    return any(rel == g or rel.startswith(g + "/") for g in GENERATED)


def scanned_files(root: Path) -> list[Path]:
    """Return the files the checker reads, in a stable order."""
    patterns = [
        "README.md",
        "pyproject.toml",
        "docs/**/*.md",
        "docs/conf.py",
        "docs/_ext/*.py",
        "notebooks/*.py",
        "xsam_theory/**/*.py",
        "proofs_checks/*",
        "tests/*.py",
        "scripts/*.py",
    ]
    found: set[Path] = set()
    for pattern in patterns:
        for path in root.glob(pattern):
            rel = path.relative_to(root)
            if not path.is_file() or SKIPPED_DIRS & set(rel.parts):
                continue
            if _generated(rel.as_posix()) or path.suffix in {".pyc", ".png", ".pdf", ".sqlite"}:
                continue
            found.add(path)
    return sorted(found)


# --- anchors of a markdown page -------------------------------------------------------------

LABEL = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$", re.MULTILINE)


def heading_depth(root: Path) -> int:
    """Return ``myst_heading_anchors`` of docs/conf.py (4 when it cannot be read)."""
    conf = root / "docs" / "conf.py"
    if conf.is_file():
        m = re.search(r"^myst_heading_anchors\s*=\s*(\d+)", conf.read_text(), re.MULTILINE)
        if m:
            return int(m.group(1))
    return 4


@cache
def _parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = MdParserConfig(enable_extensions={"dollarmath", "colon_fence", "deflist"})
    return create_md_parser(config, RendererHTML)


def _tokens(text: str):
    return _parser().parse(text)


def page_anchors(path: Path, depth: int) -> set[str]:
    """Return the labels ``(ID)=`` and the MyST heading slugs (levels <= depth) of a page."""
    from myst_parser.slugs import github_slugify, unique_slug

    text = path.read_text(encoding="utf-8")
    anchors = set(LABEL.findall(text))
    slugs: set[str] = set()
    tokens = _tokens(text)
    for i, token in enumerate(tokens):
        if token.type == "myst_target":
            anchors.add(token.content.strip())
        if token.type != "heading_open" or int(token.tag[1]) > depth:
            continue
        inline = tokens[i + 1]
        title = "".join(
            child.content
            for child in (inline.children or [])
            if child.type in ("text", "code_inline")
        )
        slug = github_slugify(title)
        if slug:
            slugs.add(unique_slug(slug, slugs))
    return anchors | slugs


def all_labels(root: Path) -> set[str]:
    """Return every label ``(ID)=`` declared in a page under docs/."""
    labels: set[str] = set()
    for path in scanned_files(root):
        rel = path.relative_to(root).as_posix()
        if rel.startswith("docs/") and path.suffix == ".md":
            labels.update(LABEL.findall(path.read_text(encoding="utf-8")))
    return labels


# --- the rules --------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Finding:
    """One broken reference: where, which rule, what."""

    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


# (d) names of outside documents, assembled so that this file does not contain them
_OUTSIDE_WORDS = (
    "S" + "PEC",
    "theory" + "-notes",
    "PERFOR" + "MANCE.md",
    ".." + "/shared",
)
OUTSIDE = re.compile(
    "|".join(re.escape(w) for w in _OUTSIDE_WORDS)
    + r"|\b"
    + "F"
    + r"\d+\.\d+\b|"
    + "\N{SECTION SIGN}"
)

# (c) the anchor ids of the theory, algorithm, claims and performance pages, quoted
ANCHOR_ID = re.compile(
    r"""(?<=["'`])(?P<id>(?:[TAC]-[a-z0-9]+(?:-[a-z0-9]+)*)|(?:perf-[A-Za-z0-9]+(?:-[a-z0-9]+)*))(?=["'`])"""
)

# (b) repository paths written as text; an optional ../ prefix makes them relative to the file
PATH_REF = re.compile(
    r"(?<![\w/.\-~])(?P<up>(?:\.\./)*)(?P<path>(?:"
    + "|".join(TOP_DIRS)
    + r")/[\w.\-/]*|(?:"
    + "|".join(re.escape(f) for f in TOP_FILES)
    + r"))(?:#(?P<anchor>[\w.\-]+))?"
)
#: a path followed by one of these is a pattern (docs/claims/<ID>.md, docs/bench-*.json)
PATTERN_NEXT = set("*<{[$%")

# (f) dotted names of the package
DOTTED = re.compile(r"(?<![\w.])xsam_theory(?:\.[A-Za-z_]\w*)+")
#: a dotted name followed by one of these is not a name (xsam_theory.egg-info, a pattern)
DOTTED_NEXT = set("-{*<")


@cache
def resolves(name: str) -> bool | None:
    """Return whether ``name`` is a module of the package or an attribute of one.

    None when it cannot be told: a module needs an optional dependency that is missing.
    """
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError as exc:
            if exc.name and not exc.name.startswith("xsam_theory"):
                return None  # an optional dependency (torch, ...) is not installed
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr, None)
            if obj is None:
                return False
        return True
    return False


# (a) markdown links in a notebook's markdown cells (comment lines)
NOTEBOOK_LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)\)")


class Checker:
    """Collect the findings of every rule over the scanned files of ``root``."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.depth = heading_depth(self.root)
        self.labels = all_labels(self.root)
        self.findings: list[Finding] = []
        self._anchors: dict[Path, set[str]] = {}

    def anchors(self, page: Path) -> set[str]:
        """Return (and remember) the anchors of a markdown page."""
        if page not in self._anchors:
            self._anchors[page] = page_anchors(page, self.depth)
        return self._anchors[page]

    def report(self, path: Path, line: int, rule: str, message: str) -> None:
        """Record one finding."""
        rel = path.relative_to(self.root).as_posix()
        self.findings.append(Finding(rel, line, rule, message))

    def run(self) -> list[Finding]:
        """Check every scanned file; return the findings, sorted and without duplicates."""
        for path in scanned_files(self.root):
            try:
                text = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            rel = path.relative_to(self.root).as_posix()
            is_page = path.suffix == ".md"
            is_notebook = rel.startswith("notebooks/")
            self.check_outside(path, text)
            self.check_ids(path, text)
            self.check_paths(path, text, is_page or is_notebook)
            if is_page or is_notebook or rel == "pyproject.toml":
                self.check_absolute(path, text)
            if not rel.startswith("tests/"):
                self.check_names(path, text)
            if is_page:
                self.check_page_links(path, text)
            elif is_notebook:
                self.check_notebook_links(path, text)
        return sorted(set(self.findings))

    # (a) ---------------------------------------------------------------------------------
    def check_target(self, path: Path, line: int, target: str) -> None:
        """Check one link target written in ``path`` (relative to the file's folder)."""
        if re.match(r"^[a-zA-Z][\w+.-]*:", target) or target.startswith("<"):
            return  # http:, https:, mailto:, ... or an autolink
        file_part, _, anchor = target.partition("#")
        if not file_part:
            if anchor and anchor not in self.anchors(path):
                self.report(path, line, "link", f"#{anchor} is not an anchor of this page")
            return
        if file_part.startswith("/"):
            self.report(path, line, "escape", f"absolute link target {target}")
            return
        dest = (path.parent / file_part).resolve()
        if not dest.is_relative_to(self.root):
            self.report(path, line, "escape", f"{target} resolves outside the repository")
            return
        if not dest.exists():
            self.report(path, line, "link", f"{target}: no such file")
            return
        if anchor and dest.suffix == ".md" and anchor not in self.anchors(dest):
            self.report(path, line, "link", f"{target}: #{anchor} is not an anchor of {file_part}")

    def check_page_links(self, path: Path, text: str) -> None:
        """Rule (a) in a markdown page: links, images and figure/image/include directives."""
        lines = text.splitlines()
        for token in _tokens(text):
            start = token.map[0] if token.map else 0
            if token.type == "fence" and token.info.startswith("{"):
                m = re.match(r"\{(figure|image|include|literalinclude)\}\s+(\S+)", token.info)
                if m:
                    self.check_target(path, start + 1, m.group(2))
                continue
            for child in token.children or []:
                target = None
                if child.type == "link_open":
                    target = child.attrGet("href")
                elif child.type == "image":
                    target = child.attrGet("src")
                if not target:
                    continue
                line = start + 1
                end = token.map[1] if token.map else len(lines)
                for k in range(start, end):
                    if target in lines[k] or target.split("#")[0] in lines[k]:
                        line = k + 1
                        break
                self.check_target(path, line, target)

    def check_notebook_links(self, path: Path, text: str) -> None:
        """Rule (a) in a notebook: links in its markdown cells (comment lines)."""
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                for m in NOTEBOOK_LINK.finditer(line):
                    self.check_target(path, number, m.group("target"))

    # (b) ---------------------------------------------------------------------------------
    def check_paths(self, path: Path, text: str, has_links: bool) -> None:
        """Rule (b): repository paths written as text exist (with their anchors)."""
        for number, line in enumerate(text.splitlines(), 1):
            for m in PATH_REF.finditer(line):
                if has_links and line[: m.start()].endswith("]("):
                    continue  # a markdown link: rule (a)
                if line[m.end() : m.end() + 1] in PATTERN_NEXT:
                    continue  # a pattern: docs/claims/<ID>.md, docs/bench-*.json
                if "..." in m.group("path")[3:] or "..." in (m.group("anchor") or ""):
                    continue  # an ellipsis: docs/theory.md#T-... stands for any anchor
                self.check_path(path, number, m.group("up"), m.group("path"), m.group("anchor"))

    def check_path(self, path: Path, number: int, up: str, written: str, anchor: str | None):
        """Check one repository path ``up + written`` (``#anchor``) found in ``path``."""
        written = written.rstrip(".,:;")
        shown = up + written
        dest = ((path.parent if up else self.root) / shown).resolve()
        if not dest.is_relative_to(self.root):
            self.report(path, number, "escape", f"{shown} resolves outside the repository")
        elif GENERATED_OUTPUT & set(Path(written).parts) or _generated(written.rstrip("/")):
            return  # made by the site build (docs/_build/html, docs/notebooks/)
        elif not dest.exists():
            self.report(path, number, "path", f"{shown}: no such file or folder")
        elif anchor and dest.suffix == ".md" and anchor.rstrip(".") not in self.anchors(dest):
            self.report(path, number, "path", f"{shown}#{anchor.rstrip('.')}: no such anchor")

    # (c) ---------------------------------------------------------------------------------
    def check_ids(self, path: Path, text: str) -> None:
        """Rule (c): a quoted or backticked anchor id is declared by a page under docs/."""
        for number, line in enumerate(text.splitlines(), 1):
            for m in ANCHOR_ID.finditer(line):
                if m.group("id") not in self.labels:
                    self.report(
                        path, number, "id", f"{m.group('id')} is not declared by any docs page"
                    )

    # (d) ---------------------------------------------------------------------------------
    def check_outside(self, path: Path, text: str) -> None:
        """Rule (d): no mention of documents outside the repository."""
        for number, line in enumerate(text.splitlines(), 1):
            for m in OUTSIDE.finditer(line):
                self.report(
                    path,
                    number,
                    "outside",
                    f"{m.group(0)!r} refers to a document outside the repository",
                )

    # (e) ---------------------------------------------------------------------------------
    def check_absolute(self, path: Path, text: str) -> None:
        """Rule (e): no absolute path of a particular machine in pages and notebooks."""
        for number, line in enumerate(text.splitlines(), 1):
            for m in ABSOLUTE.finditer(line):
                self.report(path, number, "escape", f"absolute path {m.group(0)}... of a machine")

    # (f) ---------------------------------------------------------------------------------
    def check_names(self, path: Path, text: str) -> None:
        """Rule (f): dotted names of the package name a module or an attribute of one."""
        for number, line in enumerate(text.splitlines(), 1):
            for m in DOTTED.finditer(line):
                if line[m.end() : m.end() + 1] in DOTTED_NEXT:
                    continue
                if resolves(m.group(0)) is False:
                    self.report(path, number, "name", f"{m.group(0)} is not in the package")


def check(root: Path) -> list[Finding]:
    """Return every broken reference under ``root``."""
    return Checker(root).run()


# --- the repository ---------------------------------------------------------------------------


def test_repository_references():
    findings = check(ROOT)
    assert not findings, f"{len(findings)} broken reference(s):\n" + "\n".join(
        str(f) for f in findings
    )


def test_scanned_files_cover_the_repository():
    rels = {p.relative_to(ROOT).as_posix() for p in scanned_files(ROOT)}
    assert "README.md" in rels
    assert "pyproject.toml" in rels
    assert "tests/test_references.py" in rels
    assert any(r.startswith("xsam_theory/") for r in rels)
    assert any(r.startswith("notebooks/") for r in rels)
    assert any(r.startswith("proofs_checks/") for r in rels)
    assert not any(_generated(r) for r in rels)


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


# --- each rule fires on a synthetic tree ---------------------------------------------------------
# (file names and broken references are assembled from pieces, so that the checker, run on this
# file as part of the repository, does not read them as references)

MOD = "xsam_theory" + "/mod.py"
NB = "notebooks" + "/01_nb.py"
TX = "tests" + "/test_x.py"
IDX = "docs" + "/index.md"
FIG = "docs" + "/figures.md"
THEORY = "# Theory\n\n(T-window)=\n## The window (0 <= α < 1)\n\nText.\n\n## A `code` heading\n"
CLEAN = {
    "docs" + "/theory.md": THEORY,
    IDX: (
        "# Index\n\n[w](theory.md#T-window) [h](theory.md#a-code-heading) [p](theory.md)\n"
        "![fig](../figs/a.png)\n\n```{figure} ../figs/a.png\ncaption\n```\n"
    ),
    "figs/a.png": "",
    "README.md": "[w](docs/theory.md#T-window), see `docs/theory.md#T-window`.\n",
    MOD: '"""Derivation: docs/theory.md#T-window."""\n\nFACTS = ("T-window",)\n',
    NB: "# %% [markdown]\n# [w](../docs/theory.md#T-window), docs/theory.md\n",
    "pyproject.toml": "[project]\nname = 'x'\n",
}


def _rules(findings: list[Finding]) -> list[tuple[str, str, int]]:
    return [(f.file, f.rule, f.line) for f in findings]


def test_a_clean_tree_passes(tmp_path):
    assert check(_tree(tmp_path, CLEAN)) == []


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("missing.md", "no such file"),
        ("theory.md#T-" + "nowhere", "not an anchor"),
        ("theory.md#t-window", "not an anchor"),  # anchors are exact
        ("#T-window", "not an anchor of this page"),
        ("../figs/missing.png", "no such file"),
    ],
)
def test_rule_a_markdown_links(tmp_path, target, expected):
    files = dict(CLEAN)
    files[IDX] = f"# Index\n\ntext\n\nsee [it]({target}) here\n"
    findings = check(_tree(tmp_path, files))
    assert _rules(findings) == [(IDX, "link", 5)], findings
    assert expected in findings[0].message


def test_rule_a_figure_directive_and_notebook_link(tmp_path):
    files = dict(CLEAN)
    files[FIG] = "# F\n\n```{figure} ../figs/none.png\ncaption\n```\n"
    files[NB] = "# %% [markdown]\n# [w](../" + "docs/theory.md" + "#T-" + "gone)\n"
    findings = check(_tree(tmp_path, files))
    assert _rules(findings) == [(FIG, "link", 3), (NB, "link", 2)], findings


def test_rule_b_text_paths(tmp_path):
    files = dict(CLEAN)
    missing_page = "docs/" + "nothing.md"
    bad_anchor = "docs/theory.md" + "#T-" + "gone"
    missing_module = "xsam_theory/" + "gone.py"
    files[MOD] = (
        f'"""See {missing_page}."""\n\n# derivation: {bad_anchor}\nX = 1  # {missing_module}\n'
        "# patterns are not paths: docs/<page>.md, docs/bench-*.json, docs/theory.md#T-...\n"
        "# nor build outputs: docs/_build/html\n"
    )
    findings = check(_tree(tmp_path, files))
    assert _rules(findings) == [(MOD, "path", 1), (MOD, "path", 3), (MOD, "path", 4)], findings


def test_rule_c_bare_ids(tmp_path):
    files = dict(CLEAN)
    files[MOD] = (
        'FACTS = ("T-window", "T-' + 'gone")\nNOTE = "see `A-' + 'presets`"\n'
        "# C-contiguous arrays and perf counters are not ids\n"
    )
    findings = check(_tree(tmp_path, files))
    assert _rules(findings) == [(MOD, "id", 1), (MOD, "id", 2)], findings


@pytest.mark.parametrize(
    "word",
    [
        "S" + "PEC \N{SECTION SIGN}2",
        "theory" + "-notes",
        "PERFOR" + "MANCE.md",
        ".." + "/shared/x",
        "F" + "7.1",
        "\N{SECTION SIGN}" + "4",
        "_S" + "PEC_KEYS",
    ],
)
def test_rule_d_outside_documents(tmp_path, word):
    files = dict(CLEAN)
    files[TX] = f"# fine\nX = 1  # from {word}\n"
    findings = check(_tree(tmp_path, files))
    assert (TX, "outside", 2) in _rules(findings), findings


def test_rule_e_outside_the_repository(tmp_path):
    files = dict(CLEAN)
    home = "/" + "home/me/x.md"
    up = "../" + "../"
    files[IDX] = f"# Index\n\n[up]({up}elsewhere.md)\n\nOpen {home} to see.\n"
    files[NB] = f"# %% [markdown]\n# see {up}" + "docs" + "/x.md\n"
    findings = check(_tree(tmp_path / "repo", files))
    assert _rules(findings) == [(IDX, "escape", 3), (IDX, "escape", 5), (NB, "escape", 2)], findings


def test_rule_f_dotted_names(tmp_path):
    files = dict(CLEAN)
    files[IDX] = (
        "# Index\n\n`xsam_theory.vectors`, `xsam_theory.symbolic.xsam_1d.v2_cycle_trap`\n\n"
        "`xsam_theory.vectors.no_such" + "_function` and `xsam_theory.no_such" + "_module`\n"
    )
    findings = check(_tree(tmp_path, files))
    assert _rules(findings) == [(IDX, "name", 5), (IDX, "name", 5)], findings


def test_heading_slugs_follow_myst(tmp_path):
    page = tmp_path / "p.md"
    page.write_text(
        "# Title\n\n## Same\n\n## Same\n\n## With $x$ math and `code`\n\n##### Too deep\n"
        "\n(my-label)=\n### Labelled\n"
    )
    anchors = page_anchors(page, 4)
    assert {"title", "same", "same-1", "with--math-and-code", "my-label", "labelled"} <= anchors
    assert "too-deep" not in anchors
