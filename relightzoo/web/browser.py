"""The system's Chromium, headless, for the viewer's browser tests and frame-rate benchmarks.

The tests and ``benchmarks/viewer_fps.py`` drive the page with playwright (a test extra)
in the Chromium the system provides (Debian's ``chromium`` package; ``RELIGHTZOO_CHROMIUM``
names another executable): playwright's own browser download is never used. WebGL runs on
SwiftShader (software GL), so the figures do not depend on a GPU.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

__all__ = ["BROWSER_ARGS", "BrowserMissing", "find_chromium", "launch_chromium"]

BROWSER_ARGS = ("--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist")
"""WebGL on SwiftShader (software GL), which headless Chromium refuses without these."""

_CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")


class BrowserMissing(RuntimeError):
    """No usable Chromium (or no playwright): the message says what to install."""


def find_chromium() -> Path:
    """The Chromium executable: ``$RELIGHTZOO_CHROMIUM``, else ``chromium`` on the PATH."""
    named = os.environ.get("RELIGHTZOO_CHROMIUM")
    if named:
        if not Path(named).is_file():
            raise BrowserMissing(f"RELIGHTZOO_CHROMIUM={named} is not a file")
        return Path(named)
    for candidate in _CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return Path(found)
    raise BrowserMissing(
        "no Chromium found (looked for chromium and chromium-browser on the PATH): install it with "
        "'apt-get install chromium', or set RELIGHTZOO_CHROMIUM to a Chromium executable"
    )


def launch_chromium(playwright: Any, **kwargs: Any) -> Any:
    """Launch the system Chromium headless with software WebGL through ``playwright``."""
    return playwright.chromium.launch(executable_path=str(find_chromium()), args=list(BROWSER_ARGS), headless=True, **kwargs)
