"""Write an OLAT dataset folder: one image per light plus ``lights.txt``.

This is the on-disk format every loader in relightzoo reads (see DESIGN.md): images named so
that their sorted order is the light order, and a light file with one direction per image in
that order. The Mitsuba renderer and the synthetic test scenes both write through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import DataError
from .dataset import image_order
from .images import write_image
from .lightfile import write_lights_file

__all__ = ["write_dataset", "default_names"]


def default_names(n: int, ext: str = ".png") -> list[str]:
    """``light_0000.png``, ``light_0001.png``, ...: zero-padded so file order is light order."""
    digits = max(4, len(str(max(n - 1, 0))))
    return [f"light_{i:0{digits}d}{ext}" for i in range(n)]


def write_dataset(
    folder: str | Path,
    images: np.ndarray | torch.Tensor | Sequence[np.ndarray],
    lights: np.ndarray | torch.Tensor,
    *,
    bit_depth: int = 8,
    names: Sequence[str] | None = None,
    lights_format: str = "cartesian",
) -> Path:
    """Write ``images [L, H, W, 3]`` and their light directions ``lights [L, 3]`` to ``folder``.

    Images may be float in [0, 1] (clipped, quantised to ``bit_depth``) or ``uint8``/``uint16``.
    ``names`` defaults to ``light_0000.png`` ...; given names must sort in light order, since
    loaders pair images and lights by sorted file name. Writes ``lights.txt`` with a header in
    ``lights_format`` (``cartesian``, ``spherical`` or ``spherical-deg``). Returns the folder.
    """
    folder = Path(folder)
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu().numpy()
    lights = lights.detach().cpu().numpy() if isinstance(lights, torch.Tensor) else np.asarray(lights, dtype=np.float64)
    n = len(images)
    if lights.ndim != 2 or lights.shape[1] != 3:
        raise DataError(f"lights must have shape [L, 3], got {list(lights.shape)}")
    if len(lights) != n:
        raise DataError(f"{n} images but {len(lights)} light directions")
    if n == 0:
        raise DataError("a dataset needs at least one image")
    if names is None:
        names = default_names(n)
    names = list(names)
    if len(names) != n:
        raise DataError(f"{n} images but {len(names)} names")
    if names != sorted(names, key=image_order):
        raise DataError("image names must sort in light order (loaders pair images and lights by name, numbers by value)")
    if len(set(names)) != n:
        raise DataError("image names repeat")
    folder.mkdir(parents=True, exist_ok=True)
    for name, img in zip(names, images):
        write_image(folder / name, np.asarray(img), bit_depth=bit_depth)
    write_lights_file(folder / "lights.txt", lights, fmt=lights_format)
    return folder
