"""Frame time: how long every registered model takes to render one ``size x size`` frame
at a light it was not trained on, the figure an interactive viewer lives by.

Each model the zoo lists (built-ins and installed plugins, through the registry) is built
with its defaults, fitted briefly on the demo scene through :func:`relightzoo.train.train`
(a few gradient steps, or its closed-form fit), and then rendered through
:func:`~relightzoo.zoo.capabilities.render_model` at a held-out light. The models are timed
in turn, interleaved, medians after warm-up, so machine load hits them alike. A model that
reuses light-independent work across frames (:mod:`relightzoo.zoo.frame_cache`) is also
timed with that reuse switched off, in the same rounds: ``vs_plain`` is the speed-up.
"""

from __future__ import annotations

import tempfile
import warnings
from typing import Callable

import torch

from ..zoo.capabilities import render_model
from ..zoo.frame_cache import frame_cache
from .measure import interleaved_medians

__all__ = ["FRAME_BUDGET_MS", "FIT_STEPS", "FIT_LIGHTS", "frame_timings"]

FRAME_BUDGET_MS = 50.0
"""A frame in this time or less keeps a viewer interactive (20 frames a second)."""

FIT_STEPS = 20
"""Gradient steps each trainable model gets before timing: the frame time does not depend on
how well the weights fit, only on the model's shape."""

FIT_LIGHTS = "uniform:100"
"""Training lights of the brief fit: enough for every classical basis (HSH order 2 needs 9)."""


def _fit(name: str, dataset, split, device: torch.device):
    from ..train import train
    from ..zoo import create_model

    torch.manual_seed(0)
    model = create_model(name)
    with tempfile.TemporaryDirectory(prefix="relightzoo-frames-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(dataset, split, model, steps=FIT_STEPS, log_every=FIT_STEPS, out_dir=tmp, device=device, progress=False)
    return result.model.eval()


def frame_timings(
    models: list[str] | None = None,
    *,
    size: int = 256,
    repeats: int = 7,
    warmup: int = 2,
    device: torch.device | str = "cpu",
    on_model: Callable[[str], None] | None = None,
) -> dict:
    """Median frame time of each model in ``models`` (default: every registered model).

    Returns ``{"size", "budget_ms", "light", "models": [{name, ms, under_budget, cached,
    plain_ms, vs_plain, all_ms}], "under_budget": [names]}``; ``vs_plain`` (plain / cached
    time) is None for a model that keeps no frame cache (both paths are the same code).
    """
    from ..data import load_dataset
    from ..lights import select_lights
    from ..util.devices import resolve_device
    from ..zoo import list_plugins

    dev = resolve_device(device)
    names = models if models is not None else [info.name for info in list_plugins("model")]
    dataset = load_dataset("demo")
    split = select_lights(FIT_LIGHTS, dataset.lights)
    light = dataset.lights[int(split.test[0])].to(dev, torch.float32)[None]
    fns: dict[str, Callable[[], object]] = {}
    cached: dict[str, bool] = {}
    for name in names:
        if on_model is not None:
            on_model(name)
        model = _fit(name, dataset, split, dev)
        fns[name] = lambda m=model: render_model(m, light, size, size)
        with torch.no_grad():
            fns[name]()
        cached[name] = len(getattr(model, "_frames", ())) > 0  # it kept light-independent work

        def plain(m=model) -> object:
            with frame_cache(False):
                return render_model(m, light, size, size)

        fns[name + " (plain)"] = plain
    with torch.no_grad():
        t = interleaved_medians(fns, repeats=repeats, warmup=warmup, device=dev)
    rows = []
    for name in names:
        ms, plain_ms = 1e3 * t[name]["median"], 1e3 * t[name + " (plain)"]["median"]
        rows.append(
            {
                "name": name,
                "ms": ms,
                "under_budget": ms <= FRAME_BUDGET_MS,
                "cached": cached[name],
                "plain_ms": plain_ms,
                "vs_plain": plain_ms / ms if cached[name] else None,
                "all_ms": [round(1e3 * x, 3) for x in t[name]["all"]],
            }
        )
    return {
        "size": size,
        "budget_ms": FRAME_BUDGET_MS,
        "light": [round(float(v), 6) for v in light[0].tolist()],
        "fit_steps": FIT_STEPS,
        "fit_lights": FIT_LIGHTS,
        "models": rows,
        "under_budget": [r["name"] for r in rows if r["under_budget"]],
    }
