"""Training settings: one typed object, the only place that knows the settings' names.

:class:`TrainingSettings` holds what a run trains with (steps, batch size, learning rate,
optimiser, schedule and warm-up, precision, seed, checkpoint and log intervals, device, world size).
Everything else reads the names from here: the training loop records
:meth:`TrainingSettings.to_json` in ``config.json`` and every checkpoint, a resume compares
the run's settings with :meth:`TrainingSettings.differs_from`, ``relightzoo train --resume``
fills the options left out from :data:`RUN_OPTIONS`, an ablation grid stores and reads
its overrides with :data:`MODEL_SETTINGS` and checks a cell's resume with the same
:meth:`~TrainingSettings.differs_from` as the training loop, and recipes hold
:data:`MODEL_SETTINGS` too.

Models train best with different settings: a SIREN wants Adam at 1e-4 for thousands of
steps (the thesis's setting), a low-rank factorisation a larger rate and a cosine decay, a
convolutional model far fewer, larger steps. A model class may state its own in a
``train_defaults`` dict (keys of :data:`MODEL_SETTINGS`); whatever the user sets explicitly
wins (:meth:`TrainingSettings.resolve`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from ..errors import TrainingError
from .optim import DEFAULT_LR, DEFAULT_OPTIMIZER, check_schedule
from .precision import DEFAULT_PRECISION, check_precision, resolve_precision

__all__ = [
    "DEFAULT_STEPS",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_LOG_EVERY",
    "MODEL_SETTINGS",
    "SETTINGS",
    "RESUME_MUST_MATCH",
    "RUN_OPTIONS",
    "GLOBAL_DEFAULTS",
    "TrainingSettings",
    "training_settings",
    "settings_overrides",
]

DEFAULT_STEPS = 2000
DEFAULT_BATCH_SIZE = 4096
"""Defaults sized so that ``relightzoo train demo`` (64 x 64, ~1000 lights) trains and
evaluates in under 3 minutes on 2 CPU cores."""

DEFAULT_LOG_EVERY = 100
"""Steps between two lines of ``metrics.jsonl``."""

MODEL_SETTINGS = ("steps", "batch_size", "lr", "schedule", "warmup_steps", "precision")
"""The settings a model's ``train_defaults``, a recipe and an ablation grid may provide."""

SETTINGS = MODEL_SETTINGS
"""The settings a model's ``train_defaults`` may provide (the older name of :data:`MODEL_SETTINGS`)."""

RESUME_MUST_MATCH = ("batch_size", "lr", "optimizer", "schedule", "warmup_steps", "precision", "seed")
"""Settings a resumed run must share with the run it continues (``steps`` may grow)."""

RUN_OPTIONS = ("steps", "batch_size", "lr", "schedule", "warmup_steps", "precision", "seed", "checkpoint_every", "log_every")
"""The settings ``relightzoo train`` takes as options, filled from the run on ``--resume``."""

GLOBAL_DEFAULTS: dict[str, Any] = {
    "steps": DEFAULT_STEPS,
    "batch_size": DEFAULT_BATCH_SIZE,
    "lr": DEFAULT_LR,
    "schedule": "none",
    "warmup_steps": 0,
    "precision": DEFAULT_PRECISION,
}
"""What a run uses when neither the user nor the model says otherwise."""

_TYPES = {"steps": int, "batch_size": int, "lr": float, "schedule": str, "warmup_steps": int, "precision": str}


@dataclass(frozen=True)
class TrainingSettings:
    """How a run trains. Build one with :meth:`resolve` (checked, defaults filled)."""

    steps: int = DEFAULT_STEPS
    batch_size: int = DEFAULT_BATCH_SIZE
    lr: float = DEFAULT_LR
    optimizer: str = DEFAULT_OPTIMIZER
    schedule: str = "none"
    warmup_steps: int = 0
    precision: str = DEFAULT_PRECISION
    seed: int = 0
    checkpoint_every: int = 1
    log_every: int = DEFAULT_LOG_EVERY
    device: str = "cpu"
    world_size: int = 1
    precision_used: str = DEFAULT_PRECISION

    @classmethod
    def resolve(
        cls,
        model: object,
        *,
        seed: int = 0,
        optimizer: str = DEFAULT_OPTIMIZER,
        checkpoint_every: int | None = None,
        log_every: int = DEFAULT_LOG_EVERY,
        **given: Any,
    ) -> "TrainingSettings":
        """The settings of a run of ``model``: ``given`` (keys of :data:`MODEL_SETTINGS`; None =
        unset), else the model's ``train_defaults``, else :data:`GLOBAL_DEFAULTS`; checked, with
        ``checkpoint_every`` defaulting to ten checkpoints a run (a multiple of ``log_every``).
        A bad value is a :class:`TrainingError` naming its option."""
        chosen = training_settings(model, **given)
        steps, batch_size = int(chosen["steps"]), int(chosen["batch_size"])
        if steps < 0:
            raise TrainingError(f"--steps must be 0 or more, got {steps}")
        if batch_size < 1:
            raise TrainingError(f"--batch-size must be at least 1, got {batch_size}")
        if log_every < 1:
            raise TrainingError(f"--log-every must be at least 1, got {log_every}")
        check_schedule(chosen["schedule"], chosen["warmup_steps"])
        check_precision(chosen["precision"])
        if checkpoint_every is None:
            checkpoint_every = max(log_every, math.ceil(max(steps, 1) / 10 / log_every) * log_every)
        if checkpoint_every < 1:
            raise TrainingError(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
        return cls(
            steps=steps,
            batch_size=batch_size,
            lr=float(chosen["lr"]),
            optimizer=optimizer,
            schedule=chosen["schedule"],
            warmup_steps=int(chosen["warmup_steps"]),
            precision=str(chosen["precision"]),
            seed=int(seed),
            checkpoint_every=int(checkpoint_every),
            log_every=int(log_every),
        )

    def on(self, device: Any, world_size: int = 1) -> "TrainingSettings":
        """These settings on ``device`` with ``world_size`` processes, and the precision they
        train in there (``auto`` decided for the device); recorded, not compared."""
        return replace(self, device=str(device), world_size=int(world_size), precision_used=resolve_precision(self.precision, device))

    def train_kwargs(self) -> dict[str, Any]:
        """These settings as keyword arguments of :func:`relightzoo.train.train` (all but the
        device, world size and precision used, which the run finds itself)."""
        return {k: v for k, v in asdict(self).items() if k not in ("device", "world_size", "precision_used")}

    def to_json(self) -> dict[str, Any]:
        """The ``training`` record of ``config.json`` and every checkpoint."""
        return asdict(self)

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> "TrainingSettings":
        """Settings from a ``training`` record (unknown keys ignored, missing ones defaulted)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})

    def differs_from(self, run: Mapping[str, Any]) -> str | None:
        """The first setting of :data:`RESUME_MUST_MATCH` in which the ``training`` record
        ``run`` differs from these settings, said as a setting and its option; None when a
        resume may continue it. A setting the record lacks (an older run) is not compared."""
        mine = self.to_json()
        for key in RESUME_MUST_MATCH:
            if key in run and run.get(key) != mine[key]:
                flag = "--" + key.replace("_", "-")
                return f"training setting {key} ({flag}): the run has {run.get(key)!r}, this command {mine[key]!r}"
        return None


def training_settings(model: object, **given: Any) -> dict[str, Any]:
    """Resolve every setting in :data:`MODEL_SETTINGS`: ``given`` (None = unset), else the
    model's ``train_defaults``, else :data:`GLOBAL_DEFAULTS` (not checked: see
    :meth:`TrainingSettings.resolve`)."""
    unknown = set(given) - set(MODEL_SETTINGS)
    if unknown:
        raise TypeError(f"unknown training settings: {', '.join(sorted(unknown))}")
    from ..zoo.capabilities import capabilities

    model_defaults = capabilities(model).train_defaults
    return {
        key: given[key] if given.get(key) is not None else model_defaults.get(key, GLOBAL_DEFAULTS[key])
        for key in MODEL_SETTINGS
    }


def settings_overrides(record: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`MODEL_SETTINGS` of a stored record (a grid's ``training``), typed; None where unset."""
    return {k: None if record.get(k) is None else _TYPES[k](record[k]) for k in MODEL_SETTINGS}

