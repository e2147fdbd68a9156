"""A small analytic OLAT scene: Lambertian bumps on a plane, rendered for any lights.

Tests, docs and quick experiments need light-stage data that is physically meaningful (the
image under each light is what a matte surface would look like) but costs nothing to make.
:func:`lambertian_scene` renders a heightfield of a few smooth bumps with a spatially varying
albedo under directional lights: ``albedo * (ambient + (1 - ambient) * max(0, n . l))``.
No shadows or interreflection, so the scene is exactly linear in the light and smooth in
both pixel and light direction, which is what a coordinate network should learn easily.

Frame: the camera looks straight down the z axis; world x runs to the right of the image
and world y up the image (image rows go down), so a light at +y lights the upper slopes.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["lambertian_scene", "scene_normals_albedo"]


def scene_normals_albedo(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit surface normals ``[H, W, 3]`` and RGB albedo ``[H, W, 3]`` of the seeded scene."""
    rng = np.random.default_rng(seed)
    ys = 1.0 - (np.arange(height) + 0.5) * (2.0 / height)  # world y, up the image
    xs = (np.arange(width) + 0.5) * (2.0 / width) - 1.0
    gx, gy = np.meshgrid(xs, ys, indexing="xy")
    dh_dx = np.zeros_like(gx)
    dh_dy = np.zeros_like(gx)
    for _ in range(4):  # a few Gaussian bumps and dents
        cx, cy = rng.uniform(-0.6, 0.6, size=2)
        s = rng.uniform(0.2, 0.4)
        a = rng.uniform(0.3, 0.6) * rng.choice([-1.0, 1.0], p=[0.25, 0.75])
        g = a * np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * s * s))
        dh_dx += -g * (gx - cx) / (s * s)
        dh_dy += -g * (gy - cy) / (s * s)
    normals = np.stack([-dh_dx, -dh_dy, np.ones_like(gx)], -1)
    normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
    # albedo: a smooth colour gradient with a few soft stripes, in [0.15, 0.9]
    phase = rng.uniform(0, 2 * np.pi, size=3)
    freq = rng.uniform(1.0, 3.0, size=3)
    stripes = 0.5 + 0.5 * np.sin(freq * (gx[..., None] * 2.0 + gy[..., None]) * np.pi + phase)
    base = np.array([0.8, 0.6, 0.45]) + rng.uniform(-0.1, 0.1, size=3)
    albedo = np.clip(0.15 + 0.75 * (0.6 * base + 0.4 * stripes), 0.15, 0.9)
    return normals.astype(np.float64), albedo.astype(np.float64)


def lambertian_scene(
    lights: np.ndarray | torch.Tensor,
    height: int,
    width: int,
    seed: int = 0,
    *,
    ambient: float = 0.05,
) -> np.ndarray:
    """Render the seeded bump scene under each light: float32 ``[L, H, W, 3]`` in [0, 1].

    ``lights`` are unit directions ``[L, 3]`` toward the light (z up). The same ``seed``
    gives the same geometry and albedo, so images for new lights can be rendered later as
    exact ground truth for a held-out light.
    """
    dirs = lights.detach().cpu().numpy() if isinstance(lights, torch.Tensor) else np.asarray(lights)
    dirs = dirs.astype(np.float64).reshape(-1, 3)
    normals, albedo = scene_normals_albedo(height, width, seed)
    ndotl = np.clip(np.einsum("hwc,lc->lhw", normals, dirs), 0.0, None)
    shade = ambient + (1.0 - ambient) * ndotl
    return np.clip(albedo[None] * shade[..., None], 0.0, 1.0).astype(np.float32)
