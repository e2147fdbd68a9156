"""A coordinate network with a learned latent per pixel beside it: SIREN whose every layer
also reads a table of per-pixel values.

A plain SIREN of (pixel, light) has to spend its weights on two jobs at once: the image's
spatial detail (texture, edges, which pixel is which material) and how each pixel responds
to the light. On a dense capture it under-fits: held-out and training PSNR stay level, and
the training images are not reproduced. Here a table of latents at the training resolution
(``hidden_layers x hidden_features`` values per pixel, bilinearly interpolated between
pixel centres, so any size renders) takes over the spatial job: the first layer reads the
encoder's features as in ``siren``, and every later layer and the RGB head read their input
plus the pixel's latent for that layer (a per-pixel shift of the layer's input, which the
layer's weights turn into a shift of its pre-activation). The first layer keeps siren's
input and initialisation, so the light's frequency is the encoder's, as in ``siren``. The network's weights are shared
by every pixel, so what it learns about the light, the non-linear part (moving shadows,
highlights), generalises to lights never captured. This is the idea of per-pixel latents
beside an implicit network (e.g. the NRF family in RTI) on the zoo's own encoders and
activation backbones, so every encoder and activation ablates here too.

The latents start at zero (the model starts as the plain SIREN) and are stored divided by
``latent_scale``: Adam moves every parameter by about the learning rate a step, so the
latents move ``latent_scale`` times faster than the weights, as fast as they need to learn
4096 pixels' worth of detail from a few thousand steps.

``latent_features=k`` (k >= 1) keeps ``k`` values per pixel instead of a full
``hidden_features`` vector per layer, and a learned projection ``[k, hidden_layers *
hidden_features]`` (shared by every pixel) turns them into each layer's latent. The
full table has ``hidden_layers x hidden_features`` values per pixel (768 for 3 x 256),
far more than the pixel's 3 x 49 measurements on a 49-light dome, so it memorises the
training lights (training PSNR 42 dB against 30 dB held out); with k = 16 the training
and held-out PSNR stay closer, the model trains in fewer steps and the checkpoint is 15
times smaller (docs/ablation.md, "Where the latent-siren's settings come from"). ``0`` (the
default, so older checkpoints load as they were saved) keeps the full table.

``shadow_samples=n`` (with ``latent_features=k``) also reads the latents of ``n`` points on
the segment from the pixel toward the light, as the light's direction falls in the image
(``shadow_reach`` is the farthest point's distance in the [-1, 1] pixel coordinates), and a
second learned projection ``[n * k, hidden_layers * hidden_features]`` adds them to every
layer's latent. Whether a pixel lies in a cast shadow depends on what stands between it and
the light; without these samples each pixel's own latent has to memorise at which captured
lights it was dark, and between two captures 20 degrees apart the network can only guess
where the shadow's edge falls. With them, an occluder's latent is read by every pixel it
shadows, under every light, so the shadow is placed by something learned from all of those
observations. The image direction of a light is a learned ``[2, 3]`` map of its unit vector,
starting from the zoo's conventions (light x right and y up, pixel x right and y down).
Measured on 1200-step runs of the ``quick`` recipe, then with the light x 0.3, with this
option added: held out, the demo with 49 lights scores 30.70 dB with 8 samples against 30.33
without; blocks with 100 scores 32.85 with 6 against 32.34; a step takes about 1.6 times as
long. The ``long`` recipe uses 8 for 7000 steps (docs/ablation.md, "Shadow samples").
``0`` (the default) reads none.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from relightzoo.errors import PluginError
from relightzoo.zoo.args import check_at_least
from relightzoo.zoo.api import Backbone, CoordinateModel, Encoder
from relightzoo.zoo.hookspecs import hookimpl

__all__ = ["LatentSirenModel", "register_models"]

_NAME = "model 'latent-siren'"

_CENTRE = 1e-3
"""How close to a pixel centre (in pixels) a sample counts as on it: it then reads that
pixel's latents alone instead of blending four."""


class LatentSirenModel(CoordinateModel):
    """siren (``hidden_layers`` activation layers of ``hidden_features`` over the encoder's
    features, a linear RGB head) where every layer after the first and the head add a
    per-pixel latent to their input."""

    data_shaped_buffers = ("latents",)
    """The latent table ``[H, W, hidden_layers, hidden_features]`` (``[H, W, 1, k]`` with
    ``latent_features=k``) takes the training images' size."""

    train_defaults = {"steps": 2000, "lr": 5e-4, "batch_size": 4096, "schedule": "cosine"}
    """Adam at 5e-4 with a cosine decay over 2000 steps of 4096 samples (siren's settings; see
    docs/ablation.md for what more steps buy)."""

    def __init__(
        self,
        *,
        encoder: Encoder,
        activation: Backbone,
        hidden_layers: int = 3,
        hidden_features: int = 256,
        latent_scale: float = 40.0,
        latent_features: int = 0,
        shadow_samples: int = 0,
        shadow_reach: float = 0.4,
        height: int = 0,
        width: int = 0,
    ) -> None:
        super().__init__()
        check_at_least(_NAME, 1, hidden_layers=hidden_layers, hidden_features=hidden_features)
        if not math.isfinite(latent_scale) or latent_scale <= 0:
            raise PluginError(f"{_NAME}: latent_scale must be a positive number, got {latent_scale}")
        if latent_features < 0:
            raise PluginError(
                f"{_NAME}: latent_features must be 0 (a full latent per layer) or a number of values per pixel, got {latent_features}"
            )
        if shadow_samples < 0:
            raise PluginError(f"{_NAME}: shadow_samples must be 0 (none) or more, got {shadow_samples}")
        if shadow_samples and not latent_features:
            raise PluginError(
                f"{_NAME}: shadow_samples needs latent_features (a few values per pixel, e.g. 16): the full table has "
                f"{hidden_layers * hidden_features} per pixel"
            )
        if not math.isfinite(shadow_reach) or shadow_reach <= 0:
            raise PluginError(f"{_NAME}: shadow_reach must be a positive number, got {shadow_reach}")
        if height < 0 or width < 0 or (height == 0) != (width == 0):
            raise PluginError(
                f"{_NAME}: height and width must both be positive (or both 0: from the training images), got {height} x {width}"
            )
        self.encoder = encoder
        self.hidden_layers = int(hidden_layers)
        self.hidden_features = int(hidden_features)
        self.latent_scale = float(latent_scale)
        self.latent_features = int(latent_features)
        self.shadow_samples = int(shadow_samples)
        self.shadow_reach = float(shadow_reach)
        layers = [activation.layer(encoder.out_features, self.hidden_features, first=True)]
        layers += [activation.layer(self.hidden_features, self.hidden_features, first=False) for _ in range(self.hidden_layers - 1)]
        self.layers = nn.ModuleList(layers)
        self.head = nn.Linear(self.hidden_features, 3)
        activation.init_head(self.head)
        if self.latent_features:
            # unit-variance rows: a latent of k unit values shifts each layer's input by O(1)
            projection = torch.randn(self.latent_features, self.hidden_layers * self.hidden_features)
            self.projection = nn.Parameter(projection / math.sqrt(self.latent_features))
        if self.shadow_samples:
            # a light (x, y, z) moves toward it in the image by (x, -y): pixel y points down
            self.toward_light = nn.Parameter(torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))
            values = self.shadow_samples * self.latent_features
            # half the pixel's own projection's scale: the samples start as a small perturbation
            projection = torch.randn(values, self.hidden_layers * self.hidden_features)
            self.shadow_projection = nn.Parameter(projection * (0.5 / math.sqrt(values)))
        self.latents = nn.Parameter(torch.zeros(0, 0, *self._table_row))
        if height:
            self._make_latents(int(height), int(width))

    # -- the latent table ---------------------------------------------------------------------
    @property
    def _table_row(self) -> tuple[int, int]:
        """One pixel's entry of the table: ``(1, k)``, or ``(hidden_layers, hidden_features)``."""
        return (1, self.latent_features) if self.latent_features else (self.hidden_layers, self.hidden_features)

    def _make_latents(self, height: int, width: int) -> None:
        device = self.head.weight.device
        self.latents = nn.Parameter(torch.zeros(height, width, *self._table_row, device=device))

    @property
    def latent_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of the latent table; None before it is sized."""
        return None if self.latents.shape[0] == 0 else (int(self.latents.shape[0]), int(self.latents.shape[1]))

    @property
    def needs_images(self) -> bool:  # type: ignore[override]
        """The table reads the training images' size once (unless ``height``/``width`` gave it)."""
        return self.latent_size is None

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Size the latent table to the training images ``[T, H, W, 3]`` (once; a sized model keeps its table)."""
        if self.latent_size is not None:
            return
        images = torch.as_tensor(images)
        if images.dim() != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
            raise PluginError(f"{_NAME}: training images must be [T, H, W, 3] with T >= 1, got {list(images.shape)}")
        self._make_latents(int(images.shape[1]), int(images.shape[2]))

    def pixel_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """The table's rows for pixels ``[N, 2]`` in [-1, 1], times ``latent_scale``: ``[rows, N,
        values]`` (``[hidden_layers, N, hidden_features]``, or ``[1, N, k]`` with
        ``latent_features=k``), bilinear between pixel centres (exact at the training
        resolution's centres, clamped at the border).

        Samples that all sit on pixel centres (every training batch, a render at the table's
        size) read one row each; otherwise the four neighbours' rows are gathered by one
        ``index_select`` and summed with their bilinear weights. Either is several times
        faster on a CPU than ``grid_sample``, whose backward into a many-channel table
        dominated a step; ``index_select``'s backward (an ``index_add``) is a third faster
        than ``embedding_bag``'s, which sorts the indices (the shadow samples train through
        this path).
        """
        if self.latent_size is None:
            raise PluginError(
                f"{_NAME} does not know its resolution: give height and width, train it, or load a checkpoint"
            )
        h, w, layers, feats = self.latents.shape
        # pixel centres sit at (2 i + 1) / size - 1 (pixel_grid's convention, align_corners=False)
        fx = ((pixels[:, 0].to(self.latents.dtype) + 1.0) * w - 1.0) * 0.5
        fy = ((pixels[:, 1].to(self.latents.dtype) + 1.0) * h - 1.0) * 0.5
        table = self.latents.reshape(h * w, layers * feats)
        cx, cy = fx.round(), fy.round()
        if bool(((fx - cx).abs().amax() < _CENTRE) & ((fy - cy).abs().amax() < _CENTRE)):
            # every sample on a pixel centre (training, a render at the table's size): one row each
            rows = cy.long().clamp(0, h - 1) * w + cx.long().clamp(0, w - 1)
            return (table[rows].reshape(-1, layers, feats) * self.latent_scale).transpose(0, 1)
        x0, y0 = fx.floor(), fy.floor()
        tx, ty = fx - x0, fy - y0
        x0, y0 = x0.long(), y0.long()
        x1, y1 = (x0 + 1).clamp(0, w - 1), (y0 + 1).clamp(0, h - 1)
        x0, y0 = x0.clamp(0, w - 1), y0.clamp(0, h - 1)
        index = torch.stack([y0 * w + x0, y0 * w + x1, y1 * w + x0, y1 * w + x1], -1)
        weight = torch.stack([(1 - tx) * (1 - ty), tx * (1 - ty), (1 - tx) * ty, tx * ty], -1)
        corners = table.index_select(0, index.reshape(-1)).reshape(-1, 4, layers * feats)
        sampled = (corners * weight.unsqueeze(-1)).sum(1)
        return (sampled.reshape(-1, layers, feats) * self.latent_scale).transpose(0, 1)

    # -- the network -------------------------------------------------------------------------
    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """RGB ``[N, 3]`` in [-1, 1] (not clamped while training) for ``pixels [N, 2]``, ``lights [N, 3]``."""
        latents = self.layer_latents(pixels)
        if self.shadow_samples:
            latents = latents + self.shadow_latents(pixels, lights)
        h = self.layers[0](self.encoder(pixels, lights))
        for layer, latent in zip(self.layers[1:], latents[:-1]):
            h = layer(h + latent)
        return self.head(h + latents[-1])

    def layer_latents(self, pixels: torch.Tensor) -> torch.Tensor:
        """What each later layer and the head add to their input for pixels ``[N, 2]``:
        ``[hidden_layers, N, hidden_features]`` (the table's rows, or its ``k`` values projected)."""
        latents = self.pixel_latents(pixels)
        if not self.latent_features:
            return latents
        mixed = latents[0] @ self.projection  # [N, hidden_layers * hidden_features]
        return mixed.reshape(-1, self.hidden_layers, self.hidden_features).transpose(0, 1)

    def shadow_latents(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """What the latents toward the light add to each layer's input: ``[hidden_layers, N,
        hidden_features]``. The ``shadow_samples`` points lie evenly on the segment from each
        pixel toward its light's image direction, up to ``shadow_reach``; all of them are read
        bilinearly by one :meth:`pixel_latents` call (points off the image read its border)."""
        n, count = pixels.shape[0], self.shadow_samples
        step = (lights.to(self.toward_light.dtype) @ self.toward_light.t()) * (self.shadow_reach / count)  # [N, 2]
        reach = torch.arange(1, count + 1, device=pixels.device, dtype=step.dtype)
        points = pixels.to(step.dtype).unsqueeze(1) + reach.view(1, count, 1) * step.unsqueeze(1)  # [N, n, 2]
        values = self.pixel_latents(points.reshape(n * count, 2))[0].reshape(n, count * self.latent_features)
        mixed = values @ self.shadow_projection
        return mixed.reshape(n, self.hidden_layers, self.hidden_features).transpose(0, 1)

    def resize_data_shaped_buffer(self, name: str, shape: torch.Size) -> None:
        """Loading takes the table's size from the saved tensor."""
        if name == "latents":
            self._make_latents(int(shape[0]), int(shape[1]))


@hookimpl
def register_models(register):
    """The latent-siren model."""
    register(
        "latent-siren",
        LatentSirenModel,
        "siren whose every layer also reads a learned per-pixel latent (bilinear table): spatial detail in the table, light in the weights",
    )
