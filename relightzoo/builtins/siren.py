"""The reference model: an encoder, N hidden layers of width W with the chosen activation,
and a linear RGB head (SIREN, Sitzmann et al. 2020, as the thesis used it: 3 x 256).

It is a coordinate model: it maps (pixel, light) samples to RGB in [-1, 1], trains on random
sample batches and renders any resolution in chunks (inherited from CoordinateModel).
"""

from __future__ import annotations

import torch
from torch import nn

from relightzoo.builtins.narrow_head import narrow_linear
from relightzoo.data.coords import pixel_grid
from relightzoo.zoo.args import check_at_least
from relightzoo.zoo.api import DEFAULT_RENDER_CHUNK, Backbone, CoordinateModel, Encoder
from relightzoo.zoo.hookspecs import hookimpl
from relightzoo.zoo.frame_cache import FRAME_CACHE_BYTES, FrameCache, frame_cache_enabled, tensor_key

__all__ = ["SirenModel", "register_models"]


class SirenModel(CoordinateModel):
    """MLP: encoder -> ``hidden_layers`` activation layers of ``hidden_features`` -> RGB."""

    train_defaults = {"lr": 5e-4, "schedule": "cosine"}
    """Adam at 5e-4 decayed by a cosine over the run (relightzoo.train.training_settings):
    on the demo scene (docs/ablation.md) it matched or beat the thesis's constant 1e-4 in
    every setting tried, e.g. 30.4 against 28.1 dB held-out with uniform:100 training lights
    and the direction encoder, 19.5 against 19.4 with xu5:0.77."""

    def __init__(
        self,
        *,
        encoder: Encoder,
        activation: Backbone,
        hidden_layers: int = 3,
        hidden_features: int = 256,
    ) -> None:
        super().__init__()
        check_at_least("model 'siren'", 1, hidden_layers=hidden_layers, hidden_features=hidden_features)
        self.encoder = encoder
        self.hidden_layers = hidden_layers
        self.hidden_features = hidden_features
        layers: list[nn.Module] = [activation.layer(encoder.out_features, hidden_features, first=True)]
        layers += [activation.layer(hidden_features, hidden_features, first=False) for _ in range(hidden_layers - 1)]
        head = nn.Linear(hidden_features, 3)
        activation.init_head(head)
        self.net = nn.Sequential(*layers, head)
        self._frames = FrameCache(maxsize=1)

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """RGB ``[N, 3]`` in [-1, 1] (not clamped while training) for ``pixels [N, 2]``, ``lights [N, 3]``.

        The head runs through :func:`~relightzoo.builtins.narrow_head.narrow_linear`: in a
        compiled step its input gradient fuses into the layer below's backward loop."""
        *layers, head = self.net
        x = self.encoder(pixels, lights)
        for layer in layers:
            x = layer(x)
        return narrow_linear(head, x)

    # -- rendering frames: the pixel half of the first layer, once per size ------------------
    def _splits_first_layer(self, height: int, width: int) -> bool:
        first = self.net[0]
        return (
            frame_cache_enabled()
            and getattr(self.encoder, "separable", False)
            and isinstance(first, nn.Linear)
            and callable(getattr(first, "activate", None))
            and height * width * self.hidden_features * 4 <= FRAME_CACHE_BYTES
        )

    def _pixel_part(self, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W f(P, l0) + b [H*W, hidden], f(p0, l0) [1, F], p0 [1, 2])`` at the reference light
        ``l0`` = the zenith, kept across frames of one size."""
        first = self.net[0]
        state = list(self.encoder.parameters()) + list(self.encoder.buffers()) + [first.weight, first.bias]
        key = (height, width) + tensor_key(*state)

        def compute():
            device = first.weight.device
            pix = pixel_grid(height, width, device=device)
            zenith = torch.tensor([0.0, 0.0, 1.0], device=device)
            feats = self.encoder(pix, zenith.expand(len(pix), 3))
            return torch.nn.functional.linear(feats, first.weight, first.bias), feats[:1].clone(), pix[:1].clone()

        return self._frames.get(key, compute)

    @torch.no_grad()
    def render_rows(
        self, lights: torch.Tensor, height: int, width: int, r0: int, r1: int, *, chunk: int | None = None
    ) -> torch.Tensor:
        """As :meth:`CoordinateModel.render_rows`; with a separable encoder the first layer's
        pixel part ``W g(p) + b`` is computed once per size and each frame adds its light part
        ``W (h(l) - h(l0))``, so a frame skips the encoder and the first matrix multiply."""
        if not self._splits_first_layer(height, width):
            return super().render_rows(lights, height, width, r0, r1, chunk=chunk)
        first, rest = self.net[0], self.net[1:]
        base, f0, p0 = self._pixel_part(height, width)
        chunk = DEFAULT_RENDER_CHUNK if chunk is None else int(chunk)
        lights = torch.as_tensor(lights, dtype=torch.float32, device=base.device).reshape(-1, 3)
        out = torch.empty(len(lights), r1 - r0, width, 3)
        rows_per_chunk = max(1, chunk // max(width, 1))
        for li, light in enumerate(lights):
            shift = (self.encoder(p0, light[None]) - f0) @ first.weight.T  # [1, hidden]: the light's part
            for a in range(r0, r1, rows_per_chunk):
                b = min(r1, a + rows_per_chunk)
                rgb = rest(first.activate(base[a * width : b * width] + shift))
                out[li, a - r0 : b - r0] = ((rgb.float() + 1.0) * 0.5).clamp(0.0, 1.0).reshape(b - a, width, 3).cpu()
        return out


@hookimpl
def register_models(register):
    """The siren model."""
    register("siren", SirenModel, "encoder -> N hidden layers x W (activation) -> linear RGB; the reference (3 x 256)")
