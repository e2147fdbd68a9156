"""Plugin arguments from the command line: ``k=v`` strings to typed Python values.

``--encoder-arg pixel_scale=6 --activation-arg hidden_omega_0=20`` arrive as strings. They are
parsed once here (JSON-like literals: ints, floats, booleans, ``none``, lists) and later
coerced to the type of the plugin's default by the registry, so ``omega_0=30`` becomes the
float 30.0 and ``omega_0=abc`` is a one-line error instead of a crash deep inside a layer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from ..errors import PluginError

__all__ = ["parse_value", "parse_kv", "coerce", "type_name", "check_at_least"]

_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}
_NONE = {"none", "null"}


def parse_value(text: str) -> Any:
    """The Python value a command-line string stands for.

    ``3`` -> int, ``0.5`` / ``1e-3`` / ``inf`` -> float, ``true``/``false`` -> bool,
    ``none``/``null`` -> None, ``[1, 2]`` / ``{"a": 1}`` -> list / dict (JSON), a quoted
    ``"text"`` -> str; anything else stays the string it is.
    """
    s = text.strip()
    low = s.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in _NONE:
        return None
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        pass
    if s[:1] in "[{\"":
        try:
            return json.loads(s)
        except json.JSONDecodeError as exc:
            raise PluginError(f"cannot parse {text!r} as JSON: {exc.msg} (at character {exc.pos})") from None
    return s


def parse_kv(items: Iterable[str] | None, *, option: str = "argument") -> dict[str, Any]:
    """Parse ``["k=v", ...]`` into ``{k: value}`` with :func:`parse_value`.

    Dashes in keys become underscores (``hidden-layers=3`` is ``hidden_layers``). A missing
    ``=``, an empty or non-identifier key, or a key given twice raises :class:`PluginError`
    naming ``option`` (e.g. ``--encoder-arg``).
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise PluginError(f"{option} {item!r} is not of the form KEY=VALUE (e.g. hidden_layers=3)")
        if not key.isidentifier():
            raise PluginError(f"{option} {item!r}: {key!r} is not a valid argument name")
        if key in out:
            raise PluginError(f"{option} {key!r} is given twice")
        out[key] = parse_value(value)
    return out


def type_name(value: Any) -> str:
    """A short human name of ``value``'s type for error messages."""
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "a list", tuple: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def coerce(value: Any, default: Any, *, where: str) -> Any:
    """Convert ``value`` to the type of ``default`` (the plugin's own default for it).

    Strings are parsed first; ints widen to floats; integral floats narrow to ints; an
    impossible conversion raises :class:`PluginError` with ``where`` (e.g. ``"activation
    'sine' argument hidden_omega_0"``) and the expected type. A default of None accepts any
    value (a string is parsed as a literal).
    """
    if default is None:
        return parse_value(value) if isinstance(value, str) else value
    raw = value
    if isinstance(value, str) and not isinstance(default, str):
        value = parse_value(value)

    def fail() -> PluginError:
        return PluginError(f"{where} expects {type_name(default)} (like {default!r}), got {raw!r}")

    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise fail()
    if isinstance(default, int):
        if isinstance(value, bool):
            raise fail()
        if isinstance(value, int):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise fail()
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise fail()
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(raw)
        raise fail()
    if isinstance(default, (list, tuple)):
        if isinstance(value, (list, tuple)):
            return list(value)
        raise fail()
    if isinstance(default, dict):
        if isinstance(value, dict):
            return dict(value)
        raise fail()
    return value


def check_at_least(label: str, minimum: int, **values: int) -> None:
    """Raise the one-line :class:`PluginError` "``label``: ``name`` must be at least
    ``minimum``, got ``value``" for the first of ``values`` below ``minimum`` (a plugin's
    layer, feature and neighbour counts)."""
    for name, value in values.items():
        if value < minimum:
            raise PluginError(f"{label}: {name} must be at least {minimum}, got {value}")
