"""A process-wide choice among named implementations of one job (a kernel), settable from
Python and, at import, from an environment variable.

The periodic layer's kernel (``RELIGHTZOO_PERIODIC``) and the training step's
(``RELIGHTZOO_STEP``) are such choices: one name in force at a time, a setter that returns
the previous name so a caller can restore it, and one error naming the choices.
"""

from __future__ import annotations

import os

__all__ = ["Switch"]


class Switch:
    """The name in force among ``choices`` (initially ``$env`` or ``default``); :meth:`set`
    raises ``error`` (a :class:`relightzoo.errors.RelightzooError` subclass) for an unknown one."""

    def __init__(self, what: str, choices: tuple[str, ...], default: str, env: str, error: type[Exception]) -> None:
        self.what, self.choices, self.error = what, tuple(choices), error
        self.name = os.environ.get(env, default)

    def get(self) -> str:
        """The name in force."""
        return self.name

    def set(self, name: str) -> str:
        """Put ``name`` in force; returns the previous name."""
        if name not in self.choices:
            raise self.error(f"unknown {self.what} {name!r}; choose one of {', '.join(self.choices)}")
        previous, self.name = self.name, name
        return previous
