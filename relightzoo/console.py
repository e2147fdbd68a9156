"""One shared rich Console and progress-bar factory.

Progress, logs and tables go to stderr so that ``--json`` output on stdout stays machine
readable; :func:`print_json` writes the only thing a command puts on stdout in that mode.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["console", "make_progress", "print_json"]

console = Console(stderr=True, highlight=False)
"""The console every command writes human-readable output to (stderr)."""


def make_progress(*extra_columns: Any, transient: bool = False, disable: bool = False) -> Progress:
    """A progress bar with the project's standard columns, plus any ``extra_columns``.

    Extra columns are usually ``TextColumn("{task.fields[loss]}")`` style live metrics.
    The bar is disabled when stderr is not a terminal (logs, CI, pipes): a live display
    there only leaves blank lines behind.
    """
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        *extra_columns,
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
        disable=disable or not console.is_terminal,
    )


def print_json(obj: Any) -> None:
    """Write ``obj`` as indented JSON to stdout (the machine-readable channel)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
    sys.stdout.flush()


def _json_default(o: Any) -> Any:
    """Make numpy scalars/arrays and paths JSON-serialisable."""
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)
