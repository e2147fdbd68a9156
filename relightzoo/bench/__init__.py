"""``relightzoo bench``: throughput and memory of the zoo's models beside a roofline and a peer.

- :mod:`.roofline`: the model's layer-shaped GEMMs, timed alone on preallocated buffers;
- :mod:`.peer`: the same network built with siren-pytorch;
- :mod:`.measure`: synchronised interleaved timing, peak memory, the machine;
- :mod:`.suite`: the encoder x activation grid (:func:`run_bench`);
- :mod:`.relighting`: environment-map relighting time against K, a large render's peak RSS;
- :mod:`.report`: rich tables.
"""

from __future__ import annotations

from .measure import PeakMemory, interleaved_medians, machine_info, memory_method
from .peer import build_peer, peer_available
from .relighting import envmap_timings, render_peak_rss
from .roofline import GemmShape, Roofline, dense_layers, gemm_shapes
from .suite import TARGETS, BenchSettings, bench_cell, check_names, run_bench

__all__ = [
    "BenchSettings",
    "GemmShape",
    "PeakMemory",
    "Roofline",
    "TARGETS",
    "bench_cell",
    "build_peer",
    "check_names",
    "dense_layers",
    "envmap_timings",
    "gemm_shapes",
    "interleaved_medians",
    "machine_info",
    "memory_method",
    "peer_available",
    "render_peak_rss",
    "run_bench",
]
