"""Contact sheets: a grid of images, one row per light, drawn with Pillow.

Evaluation writes one (ground truth | model | blend | error) row per chosen test light so a
reader sees at a glance where a model fails. Small images (a 64 x 64 light stage) are
upscaled by an integer factor with nearest-neighbour sampling so single pixels stay visible
and nothing is smoothed away; large ones are shrunk to fit a tile.

This module draws only: it takes images that are already rendered and knows nothing of
models or datasets (:func:`relightzoo.evaluate.evaluation_sheet` feeds it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .plots import load_font
from .util.images import to_uint8

__all__ = ["SheetRow", "contact_sheet", "error_heatmap", "spread_indices", "ERROR_VMAX", "TILE"]

TILE = 256
"""Target side, in pixels, of one image tile on a sheet."""

ERROR_VMAX = 0.25
"""Mean absolute error (over channels) drawn at the top of the heat-map colour scale."""

# A perceptually ordered dark-to-bright colour scale (anchors of matplotlib's "inferno").
_HEAT = np.array(
    [
        [0.0, 0.0, 4.0],
        [40.0, 11.0, 84.0],
        [101.0, 21.0, 110.0],
        [159.0, 42.0, 99.0],
        [212.0, 72.0, 66.0],
        [245.0, 125.0, 21.0],
        [250.0, 193.0, 39.0],
        [252.0, 255.0, 164.0],
    ]
)

_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)
_PAD = 6


@dataclass
class SheetRow:
    """One row of a contact sheet: images ``[H, W, 3]`` in [0, 1] (float) and a caption."""

    images: Sequence[np.ndarray | torch.Tensor]
    label: str = ""
    captions: Sequence[str] = field(default_factory=list)
    """Optional short text under each image (e.g. its PSNR); empty strings for none."""


def error_heatmap(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, *, vmax: float = ERROR_VMAX) -> np.ndarray:
    """Per-pixel mean absolute error (over channels) as an RGB heat map ``[H, W, 3]`` uint8.

    The scale is fixed (0 black, ``vmax`` and above bright yellow) rather than stretched per
    image, so rows and sheets compare with each other.
    """
    p = pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    t = target.detach().cpu().numpy() if isinstance(target, torch.Tensor) else np.asarray(target)
    err = np.abs(p.astype(np.float64) - t.astype(np.float64)).mean(-1)
    u = np.clip(err / vmax, 0.0, 1.0) * (len(_HEAT) - 1)
    lo = np.floor(u).astype(int).clip(0, len(_HEAT) - 2)
    frac = (u - lo)[..., None]
    rgb = _HEAT[lo] * (1.0 - frac) + _HEAT[lo + 1] * frac
    return np.round(rgb).astype(np.uint8)


def spread_indices(dirs: np.ndarray | torch.Tensor, n: int) -> np.ndarray:
    """Positions of ``n`` of the directions ``dirs [L, 3]`` spread from the pole to the horizon.

    The directions are ranked by polar angle and ``n`` evenly spaced ranks are taken, first
    and last included, so a sheet reads from the top of the dome down and shows both the
    lights near the training cap and the extrapolated ones near the horizon (picking the
    mutually farthest lights instead would crowd the horizon). Deterministic.
    """
    d = dirs.detach().cpu().numpy() if isinstance(dirs, torch.Tensor) else np.asarray(dirs, dtype=np.float64)
    n = max(0, min(int(n), len(d)))
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(-d[:, 2], kind="stable")
    ranks = np.unique(np.round(np.linspace(0, len(d) - 1, n)).astype(np.int64))
    return order[ranks].astype(np.int64)


def _tile(img: np.ndarray, tile: int) -> Image.Image:
    """An image scaled to about ``tile`` pixels on its long side: integer nearest-neighbour
    upscaling for small images, box-filtered shrinking for large ones."""
    im = Image.fromarray(to_uint8(img))
    h, w = img.shape[:2]
    long_side = max(h, w)
    if long_side <= tile:
        k = max(1, tile // long_side)
        return im.resize((w * k, h * k), Image.NEAREST)
    s = tile / long_side
    return im.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BOX)


def _text_height(font: ImageFont.ImageFont, draw: ImageDraw.ImageDraw) -> int:
    box = draw.textbbox((0, 0), "Ag", font=font)
    return box[3] - box[1] + 6


def contact_sheet(
    rows: Sequence[SheetRow],
    columns: Sequence[str],
    *,
    title: str = "",
    footer: str = "",
    tile: int = TILE,
) -> Image.Image:
    """Draw ``rows`` of images under column headings ``columns`` as one RGB image.

    Every row must hold one image per column, all of one size. Each row has its ``label``
    above it and optional ``captions`` under each image.
    """
    if not rows:
        raise ValueError("a contact sheet needs at least one row")
    for r in rows:
        if len(r.images) != len(columns):
            raise ValueError(f"a row has {len(r.images)} images for {len(columns)} columns")
    tiles = [[_tile(np.asarray(img.detach().cpu() if isinstance(img, torch.Tensor) else img), tile) for img in r.images] for r in rows]
    tw = max(t.width for row in tiles for t in row)
    th = max(t.height for row in tiles for t in row)
    font = load_font(max(11, min(16, tw // 18)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = _text_height(font, probe)
    has_captions = any(any(c for c in r.captions) for r in rows)
    row_h = line + th + (line if has_captions else 0) + 2 * _PAD
    head_h = _PAD + (line if title else 0) + line + _PAD
    width = _PAD + len(columns) * (tw + _PAD)
    height = head_h + len(rows) * row_h + (line + _PAD if footer else 0) + _PAD
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    y = _PAD
    if title:
        draw.text((_PAD, y), title, fill=_TEXT, font=font)
        y += line
    for c, name in enumerate(columns):
        draw.text((_PAD + c * (tw + _PAD), y), name, fill=_TEXT, font=font)
    y = head_h
    for r, row_tiles in zip(rows, tiles):
        draw.text((_PAD, y), r.label, fill=_TEXT, font=font)
        for c, t in enumerate(row_tiles):
            x = _PAD + c * (tw + _PAD)
            sheet.paste(t, (x, y + line))
            if c < len(r.captions) and r.captions[c]:
                draw.text((x, y + line + th + 1), r.captions[c], fill=_TEXT, font=font)
        y += row_h
    if footer:
        draw.text((_PAD, y), footer, fill=_TEXT, font=font)
    return sheet

