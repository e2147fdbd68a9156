"""Click groups whose subcommands are imported only when they are used.

``relightzoo --help`` and ``relightzoo data info`` stay quick because the modules behind
other commands (several pull in torch, timm or Mitsuba) load on first use. A command whose
module is absent (an optional part not installed) is left out rather than failing.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from typing import Any

import click

__all__ = ["LazyGroup", "available"]


def available(spec: str) -> bool:
    """Whether the module of ``spec`` (``module:attribute``) can be imported."""
    return importlib.util.find_spec(spec.partition(":")[0]) is not None


class LazyGroup(click.Group):
    """A click group with its own commands plus ``lazy`` ones (``{name: "module:attribute"}``)
    imported only when invoked or asked for."""

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The group's own commands and the lazy ones that can load (in their given order
        when the group has only lazy commands, else sorted)."""
        lazy = [name for name, spec in self.lazy.items() if available(spec)]
        own = super().list_commands(ctx)
        return sorted(set(own) | set(lazy)) if own else lazy

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        spec = self.lazy.get(name)
        if cmd is None and spec is not None and available(spec):
            module, _, attr = spec.partition(":")
            cmd = getattr(importlib.import_module(module), attr)
        return cmd
