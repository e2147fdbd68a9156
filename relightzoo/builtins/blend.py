"""The classical baseline: each output image a weighted sum of the nearest captured images.

For a light ``l`` the ``k`` training lights nearest on the sphere are weighted by
``angle ** -power`` (inverse-distance weighting, Shepard's method on the great-circle
angle), normalised to sum to 1; a light that coincides with a training light returns that
image exactly. Nothing is trained. The model keeps its training images and lights as
buffers, so its checkpoint renders with nothing else at hand, and a freshly built model
takes their shapes from the saved tensors when it loads a state dict.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from relightzoo.errors import PluginError
from relightzoo.lights import nearest_lights
from relightzoo.zoo import DEFAULT_RENDER_CHUNK, RelightModel, hookimpl

__all__ = ["BlendModel", "EXACT_ANGLE", "register_models"]

EXACT_ANGLE = 1e-5
"""A query within this many radians of a training light returns that light's image."""


class BlendModel(RelightModel):
    """Inverse-angle weighted sum of the ``k`` nearest training images on the light sphere."""

    trainable = False
    needs_images = True

    def __init__(self, k: int = 3, power: float = 2.0) -> None:
        super().__init__()
        if k < 1:
            raise PluginError(f"model 'blend': k must be at least 1, got {k}")
        if not math.isfinite(power) or power <= 0:
            raise PluginError(f"model 'blend': power must be a positive number, got {power}")
        self.k = int(k)
        self.power = float(power)
        self.register_buffer("images", torch.zeros(0, 0, 0, 3))
        self.register_buffer("lights", torch.zeros(0, 3))

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Keep the training images ``[T, H, W, 3]`` (float, [0, 1]) and their lights ``[T, 3]``."""
        images = torch.as_tensor(images).detach()
        lights = torch.as_tensor(lights).detach()
        if images.dim() != 4 or images.shape[-1] != 3:
            raise PluginError(f"model 'blend': images must be [T, H, W, 3], got {list(images.shape)}")
        if lights.shape != (images.shape[0], 3):
            raise PluginError(f"model 'blend': lights must be [{images.shape[0]}, 3], got {list(lights.shape)}")
        if images.shape[0] == 0:
            raise PluginError("model 'blend' needs at least one training image")
        device = self.images.device
        self.images = images.to(device=device, dtype=torch.float32)
        self.lights = lights.to(device=device, dtype=torch.float32)

    def weights(self, lights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indices [Q, k], weights [Q, k])`` of the training images blended for each light."""
        queries = torch.as_tensor(lights, dtype=torch.float64, device=self.lights.device).reshape(-1, 3)
        queries = queries / queries.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        k = min(self.k, len(self.lights))
        idx, ang = nearest_lights(queries, self.lights.double(), k)
        w = ang.clamp_min(EXACT_ANGLE) ** -self.power
        exact = ang[:, :1] < EXACT_ANGLE
        w = torch.where(exact, (torch.arange(k, device=w.device) == 0).to(w.dtype).expand_as(w), w)
        return idx, (w / w.sum(-1, keepdim=True)).float()

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1]; resized (bilinear, antialiased) when ``H x W``
        differs from the training images."""
        if len(self.lights) == 0:
            raise PluginError("model 'blend' holds no training images; attach_training_data() or load a checkpoint first")
        idx, w = self.weights(lights)
        _, h0, w0, _ = self.images.shape
        out = torch.empty(len(idx), height, width, 3)
        for q in range(len(idx)):
            img = torch.einsum("k,khwc->hwc", w[q], self.images[idx[q]])
            if (h0, w0) != (height, width):
                img = F.interpolate(img.permute(2, 0, 1)[None], size=(height, width), mode="bilinear",
                                    align_corners=False, antialias=True)[0].permute(1, 2, 0)
            out[q] = img.clamp(0.0, 1.0).cpu()
        return out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # The buffers' shapes depend on the data: take them from the saved tensors.
        for key in ("images", "lights"):
            saved = state_dict.get(prefix + key)
            if isinstance(saved, torch.Tensor) and saved.shape != self._buffers[key].shape:
                self._buffers[key] = torch.empty(saved.shape, dtype=torch.float32, device=self._buffers[key].device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)


@hookimpl
def register_models(register):
    """The blend baseline."""
    register("blend", BlendModel, "baseline: inverse-angle weighted sum of the k nearest training images (no training)")
