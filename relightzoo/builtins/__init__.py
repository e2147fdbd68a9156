"""relightzoo's own plugins, registered through the same pluggy hooks a third party uses.

Each module implements one hook with :data:`relightzoo.zoo.hookimpl` and imports only the
public API (``relightzoo.zoo``, ``relightzoo.lights``, ``relightzoo.data.coords``,
``relightzoo.errors``): copy one to start a plugin of your own.
"""

from __future__ import annotations

from . import activations, blend, encoders, latent_siren, learned_blend, lowrank, neural_rti, rbf, rti, siren

__all__ = ["BUILTIN_PLUGINS"]

BUILTIN_PLUGINS = (encoders, activations, siren, blend, learned_blend, lowrank, rti, rbf, neural_rti, latent_siren)
"""The built-in plugin modules, in registration order."""
