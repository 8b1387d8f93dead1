"""Which code computed a result: a digest of the package's source (and of a user problem's).

Every run configuration of the sweep runner carries :func:`source_digest` next to the package
version, so a run's hash changes whenever the code that computes it changes, even without a
version bump: a store never hands back a result computed by other code as if it were current.

The digest is the SHA-256 of every ``.py`` file of the installed :mod:`xsam_theory` package
(relative path and contents, sorted by relative path), computed once per process. A problem
registered from another module (:func:`~xsam_theory.sweeps.registry.register_problem`, or a
``"module:function"`` name) adds the source file of the module(s) defining its functions; a
function with no source to read (typed at an interactive prompt) adds a token drawn once per
process, so such runs are reused within one process and never across processes.

Why a cached result is never stale: docs/reliability.md; how runs are identified:
docs/sweeps.md.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["package_digest", "problem_digest", "source_digest"]

#: hex characters kept of each SHA-256 (64 bits: enough to tell code versions apart)
DIGEST_CHARS = 16

_PACKAGE_ROOT = Path(__file__).resolve().parent


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "little"))
        h.update(p)
    return h.hexdigest()[:DIGEST_CHARS]


@functools.lru_cache(maxsize=1)
def package_digest() -> str:
    """The digest of the installed package's source, cached for the process.

    Every ``.py`` file under the package folder, as (relative POSIX path, contents) pairs sorted
    by path. An edit takes effect in the next process, as the edited code itself does.
    """
    files = sorted(
        (p.relative_to(_PACKAGE_ROOT).as_posix(), p)
        for p in _PACKAGE_ROOT.rglob("*.py")
        if p.is_file()
    )
    parts: list[bytes] = []
    for rel, path in files:
        parts += [rel.encode(), path.read_bytes()]
    return _sha(*parts)


@functools.lru_cache(maxsize=1)
def _process_token() -> str:
    return secrets.token_hex(8)


def _in_package(path: Path) -> bool:
    try:
        path.resolve().relative_to(_PACKAGE_ROOT)
    except ValueError:
        return False
    return True


def _function_source(fn: Callable[..., Any]) -> bytes | None:
    """The bytes that define ``fn``.

    Its module's source file (``None`` when it is a file of this package, already in
    :func:`package_digest`), else the function's own source text, else a per-process token.
    """
    module = sys.modules.get(getattr(fn, "__module__", "") or "")
    try:
        file = inspect.getsourcefile(module) if module is not None else None
    except TypeError:
        file = None
    if file is not None and Path(file).is_file():
        if _in_package(Path(file)):
            return None
        return Path(file).resolve().as_posix().encode() + b"\0" + Path(file).read_bytes()
    try:
        return inspect.getsource(fn).encode()
    except (OSError, TypeError):
        return f"no source: {_process_token()}".encode()


def problem_digest(name: str) -> str | None:
    """The digest of the source defining problem ``name`` when it comes from outside this package.

    The digest covers its build and init functions' modules; ``None`` for a problem of this
    package.
    """
    from xsam_theory.sweeps.registry import problem_factory

    factory = problem_factory(name)
    return _functions_digest(factory.build, factory.init)


@functools.lru_cache(maxsize=256)
def _functions_digest(*functions: Callable[..., Any] | None) -> str | None:
    parts = [
        s for fn in functions if fn is not None for s in [_function_source(fn)] if s is not None
    ]
    return _sha(*parts) if parts else None


def source_digest(problem: str | None = None) -> str:
    """The digest run configurations carry.

    :func:`package_digest`, combined with :func:`problem_digest` for a problem defined outside the
    package.
    """
    pkg = package_digest()
    if problem is None:
        return pkg
    extra = problem_digest(problem)
    return pkg if extra is None else _sha(pkg.encode(), extra.encode())
