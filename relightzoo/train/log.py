"""A run's logs and its Ctrl-C: ``metrics.jsonl``, TensorBoard, and stopping cleanly.

``metrics.jsonl`` holds one JSON object a logging step (step, loss, PSNR, learning rate,
elapsed seconds, samples a second). :class:`MetricsLog` appends those lines (a full disk is
one line saying which checkpoint is kept, :func:`append_line`), mirrors them to TensorBoard
when asked, and :func:`trim_metrics` drops the lines a resumed run will write again.
:class:`StopFlag` turns the first Ctrl-C into "stop after this step and save".
"""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import IO, Any

from ..console import console
from ..errors import TrainingError
from ..util.atomic import output_error, write_text_atomic

__all__ = ["StopFlag", "MetricsLog", "append_line", "trim_metrics", "start_metrics", "open_tensorboard", "TENSORBOARD_KEYS"]

TENSORBOARD_KEYS = ("loss", "psnr", "lr", "samples_per_s")
"""The fields of a metrics record that also go to TensorBoard (as ``train/<key>``)."""


class StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step.

    A second Ctrl-C raises :class:`KeyboardInterrupt` at once. Outside the main thread
    (where signal handlers cannot be set) Ctrl-C raises as usual.
    """

    def __init__(self) -> None:
        self.stop = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        console.print("[yellow]Ctrl-C: stopping after this step and saving the latest checkpoint (Ctrl-C again to abort)")

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def append_line(log: IO[str], line: str, path: Path, latest: Path, good_step: int | None) -> None:
    """Append one line to the open log ``path``; a full disk (or another write error) is one
    line saying that the last checkpoint is kept, not an ``OSError`` traceback."""
    try:
        log.write(line + "\n")
        log.flush()
    except OSError as exc:
        kept = f"{latest} (step {good_step}) is kept" if good_step is not None else "no checkpoint was saved yet"
        raise output_error(exc, path, kept=kept) from None


def start_metrics(path: Path) -> None:
    """An empty log for a new run (through the atomic writer: one more write boundary)."""
    write_text_atomic(path, "")


def trim_metrics(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut off by a crash
    write_text_atomic(path, "".join(k + "\n" for k in keep))


def open_tensorboard(out_dir: Path):
    """A TensorBoard writer logging to ``out_dir/tensorboard``; a one-line error without the package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainingError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))


class MetricsLog:
    """Where a run's records go: the open ``metrics.jsonl`` (``fh``), TensorBoard when asked,
    and the records of this call (:attr:`history`)."""

    def __init__(self, fh: IO[str], path: Path, latest: Path, writer: Any = None) -> None:
        self.fh, self.path, self.latest, self.writer = fh, path, latest, writer
        self.history: list[dict[str, Any]] = []

    def write(self, record: dict[str, Any], good_step: int | None) -> None:
        """Append ``record`` (its ``step`` among its fields); ``good_step`` is the step of the
        checkpoint a failed write leaves in place."""
        append_line(self.fh, json.dumps(record), self.path, self.latest, good_step)
        self.history.append(record)
        if self.writer is not None:
            for key in TENSORBOARD_KEYS:
                self.writer.add_scalar(f"train/{key}", record[key], record["step"])

    def close(self) -> None:
        """Close the TensorBoard writer (the file belongs to the caller)."""
        if self.writer is not None:
            self.writer.close()
