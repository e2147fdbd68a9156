"""Names: how plugin names are compared, how names sort, how a kind is named.

One implementation each of jobs the registry, the plugin manager, the dataset reader and the
CLI all need.
"""

from __future__ import annotations

import difflib
import re
from typing import Iterable

__all__ = ["normalise_name", "natural_key", "singular", "nearest_names"]


def normalise_name(name: str) -> str:
    """The registry form of a plugin name: lower case, underscores as dashes (``leaky_relu``
    and ``Leaky-ReLU`` both find ``leaky-relu``)."""
    return str(name).strip().lower().replace("_", "-")


def natural_key(text: str) -> list:
    """Sort key that orders ``layer2`` before ``layer10`` (numbers by value)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def singular(word: str, choices: Iterable[str]) -> str | None:
    """``word`` as one of ``choices``, a plural accepted (``models`` -> ``model``); None when
    it is none of them. Case and surrounding blanks are ignored."""
    choices = tuple(choices)
    w = str(word).strip().lower()
    w = w[:-1] if w.endswith("s") and w[:-1] in choices else w
    return w if w in choices else None


def nearest_names(name: str, names: Iterable[str], *, n: int = 1, cutoff: float = 0.5) -> list[str]:
    """Up to ``n`` of ``names`` nearest to ``name``, for "did you mean" hints: close spellings
    first (``difflib``, similarity at least ``cutoff``), else names sharing its first three
    characters (short names: ``sin`` -> ``sine``); empty when nothing is near."""
    names = list(names)
    close = difflib.get_close_matches(name, names, n=n, cutoff=cutoff)
    if close:
        return close
    return [c for c in names if c.startswith(name[:3])][:n] if name else []
