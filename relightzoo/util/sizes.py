"""The one grammar for image sizes on the command line and in the Python API.

``WxH`` (``512x384``: width 512, height 384; ``X`` and ``×`` work too) or a single ``N``
for a square ``N x N``.
"""

from __future__ import annotations

import re

from ..errors import OutputError

__all__ = ["parse_size"]

_SIZE = re.compile(r"\s*([+-]?\d+)\s*(?:[x×]\s*([+-]?\d+)\s*)?", re.IGNORECASE)


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` to ``(width, height)``; ``"N"`` to ``(N, N)``; a one-line :class:`OutputError` otherwise."""
    m = _SIZE.fullmatch(str(text))
    if not m:
        raise OutputError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 512x512 (expected N or WxH with positive integers; N is a square)")
    w = int(m.group(1))
    h = int(m.group(2)) if m.group(2) is not None else w
    if w < 1 or h < 1:
        raise OutputError(f"size {text!r}: width and height must be at least 1")
    return w, h
