"""The three plugin kinds' base classes: what an encoder, an activation backbone and a model
must provide. Built-in plugins and third-party plugins subclass these.

Shapes follow DESIGN.md: pixels ``[N, 2]`` in [-1, 1], lights ``[N, 3]`` unit vectors,
images ``[L, H, W, 3]`` float32 in [0, 1]; coordinate models output RGB in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.coords import pixel_grid

__all__ = ["Encoder", "Backbone", "RelightModel", "CoordinateModel", "DEFAULT_RENDER_CHUNK"]

DEFAULT_RENDER_CHUNK = 1 << 16
"""Samples per forward pass when a coordinate model renders an image (bounds peak memory)."""


class Encoder(nn.Module):
    """Maps ``(pixels [N, 2], lights [N, 3])`` to features ``[N, out_features]``.

    Subclasses set ``self.out_features`` in ``__init__`` so a model can size its first layer
    before calling the encoder.
    """

    out_features: int

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Backbone:
    """An activation backbone: a nonlinearity plus the weight initialisation that belongs to it.

    ``layer`` builds one hidden layer (linear map + nonlinearity, initialised to match);
    ``init_head`` initialises the final linear layer that follows the last hidden layer.
    """

    name: str = "backbone"

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def init_head(self, head: nn.Linear) -> None:
        """Initialise the output layer; the default keeps torch's own initialisation."""

    def describe(self) -> dict:
        """The constructor arguments, as recorded in checkpoints."""
        return {}


class RelightModel(nn.Module):
    """A relighting model: renders whole images for any light directions.

    ``trainable`` is False for models that need no training (the ``blend`` baseline).
    ``needs_images`` is True for models that read the captured training images
    (they receive them through :meth:`attach_training_data` before training or rendering).
    """

    trainable: bool = True
    needs_images: bool = False

    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor:  # pragma: no cover - abstract
        """Images ``[L, H, W, 3]`` in [0, 1] lit from each of ``lights [L, 3]``."""
        raise NotImplementedError

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Give an image model the captured training images ``[T, H, W, 3]`` and their lights ``[T, 3]``."""


class CoordinateModel(RelightModel):
    """A model of single samples: ``forward(pixels [N, 2], lights [N, 3]) -> RGB [N, 3]`` in [-1, 1].

    It trains on random (pixel, light) batches and renders any resolution in chunks of
    ``chunk`` samples, so peak memory does not grow with the image size.
    """

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor:
        device = next(self.parameters()).device
        lights = torch.as_tensor(lights, dtype=torch.float32, device=device).reshape(-1, 3)
        out = torch.empty(len(lights), height, width, 3)
        rows_per_chunk = max(1, chunk // max(width, 1))
        for li, light in enumerate(lights):
            for r0 in range(0, height, rows_per_chunk):
                r1 = min(height, r0 + rows_per_chunk)
                pix = pixel_grid(height, width, device=device, rows=slice(r0, r1))
                rgb = self(pix, light.expand(len(pix), 3))
                out[li, r0:r1] = ((rgb.float() + 1.0) * 0.5).clamp(0.0, 1.0).reshape(r1 - r0, width, 3).cpu()
        return out
