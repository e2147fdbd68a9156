"""Where the time of ``relightzoo train demo`` goes: start-up, data, model, training steps,
checkpoints, logging, evaluation, as a table.

Runs the command in a fresh process under cProfile (so imports count, as on a newcomer's
first run), then sums the profile's cumulative times of the functions that make up each
phase. Usage::

    python benchmarks/first_run.py [--steps N] [-- extra relightzoo train options]

Prints a markdown table (phase, seconds, share of the wall time) and the wall time of the
same command without the profiler, run first, for reference (cProfile slows the Python
parts; the ratio says by how much). Run it on an idle machine (``uptime``).
"""

from __future__ import annotations

import argparse
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PHASES: list[tuple[str, list[tuple[str, str]]]] = [
    ("data: load the demo scene", [("relightzoo/data/dataset.py", "load_dataset")]),
    ("model: build from plugins", [("relightzoo/cli/train_cmd.py", "_build_model")]),
    ("training steps (forward, backward, Adam)", [("relightzoo/train/step.py", "train_step")]),
    ("batches (sampler)", [("relightzoo/data/sampler.py", "sample"), ("relightzoo/train/step.py", "sample")]),
    ("checkpoints (latest, best, resume state)", [("relightzoo/train/checkpoint.py", "save_checkpoint"), ("relightzoo/train/checkpoint.py", "save_state")]),
    ("evaluation: model renders", [("relightzoo/zoo/capabilities.py", "render_model")]),
    ("evaluation: PSNR and SSIM", [("relightzoo/metrics.py", "psnr"), ("relightzoo/metrics.py", "ssim")]),
    ("evaluation: blend baseline built", [("relightzoo/evaluate.py", "make_baseline")]),
    ("evaluation: total", [("relightzoo/evaluate.py", "evaluate")]),
    ("training: total (train())", [("relightzoo/train/loop.py", "train")]),
]


def _cumulative(stats: pstats.Stats, keys: list[tuple[str, str]]) -> float:
    total = 0.0
    for (path, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        for suffix, name in keys:
            if func == name and path.replace(os.sep, "/").endswith(suffix):
                total += ct
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    ap.add_argument("extra", nargs="*", help="more relightzoo train options (after --)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["train", "demo", "--out", str(Path(tmp) / "run")]
        if args.steps is not None:
            cmd += ["--steps", str(args.steps)]
        cmd += args.extra
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "relightzoo", *cmd, "--out", str(Path(tmp) / "plain")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        plain = time.perf_counter() - t0
        prof = Path(tmp) / "profile.out"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "relightzoo", *cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        stats = pstats.Stats(str(prof))
    print(f"relightzoo {' '.join(cmd[:2] + cmd[4:])}: {plain:.1f} s without the profiler, {wall:.1f} s under cProfile; "
          f"load average {os.getloadavg()[0]:.2f}\n")
    print("| phase | seconds (profiled) | share |\n|---|---|---|")
    body = _cumulative(stats, [("relightzoo/cli/train_cmd.py", "train")])
    print(f"| start-up: interpreter, imports, CLI (all but the command's body) | {stats.total_tt - body:.2f} | "
          f"{100 * (stats.total_tt - body) / wall:.0f}% |")
    for name, keys in PHASES:
        s = _cumulative(stats, keys)
        print(f"| {name} | {s:.2f} | {100 * s / wall:.0f}% |")


if __name__ == "__main__":
    main()
