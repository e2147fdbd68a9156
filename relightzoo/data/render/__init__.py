"""Making OLAT datasets with Mitsuba 3: named scenes built in code and the renderer.

``relightzoo data render SCENE OUT`` (``relightzoo/cli/render_cmd.py``) is the command-line
face of this package. mitsuba is optional (``pip install "relightzoo[render]"``); importing
this package does not import it.
"""

from __future__ import annotations

from .mitsuba_renderer import (
    ENCODING,
    SAMPLER,
    VARIANT,
    OLATRenderer,
    RenderError,
    light_seed,
    mitsuba_version,
    render_olat,
    render_with,
    require_mitsuba,
)
from .scenes import SCENES, SceneSpec, get_scene, scene_names

__all__ = [
    "SCENES",
    "SceneSpec",
    "get_scene",
    "scene_names",
    "OLATRenderer",
    "RenderError",
    "render_olat",
    "render_with",
    "light_seed",
    "SAMPLER",
    "require_mitsuba",
    "mitsuba_version",
    "ENCODING",
    "VARIANT",
]
