"""Relighting figures: environment-map relighting time against K, and the peak RSS of a large render.

:func:`envmap_timings` relights the default siren under a synthetic sky (a blue gradient with
a sun) at ``size x size`` for each K, beside ``K' x`` the time of one single-light render
(K' the lights the map was reduced to): a ratio near 1 says the weighted sum costs no more
than the renders it sums.

:func:`render_peak_rss` runs ``relightzoo relight`` in a fresh process on a checkpoint of the
default siren (its weights do not change the cost) and reads that process's peak resident
set from ``os.wait4``; a second run at 16 x 16 gives the baseline (Python, torch, the model),
so ``growth`` is what the size itself costs.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ..zoo import create_model
from ..zoo.capabilities import render_model
from .measure import sync

__all__ = ["synthetic_sky", "envmap_timings", "render_peak_rss", "run_cli_peak_rss"]


def synthetic_sky(height: int = 64) -> np.ndarray:
    """A linear-radiance equirectangular sky ``[height, 2 height, 3]``: blue gradient, white sun."""
    from ..envmap import envmap_directions

    d = envmap_directions(height, 2 * height)
    up = np.clip(d[..., 2], 0.0, 1.0)[..., None]
    sky = (0.2 + 0.8 * up) * np.array([0.35, 0.55, 1.0]) + 0.05
    sun = np.array([0.5, 0.3, math.sqrt(1 - 0.34)])
    sky = sky + 200.0 * (d @ sun > math.cos(math.radians(3)))[..., None]
    return sky.astype(np.float32)


def envmap_timings(ks: list[int], size: int, *, device: torch.device, seed: int = 0) -> list[dict]:
    """Seconds to relight the default siren under :func:`synthetic_sky` at ``size x size``, for each K."""
    from ..envmap import relight_envmap

    torch.manual_seed(seed)
    model = create_model("siren").to(device).eval()
    sky = synthetic_sky()
    light = torch.tensor([[0.0, 0.0, 1.0]], device=device)
    with torch.no_grad():
        render_model(model, light, size, size)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        render_model(model, light, size, size)
        sync(device)
    single = time.perf_counter() - t0
    relight_envmap(model, sky, k=4, height=size, width=size, progress=False)  # warm-up
    out = []
    for k in ks:
        sync(device)
        t0 = time.perf_counter()
        _, info = relight_envmap(model, sky, k=int(k), height=size, width=size, progress=False)
        sync(device)
        seconds = time.perf_counter() - t0
        out.append({
            "k": int(k),
            "k_used": info["k_used"],
            "size": size,
            "seconds": seconds,
            "ms_per_light": 1e3 * seconds / max(info["k_used"], 1),
            "single_render_ms": 1e3 * single,
            "vs_single_renders": (info["k_used"] * single) / seconds if seconds > 0 else None,
        })
    return out


def run_cli_peak_rss(args: list[str], *, env: dict | None = None) -> tuple[int, float, str]:
    """Run ``relightzoo ARGS`` in a fresh Python; ``(peak RSS bytes, seconds, output)``.

    The peak comes from the child's own rusage (``os.wait4``), so other children do not mix in.
    """
    cmd = [sys.executable, "-c", "from relightzoo.cli import main; main()", *map(str, args)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    output = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"relightzoo {' '.join(map(str, args))} failed ({proc.returncode}): {output.strip()[-500:]}")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return int(usage.ru_maxrss) * scale, seconds, output


def render_peak_rss(size: int, *, model_kwargs: dict | None = None, out_dir: str | Path | None = None, bit_depth: int = 8) -> dict:
    """Peak RSS of ``relightzoo relight --size SIZExSIZE --device cpu`` on a siren checkpoint.

    ``model_kwargs`` change the siren (default: the default siren, 3 x 256). Returns sizes,
    the peak and baseline (16 x 16) RSS in bytes, their difference and the seconds taken.
    """
    from ..train.checkpoint import save_checkpoint

    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = create_model("siren", **dict(model_kwargs or {}))
        ckpt = save_checkpoint(tmp / "siren.safetensors", model, {"dataset": {"height": 64, "width": 64}})
        common = ["relight", ckpt, "--light", "0.36,0.48,0.8", "--device", "cpu", "--bit-depth", str(bit_depth)]
        base, _, _ = run_cli_peak_rss([*common, "--size", "16x16", "--out", tmp / "small.png"])
        peak, seconds, _ = run_cli_peak_rss([*common, "--size", f"{size}x{size}", "--out", tmp / "big.png"])
        written = (tmp / "big.png").stat().st_size
    return {
        "size": size,
        "model": dict(model_kwargs or {}) or "default siren",
        "peak_rss_bytes": peak,
        "baseline_rss_bytes": base,
        "growth_bytes": peak - base,
        "seconds": seconds,
        "png_bytes": written,
    }
