"""The pluggy hooks a relightzoo plugin implements.

Each hook receives a ``register`` callback and calls it once per plugin it provides::

    from relightzoo.zoo import hookimpl

    @hookimpl
    def register_activations(register):
        register("gabor", GaborBackbone, "real Gabor wavelet (WIRE)")

``register(name, factory, description=None, defaults=None, *, uses=None)``:

- ``name``: unique, lower case (``_`` is read as ``-``);
- ``factory``: a class or function called with the plugin's keyword arguments (a model
  factory also receives ``encoder=`` and/or ``activation=`` when its signature takes them);
- ``description``: one line for ``relightzoo plugins`` (default: the factory's docstring);
- ``defaults``: the keyword arguments and their defaults (default: the factory's own).

The package that provides each name is recorded by the plugin manager, not by the plugin.
"""

from __future__ import annotations

import pluggy

__all__ = ["PROJECT", "hookspec", "hookimpl", "RelightzooSpec"]

PROJECT = "relightzoo"
"""pluggy project name, and the entry-point group third-party plugins declare."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class RelightzooSpec:
    """Hook specifications (pluggy reads the signatures; the bodies are never run)."""

    @hookspec
    def register_encoders(self, register):
        """Register coordinate encoders: ``register(name, factory, description, defaults)``;
        the factory builds a :class:`relightzoo.zoo.Encoder`."""

    @hookspec
    def register_activations(self, register):
        """Register activation backbones: the factory builds a :class:`relightzoo.zoo.Backbone`."""

    @hookspec
    def register_models(self, register):
        """Register models: the factory builds a :class:`relightzoo.zoo.RelightModel` and may
        take ``encoder`` and ``activation`` keyword arguments (built plugins)."""
