"""The plugin module named by the ``relightzoo`` entry point: two activation backbones.

- ``gabor``: the real Gabor wavelet of WIRE (Saragadam et al. 2023),
  ``cos(omega_0 z) * exp(-(sigma_0 z)^2)`` with ``z = W x + b``: a sinusoid under a
  Gaussian window, so each neuron is localised in space as well as in frequency.
- ``gaussian``: ``exp(-(sigma_0 z)^2)`` (Ramasinghe & Lucey 2022), a non-periodic
  activation that still fits high frequencies.

Both scale the hidden layers' weights like SIREN, ``W ~ U(-sqrt(6/in)/c, sqrt(6/in)/c)``
with ``c`` the activation's frequency (omega_0) or width (sigma_0), so ``c z`` starts with
unit spread whatever the width of the layer; the first layer uses ``U(-1/in, 1/in)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from relightzoo.errors import PluginError
from relightzoo.zoo import Backbone, hookimpl

__all__ = ["GaborLayer", "GaborBackbone", "GaussianBackbone", "register_activations"]


class GaborLayer(nn.Linear):
    """``cos(omega z) * exp(-(sigma z)^2)`` of ``z = W x + b`` (omega = 0: the Gaussian)."""

    def __init__(self, in_features: int, out_features: int, omega: float, sigma: float) -> None:
        super().__init__(in_features, out_features)
        self.omega = float(omega)
        self.sigma = float(sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.linear(x, self.weight, self.bias)
        window = torch.exp(-(self.sigma * z) ** 2)
        return window if self.omega == 0 else torch.cos(self.omega * z) * window

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, omega={self.omega:g}, sigma={self.sigma:g}"


def _positive(plugin: str, **values: float) -> None:
    for key, value in values.items():
        if not math.isfinite(value) or value <= 0:
            raise PluginError(f"activation {plugin!r}: {key} must be a positive number, got {value}")


class GaborBackbone(Backbone):
    """Real Gabor wavelet (WIRE): cos(omega_0 z) exp(-(sigma_0 z)^2)."""

    name = "gabor"

    def __init__(self, omega_0: float = 20.0, sigma_0: float = 10.0) -> None:
        _positive(self.name, omega_0=omega_0, sigma_0=sigma_0)
        self.omega_0 = float(omega_0)
        self.sigma_0 = float(sigma_0)

    def _layer(self, in_features: int, out_features: int, first: bool, omega: float, width: float) -> nn.Module:
        layer = GaborLayer(in_features, out_features, omega, self.sigma_0)
        bound = 1.0 / in_features if first else math.sqrt(6.0 / in_features) / width
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound)
        return layer

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:
        return self._layer(in_features, out_features, first, self.omega_0, max(self.omega_0, self.sigma_0))

    def init_head(self, head: nn.Linear) -> None:
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)

    def describe(self) -> dict:
        return {"omega_0": self.omega_0, "sigma_0": self.sigma_0}


class GaussianBackbone(GaborBackbone):
    """Gaussian activation: exp(-(sigma_0 z)^2)."""

    name = "gaussian"

    def __init__(self, sigma_0: float = 10.0) -> None:
        _positive(self.name, sigma_0=sigma_0)
        self.omega_0 = 0.0
        self.sigma_0 = float(sigma_0)

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:
        return self._layer(in_features, out_features, first, 0.0, self.sigma_0)

    def describe(self) -> dict:
        return {"sigma_0": self.sigma_0}


@hookimpl
def register_activations(register):
    """Called once by relightzoo's plugin manager; ``register`` adds one plugin per call."""
    register("gabor", GaborBackbone, "real Gabor wavelet cos(omega_0 z) exp(-(sigma_0 z)^2) (WIRE, Saragadam et al. 2023)")
    register("gaussian", GaussianBackbone, "Gaussian exp(-(sigma_0 z)^2) (Ramasinghe & Lucey 2022)")
