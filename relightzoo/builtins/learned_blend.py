"""A learned blend of the nearest captured images: a U-Net on any timm backbone.

In the spirit of Xu et al. 2018 ("Deep image-based relighting from optimal sparse samples")
and of neural light transport: for a target light the model takes the ``k`` captured
training images nearest on the light sphere, their light directions and the target
direction (as constant channels), and a U-Net predicts, per pixel, blend weights over the
``k`` neighbours (a softmax) plus an RGB residual. The logits are added to the logarithm of
the ``blend`` baseline's weights and the last layer starts at zero, so an untrained model
reproduces ``blend`` with the same ``k`` and ``power``: training can only start from the
baseline. The encoder is any timm model by name, built with ``features_only=True``,
``in_chans`` set to the input's channel count and no pretrained weights.

Training is per scene, by leave-one-out over the training lights: each training light is a
target predicted from the other training lights near it. The model draws its own batches
(:meth:`LearnedBlendModel.training_batch`), which is how the training loop trains image
models: random crops (translation keeps the geometry; flips would not, as they mirror the
light directions too) whose pixels add up to the loop's batch size, and neighbour sets
drawn at random from the ``k + extra_neighbours`` nearest so the few targets of a sparse
capture are seen with many different neighbour sets, and a fraction ``self_fraction`` of
crops that keep the target among its neighbours (the answer is then that image), which
anchors the corrections for test lights closer to a capture than any leave-one-out
neighbour. Inputs are divided by the mean of the
blended image (and the residual multiplied by it), so the network sees exposure-free inputs.

Like ``blend`` the model keeps its training images and lights as buffers, so a checkpoint
renders with nothing else at hand; a freshly built model takes the buffers' shapes from
the state dict it loads. It renders at the training resolution; another size is rendered at
the training size and resized (bilinear, antialiased).
"""

from __future__ import annotations

import difflib
import math

import torch
import torch.nn.functional as F
from torch import nn

from relightzoo.data.coords import pixel_grid
from relightzoo.errors import PluginError
from relightzoo.zoo.args import check_at_least
from relightzoo.zoo.api import DEFAULT_RENDER_CHUNK, CapturedImagesModel
from relightzoo.zoo.hookspecs import hookimpl

from .blend import blend_neighbours, blend_weights

__all__ = ["LearnedBlendModel", "DEFAULT_BACKBONE", "blend_weights", "register_models"]

DEFAULT_BACKBONE = "mobilenetv3_small_100"
"""The fastest of the timm encoders tried on one CPU core (a training step on 16 crops of
48 x 48: mobilenetv3_small_100 0.12 s, efficientnet_lite0 0.25 s, resnet10t 0.27 s, resnet18 0.45 s)."""

_NAME = "model 'learned-blend'"


def _create_encoder(name: str, in_chans: int) -> nn.Module:
    """``timm.create_model(name, features_only=True, in_chans=in_chans)``; an unknown name is a
    one-line :class:`PluginError` suggesting the nearest timm names."""
    import timm

    if not timm.is_model(name):
        names = timm.list_models()
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise PluginError(f"{_NAME}: timm has no backbone {name!r}{hint} (timm.list_models() lists all {len(names)})")
    try:
        return timm.create_model(name, features_only=True, in_chans=in_chans, pretrained=False)
    except (RuntimeError, ValueError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PluginError(f"{_NAME}: timm backbone {name!r} cannot serve as a feature encoder: {first}") from None


class _Decoder(nn.Module):
    """U-Net decoder: from the deepest feature map up through every skip to full resolution,
    where the input itself is the last skip; a zero-initialised head gives ``out`` channels."""

    def __init__(self, feature_channels: list[int], in_chans: int, width: int, out: int) -> None:
        super().__init__()
        self.top = nn.Conv2d(feature_channels[-1], width, 1)
        self.ups = nn.ModuleList(nn.Conv2d(width + c, width, 3, padding=1) for c in reversed(feature_channels[:-1]))
        self.full = nn.Conv2d(width + in_chans, width, 3, padding=1)
        self.head = nn.Conv2d(width, out, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        y = F.relu(self.top(features[-1]))
        for conv, skip in zip(self.ups, reversed(features[:-1])):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = F.relu(conv(torch.cat([y, skip], 1)))
        y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(F.relu(self.full(torch.cat([y, x], 1))))


class LearnedBlendModel(CapturedImagesModel):
    """Per-pixel softmax blend of the ``k`` nearest training images plus a residual, predicted
    by a U-Net on a timm encoder; equals ``blend`` (same ``k``, ``power``) before training."""

    trainable = True
    label = _NAME
    train_defaults = {"steps": 300, "lr": 1e-3, "batch_size": 16384, "schedule": "cosine"}
    """Settings where the user sets none (relightzoo.train.training_settings): a convolutional
    model wants few, large steps (16384 target pixels are about 7 crops of 48 x 48)."""

    def __init__(
        self,
        backbone: str = DEFAULT_BACKBONE,
        k: int = 3,
        power: float = 2.0,
        decoder_width: int = 32,
        crop: int = 48,
        extra_neighbours: int = 1,
        self_fraction: float = 0.25,
        position: bool = True,
    ) -> None:
        super().__init__()
        check_at_least(_NAME, 1, k=k, decoder_width=decoder_width)
        if not math.isfinite(power) or power <= 0:
            raise PluginError(f"{_NAME}: power must be a positive number, got {power}")
        if crop < 0:
            raise PluginError(f"{_NAME}: crop must be 0 (whole images) or a size in pixels, got {crop}")
        if extra_neighbours < 0:
            raise PluginError(f"{_NAME}: extra_neighbours must be 0 or more, got {extra_neighbours}")
        if not 0.0 <= self_fraction < 1.0:
            raise PluginError(f"{_NAME}: self_fraction must be in [0, 1), got {self_fraction}")
        self.k, self.power, self.crop, self.extra_neighbours = int(k), float(power), int(crop), int(extra_neighbours)
        self.self_fraction, self.position = float(self_fraction), bool(position)
        # Channels: k neighbour images and their blend (RGB, exposure-normalised), k neighbour
        # directions, the target direction, the k baseline weights and the pixel position.
        self.in_chans = 3 * self.k + 3 + 3 * self.k + 3 + self.k + (2 if self.position else 0)
        self.encoder = _create_encoder(str(backbone), self.in_chans)
        channels = list(self.encoder.feature_info.channels())
        self.decoder = _Decoder(channels, self.in_chans, int(decoder_width), self.k + 3)

    # -- data -------------------------------------------------------------------------------
    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Keep the training images ``[T, H, W, 3]`` (float, [0, 1]) and their lights ``[T, 3]``.

        Leave-one-out training predicts each training light from ``k`` others, so ``k`` must
        be below the number of training lights.
        """
        count = len(images)
        if self.k >= count:
            raise PluginError(
                f"{_NAME}: k={self.k} neighbours need more than the {count} training lights given "
                f"(leave-one-out training predicts each from k others); use --model-arg k={max(1, count - 1)} "
                "or more training lights"
            )
        super().attach_training_data(images, lights)

    # -- the network ------------------------------------------------------------------------
    def forward(self, neighbours: torch.Tensor, directions: torch.Tensor, target: torch.Tensor,
                weights: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """RGB ``[B, 3, h, w]`` in [-1, 1] (not clamped) for the target lights ``target [B, 3]``.

        ``neighbours [B, k, 3, h, w]`` in [0, 1] are lit from ``directions [B, k, 3]`` and have
        the baseline weights ``weights [B, k]``; ``position [B, 2, h, w]`` holds each pixel's
        (x, y) in [-1, 1] of the whole image (a crop knows where it lies).
        """
        b, k, _, h, w = neighbours.shape
        blended = torch.einsum("bk,bkchw->bchw", weights, neighbours)
        scale = blended.mean(dim=(1, 2, 3), keepdim=True).clamp_min(1e-3)
        const = torch.cat([directions.reshape(b, 3 * k), target, weights], 1)[:, :, None, None].expand(-1, -1, h, w)
        parts = [neighbours.reshape(b, 3 * k, h, w) / scale, blended / scale, const] + ([position] if self.position else [])
        x = torch.cat(parts, 1)
        out = self.decoder(x, self.encoder(x))
        mix = torch.softmax(torch.log(weights.clamp_min(1e-12))[:, :, None, None] + out[:, :k], dim=1)
        rgb = torch.einsum("bkhw,bkchw->bchw", mix, neighbours) + scale * out[:, k:]
        return rgb * 2.0 - 1.0

    # -- training (called by relightzoo.train for models that draw their own batches) -------------
    def training_batch(self, generator: torch.Generator, batch_size: int) -> tuple[torch.Tensor, ...]:
        """One leave-one-out batch: ``(*inputs, target)`` with ``target [B, 3, h, w]`` in [-1, 1].

        ``batch_size`` counts target pixels, like a coordinate model's (pixel, light) samples:
        the batch holds ``max(1, round(batch_size / crop**2))`` random crops. Each crop's target
        is a random training light; its ``k`` neighbours are drawn from the ``k +
        extra_neighbours`` other training lights nearest to it, ordered nearest first, and
        weighted as ``blend`` would weight them.
        """
        self.check_training_data()
        count, height, width, _ = self.images.shape
        dev = self.images.device
        gdev = generator.device
        crop_h = min(self.crop or height, height)
        crop_w = min(self.crop or width, width)
        n = max(1, round(batch_size / (crop_h * crop_w)))
        targets = torch.randint(0, count, (n,), generator=generator, device=gdev).to(dev)
        pool = min(self.k + self.extra_neighbours, count - 1)
        cos = self.lights[targets].double() @ self.lights.double().T
        cos[torch.arange(n, device=dev), targets] = -math.inf  # leave the target out
        cand_cos, cand = torch.topk(cos, pool, dim=-1)
        pick = torch.rand(n, pool, generator=generator, device=gdev).to(dev).argsort(-1)[:, : self.k]
        pick = pick.sort(-1).values  # keep nearest-first order
        # A fraction of the crops keeps the target among its neighbours (at angle 0, where the
        # answer is that image): an anchor for test lights closer to a capture than any
        # leave-one-out neighbour is.
        keep_self = torch.rand(n, generator=generator, device=gdev).to(dev) < self.self_fraction
        cand = torch.cat([targets[:, None], cand], 1)
        cand_cos = torch.cat([torch.ones(n, 1, dtype=cand_cos.dtype, device=dev), cand_cos], 1)
        pick = torch.where(keep_self[:, None], torch.cat([torch.zeros_like(pick[:, :1]), pick[:, :-1] + 1], 1), pick + 1)
        idx = cand.gather(1, pick)
        angles = torch.arccos(cand_cos.gather(1, pick).clamp(-1.0, 1.0))
        weights = blend_weights(angles, self.power).float()
        top = torch.randint(0, height - crop_h + 1, (n,), generator=generator, device=gdev).to(dev)
        left = torch.randint(0, width - crop_w + 1, (n,), generator=generator, device=gdev).to(dev)
        rows = (top[:, None] + torch.arange(crop_h, device=dev))[:, :, None]
        cols = (left[:, None] + torch.arange(crop_w, device=dev))[:, None, :]
        # images [T, H, W, 3] -> crops [n, k, 3, h, w] and the targets [n, 3, h, w]
        neighbours = self.images[idx[:, :, None, None], rows[:, None], cols[:, None]].permute(0, 1, 4, 2, 3)
        target = self.images[targets[:, None, None], rows, cols].permute(0, 3, 1, 2)
        grid = pixel_grid(height, width, device=dev).reshape(height, width, 2)
        position = grid[rows, cols].permute(0, 3, 1, 2)
        return (neighbours.contiguous(), self.lights[idx], self.lights[targets], weights, position.contiguous(),
                target.mul(2.0).sub(1.0))

    # -- rendering ------------------------------------------------------------------------------
    def neighbours(self, lights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(indices [Q, k], weights [Q, k])``: the training images each light blends and the
        baseline's weights for them (the same as ``blend`` with this ``k`` and ``power``)."""
        self.check_training_data()
        return blend_neighbours(self.lights, lights, self.k, self.power)

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        """Images ``[L, H, W, 3]`` in [0, 1]. The network runs at the training images' size;
        another ``H x W`` is that render resized (bilinear, antialiased)."""
        idx, weights = self.neighbours(lights)
        queries = torch.as_tensor(lights, dtype=torch.float32, device=self.lights.device).reshape(-1, 3)
        queries = queries / queries.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        _, h0, w0, _ = self.images.shape
        position = pixel_grid(h0, w0, device=self.lights.device).reshape(h0, w0, 2).permute(2, 0, 1)
        per_call = max(1, (DEFAULT_RENDER_CHUNK if chunk is None else int(chunk)) // (h0 * w0))
        out = torch.empty(len(idx), height, width, 3)
        for q0 in range(0, len(idx), per_call):
            sl = slice(q0, q0 + per_call)
            neigh = self.images[idx[sl]].permute(0, 1, 4, 2, 3)
            rgb = (self(neigh, self.lights[idx[sl]], queries[sl], weights[sl], position.expand(len(neigh), -1, -1, -1)) + 1.0) * 0.5
            if (h0, w0) != (height, width):
                rgb = F.interpolate(rgb, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
            out[sl] = rgb.clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu()
        return out


@hookimpl
def register_models(register):
    """The learned-blend model."""
    register(
        "learned-blend",
        LearnedBlendModel,
        "U-Net on a timm encoder: per-pixel softmax blend of the k nearest training images + residual; starts as blend",
    )
