"""Generate the claim pages of the documentation from the registry and the committed full run.

    python scripts/claims_pages.py                 # rewrite docs/claims/*.md and the index
    python scripts/claims_pages.py --out /tmp/d    # the same files under /tmp/d (for comparison)
    python scripts/claims_pages.py --import-run RUN --commit SHA
                                                   # commit a finished ``verify --full`` run first

Every registered claim gets a page in ``docs/claims/`` (``F-WINDOW.md``, ...): its statement, kind,
method, tolerance, the derivations it rests on (links to the anchors of ``docs/theory.md`` and
``docs/algorithms.md``), its figure (from ``paper_figures/``), the backends its check runs on, its
``proofs_checks`` module, and the verdict, key number and seconds of the committed full run
(``docs/results/full/claims.json``, whose ``run.json`` says at which commit, version, seed and date
it ran). The table of all claims (``docs/claims.md#C-index``) is written into ``docs/claims.md``
between the markers ``<!-- claims-index:start -->`` and ``<!-- claims-index:end -->``. The output
depends only on the registry and the committed run:
``tests/test_claims_pages.py`` regenerates it and compares byte for byte.

``--import-run`` copies a run's ``claims.json`` into ``docs/results/full/``, restating the
fields that describe a claim rather than measure it (statement, method, tolerance, facts) from
the current registry, and renaming evidence keys and texts renamed in the code since the run
(``--rename-evidence``, a JSON object ``{old: new}``); verdicts, key numbers, evidence values and
seconds are the run's.
What was restated is listed in ``run.json``. It then renders ``report.md`` from that file (figure
links pointing at ``paper_figures/``) and regenerates the pages.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
RESULTS = DOCS / "results" / "full"
START, END = "<!-- claims-index:start -->", "<!-- claims-index:end -->"

KIND_NAMES = {
    "D": "derived lemma: exact, a failure means a bug",
    "L": "closed form from the literature, checked against the implementation",
    "F": "finding about the reference algorithm on a testbed",
    "P": "claim of the paper, judged empirically: any verdict is a result",
}

_ESCAPE = re.compile(r"([\\`*_\[\]<>|$])")
_REFERENCE = re.compile(r"docs/([a-z_]+\.md)#([A-Za-z][\w-]*)")


def md(text: Any, base: str = "../") -> str:
    """``text`` as literal markdown: every character markdown could interpret is escaped.

    Whitespace runs become one space (a page's text is one paragraph), and a reference
    ``docs/theory.md#T-...`` in the text becomes a link relative to the page (``base``: the
    path from the page to ``docs/``).
    """
    escaped = _ESCAPE.sub(r"\\\1", " ".join(str(text).split()))
    return _REFERENCE.sub(lambda m: f"[docs/{m[1]}#{m[2]}]({base}{m[1]}#{m[2]})", escaped)


def registry() -> dict[str, Any]:
    """Every registered claim, in ledger order (:func:`xsam_theory.claims.load_all`)."""
    from xsam_theory.claims import load_all

    return dict(load_all())


def fact_link(fact: str, base: str = "../") -> str:
    """A markdown link to the anchor ``fact`` (``T-``: docs/theory.md, ``A-``: algorithms.md)."""
    page = {"T": "theory.md", "A": "algorithms.md", "C": "claims.md"}.get(fact[:1])
    if page is None or fact[1:2] != "-":
        raise ValueError(f"fact {fact!r} is not a T-, A- or C- anchor")
    return f"[{fact}]({base}{page}#{fact})"


def check_module(claim_id: str) -> str:
    """The ``proofs_checks`` module of a claim: ``proofs_checks/check_<id>.py``."""
    return f"proofs_checks/check_{claim_id.lower().replace('-', '_')}.py"


def load_run(results: Path = RESULTS) -> tuple[dict[str, Any], dict[str, Any]]:
    """The committed run: ``(claims.json, run.json)``; empty dicts where there is none."""
    doc = json.loads((results / "claims.json").read_text(encoding="utf-8"))
    run = json.loads((results / "run.json").read_text(encoding="utf-8"))
    return doc, run


def run_line(doc: dict[str, Any], run: dict[str, Any]) -> str:
    """One sentence saying which run the verdicts come from."""
    return (
        f"`xsam-theory verify --{doc['scale']}` at commit `{run['commit'][:12]}` "
        f"(package {doc['package_version']}, backend {doc['backend']}, "
        f"{doc['dtype']}, seed {doc['seed']}, finished {run['finished']}; "
        f"`docs/results/full/claims.json`)"
    )


def _subclaims(evidence: dict[str, Any]) -> list[str]:
    """The headline and subclaims table of a P claim's evidence, as markdown lines."""
    from xsam_theory.verify import subclaims_table

    out: list[str] = []
    head = evidence.get("headline") or {}
    if head:
        out += [
            "### Headline",
            "",
            f"- verdict: **{md(head.get('verdict'))}**",
            f"- rule: {md(head.get('rule'))}",
            f"- subclaims it reads: {md(', '.join(head.get('subclaims', [])))}",
        ]
        if head.get("attribution"):
            out.append(f"- attribution: {md(head['attribution'])}")
        out.append("")
    subs = evidence.get("subclaims") or []
    if subs:
        out += [
            "### Subclaims",
            "",
            "Holm-adjusted within this claim ([the protocol](../claims.md#C-p-protocol)).",
            "",
            *subclaims_table(subs, text=md),
            "",
        ]
    return out


def render_page(claim: Any, result: dict[str, Any] | None, doc: dict, run: dict) -> str:
    """The markdown page of one claim: ``docs/claims/`` followed by its id and ``.md``."""
    kind = claim.kind.value
    out = [
        f"# {claim.id}",
        "",
        f"**Kind {kind}**: {KIND_NAMES[kind]} ([kinds](../claims.md#C-kinds)).",
        "",
        "## Statement",
        "",
        md(claim.statement),
        "",
        "## Method",
        "",
        md(claim.method),
        "",
        "## Tolerance",
        "",
        md(claim.tolerance),
        "",
        "## Rests on",
        "",
    ]
    out += [f"- {fact_link(f)}" for f in claim.facts] or ["- (no derivation: a direct check)"]
    out += [
        "",
        "## Where it is checked",
        "",
        f"- check function: `{claim.check.__module__}.{claim.check.__name__}`",
        f"- test module: `{check_module(claim.id)}` (the same function, run by pytest)",
        f"- backends of the implementation under test: {', '.join(claim.backends)} "
        "(the measurements are NumPy on every backend)",
        f"- run it alone: `xsam-theory verify --only {claim.id}`",
        "",
    ]
    if claim.figure:
        out += [
            "## Figure",
            "",
            f"![{claim.id}: figure {claim.figure}](../../paper_figures/{claim.figure}.png)",
            "",
            f"Figure `{claim.figure}` as committed in `paper_figures/` (redraw it with "
            f"`xsam-theory figures --only {claim.figure}`; its numbers are in "
            f"`paper_figures/{claim.figure}.csv`).",
            "",
        ]
    out += ["## Latest verdict", ""]
    if result is None:
        out += ["The committed full run has no result for this claim.", ""]
    else:
        out += [
            f"From {run_line(doc, run)}:",
            "",
            "| verdict | key number | seconds | ran on |",
            "|---|---|---|---|",
            f"| **{md(result['verdict'])}** | {md(result.get('key', ''))} | "
            f"{result['seconds']:.1f} | {md(result.get('backend', 'numpy'))} |",
            "",
        ]
        if kind == "P":
            out += _subclaims(result.get("evidence", {}))
        out += [
            "The whole evidence record is in `docs/results/full/claims.json` and "
            "`docs/results/full/report.md` ([the schema](../claims.md#C-evidence)).",
            "",
        ]
    return "\n".join(out)


def render_index(claims: dict[str, Any], doc: dict, run: dict) -> str:
    """The table of every claim with a link to its page (the block of ``docs/claims.md``)."""
    results = {r["id"]: r for r in doc.get("claims", [])}
    out = [
        f"Verdicts from {run_line(doc, run)}. Generated by `python scripts/claims_pages.py`.",
        "",
        "| claim | kind | verdict | key number | seconds |",
        "|---|---|---|---|---|",
    ]
    for c in claims.values():
        r = results.get(c.id)
        verdict = f"**{md(r['verdict'], base='')}**" if r else "(not in the run)"
        key = md(r.get("key", ""), base="") if r else ""
        secs = f"{r['seconds']:.1f}" if r else ""
        out.append(f"| [{c.id}](claims/{c.id}.md) | {c.kind.value} | {verdict} | {key} | {secs} |")
    return "\n".join(out)


def generate(
    docs: Path = DOCS, results: Path = RESULTS, claims_md: str | None = None
) -> dict[str, str]:
    """Every generated file: ``{path relative to docs/: text}``.

    ``claims.md`` is ``claims_md`` (default: the current ``docs/claims.md``) with its index block
    replaced.
    """
    claims = registry()
    doc, run = load_run(results)
    results_by_id = {r["id"]: r for r in doc.get("claims", [])}
    files = {
        f"claims/{c.id}.md": render_page(c, results_by_id.get(c.id), doc, run) + "\n"
        for c in claims.values()
    }
    text = claims_md if claims_md is not None else (docs / "claims.md").read_text("utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"docs/claims.md has no {START} ... {END} block")
    block = f"{START}\n{render_index(claims, doc, run)}\n{END}"
    files["claims.md"] = pattern.sub(lambda _: block, text)
    return files


def write(files: dict[str, str], out: Path) -> None:
    """Write ``files`` under ``out``; stale pages of ``out/claims/`` are removed."""
    (out / "claims").mkdir(parents=True, exist_ok=True)
    for stale in (out / "claims").glob("*.md"):
        if f"claims/{stale.name}" not in files:
            stale.unlink()
    for rel, text in files.items():
        (out / rel).write_text(text, encoding="utf-8")


def _rename(x: Any, names: dict[str, str], used: set[str]) -> Any:
    """``x`` with every dict key and string found in ``names`` replaced; ``used`` collects them."""
    if isinstance(x, dict):
        return {_rename(k, names, used): _rename(v, names, used) for k, v in x.items()}
    if isinstance(x, list):
        return [_rename(v, names, used) for v in x]
    if isinstance(x, str) and x in names:
        used.add(names[x])
        return names[x]
    return x


def import_run(
    run_dir: Path,
    commit: str,
    results: Path = RESULTS,
    note: str = "",
    renamed: dict[str, str] | None = None,
) -> None:
    """Commit the run in ``run_dir`` (made at ``commit``) to ``results`` (see the module doc)."""
    from xsam_theory.claims import ClaimResult
    from xsam_theory.verify import render_report

    claims = registry()
    src = run_dir / "claims.json"
    doc = json.loads(src.read_text(encoding="utf-8"))
    full = subprocess.run(
        ["git", "rev-parse", commit], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    restated: dict[str, list[str]] = {}
    for rec in doc["claims"]:
        c = claims[rec["id"]]
        current = {
            "statement": c.statement,
            "method": c.method,
            "tolerance": c.tolerance,
            "facts": list(c.facts),
        }
        changed = [k for k, v in current.items() if rec.get(k) != v]
        used: set[str] = set()
        evidence = _rename(rec["evidence"], renamed or {}, used)
        if used:
            changed.append("evidence names, now: " + "; ".join(sorted(used)))
        rec.update(current, evidence=evidence)
        if rec.get("figure"):
            rec["figure"] = f"paper_figures/{Path(rec['figure']).name}"
        if changed:
            restated[rec["id"]] = changed
    finished = dt.datetime.fromtimestamp(src.stat().st_mtime, dt.timezone.utc)
    run = {
        "commit": full,
        "command": f"xsam-theory verify --{doc['scale']} --out {run_dir.name}",
        "finished": finished.strftime("%Y-%m-%d %H:%M UTC"),
        "seconds_in_checks": round(sum(r["seconds"] for r in doc["claims"]), 1),
        "source_digest": doc.get("source_digest"),
        "restated": restated,
        "restated_why": (
            "statement, method, tolerance and facts describe a claim; they are restated from "
            "the registry at the commit that imported the run (only wording and references "
            "changed since the run); evidence keys renamed since are renamed; every verdict, "
            "key number, evidence value and time is the run's"
        ),
        **({"note": note} if note else {}),
    }
    results.mkdir(parents=True, exist_ok=True)
    (results / "claims.json").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    (results / "run.json").write_text(json.dumps(run, indent=1) + "\n", encoding="utf-8")
    objs = [
        ClaimResult(
            r["id"],
            r["kind"],
            r["statement"],
            r["method"],
            r["verdict"],
            r["key"],
            r["evidence"],
            r["tolerance"],
            r["seconds"],
            None if not r.get("figure") else "../../../" + r["figure"],
            tuple(r["facts"]),
            r.get("backend", "numpy"),
        )
        for r in doc["claims"]
    ]
    meta = {k: doc.get(k) for k in ("package_version", "source_digest", "backend", "device")}
    meta.update(dtype=doc["dtype"], seed=doc["seed"], scale=doc["scale"])
    (results / "report.md").write_text(render_report(objs, meta), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=DOCS, help="where to write (default: docs/)")
    ap.add_argument("--import-run", type=Path, metavar="RUN", help="a finished verify folder")
    ap.add_argument("--commit", help="the commit the imported run ran at (with --import-run)")
    ap.add_argument("--note", default="", help="how the run was made, kept in run.json")
    ap.add_argument(
        "--rename-evidence",
        type=Path,
        metavar="JSON",
        help="a JSON object {old: new} of evidence keys/texts renamed in the code since the run",
    )
    args = ap.parse_args(argv)
    if args.import_run is not None:
        if not args.commit:
            ap.error("--import-run needs --commit")
        renamed = (
            None
            if args.rename_evidence is None
            else json.loads(args.rename_evidence.read_text(encoding="utf-8"))
        )
        import_run(args.import_run, args.commit, note=args.note, renamed=renamed)
    write(generate(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
