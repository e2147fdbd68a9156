"""Training settings a run leaves unset, filled from the model first, then the global defaults.

Models train best with different settings: a SIREN wants Adam at 1e-4 for thousands of
steps (the thesis's setting), a low-rank factorisation a larger rate and a cosine decay, a
convolutional model far fewer, larger steps. A model class may state its own in a
``train_defaults`` dict (keys of :data:`SETTINGS`); whatever the user sets explicitly wins.
"""

from __future__ import annotations

from typing import Any

from .optim import DEFAULT_LR

__all__ = ["DEFAULT_STEPS", "DEFAULT_BATCH_SIZE", "SETTINGS", "GLOBAL_DEFAULTS", "training_settings"]

DEFAULT_STEPS = 2000
DEFAULT_BATCH_SIZE = 4096
"""Defaults sized so that ``relightzoo train demo`` (64 x 64, ~1000 lights) trains and
evaluates in under 3 minutes on 2 CPU cores."""

GLOBAL_DEFAULTS: dict[str, Any] = {
    "steps": DEFAULT_STEPS,
    "batch_size": DEFAULT_BATCH_SIZE,
    "lr": DEFAULT_LR,
    "schedule": "none",
    "warmup_steps": 0,
}
"""What a run uses when neither the user nor the model says otherwise."""

SETTINGS = tuple(GLOBAL_DEFAULTS)
"""The settings a model's ``train_defaults`` may provide."""


def training_settings(model: object, **given: Any) -> dict[str, Any]:
    """Resolve every setting in :data:`SETTINGS`: ``given`` (None = unset), else the model's
    ``train_defaults``, else :data:`GLOBAL_DEFAULTS`."""
    unknown = set(given) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown training settings: {', '.join(sorted(unknown))}")
    from ..zoo.capabilities import capabilities

    model_defaults = capabilities(model).train_defaults
    return {
        key: given[key] if given.get(key) is not None else model_defaults.get(key, GLOBAL_DEFAULTS[key])
        for key in SETTINGS
    }
