"""Handing a dataset's training images to an image model, done one way everywhere.

An image model (``needs_images``: ``blend``, the RTI fits, ``learned-blend``...) receives
the images and light directions of the training lights before it trains, is evaluated or
renders (:meth:`relightzoo.zoo.RelightModel.attach_training_data`). The training loop,
evaluation, relighting from a dataset and the viewer all call :func:`attach_training_images`.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

__all__ = ["attach_training_images"]


def attach_training_images(model: Any, dataset: Any, indices: Sequence[int] | np.ndarray | torch.Tensor, *, device: Any = "cpu") -> None:
    """Call ``model.attach_training_data(images, lights)`` with ``dataset``'s images at
    ``indices`` (float32 ``[T, H, W, 3]`` in [0, 1]) and their light directions (float32
    ``[T, 3]``), both on ``device``."""
    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    images = dataset.images(idx).to(device)
    lights = dataset.lights[idx].to(device=device, dtype=torch.float32)
    model.attach_training_data(images, lights)
