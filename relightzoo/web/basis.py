"""A model as per-pixel coefficient planes times a light basis, for a browser to evaluate.

RTI web viewers relight in the page: the server sends coefficient planes once and a shader
combines them, for every light, with a handful of numbers computed from the light direction.
Every model whose image is linear in a light basis can be shown that way::

    image(x, w) = clamp(sum_k P_k(x) f_k(w), 0, 1)      P_k: RGB planes, f_k: scalars

:func:`web_basis` returns such a description (:class:`WebBasis`) for the models that are one:

=============  ================================  ============================================
model          planes ``P``                       light basis ``f(w)`` (segments, in order)
=============  ================================  ============================================
``ptm``        its 6 coefficient planes           ``ptm``: lu^2, lv^2, lu lv, lu, lv, 1
``hsh``        its (order + 1)^2 planes           ``hsh``: hemispherical harmonics of ``order``
``rbf``        mean image + images or PCA planes  ``constant``, then ``rbf`` (centres, sigma, mixing)
``low-rank``   its pixel table (``table``)        ``sh`` (fixed harmonics), then ``mlp`` (V's network)
=============  ================================  ============================================

The light basis is a list of JSON *segments* that ``relightzoo/web/static/viewer.js``
evaluates (and the browser tests check against the model's own ``basis``/``light_factors``):

- ``{"type": "ptm"}``, ``{"type": "constant"}``;
- ``{"type": "sh", "degree": d}``: real spherical harmonics, band by band ``m = -l..l``
  (the recurrence of ``relightzoo.builtins.lowrank.real_harmonics``);
- ``{"type": "hsh", "order": n}``: ``sqrt(2)`` times those harmonics of the direction whose
  polar angle has ``cos phi' = 2 cos phi - 1`` (z clamped to [0, 1]);
- ``{"type": "rbf", "centres": [[x, y, z], ...], "sigma": s, "mixing": [[...], ...]}``:
  ``k(w) @ mixing`` with ``k_t = exp(-(angle(w, c_t) / sigma)^2 / 2)``, ``angle = 2 asin(|w - c| / 2)``;
- ``{"type": "mlp", "input": {"type": "direction"} | {"type": "sh", "degree": d}, "layers":
  [{"weight": [[...]], "bias": [...], "omega": 1, "act": "silu"}, ...]}``: dense layers,
  each ``act(omega * (W x + b))``; ``act`` one of :data:`MLP_ACTIVATIONS`;
- ``{"type": "server", "count": K}``: a basis the page cannot evaluate; it asks the server.

Directions are normalised before any segment sees them. Models that are not such a basis
(``siren`` and other coordinate networks, ``blend``) return None: the viewer renders those
on the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP_ACTIVATIONS", "WebBasis", "web_basis", "pack_planes"]

MLP_ACTIVATIONS = ("identity", "relu", "silu", "tanh", "sigmoid", "sin", "cos", "softplus", "elu", "leaky_relu")
"""Activations the page's network evaluator knows (others make the basis a ``server`` one)."""

_TORCH_ACTIVATIONS = {
    nn.Identity: "identity", nn.ReLU: "relu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid",
    nn.Softplus: "softplus", nn.ELU: "elu", nn.LeakyReLU: "leaky_relu",
}


@dataclass
class WebBasis:
    """A model written as ``clamp(sum_k planes[k] * factors(w)[k], 0, 1)``.

    ``planes`` ``[K, 3, H, W]`` float32 at the model's own resolution; ``segments`` the light
    basis as JSON (module docstring); ``factors`` the model's own ``f(w)`` (``[N, 3]`` unit
    directions -> ``[N, K]``), what a ``server`` segment is answered with and what tests
    compare the page against; ``kind`` the model's name.
    """

    kind: str
    planes: np.ndarray
    segments: list[dict[str, Any]]
    factors: Callable[[torch.Tensor], torch.Tensor]
    notes: list[str] = field(default_factory=list)

    @property
    def terms(self) -> int:
        return int(self.planes.shape[0])

    @property
    def height(self) -> int:
        return int(self.planes.shape[2])

    @property
    def width(self) -> int:
        return int(self.planes.shape[3])

    @property
    def in_page(self) -> bool:
        """Whether the page evaluates the whole light basis itself (no ``server`` segment)."""
        return all(s["type"] != "server" for s in self.segments)

    def render(self, lights: torch.Tensor) -> torch.Tensor:
        """``[L, H, W, 3]`` in [0, 1] from the planes and :attr:`factors` (what the page shows)."""
        f = self.factors(torch.as_tensor(lights, dtype=torch.float32).reshape(-1, 3)).double()
        img = torch.einsum("lk,kchw->lhwc", f, torch.from_numpy(self.planes).double())
        return img.clamp_(0.0, 1.0).float()


def pack_planes(planes: np.ndarray) -> tuple[np.ndarray, int]:
    """Planes ``[K, 3, H, W]`` as RGBA layers ``[L, H, W, 4]`` float32 for a texture array.

    The ``3 K`` numbers of each pixel (plane-major: ``k * 3 + channel``) are laid four to a
    texel, zero-padded to ``L = ceil(3 K / 4)`` layers: a quarter of the texture reads an
    RGB-per-layer layout would need. Returns ``(layers, L)``.
    """
    k, c, h, w = planes.shape
    flat = np.ascontiguousarray(planes.transpose(2, 3, 0, 1).reshape(h, w, k * c), dtype=np.float32)
    layers = -(-k * c // 4)
    padded = np.zeros((h, w, layers * 4), dtype=np.float32)
    padded[..., : k * c] = flat
    return np.ascontiguousarray(padded.reshape(h, w, layers, 4).transpose(2, 0, 1, 3)), layers


def _unit(lights: torch.Tensor) -> torch.Tensor:
    return F.normalize(torch.as_tensor(lights).reshape(-1, 3), dim=-1)


def _mlp_segment(net: nn.Module, input_spec: dict) -> dict | None:
    """The ``mlp`` segment of a stack of linear layers with known activations, else None."""
    layers: list[dict] = []
    modules = list(net.children()) if isinstance(net, nn.Sequential) else [net]
    for m in modules:
        if isinstance(m, nn.Linear):
            omega = float(getattr(m, "omega", 1.0))
            fn = getattr(m, "fn", None)
            act_module = getattr(m, "act", None)
            if fn in ("sin", "cos"):
                act = fn
            elif act_module is not None:
                act = _TORCH_ACTIVATIONS.get(type(act_module))
                if act == "leaky_relu" and float(act_module.negative_slope) != 0.01:
                    return None
                if act in ("softplus", "elu") and (float(getattr(act_module, "beta", 1.0)) != 1.0 or float(getattr(act_module, "alpha", 1.0)) != 1.0):
                    return None
            elif type(m).__name__ == "ReluLayer":
                act = "relu"
            elif type(m) is nn.Linear:
                act = "identity"
            else:
                return None
            if act is None:
                return None
            layers.append({
                "weight": m.weight.detach().double().cpu().tolist(),
                "bias": (m.bias.detach().double().cpu().tolist() if m.bias is not None else [0.0] * m.out_features),
                "omega": omega,
                "act": act,
            })
        elif type(m) in _TORCH_ACTIVATIONS and layers and layers[-1]["act"] == "identity":
            layers[-1]["act"] = _TORCH_ACTIVATIONS[type(m)]
        else:
            return None
    return {"type": "mlp", "input": input_spec, "layers": layers}


def _low_rank(model: Any) -> WebBasis | None:
    if getattr(model, "pixel_net", None) is not None or model.table_size is None:
        return None
    planes = (model.table.detach().float() * model.table_scale).cpu().numpy()
    segments: list[dict] = []
    if model.harmonics >= 0:
        segments.append({"type": "sh", "degree": int(model.harmonics)})
    input_spec = {"type": "direction"} if model.light_encoding == "direction" else {"type": "sh", "degree": int(model.light_degree)}
    mlp = _mlp_segment(model.light_net, input_spec)
    notes = []
    if mlp is None:
        segments = [{"type": "server", "count": int(planes.shape[0])}]
        notes.append("its light network has a layer the page cannot evaluate: the page asks the server for V(w)")
    else:
        segments.append(mlp)

    def factors(lights: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.light_factors(_unit(lights).to(planes_device(model), torch.float32)).float().cpu()

    return WebBasis("low-rank", planes, segments, factors, notes)


def planes_device(model: Any) -> torch.device:
    """The device of a model's parameters or buffers (CPU when it has none)."""
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return torch.device("cpu")


def _light_basis_model(model: Any, name: str) -> WebBasis | None:
    coefficients = getattr(model, "coefficients", None)
    if not isinstance(coefficients, torch.Tensor) or coefficients.dim() != 4 or coefficients.shape[0] == 0:
        return None
    planes = coefficients.detach().float().cpu().numpy()
    cls = type(model).__name__
    if cls == "PTMModel":
        segments = [{"type": "ptm"}]
    elif cls == "HSHModel":
        segments = [{"type": "hsh", "order": int(model.order)}]
    elif cls == "RBFModel":
        segments = [
            {"type": "constant"},
            {"type": "rbf", "centres": model.centres.double().cpu().tolist(), "sigma": float(model.sigma),
             "mixing": model.mixing.double().cpu().tolist()},
        ]
    else:
        segments = [{"type": "server", "count": int(planes.shape[0])}]

    def factors(lights: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            d = _unit(lights).to(device=coefficients.device, dtype=torch.float64)
            return model.basis(d).float().cpu()

    return WebBasis(name, planes, segments, factors)


def web_basis(model: Any, name: str | None = None) -> WebBasis | None:
    """The per-pixel-basis form of ``model`` (see the module docstring), or None when it is not one."""
    name = name or type(model).__name__
    if callable(getattr(model, "light_factors", None)) and hasattr(model, "table_size"):
        return _low_rank(model)
    if callable(getattr(model, "basis", None)) and hasattr(model, "coefficients"):
        return _light_basis_model(model, name)
    return None
