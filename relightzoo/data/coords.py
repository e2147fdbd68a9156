"""Pixel coordinates: the (x, y) half of a model's input.

Pixels are addressed by their centres, normalised to [-1, 1] with x to the right and y down,
so a model trained at one resolution renders at any other.
"""

from __future__ import annotations

import torch

__all__ = ["pixel_grid", "pixel_coordinates"]


def pixel_coordinates(
    ix: torch.Tensor, iy: torch.Tensor, height: int, width: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Normalised coordinates ``[N, 2]`` (x, y) of integer pixel columns ``ix`` and rows ``iy``."""
    x = (ix.to(dtype) + 0.5) * (2.0 / width) - 1.0
    y = (iy.to(dtype) + 0.5) * (2.0 / height) - 1.0
    return torch.stack([x, y], -1)


def pixel_grid(
    height: int,
    width: int,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    rows: slice | None = None,
) -> torch.Tensor:
    """Coordinates ``[h * W, 2]`` of every pixel centre in row-major order (row by row).

    ``rows`` restricts the grid to a band of rows, which is how large renders are chunked.
    """
    r = range(height)[rows] if rows is not None else range(height)
    iy = torch.arange(r.start, r.stop, r.step, device=device)
    ix = torch.arange(width, device=device)
    gy, gx = torch.meshgrid(iy, ix, indexing="ij")
    return pixel_coordinates(gx.reshape(-1), gy.reshape(-1), height, width, dtype)
