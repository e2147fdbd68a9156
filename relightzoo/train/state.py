"""A run's record and its resume: what a run is, whether a command continues it, RNG state.

:func:`run_config` builds the configuration a run records (``config.json`` and every
checkpoint): the model spec, the dataset (:func:`dataset_record`), the training settings
(:class:`~relightzoo.train.settings.TrainingSettings`) and the recipe. :func:`run_difference`
says the first thing a command changes from a run it would resume (model, dataset, training
lights, settings), or None: the training loop refuses such a resume with it, and an
ablation grid uses the same function to decide whether a cell resumes. The RNG helpers save
and restore the generators so a resumed run draws the batches an uninterrupted one would.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..errors import CheckpointError, TrainingError
from ..lights import LightSplit
from .recovery import resume_config
from .settings import TrainingSettings

__all__ = [
    "LATEST",
    "BEST",
    "CONFIG",
    "METRICS",
    "run_config",
    "dataset_record",
    "run_difference",
    "check_resume",
    "rng_state",
    "restore_rng",
]

LATEST = "latest.safetensors"
BEST = "best.safetensors"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


def dataset_record(dataset: Any, split: LightSplit) -> dict:
    """The ``dataset`` record of a run: source (a folder resolved to an absolute path), size,
    every light direction and the split."""
    source = str(dataset.source)
    if Path(source).is_dir():
        source = str(Path(source).resolve())
    return {
        "source": source,
        "height": int(dataset.height),
        "width": int(dataset.width),
        "lights": [[round(float(v), 7) for v in d] for d in dataset.lights.tolist()],
        "split": split.to_json(),
    }


def run_config(spec: dict | None, dataset: Any, split: LightSplit, settings: TrainingSettings, recipe: str | None = None) -> dict:
    """The configuration a run records (``config.json``; every checkpoint adds its step)."""
    config = {
        "format_version": 1,
        "relightzoo_version": __version__,
        "spec": spec,
        "dataset": dataset_record(dataset, split),
        "training": settings.to_json(),
    }
    if recipe is not None:
        config["recipe"] = str(recipe)
    return config


def _compare_spec(old: dict | None, new: dict | None) -> str | None:
    """The first difference between two model specs, said as a setting, or None."""
    if not old or not new:
        return None if not old and not new else "model: one of the two was not built by the zoo and has no spec"
    for kind, flag in (("model", "--model"), ("encoder", "--encoder"), ("activation", "--activation")):
        a, b = old.get(kind) or {}, new.get(kind) or {}
        if a.get("name") != b.get("name"):
            return f"{kind} ({flag}): the run has {a.get('name')!r}, this command {b.get('name')!r}"
        aa, ba = a.get("args") or {}, b.get("args") or {}
        for key in sorted(set(aa) | set(ba)):
            if aa.get(key) != ba.get(key):
                return f"{kind} argument {key} ({flag}-arg): the run has {aa.get(key)!r}, this command {ba.get(key)!r}"
    return None


def _compare_dataset(old: dict, new: dict) -> str | None:
    """The first difference between two dataset records, said as a setting, or None."""
    if old.get("source") != new.get("source"):
        return f"dataset (DATA): the run trained on {old.get('source')}, this command on {new.get('source')}"
    if (old.get("height"), old.get("width")) != (new.get("height"), new.get("width")):
        return (
            f"dataset size: the run trained on {old.get('width')}x{old.get('height')} images, "
            f"this command's are {new.get('width')}x{new.get('height')}"
        )
    lo, ln = old.get("lights") or [], new.get("lights") or []
    if len(lo) != len(ln) or (len(lo) and np.abs(np.asarray(lo) - np.asarray(ln)).max() > 1e-5):
        return f"dataset lights: the run's dataset had {len(lo)} lights, this command's has {len(ln)} with other directions"
    so, sn = old.get("split") or {}, new.get("split") or {}
    if list(so.get("train", [])) != list(sn.get("train", [])):
        return (
            f"training lights (--lights): the run used {so.get('rule')!r} (lights {so.get('train')}), "
            f"this command {sn.get('rule')!r} (lights {sn.get('train')})"
        )
    return None


def run_difference(saved: dict, config: dict) -> str | None:
    """The first thing ``config`` (a command's run config) changes from the run ``saved``
    recorded, said as a setting and its option; None when the command may resume the run."""
    return (
        _compare_spec(saved.get("spec"), config["spec"])
        or _compare_dataset(saved.get("dataset") or {}, config["dataset"])
        or TrainingSettings.from_json(config["training"]).differs_from(saved.get("training") or {})
    )


def check_resume(out: Path, config: dict) -> None:
    """Raise :class:`TrainingError` naming the first setting the command changes from the run in ``out``."""
    try:
        saved = resume_config(out / LATEST)
    except CheckpointError as exc:
        raise TrainingError(f"cannot resume {out}: {exc}") from None
    diff = run_difference(saved, config)
    if diff:
        raise TrainingError(f"--resume {out} does not match this command: {diff}")


def rng_state(sampler: Any, device: torch.device) -> dict:
    """Every generator a run draws from (torch, numpy, the sampler's, CUDA's) as saveable state."""
    state: dict[str, Any] = {
        "device_type": device.type,
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "sampler": sampler.state_dict() if sampler is not None else None,
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict, sampler: Any, device: torch.device, step: int, seed: int) -> None:
    """Restore the RNG states; across device types (a CUDA run resumed on the CPU) the
    sampler's generator cannot carry over, so it is reseeded from (seed, step) with a warning."""
    torch.set_rng_state(state["torch"].to(torch.uint8))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    saved_type = state.get("device_type", device.type)
    if saved_type != device.type:
        warnings.warn(
            f"resuming on {device.type} a run trained on {saved_type}: the batches from here on differ from "
            "those of an uninterrupted run",
            stacklevel=3,
        )
        if sampler is not None:
            sampler.generator.manual_seed(seed * 1_000_003 + step)
        return
    if sampler is not None and state.get("sampler") is not None:
        sampler.load_state_dict(state["sampler"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)
