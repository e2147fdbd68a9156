"""Light files: ``lights.txt`` and ``lights.json``, read and written.

``lights.txt`` holds one line per image, in the sorted order of the image file names (the
layout of a light stage's ``3d_pos.txt``). Columns are separated by spaces, tabs or commas;
``#`` starts a comment (a line of its own, or after the numbers), and blank lines are skipped. An optional header line names the
columns and so the format:

=====================  ===============================================
header                 format
=====================  ===============================================
``x y z``              ``cartesian``: direction toward the light, z up
``phi theta``          ``spherical``: polar and azimuth angles in radians
``phi_deg theta_deg``  ``spherical-deg``: the same in degrees
=====================  ===============================================

(``polar azimuth`` and ``polar_deg azimuth_deg`` are accepted as synonyms.) Without a header,
3 columns are cartesian and 2 are spherical radians. A ``fmt`` argument (the CLI's
``--lights-format``) overrides both.

``lights.json`` maps an image file name to its direction: ``[x, y, z]``, ``[phi, theta]``
(radians), ``{"x":..,"y":..,"z":..}``, ``{"phi":..,"theta":..}`` or
``{"phi_deg":..,"theta_deg":..}``.

An RTI ``*.lp`` file (the count, then ``filename x y z`` lines naming images by any path) is
read and written by :mod:`relightzoo.data.lpfile`; :func:`read_lights_file` and
:func:`write_lights_file` hand ``.lp`` paths to it, so every light file goes through here.

Readers of ``lights.txt``/``lights.json`` return directions as cartesian float64 without
normalising or validating them (the ``.lp`` reader checks and normalises them itself, with
line numbers, since unnormalised directions are that format's custom);
:func:`relightzoo.lights.validate_directions` does that, so a hand-written file with
unnormalised vectors loads with a warning rather than an error.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError
from ..jsonfile import MAX_JSON_BYTES, parse_json
from ..lights import cartesian_to_spherical, spherical_to_cartesian
from .lpfile import LP_SUFFIX, read_lp, write_lp

__all__ = [
    "LIGHT_FORMATS",
    "LIGHT_FILE_NAMES",
    "LightTable",
    "normalize_format",
    "read_lights_file",
    "write_lights_file",
    "to_format",
    "from_format",
]

LIGHT_FORMATS: dict[str, str] = {
    "cartesian": "x y z: unit vector toward the light, z up",
    "spherical": "phi theta: polar angle and azimuth in radians",
    "spherical-deg": "phi_deg theta_deg: polar angle and azimuth in degrees",
}
"""Light-file formats by name, with the columns each one holds."""

LIGHT_FILE_NAMES = ("lights.txt", "lights.json")
"""The light files a dataset folder may hold, in the order they are looked for (then one ``*.lp``)."""

_HEADERS: dict[tuple[str, ...], str] = {
    ("x", "y", "z"): "cartesian",
    ("phi", "theta"): "spherical",
    ("polar", "azimuth"): "spherical",
    ("phi_deg", "theta_deg"): "spherical-deg",
    ("polar_deg", "azimuth_deg"): "spherical-deg",
}
_HEADER_OF = {"cartesian": "x y z", "spherical": "phi theta", "spherical-deg": "phi_deg theta_deg"}
_COLUMNS = {"cartesian": 3, "spherical": 2, "spherical-deg": 2}
_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class LightTable:
    """Directions read from a light file.

    ``dirs`` are cartesian ``[N, 3]`` float64 as written in the file (not normalised, except
    from an ``.lp`` file); ``names`` are the image names a ``lights.json`` or ``.lp`` gives
    (None for ``lights.txt``, whose lines pair with the images by sorted order); ``fmt`` is
    the format the file was read in; ``lines`` the line each direction came from (``.lp``).
    """

    dirs: np.ndarray
    names: list[str] | None
    fmt: str
    path: Path
    lines: list[int] | None = None


def normalize_format(fmt: str | None) -> str | None:
    """Check a format name (``cartesian``, ``spherical``, ``spherical-deg``); None passes through."""
    if fmt is None:
        return None
    key = fmt.strip().lower().replace("_", "-")
    key = {"xyz": "cartesian", "spherical-rad": "spherical", "degrees": "spherical-deg", "deg": "spherical-deg"}.get(key, key)
    if key not in LIGHT_FORMATS:
        raise DataError(f"unknown lights format {fmt!r}; use one of {', '.join(LIGHT_FORMATS)}")
    return key


def from_format(values: np.ndarray, fmt: str) -> np.ndarray:
    """Rows of ``fmt`` columns (``[N, 3]`` or ``[N, 2]``) to cartesian ``[N, 3]`` float64."""
    values = np.asarray(values, dtype=np.float64)
    if fmt == "cartesian":
        return values.reshape(-1, 3)
    if fmt == "spherical-deg":
        values = np.radians(values)
    return spherical_to_cartesian(values.reshape(-1, 2))


def to_format(dirs: np.ndarray | torch.Tensor, fmt: str) -> np.ndarray:
    """Cartesian ``[N, 3]`` to the columns of ``fmt`` (spherical ones from normalised vectors)."""
    dirs = dirs.detach().cpu().numpy() if isinstance(dirs, torch.Tensor) else np.asarray(dirs)
    dirs = dirs.astype(np.float64).reshape(-1, 3)
    fmt = normalize_format(fmt)
    if fmt == "cartesian":
        return dirs
    norms = np.linalg.norm(dirs, axis=1, keepdims=True)
    sph = cartesian_to_spherical(dirs / np.where(norms > 0, norms, 1.0))
    return np.degrees(sph) if fmt == "spherical-deg" else sph


def read_lights_file(path: str | Path, *, fmt: str | None = None, allow_below_horizon: bool = False) -> LightTable:
    """Read ``lights.txt`` (or any text light file), ``lights.json`` or an RTI ``.lp`` file into a :class:`LightTable`.

    Raises :class:`DataError` with the line number for a wrong number of columns or a value
    that is not a number, and for a missing or malformed file. ``.lp`` files are cartesian
    (``fmt`` must be None or ``cartesian``) and their directions are checked here, below the
    horizon included unless ``allow_below_horizon``; other files' directions are checked by
    :func:`relightzoo.lights.validate_directions`.
    """
    path = Path(path)
    fmt = normalize_format(fmt)
    if path.suffix.lower() == LP_SUFFIX:
        if fmt not in (None, "cartesian"):
            raise DataError(f"{path.name}: an .lp file holds cartesian directions (x y z), not {fmt}")
        lp = read_lp(path, allow_below_horizon=allow_below_horizon)
        return LightTable(dirs=lp.dirs, names=lp.names, fmt="cartesian", path=path, lines=lp.lines)
    if not path.is_file():
        raise DataError(f"lights file {path} does not exist")
    try:
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise DataError(f"lights file {path} is {size / 2**20:.0f} MiB, over the {MAX_JSON_BYTES / 2**20:.0f} MiB a reader accepts")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read lights file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        return _read_json(path, raw, fmt)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"cannot read lights file {path}: it is not UTF-8 text (byte {exc.start})") from None
    return _read_txt(path, text, fmt)


def _read_txt(path: Path, text: str, fmt: str | None) -> LightTable:
    rows: list[list[float]] = []
    header_fmt: str | None = None
    ncols: int | None = None
    seen_data = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()  # "#" starts a comment, on its own line or after the numbers
        if not line:
            continue
        tokens = [t for t in _SPLIT.split(line) if t]
        if not seen_data and header_fmt is None and not any(_is_number(t) for t in tokens):
            key = tuple(t.lower() for t in tokens)
            if key not in _HEADERS:
                known = "; ".join(f"'{h}'" for h in _HEADER_OF.values())
                raise DataError(f"{path.name} line {lineno}: unknown header {line!r}; use {known}")
            header_fmt = _HEADERS[key]
            continue
        seen_data = True
        if ncols is None:
            ncols = _COLUMNS[fmt or header_fmt] if (fmt or header_fmt) else len(tokens)
            if (fmt or header_fmt) is None and ncols not in (2, 3):
                raise DataError(
                    f"{path.name} line {lineno}: expected 3 numbers (x y z) or 2 (phi theta), got {len(tokens)}"
                )
        if len(tokens) != ncols:
            what = "x y z" if ncols == 3 else "phi theta"
            raise DataError(f"{path.name} line {lineno}: expected {ncols} numbers ({what}), got {len(tokens)}")
        try:
            rows.append([float(t) for t in tokens])
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise DataError(f"{path.name} line {lineno}: cannot read {bad!r} as a number") from None
    if not rows:
        raise DataError(f"lights file {path} holds no light directions")
    used = fmt or header_fmt or ("cartesian" if ncols == 3 else "spherical")
    values = np.asarray(rows, dtype=np.float64)
    if used == "spherical" and fmt is None and header_fmt is None:
        finite = values[np.isfinite(values)]
        if finite.size and np.abs(finite).max() > 2 * math.pi + 1e-6:
            raise DataError(
                f"{path.name}: 2-column angles over 2 pi look like degrees; add the header line "
                "'phi_deg theta_deg' or pass --lights-format spherical-deg"
            )
    return LightTable(dirs=from_format(values, used), names=None, fmt=used, path=path)


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_json(path: Path, text: bytes, fmt: str | None) -> LightTable:
    obj = parse_json(text, path.name, DataError)
    if not isinstance(obj, dict) or not obj:
        raise DataError(f"{path.name}: expected a JSON object mapping image file names to directions")
    names, rows, fmts = [], [], set()
    for name, value in obj.items():
        row_fmt, row = _json_entry(path, name, value, fmt)
        names.append(str(name))
        rows.append(from_format(np.asarray(row), row_fmt)[0])
        fmts.add(row_fmt)
    used = fmts.pop() if len(fmts) == 1 else "cartesian"
    return LightTable(dirs=np.asarray(rows, dtype=np.float64), names=names, fmt=used, path=path)


def _json_entry(path: Path, name: str, value, fmt: str | None) -> tuple[str, list[float]]:
    """One lights.json entry as (format, numbers)."""
    where = f"{path.name}: entry {name[:80]!r}"
    if isinstance(value, dict):
        keys = tuple(sorted(k.lower() for k in value))
        by_keys = {("x", "y", "z"): ("cartesian", ("x", "y", "z")),
                   ("phi", "theta"): ("spherical", ("phi", "theta")),
                   ("phi_deg", "theta_deg"): ("spherical-deg", ("phi_deg", "theta_deg"))}
        if keys not in by_keys:
            raise DataError(f"{where} has keys {list(value)[:5]}; use x/y/z, phi/theta or phi_deg/theta_deg")
        row_fmt, order = by_keys[keys]
        lower = {k.lower(): v for k, v in value.items()}
        numbers = [lower[k] for k in order]
    elif isinstance(value, list):
        numbers = value
        if fmt is not None:
            row_fmt = fmt
        elif len(value) == 3:
            row_fmt = "cartesian"
        elif len(value) == 2:
            row_fmt = "spherical"
        else:
            raise DataError(f"{where}: expected [x, y, z] or [phi, theta], got {len(value)} numbers")
        if len(value) != _COLUMNS[row_fmt]:
            raise DataError(f"{where}: expected {_COLUMNS[row_fmt]} numbers for {row_fmt}, got {len(value)}")
    else:
        raise DataError(f"{where}: expected a list of numbers or an object, got {type(value).__name__}")
    try:
        return row_fmt, [float(v) for v in numbers]
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{where}: {str(numbers)[:80]} are not all numbers") from None


def _fmt_number(v: float) -> str:
    return repr(float(v))  # shortest text that reads back to the same float64


def write_lights_file(
    path: str | Path,
    dirs: np.ndarray | torch.Tensor,
    fmt: str = "cartesian",
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Write directions ``dirs [N, 3]`` (cartesian) to ``path`` in ``fmt``.

    A ``.json`` path writes ``lights.json`` and an ``.lp`` path an RTI light file; both need
    ``names`` (one image name per row), and ``.lp`` holds cartesian only. Any other path writes text with a header line naming the columns, so the file reads back
    in the same format with no flag. Spherical formats store the angles of the normalised
    direction. The file is written to a temporary name and moved into place.
    """
    path = Path(path)
    fmt = normalize_format(fmt) or "cartesian"
    if path.suffix.lower() == LP_SUFFIX:
        if fmt != "cartesian":
            raise DataError(f"{path.name}: an .lp file holds cartesian directions (x y z); it cannot be written as {fmt}")
        if names is None:
            raise DataError(f"writing {path.name} needs one image name per light ({len(to_format(dirs, fmt))} lights, no names)")
        return write_lp(path, to_format(dirs, fmt), names)
    values = to_format(dirs, fmt)
    if path.suffix.lower() == ".json":
        if names is None or len(names) != len(values):
            got = "no names" if names is None else f"{len(names)} names"
            raise DataError(f"writing {path.name} needs one image name per light ({len(values)} lights, {got})")
        keys = {"spherical": ("phi", "theta"), "spherical-deg": ("phi_deg", "theta_deg")}.get(fmt)
        obj = {
            str(n): ([float(v) for v in row] if keys is None else {k: float(v) for k, v in zip(keys, row)})
            for n, row in zip(names, values)
        }
        text = json.dumps(obj, indent=1) + "\n"
    else:
        lines = [_HEADER_OF[fmt]] + [" ".join(_fmt_number(v) for v in row) for row in values]
        text = "\n".join(lines) + "\n"
    from ..util.atomic import write_text_atomic

    return write_text_atomic(path, text)
