"""Image file encoders, all written atomically (:mod:`relightzoo.util.atomic`).

- :class:`PNGStream` writes an RGB PNG (8 or 16 bit) a band of rows at a time, so a 4096 x
  4096 render never exists in memory as a whole; :func:`png_bytes` is the same encoder on a
  whole array (Pillow cannot build a 16-bit RGB image from an array).
- :func:`write_bands` quantises float bands ``(r0, r1, rows)`` into a PNG (streamed) or a
  JPEG (Pillow encodes whole images, so it holds the 8-bit image, 3 bytes a pixel).
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import IO, Iterable

import numpy as np

from ..errors import OutputError
from .atomic import atomic_open, write_image_atomic
from .images import quantize

__all__ = ["PNGStream", "png_bytes", "write_bands", "JPEG_OPTIONS"]

JPEG_OPTIONS = {"quality": 95, "subsampling": 0}
"""High quality and no chroma subsampling: written images are ground truth or results to score."""


class PNGStream:
    """Write an RGB PNG (8 or 16 bit) a band of rows at a time, never holding the whole image.

    Rows use PNG filter 1 (Sub: each byte minus the byte one pixel to its left), which
    compresses smooth renders well; the zlib stream is flushed into an IDAT chunk whenever it
    has output into ``fh`` (an :func:`relightzoo.util.atomic.atomic_open` file, so a failed
    render never leaves half an image); :meth:`finish` ends the stream.
    """

    def __init__(self, fh: IO[bytes], height: int, width: int, bit_depth: int) -> None:
        self.height, self.width, self.bit_depth = int(height), int(width), int(bit_depth)
        self.bpp = 3 * self.bit_depth // 8
        self.rows = 0
        self.fh = fh
        self.z = zlib.compressobj(6)
        self.fh.write(b"\x89PNG\r\n\x1a\n")
        self._chunk(b"IHDR", struct.pack(">IIBBBBB", self.width, self.height, self.bit_depth, 2, 0, 0, 0))

    def _chunk(self, tag: bytes, data: bytes) -> None:
        self.fh.write(struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    def write(self, rows: np.ndarray) -> None:
        """Append ``rows [h, W, 3]`` (uint8 for 8 bit, uint16 for 16 bit)."""
        h = rows.shape[0]
        raw = np.ascontiguousarray(rows.astype(">u2") if self.bit_depth == 16 else rows).view(np.uint8).reshape(h, -1)
        filtered = np.empty((h, raw.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = 1  # filter type Sub
        filtered[:, 1 : 1 + self.bpp] = raw[:, : self.bpp]
        np.subtract(raw[:, self.bpp :], raw[:, : -self.bpp], out=filtered[:, 1 + self.bpp :])  # wraps mod 256
        data = self.z.compress(filtered.tobytes())
        if data:
            self._chunk(b"IDAT", data)
        self.rows += h

    def finish(self) -> None:
        """Write the last compressed data and the end chunk (the file must hold every row)."""
        if self.rows != self.height:
            raise RuntimeError(f"PNG stream got {self.rows} rows of {self.height}")
        self._chunk(b"IDAT", self.z.flush())
        self._chunk(b"IEND", b"")


def png_bytes(image: np.ndarray) -> bytes:
    """An RGB ``uint8`` or ``uint16`` array ``[H, W, 3]`` as the bytes of an 8- or 16-bit PNG."""
    h, w, _ = image.shape
    buf = io.BytesIO()
    stream = PNGStream(buf, h, w, 16 if image.dtype == np.uint16 else 8)
    stream.write(image)
    stream.finish()
    return buf.getvalue()


def write_bands(
    bands: Iterable[tuple[int, int, object]], path: Path, height: int, width: int, *, bit_depth: int, srgb: bool
) -> Path:
    """Quantise float bands ``(r0, r1, rows)`` and write them to ``path`` (PNG streamed, JPEG whole)."""
    try:
        if path.suffix.lower() == ".png":
            with atomic_open(path, "wb") as fh:  # a failed render never leaves half an image
                stream = PNGStream(fh, height, width, bit_depth)
                for _, _, band in bands:
                    stream.write(quantize(band, bit_depth, srgb=srgb))
                stream.finish()
        else:  # JPEG: Pillow encodes whole images; hold the 8-bit image (3 bytes a pixel)
            from PIL import Image

            q = np.empty((height, width, 3), dtype=np.uint8)
            for r0, r1, band in bands:
                quantize(band, 8, srgb=srgb, out=q[r0:r1])
            write_image_atomic(path, Image.fromarray(q), format="JPEG", **JPEG_OPTIONS)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
