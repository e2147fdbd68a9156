"""One registry per plugin kind: names -> factories, with descriptions and default arguments.

A :class:`Registry` holds :class:`PluginInfo` records for one kind (``encoder``,
``activation`` or ``model``). It checks names and conflicts in one place, lists with fnmatch
wildcards in natural order, resolves keyword overrides against the factory's defaults
(wrong names and wrong types are one-line :class:`~relightzoo.errors.PluginError`\\ s), and
builds plugins. Like ``timm.layers.create_act``, :meth:`Registry.create` also accepts the
object itself (or its class), so Python users can hand in a module they never registered.

The registries are filled by the plugin manager (:mod:`relightzoo.zoo.manager`); most code
uses the functions in :mod:`relightzoo.zoo` instead of this module.
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import PluginConflict, PluginError
from .api import Backbone, Encoder, RelightModel
from ..util.names import natural_key, nearest_names, normalise_name
from .args import coerce

__all__ = ["KINDS", "PluginInfo", "PluginConflict", "Registry", "normalise_name", "natural_key"]

KINDS: dict[str, type] = {"encoder": Encoder, "activation": Backbone, "model": RelightModel}
"""Plugin kind -> the base class its plugins build."""

MODEL_INPUTS = ("encoder", "activation")
"""Keyword arguments a model factory may take that the zoo fills with built plugins."""

_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*$")


@dataclass(frozen=True)
class PluginInfo:
    """One registered plugin.

    ``defaults`` are its keyword arguments and their default values (what ``relightzoo
    plugins`` shows and what the registry coerces overrides to); ``required`` names arguments
    with no default; ``package``/``version`` say which distribution provided it; ``uses``
    lists the other plugin kinds a model consumes (``("encoder", "activation")`` for siren,
    ``()`` for blend); ``accepts_any`` is True when the factory takes ``**kwargs``.
    """

    kind: str
    name: str
    factory: Callable[..., Any] = field(repr=False, compare=False)
    description: str
    defaults: dict[str, Any] = field(default_factory=dict, hash=False)
    package: str = "unknown"
    version: str = ""
    uses: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    accepts_any: bool = False

    @property
    def provider(self) -> str:
        """``"package version"``, as recorded in a model spec's ``plugins`` map."""
        return f"{self.package} {self.version}".strip()

    @property
    def arg_names(self) -> list[str]:
        """Every argument name the plugin accepts (defaults first, then required ones)."""
        return list(self.defaults) + [n for n in self.required if n not in self.defaults]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (``relightzoo plugins --json``)."""
        out = {
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "defaults": dict(self.defaults),
            "package": self.package,
            "version": self.version,
        }
        if self.required:
            out["required"] = list(self.required)
        if self.kind == "model":
            out["uses"] = list(self.uses)
        return out


def _signature(factory: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):  # some builtins have no signature
        return None


def _first_doc_line(obj: Any) -> str:
    """The first line of ``obj``'s own docstring (not one inherited from a base class)."""
    doc = inspect.cleandoc(obj.__doc__) if isinstance(getattr(obj, "__doc__", None), str) else ""
    return doc.strip().splitlines()[0].strip() if doc.strip() else ""


class Registry:
    """The plugins of one kind, by name."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}")
        self.kind = kind
        self.base = KINDS[kind]
        self._plugins: dict[str, PluginInfo] = {}

    # -- registration -------------------------------------------------------------------
    def register(
        self,
        name: str,
        factory: Callable[..., Any],
        description: str | None = None,
        defaults: Mapping[str, Any] | None = None,
        *,
        package: str = "unknown",
        version: str = "",
        uses: Iterable[str] | None = None,
    ) -> PluginInfo:
        """Add a plugin; returns its :class:`PluginInfo`.

        ``defaults`` default to the factory's keyword defaults; ``description`` to the first
        line of its docstring. For models, ``uses`` defaults to whichever of ``encoder`` and
        ``activation`` the factory takes. The same name from two packages raises
        :class:`PluginError` naming both; registering the identical plugin again is a no-op.
        """
        key = normalise_name(name)
        if not _NAME.match(key):
            raise PluginError(
                f"{self.kind} plugin name {name!r} (from {package}) is not valid: use lower-case letters, digits, '-' and '.'"
            )
        if not callable(factory):
            raise PluginError(f"{self.kind} plugin {key!r} (from {package}): factory {factory!r} is not callable")
        sig = _signature(factory)
        params = [] if sig is None else [
            p for p in sig.parameters.values()
            if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"
        ]
        accepts_any = sig is None or any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
        skip = set(MODEL_INPUTS) if self.kind == "model" else set()
        if defaults is None:
            defaults = {p.name: p.default for p in params if p.default is not p.empty and p.name not in skip}
        else:
            defaults = dict(defaults)
        required = tuple(p.name for p in params if p.default is p.empty and p.name not in skip and p.name not in defaults)
        if self.kind == "model":
            taken = {p.name for p in params} if sig is not None else set()
            uses_t = tuple(uses) if uses is not None else tuple(k for k in MODEL_INPUTS if k in taken)
            bad = [u for u in uses_t if u not in MODEL_INPUTS]
            if bad:
                raise PluginError(f"model plugin {key!r}: 'uses' may name only {', '.join(MODEL_INPUTS)}, got {bad[0]!r}")
        else:
            uses_t = ()
        desc = (description or _first_doc_line(factory) or "").strip()
        info = PluginInfo(
            kind=self.kind,
            name=key,
            factory=factory,
            description=desc.splitlines()[0] if desc else "",
            defaults=defaults,
            package=package,
            version=version,
            uses=uses_t,
            required=required,
            accepts_any=accepts_any,
        )
        old = self._plugins.get(key)
        if old is not None:
            if old.factory is factory and old.package == package:
                return old
            if old.package == package:
                raise PluginError(f"{self.kind} {key!r} is registered twice by package {package}")
            raise PluginConflict(
                f"{self.kind} {key!r} is provided by two packages, {old.provider} and {info.provider}; "
                "uninstall one, or block one with RELIGHTZOO_BLOCK_PLUGINS=<entry point or package name>"
            )
        self._plugins[key] = info
        return info

    def unregister(self, name: str) -> None:
        """Remove a plugin (tests, and rolling back a plugin whose hook failed)."""
        self._plugins.pop(normalise_name(name), None)

    # -- lookup -------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalise_name(name) in self._plugins

    def __len__(self) -> int:
        return len(self._plugins)

    def names(self) -> list[str]:
        """Every registered name, naturally sorted."""
        return sorted(self._plugins, key=natural_key)

    def list(self, pattern: str | Iterable[str] = "*") -> list[PluginInfo]:
        """Plugins whose name matches ``pattern`` (fnmatch wildcards; several patterns are
        OR-ed), in natural order. Matching ignores case and treats ``_`` as ``-``."""
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        patterns = [normalise_name(p) for p in patterns] or ["*"]
        return [self._plugins[n] for n in self.names() if any(fnmatch.fnmatchcase(n, p) for p in patterns)]

    def get(self, name: str) -> PluginInfo:
        """The plugin called ``name``; an unknown name raises :class:`PluginError` that
        suggests the nearest registered names."""
        key = normalise_name(name)
        info = self._plugins.get(key)
        if info is None:
            raise PluginError(self.unknown_message(name))
        return info

    def unknown_message(self, name: str) -> str:
        """The error text for an unknown ``name``: the nearest names and how to list all."""
        key = normalise_name(name)
        close = nearest_names(key, self.names(), n=3)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}{hint} "
            f"(run 'relightzoo plugins --kind {self.kind}' to list all {len(self)})"
        )

    # -- building -----------------------------------------------------------------------
    def resolve(self, name: str, overrides: Mapping[str, Any] | None = None) -> tuple[PluginInfo, dict[str, Any]]:
        """The plugin and its full argument dict: defaults updated with ``overrides``.

        Overrides whose value is None are dropped (an unset CLI option never replaces a
        plugin's own default). A name the plugin does not take, or a value that cannot be
        converted to the default's type, raises :class:`PluginError`; so does a missing
        required argument.
        """
        info = self.get(name)
        args = dict(info.defaults)
        valid = set(info.arg_names)
        for key, value in (overrides or {}).items():
            if value is None:
                continue
            if key not in valid and not info.accepts_any:
                names = ", ".join(info.arg_names) or "none"
                close = difflib.get_close_matches(key, info.arg_names, n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(
                    f"{self.kind} {info.name!r} has no argument {key!r}{hint}; its arguments are: {names}"
                )
            where = f"{self.kind} {info.name!r} argument {key!r}"
            args[key] = coerce(value, info.defaults[key], where=where) if key in info.defaults else value
        missing = [n for n in info.required if n not in args]
        if missing:
            raise PluginError(f"{self.kind} {info.name!r} needs the argument(s) {', '.join(missing)}")
        return info, args

    def create(self, name_or_obj: Any, /, *, extra: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Build a plugin by name with keyword overrides, or pass an object straight through.

        ``name_or_obj`` may be a registered name, an instance of the kind's base class
        (returned unchanged; no overrides allowed), or a subclass of it (called with
        ``kwargs``). ``extra`` holds arguments the zoo itself supplies (a model's built
        encoder and activation), passed to the factory without checks. The built object gets
        a ``zoo_spec`` attribute ``{"name", "args"}`` so it can be recorded in checkpoints.
        """
        if isinstance(name_or_obj, str):
            info, args = self.resolve(name_or_obj, kwargs)
            try:
                obj = info.factory(**args, **(extra or {}))
            except PluginError:
                raise
            except (TypeError, ValueError) as exc:
                raise PluginError(f"{self.kind} {info.name!r} ({info.provider}) rejected its arguments {args}: {exc}") from exc
            self._check_built(obj, info.name)
            try:
                obj.zoo_spec = {"name": info.name, "args": dict(args)}
            except AttributeError:  # objects with __slots__ cannot carry it
                pass
            return obj
        if isinstance(name_or_obj, self.base):
            if kwargs:
                raise PluginError(
                    f"arguments {', '.join(sorted(kwargs))} were given with a ready-made {self.kind} object; "
                    f"pass a plugin name or a class to apply them"
                )
            return name_or_obj
        if isinstance(name_or_obj, type) and issubclass(name_or_obj, self.base):
            obj = name_or_obj(**{k: v for k, v in kwargs.items() if v is not None}, **(extra or {}))
            self._check_built(obj, name_or_obj.__name__)
            return obj
        raise PluginError(
            f"expected a {self.kind} name or a {self.base.__name__} object, got {type(name_or_obj).__name__} {name_or_obj!r}"
        )

    def _check_built(self, obj: Any, name: str) -> None:
        if not isinstance(obj, self.base):
            raise PluginError(f"{self.kind} plugin {name!r} built a {type(obj).__name__}, not a {self.base.__name__}")
        if self.kind == "encoder" and not isinstance(getattr(obj, "out_features", None), int):
            raise PluginError(f"encoder plugin {name!r} does not set an integer out_features")
