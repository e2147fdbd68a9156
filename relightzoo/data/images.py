"""Image files in and out: PNG and JPEG, 8 or 16 bit, as compact numpy arrays.

Images are kept in the integer type they were stored in (``uint8`` or ``uint16``) so that a
large light-stage capture costs one or two bytes per channel in memory; conversion to float
happens only when a caller asks for it. Every image comes back as RGB ``[H, W, 3]``:
grayscale is repeated into three channels and alpha is dropped.

Pillow reads 16-bit colour PNGs as 8-bit RGB, so those (and only those) are decoded with
``torchvision.io.decode_png``; 16-bit grayscale, 8-bit PNG and JPEG go through Pillow.
Writing 16-bit colour PNGs uses a small built-in encoder for the same reason.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from ..util.atomic import write_bytes_atomic, write_image_atomic
from ..util.imagefile import JPEG_OPTIONS, png_bytes
from ..util.images import max_value, quantize

__all__ = [
    "IMAGE_EXTENSIONS",
    "MAX_IMAGE_PIXELS",
    "is_image_file",
    "read_image",
    "write_image",
    "image_size",
    "to_float",
    "max_value",
]

MAX_IMAGE_PIXELS = 1 << 27
"""The most pixels one image may claim (134 megapixels, e.g. 16384 x 8192; 0.8 GB decoded at
16 bit): headers are checked against it before any decoding, so a file claiming
100000 x 100000 is refused in one line rather than exhausting memory."""

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""File extensions (lower case) that a dataset folder's images may have."""


def is_image_file(path: str | Path) -> bool:
    """True when ``path`` has an image extension this module reads."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def to_float(img: np.ndarray) -> np.ndarray:
    """An image of any supported dtype as float32 in [0, 1]."""
    return (img.astype(np.float32) / np.float32(max_value(img.dtype))).astype(np.float32, copy=False)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image file, read from its header only and checked against
    :data:`MAX_IMAGE_PIXELS` (a :class:`DataError` naming the size when it is over)."""
    path = Path(path)
    size = _png_header_size(path)
    if size is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as im:
                    w, h = im.size
        except Image.DecompressionBombError:
            raise DataError(f"cannot read image {path.name}: its header claims more than {2 * Image.MAX_IMAGE_PIXELS} pixels, "
                            f"over the {MAX_IMAGE_PIXELS} a relightzoo image may have") from None
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
            raise DataError(f"cannot read image {path.name}: {_reason(exc)}") from None
        size = (h, w)
    _check_pixels(path, *size)
    return size


def _png_header_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` from a PNG's IHDR chunk, or None when ``path`` is not a PNG."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
    except OSError as exc:
        raise DataError(f"cannot read image {path.name}: {exc.strerror or exc}") from None
    if len(head) < 24 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        return None
    return int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")


def _check_pixels(path: Path, height: int, width: int) -> None:
    if height < 1 or width < 1:
        raise DataError(f"cannot read image {path.name}: its header says {width} x {height} pixels (no pixels)")
    if height * width > MAX_IMAGE_PIXELS:
        raise DataError(
            f"cannot read image {path.name}: its header says {width} x {height} pixels "
            f"({height * width / 1e6:.0f} megapixels), over the {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
            "a relightzoo image may have; downscale it"
        )


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG or JPEG as RGB ``[H, W, 3]``, ``uint8`` for 8-bit files and ``uint16`` for 16-bit.

    Raises :class:`DataError` naming the file when it is missing, not an image, or truncated.
    """
    path = Path(path)
    image_size(path)  # the header against the pixel budget, before anything is decoded
    if _is_png16_colour(path):
        return _read_png16_colour(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                im.load()
                arr = _to_rgb_array(im)
    except DataError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError, MemoryError) as exc:
        raise DataError(f"cannot read image {path.name}: {_reason(exc)} (is it truncated or not an image?)") from None
    return arr


def _is_png16_colour(path: Path) -> bool:
    """True for a 16-bit PNG with colour or alpha, which Pillow would reduce to 8 bits."""
    try:
        with open(path, "rb") as f:
            head = f.read(26)
    except OSError:
        return False
    return len(head) == 26 and head[:8] == _PNG_SIGNATURE and head[24] == 16 and head[25] in (2, 4, 6)


def _read_png16_colour(path: Path) -> np.ndarray:
    """Decode a 16-bit colour PNG at full depth with torchvision (Pillow keeps only 8 bits)."""
    import torch

    from .pngclean import clean_png

    try:
        from torchvision.io import ImageReadMode, decode_png
    except ImportError:  # torchvision deprecated its image I/O in 0.29
        raise DataError(
            f"cannot read image {path.name}: 16-bit colour PNGs need torchvision.io.decode_png, which this "
            "torchvision lacks; install a torchvision that has it, or save the images as 8-bit or 16-bit grayscale"
        ) from None
    try:
        # libpng errors crash torchvision's decoder (a segmentation fault), so it only ever
        # sees a PNG rebuilt from checked parts
        data = torch.frombuffer(bytearray(clean_png(path.read_bytes(), path.name)), dtype=torch.uint8)
        with warnings.catch_warnings():  # torchvision 0.29 flags its image I/O as deprecated
            warnings.simplefilter("ignore", DeprecationWarning)
            chw = decode_png(data, mode=ImageReadMode.UNCHANGED)
    except (OSError, RuntimeError, ValueError) as exc:
        raise DataError(f"cannot read image {path.name}: {_reason(exc)} (is it truncated or not an image?)") from None
    arr = chw.permute(1, 2, 0).numpy().astype(np.uint16, copy=False)
    if arr.shape[-1] in (2, 4):  # drop alpha
        arr = arr[..., :-1]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.ascontiguousarray(arr)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a loaded Pillow image of any common mode to an RGB array of uint8 or uint16."""
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(im).astype(np.uint16)
    elif mode == "I":
        # 16-bit grayscale PNGs often load as 32-bit "I"; values are 0..65535.
        arr = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
    elif mode in ("RGB", "L"):
        arr = np.asarray(im)
    elif mode in ("RGBA", "LA"):
        arr = np.asarray(im)[..., :-1]
    elif mode in ("1", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "RGBX", "La"):
        arr = np.asarray(im.convert("RGB"))
    elif mode.startswith("RGB") or mode.startswith("BGR"):
        # 16-bit colour PNGs ("RGB;16" and friends) decode to 8-bit RGB in some Pillow versions
        arr = np.asarray(im.convert("RGB"))
    else:
        raise DataError(f"image mode {mode!r} is not supported; use 8- or 16-bit RGB or grayscale PNG/JPEG")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    if arr.dtype not in (np.uint8, np.uint16):
        arr = arr.astype(np.uint8)
    return np.ascontiguousarray(arr[..., :3])


def write_image(path: str | Path, img: np.ndarray, *, bit_depth: int | None = None) -> None:
    """Write an RGB ``[H, W, 3]`` (or gray ``[H, W]``) image as PNG (8 or 16 bit) or JPEG (8 bit).

    Float images are taken to be in [0, 1] and are clipped and quantised to ``bit_depth``
    (default 8); integer images keep their depth unless ``bit_depth`` asks for another.
    """
    path = Path(path)
    img = np.asarray(img)
    if bit_depth is None:
        bit_depth = 16 if img.dtype == np.uint16 else 8
    if bit_depth not in (8, 16):
        raise DataError(f"bit depth must be 8 or 16, got {bit_depth}")
    is_jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    if is_jpeg and bit_depth != 8:
        raise DataError(f"{path.name}: JPEG holds 8-bit images only; write a .png for 16 bit")
    q = quantize(img, bit_depth)
    if q.ndim == 3 and q.shape[-1] == 1:
        q = q[..., 0]
    if q.ndim not in (2, 3) or (q.ndim == 3 and q.shape[-1] != 3):
        raise DataError(f"{path.name}: expected an image of shape [H, W, 3] or [H, W], got {list(img.shape)}")
    if bit_depth == 16 and q.ndim == 3:
        # Pillow cannot build a 16-bit RGB image from an array: the package's own PNG encoder
        write_bytes_atomic(path, png_bytes(q))
    elif bit_depth == 16:
        write_image_atomic(path, Image.fromarray(q.astype(np.uint16)), format="PNG")  # Pillow's I;16 mode: 16-bit gray
    elif is_jpeg:
        # high quality, no chroma subsampling, since datasets are ground truth for scoring
        write_image_atomic(path, Image.fromarray(q), format="JPEG", **JPEG_OPTIONS)
    else:
        write_image_atomic(path, Image.fromarray(q), format="PNG")

