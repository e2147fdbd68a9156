"""Random (pixel, light) batches for training coordinate models.

A coordinate model learns (x, y, light) -> RGB from single samples. Materialising every
(pixel, light) pair of a 512 x 512 x 1000 light stage would take about 5 GiB of coordinates
alone; :class:`PixelLightSampler` instead draws a light index, a row and a column per sample
and gathers the colour from the dataset's compact image tensor, so memory stays at the
dataset's own size plus one batch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..errors import DataError
from .coords import pixel_coordinates
from .dataset import OLATDataset

__all__ = ["PixelLightSampler"]


class PixelLightSampler:
    """Draws batches of random (pixel, light) samples from the lights ``light_indices``.

    Samples are drawn uniformly and independently (with replacement) over the training
    lights and all pixels, from the sampler's own seeded :class:`torch.Generator`, so two
    samplers with one seed give the same batches and :meth:`state_dict` /
    :meth:`load_state_dict` resume a sequence exactly. The images stay in their stored type
    (uint8/uint16): shared with the dataset when it is already on ``device``, else only the
    training lights are copied there. Only the batch becomes float32.

    ``shard`` (a slice of the batch) makes :meth:`sample` draw the whole batch's random
    indices but gather and return only that slice: data-parallel ranks with one seed split
    each batch between them (:mod:`relightzoo.train.distributed`).
    """

    def __init__(
        self,
        dataset: OLATDataset,
        light_indices: Sequence[int] | np.ndarray | torch.Tensor | None,
        batch_size: int,
        *,
        seed: int = 0,
        device: torch.device | str = "cpu",
        shard: slice | None = None,
    ) -> None:
        if batch_size < 1:
            raise DataError(f"batch size must be at least 1, got {batch_size}")
        n = len(dataset)
        if light_indices is None:
            idx = torch.arange(n)
        else:
            idx = torch.as_tensor(np.asarray(light_indices, dtype=np.int64).reshape(-1))
        if idx.numel() == 0:
            raise DataError("the sampler needs at least one training light")
        if int(idx.min()) < 0 or int(idx.max()) >= n:
            bad = int(idx[(idx < 0) | (idx >= n)][0])
            raise DataError(f"light index {bad} is out of range for a dataset of {n} lights")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.height, self.width = dataset.height, dataset.width
        self.light_indices = idx
        # The images are used in place (no copy) when they already sit on ``device``; otherwise
        # only the training lights are copied there. No per-sample coordinates are ever stored.
        identity = idx.numel() == n and bool((idx == torch.arange(n)).all())
        if dataset.pixels.device == self.device:
            px, self._rows_of = dataset.pixels, (None if identity else idx.to(self.device))
        else:
            px, self._rows_of = dataset.pixels[idx.to(dataset.pixels.device)].to(self.device), None
        self._scale = 1.0 / dataset.max_value
        self._uint16 = px.dtype == torch.uint16
        # uint16 has little kernel support off the CPU: gather its bits as int16 and unwrap.
        self._pixels = px.view(torch.int16) if self._uint16 else px
        # A contiguous tensor is gathered through a flat [L*H*W, 3] view (a view, not a copy),
        # which is several times faster than 4-d advanced indexing.
        self._flat = self._pixels.view(-1, 3) if self._pixels.is_contiguous() else None
        self._lights = dataset.lights[idx].to(self.device, torch.float32)
        self._count = idx.numel()
        self._hw = self.height * self.width
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(int(seed))
        self.shard = shard

    def __len__(self) -> int:
        """Number of distinct (pixel, light) pairs the sampler draws from."""
        return self._count * self._hw

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One batch: ``pixels [B, 2]`` in [-1, 1] (x, y), ``lights [B, 3]``, ``rgb [B, 3]`` in [0, 1]."""
        b, dev = self.batch_size, self.device
        flat = torch.randint(0, self._count * self._hw, (b,), generator=self.generator, device=dev)
        if self.shard is not None:  # one process of several: gather only this rank's slice
            flat = flat[self.shard]
        light = torch.div(flat, self._hw, rounding_mode="floor")
        pix = flat - light * self._hw
        row = torch.div(pix, self.width, rounding_mode="floor")
        col = pix - row * self.width
        image = light if self._rows_of is None else self._rows_of.index_select(0, light)
        if self._flat is not None:
            index = flat if self._rows_of is None else image * self._hw + pix
            raw = self._flat.index_select(0, index)
        else:
            raw = self._pixels[image, row, col]
        if self._uint16:
            raw = raw.to(torch.int32).bitwise_and_(0xFFFF)
        rgb = raw.to(torch.float32)
        if self._scale != 1.0:
            rgb.mul_(self._scale)
        coords = pixel_coordinates(col, row, self.height, self.width)
        return coords, self._lights.index_select(0, light), rgb

    def __iter__(self):
        while True:
            yield self.sample()

    def state_dict(self) -> dict:
        """The generator state (a uint8 tensor) and settings, to resume the batch sequence."""
        return {
            "generator": self.generator.get_state().clone(),
            "batch_size": self.batch_size,
            "light_indices": self.light_indices.clone(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` so the next batches are the ones that would have come."""
        idx = torch.as_tensor(state["light_indices"]).to(torch.long).reshape(-1)
        if idx.numel() != self.light_indices.numel() or not bool((idx == self.light_indices).all()):
            raise DataError("sampler state was saved with different training lights")
        if int(state["batch_size"]) != self.batch_size:
            raise DataError(f"sampler state was saved with batch size {int(state['batch_size'])}, not {self.batch_size}")
        self.generator.set_state(torch.as_tensor(state["generator"]).to(torch.uint8).cpu())
