"""RTI ``.lp`` light files, read (with a one-line error per problem) and written.

Reflectance Transformation Imaging tools (RTIBuilder, RTIViewer, Relight) describe a capture
with a light-position file: the first line holds the number of lights, then one line per
image::

    45
    C:\\Captures\\vase\\jpeg-exports\\img_01.jpg 0.4215 -0.2170 0.8805
    img_02.jpg 0.2 0.1 0.97

The file name may be an absolute Windows or POSIX path, or relative, and may hold spaces (the
last three fields are the direction); lines may come in any order; directions point toward
the light, z up, and need not be unit length (they are normalised here, silently: that is
how these files are written). Images pair with lines by *base name* (``img_01.jpg``), so a
capture folder copied from another machine loads as it is.

:func:`read_lp` checks everything it can with the line number: the count on line 1, each
line's shape and numbers, NaN or infinite values, zero-length directions, directions below
the horizon (unless allowed) and a file named twice. Whether each named file exists is
checked when the file is matched with a folder's images (see ``relightzoo.data.dataset``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError, LightsError
from ..lights import HORIZON_TOLERANCE

__all__ = ["LP_SUFFIX", "LpTable", "lp_base_name", "read_lp", "write_lp"]

LP_SUFFIX = ".lp"
"""The file extension of an RTI light-position file."""


@dataclass(frozen=True)
class LpTable:
    """The lights of an ``.lp`` file: unit ``dirs [N, 3]``, image base ``names`` and the
    1-based ``lines`` each came from, in file order."""

    dirs: np.ndarray
    names: list[str]
    lines: list[int]
    path: Path


def lp_base_name(name: str) -> str:
    """The file name at the end of a Windows or POSIX path (``C:\\a\\img.jpg`` -> ``img.jpg``)."""
    return PureWindowsPath(name.strip().strip('"')).name


def _decode(raw: bytes) -> str:
    """Text of an .lp file: UTF-8 (with or without a byte-order mark), else Windows-1252.

    RTI captures are often made on Windows, whose tools write non-ASCII paths in the local
    code page; Latin-1 decodes any byte, so a binary file ends as a format error, not a crash.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def _number(token: str) -> float | None:
    try:
        return float(token)
    except ValueError:
        return None


def read_lp(path: str | Path, *, allow_below_horizon: bool = False) -> LpTable:
    """Read and check an ``.lp`` file; directions come back as unit vectors.

    Raises :class:`DataError` (file, count, line shape, names) or :class:`LightsError`
    (direction values), each one line naming the file and the line number.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"lights file {path} does not exist")
    try:
        text = _decode(path.read_bytes())
    except OSError as exc:
        raise DataError(f"cannot read lights file {path}: {exc.strerror or exc}") from None
    if "\x00" in text:
        raise DataError(f"{path.name} is not a text file; an .lp file holds a count, then 'filename x y z' lines")
    fname = path.name
    lines = [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)]
    lines = [(i, line) for i, line in lines if line and not line.startswith("#")]
    if not lines:
        raise DataError(f"{fname} is empty; an .lp file starts with the number of lights, then 'filename x y z' lines")
    count_line, count_text = lines[0]
    count = _number(count_text)
    if count is None or not math.isfinite(count) or count != int(count) or count < 1:
        raise DataError(
            f"{fname} line {count_line}: expected the number of lights (a positive whole number), got {_clip(count_text)!r}"
        )
    count = int(count)
    names: list[str] = []
    rows: list[list[float]] = []
    numbers: list[int] = []
    first_seen: dict[str, int] = {}
    for lineno, line in lines[1:]:
        fields = line.rsplit(None, 3)
        if len(fields) < 4:
            raise DataError(f"{fname} line {lineno}: expected 'filename x y z', got '{_clip(line)}'")
        raw_name, values = fields[0], [_number(t) for t in fields[1:]]
        if any(v is None for v in values):
            bad = next(t for t, v in zip(fields[1:], values) if v is None)
            raise DataError(f"{fname} line {lineno}: cannot read {_clip(bad)!r} as a number (expected 'filename x y z')")
        name = lp_base_name(raw_name)
        if not name or raw_name.strip('"').endswith(("\\", "/")):
            raise DataError(f"{fname} line {lineno}: '{_clip(raw_name)}' names a folder, not an image file")
        _check_direction(fname, lineno, name, values, allow_below_horizon)
        key = name.lower()
        if key in first_seen:
            raise DataError(f"{fname} line {lineno} names {name} again (first on line {first_seen[key]})")
        first_seen[key] = lineno
        names.append(name)
        rows.append(values)  # type: ignore[arg-type]
        numbers.append(lineno)
    if len(rows) != count:
        raise DataError(f"{fname} line {count_line}: says {count} lights but the file lists {len(rows)}")
    dirs = np.asarray(rows, dtype=np.float64)
    with np.errstate(over="ignore"):
        norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    huge = ~np.isfinite(norms[:, 0])  # lengths past the float range (1e200): to the unit cube first
    if huge.any():
        dirs[huge] /= np.abs(dirs[huge]).max(axis=1, keepdims=True)
        norms[huge] = np.linalg.norm(dirs[huge], axis=1, keepdims=True)
    dirs /= norms
    return LpTable(dirs=dirs, names=names, lines=numbers, path=path)


def _check_direction(fname: str, lineno: int, name: str, v: list, allow_below_horizon: bool) -> None:
    where = f"{fname} line {lineno}"
    if not all(math.isfinite(x) for x in v):
        raise LightsError(f"{where}: the direction of {name} is not finite ({' '.join(str(x) for x in v)})")
    length = math.sqrt(sum(x * x for x in v))
    if length < 1e-12:
        raise LightsError(f"{where}: the direction of {name} has zero length")
    if v[2] / length < -HORIZON_TOLERANCE and not allow_below_horizon:
        raise LightsError(
            f"{where}: the direction of {name} ({v[0]:.4g}, {v[1]:.4g}, {v[2]:.4g}) is below the horizon (z < 0); "
            "pass --allow-below-horizon to accept it"
        )


def _clip(text: str, n: int = 60) -> str:
    """``text`` cut to ``n`` characters, so that an error stays one short line."""
    return text if len(text) <= n else text[: n - 3] + "..."


def write_lp(path: str | Path, dirs: np.ndarray | torch.Tensor, names: Sequence[str]) -> Path:
    """Write ``dirs [N, 3]`` (cartesian, toward the light) and one image name per row as an ``.lp`` file.

    Names are written as given (relative names keep the file usable on any machine); the
    numbers are written so they read back to the same float64. Written to a temporary name
    and moved into place.
    """
    path = Path(path)
    dirs = dirs.detach().cpu().numpy() if isinstance(dirs, torch.Tensor) else np.asarray(dirs)
    dirs = dirs.astype(np.float64).reshape(-1, 3)
    names = [str(n) for n in names]
    if len(names) != len(dirs):
        raise DataError(f"writing {path.name} needs one image name per light ({len(dirs)} lights, {len(names)} names)")
    bad = [n for n in names if not n.strip() or "\n" in n or n != n.strip()]
    if bad:
        raise DataError(f"writing {path.name}: image name {bad[0]!r} is empty or has surrounding white space")
    lines = [str(len(dirs))] + [f"{n} {' '.join(repr(float(v)) for v in row)}" for n, row in zip(names, dirs)]
    from ..util.atomic import write_text_atomic

    return write_text_atomic(path, "\n".join(lines) + "\n")
