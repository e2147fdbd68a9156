"""Measurements: synchronised timing, interleaved medians, peak memory, the machine.

Timings are interleaved (each repeat times every contender once, in turn) so a change in
machine load hits all of them, and reported as medians over the repeats after a warm-up.
On CUDA every timed block is bracketed by ``torch.cuda.synchronize``.

Peak memory is the growth above the memory held just before the measured calls (model,
optimiser state and data are in that baseline; activations, gradients and outputs are not):

- CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus
  ``memory_allocated`` before (method ``cuda``);
- CPU on Linux: the resident set's high-water mark ``VmHWM`` after resetting it through
  ``/proc/self/clear_refs``, minus ``VmRSS`` before, with glibc's free memory handed back
  (``malloc_trim``) first so earlier runs' freed pages do not hide the growth (method
  ``vmhwm``). Page-granular and process-wide, so it includes allocator slack: a good
  comparison between contenders, not an exact byte count;
- elsewhere: not measured (``None``, method ``unavailable``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

__all__ = [
    "sync",
    "time_calls",
    "interleaved_medians",
    "PeakMemory",
    "memory_method",
    "machine_info",
]


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fn: Callable[[], object], n: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``n`` back-to-back calls, synchronised."""
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    sync(device)
    return (time.perf_counter() - t0) / max(n, 1)


def interleaved_medians(
    fns: dict[str, Callable[[], object]], *, repeats: int, warmup: int, device: torch.device, calls: int = 1
) -> dict[str, dict]:
    """Median seconds per call of each of ``fns``, timed in turn ``repeats`` times after ``warmup`` calls each.

    Returns ``{name: {"median": s, "all": [s, ...]}}``.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(max(1, repeats)):
        for name, fn in fns.items():
            times[name].append(time_calls(fn, calls, device))
    return {k: {"median": statistics.median(v), "all": v} for k, v in times.items()}


# ---------------------------------------------------------------------------------------------
# peak memory


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _can_reset_hwm() -> bool:
    if _status_kib("VmHWM") is None:
        return False
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


_LIBC = None


def _malloc_trim() -> None:
    """Hand glibc's free heap pages back to the kernel (a no-op elsewhere)."""
    global _LIBC
    try:
        if _LIBC is None:
            _LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _LIBC.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def memory_method(device: torch.device) -> str:
    """``cuda``, ``vmhwm`` or ``unavailable``: how :class:`PeakMemory` measures on ``device``."""
    if device.type == "cuda":
        return "cuda"
    return "vmhwm" if _can_reset_hwm() else "unavailable"


class PeakMemory:
    """``with PeakMemory(device) as pm: ...`` then ``pm.bytes``: the peak growth inside the block."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.method = memory_method(device)
        self.bytes: int | None = None

    def __enter__(self) -> "PeakMemory":
        sync(self.device)
        if self.method == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        elif self.method == "vmhwm":
            _malloc_trim()
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")  # VmHWM := VmRSS
            self._base = _status_kib("VmRSS") * 1024
        return self

    def __exit__(self, *exc) -> None:
        sync(self.device)
        if self.method == "cuda":
            self.bytes = int(torch.cuda.max_memory_allocated(self.device) - self._base)
        elif self.method == "vmhwm":
            self.bytes = max(0, _status_kib("VmHWM") * 1024 - self._base)


# ---------------------------------------------------------------------------------------------
# the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    """CPU model, cores, torch threads, GPU (when timing on one), torch and Python versions, load."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }
    if hasattr(os, "getloadavg"):
        info["loadavg"] = [round(x, 2) for x in os.getloadavg()]
    return info
