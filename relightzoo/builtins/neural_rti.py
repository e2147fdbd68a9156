"""Neural RTI (Dulecha et al. 2020): a per-pixel code from the pixel's own measurements and a
small decoder shared by every pixel.

Reflectance Transformation Imaging relights from a dome of captures; its neural state of the
art compresses each pixel's *measured responses* (its RGB under every training light,
``3 T`` values) with an encoder network to a short code (about 9 values), and a decoder
network shared by all pixels maps ``(code, light) -> RGB``. The code is learned, not fitted
per pixel: the encoder sees only what was measured at that pixel, so pixels that respond
alike get codes alike, and the decoder generalises between lights across the whole image.

Here the encoder is an input projection of the ``3 T`` responses (its width comes from the
data: a data-shaped parameter) followed by layers of the model's activation backbone, and
the decoder reads the code beside the model's coordinate encoder's features of (pixel,
light): with the ``direction`` encoder that is (x, y, 0.1 * light), so sine, cosine, ReLU
or any registered activation and every encoder ablate here as they do for ``siren``.

Training draws its own batches (:meth:`NeuralRTIModel.training_batch`): random pixels, each
under ``lights_per_pixel`` of the training lights (default all of them), so every step
encodes each pixel once and decodes it under many lights. The model keeps the training
images and lights as buffers (a checkpoint renders with nothing else at hand); codes are
computed at the training resolution and bilinearly resampled for any other size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from relightzoo.data.coords import pixel_grid
from relightzoo.errors import PluginError
from relightzoo.zoo.api import DEFAULT_RENDER_CHUNK, Backbone, CapturedImagesModel, Encoder
from relightzoo.zoo.hookspecs import hookimpl

__all__ = ["NeuralRTIModel", "register_models"]

_NAME = "model 'neural-rti'"


class NeuralRTIModel(CapturedImagesModel):
    """Encoder of a pixel's ``3 T`` measured responses -> ``code_size`` values; decoder of
    ``(code, encoder(pixel, light))`` -> RGB in [-1, 1], shared by every pixel."""

    label = _NAME
    data_shaped_buffers = ("images", "lights", "response_weight")
    """The training images and lights, and the input projection of the responses ``[W, 3 T]``."""

    train_defaults = {"steps": 2000, "lr": 1e-3, "batch_size": 8192, "schedule": "cosine"}
    """Adam at 1e-3 with a cosine decay, 8192 (pixel, light) pairs a step (every training light
    of 8192 / T pixels); see docs/ablation.md for what it reaches in that budget."""

    def __init__(
        self,
        *,
        encoder: Encoder,
        activation: Backbone,
        code_size: int = 9,
        encoder_layers: int = 2,
        encoder_features: int = 128,
        decoder_layers: int = 3,
        decoder_features: int = 128,
        lights_per_pixel: int = 0,
    ) -> None:
        super().__init__()
        for what, value, least in (
            ("code_size", code_size, 1),
            ("encoder_layers", encoder_layers, 1),
            ("encoder_features", encoder_features, 1),
            ("decoder_layers", decoder_layers, 1),
            ("decoder_features", decoder_features, 1),
            ("lights_per_pixel", lights_per_pixel, 0),
        ):
            if value < least:
                raise PluginError(f"{_NAME}: {what} must be at least {least}, got {value}")
        self.code_size = int(code_size)
        self.lights_per_pixel = int(lights_per_pixel)
        self.encoder_features = int(encoder_features)
        # The responses' projection takes its width from the data (3 T inputs).
        self.response_weight = nn.Parameter(torch.zeros(self.encoder_features, 0))
        self.response_bias = nn.Parameter(torch.zeros(self.encoder_features))
        enc_layers = [activation.layer(self.encoder_features, self.encoder_features, first=True)]
        enc_layers += [activation.layer(self.encoder_features, self.encoder_features, first=False) for _ in range(encoder_layers - 1)]
        enc_head = nn.Linear(self.encoder_features, self.code_size)
        activation.init_head(enc_head)
        self.code_net = nn.Sequential(*enc_layers, enc_head)
        self.encoder = encoder
        dec_layers = [activation.layer(self.code_size + encoder.out_features, decoder_features, first=True)]
        dec_layers += [activation.layer(decoder_features, decoder_features, first=False) for _ in range(decoder_layers - 1)]
        dec_head = nn.Linear(decoder_features, 3)
        activation.init_head(dec_head)
        self.decoder = nn.Sequential(*dec_layers, dec_head)

    # -- data -------------------------------------------------------------------------------
    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Keep the training images ``[T, H, W, 3]`` and lights ``[T, 3]``; the first time, size
        the responses' projection to ``3 T`` inputs. A trained or loaded model keeps its
        weights (evaluation hands the same images again); other images of another light count
        are a one-line error."""
        count = int(torch.as_tensor(images).shape[0]) if torch.as_tensor(images).dim() == 4 else 0
        inputs = self.response_weight.shape[1]
        if inputs and count and inputs != 3 * count:
            raise PluginError(
                f"{_NAME}: this model was trained on {inputs // 3} training lights, not the {count} given; "
                "its encoder reads each pixel's responses under exactly those lights"
            )
        super().attach_training_data(images, lights)
        if not inputs:
            with torch.no_grad():
                bound = 1.0 / math.sqrt(3 * count)
                weight = torch.empty(self.encoder_features, 3 * count, device=self.response_bias.device)
                self.response_weight = nn.Parameter(weight.uniform_(-bound, bound))
                self.response_bias.uniform_(-bound, bound)

    def responses(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """Each pixel's measured RGB under every training light, mapped to [-1, 1]:
        ``[H W, 3 T]`` (or ``[len(rows), 3 T]`` for flat pixel indices ``rows``)."""
        self.check_training_data()
        t, h, w, _ = self.images.shape
        flat = self.images.permute(1, 2, 0, 3).reshape(h * w, 3 * t)
        return (flat if rows is None else flat[rows]) * 2.0 - 1.0

    # -- the two networks --------------------------------------------------------------------
    def codes(self, responses: torch.Tensor) -> torch.Tensor:
        """Codes ``[N, code_size]`` of pixels with measured ``responses [N, 3 T]`` in [-1, 1]."""
        return self.code_net(F.linear(responses, self.response_weight, self.response_bias))

    def decode(self, codes: torch.Tensor, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """RGB ``[N, 3]`` in [-1, 1] (unclamped) of ``N`` pixels with these codes and positions
        ``pixels [N, 2]`` under ``lights [N, 3]``."""
        return self.decoder(torch.cat([codes, self.encoder(pixels, lights)], -1))

    def forward(self, responses: torch.Tensor, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        """RGB ``[P, K, 3]`` in [-1, 1] of ``P`` pixels (``responses [P, 3 T]``, ``pixels [P, 2]``)
        under each of ``lights [K, 3]``."""
        p, k = len(pixels), len(lights)
        code = self.codes(responses)
        rgb = self.decode(
            code[:, None].expand(p, k, self.code_size).reshape(p * k, -1),
            pixels[:, None].expand(p, k, 2).reshape(p * k, 2),
            lights[None].expand(p, k, 3).reshape(p * k, 3),
        )
        return rgb.reshape(p, k, 3)

    # -- training (relightzoo.train calls this for models that draw their own batches) ----------
    def training_batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        """``(responses [P, 3 T], pixels [P, 2], lights [K, 3], target [P, K, 3])``: ``P =
        batch_size / K`` random pixels, each under the same ``K`` training lights (all of them,
        or ``lights_per_pixel`` drawn at random), so ``batch_size`` counts (pixel, light) pairs."""
        self.check_training_data()
        t, h, w, _ = self.images.shape
        dev, gdev = self.images.device, generator.device
        k = min(t, self.lights_per_pixel) if self.lights_per_pixel else t
        p = max(1, batch_size // k)
        rows = torch.randint(0, h * w, (p,), generator=generator, device=gdev).to(dev)
        which = torch.randperm(t, generator=generator, device=gdev).to(dev)[:k] if k < t else torch.arange(t, device=dev)
        pixels = pixel_grid(h, w, device=dev)[rows]
        target = self.images.permute(1, 2, 0, 3).reshape(h * w, t, 3)[rows][:, which]
        return self.responses(rows), pixels, self.lights[which], target.mul(2.0).sub(1.0)

    # -- rendering ------------------------------------------------------------------------------
    @torch.no_grad()
    def code_map(self, height: int, width: int) -> torch.Tensor:
        """Codes ``[H W, code_size]`` for an ``height x width`` render: exact at the training
        size, bilinearly resampled from it otherwise."""
        _, h0, w0, _ = self.images.shape
        codes = self.codes(self.responses())
        if (height, width) == (h0, w0):
            return codes
        table = codes.T.reshape(1, self.code_size, h0, w0)
        grid = pixel_grid(height, width, device=codes.device).reshape(1, 1, -1, 2)
        return F.grid_sample(table, grid, mode="bilinear", padding_mode="border", align_corners=False).reshape(self.code_size, -1).T

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1], decoded ``chunk`` pixels at a time."""
        chunk = DEFAULT_RENDER_CHUNK if chunk is None else int(chunk)
        dev = self.images.device
        lights = torch.as_tensor(lights, dtype=torch.float32, device=dev).reshape(-1, 3)
        codes = self.code_map(height, width)
        pixels = pixel_grid(height, width, device=dev)
        out = torch.empty(len(lights), height * width, 3)
        for li, light in enumerate(lights):
            for a in range(0, height * width, chunk):
                b = min(height * width, a + chunk)
                rgb = self.decode(codes[a:b], pixels[a:b], light.expand(b - a, 3))
                out[li, a:b] = ((rgb + 1.0) * 0.5).clamp(0.0, 1.0).cpu()
        return out.reshape(len(lights), height, width, 3)


@hookimpl
def register_models(register):
    """The neural-rti model."""
    register(
        "neural-rti",
        NeuralRTIModel,
        "Neural RTI (Dulecha et al. 2020): per-pixel code from the pixel's measured responses + shared decoder of (code, light)",
    )
