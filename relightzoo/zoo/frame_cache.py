"""Light-independent work a model keeps across frames, and the switch that turns it off.

Rendering frame after frame at new lights and one size, much of a model's work does not
depend on the light: the resampled coefficient planes of a per-pixel basis (PTM, HSH, RBF),
the pixel factors of a low-rank model, the pixel half of a coordinate network's first layer
(``W_pixel @ pixel_features + b`` when the encoder keeps pixel and light features apart).
:class:`FrameCache` holds such tensors per size and recomputes them when the weights change
(a tensor's storage or in-place version differs). :func:`frame_cache` (a context manager)
switches every cache off for a block, so benchmarks and tests compare with the plain path.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import Callable, Hashable, Iterator

import torch

__all__ = ["FRAME_CACHE_BYTES", "FrameCache", "frame_cache", "frame_cache_enabled", "tensor_key"]

FRAME_CACHE_BYTES = 256 << 20
"""The most memory a model should keep for one size's light-independent tensors; above it
(a very large render) the model computes them chunk by chunk as it renders, as before."""

_state = threading.local()


def frame_cache_enabled() -> bool:
    """Whether models may reuse light-independent work across frames (on unless switched off)."""
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def frame_cache(enabled: bool) -> Iterator[None]:
    """Switch frame caches on or off for the block (in this thread)."""
    before = frame_cache_enabled()
    _state.enabled = bool(enabled)
    try:
        yield
    finally:
        _state.enabled = before


def tensor_key(*tensors: torch.Tensor) -> tuple:
    """What identifies the values of ``tensors`` without reading them: storage, in-place
    version, shape, dtype and device (a refit, ``load_state_dict`` or optimiser step changes it)."""
    return tuple((t.data_ptr(), t._version, tuple(t.shape), t.dtype, str(t.device)) for t in tensors)


class FrameCache:
    """A few light-independent tensors, keyed by what they were computed from.

    ``get(key, compute)`` returns the tensor stored under ``key`` or computes, stores and
    returns it; the least recently used of more than ``maxsize`` entries is dropped. With
    caching switched off (:func:`frame_cache`), ``compute()`` runs every time.
    """

    def __init__(self, maxsize: int = 2) -> None:
        self.maxsize = int(maxsize)
        self._entries: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable, compute: Callable[[], object]):
        if not frame_cache_enabled():
            return compute()
        if key in self._entries:
            self._entries.move_to_end(key)
            return self._entries[key]
        value = compute()
        self._entries[key] = value
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
