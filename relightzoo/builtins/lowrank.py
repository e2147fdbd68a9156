"""A low-rank light-transport model: ``image(x, w) = sum_k U_k(x) V_k(w)``.

Light transport is linear in the lighting and close to low rank, so an image under light
``w`` is modelled as a sum of ``R`` products of a pixel basis ``U_k(x)`` (RGB, so each
component carries its own colour) and a scalar light response ``V_k(w)``:

- ``U`` is either a learned per-pixel table (``pixel_basis="table"``: ``R x 3`` values per
  pixel at the training resolution, bilinearly interpolated at any other size) or a
  coordinate network over the pixel position (``pixel_basis="network"``: the model's
  encoder, fed the pixel and a fixed light, then hidden layers of the chosen activation and
  a linear head with ``3 R`` outputs);
- ``V`` is a small network over the light encoding (the unit direction by default) with
  ``rank`` outputs, beside a fixed physics prior: the real spherical harmonics of ``w`` up
  to degree ``harmonics`` (degree 1 is ``[1, wx, wy, wz]``, the photometric-stereo model
  ``albedo * (n . w) + ambient``; degree 2 also captures most of the clamped cosine
  ``max(0, n . w)`` of a Lambertian pixel). The components ``R = rank + (harmonics + 1)^2``.

The model's image (in [0, 1] space) is *linear in V*: ``forward`` returns
``2 * sum_k U_k V_k - 1`` so that ``(out + 1) / 2 = sum_k U_k V_k`` exactly. Hence the
image under a weighted sum of lights ``sum_j L_j`` (per RGB channel) is::

    sum_j L_j image(x, w_j) = sum_k U_k(x) (sum_j L_j V_k(w_j))

which :meth:`LowRankModel.relight_envmap` evaluates in one pass over the pixels, whatever
the number of directions. Renders (:meth:`~LowRankModel.render`) are clamped to [0, 1] like
every model's; :meth:`~LowRankModel.render_linear` returns them unclamped. The one-pass
result equals the weighted sum of the *unclamped* renders exactly (up to float rounding);
where a single-light render would have been clamped (a value below 0 or above 1) the
weighted sum of clamped renders differs from it, by the clamped-off amount times its weight.

The table needs the training resolution: it is taken from the training images (the model
asks for them, ``needs_images``) unless ``height`` and ``width`` are given. Only the first
call of :meth:`~LowRankModel.attach_training_data` sizes the table; later calls (evaluation
hands the images to every image model) leave a trained or loaded model untouched.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from relightzoo.data.coords import pixel_grid
from relightzoo.errors import PluginError
from relightzoo.util.devices import device_of
from relightzoo.zoo.args import check_at_least
from relightzoo.zoo.api import DEFAULT_RENDER_CHUNK, Backbone, CoordinateModel, Encoder
from relightzoo.zoo.factory import create_activation
from relightzoo.zoo.hookspecs import hookimpl
from relightzoo.zoo.frame_cache import FRAME_CACHE_BYTES, FrameCache, tensor_key

__all__ = ["LowRankModel", "PIXEL_BASES", "LIGHT_ENCODINGS", "real_harmonics", "register_models"]

PIXEL_BASES = ("table", "network")
"""How U is represented: a per-pixel table, or a coordinate network."""

LIGHT_ENCODINGS = ("direction", "harmonics")
"""What the V network reads: the unit direction, or its real spherical harmonics up to ``light_degree``."""

_FIXED_LIGHT = (0.0, 0.0, 1.0)
"""The light the encoder sees when it encodes a pixel for U (U does not depend on the light)."""

_MAX_DEGREE = 8


def real_harmonics(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Real spherical harmonics of unit vectors ``dirs [N, 3]`` up to ``degree``: ``[N, (degree + 1)^2]``.

    Orthonormal on the sphere (the usual graphics convention, band by band ``m = -l .. l``),
    computed by the associated-Legendre recurrence; degree -1 gives ``[N, 0]``.
    """
    n = dirs.shape[0]
    if degree < 0:
        return dirs.new_zeros(n, 0)
    x, y, z = dirs.unbind(-1)
    phi_c = [torch.ones_like(x)]  # cos(m theta) * sin^m(phi) = Re((x + iy)^m)
    phi_s = [torch.zeros_like(x)]
    for _ in range(degree):
        c, s = phi_c[-1], phi_s[-1]
        phi_c.append(c * x - s * y)
        phi_s.append(c * y + s * x)
    # P[l][m]: associated Legendre polynomials divided by sin^m (a polynomial in z).
    p = [[torch.ones_like(z)]]
    for m in range(1, degree + 1):
        p.append([])
    for m in range(degree + 1):
        if m > 0:
            p[m].append(p[m - 1][0] * (2 * m - 1))  # P_m^m / sin^m, without the (-1)^m phase
        if m + 1 <= degree:
            p[m].append(z * (2 * m + 1) * p[m][0])
        for l in range(m + 2, degree + 1):
            p[m].append(((2 * l - 1) * z * p[m][l - m - 1] - (l + m - 1) * p[m][l - m - 2]) / (l - m))
    out = []
    for l in range(degree + 1):
        for m in range(-l, l + 1):
            am = abs(m)
            k = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - am) / math.factorial(l + am))
            leg = p[am][l - am]
            if m == 0:
                out.append(k * leg)
            elif m > 0:
                out.append(math.sqrt(2) * k * leg * phi_c[am])
            else:
                out.append(math.sqrt(2) * k * leg * phi_s[am])
    return torch.stack(out, -1)


class LowRankModel(CoordinateModel):
    """``image(x, w) = sum_k U_k(x) V_k(w)``: a pixel basis U times a light response V.

    Arguments: ``rank`` learned components (>= 1; the ``(harmonics + 1)^2`` fixed
    spherical-harmonic components come on top); ``pixel_basis`` ``table`` or ``network``;
    ``height``/``width`` the table's size (0: the training images'); ``harmonics`` the
    degree of the fixed harmonic part of V (-1: none); ``light_encoding`` and
    ``light_degree`` what V's network reads; ``light_hidden_layers`` x
    ``light_hidden_features`` and ``light_activation`` (any registered activation) its
    shape; ``pixel_hidden_layers`` x ``pixel_hidden_features`` the U network's (with the
    model's encoder and activation); ``table_scale`` multiplies the stored table (Adam moves
    every parameter by about the learning rate a step, so the table moves by about
    ``lr * table_scale``: 0.1 lets V learn fast while the data-initialised table moves
    slowly); ``data_init`` starts the table from the training images' singular vectors.
    """

    data_shaped_buffers = ("table",)
    """The per-pixel table ``[R, 3, H, W]`` takes the training images' size (a parameter)."""

    train_defaults = {"steps": 1000, "lr": 3e-3, "schedule": "cosine"}
    """Training settings this model wants where the user sets none (the thesis's Adam at 1e-4
    with no schedule leaves V far from converged); see relightzoo.train.training_settings."""

    def __init__(
        self,
        *,
        encoder: Encoder,
        activation: Backbone,
        rank: int = 64,
        pixel_basis: str = "table",
        height: int = 0,
        width: int = 0,
        harmonics: int = 2,
        light_encoding: str = "direction",
        light_degree: int = 4,
        light_hidden_layers: int = 2,
        light_hidden_features: int = 128,
        light_activation: str = "silu",
        pixel_hidden_layers: int = 3,
        pixel_hidden_features: int = 256,
        table_scale: float = 0.1,
        data_init: bool = True,
    ) -> None:
        super().__init__()
        self._frames = FrameCache()
        name = "model 'low-rank'"
        if rank < 1:
            raise PluginError(f"{name}: rank must be at least 1, got {rank}")
        if pixel_basis not in PIXEL_BASES:
            raise PluginError(f"{name}: pixel_basis must be one of {', '.join(PIXEL_BASES)}, got {pixel_basis!r}")
        if light_encoding not in LIGHT_ENCODINGS:
            raise PluginError(f"{name}: light_encoding must be one of {', '.join(LIGHT_ENCODINGS)}, got {light_encoding!r}")
        if height < 0 or width < 0 or (height == 0) != (width == 0):
            raise PluginError(f"{name}: height and width must both be positive (or both 0: from the training images), got {height} x {width}")
        if not -1 <= harmonics <= _MAX_DEGREE:
            raise PluginError(f"{name}: harmonics must be from -1 (none) to {_MAX_DEGREE}, got {harmonics}")
        if not 0 <= light_degree <= _MAX_DEGREE:
            raise PluginError(f"{name}: light_degree must be from 0 to {_MAX_DEGREE}, got {light_degree}")
        for what, value in (
            ("light_hidden_layers", light_hidden_layers),
            ("pixel_hidden_layers", pixel_hidden_layers),
        ):
            if value < 0:
                raise PluginError(f"{name}: {what} must be 0 or more, got {value}")
        check_at_least(name, 1, light_hidden_features=light_hidden_features, pixel_hidden_features=pixel_hidden_features)
        if not math.isfinite(table_scale) or table_scale <= 0:
            raise PluginError(f"{name}: table_scale must be a positive number, got {table_scale}")
        self.rank = int(rank)
        self.pixel_basis = pixel_basis
        self.harmonics = int(harmonics)
        self.light_encoding = light_encoding
        self.light_degree = int(light_degree)
        self.table_scale = float(table_scale)
        self.data_init = bool(data_init)
        self.register_buffer("initialised", torch.zeros(1, dtype=torch.uint8))
        self.components = self.rank + (self.harmonics + 1) ** 2

        # V: a small network over the light encoding, beside the fixed harmonics.
        v_in = 3 if light_encoding == "direction" else (self.light_degree + 1) ** 2
        v_act = create_activation(light_activation)
        layers: list[nn.Module] = []
        for i in range(light_hidden_layers):
            layers.append(v_act.layer(v_in if i == 0 else light_hidden_features, light_hidden_features, first=i == 0))
        v_head = nn.Linear(light_hidden_features if light_hidden_layers else v_in, self.rank)
        v_act.init_head(v_head)
        self.light_net = nn.Sequential(*layers, v_head)

        # U: a per-pixel table or a coordinate network.
        self.encoder: Encoder | None = None
        self.pixel_net: nn.Module | None = None
        self.register_buffer("fixed_light", torch.tensor(_FIXED_LIGHT), persistent=False)
        if pixel_basis == "network":
            self.encoder = encoder
            u_layers = [
                activation.layer(encoder.out_features if i == 0 else pixel_hidden_features, pixel_hidden_features, first=i == 0)
                for i in range(pixel_hidden_layers)
            ]  # 0 hidden layers: the head reads the encoding, as V's does with light_hidden_layers=0
            u_head = nn.Linear(pixel_hidden_features if pixel_hidden_layers else encoder.out_features, 3 * self.components)
            activation.init_head(u_head)
            self.pixel_net = nn.Sequential(*u_layers, u_head)
            self.table = None
        else:
            self.table = nn.Parameter(torch.zeros(0, 3, 0, 0))
            if height:
                self._make_table(int(height), int(width), torch.device("cpu"))

    # -- the table ---------------------------------------------------------------------------
    def _make_table(self, height: int, width: int, device: torch.device) -> None:
        """A zero table ``[R, 3, H, W]`` (stored divided by ``table_scale``)."""
        self.table = nn.Parameter(torch.zeros(self.components, 3, height, width, device=device))

    @property
    def table_size(self) -> tuple[int, int] | None:
        """``(height, width)`` of the pixel table; None for a network basis or an unsized table."""
        if self.table is None or self.table.shape[-1] == 0:
            return None
        return int(self.table.shape[-2]), int(self.table.shape[-1])

    @property
    def needs_images(self) -> bool:  # type: ignore[override]
        """A table model reads the training images once: to size the table and to start it
        from their principal components (see :meth:`attach_training_data`)."""
        return self.pixel_basis == "table" and not bool(self.initialised.item())

    @torch.no_grad()
    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Start a table model from the training images ``[T, H, W, 3]``, once.

        The table takes the images' size (unless ``height``/``width`` gave one), and with
        ``data_init`` its learned components start as the images' leading singular vectors
        scaled by their spread, with V's output layer at zero: U starts spanning the
        captures, and V has only to learn each light's coefficients. Later calls (evaluation hands the
        images to every image model) leave a trained or loaded model untouched.
        """
        if self.pixel_basis != "table" or bool(self.initialised.item()):
            return
        images = torch.as_tensor(images)
        if images.dim() != 4 or images.shape[-1] != 3 or images.shape[0] == 0:
            raise PluginError(f"model 'low-rank': training images must be [T, H, W, 3] with T >= 1, got {list(images.shape)}")
        t, h, w, _ = images.shape
        if self.table_size is None:
            self._make_table(int(h), int(w), images.device)
        if self.data_init and self.table_size == (h, w):
            self._init_from_images(images.to(self.table.device, torch.float32))
        self.initialised.fill_(1)

    def _init_from_images(self, images: torch.Tensor) -> None:
        """Learned components start as the images' singular vectors (not mean-centred, so V can
        dim every component toward lights the images never saw), the harmonics at zero."""
        t, h, w, _ = images.shape
        flat = images.permute(0, 3, 1, 2).reshape(t, -1).double()  # [T, 3 H W], channel-major like the table
        _, sing, vh = torch.linalg.svd(flat, full_matrices=False)
        start = (self.harmonics + 1) ** 2
        n = min(self.rank, len(sing))
        spread = sing[:n] / math.sqrt(t)
        spread = torch.where(spread > 1e-6 * spread[0].clamp_min(1e-12), spread, torch.zeros_like(spread))
        table = torch.zeros(self.components, 3 * h * w, dtype=torch.float64, device=flat.device)
        table[start : start + n] = vh[:n] * spread[:, None]
        self.table.copy_((table / self.table_scale).reshape(self.components, 3, h, w).to(self.table.dtype))
        head = self.light_net[-1]
        head.weight.zero_()
        head.bias.zero_()

    def resize_data_shaped_buffer(self, name: str, shape: torch.Size) -> None:
        """The table's size is the training resolution: loading takes it from the saved tensor."""
        if name == "table" and self.pixel_basis == "table":
            self._make_table(int(shape[-2]), int(shape[-1]), self.table.device)

    # -- the two factors -----------------------------------------------------------------------
    def light_factors(self, lights: torch.Tensor) -> torch.Tensor:
        """``V(w)``: ``[N, R]`` for unit directions ``lights [N, 3]`` (harmonics first, then the network)."""
        w = lights / lights.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        enc = w if self.light_encoding == "direction" else real_harmonics(w, self.light_degree)
        return torch.cat([real_harmonics(w, self.harmonics), self.light_net(enc)], -1)

    def pixel_factors(self, pixels: torch.Tensor) -> torch.Tensor:
        """``U(x)``: ``[N, R, 3]`` for pixel coordinates ``pixels [N, 2]`` in [-1, 1]."""
        if self.pixel_net is not None:
            feats = self.encoder(pixels, self.fixed_light.to(pixels.dtype).expand(len(pixels), 3))
            return self.pixel_net(feats).reshape(len(pixels), self.components, 3)
        if self.table_size is None:
            raise PluginError(
                "model 'low-rank' with pixel_basis=table does not know its resolution: give height and width, "
                "train it, or load a checkpoint"
            )
        grid = pixels.to(self.table.dtype).reshape(1, 1, -1, 2)
        table = self.table.reshape(1, self.components * 3, *self.table.shape[-2:])
        u = F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=False)
        return (u.reshape(self.components, 3, -1) * self.table_scale).permute(2, 0, 1)

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """RGB ``[N, 3]`` in [-1, 1] (not clamped): ``2 * sum_k U_k(x) V_k(w) - 1``."""
        u = self.pixel_factors(pixels)
        v = self.light_factors(lights)
        return 2.0 * torch.einsum("nkc,nk->nc", u, v) - 1.0

    # -- rendering -----------------------------------------------------------------------------
    def _pixel_chunks(self, height: int, width: int, chunk: int | None):
        """``(rows slice, U [n, 3, R])`` over the image, ``chunk`` pixels (whole rows) at a time
        (default :data:`~relightzoo.zoo.DEFAULT_RENDER_CHUNK`), laid out so that a frame is one
        matrix product with ``V [R, L]``. U does not depend on the light:
        when the whole image's U fits in :data:`~relightzoo.zoo.frame_cache.FRAME_CACHE_BYTES`
        it is computed once per size and reused by later frames."""
        device = device_of(self)
        chunk = DEFAULT_RENDER_CHUNK if chunk is None else int(chunk)
        rows_per_chunk = max(1, chunk // max(width, 1))
        whole = None
        if height * width * self.components * 3 * 4 <= FRAME_CACHE_BYTES:
            key = (height, width) + tensor_key(*self.parameters(), *self.buffers())
            whole = self._frames.get(key, lambda: self._pixel_factors_rows(height, width, 0, height, rows_per_chunk))
        for r0 in range(0, height, rows_per_chunk):
            r1 = min(height, r0 + rows_per_chunk)
            if whole is not None:
                yield slice(r0, r1), whole[r0 * width : r1 * width]
            else:
                yield slice(r0, r1), self._pixel_factors_ncr(pixel_grid(height, width, device=device, rows=slice(r0, r1)))

    def _pixel_factors_ncr(self, pixels: torch.Tensor) -> torch.Tensor:
        """U of ``pixels`` as a contiguous ``[n, 3, R]`` tensor."""
        return self.pixel_factors(pixels).permute(0, 2, 1).contiguous()

    def _pixel_factors_rows(self, height: int, width: int, r0: int, r1: int, rows_per_chunk: int) -> torch.Tensor:
        """U of rows ``r0:r1`` as one ``[n, 3, R]`` tensor, evaluated ``rows_per_chunk`` rows at a time."""
        device = device_of(self)
        parts = [
            self._pixel_factors_ncr(pixel_grid(height, width, device=device, rows=slice(a, min(r1, a + rows_per_chunk))))
            for a in range(r0, r1, rows_per_chunk)
        ]
        return torch.cat(parts, 0)

    @torch.no_grad()
    def render_linear(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Unclamped images ``[L, H, W, 3]`` (``sum_k U_k V_k``) for ``lights [L, 3]``, on the CPU."""
        lights = torch.as_tensor(lights, dtype=torch.float32, device=device_of(self)).reshape(-1, 3)
        v = self.light_factors(lights)  # [L, R]
        out = torch.empty(len(lights), height, width, 3)
        for rows, u in self._pixel_chunks(height, width, chunk):
            img = v @ u.reshape(-1, u.shape[-1]).T  # [L, n * 3]
            out[:, rows] = img.float().reshape(len(lights), rows.stop - rows.start, width, 3).cpu()
        return out

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1]: :meth:`render_linear` clamped. U is evaluated once
        per chunk of pixels for all the lights."""
        return self.render_linear(lights, height, width, chunk=chunk).clamp_(0.0, 1.0)

    @torch.no_grad()
    def relight_envmap(
        self, dirs: torch.Tensor, weights: torch.Tensor, height: int, width: int, *, chunk: int | None = None
    ) -> torch.Tensor:
        """``sum_j weights[j] * image(w_j)`` as ``[H, W, 3]`` (unclamped, unscaled) in one pass.

        ``dirs [K, 3]`` are unit directions, ``weights [K, 3]`` per-channel weights. The light
        factors are summed first (``S = sum_j weights[j] V(w_j)``, ``[R, 3]``), then multiplied
        with U once per pixel, so the cost grows with K only through evaluating V. Equal to the
        weighted sum of :meth:`render_linear` images; equal to the weighted sum of the clamped
        :meth:`render` images wherever no single-light render leaves [0, 1].
        """
        device = device_of(self)
        dirs = torch.as_tensor(dirs, dtype=torch.float32, device=device).reshape(-1, 3)
        weights = torch.as_tensor(weights, dtype=torch.float32, device=device).reshape(-1, 3)
        if len(dirs) != len(weights):
            raise PluginError(f"model 'low-rank': {len(dirs)} directions but {len(weights)} weights")
        s = torch.einsum("jk,jc->kc", self.light_factors(dirs).double(), weights.double()).float()  # [R, 3]
        out = torch.empty(height, width, 3)
        for rows, u in self._pixel_chunks(height, width, chunk):
            out[rows] = (u * s.T).sum(-1).float().reshape(rows.stop - rows.start, width, 3).cpu()
        return out


@hookimpl
def register_models(register):
    """The low-rank model."""
    register(
        "low-rank",
        LowRankModel,
        "image = sum_k U_k(pixel) V_k(light): per-pixel table or network U, small network V; one-pass environment maps",
    )
