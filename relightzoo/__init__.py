"""relightzoo: a plugin-based model zoo for image-based relighting.

Learn the function (pixel x, y, light direction) -> RGB from one-light-at-a-time photographs
and render the scene under lights, environment maps and resolutions no camera saw.

The Python API mirrors the CLI::

    import relightzoo as rz
    data = rz.load_dataset("demo")
    split = rz.select_lights("xu5:0.77", data.lights)
    spec = rz.model_spec("siren", encoder="direction", activation="sine")
    result = rz.train(data, split, spec, steps=500, out_dir="runs/quick")
    model, config = rz.load_checkpoint("runs/quick/latest.safetensors")
    image = rz.relight(model, [0.3, 0.2, 0.93], 256, 256)

Plugin authors need only :data:`hookimpl` and the base classes in :mod:`relightzoo.zoo`.
"""

from __future__ import annotations

__version__ = "0.1.0"

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "load_dataset": "relightzoo.data",
    "OLATDataset": "relightzoo.data",
    "PixelLightSampler": "relightzoo.data",
    "select_lights": "relightzoo.lights",
    "LightSplit": "relightzoo.lights",
    "hookimpl": "relightzoo.zoo",
    "Encoder": "relightzoo.zoo",
    "Backbone": "relightzoo.zoo",
    "RelightModel": "relightzoo.zoo",
    "CoordinateModel": "relightzoo.zoo",
    "create_encoder": "relightzoo.zoo",
    "create_activation": "relightzoo.zoo",
    "create_model": "relightzoo.zoo",
    "list_plugins": "relightzoo.zoo",
    "model_spec": "relightzoo.zoo",
    "build_from_spec": "relightzoo.zoo",
    "train": "relightzoo.train",
    "save_checkpoint": "relightzoo.train",
    "load_checkpoint": "relightzoo.train",
    "evaluate": "relightzoo.evaluate",
    "relight": "relightzoo.relight",
    "Recipe": "relightzoo.recipes",
    "get_recipe": "relightzoo.recipes",
    "list_recipes": "relightzoo.recipes",
    "register_recipe": "relightzoo.recipes",
}
"""Public name -> the module that defines it. Resolved on first use (PEP 562), so that
``import relightzoo`` and the CLI's start-up do not pay for torch, timm and torchvision
until something needs them."""


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'relightzoo' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "__version__",
    "load_dataset",
    "OLATDataset",
    "PixelLightSampler",
    "select_lights",
    "LightSplit",
    "hookimpl",
    "Encoder",
    "Backbone",
    "RelightModel",
    "CoordinateModel",
    "create_encoder",
    "create_activation",
    "create_model",
    "list_plugins",
    "model_spec",
    "build_from_spec",
    "train",
    "save_checkpoint",
    "load_checkpoint",
    "evaluate",
    "relight",
    "Recipe",
    "get_recipe",
    "list_recipes",
    "register_recipe",
]
