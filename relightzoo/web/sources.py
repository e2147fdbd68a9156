"""What ``relightzoo view`` shows: the models (slots), the captured images and the maps.

``SOURCE`` is a checkpoint (shown as trained) or DATA (a dataset folder or built-in scene,
shown through a model fitted on the spot: a closed-form one such as ``hsh`` or ``blend``,
never one that needs training). ``compare`` adds a second slot beside it: another
checkpoint, or ``blend`` on the same training lights. The captured images come from DATA,
``--data``, or the dataset the checkpoint records when it is at hand.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.attach import attach_training_images
from ..errors import DataError, PluginError, RelightzooError
from ..zoo.capabilities import capabilities
from .basis import web_basis
from .envmaps import ENVMAP_NAMES, viewer_envmap
from .server import ViewerSlot, ViewerState

__all__ = ["build_state", "default_data_model", "model_slot", "COMPARE_BLEND"]

COMPARE_BLEND = "blend"
"""The ``--compare`` value that puts the blend baseline beside the model."""


def default_data_model() -> str:
    """The model DATA is shown through: ``hsh`` (an in-page basis) when registered, else ``blend``."""
    from ..zoo import list_plugins

    names = {p.name for p in list_plugins("model")}
    return "hsh" if "hsh" in names else "blend"


def _is_checkpoint(source: str) -> bool:
    path = Path(source)
    return path.is_file() or path.suffix == ".safetensors"


def _label(spec: dict | None, fallback: str) -> str:
    if not spec:
        return fallback
    name = spec.get("model", {}).get("name", fallback)
    parts = [spec.get(k, {}).get("name") for k in ("encoder", "activation")]
    parts = [p for p in parts if p]
    return f"{name}({', '.join(parts)})" if parts and name in ("siren",) else name


def model_slot(model: Any, label: str, size: tuple[int, int] | None, name: str | None = None) -> ViewerSlot:
    """A slot for ``model``: in the page when it is a per-pixel basis (at the planes' size),
    else on the server at ``size`` (height, width)."""
    basis = web_basis(model, name)
    notes: list[str] = []
    if basis is not None:
        height, width = basis.height, basis.width
    elif size is not None:
        height, width = size
    else:
        raise DataError(f"{label}: cannot tell the size to render at; pass --data")
    if basis is None:
        notes.append("rendered on the server: a quarter-resolution frame first, the full one after")
    return ViewerSlot(label=label, model=model, height=int(height), width=int(width), basis=basis, notes=notes)


def _load_data(data: str | None, quiet: bool) -> Any:
    if data is None:
        return None
    from ..data import load_dataset

    if quiet:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return load_dataset(data)
        except RelightzooError:
            return None
    return load_dataset(data)


def build_state(
    source: str,
    *,
    compare: str | None = None,
    data: str | None = None,
    model_name: str | None = None,
    envmap_files: Sequence[str | Path] = (),
    device: str | torch.device = "cpu",
) -> ViewerState:
    """The :class:`ViewerState` ``relightzoo view SOURCE`` serves (see the module docstring)."""
    from ..evaluate import make_baseline
    from ..lights import LightSplit, select_lights
    from ..relight import load_model
    from ..zoo import create_model

    slots: list[ViewerSlot] = []
    if _is_checkpoint(source):
        model, config = load_model(source, device=device)
        ds_info = config.get("dataset") or {}
        dataset = _load_data(data, quiet=False) if data else _load_data(ds_info.get("source"), quiet=True)
        split = LightSplit.from_json(ds_info["split"]) if ds_info.get("split") else None
        size = (dataset.height, dataset.width) if dataset is not None else (
            (int(ds_info["height"]), int(ds_info["width"])) if ds_info.get("height") else None)
        spec = config.get("spec") or {}
        name = spec.get("model", {}).get("name")
        slots.append(model_slot(model.eval(), _label(spec, Path(source).name), size, name))
        train = np.asarray(split.train) if split is not None else None
    else:
        dataset = _load_data(source, quiet=False)
        name = model_name or default_data_model()
        model = create_model(name)
        if capabilities(model).trainable:
            raise PluginError(
                f"model {name!r} needs training before it can be viewed: relightzoo train {source} --model {name}, "
                "then view the checkpoint"
            )
        split = None
        train = np.arange(len(dataset))
        attach_training_images(model, dataset, train)
        slots.append(model_slot(model.eval(), f"{name} (fitted to all {len(dataset)} captures)", (dataset.height, dataset.width), name))
        size = (dataset.height, dataset.width)

    if compare:
        if compare == COMPARE_BLEND:
            if dataset is None:
                raise DataError("--compare blend needs the captured images: pass --data")
            use = split if split is not None else select_lights("all", dataset.lights)
            blend = make_baseline(dataset, use, device=device)
            slots.append(model_slot(blend, f"blend ({len(use.train)} captures)", (dataset.height, dataset.width), "blend"))
        else:
            other, other_config = load_model(compare, device=device)
            spec = other_config.get("spec") or {}
            ds = other_config.get("dataset") or {}
            other_size = size or ((int(ds["height"]), int(ds["width"])) if ds.get("height") else None)
            slots.append(model_slot(other.eval(), _label(spec, Path(compare).name), other_size, spec.get("model", {}).get("name")))

    envmaps = [viewer_envmap(n) for n in ENVMAP_NAMES]
    envmaps += [viewer_envmap(Path(f).name, f) for f in envmap_files]
    state = ViewerState(slots=slots, envmaps=envmaps, title=f"relightzoo view {source}")
    if dataset is not None:
        state.captured_images = dataset.images()
        state.captured_lights = dataset.lights.clone()
        state.captured_source = dataset.source
    return state
