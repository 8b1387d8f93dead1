"""File output that never leaves a half-written result, and output folders checked before work.

:func:`atomic_write` writes a temporary file next to the target and renames it over the target.
Temporary files and folders of this package are named ``.NAME.PID@HOST.RANDOM.tmp`` next to the
``NAME`` they stand in for, so that a later write can tell an abandoned one from one still being
written (:func:`remove_stale_temporaries`).

:func:`replace_together` replaces a set of outputs (a report and the figures it links; the PNG,
PDF and CSV of one figure) by a new set written beside them, so that a reader never finds parts of
two runs side by side.

:func:`prepare_output_folder` checks an output folder before any computation starts, so that a
command given a file, or a place it cannot write, says so at once instead of after its work.

What this guarantees to a user (outputs consistent after a kill, exit status 3 when an output
cannot be written): docs/reliability.md.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "OUTPUT_FAILED",
    "OutputPathError",
    "atomic_write",
    "is_stale",
    "prepare_output_folder",
    "remove_stale_temporaries",
    "replace_together",
    "temporary_path",
]

#: the exit status of ``xsam-theory verify`` and ``figures`` when an output (a figure,
#: claims.json, report.md) could not be made or written: 1 is verify's "a D/L/F claim fails or
#: errors", 2 a usage error (bad input, an unusable ``--out``)
OUTPUT_FAILED = 3

#: a temporary not modified for this long is abandoned, whoever made it (a write in progress
#: keeps modifying its file; the rule matters only for temporaries of other hosts, whose
#: processes cannot be checked from here)
STALE_AFTER_S = 24 * 3600.0

#: the temporaries this process made (a PID reused after a container restart names a dead
#: writer even though a process with that PID, this one, is alive)
_MINE: set[str] = set()


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def temporary_path(target: str | os.PathLike[str]) -> Path:
    """A fresh name ``.NAME.PID@HOST.RANDOM.tmp`` next to ``target`` (nothing is created)."""
    target = Path(target)
    path = target.parent / f".{target.name}.{os.getpid()}@{_host()}.{secrets.token_hex(4)}.tmp"
    _MINE.add(path.name)
    return path


_TEMPORARY = re.compile(r"\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9-]+)\.[0-9a-f]+\.tmp$")


def _process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (a zombie counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    except OSError:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] == "Z"


def is_stale(path: Path, *, now: float | None = None) -> bool:
    """Whether the temporary ``path`` (named by :func:`temporary_path`) is abandoned.

    It is when its writer ran on this host and is gone (or is this process, which did not make
    it), or when it has not been modified for :data:`STALE_AFTER_S` seconds. Other names are never
    stale.
    """
    m = _TEMPORARY.search(path.name)
    if m is None or not path.name.endswith(".tmp"):
        return False
    if m.group("host") == _host():
        pid = int(m.group("pid"))
        if pid == os.getpid():
            if path.name not in _MINE:
                return True
        elif _process_gone(pid):
            return True
    try:
        age = (time.time() if now is None else now) - path.lstat().st_mtime
    except FileNotFoundError:
        return False
    return age > STALE_AFTER_S


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the abandoned temporaries (files or folders) of ``target``; return what was removed.

    The temporaries are the entries ``.NAME.PID@HOST.RANDOM.tmp`` next to it that
    :func:`is_stale` calls abandoned. Entries that vanish meanwhile or cannot be removed are
    skipped.
    """
    target = Path(target)
    prefix = f".{target.name}."
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        if _TEMPORARY.fullmatch(name[len(prefix) - 1 :]) is None:
            continue
        path = Path(entry.path)
        if not is_stale(path):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError:
            continue
        removed.append(path)
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write(f)`` on a temporary binary file next to ``path``, then rename it to ``path``.

    An interrupted write (an exception, a full disk, a kill) never leaves a half-written
    ``path``: either the old file (or none) or the complete new one is there. A new file gets
    the mode a new file gets under the umask (``0o666 & ~umask``); an existing file keeps its
    mode. Parent folders are created. Abandoned temporaries of ``path`` (left by a writer that
    was killed; see :func:`is_stale`) are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_path(path)
    try:
        old_mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        old_mode = None
    fd = os.open(
        tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666
    )  # the umask applies, as for any new file
    try:
        with os.fdopen(fd, "wb") as f:
            if old_mode is not None:
                os.fchmod(f.fileno(), old_mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        _MINE.discard(tmp.name)
    return path


def replace_together(
    folder: str | os.PathLike[str], staging: str | os.PathLike[str], names: list[str]
) -> None:
    """Replace the entries ``names`` of ``folder`` by those of ``staging``, as one set.

    Entries are files or folders; ``staging`` is a folder on the same file system (e.g. a
    :func:`temporary_path` inside ``folder``). Afterwards ``folder`` holds the new entries, and an
    entry of the old set that has no new counterpart is gone; other entries of ``folder`` are
    untouched.

    Order: the old entries are moved out in the order of ``names``, then the new ones moved in
    in the reverse order; with the index first in ``names`` (a report that links the others),
    no intermediate state shows an index next to entries of another set. An error while moving
    in puts the old set back. Only a kill within these renames can leave the set incomplete
    (never mixed with the old one); its old entries then lie in an abandoned temporary that
    the next call removes.
    """
    folder, staging = Path(folder), Path(staging)
    remove_stale_temporaries(folder / "replaced")
    trash = temporary_path(folder / "replaced")
    trash.mkdir()
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for name in names:
            if os.path.lexists(folder / name):
                os.replace(folder / name, trash / name)
                moved_out.append(name)
        for name in reversed(names):
            if os.path.lexists(staging / name):
                os.replace(staging / name, folder / name)
                moved_in.append(name)
    except BaseException:
        _put_back(folder, staging, trash, moved_in, moved_out)
        raise
    shutil.rmtree(trash, ignore_errors=True)
    _MINE.discard(trash.name)


def _put_back(
    folder: Path, staging: Path, trash: Path, moved_in: list[str], moved_out: list[str]
) -> None:
    """Undo a :func:`replace_together` that failed part-way.

    The old entries' temporary folder is removed only when every one of them is back in place.
    """
    ok = True
    for name in reversed(moved_in):
        try:
            os.replace(folder / name, staging / name)
        except OSError:
            ok = False
    for name in reversed(moved_out):
        try:
            os.replace(trash / name, folder / name)
        except OSError:
            ok = False
    if ok:
        shutil.rmtree(trash, ignore_errors=True)
        _MINE.discard(trash.name)


class OutputPathError(ValueError):
    """An output path that cannot be used.

    A file where a folder is wanted, or a place this process cannot create or write.
    """


def prepare_output_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Check, before any work, that ``path`` is a writable folder; create it and return it.

    ``path`` must be (or be able to become) a folder this process can write files in.

    Raises:
        OutputPathError: ``path`` is a file, lies under a file, or cannot be created or
            written; the message names ``option`` and says what to do.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(
            f"{option} {path}: is a file, not a folder; name a folder (it is created if missing)"
        )
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputPathError(
                    f"{option} {path}: {parent} is a file, so no folder can "
                    "be created under it; name a folder elsewhere"
                )
            break
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputPathError(
            f"{option} {path}: cannot create the folder "
            f"({e.strerror or e}); name a writable location"
        ) from None
    probe = temporary_path(path / "write-check")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        hint = " (the disk is full)" if e.errno == errno.ENOSPC else ""
        raise OutputPathError(
            f"{option} {path}: cannot write files in it "
            f"({e.strerror or e}){hint}; name a writable location"
        ) from None
    finally:
        _MINE.discard(probe.name)
    return path
