"""JSON read with bounds and checked against a schema: no file can crash or exhaust a reader.

Every JSON relightzoo reads from a user's disk (``lights.json``, a run's ``config.json``, the
metadata of a checkpoint) goes through :func:`parse_json`, which refuses text over a size
limit and nesting deeper than a depth limit before the parser sees it (Python's parser
recurses, so a file of ten thousand ``[`` would otherwise end in ``RecursionError``). Then
:func:`check_schema` compares the value with a small schema of types, so a string or a list
where an object belongs is one line naming the field, not an ``AttributeError`` later on.

A schema is one of:

- a type or a tuple of types (``int`` never matches ``bool``; :data:`NUMBER` is an int or
  float, not bool);
- a dict: a JSON object with those keys; a key ending in ``?`` is optional, others required;
  other keys are allowed;
- :class:`ListOf` (a list of items of one schema, with length bounds) or :class:`MapOf` (an
  object of any string keys whose values share one schema);
- :class:`Nullable` (None, or the schema inside).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import RelightzooError

__all__ = [
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "NUMBER",
    "ListOf",
    "MapOf",
    "Nullable",
    "parse_json",
    "json_depth",
    "check_schema",
]

MAX_JSON_BYTES = 64 * 2**20
"""The largest JSON text read (64 MiB): a lights.json of a million lights fits with room to spare."""

MAX_JSON_DEPTH = 32
"""The deepest nesting read; relightzoo's own files nest at most about eight levels."""

NUMBER = (int, float)
"""Schema of a JSON number (``bool`` is refused even though Python counts it as an int)."""


@dataclass(frozen=True)
class ListOf:
    """A JSON list whose items all match ``item``, with ``min_len <= len <= max_len``."""

    item: Any
    min_len: int = 0
    max_len: int | None = None


@dataclass(frozen=True)
class MapOf:
    """A JSON object with any keys whose values all match ``value``."""

    value: Any


@dataclass(frozen=True)
class Nullable:
    """``None`` or a value matching ``inner``."""

    inner: Any


_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (brackets inside strings ignored)."""
    bare = _STRINGS.sub('""', text).encode("utf-8", "replace")
    if not bare:
        return 0
    arr = np.frombuffer(bare, dtype=np.uint8)
    step = np.isin(arr, (ord("["), ord("{"))).astype(np.int32) - np.isin(arr, (ord("]"), ord("}"))).astype(np.int32)
    if not step.any():
        return 0
    return int(np.cumsum(step).max())


def parse_json(
    text: str | bytes,
    what: str,
    error: type[RelightzooError],
    *,
    max_bytes: int = MAX_JSON_BYTES,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse JSON ``text`` from ``what`` (a file name or a description), bounded in size and depth.

    Raises ``error`` with one line for text over ``max_bytes``, nesting over ``max_depth``,
    invalid JSON (with its line) and text that is not UTF-8.
    """
    size = len(text)
    if size > max_bytes:
        raise error(f"{what} is {size / 2**20:.1f} MiB of JSON, over the {max_bytes / 2**20:.0f} MiB a reader accepts")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise error(f"{what} is not UTF-8 text") from None
    depth = json_depth(text)
    if depth > max_depth:
        raise error(f"{what} nests {depth} levels deep; a reader accepts {max_depth} at most")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(f"{what} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    except (RecursionError, ValueError) as exc:  # numbers too long for int(), and the like
        raise error(f"{what}: not valid JSON ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def _type_name(schema: Any) -> str:
    if schema is NUMBER:
        return "a number"
    if isinstance(schema, tuple):
        return " or ".join(_type_name(s) for s in schema)
    if isinstance(schema, dict) or isinstance(schema, MapOf) or schema is dict:
        return "an object"
    if isinstance(schema, ListOf) or schema is list:
        return "a list"
    if isinstance(schema, Nullable):
        return f"{_type_name(schema.inner)} or null"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(schema, getattr(schema, "__name__", str(schema)))


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"[:40]
    if isinstance(value, str):
        return f"the string {value!r}"[:60]
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _is_type(value: Any, schema: Any) -> bool:
    types = schema if isinstance(schema, tuple) else (schema,)
    if isinstance(value, bool):
        return bool in types
    return isinstance(value, types)


def check_schema(value: Any, schema: Any, where: str = "") -> str | None:
    """The first way ``value`` breaks ``schema``, said as ``field: expected X, got Y``; None if it fits."""
    label = where or "the top level"
    if isinstance(schema, Nullable):
        return None if value is None else check_schema(value, schema.inner, where)
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{label}: expected an object, got {_json_type(value)}"
        for key, sub in schema.items():
            name, optional = (key[:-1], True) if key.endswith("?") else (key, False)
            if name not in value:
                if optional:
                    continue
                return f"{where}: the key {name!r} is missing" if where else f"the key {name!r} is missing"
            problem = check_schema(value[name], sub, f"{where}.{name}" if where else name)
            if problem:
                return problem
        return None
    if isinstance(schema, ListOf):
        if not isinstance(value, list):
            return f"{label}: expected a list, got {_json_type(value)}"
        if len(value) < schema.min_len or (schema.max_len is not None and len(value) > schema.max_len):
            want = f"{schema.min_len}" if schema.max_len == schema.min_len else f"{schema.min_len} to {schema.max_len or 'any number of'}"
            return f"{label}: expected {want} items, got {len(value)}"
        for i, item in enumerate(value):
            problem = check_schema(item, schema.item, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if isinstance(schema, MapOf):
        if not isinstance(value, dict):
            return f"{label}: expected an object, got {_json_type(value)}"
        for key, item in value.items():
            problem = check_schema(item, schema.value, f"{where}.{key}" if where else str(key))
            if problem:
                return problem
        return None
    if not _is_type(value, schema):
        return f"{label}: expected {_type_name(schema)}, got {_json_type(value)}"
    return None
