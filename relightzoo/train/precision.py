"""Training precision: float32, or bfloat16 mixed precision where the hardware has it.

``precision`` is a training setting like the learning rate (a recipe, a model's
``train_defaults``, ``relightzoo train --precision`` or an ablation grid sets it):

- ``fp32`` (the default): every operation in float32, as before this setting existed;
- ``bf16``: the forward pass under ``torch.autocast`` with bfloat16, so the matrix multiplies
  read bfloat16 operands and accumulate in float32, while the weights, Adam's state, the loss
  (autocast keeps ``mse_loss`` in float32) and every checkpoint stay float32. Evaluation and
  rendering always run in float32;
- ``auto``: ``bf16`` where the device multiplies bfloat16 natively
  (:func:`relightzoo.util.devices.has_fast_bf16`: CUDA GPUs from Ampere on, CPUs with
  AVX-512 BF16 or AMX), else ``fp32``. The dense recipes use it.

Why: a coordinate network's step is mostly matrix multiplies, and a CPU with AVX-512 BF16
multiplies bfloat16 matrices about 2.5x faster than float32 ones. On 2 EPYC cores the
``quick`` recipe's 1200 steps take 28.7 s in bf16 against 57 s in float32 (idle), at the same
held-out PSNR (30.33 against 30.28 dB on the demo, docs/ablation.md), so a time budget buys
twice the steps. bfloat16 keeps float32's range, so no loss scaling is needed.

The run records both the precision asked for and the one used (``precision_used`` in
``config.json``); a resume must ask for the same precision as the run.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from ..errors import TrainingError
from ..util.devices import has_fast_bf16
from ..util.names import nearest_names

__all__ = ["PRECISIONS", "DEFAULT_PRECISION", "check_precision", "resolve_precision", "precision_context"]

PRECISIONS = ("fp32", "bf16", "auto")
"""The training precisions (see the module docstring)."""

DEFAULT_PRECISION = "fp32"
"""What a run trains in unless a recipe, the model or the user says otherwise."""


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a one-line :class:`TrainingError`."""
    if precision in PRECISIONS:
        return precision
    hint = nearest_names(str(precision), PRECISIONS)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise TrainingError(f"unknown --precision {precision!r}{suggestion}; choose one of {', '.join(PRECISIONS)}")


def resolve_precision(precision: str, device: str | torch.device) -> str:
    """The precision a run on ``device`` trains in: ``fp32`` or ``bf16`` (``auto`` decided here)."""
    if check_precision(precision) == "auto":
        return "bf16" if has_fast_bf16(device) else "fp32"
    return precision


def precision_context(precision: str, device: str | torch.device) -> ContextManager:
    """The context a training step's forward runs in: autocast to bfloat16 for ``bf16``,
    nothing for ``fp32`` (``precision`` already resolved)."""
    if precision == "bf16":
        return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
