"""Training: settings, the run and its resume, logs, the step, the loop, checkpoints.

One room a part: :mod:`.settings` (TrainingSettings), :mod:`.state` (a run's config and
resume check), :mod:`.recovery`, :mod:`.log`, :mod:`.step` (eager, or compiled by
:mod:`.compiled_step`), :mod:`.trainer` (the loop), :mod:`.loop` (``train``),
:mod:`.checkpoint`, :mod:`.optim`, :mod:`.distributed`.

The public API::

    train(dataset, split, spec_or_model, *, steps, batch_size, lr, seed, device, out_dir, ...) -> TrainResult
    TrainingSettings.resolve(model, **settings) -> TrainingSettings;  .differs_from(run_training_record)
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
from ..metrics import psnr_from_mse  # re-exported: relightzoo.train.psnr_from_mse predates metrics.py's
from ..util.callable_module import make_module_callable
from ..util.devices import resolve_device  # re-exported: relightzoo.train.resolve_device predates util/devices.py
from .loop import train
from .optim import DEFAULT_LR, DEFAULT_OPTIMIZER, SCHEDULES, create_optimizer, create_schedule, current_lr
from .settings import DEFAULT_BATCH_SIZE, DEFAULT_STEPS, GLOBAL_DEFAULTS, TrainingSettings, training_settings
from .state import BEST, CONFIG, LATEST, METRICS
from .step import ModelBatches, train_step
from .trainer import TrainingInterrupted, TrainResult

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
    "TrainingSettings",
    "ModelBatches",
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

make_module_callable(__name__)  # rz.train(...) works even when the attribute holds this package (util/callable_module.py)
