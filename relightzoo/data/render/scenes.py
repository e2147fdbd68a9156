"""The named scenes ``relightzoo data render`` can make OLAT datasets of.

Each scene is built in code from Mitsuba 3's built-in shapes (sphere, cube, rectangle,
cylinder, disk) and BSDFs (diffuse, roughconductor, roughplastic), so no asset file ships
with the package. World space is z up with the ground plane at z = 0, matching relightzoo's
light convention (a light is a unit vector toward it over the upper hemisphere). A fixed
camera looks obliquely down at the scene, so every light on the upper hemisphere lights
part of what it sees, and a checkerboard floor catches the shadows.

Rough (not polished) metals are used on purpose: a polished mirror lit by a directional light
makes caustics a path tracer can only find by chance, which makes ground truth noisy.

A scene is plain data (:class:`SceneSpec`) plus a ``shapes`` function that takes Mitsuba's
``ScalarTransform4f`` and returns the shapes as a Mitsuba dict; the renderer adds the camera,
integrator and light. Nothing here imports mitsuba.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import DataError

__all__ = ["SceneSpec", "SCENES", "get_scene", "scene_names"]


@dataclass(frozen=True)
class SceneSpec:
    """A named scene: what it shows, its camera and the defaults that make it clean.

    ``spp`` and ``max_depth`` are chosen per scene so that two renders of one light with
    different seeds agree to at least 40 dB PSNR at 64 x 64: depth 3 (one bounce of
    interreflection) with multi-jittered sampling measured, worst of 8 lights spread over the
    hemisphere, spheres 44.6 dB at 256 spp, blocks 43.0 at 144, corner 45.2 at 256, still-life
    43.9 at 144. Direct light only (``--max-depth 2``) passes at 64 spp (spheres: 46.7 dB).
    ``exposure`` scales the light's irradiance: at 1, a white Lambertian surface facing the light
    has radiance 1, so with albedos up to about 0.8 only highlights clip.
    """

    name: str
    description: str
    shapes: Callable[[Any], dict]
    camera_origin: tuple[float, float, float]
    camera_target: tuple[float, float, float]
    fov: float = 40.0
    spp: int = 144
    max_depth: int = 3
    exposure: float = 1.0


# --- building blocks -------------------------------------------------------------------------


def _rgb(r: float, g: float, b: float) -> dict:
    return {"type": "rgb", "value": [r, g, b]}


def _diffuse(r: float, g: float, b: float) -> dict:
    return {"type": "diffuse", "reflectance": _rgb(r, g, b)}


def _rough_metal(material: str, alpha: float) -> dict:
    return {"type": "roughconductor", "material": material, "alpha": alpha}


def _rough_plastic(r: float, g: float, b: float, alpha: float = 0.15) -> dict:
    return {"type": "roughplastic", "diffuse_reflectance": _rgb(r, g, b), "alpha": alpha}


def _floor(T: Any, check: float = 0.25, dark: float = 0.18, light: float = 0.62) -> dict:
    """A large checkerboard ground plane at z = 0 with squares ``check`` units wide."""
    half = 8.0
    k = half / check  # Mitsuba's checkerboard has 2 x 2 squares per unit of uv
    return {
        "type": "rectangle",
        "to_world": T().scale([half, half, 1.0]),
        "bsdf": {
            "type": "diffuse",
            "reflectance": {
                "type": "checkerboard",
                "color0": _rgb(dark, dark, dark * 1.05),
                "color1": _rgb(light, light * 0.97, light * 0.92),
                "to_uv": T().scale([k, k, 1.0]),
            },
        },
    }


def _sphere(center: tuple[float, float, float], radius: float, bsdf: dict) -> dict:
    return {"type": "sphere", "center": list(center), "radius": radius, "bsdf": bsdf}


def _box(T: Any, center: tuple[float, float, float], size: tuple[float, float, float], bsdf: dict, rot_z: float = 0.0) -> dict:
    """An axis-aligned box of full extents ``size`` (rotated ``rot_z`` degrees about z)."""
    tf = T().translate(list(center)).rotate([0, 0, 1], rot_z).scale([s / 2 for s in size])
    return {"type": "cube", "to_world": tf, "bsdf": bsdf}


def _cylinder(T: Any, base: tuple[float, float], radius: float, height: float, bsdf: dict, cap: bool = True) -> dict:
    """A closed upright cylinder (open tube plus a disk lid) standing on the floor."""
    x, y = base
    shapes = {
        "tube": {
            "type": "cylinder",
            "p0": [x, y, 0.0],
            "p1": [x, y, height],
            "radius": radius,
            "bsdf": bsdf,
        }
    }
    if cap:
        shapes["lid"] = {
            "type": "disk",
            "to_world": T().translate([x, y, height]).scale([radius, radius, 1.0]),
            "bsdf": bsdf,
        }
    return shapes


def _flatten(prefix: str, parts: dict) -> dict:
    return {f"{prefix}_{k}": v for k, v in parts.items()}


# --- the scenes ------------------------------------------------------------------------------


def _spheres(T: Any) -> dict:
    return {
        "floor": _floor(T),
        "red": _sphere((-0.62, 0.05, 0.3), 0.3, _diffuse(0.75, 0.12, 0.08)),
        "gold": _sphere((0.12, 0.4, 0.38), 0.38, _rough_metal("Au", 0.3)),
        "blue": _sphere((0.62, -0.28, 0.26), 0.26, _rough_plastic(0.1, 0.22, 0.7, 0.2)),
        "white": _sphere((-0.1, -0.45, 0.16), 0.16, _diffuse(0.8, 0.8, 0.78)),
    }


def _blocks(T: Any) -> dict:
    stone = _diffuse(0.7, 0.66, 0.58)
    shapes = {
        "floor": _floor(T),
        # a staircase: each step shadows the one below it
        "step1": _box(T, (-0.55, 0.2, 0.1), (0.6, 0.9, 0.2), stone),
        "step2": _box(T, (-0.55, 0.35, 0.3), (0.6, 0.6, 0.2), _diffuse(0.55, 0.6, 0.72)),
        "step3": _box(T, (-0.55, 0.5, 0.5), (0.6, 0.3, 0.2), stone),
        # an arch: light reaches under the lintel only from some directions
        "pillar_l": _box(T, (0.22, 0.35, 0.25), (0.14, 0.3, 0.5), _diffuse(0.72, 0.35, 0.12)),
        "pillar_r": _box(T, (0.78, 0.35, 0.25), (0.14, 0.3, 0.5), _diffuse(0.72, 0.35, 0.12)),
        "lintel": _box(T, (0.5, 0.35, 0.56), (0.8, 0.34, 0.12), _rough_plastic(0.7, 0.7, 0.66, 0.2)),
        "under": _sphere((0.5, 0.35, 0.13), 0.13, _rough_metal("Cu", 0.3)),
        "cube": _box(T, (0.25, -0.45, 0.15), (0.3, 0.3, 0.3), _rough_plastic(0.12, 0.5, 0.18, 0.2), rot_z=30),
    }
    shapes.update(_flatten("can", _cylinder(T, (-0.35, -0.4), 0.16, 0.42, _rough_metal("Al", 0.3))))
    return shapes


def _corner(T: Any) -> dict:
    """Two coloured walls meeting behind the objects: a box corner that shadows and tints the floor."""
    shapes = {
        "floor": _floor(T),
        "back": _box(T, (0.0, 0.95, 0.3), (2.4, 0.1, 0.6), _diffuse(0.7, 0.12, 0.1)),
        "left": _box(T, (-0.98, 0.0, 0.3), (0.1, 2.0, 0.6), _diffuse(0.12, 0.55, 0.18)),
        "metal": _sphere((-0.55, 0.45, 0.3), 0.3, _rough_metal("Al", 0.3)),
        "plastic": _box(T, (0.35, 0.45, 0.2), (0.4, 0.4, 0.4), _rough_plastic(0.8, 0.78, 0.7, 0.2), rot_z=20),
        "ball": _sphere((0.45, -0.3, 0.22), 0.22, _rough_plastic(0.12, 0.25, 0.75, 0.2)),
    }
    shapes.update(_flatten("can", _cylinder(T, (-0.35, -0.35), 0.15, 0.35, _rough_metal("Cu", 0.3))))
    return shapes


def _still_life(T: Any) -> dict:
    """Everything at once: an open box (non-convex), metals, plastics and a staircase."""
    wall = _diffuse(0.72, 0.68, 0.6)
    shapes = {
        "floor": _floor(T),
        # an open-topped box: its walls shadow its inside and light bounces between them
        "box_back": _box(T, (-0.45, 0.75, 0.2), (0.8, 0.06, 0.4), wall),
        "box_front": _box(T, (-0.45, 0.05, 0.12), (0.8, 0.06, 0.24), wall),
        "box_left": _box(T, (-0.82, 0.4, 0.16), (0.06, 0.76, 0.32), _diffuse(0.7, 0.15, 0.1)),
        "box_right": _box(T, (-0.08, 0.4, 0.16), (0.06, 0.76, 0.32), _diffuse(0.7, 0.15, 0.1)),
        "inside": _sphere((-0.45, 0.4, 0.2), 0.2, _rough_metal("Au", 0.3)),
        "step1": _box(T, (0.5, 0.55, 0.1), (0.6, 0.5, 0.2), _diffuse(0.35, 0.45, 0.7)),
        "step2": _box(T, (0.5, 0.68, 0.3), (0.6, 0.25, 0.2), _diffuse(0.35, 0.45, 0.7)),
        "ball": _sphere((0.45, -0.35, 0.24), 0.24, _rough_plastic(0.1, 0.45, 0.15, 0.2)),
        "pearl": _sphere((0.05, -0.55, 0.12), 0.12, _rough_plastic(0.85, 0.85, 0.8, 0.2)),
    }
    shapes.update(_flatten("can", _cylinder(T, (-0.5, -0.42), 0.15, 0.4, _rough_metal("Cu", 0.3))))
    return shapes


_CAMERA = dict(camera_origin=(0.0, -2.9, 2.7), camera_target=(0.0, 0.08, 0.15), fov=31.0)

SCENES: dict[str, SceneSpec] = {
    s.name: s
    for s in (
        SceneSpec(
            "spheres",
            "four spheres (diffuse, rough gold, rough plastic) on a checkerboard: soft terminators, cast shadows, highlights",
            _spheres,
            spp=256,
            **_CAMERA,
        ),
        SceneSpec(
            "blocks",
            "a staircase, an arch over a copper ball, a plastic cube and a metal can: blocks that shadow each other",
            _blocks,
            spp=144,
            **_CAMERA,
        ),
        SceneSpec(
            "corner",
            "a red and a green wall meeting behind metal, plastic and copper objects: wall shadows and colour bleeding",
            _corner,
            spp=256,
            **{**_CAMERA, "fov": 36.0},
        ),
        SceneSpec(
            "still-life",
            "an open box holding a gold ball, a staircase, plastic balls and a copper can: every effect at once",
            _still_life,
            spp=144,
            **_CAMERA,
        ),
    )
}
"""Every named scene, by name."""


def scene_names() -> list[str]:
    """The names of the built-in scenes, in listing order."""
    return list(SCENES)


def get_scene(name: str) -> SceneSpec:
    """The scene called ``name``; an unknown name is a one-line error naming the nearest one."""
    try:
        return SCENES[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, SCENES, n=1, cutoff=0.0)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise DataError(f"unknown scene {name!r}; {hint}(scenes: {', '.join(SCENES)}; see --list)")

