"""Build plugins by name, list them, and record / rebuild a model from its spec.

These are the functions the rest of relightzoo (and its users) call; they go through the
process-wide plugin manager, so third-party plugins are found like built-ins.

A *model spec* is what a checkpoint stores to rebuild its model::

    {"model": {"name": "siren", "args": {...}},
     "encoder": {"name": "scaled-spherical", "args": {...}},     # only if the model uses one
     "activation": {"name": "sine", "args": {...}},              # only if the model uses one
     "plugins": {"siren": "relightzoo 0.1.0", ...}}              # the package behind each name

``args`` are complete (defaults filled in), so a checkpoint rebuilds the same model even
if a later version changes a default.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from typing import Any

from ..errors import PluginError
from .api import Backbone, Encoder, RelightModel
from .auto_args import AUTO, auto_keys, split_auto
from .manager import get_manager
from ..util.names import singular
from .registry import KINDS, PluginInfo, Registry

__all__ = [
    "DEFAULT_ENCODER",
    "DEFAULT_ACTIVATION",
    "create_encoder",
    "create_activation",
    "create_model",
    "list_plugins",
    "get_plugin",
    "find_kind",
    "model_spec",
    "build_from_spec",
    "missing_plugin",
    "unavailable_reason",
    "missing_plugin_message",
    "registry",
]

DEFAULT_ENCODER = "scaled-spherical"
"""Encoder a model gets when none is named (the thesis's input scaling)."""

DEFAULT_ACTIVATION = "sine"
"""Activation a model gets when none is named (SIREN)."""

SPEC_ATTR = "relightzoo_spec"
"""Attribute under which :func:`create_model` stores a model's spec."""


def registry(kind: str) -> Registry:
    """The registry of one plugin kind (``encoder``, ``activation`` or ``model``; plurals
    accepted)."""
    return get_manager().registries[_kind(kind)]


def _kind(kind: str) -> str:
    k = singular(kind, KINDS)
    if k is None:
        raise PluginError(f"unknown plugin kind {kind!r}; use one of {', '.join(KINDS)}")
    return k


def create_encoder(name_or_module: str | Encoder | type, /, **kwargs: Any) -> Encoder:
    """An encoder by registered name with keyword overrides, or your own Encoder passed through."""
    return registry("encoder").create(name_or_module, **kwargs)


def create_activation(name_or_backbone: str | Backbone | type, /, **kwargs: Any) -> Backbone:
    """An activation backbone by registered name with keyword overrides, or your own Backbone."""
    return registry("activation").create(name_or_backbone, **kwargs)


def create_model(
    name: str | RelightModel | type,
    /,
    *,
    encoder: str | Encoder | None = None,
    activation: str | Backbone | None = None,
    encoder_args: Mapping[str, Any] | None = None,
    activation_args: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> RelightModel:
    """Build a model with its encoder and activation.

    ``encoder`` / ``activation`` are names or objects (None: :data:`DEFAULT_ENCODER` /
    :data:`DEFAULT_ACTIVATION`); ``encoder_args`` / ``activation_args`` override their
    defaults; ``kwargs`` override the model's own. A model that does not use an encoder or
    an activation (``blend``) ignores them. Keyword values that are None are dropped, so an
    unset CLI option keeps the plugin's default. The result carries its spec
    (:func:`model_spec` returns it).
    """
    asked = [f"{key}=auto" for args in (kwargs, encoder_args, activation_args) for key in auto_keys(args)]
    if asked:
        raise PluginError(
            f"{', '.join(asked)} is chosen from the training lights when a run starts: train the model's spec "
            "(relightzoo train, relightzoo.train.train) or choose it first with relightzoo.zoo.resolve_auto_args"
        )
    if not isinstance(name, str):
        return registry("model").create(name, **kwargs)
    models = registry("model")
    info = models.get(name)
    extra: dict[str, Any] = {}
    if "encoder" in info.uses:
        extra["encoder"] = create_encoder(encoder if encoder is not None else DEFAULT_ENCODER, **dict(encoder_args or {}))
    if "activation" in info.uses:
        extra["activation"] = create_activation(
            activation if activation is not None else DEFAULT_ACTIVATION, **dict(activation_args or {})
        )
    model = models.create(info.name, extra=extra, **kwargs)
    spec = {"model": dict(model.zoo_spec)}
    plugins = {info.name: info.provider}
    for kind, obj in extra.items():
        spec[kind] = _object_spec(kind, obj)
        if spec[kind]["name"] is not None:
            plugins[spec[kind]["name"]] = registry(kind).get(spec[kind]["name"]).provider
    spec["plugins"] = plugins
    setattr(model, SPEC_ATTR, spec)
    return model


def _object_spec(kind: str, obj: Any) -> dict[str, Any]:
    """``{"name", "args"}`` of a built encoder/activation; ``name`` None for a custom object."""
    recorded = getattr(obj, "zoo_spec", None)
    if isinstance(recorded, dict) and "name" in recorded:
        return copy.deepcopy(recorded)
    reg = registry(kind)
    own = getattr(obj, "name", None)
    if isinstance(own, str) and own in reg and isinstance(reg.get(own).factory, type) and type(obj) is reg.get(own).factory:
        args = obj.describe() if hasattr(obj, "describe") else {}
        return {"name": reg.get(own).name, "args": dict(args)}
    return {"name": None, "class": f"{type(obj).__module__}.{type(obj).__qualname__}", "args": {}}


def spec_or_none(model: Any) -> dict[str, Any] | None:
    """The spec of a model built by :func:`create_model` / :func:`build_from_spec`, or None for
    a module the zoo did not build (it has no spec to record)."""
    spec = getattr(model, SPEC_ATTR, None)
    return copy.deepcopy(spec) if spec is not None else None


def model_spec(
    name_or_model: str | RelightModel,
    /,
    *,
    encoder: str | None = None,
    activation: str | None = None,
    encoder_args: Mapping[str, Any] | None = None,
    activation_args: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The spec of a model built by :func:`create_model` / :func:`build_from_spec`, or the
    spec :func:`create_model` would produce for these arguments (checked, not built)."""
    if not isinstance(name_or_model, str):
        spec = getattr(name_or_model, SPEC_ATTR, None)
        if spec is None:
            raise PluginError(
                f"this {type(name_or_model).__name__} was not built by create_model, so its spec is unknown; "
                "build it with relightzoo.zoo.create_model to save it in a checkpoint"
            )
        return copy.deepcopy(spec)
    info, args = _resolve_keeping_auto("model", name_or_model, kwargs)
    spec: dict[str, Any] = {"model": {"name": info.name, "args": args}}
    plugins = {info.name: info.provider}
    for kind, name, overrides, default in (
        ("encoder", encoder, encoder_args, DEFAULT_ENCODER),
        ("activation", activation, activation_args, DEFAULT_ACTIVATION),
    ):
        if kind in info.uses:
            sub, sub_args = _resolve_keeping_auto(kind, name if name is not None else default, overrides)
            spec[kind] = {"name": sub.name, "args": sub_args}
            plugins[sub.name] = sub.provider
    spec["plugins"] = plugins
    return spec


def _resolve_keeping_auto(kind: str, name: str, overrides: Mapping[str, Any] | None) -> tuple[PluginInfo, dict[str, Any]]:
    """:meth:`Registry.resolve`, with the arguments written ``auto`` checked and kept as
    ``"auto"`` (chosen from the training lights when a run starts: :mod:`.auto_args`)."""
    info = registry(kind).get(name)
    plain, asked = split_auto(kind, info.name, overrides)
    info, args = registry(kind).resolve(info.name, plain)
    return info, {**args, **{key: AUTO for key in asked}}


def missing_plugin(spec: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """The first ``(kind, name, provider)`` a model spec names that is not registered here
    (or is registered by another package, its recorded provider's claim having been skipped),
    in the order model, encoder, activation; ``provider`` is the ``"package version"`` the
    spec recorded for it, or ``""``. None when every named plugin is installed."""
    plugins = spec.get("plugins") or {}
    for kind in ("model", "encoder", "activation"):
        entry = spec.get(kind)
        name = entry.get("name") if isinstance(entry, Mapping) else None
        provider = str(plugins.get(name, "")).strip() if isinstance(name, str) else ""
        if isinstance(name, str) and (name not in registry(kind) or _claim_skipped(kind, name, provider)):
            return kind, name, provider
    return None


def missing_plugin_message(kind: str, name: str, provider: str, *, needed_by: str | None = None) -> str:
    """The one sentence saying that a plugin a spec names cannot be used here: what needs it
    (``needed_by``, a checkpoint path; else "this model"), which plugin from which package,
    and :func:`unavailable_reason`. Without a recorded provider: the registry's "unknown
    name" message (nearest names) for a model, "which is not installed" for a checkpoint."""
    if not provider:
        if needed_by is None:
            return registry(kind).unknown_message(name)
        return f"{needed_by} needs the {kind} plugin {name!r}, which is not installed"
    if needed_by is None:
        head = f"this model needs the {kind} {name!r} from the package {provider}, "
    else:
        head = f"{needed_by} needs the {kind} plugin {name!r} from package {provider}, "
    return head + unavailable_reason(kind, name, provider)


def unavailable_reason(kind: str, name: str, provider: str) -> str:
    """The end of the sentence "this model needs the {kind} {name} from the package
    {provider}, ...": which is not installed (and how to install it), or what is actually
    wrong with the installed package (blocked, failed to load, its claim skipped)."""
    from .manager import why_unavailable

    reason = why_unavailable(get_manager(), kind, name, provider)
    if reason is not None:
        return f"which {reason}"
    return f"which is not installed (pip install {provider.split()[0]})"


def _claim_skipped(kind: str, name: str, provider: str) -> bool:
    """Whether ``provider``'s claim to ``name`` was skipped (another package holds the name)."""
    from .manager import skipped_claim

    return bool(provider) and skipped_claim(get_manager(), kind, name, provider) is not None


def build_from_spec(spec: Mapping[str, Any]) -> RelightModel:
    """Rebuild a model (untrained weights) from a spec as stored in a checkpoint.

    A plugin the spec names but this installation lacks raises :class:`PluginError` naming
    the plugin and the package (and version) that provided it.
    """
    model_entry = spec.get("model") if isinstance(spec, Mapping) else None
    if not isinstance(model_entry, Mapping) or not isinstance(model_entry.get("name"), str):
        raise PluginError("model spec is malformed: it needs {'model': {'name': ..., 'args': {...}}}")
    plugins = spec.get("plugins") or {}
    names: dict[str, Any] = {}
    args: dict[str, dict[str, Any]] = {}
    for kind in ("model", "encoder", "activation"):
        entry = spec.get(kind)
        if entry is None:
            continue
        if not isinstance(entry, Mapping):
            raise PluginError(f"model spec is malformed: {kind!r} must be a mapping with 'name' and 'args'")
        name = entry.get("name")
        if name is None:
            raise PluginError(
                f"the model was built with a custom {kind} object ({entry.get('class', 'unknown class')}), "
                "not a registered plugin, so it cannot be rebuilt by name"
            )
        provider = str(plugins.get(name, "")).strip()
        if name not in registry(kind) or _claim_skipped(kind, name, provider):
            raise PluginError(missing_plugin_message(kind, name, provider))
        names[kind] = name
        entry_args = entry.get("args") or {}
        if not isinstance(entry_args, Mapping):
            raise PluginError(f"model spec is malformed: {kind} args must be a mapping")
        args[kind] = dict(entry_args)
    return create_model(
        names["model"],
        encoder=names.get("encoder"),
        activation=names.get("activation"),
        encoder_args=args.get("encoder"),
        activation_args=args.get("activation"),
        **args["model"],
    )


def list_plugins(kind: str | None = None, pattern: str = "*") -> list[PluginInfo]:
    """Registered plugins of one kind (or all), filtered by an fnmatch ``pattern`` on the
    name; ordered by kind (encoder, activation, model) then naturally by name."""
    kinds = [_kind(kind)] if kind else list(KINDS)
    return [info for k in kinds for info in registry(k).list(pattern)]


def find_kind(name: str, kind: str | None = None) -> str:
    """The kind of the plugin called ``name`` (checked against ``kind`` when given). A name
    registered as several kinds needs ``kind``; an unknown one suggests the nearest names."""
    if kind is not None:
        return registry(kind).get(name).kind
    found = [k for k in KINDS if name in registry(k)]
    if len(found) == 1:
        return found[0]
    if found:
        raise PluginError(f"{name!r} is registered as {' and as '.join(found)}; say which with --kind")
    everything = {n: k for k in KINDS for n in registry(k).names()}
    close = difflib.get_close_matches(name.strip().lower().replace("_", "-"), list(everything), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(f'{c!r} ({everything[c]})' for c in close)}?" if close else ""
    raise PluginError(f"no plugin is called {name!r}{hint} (run 'relightzoo plugins' to list all)")


def get_plugin(kind: str, name: str) -> PluginInfo:
    """The :class:`PluginInfo` of one plugin; an unknown name suggests the nearest."""
    return registry(kind).get(name)

