"""The plugin module named by the ``relightzoo`` entry point: one image model, ``lambertian``.

Photometric stereo (Woodham 1980): under a distant light ``l`` a matte surface with unit
normal ``n`` and albedo ``rho`` shows ``rho * max(0, n . l)``. With three or more lights the
scaled normal ``g = rho n`` of each pixel is the least-squares solution of ``Y_t = g . l_t``
over the lights ``t`` that light it (the luminance ``Y``; observations darker than
``shadow_threshold`` are left out as shadowed), the normal is ``g / |g|``, and each colour
channel's albedo is then its own least-squares fit given the normal. Nothing is trained by
gradient steps: the model is fitted when it receives the training images.

It shows every optional capability an image model may offer: ``trainable = False``,
``needs_images = True`` with ``attach_training_data``, ``data_shaped_buffers`` (the normal
and albedo maps take the images' size), ``render`` at any size, and a one-pass
``relight_envmap`` (the weighted sum of the lights' shadings, unclamped and unscaled).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from relightzoo.errors import PluginError
from relightzoo.zoo import RelightModel, hookimpl

__all__ = ["LambertianModel", "register_models"]

_LUMINANCE = (0.2126, 0.7152, 0.0722)
_ENVMAP_LIGHTS_PER_PASS = 64
"""Environment-map lights shaded at a time (bounds memory at ``64 x H x W`` floats)."""


class LambertianModel(RelightModel):
    """Per-pixel Lambertian photometric stereo: albedo x max(0, n . l), fitted by least squares."""

    trainable = False
    needs_images = True
    data_shaped_buffers = ("normals", "albedo")

    def __init__(self, shadow_threshold: float = 0.02, ridge: float = 1e-6) -> None:
        super().__init__()
        if not (math.isfinite(shadow_threshold) and 0.0 <= shadow_threshold < 1.0):
            raise PluginError(f"model 'lambertian': shadow_threshold must be in [0, 1), got {shadow_threshold}")
        if not (math.isfinite(ridge) and ridge >= 0.0):
            raise PluginError(f"model 'lambertian': ridge must be a number >= 0, got {ridge}")
        self.shadow_threshold = float(shadow_threshold)
        self.ridge = float(ridge)
        self.register_buffer("normals", torch.zeros(0, 0, 3))
        self.register_buffer("albedo", torch.zeros(0, 0, 3))

    # -- fitting --------------------------------------------------------------------------
    @torch.no_grad()
    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Fit normals and albedo to the training images ``[T, H, W, 3]`` lit from ``lights [T, 3]``."""
        images = torch.as_tensor(images)
        lights = torch.as_tensor(lights)
        if images.dim() != 4 or images.shape[-1] != 3:
            raise PluginError(f"model 'lambertian': images must be [T, H, W, 3], got {list(images.shape)}")
        if lights.shape != (images.shape[0], 3):
            raise PluginError(f"model 'lambertian': lights must be [{images.shape[0]}, 3], got {list(lights.shape)}")
        if images.shape[0] < 3:
            raise PluginError(f"model 'lambertian' needs at least 3 training lights, got {images.shape[0]}")
        t, h, w, _ = images.shape
        device = self.normals.device
        obs = images.to(device, torch.float64).reshape(t, h * w, 3)  # [T, P, 3]
        dirs = F.normalize(lights.to(device, torch.float64), dim=-1)  # [T, 3]
        lum = obs @ torch.tensor(_LUMINANCE, dtype=torch.float64, device=device)  # [T, P]
        lit = (lum > self.shadow_threshold).double()  # shadowed observations say nothing about n
        eye = torch.eye(3, dtype=torch.float64, device=device)
        gram = torch.einsum("tp,ti,tj->pij", lit, dirs, dirs) + (self.ridge + 1e-12) * eye
        g = torch.linalg.solve(gram, torch.einsum("tp,ti,tp->pi", lit, dirs, lum))  # [P, 3], rho * n
        length = g.norm(dim=-1, keepdim=True)
        up = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device=device).expand_as(g)
        normals = torch.where(length > 1e-9, g / length.clamp_min(1e-12), up)
        shading = (dirs @ normals.T).clamp_min(0.0)  # [T, P]
        albedo = torch.einsum("tp,tpc->pc", shading, obs) / ((shading * shading).sum(0)[:, None] + self.ridge + 1e-12)
        self.normals = normals.reshape(h, w, 3).float()
        self.albedo = albedo.reshape(h, w, 3).float()

    def _maps(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Normals and albedo at ``height x width`` (bilinear, normals renormalised)."""
        if self.normals.numel() == 0:
            raise PluginError("model 'lambertian' is not fitted; attach_training_data() or load a checkpoint first")
        normals, albedo = self.normals, self.albedo
        if tuple(normals.shape[:2]) != (height, width):
            both = torch.cat([normals, albedo], -1).permute(2, 0, 1)[None]
            both = F.interpolate(both, size=(height, width), mode="bilinear", align_corners=False)[0].permute(1, 2, 0)
            normals, albedo = F.normalize(both[..., :3], dim=-1), both[..., 3:]
        return normals, albedo

    # -- rendering ------------------------------------------------------------------------
    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1]; another size resamples the maps. ``chunk`` is
        not needed: a render is one product per pixel."""
        normals, albedo = self._maps(int(height), int(width))
        dirs = F.normalize(torch.as_tensor(lights, dtype=torch.float32, device=normals.device).reshape(-1, 3), dim=-1)
        shading = torch.einsum("hwi,li->lhw", normals, dirs).clamp_min(0.0)
        return (albedo[None] * shading[..., None]).clamp(0.0, 1.0)

    @torch.no_grad()
    def relight_envmap(self, dirs: torch.Tensor, weights: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """``sum_k weights[k] * albedo * max(0, n . dirs[k])`` as ``[H, W, 3]``: unclamped,
        no exposure scaling (the caller applies it); ``dirs [K, 3]``, ``weights [K, 3]``."""
        normals, albedo = self._maps(int(height), int(width))
        dirs = F.normalize(torch.as_tensor(dirs, dtype=torch.float32, device=normals.device).reshape(-1, 3), dim=-1)
        weights = torch.as_tensor(weights, dtype=torch.float32, device=normals.device).reshape(-1, 3)
        if len(dirs) != len(weights):
            raise PluginError(f"model 'lambertian': {len(dirs)} directions but {len(weights)} weights")
        irradiance = torch.zeros(int(height), int(width), 3, device=normals.device)
        for s in range(0, len(dirs), _ENVMAP_LIGHTS_PER_PASS):
            shading = torch.einsum("hwi,ki->khw", normals, dirs[s : s + _ENVMAP_LIGHTS_PER_PASS]).clamp_min(0.0)
            irradiance += torch.einsum("khw,kc->hwc", shading, weights[s : s + _ENVMAP_LIGHTS_PER_PASS])
        return albedo * irradiance


@hookimpl
def register_models(register):
    register(
        "lambertian",
        LambertianModel,
        "per-pixel photometric stereo: albedo x max(0, n . l), fitted by least squares (Woodham 1980)",
    )
