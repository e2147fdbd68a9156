"""The optimiser and learning-rate schedule, built through timm's factories.

Defaults follow the thesis: Adam with a learning rate of 1e-4 and no schedule. ``cosine``
decays to ``min_lr`` over the run; either schedule can start with a linear warm-up. The
schedule is stepped per optimiser update (``scheduler.step_update(step)``), and timm's
schedulers are a pure function of the step, so a resumed run lands on the same rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch

from ..errors import TrainingError

if TYPE_CHECKING:  # timm (and the torchvision it imports) loads only when training starts
    from timm.scheduler.scheduler import Scheduler

__all__ = [
    "DEFAULT_OPTIMIZER",
    "DEFAULT_LR",
    "SCHEDULES",
    "check_schedule",
    "create_optimizer",
    "create_schedule",
    "current_lr",
]

DEFAULT_OPTIMIZER = "adam"
DEFAULT_LR = 1e-4
"""Adam at 1e-4, the thesis's setting."""

_FUSABLE = ("adam", "adamw")
"""Optimisers built with torch's fused kernel (one kernel for all parameters; on the CPU it
cuts Adam's step from about 1.1 ms to 0.35 ms for the default siren)."""

SCHEDULES = ("none", "cosine")
"""Learning-rate schedules ``relightzoo train --schedule`` accepts."""


def create_optimizer(
    model: torch.nn.Module | Iterable[torch.Tensor],
    *,
    name: str = DEFAULT_OPTIMIZER,
    lr: float = DEFAULT_LR,
    weight_decay: float = 0.0,
    **kwargs,
) -> torch.optim.Optimizer:
    """An optimiser over ``model``'s parameters by timm name (``adam``, ``adamw``, ``sgd``, ...).

    Weight decay is off by default, as in the thesis; when on, timm keeps it off biases.
    Adam and AdamW use torch's fused implementation where the device supports it (the
    same update, computed in one kernel); pass ``fused=False`` for the per-tensor loop.
    """
    from timm.optim import create_optimizer_v2

    if not lr > 0:
        raise TrainingError(f"the learning rate must be positive, got {lr}")
    if name in _FUSABLE and "fused" not in kwargs and "foreach" not in kwargs:
        try:
            return create_optimizer_v2(model, opt=name, lr=lr, weight_decay=weight_decay, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):
            pass  # a device or dtype without a fused kernel: the plain implementation below
    try:
        return create_optimizer_v2(model, opt=name, lr=lr, weight_decay=weight_decay, **kwargs)
    except (AssertionError, ValueError) as exc:
        raise TrainingError(f"cannot create optimiser {name!r}: {exc}") from None


def check_schedule(schedule: str, warmup_steps: int) -> None:
    """Raise :class:`TrainingError` for a schedule not in :data:`SCHEDULES` or a negative warm-up."""
    if schedule not in SCHEDULES:
        raise TrainingError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if warmup_steps < 0:
        raise TrainingError(f"--warmup-steps must be 0 or more, got {warmup_steps}")


def create_schedule(
    optimizer: torch.optim.Optimizer,
    *,
    schedule: str = "none",
    steps: int,
    warmup_steps: int = 0,
    warmup_lr: float | None = None,
    min_lr: float = 0.0,
) -> "Scheduler | None":
    """A per-step timm scheduler, or None for a constant rate with no warm-up.

    ``cosine`` anneals from the optimiser's rate to ``min_lr`` over ``steps``; ``none`` holds
    the rate. ``warmup_steps`` > 0 ramps linearly from ``warmup_lr`` (default 1% of the rate)
    over the first steps, under either schedule.
    """
    check_schedule(schedule, warmup_steps)
    if schedule == "none" and warmup_steps == 0:
        return None
    from timm.scheduler import create_scheduler_v2

    base_lr = optimizer.param_groups[0]["lr"]
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="cosine" if schedule == "cosine" else "constant",
        num_epochs=max(1, steps),
        min_lr=min_lr,
        warmup_lr=base_lr * 0.01 if warmup_lr is None else warmup_lr,
        warmup_epochs=warmup_steps,
        step_on_epochs=False,
        updates_per_epoch=1,
    )
    return scheduler


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group (what metrics.jsonl logs)."""
    lr = optimizer.param_groups[0]["lr"]
    return float(lr.item() if isinstance(lr, torch.Tensor) else lr)
