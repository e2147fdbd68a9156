"""Pixel values: integer <-> float images and the sRGB transfer curve, each done once.

Images in the package are float32 in [0, 1] (linear light) while they are worked on, and
``uint8`` / ``uint16`` when read from or written to files. :func:`quantize` is the one way a
float image becomes integers (NaN -> 0, clipped to [0, 1], rounded), :func:`to_uint8` the
shorthand for 8 bit that also accepts images that are integers already.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import OutputError

__all__ = ["max_value", "to_numpy", "quantize", "to_uint8", "srgb_to_linear", "linear_to_srgb"]


def max_value(dtype: np.dtype) -> float:
    """The value that stands for 1.0 in an image of integer ``dtype`` (255 or 65535); 1.0 for floats."""
    dtype = np.dtype(dtype)
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    return 1.0


def to_numpy(image: Any) -> np.ndarray:
    """A tensor (on any device) or an array-like as a numpy array."""
    return image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)


def quantize(image: Any, bit_depth: int = 8, *, srgb: bool = False, out: np.ndarray | None = None) -> np.ndarray:
    """An image as ``uint8`` / ``uint16`` (``bit_depth`` 8 or 16), into ``out`` if given.

    A float image is taken to be in [0, 1]: NaN -> 0, clipped, scaled and rounded. An integer
    image is rescaled from its own depth (``uint16`` -> 8 bit divides by 257, rounded).
    ``srgb`` applies the sRGB transfer curve first (for display); otherwise values stay
    linear, as the datasets store them.
    """
    arr = to_numpy(image)
    if int(bit_depth) not in (8, 16):
        raise OutputError(f"bit depth must be 8 or 16, got {bit_depth}")
    dtype = np.uint8 if int(bit_depth) == 8 else np.uint16
    if arr.dtype == dtype and not srgb:
        if out is None:
            return arr
        out[...] = arr
        return out
    if arr.dtype.kind == "f":
        f = arr.astype(np.float32, copy=True)  # callers pass one band at a time: the copy is small
    elif arr.dtype.kind in "ui":
        f = arr.astype(np.float64) / max_value(arr.dtype)
    else:
        raise OutputError(f"cannot quantize an image of type {arr.dtype}; expected floats in [0, 1] or integers")
    np.nan_to_num(f, copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    np.clip(f, 0.0, 1.0, out=f)
    if srgb:
        f = np.clip(linear_to_srgb(f), 0.0, 1.0)
    f *= 255.0 if dtype == np.uint8 else 65535.0
    np.round(f, out=f)
    if out is None:
        return f.astype(dtype)
    out[...] = f
    return out


def to_uint8(image: Any) -> np.ndarray:
    """Any image (float in [0, 1], ``uint8`` or ``uint16``; a tensor or an array) as ``uint8``."""
    return quantize(image, 8)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """The sRGB EOTF: encoded values in [0, 1] to linear values (IEC 61966-2-1)."""
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((np.maximum(c, 0.04045) + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Inverse of :func:`srgb_to_linear`; negative values become 0, values above 1 stay above 1."""
    c = np.maximum(np.asarray(c, dtype=np.float32), 0.0)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * np.maximum(c, 0.0031308) ** (1 / 2.4) - 0.055).astype(np.float32)
