"""Radiance ``.hdr`` files (RGBE): the codec environment maps are read and written with.

:func:`read_hdr` decodes header, resolution line and scanlines (flat or new-style
run-length encoded) to linear float32 RGB; :func:`write_hdr` writes flat scanlines, which
every reader accepts. RGBE stores a shared exponent per pixel (Radiance's ``setcolr``).
Errors are one-line :class:`~relightzoo.errors.DataError` messages naming the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..util.atomic import write_bytes_atomic
from .images import MAX_IMAGE_PIXELS

__all__ = ["read_hdr", "write_hdr"]


_RESOLUTION = re.compile(rb"^([-+])Y\s+(\d+)\s+([-+])X\s+(\d+)$")


def read_hdr(path: Path) -> np.ndarray:
    """Decode a Radiance RGBE file: header lines, a blank line, the resolution line, scanlines.

    Each scanline is either flat (4 bytes a pixel) or, for widths 8..32767, new-style
    run-length encoded: the bytes 2, 2, width (16 bit), then each of R, G, B, E as runs
    (a count byte above 128 repeats the next byte count - 128 times) and literals (a count
    byte 1..128 followed by that many bytes). Old-style RLE (pixels 1, 1, 1, n) is not
    expanded; Radiance has not written it for decades.
    """
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read environment map {name}: {exc.strerror or exc}") from None
    if not (data.startswith(b"#?") or data.startswith(b"FORMAT=")):
        raise DataError(f"cannot read environment map {name}: not a Radiance .hdr file (no '#?RADIANCE' header)")
    end = data.find(b"\n\n")
    if end < 0:
        raise DataError(f"cannot read environment map {name}: the .hdr header never ends (truncated?)")
    for line in data[:end].split(b"\n"):
        if line.startswith(b"FORMAT=") and line.strip() != b"FORMAT=32-bit_rle_rgbe":
            fmt = line[7:].strip().decode("ascii", "replace")
            raise DataError(f"environment map {name}: .hdr pixel format {fmt!r} is not supported; use 32-bit_rle_rgbe")
    nl = data.find(b"\n", end + 2)
    res_line = data[end + 2 : nl if nl >= 0 else len(data)].strip()
    m = _RESOLUTION.match(res_line)
    if m is None:
        shown = res_line[:40].decode("ascii", "replace")
        raise DataError(f"cannot read environment map {name}: unsupported .hdr resolution line {shown!r} (expected '-Y H +X W')")
    h, w = int(m.group(2)), int(m.group(4))
    if h * w > MAX_IMAGE_PIXELS:
        raise DataError(
            f"cannot read environment map {name}: its header says {w} x {h} pixels, over the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels a relightzoo image may have"
        )
    body = memoryview(data)[nl + 1 :] if nl >= 0 else memoryview(b"")
    if h == 0 or w == 0:
        rgbe = np.zeros((h, w, 4), dtype=np.uint8)
    else:
        rgbe = _decode_scanlines(body, h, w, name)
    if m.group(1) == b"+":  # rows stored bottom to top
        rgbe = rgbe[::-1]
    if m.group(3) == b"-":  # columns stored right to left
        rgbe = rgbe[:, ::-1]
    return _rgbe_to_float(rgbe)


def _decode_scanlines(body: memoryview, h: int, w: int, name: str) -> np.ndarray:
    out = np.empty((h, w, 4), dtype=np.uint8)
    buf = np.frombuffer(body, dtype=np.uint8)
    n = len(buf)
    pos = 0
    truncated = f"cannot read environment map {name}: the .hdr pixel data is truncated or corrupt"
    for row in range(h):
        if pos + 4 > n:
            raise DataError(truncated)
        rle = 8 <= w <= 0x7FFF and buf[pos] == 2 and buf[pos + 1] == 2 and not (buf[pos + 2] & 0x80)
        if not rle:
            if pos + 4 * w > n:
                raise DataError(truncated)
            out[row] = buf[pos : pos + 4 * w].reshape(w, 4)
            pos += 4 * w
            continue
        if (int(buf[pos + 2]) << 8 | int(buf[pos + 3])) != w:
            raise DataError(f"cannot read environment map {name}: scanline {row} has the wrong length (corrupt .hdr)")
        pos += 4
        for ch in range(4):
            col = 0
            dest = out[row, :, ch]
            while col < w:
                if pos >= n:
                    raise DataError(truncated)
                count = int(buf[pos])
                if count > 128:
                    count -= 128
                    if col + count > w or pos + 1 >= n:
                        raise DataError(truncated)
                    dest[col : col + count] = buf[pos + 1]
                    pos += 2
                else:
                    if count == 0 or col + count > w or pos + 1 + count > n:
                        raise DataError(truncated)
                    dest[col : col + count] = buf[pos + 1 : pos + 1 + count]
                    pos += 1 + count
                col += count
    return out


def _rgbe_to_float(rgbe: np.ndarray) -> np.ndarray:
    """RGBE bytes ``[..., 4]`` to float32 RGB: ``(m + 0.5) * 2 ** (e - 136)``, 0 where e = 0."""
    e = rgbe[..., 3].astype(np.int32)
    scale = np.where(e > 0, np.ldexp(1.0, e - 136), 0.0).astype(np.float32)
    return ((rgbe[..., :3].astype(np.float32) + 0.5) * scale[..., None]).astype(np.float32)


def _float_to_rgbe(rgb: np.ndarray) -> np.ndarray:
    """Float RGB ``[..., 3]`` to RGBE bytes, Radiance's ``setcolr``: shared exponent of the largest channel."""
    rgb = rgb.astype(np.float64)
    v = rgb.max(axis=-1)
    mant, exp = np.frexp(v)
    ok = v >= 1e-32
    scale = np.where(ok, mant * 256.0 / np.where(ok, v, 1.0), 0.0)
    out = np.zeros(rgb.shape[:-1] + (4,), dtype=np.uint8)
    out[..., :3] = np.clip(np.floor(rgb * scale[..., None]), 0, 255).astype(np.uint8)
    out[..., 3] = np.where(ok, np.clip(exp + 128, 0, 255), 0).astype(np.uint8)
    return out


def write_hdr(path: str | Path, array: np.ndarray) -> None:
    """Write linear radiance ``[H, W, 3]`` (or gray ``[H, W]``) as a Radiance ``.hdr`` file.

    Scanlines are written flat (uncompressed RGBE), which every reader accepts. The file is
    written to a temporary name and moved into place, so a crash never leaves half a file.
    Raises :class:`DataError` for the wrong shape or negative / non-finite values.
    """
    path = Path(path)
    arr = np.asarray(array, dtype=np.float32)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise DataError(f"{path.name}: expected radiance of shape [H, W, 3], got {list(arr.shape)}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise DataError(f"{path.name}: radiance must be finite and non-negative")
    h, w = arr.shape[:2]
    header = f"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n".encode("ascii")
    write_bytes_atomic(path, header + _float_to_rgbe(arr).tobytes())
