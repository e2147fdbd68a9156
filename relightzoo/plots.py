"""Small line plots drawn with Pillow (no matplotlib dependency).

``relightzoo ablate`` draws the training curves of every cell of a grid in one picture;
this module knows nothing of training. :func:`line_plot` takes named series of (x, y)
points and draws them on linear x and linear or logarithmic y axes, with "nice" tick
values (1, 2, 5 times a power of ten), light grid lines, axis labels, a title and a
legend to the right of the plot area, in a palette of twenty distinguishable colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

__all__ = ["Series", "line_plot", "nice_ticks", "log_ticks", "load_font", "PALETTE"]

PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
    (114, 158, 206), (255, 158, 74), (103, 191, 92), (237, 102, 93), (173, 139, 201),
    (168, 120, 110), (237, 151, 202), (162, 162, 162), (205, 204, 93), (109, 204, 218),
)
"""Line colours in order (the "tab10" colours, then lighter variants of them)."""

_BACKGROUND = (255, 255, 255)
_AXIS = (40, 40, 40)
_GRID = (225, 225, 225)
_TEXT = (20, 20, 20)


@dataclass(frozen=True)
class Series:
    """One line: a legend label and its points (``x`` and ``y`` of equal length)."""

    label: str
    x: Sequence[float]
    y: Sequence[float]


def nice_ticks(lo: float, hi: float, count: int = 6) -> list[float]:
    """About ``count`` round tick values (1, 2 or 5 times a power of ten apart) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(1, count - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw * 0.999)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    k = 0
    while first + k * step <= hi + step * 1e-9:
        ticks.append(round(first + k * step, 12))
        k += 1
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis over [lo, hi] (both > 0): every power of ten, plus 2x and
    5x when the range spans under 2.5 decades, so a short range still gets labels."""
    if not (lo > 0 and hi > 0):
        return []
    a, b = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    mults = (1, 2, 5) if math.log10(hi / lo) < 2.5 else (1,)
    ticks = [m * 10.0**e for e in range(a, b + 1) for m in mults]
    return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]


def load_font(size: int) -> ImageFont.ImageFont:
    """Pillow's scalable default font at ``size`` pixels (the fixed bitmap font on old Pillow)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    box = draw.textbbox((0, 0), text, font=font)
    return box[2] - box[0], box[3] - box[1]


def _label(v: float) -> str:
    return f"{v:g}"


def line_plot(
    series: Sequence[Series],
    *,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    log_y: bool = False,
    width: int = 960,
    height: int = 540,
) -> Image.Image:
    """Draw ``series`` as coloured lines on one pair of axes; returns an RGB image.

    With ``log_y`` the y axis is logarithmic and points with y <= 0 are left out. Points
    that are not finite are always left out. An empty plot (no series, or no usable points)
    still draws its axes and says "no data".
    """
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    font = load_font(13)
    small = load_font(12)
    line_h = _text_size(probe, "Ag", font)[1] + 6

    def usable(x: float, y: float) -> bool:
        return math.isfinite(x) and math.isfinite(y) and (y > 0 or not log_y)

    clean = [
        (s.label, [(float(x), float(y)) for x, y in zip(s.x, s.y) if usable(float(x), float(y))]) for s in series
    ]
    points = [p for _, pts in clean for p in pts]
    has_data = bool(points)
    if has_data:
        x_lo, x_hi = min(p[0] for p in points), max(p[0] for p in points)
        y_lo, y_hi = min(p[1] for p in points), max(p[1] for p in points)
    else:
        x_lo, x_hi, y_lo, y_hi = 0.0, 1.0, (0.1 if log_y else 0.0), 1.0
    if x_hi <= x_lo:
        x_hi = x_lo + 1.0
    if log_y:
        if y_hi <= y_lo:
            y_lo, y_hi = y_lo / 2, y_hi * 2
        # Widen to the enclosing round values so the ends of the axis get labels.
        e_lo, e_hi = math.floor(math.log10(y_lo)), math.ceil(math.log10(y_hi))
        y_lo = max((m * 10.0**e_lo for m in (1, 2, 5) if m * 10.0**e_lo <= y_lo), default=10.0**e_lo)
        y_hi = min((m * 10.0 ** (e_hi - 1) for m in (1, 2, 5, 10) if m * 10.0 ** (e_hi - 1) >= y_hi), default=10.0**e_hi)
        y_ticks = log_ticks(y_lo, y_hi)
    else:
        if y_hi <= y_lo:
            y_lo, y_hi = y_lo - 1.0, y_hi + 1.0
        y_ticks = nice_ticks(y_lo, y_hi)
        y_lo, y_hi = min(y_lo, y_ticks[0]), max(y_hi, y_ticks[-1])
    x_ticks = [t for t in nice_ticks(x_lo, x_hi, 7) if x_lo - 1e-9 <= t <= x_hi + 1e-9]

    # Layout: y tick labels on the left, legend on the right.
    tick_w = max([_text_size(probe, _label(t), small)[0] for t in y_ticks] or [10])
    left = 16 + (line_h if ylabel else 0) + tick_w + 8
    legend_items = [(label, PALETTE[i % len(PALETTE)]) for i, (label, _) in enumerate(clean)]
    legend_w = max([_text_size(probe, label, small)[0] for label, _ in legend_items] or [0])
    right = (legend_w + 24 + 28) if legend_items else 20
    top = 12 + (line_h if title else 0) + 8
    bottom = 12 + line_h + (line_h if xlabel else 0)
    width = max(width, left + right + 200)
    height = max(height, top + bottom + 150, top + len(legend_items) * line_h + 20)
    x0, y0, x1, y1 = left, top, width - right, height - bottom

    def px(x: float) -> float:
        return x0 + (x - x_lo) / (x_hi - x_lo) * (x1 - x0)

    def py(y: float) -> float:
        if log_y:
            f = (math.log10(y) - math.log10(y_lo)) / (math.log10(y_hi) - math.log10(y_lo))
        else:
            f = (y - y_lo) / (y_hi - y_lo)
        return y1 - f * (y1 - y0)

    img = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(img)
    if title:
        tw = _text_size(draw, title, font)[0]
        draw.text(((x0 + x1 - tw) / 2, 12), title, fill=_TEXT, font=font)
    for t in y_ticks:
        y = py(t)
        draw.line([(x0, y), (x1, y)], fill=_GRID)
        draw.line([(x0 - 4, y), (x0, y)], fill=_AXIS)
        w, h = _text_size(draw, _label(t), small)
        draw.text((x0 - 8 - w, y - h / 2 - 2), _label(t), fill=_TEXT, font=small)
    for t in x_ticks:
        x = px(t)
        draw.line([(x, y0), (x, y1)], fill=_GRID)
        draw.line([(x, y1), (x, y1 + 4)], fill=_AXIS)
        w, _ = _text_size(draw, _label(t), small)
        draw.text((x - w / 2, y1 + 6), _label(t), fill=_TEXT, font=small)
    draw.rectangle([x0, y0, x1, y1], outline=_AXIS)
    if xlabel:
        w, _ = _text_size(draw, xlabel, font)
        draw.text(((x0 + x1 - w) / 2, height - 8 - line_h), xlabel, fill=_TEXT, font=font)
    if ylabel:
        w, h = _text_size(draw, ylabel, font)
        strip = Image.new("RGB", (w + 4, h + 6), _BACKGROUND)
        ImageDraw.Draw(strip).text((2, 0), ylabel, fill=_TEXT, font=font)
        rotated = strip.rotate(90, expand=True)
        img.paste(rotated, (10, int((y0 + y1 - rotated.height) / 2)))
    for (label, pts), (_, colour) in zip(clean, legend_items):
        xy = [(px(x), py(y)) for x, y in pts]
        if len(xy) == 1:
            x, y = xy[0]
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
        elif xy:
            draw.line(xy, fill=colour, width=2, joint="curve")
    if not has_data:
        w, h = _text_size(draw, "no data", font)
        draw.text(((x0 + x1 - w) / 2, (y0 + y1 - h) / 2), "no data", fill=_TEXT, font=font)
    ly = y0 + 4
    for label, colour in legend_items:
        lx = x1 + 14
        draw.line([(lx, ly + line_h / 2), (lx + 20, ly + line_h / 2)], fill=colour, width=3)
        draw.text((lx + 26, ly + 1), label, fill=_TEXT, font=small)
        ly += line_h
    return img
