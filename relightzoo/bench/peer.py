"""The peer: the same network built with the ``siren-pytorch`` package, when it is installed.

:func:`build_peer` mirrors a zoo siren: the same encoder (so the same input features), then
``siren_pytorch.SirenNet`` with the same depth, width and omega_0 (``w0_initial`` for the
first layer, ``w0`` for the hidden ones) and a linear RGB head. siren-pytorch computes
``sin(w0 * (W x + b))`` with autograd's own ops; for another activation the peer keeps
siren-pytorch's network and swaps its ``Sine`` modules for the same nonlinearity
(``cos(w0 x)``, ``relu``, or timm's module), so the comparison measures the implementation,
not the function. The peer is a :class:`~relightzoo.zoo.api.CoordinateModel`, so it trains
through the very ``train_step`` and renders through the very ``render`` the zoo's models use.
"""

from __future__ import annotations

from importlib import metadata

import torch
from torch import nn

from ..zoo import create_activation, create_encoder
from ..zoo.api import CoordinateModel

__all__ = ["PEER_PACKAGE", "peer_available", "peer_version", "build_peer", "PeerSiren"]

PEER_PACKAGE = "siren-pytorch"


def peer_available() -> bool:
    """True when ``siren_pytorch`` imports."""
    try:
        import siren_pytorch  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means no peer
        return False
    return True


def peer_version() -> str | None:
    """The installed siren-pytorch version, or None."""
    try:
        return metadata.version(PEER_PACKAGE)
    except metadata.PackageNotFoundError:
        return None


class _Cos(nn.Module):
    """``cos(w0 x)``, written as siren-pytorch writes its ``Sine``."""

    def __init__(self, w0: float) -> None:
        super().__init__()
        self.w0 = w0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(self.w0 * x)


class PeerSiren(CoordinateModel):
    """A zoo encoder followed by a ``siren_pytorch.SirenNet``; ``note`` says what was swapped."""

    def __init__(self, encoder: nn.Module, net: nn.Module, note: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.net = net
        self.note = note

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoder(pixels, lights))


def build_peer(
    encoder: str,
    activation: str,
    *,
    hidden_layers: int = 3,
    hidden_features: int = 256,
    encoder_args: dict | None = None,
    activation_args: dict | None = None,
) -> PeerSiren | None:
    """The siren-pytorch twin of ``create_model("siren", encoder=..., activation=...)``; None when
    siren-pytorch is not installed or the activation is a plugin's own (not sine, cosine,
    relu or a timm activation)."""
    if not peer_available():
        return None
    from siren_pytorch import SirenNet

    enc = create_encoder(encoder, **dict(encoder_args or {}))
    act = create_activation(activation, **dict(activation_args or {}))
    first = float(getattr(act, "first_omega_0", 30.0))
    hidden = float(getattr(act, "hidden_omega_0", 30.0))
    net = SirenNet(enc.out_features, hidden_features, 3, hidden_layers, w0=hidden, w0_initial=first)
    name = getattr(act, "name", activation)
    if name not in ("sine", "cosine", "relu") and not hasattr(act, "act_layer"):
        return None  # a plugin's own nonlinearity: nothing in siren-pytorch to compare with
    note = f"{PEER_PACKAGE} {peer_version()}"
    if name != "sine":
        for layer in net.layers:
            if name == "cosine":
                layer.activation = _Cos(layer.activation.w0)
            elif name == "relu":
                layer.activation = nn.ReLU()
            else:  # a timm activation
                layer.activation = act.act_layer()
        note += f" (Sine swapped for {name})"
    return PeerSiren(enc, net, note)
