"""Training throughput of the default siren against its matrix-multiply roofline.

For each activation (sine, cosine, relu by default) this times the real training step of
``relightzoo train`` (:func:`relightzoo.train.loop.train_step`: sample a batch, forward,
MSE, backward, Adam) on the default siren (scaled-spherical encoder, 3 x 256), and, in the
same process and on the same batch size, the dense matrix multiplies that step performs,
done alone with preallocated outputs:

- forward: ``[B, in] @ [in, out]`` for every linear layer (hidden layers and the RGB head);
- backward: ``[B, out] @ [out, in]`` (the gradient of the layer's input) and
  ``[out, B] @ [B, in]`` (the gradient of its weights) for every layer, except the input
  gradient of the first layer, which autograd does not compute (the encoder's output needs
  no gradient), so the roofline holds only multiplies the step really does.

The ratio ``roofline time / step time`` (1.0: the step costs no more than its GEMMs) is the
figure of merit; medians over repeats after a warm-up, the two timings interleaved so a
change in machine load hits both. Run it on an idle machine (check ``uptime``)::

    python benchmarks/bench_train.py                 # table on stderr
    python benchmarks/bench_train.py --json          # JSON on stdout
    python benchmarks/bench_train.py --profile sine  # where a step's time goes

Targets (CPU): sine >= 0.75 of the roofline, relu >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from relightzoo.data import OLATDataset, PixelLightSampler
from relightzoo.train import create_optimizer, resolve_device
from relightzoo.train.loop import keep_freed_memory, train_step
from relightzoo.zoo import create_model

TARGETS = {"sine": 0.75, "cosine": 0.75, "relu": 0.85}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def machine() -> dict:
    """CPU model, core count, torch version and threads (and the GPU when timing on one)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    if hasattr(os, "getloadavg"):
        info["loadavg_at_start"] = [round(x, 2) for x in os.getloadavg()]
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def synthetic_dataset(size: int = 64, lights: int = 64, seed: int = 0) -> OLATDataset:
    """Random 8-bit images: the step's cost does not depend on what the pixels show."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(0.1, 1.0, lights)
    az = rng.uniform(-np.pi, np.pi, lights)
    r = np.sqrt(1 - z * z)
    dirs = np.stack([r * np.cos(az), r * np.sin(az), z], -1)
    pixels = rng.integers(0, 256, (lights, size, size, 3), dtype=np.uint8)
    return OLATDataset(pixels, dirs, source="synthetic")


def gemm_shapes(model: torch.nn.Module, batch: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``(A shape, B shape)`` of every matrix multiply one training step performs."""
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    shapes = []
    for i, lin in enumerate(linears):
        n_in, n_out = lin.in_features, lin.out_features
        shapes.append(((batch, n_in), (n_in, n_out)))  # forward
        shapes.append(((n_out, batch), (batch, n_in)))  # weight gradient
        if i > 0:
            shapes.append(((batch, n_out), (n_out, n_in)))  # input gradient
    return shapes


class Roofline:
    """The step's GEMMs alone, on preallocated operands and outputs."""

    def __init__(self, shapes, device: torch.device) -> None:
        g = torch.Generator(device="cpu").manual_seed(0)
        self.ops = []
        for (m, k), (k2, n) in shapes:
            a = torch.randn(m, k, generator=g).to(device)
            b = torch.randn(k2, n, generator=g).to(device)
            self.ops.append((a, b, torch.empty(m, n, device=device)))
        self.flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b, _ in self.ops)

    def __call__(self) -> None:
        for a, b, c in self.ops:
            torch.mm(a, b, out=c)


def _time(fn, n: int, device: torch.device) -> float:
    """Seconds per call of ``fn`` over ``n`` calls."""
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) / n


def bench_activation(
    activation: str, *, batch: int, steps: int, repeats: int, warmup: int, device: torch.device, dataset: OLATDataset
) -> dict:
    torch.manual_seed(0)
    model = create_model("siren", encoder="scaled-spherical", activation=activation).to(device).train()
    opt = create_optimizer(model)
    sampler = PixelLightSampler(dataset, None, batch, seed=0, device=device)

    def step() -> None:
        pixels, lights, rgb = sampler.sample()
        train_step(model, opt, pixels, lights, rgb)

    roof = Roofline(gemm_shapes(model, batch), device)
    _time(step, warmup, device)
    _time(roof, warmup, device)
    step_t, roof_t = [], []
    for _ in range(repeats):
        roof_t.append(_time(roof, steps, device))
        step_t.append(_time(step, steps, device))
    s, r = statistics.median(step_t), statistics.median(roof_t)
    return {
        "activation": activation,
        "batch_size": batch,
        "step_ms": 1e3 * s,
        "gemm_ms": 1e3 * r,
        "samples_per_s": batch / s,
        "roofline_samples_per_s": batch / r,
        "ratio": r / s,
        "target": TARGETS.get(activation),
        "gemm_gflops": roof.flops / r / 1e9,
        "gemms": len(roof.ops),
        "step_ms_all": [round(1e3 * x, 3) for x in step_t],
        "gemm_ms_all": [round(1e3 * x, 3) for x in roof_t],
    }


def profile(activation: str, *, batch: int, device: torch.device, dataset: OLATDataset, steps: int = 10) -> str:
    """A torch.profiler table of ``steps`` training steps, sorted by self time."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    torch.manual_seed(0)
    model = create_model("siren", encoder="scaled-spherical", activation=activation).to(device).train()
    opt = create_optimizer(model)
    sampler = PixelLightSampler(dataset, None, batch, seed=0, device=device)
    for _ in range(3):
        train_step(model, opt, *sampler.sample())
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=acts) as prof:
        for _ in range(steps):
            train_step(model, opt, *sampler.sample())
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=20)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--activations", default="sine,cosine,relu", help="comma-separated activation plugins")
    ap.add_argument("--batch-size", type=int, default=None, help="samples a step (default: relightzoo train's default)")
    ap.add_argument("--steps", type=int, default=10, help="steps a repeat")
    ap.add_argument("--repeats", type=int, default=7, help="repeats (the median is reported)")
    ap.add_argument("--warmup", type=int, default=5, help="steps before timing")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--profile", metavar="ACTIVATION", help="print a profile of the step for one activation and exit")
    ap.add_argument("--json", action="store_true", help="print JSON on stdout")
    args = ap.parse_args(argv)

    from relightzoo.train import DEFAULT_BATCH_SIZE

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cpu":
        keep_freed_memory()  # as relightzoo train does
    batch = args.batch_size or DEFAULT_BATCH_SIZE
    dataset = synthetic_dataset()
    if args.profile:
        print(profile(args.profile, batch=batch, device=device, dataset=dataset))
        return 0
    results = [
        bench_activation(a.strip(), batch=batch, steps=args.steps, repeats=args.repeats, warmup=args.warmup,
                         device=device, dataset=dataset)
        for a in args.activations.split(",")
        if a.strip()
    ]
    doc = {
        "benchmark": "train-throughput-vs-gemm-roofline",
        "model": "siren(scaled-spherical, ACT) 3 x 256",
        "device": str(device),
        "machine": machine(),
        "settings": {"batch_size": batch, "steps": args.steps, "repeats": args.repeats, "warmup": args.warmup},
        "results": results,
    }
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        m = doc["machine"]
        print(f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} ({m['threads']} threads), device {device}, "
              f"batch {batch}", file=sys.stderr)
        print(f"{'activation':<11}{'step ms':>9}{'GEMM ms':>9}{'samples/s':>12}{'roofline/s':>12}{'ratio':>7}{'target':>8}",
              file=sys.stderr)
        for r in results:
            target = "-" if r["target"] is None else f"{r['target']:.2f}"
            print(f"{r['activation']:<11}{r['step_ms']:>9.2f}{r['gemm_ms']:>9.2f}{r['samples_per_s']:>12.0f}"
                  f"{r['roofline_samples_per_s']:>12.0f}{r['ratio']:>7.2f}{target:>8}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
