"""relightzoo: a plugin-based model zoo for image-based relighting.

Learn the function (pixel x, y, light direction) -> RGB from one-light-at-a-time photographs
and render the scene under lights, environment maps and resolutions no camera saw.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
