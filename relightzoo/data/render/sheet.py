"""Contact sheets: a few lights of an OLAT dataset side by side, labelled with polar/azimuth.

Used to make ``docs/images/demo_lights.png``; rerun it with::

    python -m relightzoo.data.render.sheet demo docs/images/demo_lights.png

Lights are picked along a spiral from the pole down to 75 degrees, so the sheet shows how
shadows and highlights move. Images are shown as stored (linear values, no tone curve).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ...atomic import atomic_path
from ...lights import cartesian_to_spherical, spherical_to_cartesian

__all__ = ["spread_lights", "contact_sheet", "main"]


def spread_lights(lights: np.ndarray, count: int, max_polar: float = math.radians(75.0)) -> np.ndarray:
    """Indices of ``count`` lights that climb from the pole to ``max_polar`` while turning in
    azimuth (a golden-angle spiral), nearest first; lights near the horizon, which leave most of
    a scene dark, are left out so the sheet shows shadows and highlights moving."""
    lights = np.asarray(lights, dtype=np.float64)
    count = min(count, len(lights))
    chosen: list[int] = []
    for k in range(count):
        polar = max_polar * k / max(count - 1, 1)
        azimuth = math.radians((k * 137.5) % 360.0 - 180.0)
        target = spherical_to_cartesian(np.array([polar, azimuth]))
        for i in np.argsort(-(lights @ target), kind="stable"):
            if int(i) not in chosen:
                chosen.append(int(i))
                break
    return np.asarray(chosen, dtype=np.int64)


def contact_sheet(
    images: np.ndarray,
    lights: np.ndarray,
    indices: np.ndarray | list[int],
    *,
    columns: int = 4,
    scale: int = 3,
) -> Image.Image:
    """A grid of ``images[indices]`` (float ``[L, H, W, 3]`` in [0, 1]) enlarged ``scale`` times,
    each labelled with its index, polar angle and azimuth in degrees."""
    indices = [int(i) for i in indices]
    h, w = images.shape[1] * scale, images.shape[2] * scale
    label_h, pad = 16, 4
    rows = math.ceil(len(indices) / columns)
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    sph = np.degrees(cartesian_to_spherical(np.asarray(lights, dtype=np.float64)[indices]))
    for k, i in enumerate(indices):
        r, c = divmod(k, columns)
        x, y = pad + c * (w + pad), pad + r * (h + label_h + pad)
        tile = Image.fromarray((np.clip(images[i], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
        sheet.paste(tile.resize((w, h), Image.NEAREST), (x, y))
        draw.text((x + 2, y + h + 2), f"#{i} polar {sph[k, 0]:.0f}  az {sph[k, 1]:.0f}", fill=(0, 0, 0))
    return sheet


def main(argv: list[str] | None = None) -> None:
    """Command line: ``python -m relightzoo.data.render.sheet DATA OUT.png [--count N]``."""
    from .. import load_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="dataset folder or built-in scene name (demo)")
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--count", type=int, default=8, help="how many lights to show (default 8)")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--scale", type=int, default=3, help="pixel enlargement (default 3)")
    args = parser.parse_args(argv)
    ds = load_dataset(args.data)
    lights = ds.lights.numpy()
    idx = spread_lights(lights, args.count)
    with atomic_path(args.out) as tmp:
        contact_sheet(ds.images().numpy(), lights, idx, columns=args.columns, scale=args.scale).save(tmp, format="PNG")
    print(f"wrote {args.out} ({len(idx)} lights of {len(ds)})")


if __name__ == "__main__":
    main()
