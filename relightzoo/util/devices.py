"""Devices and memory: which torch device to run on, where a model lives, what memory is free.

Evaluation, relighting, ablations, benchmarks and the viewer pick their device here, so none
of them imports the training package to do it.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..errors import TrainingError

__all__ = ["resolve_device", "device_of", "keep_freed_memory", "available_memory", "has_fast_bf16"]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None) picks CUDA when available, else the CPU; CUDA without a GPU is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TrainingError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} asked for CUDA but no CUDA GPU is available; use --device cpu")
    return dev


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where there is none."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_fast_bf16(device: str | torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices natively, so that bf16 training is faster.

    CUDA: torch's own check (Ampere and later). CPU: the AVX-512 BF16 or AMX instructions
    (Zen 4, Sapphire Rapids and later; Linux's /proc/cpuinfo), where oneDNN's bf16 GEMM runs
    at about 2.5x float32's (4096 x 256 x 256 on 2 EPYC cores: 1.25 against 3.1 ms). Elsewhere
    bf16 is emulated and slower than float32, so ``auto`` precision stays float32 there.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if dev.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return False


def device_of(model: Any) -> torch.device:
    """The device of a model's first parameter or buffer; the CPU for a model with neither."""
    for attr in ("parameters", "buffers"):
        fn = getattr(model, attr, None)
        first = next(iter(fn()), None) if callable(fn) else None
        if first is not None:
            return first.device
    return torch.device("cpu")


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory instead of handing it back to the system.

    A CPU training step allocates and frees the same few-megabyte activation buffers every
    step. By default glibc returns such blocks to the kernel (``munmap`` or heap trimming),
    so each step faults the pages in again, which costs about a tenth of a siren step on the
    CPU. Raising the mmap and trim thresholds keeps them: the process holds its peak
    working set until it exits. Done once per process, glibc only (a no-op elsewhere);
    returns whether the setting took effect.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_trim_threshold, 1 << 30) == 1 and libc.mallopt(m_mmap_threshold, 32 << 20) == 1
    except (OSError, AttributeError):
        return False
    _ALLOCATOR_TUNED = ok
    return ok


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None where that cannot be told."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
