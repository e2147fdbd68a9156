"""Built-in scenes: dataset folders shipped inside the package, loadable by name.

``demo`` is a Mitsuba-rendered OLAT scene in ``relightzoo/data/demo/`` (the command that made
it is recorded beside it). :func:`resolve_data` turns a DATA argument, a folder or a
built-in name, into a folder, and says what is wrong when it is neither.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import DataError

__all__ = ["BUILTIN_SCENES", "builtin_path", "resolve_data"]

_HERE = Path(__file__).resolve().parent

BUILTIN_SCENES: dict[str, str] = {
    "demo": "demo",
}
"""Built-in scene name -> folder under ``relightzoo/data/``."""


def builtin_path(name: str) -> Path:
    """The folder of the built-in scene ``name``; a :class:`DataError` if it is not installed."""
    if name not in BUILTIN_SCENES:
        raise DataError(f"unknown built-in scene {name!r}; built-in scenes: {', '.join(BUILTIN_SCENES)}")
    folder = _HERE / BUILTIN_SCENES[name]
    if not folder.is_dir() or not any(folder.iterdir()):
        raise DataError(
            f"the built-in scene {name!r} is not installed (expected it in {folder}); "
            "reinstall relightzoo or pass a dataset folder"
        )
    return folder


def resolve_data(data: str | Path) -> tuple[Path, str]:
    """``(folder, source)`` for DATA: an existing folder wins over a built-in name of the same text."""
    path = Path(data)
    if path.is_dir():
        return path, str(path)
    text = str(data)
    if text in BUILTIN_SCENES:
        return builtin_path(text), text
    if path.exists():
        raise DataError(f"{text} is a file, not a dataset folder (images plus lights.txt or lights.json)")
    looks_like_path = isinstance(data, Path) or any(sep in text for sep in ("/", "\\")) or text.startswith(".")
    if looks_like_path:
        raise DataError(f"dataset folder {text} does not exist")
    close = difflib.get_close_matches(text.lower(), list(BUILTIN_SCENES), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f"; built-in scenes: {', '.join(BUILTIN_SCENES)}"
    raise DataError(f"{text!r} is neither a dataset folder nor a built-in scene{hint}")
