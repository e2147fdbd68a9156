"""A few lights of an OLAT dataset side by side, labelled with polar angle and azimuth.

Made with ``relightzoo data sheet DATA OUT.png`` (``docs/images/demo_lights.png`` is
``relightzoo data sheet demo docs/images/demo_lights.png``). Lights are picked along a
spiral from the pole down to 75 degrees (:func:`spread_lights`), so the sheet shows how
shadows and highlights move; images are shown as stored (linear values, no tone curve) and
drawn by the package's one contact-sheet painter (:func:`relightzoo.sheets.contact_sheet`).
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ...lights import cartesian_to_spherical, spherical_to_cartesian
from ...sheets import SheetRow, contact_sheet

__all__ = ["spread_lights", "lights_sheet"]


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


def lights_sheet(images: np.ndarray, lights: np.ndarray, indices: np.ndarray | list[int], *, columns: int = 4, scale: int = 3) -> Image.Image:
    """A grid of ``images[indices]`` (float ``[L, H, W, 3]`` in [0, 1]), ``columns`` a row,
    enlarged ``scale`` times, each captioned with its index, polar angle and azimuth in degrees."""
    indices = [int(i) for i in indices]
    columns = max(1, min(int(columns), len(indices)))
    sph = np.degrees(cartesian_to_spherical(np.asarray(lights, dtype=np.float64)[indices]))
    blank = np.zeros_like(images[indices[0]])
    rows = []
    for start in range(0, len(indices), columns):
        part = list(range(start, min(start + columns, len(indices))))
        pad = columns - len(part)
        rows.append(
            SheetRow(
                images=[images[indices[k]] for k in part] + [blank] * pad,
                captions=[f"#{indices[k]} polar {sph[k, 0]:.0f}  az {sph[k, 1]:.0f}" for k in part] + [""] * pad,
            )
        )
    h, w = images.shape[1:3]
    return contact_sheet(rows, [""] * columns, tile=max(h, w) * max(1, int(scale)))
