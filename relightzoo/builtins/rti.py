"""The classical fits of Reflectance Transformation Imaging: polynomial texture maps (``ptm``)
and hemispherical harmonics (``hsh``), on a shared base for models linear in a light basis.

Both model each pixel and RGB channel as a weighted sum of ``B`` fixed functions of the light
direction, ``image(x, w) = sum_b C_b(x) f_b(w)``, and fit the coefficient planes ``C``
(``[B, 3, H, W]``) to the training images in closed form (linear least squares, solved once
with the pseudo-inverse of the ``[T, B]`` basis matrix of the training lights). Nothing is
trained (``trainable = False``): the fit happens when the training images are attached, and
the checkpoint holds the coefficient planes, not the images.

- ``ptm`` (Malzbender, Gelb and Wolters 2001): the biquadratic polynomial in the light's
  projection on the image plane ``(lu, lv) = (x, y)``: ``lu^2, lv^2, lu lv, lu, lv, 1``
  (6 terms), per pixel and per RGB channel (the "RGB PTM").
- ``hsh`` (Gautron, Krivanek, Pattanaik and Bouatouch 2004): the hemispherical harmonics,
  an orthonormal basis of functions on the upper hemisphere (the real spherical harmonics of
  the direction whose polar angle ``phi'`` has ``cos phi' = 2 cos phi - 1``, times
  ``sqrt(2)``). ``order`` counts the highest degree: order ``n`` uses the degrees ``0 .. n``,
  ``(n + 1)^2`` terms (order 1: 4, order 2: 9, order 3: 16). Some RTI tools count one more
  (their "order 3" is 9 terms, degrees 0..2): this module's order 2 is that fit.

Because the image is linear in the basis, an environment map relights in one pass
(:meth:`LightBasisModel.relight_envmap`): the basis is summed over the map's lights first,
then multiplied with the planes once. Renders at another size resample the coefficient
planes (bilinear, antialiased when shrinking) before combining them, which equals resampling
each rendered image, since both are linear.

The coefficient planes are buffers whose shape comes from the data: a freshly built model
starts with empty ones and takes their shapes from the saved tensors when it loads a state
dict (``data_shaped_buffers``, resized by :class:`~relightzoo.zoo.RelightModel`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from relightzoo.errors import PluginError, TooFewLightsError
from relightzoo.zoo.api import RelightModel, training_data_tensors
from relightzoo.zoo.hookspecs import hookimpl
from relightzoo.zoo.frame_cache import FrameCache, tensor_key

from .lowrank import real_harmonics

__all__ = [
    "LightBasisModel",
    "PTMModel",
    "HSHModel",
    "ptm_basis",
    "hsh_basis",
    "hsh_terms",
    "HSH_MAX_ORDER",
    "register_models",
]

HSH_MAX_ORDER = 6
"""The highest hemispherical-harmonics order offered (49 terms); beyond it a capture of a
few hundred lights is over-fitted anyway."""


def ptm_basis(lights: torch.Tensor) -> torch.Tensor:
    """The 6 PTM terms ``[lu^2, lv^2, lu lv, lu, lv, 1]`` of unit directions ``lights [N, 3]``: ``[N, 6]``."""
    lu, lv = lights[:, 0], lights[:, 1]
    return torch.stack([lu * lu, lv * lv, lu * lv, lu, lv, torch.ones_like(lu)], -1)


def hsh_terms(order: int) -> int:
    """How many hemispherical harmonics ``order`` uses: ``(order + 1)^2``."""
    return (int(order) + 1) ** 2


def hsh_basis(lights: torch.Tensor, order: int) -> torch.Tensor:
    """The hemispherical harmonics of degrees ``0 .. order`` of unit directions ``lights [N, 3]``
    (z up): ``[N, (order + 1)^2]``, orthonormal over the upper hemisphere.

    The real spherical harmonics (:func:`relightzoo.builtins.lowrank.real_harmonics`) of the
    direction with the same azimuth and ``cos phi' = 2 cos phi - 1``, times ``sqrt(2)``:
    the hemisphere's polar range ``[0, pi/2]`` stretched over the sphere's ``[0, pi]``
    (Gautron et al. 2004). Lights below the horizon are taken at the horizon.
    """
    z = lights[:, 2].clamp(0.0, 1.0)
    horizontal = lights[:, :2]
    norm = horizontal.norm(dim=-1, keepdim=True)
    # The azimuth's unit vector; at the pole any will do, since sin(phi') is 0 there.
    unit = torch.where(norm > 1e-12, horizontal / norm.clamp_min(1e-12), torch.tensor([1.0, 0.0], dtype=lights.dtype, device=lights.device))
    z2 = 2.0 * z - 1.0
    sin2 = 2.0 * torch.sqrt((z * (1.0 - z)).clamp_min(0.0))  # sin(phi') = sqrt(1 - z2^2)
    stretched = torch.cat([unit * sin2[:, None], z2[:, None]], -1)
    return math.sqrt(2.0) * real_harmonics(stretched, int(order))


class LightBasisModel(RelightModel):
    """A model linear in a fixed light basis: ``image(x, w) = sum_b C_b(x) f_b(w)``.

    Subclasses give :meth:`basis` (``[N, 3] -> [N, B]``) and may override :meth:`fit`; this
    class holds the coefficient planes ``coefficients [B, 3, H, W]`` as a buffer, fits them by
    least squares from the training images, renders any size and relights environment maps in
    one pass. Buffers named in :attr:`data_shaped_buffers` take their shape from the data.
    ``chunk`` is accepted and ignored: a render is one product of the basis with the planes.
    """

    trainable = False
    needs_images = True
    label: str = "model"
    """How error messages name the model, e.g. ``model 'ptm'``."""
    data_shaped_buffers: tuple[str, ...] = ("coefficients",)
    """Buffers whose shapes depend on the data: loading a state dict resizes them first
    (:class:`~relightzoo.zoo.RelightModel`'s load pre-hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("coefficients", torch.zeros(0, 3, 0, 0))
        self._frames = FrameCache()

    # -- the basis ---------------------------------------------------------------------------
    @property
    def terms(self) -> int:
        """How many basis functions the model fits (``B``)."""
        raise NotImplementedError

    def basis(self, lights: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """The basis functions of unit directions ``lights [N, 3]`` (float64): ``[N, B]``."""
        raise NotImplementedError

    # -- fitting -----------------------------------------------------------------------------
    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Fit the model to the training images ``[T, H, W, 3]`` (float, [0, 1]) lit from ``lights [T, 3]``.

        Every call fits afresh: the fit is a function of the images, so attaching the same
        images again gives the same planes.
        """
        images, lights = training_data_tensors(self.label, images, lights)
        device = self.coefficients.device
        lights = F.normalize(lights.to(device=device, dtype=torch.float64), dim=-1)
        self.fit(images.to(device=device, dtype=torch.float32), lights)

    def check_light_count(self, count: int, needed: int, what: str = "") -> None:
        """Raise the one-line :class:`TooFewLightsError` when ``count < needed``."""
        if count < needed:
            raise TooFewLightsError(f"{self.label}{what} needs at least {needed} training lights, got {count}")

    def fit(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Least-squares coefficient planes for ``images [T, H, W, 3]`` under ``lights [T, 3]`` (float64)."""
        t, h, w, _ = images.shape
        self.check_light_count(t, self.terms)
        design = self.basis(lights)  # [T, B]
        solve = torch.linalg.pinv(design).to(torch.float32)  # [B, T]
        planes = solve @ images.reshape(t, h * w * 3)
        self.coefficients = planes.reshape(-1, h, w, 3).permute(0, 3, 1, 2).contiguous()

    def check_fitted(self) -> None:
        """Raise a one-line error when the model has not been fitted or loaded yet."""
        if self.coefficients.shape[-1] == 0:
            raise PluginError(f"{self.label} is not fitted; attach_training_data() or load a checkpoint first")

    # -- rendering ---------------------------------------------------------------------------
    def _light_basis(self, lights: torch.Tensor) -> torch.Tensor:
        lights = torch.as_tensor(lights, dtype=torch.float64, device=self.coefficients.device).reshape(-1, 3)
        return self.basis(F.normalize(lights, dim=-1)).to(torch.float32)

    def planes(self, height: int, width: int) -> torch.Tensor:
        """The coefficient planes ``[B, 3, height, width]``, resampled (bilinear) when the size differs."""
        self.check_fitted()
        planes = self.coefficients
        if tuple(planes.shape[-2:]) == (height, width):
            return planes
        b = planes.shape[0]
        shrink = height < planes.shape[-2] or width < planes.shape[-1]
        out = F.interpolate(planes.reshape(1, b * 3, *planes.shape[-2:]), size=(height, width), mode="bilinear",
                            align_corners=False, antialias=shrink)
        return out.reshape(b, 3, height, width)

    def pixel_planes(self, height: int, width: int) -> torch.Tensor:
        """The planes as one ``[height * width * 3, B]`` matrix, so a frame is one matrix-vector
        product. Light-independent: kept across frames of one size (:mod:`relightzoo.zoo.frame_cache`)."""
        key = (int(height), int(width)) + tensor_key(self.coefficients)
        b = self.coefficients.shape[0]
        return self._frames.get(key, lambda: self.planes(height, width).permute(2, 3, 1, 0).reshape(-1, b).contiguous())

    @torch.no_grad()
    def render_linear(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Unclamped images ``[L, H, W, 3]`` (``sum_b C_b f_b``) for ``lights [L, 3]``, on the CPU."""
        basis = self._light_basis(lights)  # [L, B]
        height, width = int(height), int(width)
        images = basis @ self.pixel_planes(height, width).T  # [L, H * W * 3]
        return images.reshape(len(basis), height, width, 3).float().cpu()

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1]: :meth:`render_linear` clamped."""
        return self.render_linear(lights, height, width, chunk=chunk).clamp_(0.0, 1.0)

    @torch.no_grad()
    def relight_envmap(
        self, dirs: torch.Tensor, weights: torch.Tensor, height: int, width: int, *, chunk: int | None = None
    ) -> torch.Tensor:
        """``sum_j weights[j] * image(w_j)`` as ``[H, W, 3]`` (unclamped, unscaled) in one pass.

        ``dirs [K, 3]`` are unit directions, ``weights [K, 3]`` per-channel weights: the basis
        is summed over the lights first (``S = sum_j f(w_j) weights[j]``, ``[B, 3]``), then
        combined with the planes once. Equal to the weighted sum of :meth:`render_linear`
        images, and of :meth:`render` images wherever no single render leaves [0, 1].
        """
        device = self.coefficients.device
        basis = self._light_basis(dirs).double()
        weights = torch.as_tensor(weights, dtype=torch.float64, device=device).reshape(-1, 3)
        if len(basis) != len(weights):
            raise PluginError(f"{self.label}: {len(basis)} directions but {len(weights)} weights")
        summed = torch.einsum("jb,jc->bc", basis, weights).float()  # [B, 3]
        planes = self.planes(int(height), int(width))
        return torch.einsum("bc,bchw->hwc", summed, planes).float().cpu()


class PTMModel(LightBasisModel):
    """Polynomial texture map: per pixel and RGB channel, the biquadratic
    ``a0 lu^2 + a1 lv^2 + a2 lu lv + a3 lu + a4 lv + a5`` in the light's projection
    ``(lu, lv)``, fitted by least squares (needs at least 6 training lights)."""

    label = "model 'ptm'"

    @property
    def terms(self) -> int:
        return 6

    def basis(self, lights: torch.Tensor) -> torch.Tensor:
        return ptm_basis(lights)


class HSHModel(LightBasisModel):
    """Hemispherical harmonics of degrees ``0 .. order`` (``(order + 1)^2`` terms: order 2 is 9,
    order 3 is 16), per pixel and RGB channel, fitted by least squares; needs at least as
    many training lights as terms."""

    def __init__(self, order: int = 2) -> None:
        super().__init__()
        if not 1 <= order <= HSH_MAX_ORDER:
            raise PluginError(f"model 'hsh': order must be from 1 to {HSH_MAX_ORDER}, got {order}")
        self.order = int(order)
        self.label = "model 'hsh'"

    @property
    def terms(self) -> int:
        return hsh_terms(self.order)

    def check_light_count(self, count: int, needed: int, what: str = "") -> None:
        super().check_light_count(count, needed, what or f" of order {self.order}")

    def basis(self, lights: torch.Tensor) -> torch.Tensor:
        return hsh_basis(lights, self.order)


@hookimpl
def register_models(register):
    """The classical RTI fits with a fixed light basis."""
    register("ptm", PTMModel, "classical RTI: polynomial texture map, a biquadratic in (lu, lv) per pixel (least squares, no training)")
    register("hsh", HSHModel, "classical RTI: hemispherical harmonics of degree <= order per pixel (least squares, no training)")
