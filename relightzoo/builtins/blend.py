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
from relightzoo.zoo.api import CapturedImagesModel
from relightzoo.zoo.hookspecs import hookimpl

__all__ = ["BlendModel", "EXACT_ANGLE", "blend_weights", "blend_neighbours", "register_models"]

EXACT_ANGLE = 1e-5
"""A query within this many radians of a training light returns that light's image."""


def blend_weights(angles: torch.Tensor, power: float) -> torch.Tensor:
    """The ``blend`` baseline's weights ``[Q, k]`` for neighbours at ``angles [Q, k]`` (nearest
    first): ``angle ** -power`` normalised, one-hot on a neighbour that coincides with the query."""
    w = angles.clamp_min(EXACT_ANGLE) ** -power
    exact = angles[:, :1] < EXACT_ANGLE
    one_hot = (torch.arange(angles.shape[1], device=angles.device) == 0).to(w.dtype).expand_as(w)
    w = torch.where(exact, one_hot, w)
    return w / w.sum(-1, keepdim=True)


def blend_neighbours(captured: torch.Tensor, lights: torch.Tensor, k: int, power: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(indices [Q, k], weights [Q, k])``: the ``k`` captured lights ``captured [T, 3]``
    nearest each of ``lights`` (normalised; in float64) and their :func:`blend_weights`."""
    queries = torch.as_tensor(lights, dtype=torch.float64, device=captured.device).reshape(-1, 3)
    queries = queries / queries.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    idx, ang = nearest_lights(queries, captured.double(), min(int(k), len(captured)))
    return idx, blend_weights(ang, power).float()


class BlendModel(CapturedImagesModel):
    """Inverse-angle weighted sum of the ``k`` nearest training images on the light sphere."""

    trainable = False
    label = "model 'blend'"

    def __init__(self, k: int = 3, power: float = 2.0) -> None:
        super().__init__()
        if k < 1:
            raise PluginError(f"model 'blend': k must be at least 1, got {k}")
        if not math.isfinite(power) or power <= 0:
            raise PluginError(f"model 'blend': power must be a positive number, got {power}")
        self.k = int(k)
        self.power = float(power)

    def weights(self, lights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indices [Q, k], weights [Q, k])`` of the training images blended for each light."""
        return blend_neighbours(self.lights, lights, self.k, self.power)

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1]; resized (bilinear, antialiased) when ``H x W``
        differs from the training images."""
        self.check_training_data()
        idx, w = self.weights(lights)
        t, h0, w0, _ = self.images.shape
        if (h0, w0) == (height, width):
            # at the captures' size: one product of a sparse [Q, T] mixing matrix with the images
            mixing = torch.zeros(len(idx), t, dtype=self.images.dtype, device=self.images.device)
            mixing.scatter_add_(1, idx, w.to(mixing.dtype))
            return (mixing @ self.images.reshape(t, -1)).clamp_(0.0, 1.0).reshape(-1, height, width, 3).cpu()
        out = torch.empty(len(idx), height, width, 3)
        for q in range(len(idx)):
            img = torch.einsum("k,khwc->hwc", w[q], self.images[idx[q]])
            shrink = height < h0 or width < w0  # antialiasing only changes a shrink, and costs 10x
            img = F.interpolate(img.permute(2, 0, 1)[None], size=(height, width), mode="bilinear",
                                align_corners=False, antialias=shrink)[0].permute(1, 2, 0)
            out[q] = img.clamp(0.0, 1.0).cpu()
        return out


@hookimpl
def register_models(register):
    """The blend baseline."""
    register("blend", BlendModel, "baseline: inverse-angle weighted sum of the k nearest training images (no training)")
