"""Pictures of where a dataset's lights are: a text plot and a PNG.

Both show the upper hemisphere from above in a polar (azimuthal equidistant) projection:
the pole (light straight above) at the centre, the horizon on the rim, +x to the right and
+y up, so a light's distance from the centre is its polar angle.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..lights import cartesian_to_spherical

__all__ = ["text_plot", "png_plot"]


def _project(dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) in the unit disc: u right (+x), v up (+y), radius = polar / 90 degrees."""
    sph = cartesian_to_spherical(np.asarray(dirs, dtype=np.float64))
    r = np.clip(sph[:, 0] / (math.pi / 2), 0.0, 1.05)
    return r * np.cos(sph[:, 1]), r * np.sin(sph[:, 1])


def text_plot(dirs: np.ndarray | torch.Tensor, rows: int = 21, cols: int = 41) -> str:
    """A character picture of the lights seen from above.

    ``.`` marks the horizon (polar 90 degrees), ``+`` the pole; a cell holding one light is
    ``o``, two to four ``O``, more ``@``. Character cells are about twice as tall as wide,
    hence the default 21 x 41 grid for a round disc.
    """
    if isinstance(dirs, torch.Tensor):
        dirs = dirs.detach().cpu().numpy()
    grid = [[" "] * cols for _ in range(rows)]
    cy, cx = (rows - 1) / 2, (cols - 1) / 2
    for k in range(720):  # the horizon circle
        a = 2 * math.pi * k / 720
        grid[round(cy - math.sin(a) * cy)][round(cx + math.cos(a) * cx)] = "."
    grid[round(cy)][round(cx)] = "+"
    counts = np.zeros((rows, cols), dtype=np.int64)
    if len(dirs):
        u, v = _project(dirs)
        r_idx = np.clip(np.round(cy - v * cy).astype(int), 0, rows - 1)
        c_idx = np.clip(np.round(cx + u * cx).astype(int), 0, cols - 1)
        np.add.at(counts, (r_idx, c_idx), 1)
    for r in range(rows):
        for c in range(cols):
            n = counts[r, c]
            if n:
                grid[r][c] = "o" if n == 1 else ("O" if n <= 4 else "@")
    lines = ["".join(row).rstrip() for row in grid]
    pad = " " * int(cx)
    lines.insert(0, pad + "+y")
    lines[1 + round(cy)] = lines[1 + round(cy)].ljust(cols) + " +x"
    lines.append("centre = pole (polar 0), rim = horizon (polar 90 deg); o 1 light, O 2-4, @ 5+")
    return "\n".join(lines)


def png_plot(
    path: str | Path,
    dirs: np.ndarray | torch.Tensor,
    thumbnails: list[tuple[int, np.ndarray]] | None = None,
    title: str = "",
    size: int = 420,
) -> Path:
    """Save a picture of the lights (and optionally a strip of thumbnails) as PNG.

    ``thumbnails`` are ``(light index, float image [H, W, 3] in [0, 1])``; each one's light is
    ringed on the map in the colour of its frame.
    """
    from PIL import Image, ImageDraw

    if isinstance(dirs, torch.Tensor):
        dirs = dirs.detach().cpu().numpy()
    thumbnails = thumbnails or []
    pad, strip = 24, 0
    thumb = 120
    if thumbnails:
        strip = thumb + 24
    width = max(size, len(thumbnails) * (thumb + 10) + 10)
    canvas = Image.new("RGB", (width, size + strip + (20 if title else 0)), "white")
    draw = ImageDraw.Draw(canvas)
    top = 20 if title else 0
    if title:
        draw.text((8, 4), title, fill="black")
    cx, cy, rad = width / 2, top + size / 2, size / 2 - pad
    for deg in (30, 60, 90):  # polar rings
        r = rad * deg / 90
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(150, 150, 150) if deg == 90 else (215, 215, 215))
        draw.text((cx + r * 0.707 + 2, cy - r * 0.707 - 12), f"{deg}", fill=(120, 120, 120))
    for deg in range(0, 360, 45):  # azimuth spokes
        a = math.radians(deg)
        draw.line([cx, cy, cx + rad * math.cos(a), cy - rad * math.sin(a)], fill=(230, 230, 230))
    draw.text((cx + rad + 4, cy - 6), "+x", fill="black")
    draw.text((cx - 6, cy - rad - 16), "+y", fill="black")
    if len(dirs):
        u, v = _project(dirs)
        dot = max(1.5, min(4.0, 60 / math.sqrt(len(dirs))))
        for x, y in zip(cx + u * rad, cy - v * rad):
            draw.ellipse([x - dot, y - dot, x + dot, y + dot], fill=(40, 70, 160))
    palette = [(220, 50, 40), (30, 160, 60), (230, 140, 0), (150, 40, 180), (0, 150, 160), (200, 0, 120)]
    for k, (i, img) in enumerate(thumbnails):
        colour = palette[k % len(palette)]
        u, v = _project(dirs[i : i + 1])
        x, y = cx + u[0] * rad, cy - v[0] * rad
        draw.ellipse([x - 7, y - 7, x + 7, y + 7], outline=colour, width=2)
        arr = (np.clip(np.asarray(img), 0, 1) * 255 + 0.5).astype(np.uint8)
        im = Image.fromarray(arr)
        scale = thumb / max(im.width, im.height)
        resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), resample)
        ox, oy = 10 + k * (thumb + 10), top + size + 4
        canvas.paste(im, (ox, oy))
        draw.rectangle([ox - 2, oy - 2, ox + im.width + 1, oy + im.height + 1], outline=colour, width=2)
        draw.text((ox, oy + im.height + 4), f"light {i}", fill=colour)
    path = Path(path)
    from ..util.atomic import write_image_atomic

    return write_image_atomic(path, canvas)
