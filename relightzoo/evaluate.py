"""The held-out-light evaluation protocol (DESIGN.md) and its contact sheet.

A model is scored on every test light of a :class:`~relightzoo.lights.LightSplit`: it renders
each test light at the dataset's size, and the render is compared with the captured image by
PSNR and SSIM (:mod:`relightzoo.metrics`). Scores are reported per light and averaged over
all test lights and over those inside the cap the training lights span (interpolation, as
opposed to extrapolation), with the mean render time per image. The classical baselines
(:data:`BASELINES`: ``blend``, a weighted sum of the nearest training images, and the RTI fits
``ptm``, ``hsh`` and ``rbf``) are fitted to the same training images and scored the same way
beside every model, so every number comes with the classical methods' numbers next to it. A
fit that needs more training lights than the split has is skipped, with the reason recorded.

:func:`evaluate` returns a JSON-ready dict; the CLI adds the checkpoint's details and writes
it as ``results.json``. :func:`evaluation_sheet` draws the ground truth | model | blend |
error contact sheet for a few test lights spread over the dome.

Why one module of about 400 lines: the protocol (the split, the baselines beside every
model, the scores, the sheet, the results document) is read and changed as one whole; the
metrics themselves live in :mod:`relightzoo.metrics` and the drawing in :mod:`relightzoo.sheets`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from PIL import Image

from .console import make_progress
from .data.attach import attach_training_images
from .errors import DataError, TooFewLightsError
from .lights import LightSplit, cartesian_to_spherical, select_lights
from .metrics import PSNR_CAP, SSIM_SIGMA, SSIM_WINDOW, psnr, ssim
from .sheets import ERROR_VMAX, SheetRow, contact_sheet, error_heatmap, spread_indices
from .util.callable_module import make_module_callable
from .zoo.capabilities import capabilities, render_model
from .zoo.factory import spec_or_none

__all__ = [
    "BASELINES",
    "evaluate",
    "score_model",
    "make_baseline",
    "fit_baselines",
    "best_baseline",
    "resolve_split",
    "evaluation_sheet",
    "summarise",
    "light_batch_size",
    "results_document",
    "renders_at",
    "method_name",
]

_PIXELS_PER_BATCH = 1 << 20
"""About how many pixels one render batch holds (bounds memory; sets the progress granularity)."""


def light_batch_size(height: int, width: int, *, max_lights: int = 16) -> int:
    """How many lights to render per call at ``height x width``: at least 1, at most ``max_lights``."""
    return max(1, min(max_lights, _PIXELS_PER_BATCH // max(1, height * width)))


def _check_split(dataset, split: LightSplit) -> None:
    n = len(dataset)
    for what, idx in (("training", split.train), ("test", split.test)):
        if len(idx) and (int(np.max(idx)) >= n or int(np.min(idx)) < 0):
            raise DataError(
                f"the split {split.rule!r} uses {what} light {int(np.max(idx))} but the dataset "
                f"{dataset.source} has only {n} lights"
            )
    if len(split.test) == 0:
        raise DataError(f"the split {split.rule!r} leaves no test lights to evaluate")


def resolve_split(config: dict, dataset, rule: str | None = None) -> LightSplit:
    """The split to evaluate ``dataset`` with: ``rule`` applied to its lights, or else the
    split recorded in a checkpoint's ``config``.

    The recorded split indexes the lights of the dataset the model was trained on, so it is
    only used when ``dataset`` has that dataset's size and light count (and directions, when
    the checkpoint lists them); otherwise this raises :class:`DataError` saying what differs
    and that ``--lights`` chooses a split for the new dataset.
    """
    if rule is not None:
        return select_lights(rule, dataset.lights)
    recorded = (config.get("dataset") or {}) if isinstance(config, dict) else {}
    split_json = recorded.get("split")
    if not isinstance(split_json, dict):
        raise DataError("the checkpoint records no train/test split; choose one with --lights RULE")
    size = (recorded.get("height"), recorded.get("width"))
    if None not in size and tuple(size) != (dataset.height, dataset.width):
        raise DataError(
            f"dataset {dataset.source} is {dataset.width}x{dataset.height} but the checkpoint was trained on "
            f"{size[1]}x{size[0]} images; its recorded split does not apply (choose one with --lights RULE)"
        )
    lights = recorded.get("lights")
    count = len(lights) if isinstance(lights, list) else lights
    if isinstance(count, int) and count != len(dataset):
        raise DataError(
            f"dataset {dataset.source} has {len(dataset)} lights but the checkpoint was trained on a dataset "
            f"with {count}; its recorded split does not apply (choose one with --lights RULE)"
        )
    if isinstance(lights, list) and lights:
        got = dataset.lights.detach().cpu().double().numpy()
        want = np.asarray(lights, dtype=np.float64).reshape(-1, 3)
        if np.abs(got - want).max() > 1e-3:
            raise DataError(
                f"dataset {dataset.source} has other light directions than the checkpoint's training data; "
                "its recorded split does not apply (choose one with --lights RULE)"
            )
    split = LightSplit.from_json(split_json)
    _check_split(dataset, split)
    return split


def make_baseline(dataset, split: LightSplit, *, device: str | torch.device = "cpu") -> torch.nn.Module:
    """The ``blend`` baseline holding the training images of ``split``, ready to render."""
    from .zoo import create_model

    blend = create_model("blend")
    attach_training_images(blend, dataset, split.train, device=device)
    return blend.to(device).eval()


BASELINES = ("blend", "ptm", "hsh", "rbf")
"""The classical methods every report scores beside a model, each with its default arguments:
blending the nearest captures and the RTI fits practitioners use (polynomial texture maps,
hemispherical harmonics of order 2, radial basis functions)."""


def fit_baselines(
    dataset,
    split: LightSplit,
    *,
    names: tuple[str, ...] | list[str] = BASELINES,
    device: str | torch.device = "cpu",
    exclude_spec: dict | None = None,
) -> tuple[dict[str, torch.nn.Module], dict[str, float], dict[str, str]]:
    """Fit each classical baseline of ``names`` to the training images of ``split``.

    Returns ``(models, fit_s, skipped)``: the fitted models ready to render, the seconds each
    fit took, and for each baseline left out the reason: too few training lights for it
    (the fit's one-line message), or being the very model evaluated (``exclude_spec``, a
    model spec: a ``ptm`` checkpoint is not scored twice).
    """
    from .zoo import create_model, model_spec

    models: dict[str, torch.nn.Module] = {}
    fit_s: dict[str, float] = {}
    skipped: dict[str, str] = {}
    same = (exclude_spec or {}).get("model")
    for name in names:
        model = create_model(name)
        if same is not None and model_spec(model)["model"] == same:
            skipped[name] = "it is the model evaluated"
            continue
        t0 = time.perf_counter()
        try:
            attach_training_images(model, dataset, split.train, device=device)
        except TooFewLightsError as exc:
            skipped[name] = str(exc)
            continue
        fit_s[name] = time.perf_counter() - t0
        models[name] = model.to(device).eval()
    return models, fit_s, skipped


def best_baseline(results: dict[str, Any], names: tuple[str, ...] | list[str] = BASELINES) -> str | None:
    """The baseline of ``names`` with the highest mean PSNR over all test lights in an
    :func:`evaluate` ``results`` mapping, or None when none was scored."""
    scored = [(res["all"]["psnr"], name) for name, res in results.items() if name in names and res["all"]["psnr"] is not None]
    return max(scored)[1] if scored else None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _stats(psnrs: np.ndarray, ssims: np.ndarray) -> dict[str, Any]:
    """Mean and (population) standard deviation of a group of per-light scores."""
    if len(psnrs) == 0:
        return {"count": 0, "psnr": None, "psnr_std": None, "ssim": None, "ssim_std": None}
    return {
        "count": int(len(psnrs)),
        "psnr": float(np.mean(psnrs)),
        "psnr_std": float(np.std(psnrs)),
        "ssim": float(np.mean(ssims)),
        "ssim_std": float(np.std(ssims)),
    }


def score_model(
    model,
    dataset,
    split: LightSplit,
    *,
    device: str | torch.device = "cpu",
    progress: bool = True,
    label: str = "model",
    batch_size: int | None = None,
) -> dict[str, Any]:
    """Render every test light of ``split`` with ``model`` and score it against the dataset.

    Returns ``{all, in_cap, per_light, render_ms}``: group means and standard deviations of
    PSNR (dB, identical images count as :data:`~relightzoo.metrics.PSNR_CAP`) and SSIM, one
    entry per test light, and the mean wall time to render one image in milliseconds.
    """
    device = torch.device(device)
    test = np.asarray(split.test, dtype=np.int64)
    in_cap = set(int(i) for i in split.in_cap)
    h, w = dataset.height, dataset.width
    step = batch_size or light_batch_size(h, w)
    all_lights = dataset.lights.to(torch.float32)
    sph = np.degrees(cartesian_to_spherical(all_lights.detach().cpu().double().numpy()))
    psnrs, ssims, seconds = [], [], 0.0
    with make_progress(transient=True, disable=not progress) as bar, torch.no_grad():
        task = bar.add_task(f"evaluating {label}", total=len(test))
        for start in range(0, len(test), step):
            idx = test[start : start + step]
            lights = all_lights[torch.as_tensor(idx)].to(device)
            _sync(device)
            t0 = time.perf_counter()
            pred = render_model(model, lights, h, w)
            _sync(device)
            seconds += time.perf_counter() - t0
            pred = torch.nan_to_num(pred.detach().to("cpu", torch.float32), nan=0.0).clamp(0.0, 1.0)
            target = dataset.images(idx)
            psnrs.append(psnr(pred, target).double().numpy().reshape(-1))
            ssims.append(ssim(pred, target).double().numpy().reshape(-1))
            bar.advance(task, len(idx))
    p = np.concatenate(psnrs)
    s = np.concatenate(ssims)
    per_light = [
        {
            "index": int(i),
            "name": dataset.names[int(i)],
            "light": [round(float(v), 6) for v in all_lights[int(i)].tolist()],
            "polar_deg": round(float(sph[int(i), 0]), 3),
            "azimuth_deg": round(float(sph[int(i), 1]), 3),
            "in_cap": int(i) in in_cap,
            "psnr": float(p[k]),
            "ssim": float(s[k]),
        }
        for k, i in enumerate(test)
    ]
    mask = np.array([e["in_cap"] for e in per_light], dtype=bool)
    return {
        "all": _stats(p, s),
        "in_cap": _stats(p[mask], s[mask]),
        "per_light": per_light,
        "render_ms": 1000.0 * seconds / len(test),
    }


def evaluate(
    model,
    dataset,
    split: LightSplit,
    *,
    baseline: bool = True,
    baselines: tuple[str, ...] | list[str] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Score ``model`` on the test lights of ``split``, and the classical baselines beside it.

    Returns a JSON-ready dict::

        {"dataset": {source, height, width, lights},
         "split": {rule, train, test, cap, in_cap, held_out, cap_deg, n_train, n_test, n_in_cap},
         "metrics": {psnr_cap_db, ssim_window, ssim_sigma, std},
         "results": {"model": {all, in_cap, per_light, render_ms},
                     "blend": {..., fit_s}, "ptm": {...}, "hsh": {...}, "rbf": {...}},
         "skipped": {"ptm": "model 'ptm' needs at least 6 training lights, got 5", ...},
         "best_baseline": "rbf"}

    ``all`` and ``in_cap`` hold ``count``, ``psnr``, ``psnr_std``, ``ssim``, ``ssim_std``
    (None when the group is empty). A model that reads training images (``needs_images``)
    receives those of the split's training lights first. ``baselines`` names the baselines
    to score (default :data:`BASELINES`); ``baseline=False`` scores none. A baseline that
    needs more training lights than the split has, or that is the model itself, is listed
    under ``skipped`` with the reason. ``best_baseline`` is the scored baseline with the
    highest PSNR over all test lights (None when none was scored).
    """
    _check_split(dataset, split)
    device = torch.device(device)
    model = model.to(device).eval()
    if capabilities(model).needs_images:
        attach_training_images(model, dataset, split.train, device=device)
    results = {"model": score_model(model, dataset, split, device=device, progress=progress, label="model")}
    names = tuple(BASELINES if baselines is None else baselines) if baseline else ()
    fitted, fit_s, skipped = fit_baselines(dataset, split, names=names, device=device, exclude_spec=spec_or_none(model))
    for name, fit in fitted.items():
        results[name] = score_model(fit, dataset, split, device=device, progress=progress, label=name)
        results[name]["fit_s"] = fit_s[name]
    split_json = split.to_json()
    split_json.update(
        cap_deg=math.degrees(split.cap),
        n_train=len(split.train),
        n_test=len(split.test),
        n_in_cap=len(split.in_cap),
    )
    return {
        "dataset": {"source": str(dataset.source), "height": dataset.height, "width": dataset.width, "lights": len(dataset)},
        "split": split_json,
        "metrics": {"psnr_cap_db": PSNR_CAP, "ssim_window": SSIM_WINDOW, "ssim_sigma": SSIM_SIGMA, "std": "population (ddof=0)"},
        "results": results,
        "skipped": skipped,
        "best_baseline": best_baseline(results, names),
    }


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows ``{method, group, count, psnr, ssim, ...}`` of an :func:`evaluate` result, for tables."""
    rows = []
    for method, res in results["results"].items():
        for group in ("all", "in_cap"):
            rows.append({"method": method, "group": group, **res[group], "render_ms": res["render_ms"]})
    return rows


def evaluation_sheet(
    model,
    dataset,
    split: LightSplit,
    *,
    n_lights: int = 4,
    baseline: bool = True,
    device: str | torch.device = "cpu",
    title: str = "",
) -> Image.Image:
    """A contact sheet of ``n_lights`` test lights spread over the dome: one row per light with
    ground truth | model | blend | error heat map (|model - ground truth|), labelled with the
    light's polar and azimuth angles and each render's PSNR.

    It re-renders only the chosen lights, so it costs a few renders, not a second evaluation.
    """
    _check_split(dataset, split)
    device = torch.device(device)
    test = np.asarray(split.test, dtype=np.int64)
    pick = test[spread_indices(dataset.lights[torch.as_tensor(test)], n_lights)]
    if len(pick) == 0:
        raise DataError("a contact sheet needs at least one light (--sheet-lights N with N >= 1)")
    model = model.to(device).eval()
    if capabilities(model).needs_images:
        attach_training_images(model, dataset, split.train, device=device)
    lights = dataset.lights[torch.as_tensor(pick)].to(device=device, dtype=torch.float32)
    h, w = dataset.height, dataset.width
    with torch.no_grad():
        target = dataset.images(pick)
        preds = {"model": render_model(model, lights, h, w).detach().to("cpu", torch.float32).clamp(0, 1)}
        if baseline:
            preds["blend"] = render_model(make_baseline(dataset, split, device=device), lights, h, w).detach().to("cpu", torch.float32).clamp(0, 1)
    scores = {k: psnr(v, target) for k, v in preds.items()}
    in_cap = set(int(i) for i in split.in_cap)
    sph = np.degrees(cartesian_to_spherical(dataset.lights[torch.as_tensor(pick)].double().numpy()))
    rows = []
    for r, i in enumerate(pick):
        where = "in cap" if int(i) in in_cap else "outside cap"
        label = f"{dataset.names[int(i)]}  polar {sph[r, 0]:.1f}°  azimuth {sph[r, 1]:.1f}°  ({where})"
        images = [target[r]] + [preds[k][r] for k in preds] + [error_heatmap(preds["model"][r], target[r])]
        captions = [""] + [f"PSNR {scores[k][r].item():.2f} dB" for k in preds] + [""]
        rows.append(SheetRow(images=images, label=label, captions=captions))
    columns = ["ground truth", "model"] + (["blend (baseline)"] if baseline else []) + ["error |model - truth|"]
    footer = f"error: mean absolute difference over RGB, black 0 to yellow >= {ERROR_VMAX:g}"
    return contact_sheet(rows, columns, title=title, footer=footer)


def results_document(checkpoint: Any, config: dict, evaluation: dict, *, device: str) -> dict:
    """The ``results.json`` document of ``relightzoo eval`` and ``relightzoo train``: what was
    evaluated (checkpoint, step, model spec, device), then the numbers of :func:`evaluate`."""
    from . import __version__

    spec = config.get("spec") or {}
    return {
        "relightzoo_version": __version__,
        "checkpoint": str(checkpoint),
        "step": config.get("step"),
        "model": spec,
        "method_name": method_name(spec),
        "device": device,
        **evaluation,
    }


def method_name(spec: dict) -> str:
    """``siren(scaled-spherical, sine)`` from a model spec: what the tables call the model."""
    name = (spec.get("model") or {}).get("name", "model")
    parts = [(spec.get(k) or {}).get("name") for k in ("encoder", "activation")]
    parts = [p for p in parts if p]
    return f"{name}({', '.join(parts)})" if parts else str(name)


def renders_at(checkpoint: Any, dataset: Any, indices: Any, *, device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Load ``checkpoint`` and render it at the dataset lights ``indices``: the renders
    (float32 ``[k, H, W, 3]`` in [0, 1]) and their PSNR against the dataset's images (``[k]``).
    What a report shows of a finished run, next to the ground truth."""
    from .metrics import psnr
    from .relight import load_model

    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    model, _ = load_model(checkpoint, device=device)
    lights = dataset.lights[idx].to(device=device, dtype=torch.float32)
    with torch.no_grad():
        pred = render_model(model, lights, dataset.height, dataset.width).detach().to("cpu", torch.float32).clamp(0, 1)
    return pred.numpy(), psnr(pred, dataset.images(idx)).numpy().reshape(-1)


make_module_callable(__name__)  # rz.evaluate(...) works even when the attribute holds this module (util/callable_module.py)
