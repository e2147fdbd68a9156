"""The conformance kit's scene: a small real one, cut from the shipped demo scene.

A 24 x 24 crop of the demo's centre (the box, the gold ball, the staircase) under 16 of
its 1000 lights spread over the dome, 10 of them for training. Small enough that every
check trains and renders in well under a second, real enough that a model must handle
shadows, specular highlights and colour.
"""

from __future__ import annotations

import functools

import numpy as np

from ..data.dataset import OLATDataset
from ..lights import LightSplit, select_lights

__all__ = ["KIT_SIZE", "KIT_LIGHTS", "KIT_TRAIN_RULE", "kit_scene"]

KIT_SIZE = 24
"""Height and width of the kit scene, in pixels."""
KIT_LIGHTS = 16
"""Lights of the kit scene."""
KIT_TRAIN_RULE = "uniform:10"
"""The kit scene's training lights (farthest-point spread); the other 6 are held out."""


@functools.lru_cache(maxsize=1)
def _scene() -> tuple[OLATDataset, LightSplit]:
    from ..data import load_dataset
    from ..sheets import spread_indices

    demo = load_dataset("demo")
    pick = np.sort(np.asarray(spread_indices(demo.lights, KIT_LIGHTS), dtype=np.int64))
    top = (demo.height - KIT_SIZE) // 2
    left = (demo.width - KIT_SIZE) // 2
    pixels = demo.images(pick)[:, top : top + KIT_SIZE, left : left + KIT_SIZE].contiguous()
    scene = OLATDataset(pixels, demo.lights[pick].numpy(), names=[demo.names[int(i)] for i in pick],
                        source=f"demo[{KIT_LIGHTS} lights, {KIT_SIZE}x{KIT_SIZE} crop]")
    return scene, select_lights(KIT_TRAIN_RULE, scene.lights)


def kit_scene() -> tuple[OLATDataset, LightSplit]:
    """``(dataset, split)``: the kit scene (float images in [0, 1]) and its training split.
    Built once per process; treat it as read-only."""
    return _scene()
