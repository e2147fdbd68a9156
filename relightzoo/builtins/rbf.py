"""Radial-basis-function interpolation over the light directions (``rbf``), the default
relighting of CNR-ISTI's Relight, optionally on PCA-compressed planes.

For a light ``w`` the image is the mean training image plus a Gaussian-kernel interpolation
of the centred training images over the light sphere::

    image(w) = mean + sum_t a_t(w) (I_t - mean),   a(w) = (K + lambda I)^-1 k(w)

with ``k(w)_t = exp(-angle(w, w_t)^2 / (2 sigma^2))`` on the great-circle angle, ``K`` the
same kernel between the training lights, and ``lambda`` (``regularizer``) a ridge that trades
exact interpolation for smoothness (0 interpolates the training images exactly). ``sigma``
is ``width`` times the training lights' spacing (the mean angle from each training light to
its nearest neighbour), so one ``width`` suits sparse and dense captures alike.

With ``planes=P`` the centred training images are first projected onto their ``P`` principal
components (images as vectors of ``H * W * 3`` values; the components are colour eigen-images)
and the interpolation runs on each light's ``P`` coefficients, as Relight does by default:
the checkpoint then holds ``P + 1`` planes instead of one per training light. ``planes=0``
keeps every training image.

Either way the model is linear in a light basis ``[1, k(w)^T A]`` (``A [T, Q]``, the solved
kernel system times the PCA coefficients, or alone), so it shares the fitting-free rendering,
resampling and one-pass environment maps of :class:`~relightzoo.builtins.rti.LightBasisModel`.
"""

from __future__ import annotations

import math

import torch

from relightzoo.errors import PluginError
from relightzoo.lights import light_spacing
from relightzoo.zoo.hookspecs import hookimpl

from .rti import LightBasisModel

__all__ = ["RBFModel", "sphere_angles", "register_models"]

_NAME = "model 'rbf'"


def sphere_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Great-circle angles ``[N, M]`` between unit vectors ``a [N, 3]`` and ``b [M, 3]``, accurate
    for small angles too (``2 asin(|a - b| / 2)``)."""
    return 2.0 * torch.asin((torch.cdist(a, b) / 2.0).clamp(0.0, 1.0))


class RBFModel(LightBasisModel):
    """Gaussian radial-basis interpolation of the training images over the light sphere.

    Arguments: ``width`` the kernel's standard deviation in units of the training lights'
    spacing (> 0); ``regularizer`` the ridge ``lambda`` added to the kernel matrix's diagonal
    (>= 0; 0 interpolates exactly); ``planes`` the number of principal components the images
    are compressed to (0: none).
    """

    label = _NAME
    data_shaped_buffers = ("coefficients", "centres", "mixing")

    def __init__(self, width: float = 1.0, regularizer: float = 1e-3, planes: int = 0) -> None:
        super().__init__()
        if not math.isfinite(width) or width <= 0:
            raise PluginError(f"{_NAME}: width must be a positive number (in units of the light spacing), got {width}")
        if not math.isfinite(regularizer) or regularizer < 0:
            raise PluginError(f"{_NAME}: regularizer must be 0 or a positive number, got {regularizer}")
        if planes < 0:
            raise PluginError(f"{_NAME}: planes must be 0 (no PCA) or a number of principal components, got {planes}")
        self.width = float(width)
        self.regularizer = float(regularizer)
        self.n_planes = int(planes)
        self.register_buffer("centres", torch.zeros(0, 3, dtype=torch.float64))
        self.register_buffer("mixing", torch.zeros(0, 0, dtype=torch.float64))
        self.register_buffer("sigma", torch.zeros((), dtype=torch.float64))

    @property
    def terms(self) -> int:
        return 1 + self.mixing.shape[1]

    def kernel(self, lights: torch.Tensor) -> torch.Tensor:
        """The Gaussian kernel ``[N, T]`` between ``lights [N, 3]`` and the training lights."""
        return torch.exp(-0.5 * (sphere_angles(lights, self.centres) / self.sigma) ** 2)

    def basis(self, lights: torch.Tensor) -> torch.Tensor:
        lights = lights.to(self.mixing.dtype)
        ones = torch.ones(len(lights), 1, dtype=lights.dtype, device=lights.device)
        return torch.cat([ones, self.kernel(lights) @ self.mixing], -1)

    def fit(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Solve the kernel system for ``images [T, H, W, 3]`` under ``lights [T, 3]`` (float64)."""
        t, h, w, _ = images.shape
        self.check_light_count(t, 2)
        if self.n_planes > t - 1:
            raise PluginError(
                f"{_NAME}: planes={self.n_planes} is more than the {t - 1} principal components of {t} training "
                f"images; use planes from 1 to {t - 1}, or 0 for no PCA"
            )
        data = images.reshape(t, h * w * 3)
        mean = data.mean(0)
        centred = (data - mean).double()
        if self.n_planes:
            # PCA through the small T x T Gram matrix: centred = U S V^T, planes = V^T, coefficients U S.
            evals, evecs = torch.linalg.eigh(centred @ centred.T)
            top = torch.argsort(evals, descending=True)[: self.n_planes]
            s = evals[top].clamp_min(0.0).sqrt()
            u = evecs[:, top]
            keep = s > s.max() * 1e-12
            eigen_images = torch.zeros(self.n_planes, centred.shape[1], dtype=torch.float64, device=data.device)
            eigen_images[keep] = (u[:, keep] / s[keep]).T @ centred
            coefficients = u * s  # [T, P]
            planes = eigen_images.float()
        else:
            coefficients = torch.eye(t, dtype=torch.float64, device=data.device)
            planes = centred.float()
        self.centres = lights.contiguous()
        spacing = light_spacing(lights, statistic="mean")
        self.sigma = torch.tensor(max(self.width * spacing, 1e-6), dtype=torch.float64, device=lights.device)
        gram = self.kernel(lights) + self.regularizer * torch.eye(t, dtype=torch.float64, device=lights.device)
        self.mixing = torch.linalg.solve(gram, coefficients).contiguous()  # symmetric K: k^T K^-1 C
        stacked = torch.cat([mean[None], planes], 0)
        self.coefficients = stacked.reshape(-1, h, w, 3).permute(0, 3, 1, 2).contiguous()


@hookimpl
def register_models(register):
    """The RBF interpolation."""
    register(
        "rbf",
        RBFModel,
        "classical RTI: Gaussian radial-basis interpolation over the light sphere, optionally on PCA planes (no training)",
    )
