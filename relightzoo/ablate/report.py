"""The outputs of an ablation: results.json/.csv, a markdown table, one contact sheet, one plot.

:func:`results_document` gathers the grid and every cell's record (with its PSNR
difference to the blend baseline and to the best classical baseline of the same training
lights) into the ``results.json`` document; :func:`write_reports` writes it and everything
drawn from it:

- ``results.csv``: one flat row per cell and per baseline row;
- ``results.md``: a markdown table, one row per cell, the classical baselines of each light
  rule first (blend, ptm, hsh, rbf; a fit with too few training lights says so), the best
  PSNR of each rule in bold;
- ``contact_sheet.png``: the ground truth and every cell (blend included) at the same few
  test lights (held out by every rule), one row per light, each render with its PSNR;
- ``loss_curves.png``: the training loss of every trained cell from its ``metrics.jsonl``,
  on a log scale, in one plot.

Why one module of over 400 lines: the four outputs (JSON, CSV, markdown, pictures) are views
of one results document and share its row order and labels; rendering the sheet's images is
:func:`relightzoo.evaluate.renders_at`, drawing it :mod:`relightzoo.sheets` and
:mod:`relightzoo.plots`.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..util.atomic import write_image_atomic, write_json_atomic, write_text_atomic
from ..metrics import PSNR_CAP
from .grid import BASELINE, Grid

__all__ = [
    "RESULTS_JSON",
    "RESULTS_CSV",
    "RESULTS_MD",
    "CONTACT_SHEET",
    "LOSS_CURVES",
    "CSV_COLUMNS",
    "results_document",
    "csv_rows",
    "markdown_table",
    "draw_contact_sheet",
    "draw_loss_curves",
    "write_reports",
    "sheet_lights",
]

RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"
RESULTS_MD = "results.md"
CONTACT_SHEET = "contact_sheet.png"
LOSS_CURVES = "loss_curves.png"

CSV_COLUMNS = (
    "name", "kind", "model", "encoder", "activation", "lights", "seed", "status",
    "psnr_all", "psnr_in_cap", "ssim_all", "ssim_in_cap", "train_psnr",
    "delta_psnr_all", "delta_psnr_in_cap", "train_s", "eval_s", "params", "steps", "loss", "error",
    "delta_psnr_best_baseline_all", "best_baseline",
)
"""Columns of ``results.csv``, in order."""


# --------------------------------------------------------------------------------------
# the document


def _score(record: dict, group: str, key: str = "psnr") -> float | None:
    return ((record.get("eval") or {}).get(group) or {}).get(key)


def _delta(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


def results_document(grid: Grid, records: dict[str, dict], dataset, splits: dict[str, Any]) -> dict[str, Any]:
    """The ``results.json`` document: the grid, the dataset and splits, every cell's record
    (``cells``, with ``delta_vs_blend``, and ``delta_vs_best_baseline`` against the classical
    baseline of the same rule with the highest PSNR over all test lights, named in
    ``best_baseline``), the blend rows (``blend``), every baseline row (``baselines``: blend,
    ptm, hsh, rbf, the fits with their ``delta_vs_blend``), and the names of cells without a
    result (``missing``)."""
    from .. import __version__

    baseline_rows = [records[c.name] for c in grid.cells() if c.baseline and c.name in records]
    blend = {r["lights"]: r for r in baseline_rows if r["model"] == BASELINE}
    best: dict[str, dict] = {}
    for r in baseline_rows:
        p = _score(r, "all")
        if r.get("status") == "done" and p is not None and p > (_score(best.get(r["lights"], {}), "all") or -math.inf):
            best[r["lights"]] = r

    def deltas(record: dict, base: dict) -> dict[str, float | None]:
        return {g: _delta(_score(record, g), _score(base, g)) for g in ("all", "in_cap")}

    baselines = [r if r["model"] == BASELINE else {**r, "delta_vs_blend": deltas(r, blend.get(r["lights"]) or {})} for r in baseline_rows]
    cells, missing = [], []
    for cell in grid.cells():
        record = records.get(cell.name)
        if record is None:
            missing.append(cell.name)
            continue
        if cell.baseline:
            continue
        top = best.get(cell.lights) or {}
        cells.append(
            {
                **record,
                "delta_vs_blend": deltas(record, blend.get(cell.lights) or {}),
                "delta_vs_best_baseline": deltas(record, top),
                "best_baseline": top.get("model"),
            }
        )
    return {
        "relightzoo_version": __version__,
        "grid": grid.to_json(),
        "dataset": {"source": str(dataset.source), "height": dataset.height, "width": dataset.width, "lights": len(dataset)},
        "splits": {
            rule: {
                "n_train": len(s.train),
                "n_test": len(s.test),
                "n_in_cap": len(s.in_cap),
                "cap_deg": math.degrees(s.cap),
                "train": [int(i) for i in s.train],
            }
            for rule, s in splits.items()
        },
        "cells": cells,
        "blend": [r for r in baseline_rows if r["model"] == BASELINE],
        "baselines": baselines,
        "missing": missing,
    }


def _rows_in_order(doc: dict) -> list[dict]:
    """The baseline rows first for each rule (blend, ptm, hsh, rbf), then that rule's cells,
    rules in grid order."""
    rows = []
    for rule in doc["grid"]["lights"]:
        rows += [r for r in doc.get("baselines", doc["blend"]) if r["lights"] == rule]
        rows += [r for r in doc["cells"] if r["lights"] == rule]
    return rows


def csv_rows(doc: dict) -> list[dict[str, Any]]:
    """Flat rows (:data:`CSV_COLUMNS`) of a results document: baseline rows (kind ``blend``
    or ``baseline``) and cells."""
    out = []
    for r in _rows_in_order(doc):
        delta = r.get("delta_vs_blend") or {}
        is_blend = r.get("baseline") and r["model"] == BASELINE
        out.append(
            {
                "name": r["name"],
                "kind": ("blend" if is_blend else "baseline") if r.get("baseline") else "cell",
                "model": r["model"],
                "encoder": r.get("encoder") or "",
                "activation": r.get("activation") or "",
                "lights": r["lights"],
                "seed": "" if r.get("baseline") else r["seed"],
                "status": r.get("status"),
                "psnr_all": _score(r, "all"),
                "psnr_in_cap": _score(r, "in_cap"),
                "ssim_all": _score(r, "all", "ssim"),
                "ssim_in_cap": _score(r, "in_cap", "ssim"),
                "train_psnr": r.get("train_psnr"),
                "delta_psnr_all": 0.0 if is_blend and r.get("status") == "done" else delta.get("all"),
                "delta_psnr_in_cap": 0.0 if is_blend and r.get("status") == "done" else delta.get("in_cap"),
                "train_s": r.get("train_s"),
                "eval_s": r.get("eval_s"),
                "params": r.get("params"),
                "steps": r.get("steps"),
                "loss": r.get("loss"),
                "error": r.get("error") or "",
                "delta_psnr_best_baseline_all": (r.get("delta_vs_best_baseline") or {}).get("all"),
                "best_baseline": r.get("best_baseline") or "",
            }
        )
    return out


def _csv_text(doc: dict) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(doc):
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


def _f(v: float | None, digits: int = 2, sign: bool = False) -> str:
    if v is None:
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def _secs(t: float | None) -> str:
    return "–" if t is None else (f"{t:.0f}" if t >= 10 else f"{t:.1f}")


def _training_text(doc: dict) -> str:
    """The training settings each model ran with (the grid's, or the model's own defaults
    where the grid left one unset), e.g. ``siren: 2000 steps at batch 4096, learning rate
    0.0001, schedule none``."""
    from ..zoo import capabilities, get_plugin
    from .grid import Grid
    from .runner import model_settings

    grid = Grid.from_json(doc["grid"])
    per_model: dict[str, str] = {}
    for model in dict.fromkeys(r["model"] for r in doc["cells"]):
        if not capabilities(get_plugin("model", model).factory).trainable:
            per_model[model] = "nothing to train (fitted when given the training images)"
            continue
        tr = model_settings(grid, model)
        per_model[model] = (
            f"{tr['steps']} steps at batch {tr['batch_size']}, learning rate {tr['lr']:g}, schedule {tr['schedule']}"
            + (f", precision {tr['precision']}" if tr["precision"] != "fp32" else "")
        )
    return "; ".join(f"{model}: {text}" for model, text in per_model.items()) or "no trained cells"


def markdown_table(doc: dict) -> str:
    """The markdown report: a heading, the settings, and one table row per cell (blend rows
    included), with PSNR all / in-cap, SSIM, train PSNR, times, parameters and the PSNR
    difference to blend; the best PSNR over all test lights of each rule is bold."""
    grid, data = doc["grid"], doc["dataset"]
    multi_rule, multi_seed = len(grid["lights"]) > 1, len(grid["seeds"]) > 1
    lines = [
        f"# Ablation on {data['source']} ({data['width']}x{data['height']}, {data['lights']} lights)",
        "",
        f"{_training_text(doc)}; seeds {', '.join(str(s) for s in grid['seeds'])}."
        + "".join(
            f" {opt} {' '.join(f'{k}={v}' for k, v in grid[key].items())}."
            for key, opt in (("encoder_args", "--encoder-arg"), ("activation_args", "--activation-arg"), ("model_args", "--model-arg"))
            if grid[key]
        ),
        "",
    ]
    for rule, s in doc["splits"].items():
        lines.append(
            f"- `{rule}`: {s['n_train']} training lights; {s['n_test']} test lights, {s['n_in_cap']} inside the "
            f"{s['cap_deg']:.1f}° cap of the training lights (in-cap)."
        )
    lines += [
        "",
        "PSNR in dB and SSIM over all test lights and the in-cap ones; train PSNR is over the training lights "
        "(exact: the renders equal the captured images); Δ blend is the PSNR difference to the blend baseline "
        "with the same training lights, Δ best classical the difference to the best of the classical baselines "
        "(blend, ptm, hsh, rbf) with those lights; time is training (for a closed-form fit: fitting) + evaluation in seconds.",
        "",
    ]
    head = (["lights"] if multi_rule else []) + ["model", "encoder", "activation"] + (["seed"] if multi_seed else [])
    numbers = ["PSNR all", "PSNR in-cap", "SSIM all", "SSIM in-cap", "train PSNR", "Δ blend all", "Δ blend in-cap",
               "Δ best classical all", "time (s)", "params"]
    head += numbers
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("---" if i < len(head) - len(numbers) else "---:" for i in range(len(head))) + "|")
    best: dict[str, float] = {}
    for r in _rows_in_order(doc):
        p = _score(r, "all")
        if p is not None and p > best.get(r["lights"], -math.inf):
            best[r["lights"]] = p
    for r in _rows_in_order(doc):
        base = r.get("baseline")
        cells = ([f"`{r['lights']}`"] if multi_rule else []) + [
            r["model"] + (" (baseline)" if base else ""),
            r.get("encoder") or "–",
            r.get("activation") or "–",
        ]
        if multi_seed:
            cells.append("–" if base else str(r["seed"]))
        if r.get("status") != "done":
            what = "skipped" if r.get("status") == "skipped" else "failed"
            cells += [f"{what}: {r.get('error', '')}".replace("|", "/")] + [""] * (len(numbers) - 1)
        else:
            delta = r.get("delta_vs_blend") or {}
            top = r.get("delta_vs_best_baseline") or {}
            is_blend = base and r["model"] == BASELINE
            p_all = _f(_score(r, "all"))
            if _score(r, "all") == best.get(r["lights"]):
                p_all = f"**{p_all}**"
            cells += [
                p_all,
                _f(_score(r, "in_cap")),
                _f(_score(r, "all", "ssim"), 4),
                _f(_score(r, "in_cap", "ssim"), 4),
                "exact" if (r.get("train_psnr") or 0) >= PSNR_CAP else _f(r.get("train_psnr")),
                "0" if is_blend else _f(delta.get("all"), sign=True),
                "0" if is_blend else _f(delta.get("in_cap"), sign=True),
                "–" if base else f"{_f(top.get('all'), sign=True)} ({r.get('best_baseline') or '–'})",
                f"{_secs(r.get('train_s'))} + {_secs(r.get('eval_s'))}",
                f"{r.get('params', 0):,}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    if doc.get("missing"):
        lines += ["", f"Not finished: {', '.join(doc['missing'])}."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# pictures


def sheet_lights(splits: dict[str, Any], lights, n: int) -> np.ndarray:
    """Up to ``n`` dataset light indices held out by every rule, spread from the pole to
    the horizon (:func:`relightzoo.sheets.spread_indices`)."""
    from ..sheets import spread_indices

    common: set[int] | None = None
    for split in splits.values():
        test = {int(i) for i in split.test}
        common = test if common is None else common & test
    candidates = np.asarray(sorted(common or ()), dtype=np.int64)
    if len(candidates) == 0 or n <= 0:
        return candidates[:0]
    return candidates[spread_indices(np.asarray(lights)[candidates], n)]


def _column_lines(r: dict, multi_model: bool, multi_rule: bool, multi_seed: bool) -> list[str]:
    if r.get("baseline"):
        lines = [r["model"], "(baseline)"]
    elif r.get("encoder") or r.get("activation"):
        lines = ([r["model"]] if multi_model else []) + [r.get("encoder") or "", r.get("activation") or ""]
    else:  # a model with no encoder or activation is named once
        lines = [r["model"]]
    if multi_rule:
        lines.append(r["lights"])
    if multi_seed and not r.get("baseline"):
        lines.append(f"seed {r['seed']}")
    return lines


def draw_contact_sheet(doc: dict, out: str | Path, dataset, splits: dict[str, Any], *, n_lights: int = 4, tile: int = 128, device: str = "cpu") -> Image.Image:
    """Ground truth, every blend row and every finished cell rendered at the same test
    lights: one row per light, one labelled column per method, each render's PSNR under it.
    Each cell renders from its latest checkpoint (:func:`relightzoo.evaluate.renders_at`)."""
    import torch

    from ..evaluate import renders_at
    from ..lights import cartesian_to_spherical
    from ..sheets import SheetRow, contact_sheet

    out = Path(out)
    pick = sheet_lights(splits, dataset.lights.numpy(), n_lights)
    grid = doc["grid"]
    multi = (len([m for m in grid["models"] if m != "blend"]) > 1, len(grid["lights"]) > 1, len(grid["seeds"]) > 1)
    rows_src = [r for r in _rows_in_order(doc) if r.get("status") == "done"]
    target = dataset.images(pick) if len(pick) else None
    renders: list[np.ndarray] = []
    scores: list[np.ndarray] = []
    h, w = dataset.height, dataset.width
    if len(pick):
        for r in rows_src:
            pred, score = renders_at(out / r["checkpoint"], dataset, pick, device=device)
            renders.append(pred)
            scores.append(score)
    columns = [["ground truth"]] + [_column_lines(r, *multi) for r in rows_src]
    if not len(pick):
        img = Image.new("RGB", (480, 60), (24, 24, 24))
        ImageDraw.Draw(img).text((8, 20), "no test light is held out by every light rule", fill=(235, 235, 235))
        return img
    sph = np.degrees(cartesian_to_spherical(dataset.lights[torch.as_tensor(pick)].double().numpy()))
    rows = []
    for k, i in enumerate(pick):
        images = [target[k].numpy()] + [pred[k] for pred in renders]
        captions = [""] + [f"{s[k]:.2f} dB" for s in scores]
        label = f"{dataset.names[int(i)]}  polar {sph[k, 0]:.1f}°  azimuth {sph[k, 1]:.1f}°"
        rows.append(SheetRow(images=images, label=label, captions=captions))
    tile = max(tile, h, w)  # small images are enlarged a whole number of times, large ones kept
    tw = w * max(1, tile // max(h, w))
    body = contact_sheet(rows, [""] * len(columns), tile=tile)
    return _with_header(body, columns, tw, title=f"{doc['dataset']['source']}: ground truth and every cell at {len(pick)} test lights (PSNR under each)")


def _with_header(body: Image.Image, columns: Sequence[Sequence[str]], tw: int, *, title: str) -> Image.Image:
    """``body`` (a contact sheet with blank column names) under a band holding ``title`` and
    each column's label on several lines, aligned with the sheet's columns."""
    from ..plots import load_font

    font = load_font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    box = probe.textbbox((0, 0), "Ag", font=font)
    line = box[3] - box[1] + 5
    n_lines = max(len(c) for c in columns)
    band = 8 + line + 4 + n_lines * line
    pad = (body.width - len(columns) * tw) / (len(columns) + 1)  # the sheet's gap between columns
    img = Image.new("RGB", (body.width, body.height + band), body.getpixel((0, 0)))
    img.paste(body, (0, band))
    draw = ImageDraw.Draw(img)
    draw.text((pad, 6), title, fill=(235, 235, 235), font=font)
    for c, lines in enumerate(columns):
        x = pad + c * (tw + pad)
        for j, text in enumerate(lines):
            draw.text((x, 8 + line + 4 + j * line), text, fill=(235, 235, 235), font=font)
    return img


def _read_metrics(path: Path) -> tuple[list[float], list[float]]:
    steps, losses = [], []
    try:
        text = path.read_text()
    except OSError:
        return steps, losses
    for raw in text.splitlines():
        try:
            rec = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if isinstance(rec.get("step"), (int, float)) and isinstance(rec.get("loss"), (int, float)):
            steps.append(float(rec["step"]))
            losses.append(float(rec["loss"]))
    return steps, losses


def draw_loss_curves(doc: dict, out: str | Path) -> Image.Image:
    """The training loss (MSE on [-1, 1] targets, log scale) against the step, one line per
    trained cell, read from each cell's ``metrics.jsonl``."""
    from ..plots import Series, line_plot

    out = Path(out)
    grid = doc["grid"]
    multi = (len([m for m in grid["models"] if m != "blend"]) > 1, len(grid["lights"]) > 1, len(grid["seeds"]) > 1)
    series = []
    for r in doc["cells"]:
        if r.get("status") != "done" or not r.get("metrics"):
            continue
        steps, losses = _read_metrics(out / r["metrics"])
        if steps:
            series.append(Series(" ".join(p for p in _column_lines(r, *multi) if p), steps, losses))
    return line_plot(
        series,
        title=f"training loss of every cell on {doc['dataset']['source']}",
        xlabel="step",
        ylabel="MSE on [-1, 1] targets (log scale)",
        log_y=True,
    )


def write_reports(doc: dict, out: str | Path, dataset, splits: dict[str, Any], *, sheet_lights: int = 4, device: str = "cpu") -> dict[str, Path]:
    """Write results.json, results.csv, results.md, contact_sheet.png and loss_curves.png
    into ``out``; returns ``{kind: path}``."""
    out = Path(out)
    paths = {
        "json": out / RESULTS_JSON,
        "csv": out / RESULTS_CSV,
        "markdown": out / RESULTS_MD,
        "contact_sheet": out / CONTACT_SHEET,
        "loss_curves": out / LOSS_CURVES,
    }
    write_json_atomic(paths["json"], doc, allow_nan=False)
    write_text_atomic(paths["csv"], _csv_text(doc))
    write_text_atomic(paths["markdown"], markdown_table(doc))
    write_image_atomic(paths["contact_sheet"], draw_contact_sheet(doc, out, dataset, splits, n_lights=sheet_lights, device=device))
    write_image_atomic(paths["loss_curves"], draw_loss_curves(doc, out))
    return paths
