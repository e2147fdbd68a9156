"""relightzoo-lambert: per-pixel Lambertian photometric stereo as a relightzoo model plugin."""

from .plugin import LambertianModel

__all__ = ["LambertianModel"]
