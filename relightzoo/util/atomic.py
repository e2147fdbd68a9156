"""Atomic file writes: the one writer every output file goes through.

A reader (or a run resumed after a crash) sees either the previous file or the new one,
never half of either: the bytes go to a temporary file in the target's folder (``os.replace``
is atomic only within one file system) under a unique name ``.<name>.<random>.tmp``, are
flushed and fsynced, and then replace the target; the folder is fsynced so the rename itself
survives a power loss. On any error the temporary file is removed and the target is untouched.

Resource faults become one-line :class:`~relightzoo.errors.OutputError` messages instead of
``OSError`` tracebacks: a full disk says what was kept, a read-only file system and a missing
permission say so. A process killed mid-write leaves its temporary file behind;
:func:`remove_stale_temps` finds and deletes such strays (training runs do it on resume).

Writers that need a file name rather than bytes use :func:`atomic_path` (Pillow images:
:func:`write_image_atomic`); streaming writers use :func:`atomic_open`.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from ..errors import OutputError

__all__ = [
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "atomic_path",
    "write_image_atomic",
    "atomic_open",
    "remove_stale_temps",
    "output_error",
    "is_temp_name",
]

_TEMP_SUFFIX = ".tmp"


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary file this module creates (``.<name>.<random>.tmp``)."""
    return name.startswith(".") and name.endswith(_TEMP_SUFFIX) and name.count(".") >= 3


def output_error(exc: OSError, path: Path, *, kept: str | None = None) -> OutputError:
    """A one-line :class:`OutputError` for an ``OSError`` met while writing ``path``.

    ``kept`` says what survives the failed write (for a full disk); by default: the previous
    file at ``path`` when there is one, else that nothing was written.
    """
    path = Path(path)
    if kept is None:
        kept = f"the previous {path.name} is unchanged" if path.is_file() else f"{path.name} was not written"
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        try:
            free = shutil.disk_usage(path.parent if path.parent.exists() else ".").free
            room = f" ({free / 2**20:.1f} MiB free)"
        except OSError:
            room = ""
        return OutputError(f"cannot write {path}: the disk is full{room}; {kept}. Free some space and run it again")
    if code == errno.EROFS:
        return OutputError(f"cannot write {path}: the file system is read-only; choose another output folder")
    if code in (errno.EACCES, errno.EPERM):
        return OutputError(f"cannot write {path}: permission denied; choose a folder you can write to")
    if isinstance(exc, IsADirectoryError) or path.is_dir():
        return OutputError(f"cannot write {path}: it is a folder")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        return OutputError(f"cannot write {path}: {blocker} is a file, not a folder")
    reason = exc.strerror or (str(exc).splitlines() or [type(exc).__name__])[0]
    return OutputError(f"cannot write {path}: {reason}")


def _mkstemp(path: Path) -> tuple[int, Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=_TEMP_SUFFIX, dir=path.parent)
    return fd, Path(tmp)


def _commit(tmp: Path, path: Path) -> None:
    """Move the finished temporary file over ``path`` and persist the rename.

    A seam: the crash-consistency tests replace it to simulate a kill between two writes.
    """
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _discard(tmp: Path) -> None:
    """Remove a temporary file after a failed write (a seam: a killed process never gets here)."""
    try:
        os.unlink(tmp)
    except OSError:
        pass


def _fsync_file(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Persist a rename (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


@contextmanager
def _replacing(tmp: Path, path: Path, kept: str | None) -> Iterator[None]:
    """Commit ``tmp`` over ``path`` when the block ends cleanly; on any error remove ``tmp``
    (an ``OSError`` becomes a one-line :class:`OutputError`)."""
    try:
        yield
        _commit(tmp, path)
    except OSError as exc:
        _discard(tmp)
        raise output_error(exc, path, kept=kept) from None
    except BaseException:
        _discard(tmp)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb", *, kept: str | None = None, **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing; on a clean exit it replaces ``path`` atomically.

    An exception inside the block removes the temporary file and leaves ``path`` as it was;
    an ``OSError`` (disk full, read-only, permission) becomes a one-line :class:`OutputError`.
    """
    path = Path(path)
    if "w" not in mode:
        raise ValueError(f"atomic_open writes; mode {mode!r} has no 'w'")
    try:
        fd, tmp = _mkstemp(path)
    except OSError as exc:
        raise output_error(exc, path, kept=kept) from None
    with _replacing(tmp, path, kept):
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | Path, *, kept: str | None = None) -> Iterator[Path]:
    """A temporary path to hand to a writer that wants a file name (``Image.save(tmp, format=...)``).

    The writer must name the format explicitly (the temporary name ends in ``.tmp``). On a
    clean exit the file is fsynced and replaces ``path``; on an error it is removed.
    """
    path = Path(path)
    try:
        fd, tmp = _mkstemp(path)
        os.close(fd)
    except OSError as exc:
        raise output_error(exc, path, kept=kept) from None
    with _replacing(tmp, path, kept):
        yield tmp
        _fsync_file(tmp)


def write_image_atomic(path: str | Path, image: Any, *, format: str = "PNG", kept: str | None = None, **save: Any) -> Path:
    """Save a Pillow image to ``path`` atomically in ``format`` (PNG by default; ``save`` goes
    to ``Image.save``, e.g. ``quality=95`` for a JPEG); returns ``path``."""
    with atomic_path(path, kept=kept) as tmp:
        image.save(tmp, format=format, **save)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes, *, kept: str | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); returns ``path``."""
    path = Path(path)
    with atomic_open(path, "wb", kept=kept) as fh:
        fh.write(data)
    return path


def write_text_atomic(path: str | Path, text: str, *, kept: str | None = None) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically; returns ``path``."""
    return write_bytes_atomic(path, text.encode("utf-8"), kept=kept)


def write_json_atomic(path: str | Path, obj: Any, *, kept: str | None = None, indent: int | None = 2, **dumps: Any) -> Path:
    """Write ``obj`` as JSON (a trailing newline) to ``path`` atomically; returns ``path``."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, **dumps) + "\n", kept=kept)


_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]+\.tmp$")


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the temporary files a killed writer left in ``folder``; returns what was removed.

    Only names this module creates (``.<name>.<random>.tmp``) are touched. Call it only when
    no other process writes to ``folder`` (a training run does so when it resumes).
    """
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        if _TEMP_RE.match(entry.name) and entry.is_file():
            try:
                entry.unlink()
            except OSError:
                continue
            removed.append(entry)
    return sorted(removed)
