"""The three plugin kinds' base classes: what an encoder, an activation backbone and a model
must provide. Built-in plugins and third-party plugins subclass these.

Shapes follow DESIGN.md: pixels ``[N, 2]`` in [-1, 1], lights ``[N, 3]`` unit vectors,
images ``[L, H, W, 3]`` float32 in [0, 1]; coordinate models output RGB in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from ..data.coords import pixel_grid

__all__ = ["Encoder", "Backbone", "RelightModel", "CoordinateModel", "CapturedImagesModel", "DEFAULT_RENDER_CHUNK"]

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
        return self.render_rows(lights, height, width, 0, height, chunk=chunk)

    @torch.no_grad()
    def render_rows(
        self, lights: torch.Tensor, height: int, width: int, r0: int, r1: int, *, chunk: int = DEFAULT_RENDER_CHUNK
    ) -> torch.Tensor:
        """Rows ``r0:r1`` of the ``height x width`` images lit from ``lights [L, 3]``:
        ``[L, r1 - r0, W, 3]`` in [0, 1], computed ``chunk`` samples at a time. Rendering a
        large image band by band this way bounds memory whatever its size."""
        device = next(self.parameters()).device
        lights = torch.as_tensor(lights, dtype=torch.float32, device=device).reshape(-1, 3)
        out = torch.empty(len(lights), r1 - r0, width, 3)
        rows_per_chunk = max(1, chunk // max(width, 1))
        for li, light in enumerate(lights):
            for a in range(r0, r1, rows_per_chunk):
                b = min(r1, a + rows_per_chunk)
                pix = pixel_grid(height, width, device=device, rows=slice(a, b))
                rgb = self(pix, light.expand(len(pix), 3))
                out[li, a - r0 : b - r0] = ((rgb.float() + 1.0) * 0.5).clamp(0.0, 1.0).reshape(b - a, width, 3).cpu()
        return out


class CapturedImagesModel(RelightModel):
    """An image model that keeps the captured training images and their lights as buffers
    (``images [T, H, W, 3]``, ``lights [T, 3]``), so that its checkpoint renders with nothing
    else at hand.

    The buffers' shapes depend on the data, so a freshly built model starts with empty ones
    and takes their shapes from the saved tensors when a state dict is loaded.
    """

    needs_images = True
    label: str = "model"
    """How error messages name the model, e.g. ``model 'blend'``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("images", torch.zeros(0, 0, 0, 3))
        self.register_buffer("lights", torch.zeros(0, 3))

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Keep the training images ``[T, H, W, 3]`` (float, [0, 1]) and their lights ``[T, 3]``."""
        from ..errors import PluginError

        images = torch.as_tensor(images).detach()
        lights = torch.as_tensor(lights).detach()
        if images.dim() != 4 or images.shape[-1] != 3:
            raise PluginError(f"{self.label}: images must be [T, H, W, 3], got {list(images.shape)}")
        if lights.shape != (images.shape[0], 3):
            raise PluginError(f"{self.label}: lights must be [{images.shape[0]}, 3], got {list(lights.shape)}")
        if images.shape[0] == 0:
            raise PluginError(f"{self.label} needs at least one training image")
        device = self.images.device
        self.images = images.to(device=device, dtype=torch.float32).contiguous()
        self.lights = lights.to(device=device, dtype=torch.float32).contiguous()

    def check_training_data(self) -> None:
        """Raise a one-line error when no training images are held yet."""
        from ..errors import PluginError

        if len(self.lights) == 0:
            raise PluginError(f"{self.label} holds no training images; attach_training_data() or load a checkpoint first")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        for key in ("images", "lights"):
            saved = state_dict.get(prefix + key)
            if isinstance(saved, torch.Tensor) and saved.shape != self._buffers[key].shape:
                self._buffers[key] = torch.empty(saved.shape, dtype=torch.float32, device=self._buffers[key].device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
