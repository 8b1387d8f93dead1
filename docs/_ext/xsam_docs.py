"""Sphinx extension of the xsam-theory site: notebooks, API pages, links out of docstrings.

When the build starts (``builder-inited``):

* every ``notebooks/*.py`` (jupytext percent format) is copied into the ignored folder
  ``docs/notebooks/``, where myst-nb reads and executes it (``nb_custom_formats`` in
  ``docs/conf.py``). Relative markdown links of the notebooks are written from ``notebooks/``
  (a link to ``docs/theory.md`` starts with ``../``); they are rewritten to point to the same
  files from the copy's folder, and a reference ```docs/theory.md#T-window``` in a markdown
  cell becomes a link to that label;
* one page per public module of ``xsam_theory`` is written into the ignored folder
  ``docs/api/generated/`` (``write_api_pages``): autodoc's documentation of the module, with a
  table of its submodules or of its functions and classes after the module's docstring.

Files are rewritten (atomically) only when their content changes.

While autodoc reads the docstrings (``autodoc-process-docstring``): a repository reference such
as ``docs/theory.md#T-window`` (optionally in backticks) becomes a link to that label when the
label is declared (``(T-window)=``) in a page under ``docs/``; a page path such as
``docs/usage.md`` alone becomes a link to the page; other text is left as it is. A constant's doc
comment is kept from being misread as a type (``keep_data_colon``).

``LabelCase`` lets ``[text](theory.md#T-window)`` links find labels written with capitals.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from pathlib import Path

from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
NOTEBOOKS = ROOT / "notebooks"
COPIES = DOCS / "notebooks"

_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")
_LABEL = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$", re.MULTILINE)
_REF = re.compile(
    r"(?P<tick>`{0,2})docs/(?P<page>[\w./-]+?)\.md"
    r"(?:#(?P<anchor>[\w-]+(?:\.[\w-]+)*))?(?P=tick)(?![\w/])"
)


def _rewrite_link(target: str) -> str:
    """Return a notebook's link target rewritten from ``notebooks/`` to ``docs/notebooks/``."""
    if "://" in target or target.startswith(("#", "/", "mailto:")):
        return target
    path, sep, anchor = target.partition("#")
    if not path:
        return target
    resolved = (NOTEBOOKS / path).resolve()
    try:
        resolved.relative_to(ROOT)
    except ValueError:
        return target
    new = Path(_relpath(resolved, COPIES)).as_posix()
    return new + sep + anchor


def _relpath(path: Path, start: Path) -> str:
    return os.path.relpath(path, start)


_TEXT_REF = re.compile(r"`docs/(?P<page>[\w./-]+?)\.md#(?P<anchor>[\w-]+(?:\.[\w-]+)*)`")


def _link_text_refs(text: str, labels: set[str]) -> str:
    """Make a backticked ``docs/theory.md#T-window`` in a markdown cell a link to its label.

    Only lines of markdown cells (after ``# %% [markdown]``) change, and only references to a
    label that a page declares; the text shown stays the same.
    """
    lines = text.splitlines(keepends=True)
    in_markdown = False
    for i, line in enumerate(lines):
        if line.startswith("# %%"):
            in_markdown = "[markdown]" in line
            continue
        if in_markdown and line.startswith("#"):
            lines[i] = _TEXT_REF.sub(
                lambda m: (
                    f"[{m.group(0)}](../{m.group('page')}.md#{m.group('anchor')})"
                    if m.group("anchor") in labels
                    else m.group(0)
                ),
                line,
            )
    return "".join(lines)


def copy_notebooks(app) -> None:
    """Copy ``notebooks/*.py`` to ``docs/notebooks/`` with their links rewritten."""
    COPIES.mkdir(exist_ok=True)
    labels = _labels()
    wanted = set()
    for source in sorted(NOTEBOOKS.glob("*.py")):
        text = source.read_text(encoding="utf-8")
        text = _LINK.sub(lambda m: f"]({_rewrite_link(m.group('target'))})", text)
        text = _link_text_refs(text, labels)
        copy = COPIES / source.name
        wanted.add(copy.name)
        # atomic: another build reading the copy at the same moment sees old or new
        _write_if_changed(copy, text)
    for stale in COPIES.glob("*.py"):
        if stale.name not in wanted:
            stale.unlink()


def _labels() -> set[str]:
    """Return every MyST target label ``(ID)=`` declared in a page under ``docs/``."""
    labels: set[str] = set()
    for page in DOCS.rglob("*.md"):
        if {"_build", "notebooks"} & set(page.relative_to(DOCS).parts[:-1]):
            continue
        labels.update(_LABEL.findall(page.read_text(encoding="utf-8")))
    return labels


_KNOWN: dict[str, set[str]] = {}


def collect_labels(app) -> None:
    """Remember the labels of the pages (read once, when the build starts)."""
    _KNOWN["labels"] = _labels()


def linkify(app, what, name, obj, options, lines: list[str]) -> None:
    """Turn ``docs/<page>.md#<label>`` references in a docstring into Sphinx links.

    Lines of a literal block (after a line ending in ``::``) are left alone.
    """
    labels = _KNOWN.get("labels")
    if labels is None:
        labels = _KNOWN["labels"] = _labels()

    def replace(match: re.Match) -> str:
        page, anchor = match.group("page"), match.group("anchor")
        text = match.group(0).strip("`")
        if anchor is not None:
            if anchor in labels:
                return f":ref:`{text} <{anchor}>`"
            return match.group(0)
        if (DOCS / f"{page}.md").is_file():
            return f":doc:`{text} </{page}>`"
        return match.group(0)

    literal_indent = None  # indentation of the line that opened a literal block
    for i, line in enumerate(lines):
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if literal_indent is not None and stripped and indent <= literal_indent:
            literal_indent = None
        if literal_indent is None:
            lines[i] = _REF.sub(replace, line)
            if stripped.endswith("::"):
                literal_indent = indent


_TYPE = r"[A-Za-z_][\w.]*(\[[\w.\[\], |]*\])?"
_TYPE_LIKE = re.compile(rf"^\s*{_TYPE}(\s*(\||or)\s*{_TYPE})*\s*$")


def keep_data_colon(app, what, name, obj, options, lines: list[str]) -> None:
    """Keep napoleon from reading ``prefix: text`` in a constant's doc comment as a type.

    Napoleon (Google style) takes everything before the first colon of an attribute's or a
    constant's docstring as its type. When that part does not look like a type (``int``,
    ``dict[str, float]``, ``str | None``), the colon is replaced by a dash, so the comment
    ``#: (id, a, b): the pairs`` renders as written instead of as a type ``(id, a, b)``.
    """
    if what not in ("data", "attribute") or not lines:
        return
    first = lines[0]
    colon = re.search(r"(?<!:):(?!:)", re.sub(r"``.+?``|:\w+:`.+?`|`.+?`", _blank, first))
    if colon is None or not first[colon.end() :].strip():
        return
    if _TYPE_LIKE.match(first[: colon.start()]):
        return
    lines[0] = first[: colon.start()] + " —" + first[colon.end() :]


def _blank(match: re.Match) -> str:
    return "x" * len(match.group(0))


class LabelCase(SphinxPostTransform):
    """Resolve ``[text](page.md#T-window)`` to the label ``(T-window)=`` declared in that page.

    Sphinx stores label names in lower case, so MyST's link resolution (run right after this
    transform) would not find a label written with capitals; a link whose anchor is neither a
    heading slug nor an id of the page but whose lower-cased anchor is a label of that page is
    pointed at the label.
    """

    default_priority = 8  # MyST's resolver runs at 9

    def run(self, **kwargs) -> None:
        """Lower-case the anchors of MyST document links that name a label of the page."""
        labels = self.env.domaindata.get("std", {}).get("labels", {})
        for node in self.document.findall(addnodes.pending_xref):
            if node.get("reftype") != "myst" or node.get("refdomain") != "doc":
                continue
            anchor = node.get("reftargetid")
            if not anchor or anchor == anchor.lower():
                continue
            docname = node["reftarget"]
            slugs = self.env.metadata.get(docname, {}).get("myst_slugs", {})
            if anchor in slugs:
                continue
            entry = labels.get(anchor.lower())
            if entry is not None and entry[0] == docname:
                node["reftargetid"] = anchor.lower()


API = DOCS / "api" / "generated"
PACKAGE = "xsam_theory"


def _public_modules() -> list[tuple[str, bool]]:
    """Return ``(name, is_package)`` of every public module of the package, sorted."""
    import pkgutil

    package = importlib.import_module(PACKAGE)
    found = [(PACKAGE, True)]
    for info in pkgutil.walk_packages(package.__path__, PACKAGE + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            found.append((info.name, info.ispkg))
    return sorted(found)


def _rst_text(text: str) -> str:
    """Return ``text`` with the characters reStructuredText would read as markup escaped."""
    return re.sub(r"([\\`*_|])", r"\\\1", text)


def _summary(module) -> str:
    """Return the first line of a module's docstring (empty if it has none)."""
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0].strip() if doc else ""


def _members(module) -> list[str]:
    """Return the public functions and classes defined in ``module`` (not imported), in order."""
    names = []
    for name, obj in vars(module).items():
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            names.append(name)
    return names


def _module_page(name: str, is_package: bool, children: list[str]) -> str:
    """Return the reStructuredText page of one module.

    The summary tables (submodules, or functions and classes) are the content of the
    ``automodule`` directive, so they appear after the module's docstring and before its members.
    """
    module = importlib.import_module(name)
    title = _rst_text(name)
    body = []
    if children:
        body += [".. rubric:: Modules", "", ".. list-table::", "   :widths: 35 65", ""]
        for child in children:
            summary = _rst_text(_summary(importlib.import_module(child))) or " "
            body += [f"   * - :doc:`{child.rsplit('.', 1)[1]} <{child}>`", f"     - {summary}"]
        body += ["", ".. toctree::", "   :hidden:", ""]
        body += [f"   {child}" for child in children]
        body.append("")
    members = _members(module)
    if members and not is_package:
        body += [".. rubric:: Contents", "", ".. autosummary::", ""]
        body += [f"   {member}" for member in members]
        body.append("")
    lines = [title, "=" * len(title), "", f".. currentmodule:: {name}", ""]
    lines += [f".. automodule:: {name}", ""]
    lines += [f"   {line}" if line else "" for line in body]
    return "\n".join(lines) + "\n"


def write_api_pages(app) -> None:
    """Write one page per public module of the package into ``docs/api/generated/``.

    Written here rather than by autosummary's generator, which takes a module for the function
    of the same name that its package re-exports (``xsam_theory.optimizers.step``). A page is
    rewritten only when its content changes; pages of modules that no longer exist are removed.
    """
    API.mkdir(parents=True, exist_ok=True)
    modules = _public_modules()
    names = {name for name, _ in modules}
    wanted = set()
    for name, is_package in modules:
        children = [
            other
            for other in sorted(names)
            if other.startswith(name + ".") and "." not in other[len(name) + 1 :]
        ]
        page = API / f"{name}.rst"
        wanted.add(page.name)
        _write_if_changed(page, _module_page(name, is_package, children))
    for stale in API.glob("*.rst"):
        if stale.name not in wanted:
            stale.unlink()


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, unless the file already holds it."""
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def setup(app):
    """Register the hooks; the extension is safe for parallel reading."""
    app.connect("builder-inited", copy_notebooks)
    app.connect("builder-inited", collect_labels)
    app.connect("builder-inited", write_api_pages)
    app.connect("autodoc-process-docstring", keep_data_colon, priority=400)
    app.connect("autodoc-process-docstring", linkify)
    app.add_post_transform(LabelCase)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
