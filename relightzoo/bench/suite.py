"""The benchmark grid: for each encoder x activation, training and render throughput and peak
memory of the zoo's siren, beside the roofline and the peer (siren-pytorch), as ratios.

Training throughput times the real training step (:func:`relightzoo.train.step.train_step`:
forward, MSE, backward, Adam; eager or compiled, ``--step``) on random (pixel, light) batches of a synthetic dataset (the
step's cost does not depend on what the pixels show). Render throughput times
``model.render`` of one ``size x size`` image. Ratios are ``ours / reference`` for
throughput (1.0: as fast as the GEMMs alone; above 1 against the peer: faster than
siren-pytorch) and ``ours / reference`` for memory (below 1 against the peer: leaner).
Memory is measured (:class:`~relightzoo.bench.measure.PeakMemory`) for the zoo's model and
the peer; the roofline's is the exact size of the buffers it needs
(:attr:`~relightzoo.bench.roofline.Roofline.nbytes`, plus the returned image for a render).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..data import OLATDataset, PixelLightSampler
from ..errors import PluginError
from ..train import DEFAULT_BATCH_SIZE, create_optimizer, train_step
from ..train.compiled_step import set_step_kernel, step_kernel
from ..util.devices import keep_freed_memory, resolve_device
from ..zoo import create_model
from ..zoo.api import DEFAULT_RENDER_CHUNK
from ..zoo.capabilities import render_model
from ..zoo.factory import registry
from .measure import PeakMemory, interleaved_medians, machine_info, memory_method
from .peer import build_peer, peer_available, peer_version
from .roofline import Roofline, dense_layers

__all__ = ["BenchSettings", "check_names", "synthetic_dataset", "bench_cell", "run_bench", "TARGETS"]

TARGETS = {"sine": 0.85, "cosine": 0.85, "relu": 0.85}
"""Training throughput targets as a fraction of the roofline (CPU), for the default siren."""

PERIODIC = ("sine", "cosine")
"""Activations whose layers train with a selectable periodic kernel (--periodic)."""


def _default_periodic_kernel() -> str:
    from ..builtins.activations import DEFAULT_PERIODIC_KERNEL

    return DEFAULT_PERIODIC_KERNEL


def _default_sincos_kernel() -> str:
    from ..builtins.sincos import DEFAULT_SINCOS_KERNEL

    return DEFAULT_SINCOS_KERNEL


@dataclass
class BenchSettings:
    """What ``relightzoo bench`` measures, and how."""

    encoders: list[str] = field(default_factory=lambda: ["scaled-spherical"])
    activations: list[str] = field(default_factory=lambda: ["sine", "cosine", "relu"])
    batch_size: int = DEFAULT_BATCH_SIZE
    size: int = 256
    repeats: int = 7
    warmup: int = 3
    device: str = "auto"
    threads: int | None = None
    hidden_layers: int = 3
    hidden_features: int = 256
    periodic: list[str] = field(default_factory=lambda: [_default_periodic_kernel()])
    """Periodic kernels to measure for sine and cosine (relightzoo.builtins.activations)."""
    step: list[str] = field(default_factory=lambda: ["plain"])
    """Training step kernels to measure every activation with (relightzoo.train.compiled_step)."""
    sincos: list[str] = field(default_factory=lambda: [_default_sincos_kernel()])
    """sin and cos kernels to measure sine and cosine with in a compiled step (relightzoo.builtins.sincos)."""
    precision: list[str] = field(default_factory=lambda: ["fp32"])
    """Training precisions to measure every cell in (relightzoo.train.precision): ``fp32``, and
    ``bf16``, whose roofline is the same GEMMs in bfloat16."""


def check_names(encoders: list[str], activations: list[str]) -> None:
    """Raise one :class:`PluginError` naming every unknown encoder and activation (with suggestions)."""
    problems = [registry("encoder").unknown_message(n) for n in encoders if n not in registry("encoder")]
    problems += [registry("activation").unknown_message(n) for n in activations if n not in registry("activation")]
    if not encoders:
        problems.insert(0, "no encoders to benchmark")
    if not activations:
        problems.insert(0, "no activations to benchmark")
    if problems:
        raise PluginError("; ".join(problems))


def synthetic_dataset(size: int = 64, lights: int = 64, seed: int = 0) -> OLATDataset:
    """Random 8-bit images under random upper-hemisphere lights."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.1, 1.0, lights)
    az = rng.uniform(-np.pi, np.pi, lights)
    r = np.sqrt(1 - z * z)
    dirs = np.stack([r * np.cos(az), r * np.sin(az), z], -1)
    pixels = rng.integers(0, 256, (lights, size, size, 3), dtype=np.uint8)
    return OLATDataset(pixels, dirs, source="synthetic")


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or not b > 0 or not math.isfinite(a / b):
        return None
    return a / b


def _meets(ratio: float | None, target: float | None) -> bool | None:
    """Whether a measured ratio reaches its target (None when either is missing): the verdict
    ``relightzoo bench`` reports beside each target, never asserted by a timed test."""
    return None if ratio is None or target is None else bool(ratio >= target)


def _render_roofline(layers, size: int, device: torch.device):
    """A callable running the forward GEMMs of one ``size x size`` render, chunk by chunk as ``render`` does."""
    rows = max(1, DEFAULT_RENDER_CHUNK // size)
    full, rest = divmod(size, rows)
    roofs = [(Roofline(layers, rows * size, backward=False, device=device), full)] if full else []
    if rest:
        roofs.append((Roofline(layers, rest * size, backward=False, device=device), 1))

    def run() -> None:
        for roof, n in roofs:
            for _ in range(n):
                roof()

    run.nbytes = max(r.nbytes for r, _ in roofs) + size * size * 3 * 4  # + the float32 image render returns
    return run


def bench_cell(
    encoder: str,
    activation: str,
    s: BenchSettings,
    dataset: OLATDataset,
    device: torch.device,
    kernel: str = "plain",
    step: str = "plain",
    sincos: str | None = None,
    precision: str = "fp32",
) -> dict:
    """Measure one encoder x activation: train and render throughput, peak memory, all beside
    roofline and peer; a periodic activation trains with the periodic ``kernel`` (eagerly) or
    the ``sincos`` kernel (in a compiled step; default: the one in force), and both models
    (ours and the peer) with the training ``step`` kernel, in ``precision`` (``bf16``: both
    models' steps under bfloat16 autocast, against the GEMMs in bfloat16)."""
    from ..builtins.activations import set_periodic_kernel
    from ..builtins.sincos import set_sincos_kernel, sincos_kernel

    sincos = sincos or sincos_kernel()
    previous, previous_step, previous_sincos = set_periodic_kernel(kernel), set_step_kernel(step), set_sincos_kernel(sincos)
    try:
        cell = _bench_cell(encoder, activation, s, dataset, device, precision)
        cell["step_fell_back"] = step_kernel() != step  # the compiled step could not compile here
    finally:
        set_periodic_kernel(previous)
        set_step_kernel(previous_step)
        set_sincos_kernel(previous_sincos)
    cell["kernel"] = kernel
    cell["step"] = step
    cell["sincos"] = sincos
    cell["precision"] = precision
    return cell


def _bench_cell(encoder: str, activation: str, s: BenchSettings, dataset: OLATDataset, device: torch.device, precision: str = "fp32") -> dict:
    kw = {"hidden_layers": s.hidden_layers, "hidden_features": s.hidden_features}
    torch.manual_seed(0)
    models = {"ours": create_model("siren", encoder=encoder, activation=activation, **kw).to(device)}
    peer = build_peer(encoder, activation, **kw)
    if peer is not None:
        models["peer"] = peer.to(device)
    layers = dense_layers(models["ours"])

    # training throughput
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    train_fns = {"roofline": Roofline(layers, s.batch_size, backward=True, device=device, dtype=dtype)}
    for name, model in models.items():
        model.train()
        opt = create_optimizer(model)
        sampler = PixelLightSampler(dataset, None, s.batch_size, seed=0, device=device)
        train_fns[name] = lambda m=model, o=opt, sp=sampler: train_step(m, o, *sp.sample(), precision=precision)
    t0 = time.perf_counter()
    train_fns["ours"]()  # the first step: includes compiling a compiled kernel
    first_step_s = time.perf_counter() - t0
    if "peer" in train_fns:
        train_fns["peer"]()  # compiled too, outside the timed calls
    t_train = interleaved_medians(train_fns, repeats=s.repeats, warmup=s.warmup, device=device)
    train_mem = {"roofline": train_fns["roofline"].nbytes}
    for name, fn in train_fns.items():
        if name == "roofline":
            continue
        with PeakMemory(device) as pm:
            fn()
            fn()
        train_mem[name] = pm.bytes

    # render throughput
    light = torch.tensor([[0.0, 0.0, 1.0]], device=device)
    render_fns = {"roofline": _render_roofline(layers, s.size, device)}
    for name, model in models.items():
        model.eval()
        render_fns[name] = lambda m=model: render_model(m, light, s.size, s.size)
    with torch.no_grad():
        t_render = interleaved_medians(render_fns, repeats=s.repeats, warmup=max(1, s.warmup), device=device)
        render_mem = {"roofline": render_fns["roofline"].nbytes}
        for name, fn in render_fns.items():
            if name == "roofline":
                continue
            with PeakMemory(device) as pm:
                fn()
            render_mem[name] = pm.bytes

    sps = {k: s.batch_size / v["median"] for k, v in t_train.items()}
    mps = {k: s.size * s.size / v["median"] / 1e6 for k, v in t_render.items()}
    roof_flops = train_fns["roofline"].flops
    return {
        "encoder": encoder,
        "activation": activation,
        "parameters": sum(p.numel() for p in models["ours"].parameters()),
        "layers": [list(x) for x in layers],
        "peer": models["peer"].note if "peer" in models else None,
        "train": {
            "samples_per_s": sps,
            "ms_per_step": {k: 1e3 * v["median"] for k, v in t_train.items()},
            "ms_all": {k: [round(1e3 * x, 3) for x in v["all"]] for k, v in t_train.items()},
            "vs_roofline": _ratio(sps["ours"], sps["roofline"]),
            "vs_peer": _ratio(sps["ours"], sps.get("peer")),
            "roofline_gflops": roof_flops / t_train["roofline"]["median"] / 1e9,
            "target_vs_roofline": TARGETS.get(activation),
            "meets_target": _meets(_ratio(sps["ours"], sps["roofline"]), TARGETS.get(activation)),
            "first_step_s": first_step_s,
        },
        "render": {
            "megapixels_per_s": mps,
            "ms_per_image": {k: 1e3 * v["median"] for k, v in t_render.items()},
            "vs_roofline": _ratio(mps["ours"], mps["roofline"]),
            "vs_peer": _ratio(mps["ours"], mps.get("peer")),
        },
        "memory": {
            "method": memory_method(device),
            "train_bytes": train_mem,
            "render_bytes": render_mem,
            "train_vs_roofline": _ratio(train_mem.get("ours"), train_mem.get("roofline")),
            "train_vs_peer": _ratio(train_mem.get("ours"), train_mem.get("peer")),
            "render_vs_roofline": _ratio(render_mem.get("ours"), render_mem.get("roofline")),
            "render_vs_peer": _ratio(render_mem.get("ours"), render_mem.get("peer")),
        },
    }


def run_bench(settings: BenchSettings, *, on_cell=None) -> dict:
    """Run every cell of ``settings``; returns the JSON-ready document (machine, settings, cells).

    ``on_cell(index, total, encoder, activation)`` is called before each cell (for progress).
    """
    check_names(settings.encoders, settings.activations)
    for name, value in (("batch size", settings.batch_size), ("size", settings.size), ("repeats", settings.repeats)):
        if value < 1:
            raise PluginError(f"bench: the {name} must be at least 1, got {value}")
    if settings.threads:
        torch.set_num_threads(int(settings.threads))
    device = resolve_device(settings.device)
    if device.type == "cpu":
        keep_freed_memory()  # as relightzoo train does
    dataset = synthetic_dataset()
    cells = []
    grid = [
        (e, a, k, st, sc, pr)
        for e in settings.encoders
        for a in settings.activations
        for k in (settings.periodic if a in PERIODIC else ["plain"])
        for st in settings.step
        for sc in (settings.sincos if a in PERIODIC and st == "compiled" else settings.sincos[:1])
        for pr in settings.precision
    ]
    for i, (e, a, k, st, sc, pr) in enumerate(grid):
        if on_cell is not None:
            on_cell(i, len(grid), e, a)
        cells.append(bench_cell(e, a, settings, dataset, device, kernel=k, step=st, sincos=sc, precision=pr))
    return {
        "benchmark": "relightzoo bench",
        "model": f"siren {settings.hidden_layers} x {settings.hidden_features}",
        "machine": machine_info(device),
        "peer": {"package": "siren-pytorch", "installed": peer_available(), "version": peer_version()},
        "settings": asdict(settings) | {"device": str(device), "threads": torch.get_num_threads()},
        "cells": cells,
    }
