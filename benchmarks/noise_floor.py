"""How close to a rendered capture any model can come: the capture's own Monte-Carlo noise.

A Mitsuba capture (``relightzoo data render``) is noisy: each image is an estimate from a
finite number of samples per pixel, quantised to 8 bits. A model that predicted the noiseless
image perfectly would still score a finite PSNR against it. This script re-renders a spread
subset of the capture's lights at 16 times its samples per pixel (near noiseless) and scores
that against the capture's images, which bounds what a held-out PSNR can reach; it also
renders them at the capture's own samples per pixel with other seeds (two independent noisy
estimates differ by twice the noise variance, so that PSNR plus 3 dB estimates the same bound).

Usage (Mitsuba 3 is in the ``render`` extra)::

    python benchmarks/noise_floor.py still-life demo --spp 144
    python benchmarks/noise_floor.py blocks scene2 --spp 64

SCENE and the settings must be those the capture was rendered with (its ``render.json``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from relightzoo.data import load_dataset
from relightzoo.data.render.mitsuba_renderer import OLATRenderer
from relightzoo.metrics import psnr
from relightzoo.util.images import quantize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", help="the Mitsuba scene the capture was rendered from (relightzoo data render --help)")
    ap.add_argument("data", help="the capture (a folder or a built-in name)")
    ap.add_argument("--spp", type=int, required=True, help="the capture's samples per pixel")
    ap.add_argument("--max-depth", type=int, default=3, help="the capture's path depth")
    ap.add_argument("--lights", type=int, default=40, help="lights re-rendered at the capture's spp")
    ap.add_argument("--clean-lights", type=int, default=8, help="lights re-rendered at 16 x spp")
    args = ap.parse_args()
    data = load_dataset(args.data)
    pick = np.linspace(0, len(data) - 1, args.lights).round().astype(int)
    same = OLATRenderer(args.scene, data.width, data.height, spp=args.spp, max_depth=args.max_depth)
    clean = OLATRenderer(args.scene, data.width, data.height, spp=16 * args.spp, max_depth=args.max_depth)
    t0 = time.perf_counter()
    noisy_scores, clean_scores = [], []
    for k, i in enumerate(pick):
        light = data.lights[int(i)].double().numpy()
        target = data.images([int(i)])[0]
        stored = quantize(same.render(light, seed=987_654 + int(i)), data.bit_depth)  # as the capture stores it
        other_seed = torch.as_tensor(stored.astype(np.float32) / data.max_value)
        noisy_scores.append(float(psnr(other_seed, target)))
        if k < args.clean_lights:
            clean_scores.append(float(psnr(torch.as_tensor(clean.render(light, seed=123 + int(i))), target)))
    print(f"{args.data}: {len(pick)} lights re-rendered at {same.spp} spp with other seeds: "
          f"{np.mean(noisy_scores):.2f} dB (noise floor estimate {np.mean(noisy_scores) + 3.01:.2f} dB)")
    print(f"{args.data}: {len(clean_scores)} lights at {clean.spp} spp against the capture: "
          f"{np.mean(clean_scores):.2f} dB (lowest {np.min(clean_scores):.2f}): no model's held-out PSNR can exceed about this")
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
