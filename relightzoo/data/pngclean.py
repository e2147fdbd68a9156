"""Rebuild a PNG from its checked parts before a native decoder that cannot survive bad input sees it.

torchvision's ``decode_png`` (the only full-depth decoder of 16-bit colour PNGs at hand: Pillow
reduces them to 8 bits) crashes the whole process with a segmentation fault on any libpng
error, such as a bad row filter byte, a bad CRC or a misplaced chunk. So such a file is first
taken apart here in Python: the chunk structure and CRCs, the IHDR fields, the concatenated
IDAT stream (decompressed with a bound: exactly the bytes the header implies, Adam7 passes
included) and every row's filter byte are checked, and a clean PNG holding only IHDR, one
IDAT (recompressed) and IEND is built from them. A file that fails any check is a one-line
:class:`~relightzoo.errors.DataError`; a clean file gives libpng nothing to complain about.
"""

from __future__ import annotations

import struct
import zlib

from ..errors import DataError

__all__ = ["clean_png"]

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
"""Adam7 passes as (x0, y0, dx, dy)."""


def _chunks(data: bytes, name: str):
    pos = len(_SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise DataError(f"cannot read image {name}: the PNG is truncated (a chunk header is cut off)")
        length, tag = struct.unpack(">I4s", data[pos : pos + 8])
        end = pos + 12 + length
        if end > len(data):
            raise DataError(f"cannot read image {name}: the PNG is truncated (chunk {tag!r} is cut off)")
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : end])
        if zlib.crc32(tag + body) & 0xFFFFFFFF != crc:
            raise DataError(f"cannot read image {name}: chunk {tag.decode('latin-1')!r} fails its CRC check (a corrupt file)")
        yield tag, body
        pos = end


def _rows(width: int, height: int, interlace: int) -> list[tuple[int, int]]:
    """(row count, pixels a row) of each pass holding pixels."""
    if interlace == 0:
        return [(height, width)]
    out = []
    for x0, y0, dx, dy in _ADAM7:
        pw, ph = (width - x0 + dx - 1) // dx, (height - y0 + dy - 1) // dy
        if pw > 0 and ph > 0:
            out.append((ph, pw))
    return out


def clean_png(data: bytes, name: str) -> bytes:
    """The PNG ``data`` rebuilt from checked parts (IHDR, one IDAT, IEND), or a :class:`DataError`."""
    if not data.startswith(_SIGNATURE):
        raise DataError(f"cannot read image {name}: not a PNG file")
    ihdr, idat, ended, seen_idat_end = None, [], False, False
    for tag, body in _chunks(data, name):
        if ended:
            break  # bytes after IEND are ignored, as decoders do
        if ihdr is None:
            if tag != b"IHDR" or len(body) != 13:
                raise DataError(f"cannot read image {name}: the PNG does not start with a valid IHDR chunk")
            ihdr = body
            continue
        if tag == b"IDAT":
            if seen_idat_end:
                raise DataError(f"cannot read image {name}: the PNG's IDAT chunks are not consecutive")
            idat.append(body)
        elif tag == b"IEND":
            ended = True
        elif idat:
            seen_idat_end = True
        if tag[0:1].isupper() and tag not in (b"IDAT", b"IEND", b"PLTE"):
            raise DataError(f"cannot read image {name}: unknown critical PNG chunk {tag.decode('latin-1')!r}")
    if ihdr is None:
        raise DataError(f"cannot read image {name}: the PNG has no IHDR chunk")
    if not idat:
        raise DataError(f"cannot read image {name}: the PNG has no image data (no IDAT chunk)")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    if depth != 16 or colour not in (0, 2, 4, 6) or compression or filtering or interlace not in (0, 1):
        raise DataError(
            f"cannot read image {name}: unsupported PNG header (bit depth {depth}, colour type {colour}, "
            f"compression {compression}, filter {filtering}, interlace {interlace})"
        )
    if width < 1 or height < 1:
        raise DataError(f"cannot read image {name}: its header says {width} x {height} pixels (no pixels)")
    bpp = 2 * _CHANNELS[colour]
    passes = _rows(width, height, interlace)
    expected = sum(rows * (1 + pixels * bpp) for rows, pixels in passes)
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(b"".join(idat), expected + 1)
    except zlib.error as exc:
        raise DataError(f"cannot read image {name}: its compressed image data is corrupt ({exc})") from None
    if len(raw) != expected or not inflater.eof:
        raise DataError(
            f"cannot read image {name}: its image data holds {len(raw)}{'+' if len(raw) > expected else ''} bytes "
            f"{'' if inflater.eof else '(the stream is cut off) '}where the header implies {expected}"
        )
    pos = 0
    for rows, pixels in passes:
        stride = 1 + pixels * bpp
        filters = raw[pos : pos + rows * stride : stride]
        if filters and max(filters) > 4:
            raise DataError(f"cannot read image {name}: a row has filter type {max(filters)} (PNG knows 0 to 4); the file is corrupt")
        pos += rows * stride

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return _SIGNATURE + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")
