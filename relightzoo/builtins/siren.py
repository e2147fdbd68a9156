"""The reference model: an encoder, N hidden layers of width W with the chosen activation,
and a linear RGB head (SIREN, Sitzmann et al. 2020, as the thesis used it: 3 x 256).

It is a coordinate model: it maps (pixel, light) samples to RGB in [-1, 1], trains on random
sample batches and renders any resolution in chunks (inherited from CoordinateModel).
"""

from __future__ import annotations

import torch
from torch import nn

from relightzoo.errors import PluginError
from relightzoo.zoo import Backbone, CoordinateModel, Encoder, hookimpl

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
        if hidden_layers < 1:
            raise PluginError(f"model 'siren': hidden_layers must be at least 1, got {hidden_layers}")
        if hidden_features < 1:
            raise PluginError(f"model 'siren': hidden_features must be at least 1, got {hidden_features}")
        self.encoder = encoder
        self.hidden_layers = hidden_layers
        self.hidden_features = hidden_features
        layers: list[nn.Module] = [activation.layer(encoder.out_features, hidden_features, first=True)]
        layers += [activation.layer(hidden_features, hidden_features, first=False) for _ in range(hidden_layers - 1)]
        head = nn.Linear(hidden_features, 3)
        activation.init_head(head)
        self.net = nn.Sequential(*layers, head)

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """RGB ``[N, 3]`` in [-1, 1] (not clamped while training) for ``pixels [N, 2]``, ``lights [N, 3]``."""
        return self.net(self.encoder(pixels, lights))


@hookimpl
def register_models(register):
    """The siren model."""
    register("siren", SirenModel, "encoder -> N hidden layers x W (activation) -> linear RGB; the reference (3 x 256)")
