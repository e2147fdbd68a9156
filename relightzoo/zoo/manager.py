"""The pluggy plugin manager: built-ins first, then third-party entry points, one at a time.

Built on first use (:func:`get_manager`) and kept for the life of the process:

1. the built-in plugins (:mod:`relightzoo.builtins`) register through the same hooks a
   third party implements;
2. every entry point in the group ``relightzoo`` is loaded in name order, unless its name
   (or its distribution's name) is listed in ``RELIGHTZOO_BLOCK_PLUGINS="a,b"``. A plugin
   that fails to import, fails pluggy's hook validation or raises inside a hook is reported
   by name with its error (a :class:`PluginWarning`), its partial registrations are rolled
   back, and loading goes on. A plugin that claims a name another package already provides
   (a built-in's, or an earlier entry point's) keeps the rest of what it registers; that
   one claim is skipped and reported in one line naming both packages, and the name keeps
   its first provider (the built-in wins).

Under the project's own tests (:data:`TESTING_FLAG` set on ``sys`` by
``tests/conftest.py``, as simonw/llm does) installed entry points are not loaded, so the
suite sees exactly the built-ins plus the plugins its fixtures register.

Each registered name remembers the distribution (name and version) that provided it, which
is what a checkpoint records so that a missing plugin can be named with its package.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .. import __version__
from ..util.names import normalise_name
from .hookspecs import PROJECT, RelightzooSpec
from .registry import KINDS, PluginConflict, Registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "BLOCK_ENV",
    "HOOKS",
    "PluginWarning",
    "PluginConflict",
    "PluginSource",
    "ZooPlugins",
    "build_manager",
    "get_manager",
    "reset_manager",
    "blocked_names",
    "SkippedClaim",
    "TESTING_FLAG",
    "why_unavailable",
    "skipped_claim",
]

TESTING_FLAG = "_relightzoo_under_test"
"""Attribute of ``sys`` that, when true, keeps installed entry points from loading by default."""

ENTRY_POINT_GROUP = PROJECT
"""Entry-point group third-party plugins declare (``[project.entry-points.relightzoo]``)."""

BLOCK_ENV = "RELIGHTZOO_BLOCK_PLUGINS"
"""Comma-separated entry-point or distribution names that are not loaded."""

HOOKS: dict[str, str] = {
    "encoder": "register_encoders",
    "activation": "register_activations",
    "model": "register_models",
}
"""Plugin kind -> the hook that registers plugins of that kind."""

BUILTIN_MODULES = (
    "relightzoo.builtins.encoders",
    "relightzoo.builtins.activations",
    "relightzoo.builtins.siren",
    "relightzoo.builtins.blend",
    "relightzoo.builtins.learned_blend",
    "relightzoo.builtins.lowrank",
    "relightzoo.builtins.rti",
    "relightzoo.builtins.rbf",
    "relightzoo.builtins.neural_rti",
    "relightzoo.builtins.latent_siren",
)
"""The built-in plugin modules, in registration order, named rather than imported: the zoo
imports them when it registers them (:meth:`ZooPlugins.add_builtins`), so the zoo never
imports the built-ins that import it. A new built-in module is one more line here."""


class PluginWarning(UserWarning):
    """A third-party plugin could not be loaded and was skipped."""


@dataclass
class PluginSource:
    """One loaded plugin module: where it came from and what it registered."""

    name: str
    package: str
    version: str
    builtin: bool
    registered: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class SkippedClaim:
    """A name a plugin tried to register that another package already provides."""

    kind: str
    name: str
    kept: str
    """``"package version"`` that keeps the name."""
    skipped: str
    """``"package version"`` whose claim was skipped."""
    plugin: str
    """The entry point (plugin) whose claim was skipped."""

    def message(self) -> str:
        package = self.skipped.split()[0]
        return (
            f"plugin {self.plugin!r} (package {self.skipped}) registers the {self.kind} name {self.name!r}, "
            f"which {self.kept} already provides: kept {self.kept}'s, skipped {package}'s; "
            f"rename it in {package} or set {BLOCK_ENV}={self.plugin}"
        )


def blocked_names(value: str | None = None) -> set[str]:
    """The names in ``RELIGHTZOO_BLOCK_PLUGINS`` (or ``value``), normalised."""
    text = os.environ.get(BLOCK_ENV, "") if value is None else value
    return {normalise_name(t) for t in text.split(",") if t.strip()}


class ZooPlugins:
    """A pluggy PluginManager plus one :class:`Registry` per plugin kind."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(RelightzooSpec)
        self.registries: dict[str, Registry] = {kind: Registry(kind) for kind in KINDS}
        self.sources: list[PluginSource] = []
        self.failed: dict[str, str] = {}
        self.blocked: list[str] = []
        self.packages: dict[str, str] = {}
        """Entry-point name -> its distribution, for every entry point seen (loaded or not)."""
        self.skipped: list[SkippedClaim] = []

    # -- loading ------------------------------------------------------------------------
    def add_plugin(self, plugin: Any, name: str, *, package: str, version: str, builtin: bool = False) -> PluginSource:
        """Register one plugin object (a module with hookimpls) and run its hooks at once.

        Registrations made by its hooks are credited to ``package``/``version``. If a hook
        raises, everything this plugin registered is removed again and the error re-raised.
        """
        self.pm.register(plugin, name=name)
        source = PluginSource(name=name, package=package, version=version, builtin=builtin)
        others = [p for p in self.pm.get_plugins() if p is not plugin]
        try:
            self.pm.check_pending()  # a hookimpl whose name is not a relightzoo hook (a typo)
            for kind, hook in HOOKS.items():
                register = self._register_callback(self.registries[kind], source, self.skipped)
                self.pm.subset_hook_caller(hook, remove_plugins=others)(register=register)
        except BaseException:
            for kind, reg_name in source.registered:
                self.registries[kind].unregister(reg_name)
            self.pm.unregister(plugin)
            raise
        self.sources.append(source)
        return source

    @staticmethod
    def _register_callback(registry: Registry, source: PluginSource, skipped: list[SkippedClaim]):
        """The ``register`` function handed to one plugin's hook for one kind. A name another
        package provides already is not taken over: the claim is recorded, warned about
        in one line, and ``register`` returns None."""

        def register(name, factory, description=None, defaults=None, *, uses=None):
            try:
                info = registry.register(name, factory, description, defaults,
                                         package=source.package, version=source.version, uses=uses)
            except PluginConflict:
                kept = registry.get(name).provider
                claim = SkippedClaim(registry.kind, registry.get(name).name, kept,
                                     f"{source.package} {source.version}".strip(), source.name)
                skipped.append(claim)
                warnings.warn(claim.message(), PluginWarning, stacklevel=2)
                return None
            if (info.kind, info.name) not in source.registered:
                source.registered.append((info.kind, info.name))
            return info

        return register

    def add_builtins(self) -> None:
        """Register relightzoo's own plugins, through the same hooks."""
        for name in BUILTIN_MODULES:
            module = importlib.import_module(name)
            self.add_plugin(module, module.__name__, package="relightzoo", version=__version__, builtin=True)

    def load_entry_points(self, entry_points: Iterable[Any] | None = None, *, blocked: set[str] | None = None) -> None:
        """Load third-party plugins one at a time; a broken one is warned about and skipped.

        ``entry_points`` defaults to the installed ones in the ``relightzoo`` group;
        ``blocked`` to the names in ``RELIGHTZOO_BLOCK_PLUGINS``.
        """
        if entry_points is None:
            if getattr(sys, TESTING_FLAG, False):
                return
            entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        blocked = blocked_names() if blocked is None else {normalise_name(b) for b in blocked}
        seen: set[tuple[str, str]] = set()
        for ep in sorted(entry_points, key=lambda e: e.name):
            if (ep.name, ep.value) in seen:  # the same distribution found twice on sys.path
                continue
            seen.add((ep.name, ep.value))
            package, version = _distribution(ep)
            self.packages[ep.name] = package
            if normalise_name(ep.name) in blocked or normalise_name(package) in blocked:
                self.blocked.append(ep.name)
                continue
            if self.pm.has_plugin(ep.name):
                self._fail(ep.name, package, f"another plugin is already loaded under the name {ep.name!r}")
                continue
            try:
                plugin = ep.load()
                self.add_plugin(plugin, ep.name, package=package, version=version)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the zoo
                self._fail(ep.name, package, f"{type(exc).__name__}: {exc}")
            except SystemExit as exc:  # a plugin that calls sys.exit() at import is broken, not a request to quit
                self._fail(ep.name, package, f"it called sys.exit({exc.code!r}) while loading")

    def _fail(self, name: str, package: str, error: str) -> None:
        self.failed[name] = error
        warnings.warn(
            f"plugin {name!r} (package {package}) failed to load and was skipped: {error}; "
            f"set {BLOCK_ENV}={name} to silence this",
            PluginWarning,
            stacklevel=3,
        )


def skipped_claim(zoo: ZooPlugins, kind: str, name: str, provider: str) -> SkippedClaim | None:
    """The skipped claim of ``provider``'s package (``"package version"``) to ``name``, if any."""
    package = normalise_name(provider.split()[0]) if provider.strip() else ""
    for claim in zoo.skipped:
        if claim.kind == kind and claim.name == name and normalise_name(claim.skipped.split()[0]) == package:
            return claim
    return None


def why_unavailable(zoo: ZooPlugins, kind: str, name: str, provider: str) -> str | None:
    """Why the ``kind`` plugin ``name`` from ``provider`` (``"package version"``, as a
    checkpoint records it) is not usable here although its package is installed: blocked,
    failed to load, or its claim to the name skipped. None when the package is simply not
    installed (or nothing is known about it)."""
    package = normalise_name(provider.split()[0]) if provider.strip() else ""
    if not package:
        return None
    claim = skipped_claim(zoo, kind, name, provider)
    if claim is not None:
        return f"is installed, but its claim to the name was skipped: {claim.kept} provides {kind} {name!r} here"
    for ep_name, dist in zoo.packages.items():
        if normalise_name(dist) != package:
            continue
        if ep_name in zoo.blocked:
            return f"is installed but blocked by {BLOCK_ENV} (remove {ep_name} from it)"
        if ep_name in zoo.failed:
            return f"is installed but failed to load: {zoo.failed[ep_name]}"
    return None


def _distribution(ep: Any) -> tuple[str, str]:
    """(distribution name, version) of an entry point, or its module name when unknown."""
    dist = getattr(ep, "dist", None)
    if dist is not None:
        try:
            return dist.name, dist.version
        except Exception:  # noqa: BLE001 - broken metadata: fall back to the module name
            pass
    return str(getattr(ep, "value", ep.name)).split(":")[0].split(".")[0], ""


def build_manager(entry_points: Iterable[Any] | None = None, *, blocked: Iterable[str] | None = None) -> ZooPlugins:
    """A fresh manager with the built-ins and the (given or installed) entry points."""
    zoo = ZooPlugins()
    zoo.add_builtins()
    zoo.load_entry_points(entry_points, blocked=None if blocked is None else set(blocked))
    return zoo


_lock = threading.Lock()
_manager: ZooPlugins | None = None


def get_manager() -> ZooPlugins:
    """The process-wide manager, built on first use."""
    global _manager
    if _manager is None:
        with _lock:
            if _manager is None:
                _manager = build_manager()
    return _manager


def reset_manager(manager: ZooPlugins | None = None) -> None:
    """Forget the process-wide manager (or install ``manager`` in its place), so the next
    call rebuilds it; for tests and for picking up plugins installed at run time."""
    global _manager
    with _lock:
        _manager = manager
