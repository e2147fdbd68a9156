"""``relightzoo eval``: score a checkpoint on held-out lights, beside the classical baselines
(blend and the RTI fits ptm, hsh, rbf).

By default the dataset and the train/test split are the ones the checkpoint records, so
``relightzoo eval run/best.safetensors`` repeats the protocol the model was trained under.
Writes ``results.json`` and ``contact_sheet.png`` into ``--out`` (default: ``eval/`` beside
the checkpoint) and prints a table of PSNR and SSIM over all test lights and over those
inside the training lights' cap; ``--json`` prints the results document instead.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import click

from ..errors import DataError
from ..lights import RULE_HELP

__all__ = ["eval_"]


def _output_folder(out: Path) -> Path:
    """Create the output folder now, so an unwritable one fails before the evaluation runs."""
    from ..relight import OutputError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write to {out}: {exc.strerror or exc}") from None
    if not os.access(out, os.W_OK):
        raise OutputError(f"cannot write to {out}: permission denied")
    return out


def _fmt(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _print_table(doc: dict, out: Path, sheet: Path | None) -> None:
    from rich.table import Table

    from ..console import console

    split = doc["split"]
    results = doc["results"]
    table = Table(
        title=f"{doc['method_name']} on {doc['dataset']['source']}, lights {split['rule']}",
        caption=f"PSNR in dB over the {split['n_test']} test lights (all) and the {split['n_in_cap']} "
        f"inside the {split['cap_deg']:.1f}° cap of the {split['n_train']} training lights (cap)",
    )
    table.add_column("method", no_wrap=True)
    for name in ("PSNR all", "PSNR cap", "SSIM all", "SSIM cap", "ms/image"):
        table.add_column(name, justify="right")
    model_name = (doc.get("model") or {}).get("model", {}).get("name", "model")
    for key, res in results.items():
        table.add_row(
            model_name if key == "model" else f"{key} (baseline)",
            _fmt(res["all"]["psnr"], 2),
            _fmt(res["in_cap"]["psnr"], 2),
            _fmt(res["all"]["ssim"], 4),
            _fmt(res["in_cap"]["ssim"], 4),
            _fmt(res["render_ms"], 1),
        )
    console.print(table)
    for name, reason in (doc.get("skipped") or {}).items():
        console.print(f"{name} skipped: {reason}", highlight=False, markup=False)
    console.print(f"wrote {out / 'results.json'}" + (f" and {sheet}" if sheet else ""))


@click.command("eval")
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--data", metavar="DATA", help="Dataset folder or built-in scene; default: the one the checkpoint was trained on.")
@click.option("--lights", "rule", metavar="RULE", help=f"Train/test split rule; default: the checkpoint's split. {RULE_HELP}.")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Output folder; default: eval/ beside the checkpoint.")
@click.option("--json", "json_", is_flag=True, help="Print the results as JSON on stdout (nothing else).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option(
    "--sheet-lights",
    type=click.IntRange(0, 1000),
    default=4,
    show_default=True,
    help="Test lights on the contact sheet (0: no sheet).",
)
def eval_(checkpoint: Path, data: str | None, rule: str | None, out: Path | None, json_: bool, device: str, sheet_lights: int) -> None:
    """Evaluate CHECKPOINT on its held-out lights: PSNR and SSIM per light and averaged over
    all test lights and those inside the training lights' cap, beside the classical
    baselines (blend, ptm, hsh, rbf; a fit that needs more training lights is skipped).

    Writes results.json and contact_sheet.png (ground truth | model | blend | error).
    """
    from ..console import console, print_json
    from ..data import load_dataset
    from ..evaluate import evaluate, evaluation_sheet, resolve_split, results_document
    from ..train import load_checkpoint
    from ..util.atomic import write_image_atomic, write_json_atomic
    from ..util.devices import resolve_device

    torch_device = resolve_device(device)
    model, config = load_checkpoint(checkpoint, device=torch_device)
    source = data if data is not None else (config.get("dataset") or {}).get("source")
    if not source:
        raise DataError(f"{checkpoint} does not record its dataset; pass --data DATA")
    dataset = load_dataset(source)
    split = resolve_split(config, dataset, rule)
    if not split.held_out:
        warnings.warn(f"the split {split.rule!r} holds out no light: the scores are on the training lights", stacklevel=1)
    out = _output_folder(out if out is not None else checkpoint.parent / "eval")
    # a transient bar leaves a blank line behind where stderr is not a terminal (logs, CI)
    evaluation = evaluate(model, dataset, split, device=torch_device, progress=console.is_terminal and not json_)
    doc = results_document(checkpoint, config, evaluation, device=str(torch_device))
    write_json_atomic(out / "results.json", doc, allow_nan=False)
    sheet_path = None
    if sheet_lights > 0:
        sheet = evaluation_sheet(
            model,
            dataset,
            split,
            n_lights=sheet_lights,
            device=torch_device,
            title=f"{doc['method_name']} on {dataset.source}, lights {split.rule}",
        )
        sheet_path = out / "contact_sheet.png"
        write_image_atomic(sheet_path, sheet)
    if json_:
        print_json(doc)
    else:
        _print_table(doc, out, sheet_path)
