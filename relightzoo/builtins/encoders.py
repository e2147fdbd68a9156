"""Built-in coordinate encoders: ``(pixels [N, 2], lights [N, 3]) -> features [N, F]``.

- ``raw``: (x, y, phi, theta), the light in spherical form as the thesis fed it;
- ``scaled-spherical``: (x, y, phi / 10, theta / 100) by default, the thesis's scaling that
  keeps the network from over-fitting the light dimensions;
- ``fourier``: Gaussian random Fourier features (Tancik et al. 2020) of the pixel and of the
  light direction, each with its own scale, feature count and seed;
- ``direction``: (x, y) and the light as its unit vector, with no seam at theta = +-pi and
  no singular pole.

Like every built-in, this module imports only relightzoo's public API and registers through
the same hook a third-party plugin implements.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from relightzoo.errors import PluginError
from relightzoo.lights import cartesian_to_spherical, light_spacing
from relightzoo.zoo.api import Encoder
from relightzoo.zoo.hookspecs import hookimpl

__all__ = [
    "RawEncoder",
    "ScaledSphericalEncoder",
    "FourierEncoder",
    "DirectionEncoder",
    "light_scale_for",
    "register_encoders",
]


class RawEncoder(Encoder):
    """(x, y, phi, theta): pixel coordinates and the light's polar and azimuth angles."""

    separable = True  # pixel features and light features side by side

    def __init__(self) -> None:
        super().__init__()
        self.out_features = 4

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        return torch.cat([pixels, cartesian_to_spherical(lights)], -1)


class ScaledSphericalEncoder(Encoder):
    """(x, y, phi / phi_divisor, theta / theta_divisor), the thesis's input scaling."""

    separable = True  # pixel features and light features side by side

    def __init__(self, phi_divisor: float = 10.0, theta_divisor: float = 100.0) -> None:
        super().__init__()
        for what, value in (("phi_divisor", phi_divisor), ("theta_divisor", theta_divisor)):
            if not math.isfinite(value) or value == 0:
                raise PluginError(f"encoder 'scaled-spherical': {what} must be a finite non-zero number, got {value}")
        self.phi_divisor = float(phi_divisor)
        self.theta_divisor = float(theta_divisor)
        self.out_features = 4
        self.register_buffer("scale", torch.tensor([1.0 / self.phi_divisor, 1.0 / self.theta_divisor]), persistent=False)

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        return torch.cat([pixels, cartesian_to_spherical(lights) * self.scale.to(lights.dtype)], -1)


AUTO_LIGHT_SCALE_CALIBRATION = ((12.729, 0.45), (19.052, 0.2), (28.987, 0.15))
"""(spacing of the training lights in degrees, best light_scale) measured with the quick
recipe's latent-siren on the demo and blocks scenes: 100, 49 and 25 uniform lights
(docs/ablation.md, "The light's frequency"). ``light_scale=auto`` interpolates between them."""


def light_scale_for(lights: torch.Tensor) -> float:
    """The ``direction`` encoder's light frequency for these training lights (``[T, 3]``).

    Closer lights pin the light response down at a finer angle, so the network may vary
    faster with the light before it over-fits between them: the value is interpolated, in
    log spacing and log scale, through :data:`AUTO_LIGHT_SCALE_CALIBRATION` at the lights'
    spacing (:func:`relightzoo.lights.light_spacing`), and keeps the nearest measured value
    outside it (a capture sparser than 25 lights, or with fewer than two, gets the sparsest
    value; one denser than 100 lights the densest, as no denser one was measured).
    """
    spacings = np.log([s for s, _ in AUTO_LIGHT_SCALE_CALIBRATION])
    scales = np.log([v for _, v in AUTO_LIGHT_SCALE_CALIBRATION])
    if len(lights) < 2:
        return float(np.exp(scales[-1]))
    spacing = math.log(max(math.degrees(light_spacing(lights)), 1e-6))
    return round(float(np.exp(np.interp(spacing, spacings, scales))), 3)


class DirectionEncoder(Encoder):
    """(x, y, lx, ly, lz): the light as a unit vector, continuous everywhere on the sphere.

    ``light_scale`` multiplies the direction: it sets the light inputs' frequency apart from
    the pixel inputs' (a sine layer sees ``omega_0 * light_scale`` on the light), the role
    scaled-spherical's divisors play. The default 0.1 comes from ``relightzoo ablate`` on the
    demo scene (docs/ablation.md): with 1.0 a 30-omega SIREN fits its training lights but
    renders noise between them (13.0 dB held-out with xu5:0.77, 21.6 with uniform:100);
    with 0.1 it reaches 19.4 and 28.1 dB. ``light_scale=auto`` chooses it from the spacing
    of the training lights (:func:`light_scale_for`; the quick recipe uses it).
    """

    separable = True  # pixel features and light features side by side
    auto_args = {"light_scale": light_scale_for}  # light_scale=auto: chosen from the training lights' spacing

    def __init__(self, light_scale: float = 0.1) -> None:
        super().__init__()
        if not math.isfinite(light_scale) or light_scale <= 0:
            raise PluginError(f"encoder 'direction': light_scale must be a positive number, got {light_scale}")
        self.light_scale = float(light_scale)
        self.out_features = 5

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        lights = lights if self.light_scale == 1.0 else lights * self.light_scale
        return torch.cat([pixels, lights], -1)


class FourierEncoder(Encoder):
    """Gaussian random Fourier features of the pixel (x, y) and the light direction (Tancik et al. 2020).

    Each part is mapped to ``[sin(2 pi B v), cos(2 pi B v)]`` with ``B ~ N(0, scale^2)`` of
    shape ``[features, dim]`` drawn from its own seed. The light part uses the unit vector
    (x, y, z), not (phi, theta), so the features have no seam at theta = +-pi. A part with
    0 features passes its raw coordinates through. ``include_input`` also appends the raw
    (x, y, lx, ly, lz). The matrices are buffers, so they are saved in checkpoints.
    """

    separable = True  # pixel features and light features side by side

    def __init__(
        self,
        pixel_features: int = 128,
        pixel_scale: float = 10.0,
        pixel_seed: int = 0,
        light_features: int = 32,
        light_scale: float = 1.0,
        light_seed: int = 1,
        include_input: bool = False,
    ) -> None:
        super().__init__()
        for what, n in (("pixel_features", pixel_features), ("light_features", light_features)):
            if n < 0:
                raise PluginError(f"encoder 'fourier': {what} must be 0 or more, got {n}")
        for what, s in (("pixel_scale", pixel_scale), ("light_scale", light_scale)):
            if not math.isfinite(s) or s < 0:
                raise PluginError(f"encoder 'fourier': {what} must be a non-negative number, got {s}")
        self.register_buffer("pixel_matrix", self._gaussian(pixel_features, 2, pixel_scale, pixel_seed))
        self.register_buffer("light_matrix", self._gaussian(light_features, 3, light_scale, light_seed))
        self.include_input = bool(include_input)
        pixel_out = 2 * pixel_features if pixel_features else 2
        light_out = 2 * light_features if light_features else 3
        self.out_features = pixel_out + light_out + (5 if include_input else 0)

    @staticmethod
    def _gaussian(features: int, dim: int, scale: float, seed: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(seed))
        return torch.randn(features, dim, generator=gen) * (2 * math.pi * scale)

    @staticmethod
    def _features(v: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
        if matrix.shape[0] == 0:
            return v
        proj = v @ matrix.to(v.dtype).T
        return torch.cat([torch.sin(proj), torch.cos(proj)], -1)

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        parts = [self._features(pixels, self.pixel_matrix), self._features(lights, self.light_matrix)]
        if self.include_input:
            parts += [pixels, lights]
        return torch.cat(parts, -1)


@hookimpl
def register_encoders(register):
    """The built-in encoders."""
    register("raw", RawEncoder, "(x, y, phi, theta): pixel position and the light's spherical angles")
    register("scaled-spherical", ScaledSphericalEncoder, "(x, y, phi/10, theta/100): the thesis's scaled light angles")
    register("fourier", FourierEncoder, "Gaussian random Fourier features of pixel and light direction (Tancik et al. 2020)")
    register("direction", DirectionEncoder, "(x, y, lx, ly, lz): light as a unit vector, no seam at theta=+-pi, no pole")
