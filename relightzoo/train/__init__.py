"""Training: the loop, the optimiser and schedule (timm), metrics and checkpoints.

The public API::

    train(dataset, split, spec_or_model, *, steps, batch_size, lr, seed, device, out_dir, ...) -> TrainResult
    save_checkpoint(path, model, config) / load_checkpoint(path, *, device="cpu") -> (model, config)
    read_config(path) -> dict;  read_checkpoint(path) -> (state_dict, config)
    create_optimizer(model, *, name="adam", lr=1e-4);  create_schedule(optimizer, *, schedule, steps, warmup_steps)
"""

from __future__ import annotations

from .checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_state,
    read_checkpoint,
    read_config,
    save_checkpoint,
    save_state,
    state_path,
)
from .loop import (
    BEST,
    CONFIG,
    DEFAULT_BATCH_SIZE,
    DEFAULT_STEPS,
    LATEST,
    METRICS,
    TrainingInterrupted,
    TrainResult,
    psnr_from_mse,
    resolve_device,
    train,
    train_step,
)
from .optim import DEFAULT_LR, DEFAULT_OPTIMIZER, SCHEDULES, create_optimizer, create_schedule, current_lr
from .settings import GLOBAL_DEFAULTS, training_settings

__all__ = [
    "BEST",
    "CONFIG",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LR",
    "DEFAULT_OPTIMIZER",
    "DEFAULT_STEPS",
    "FORMAT_VERSION",
    "GLOBAL_DEFAULTS",
    "LATEST",
    "METRICS",
    "SCHEDULES",
    "TrainResult",
    "TrainingInterrupted",
    "create_optimizer",
    "create_schedule",
    "current_lr",
    "load_checkpoint",
    "load_state",
    "psnr_from_mse",
    "read_checkpoint",
    "read_config",
    "resolve_device",
    "training_settings",
    "save_checkpoint",
    "save_state",
    "state_path",
    "train",
    "train_step",
]
