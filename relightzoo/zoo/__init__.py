"""The relightzoo model zoo: encoders x activations x models, as plugins.

Build by name::

    from relightzoo.zoo import create_model
    model = create_model("siren", encoder="fourier", activation="sine",
                         encoder_args={"pixel_scale": 6.0}, hidden_layers=4)

or hand in your own objects (an :class:`Encoder`, a :class:`Backbone`) instead of names.
Plugins register through pluggy hooks (:data:`hookimpl`, :mod:`relightzoo.zoo.hookspecs`);
third-party packages declare them under the entry-point group ``relightzoo``.
"""

from __future__ import annotations

from .api import (
    DEFAULT_RENDER_CHUNK,
    Backbone,
    CapturedImagesModel,
    CoordinateModel,
    Encoder,
    RelightModel,
    training_data_tensors,
)
from .args import parse_kv, parse_value
from .auto_args import AUTO, resolve_auto_args, resolve_auto_spec
from .capabilities import Capabilities, capabilities, render_model
from .factory import (
    DEFAULT_ACTIVATION,
    DEFAULT_ENCODER,
    build_from_spec,
    create_activation,
    create_encoder,
    create_model,
    get_plugin,
    list_plugins,
    find_kind,
    missing_plugin,
    model_spec,
    unavailable_reason,
)
from .hookspecs import hookimpl
from .registry import PluginInfo

__all__ = [
    "Encoder",
    "Backbone",
    "RelightModel",
    "CapturedImagesModel",
    "training_data_tensors",
    "CoordinateModel",
    "Capabilities",
    "capabilities",
    "render_model",
    "DEFAULT_RENDER_CHUNK",
    "DEFAULT_ENCODER",
    "DEFAULT_ACTIVATION",
    "PluginInfo",
    "hookimpl",
    "create_encoder",
    "create_activation",
    "create_model",
    "list_plugins",
    "get_plugin",
    "model_spec",
    "build_from_spec",
    "missing_plugin",
    "unavailable_reason",
    "find_kind",
    "parse_kv",
    "parse_value",
    "AUTO",
    "resolve_auto_args",
    "resolve_auto_spec",
]
