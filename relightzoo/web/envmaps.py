"""Built-in environment maps for the viewer's picker, made on the fly (no files shipped).

Each map is a small equirectangular radiance array (``[32, 64, 3]``, the axes of
:mod:`relightzoo.envmap`) reduced to directional lights with
:func:`relightzoo.envmap.envmap_to_lights`, the same reduction ``relightzoo relight
--envmap`` uses, so the viewer's picture under a map is the one that command renders. User
maps (``relightzoo view --envmap FILE``) go through the same path.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..envmap import envmap_directions, envmap_to_lights, load_envmap

__all__ = ["ENVMAP_NAMES", "ViewerEnvmap", "builtin_envmap", "viewer_envmap", "VIEWER_ENVMAP_K"]

VIEWER_ENVMAP_K = 64
"""Directional lights each map is reduced to for the viewer."""

_H, _W = 32, 64


def _lobe(dirs: np.ndarray, polar_deg: float, azimuth_deg: float, width_deg: float) -> np.ndarray:
    """A smooth bump of radiance (peak 1) around one direction, ``width_deg`` wide."""
    p, a = math.radians(polar_deg), math.radians(azimuth_deg)
    centre = np.array([math.sin(p) * math.cos(a), math.sin(p) * math.sin(a), math.cos(p)])
    cos = np.clip(dirs @ centre, -1.0, 1.0)
    return np.exp(-((np.degrees(np.arccos(cos)) / width_deg) ** 2))


def builtin_envmap(name: str) -> np.ndarray:
    """A built-in map ``[32, 64, 3]`` by name (see :data:`ENVMAP_NAMES`)."""
    dirs = envmap_directions(_H, _W)
    z = dirs[..., 2:3]
    if name == "white sky":
        return np.ones((_H, _W, 3), dtype=np.float32)
    if name == "overcast":
        return (0.35 + 0.65 * np.clip(z, 0, 1) * np.ones(3)).astype(np.float32)
    if name == "sunset":
        sky = np.array([0.25, 0.35, 0.6]) * (0.3 + 0.7 * np.clip(z, 0, 1))
        sun = _lobe(dirs, 75, 0, 6)[..., None] * np.array([40.0, 22.0, 8.0])
        return (sky + sun).astype(np.float32)
    if name == "studio":
        key = _lobe(dirs, 40, -45, 12)[..., None] * np.array([12.0, 11.0, 10.0])
        fill = _lobe(dirs, 60, 120, 20)[..., None] * np.array([2.0, 2.5, 3.0])
        return (key + fill + 0.02).astype(np.float32)
    raise KeyError(name)


ENVMAP_NAMES = ("white sky", "overcast", "sunset", "studio")
"""The built-in maps, in the order the picker lists them."""


@dataclass(frozen=True)
class ViewerEnvmap:
    """A map as the viewer uses it: its reduced lights, the exposure that lights a surface
    facing up like a white sky of radiance 1 (the picker's default), and a thumbnail PNG."""

    name: str
    dirs: np.ndarray
    weights: np.ndarray
    auto_exposure: float
    thumbnail_png: bytes


def viewer_envmap(name: str, source: np.ndarray | str | Path | None = None) -> ViewerEnvmap:
    """Reduce a built-in map (``source`` None) or a map file/array to a :class:`ViewerEnvmap`."""
    env = builtin_envmap(name) if source is None else (load_envmap(source) if isinstance(source, (str, Path)) else source)
    dirs, weights = envmap_to_lights(env, VIEWER_ENVMAP_K)
    luminance = weights @ np.array([0.2126, 0.7152, 0.0722])
    irradiance = float(luminance @ np.maximum(dirs[:, 2], 0.0))
    exposure = math.pi / irradiance if irradiance > 0 else 1.0
    return ViewerEnvmap(name, dirs, weights, exposure, _thumbnail(env))


def _thumbnail(env: np.ndarray) -> bytes:
    """The map's upper half, tone-mapped to 8 bits, as a PNG (64 x 16)."""
    from PIL import Image

    from ..util.images import to_uint8

    sky = env[: env.shape[0] // 2].astype(np.float64)
    mapped = sky / (1.0 + sky)
    img = Image.fromarray(to_uint8(np.clip(mapped, 0, 1) ** (1 / 2.2))).resize((64, 16))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
