"""Small helpers that let functions accept numpy arrays and torch tensors alike."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["ArrayLike", "backend"]

ArrayLike = Any  # np.ndarray | torch.Tensor; kept loose so both flow through unchanged


def backend(x: ArrayLike):
    """Return the array namespace (``numpy`` or ``torch``) that matches ``x``."""
    return torch if isinstance(x, torch.Tensor) else np
