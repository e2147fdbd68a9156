"""``relightzoo ablate``: train and score a grid of encoders x activations on one dataset.

The grid is every model x encoder x activation x light rule x seed (a model that uses no
encoder or activation, such as blend, once per rule), with the classical baselines (blend and
the RTI fits ptm, hsh, rbf) as rows for each light rule. ``--recipe NAME`` takes the grid's
defaults from a recipe (its model, encoder, activation, lights, settings and arguments);
options given beside it win, each with a one-line note on stderr. Each cell trains into ``OUT/cells/<name>/`` and is scored with the
held-out-light protocol; the command shows a live table, then writes ``results.json``,
``results.csv``, ``results.md``, ``contact_sheet.png`` and ``loss_curves.png`` into OUT.
Everything the grid names is checked before anything trains. Running the same command
again resumes: finished cells are kept, unfinished ones continue or start over.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from rich.markup import escape

from ..ablate.grid import BASELINE
from ..lights import RULE_HELP

from ..train.settings import DEFAULT_BATCH_SIZE, DEFAULT_STEPS, MODEL_SETTINGS
from .params import COUNT, LEARNING_RATE, MAX_SEED, POSITIVE_FLOAT, PRECISION, PRECISION_HELP, STEPS, FiniteFloatRange, IntList
from .train_cmd import _explicit

__all__ = ["ablate", "DEFAULT_LIGHTS"]

DEFAULT_LIGHTS = "xu5:0.77"


def _fmt(v: float | None, digits: int = 2, sign: bool = False) -> str:
    if v is None:
        return "-"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


class _Display:
    """What the user sees while the grid runs: a live table of the cells and an overall
    progress bar on a terminal; one line per cell elsewhere (logs, pipes); nothing with --json."""

    def __init__(self, grid, *, quiet: bool) -> None:
        from ..console import console, make_progress

        self.console = console
        self.quiet = quiet
        self.cells = grid.cells()
        self.state: dict[str, tuple[str, dict | None]] = {}
        self.blend: dict[str, float | None] = {}
        self.live_mode = not quiet and console.is_terminal
        self.progress = make_progress(disable=not self.live_mode)
        self.task = self.progress.add_task("ablation", total=len(self.cells))
        self.live = None

    def __enter__(self) -> "_Display":
        if self.live_mode:
            from rich.live import Live

            self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def event(self, kind: str, cell, record: dict | None) -> None:
        self.state[cell.name] = (kind, record)
        if record is not None and cell.baseline and cell.model == BASELINE and record.get("status") == "done":
            self.blend[cell.lights] = record["eval"]["all"]["psnr"]
        if kind in ("skip", "done"):
            self.progress.advance(self.task)
        if not self.live_mode and not self.quiet and kind in ("skip", "done"):
            self.console.print(f"{'kept' if kind == 'skip' else 'done'} {cell.name}: {self._summary(cell, record)}")

    def _summary(self, cell, record: dict | None) -> str:
        if record is not None and record.get("status") == "skipped":
            return f"[dim]skipped: {escape(str(record.get('error')))}"
        if record is None or record.get("status") != "done":
            return f"[red]failed: {escape(str((record or {}).get('error')))}"
        p = record["eval"]["all"]["psnr"]
        base = self.blend.get(cell.lights)
        vs = "" if cell.model == BASELINE or base is None else f", {p - base:+.2f} dB vs blend"
        return f"PSNR {p:.2f} dB (in cap {_fmt(record['eval']['in_cap']['psnr'])}){vs}, {record['wall_s']:.0f} s"

    def table(self):
        from rich.table import Table

        table = Table(title="ablation: PSNR (dB) on held-out lights, all and in the training cap", show_edge=False)
        table.add_column("cell", overflow="fold", ratio=1)
        for name in ("PSNR all", "PSNR cap", "Δ blend", "time s"):
            table.add_column(name, justify="right", no_wrap=True)
        for cell in self.cells:
            kind, record = self.state.get(cell.name, ("pending", None))
            if kind in ("pending", "start"):
                if kind == "start":
                    table.add_row(cell.name.replace("_", " "), "[dim]running", "", "", "")
                continue
            if record.get("status") != "done":
                what = "[dim]skipped" if record.get("status") == "skipped" else "[red]failed"
                table.add_row(cell.name.replace("_", " "), what, "", "", "")
                continue
            p = record["eval"]["all"]["psnr"]
            base = self.blend.get(cell.lights)
            delta = "" if cell.model == BASELINE or base is None else _fmt(p - base, sign=True)
            table.add_row(
                cell.name.replace("_", " ") + (" [dim](earlier)" if kind == "skip" else ""),
                _fmt(p),
                _fmt(record["eval"]["in_cap"]["psnr"]),
                delta,
                f"{record['wall_s']:.0f}",
            )
        return table

    def render(self):
        from rich.console import Group

        return Group(self.table(), self.progress.get_renderable())


_GRID_OPTIONS = {"model": "models", "encoder": "encoders", "activation": "activations", "lights": "lights",
                 "steps": "steps", "batch_size": "batch_size", "lr": "lr", "schedule": "schedule",
                 "precision": "precision"}
"""A recipe's options -> the ablate parameters that hold them (the axes take a list)."""


def _apply_recipe(ctx: click.Context, params: dict[str, Any]) -> str:
    """Fill the grid options the user left out from ``--recipe``; one line on stderr for each
    explicit option that overrides the recipe. Returns the recipe's name."""
    from ..console import console
    from ..recipes import get_recipe, merge_recipe

    recipe = get_recipe(params["recipe"])
    given = {key: params[opt] for key, opt in _GRID_OPTIONS.items() if _explicit(ctx, opt)}
    given.update({k: params[k] for k in ("model_args", "encoder_args", "activation_args") if params[k]})
    flags = {key: "--" + opt.replace("_", "-") for key, opt in _GRID_OPTIONS.items()}
    options, notes = merge_recipe(recipe, given, flags=flags)
    for note in notes:
        console.print(note, highlight=False, markup=False)
    for key, opt in _GRID_OPTIONS.items():
        if options[key] is not None:
            params[opt] = options[key]
    params["warmup_steps"] = options["warmup_steps"]
    for key in ("model_args", "encoder_args", "activation_args"):
        params[key] = options[key]
    return recipe.name


def _data_id(data: str) -> str:
    """A dataset's identity in grid.json: a folder as its absolute path, a scene by name."""
    path = Path(data)
    return str(path.resolve()) if path.is_dir() else data


@click.command("ablate")
@click.argument("data", metavar="DATA")
@click.option("--recipe", metavar="NAME", help="Take the grid's defaults from a named recipe (relightzoo recipes); options given explicitly win.")
@click.option("--encoders", default="scaled-spherical", show_default=True, metavar="E1,E2", help="Encoders to compare, comma-separated.")
@click.option("--activations", default="sine", show_default=True, metavar="A1,A2", help="Activations to compare, comma-separated.")
@click.option("--models", default="siren", show_default=True, metavar="M1,M2", help="Models; one that uses no encoder/activation runs once per rule.")
@click.option("--lights", default=DEFAULT_LIGHTS, show_default=True, metavar="RULE1,RULE2", help=f"Training-light rules to compare: {RULE_HELP}.")
@click.option("--seeds", type=IntList(0, MAX_SEED), default="0", show_default=True, metavar="S1,S2", help="Seeds (initialisation and batches), comma-separated.")
@click.option("--steps", type=click.IntRange(1, STEPS.max), default=None, help=f"Optimiser steps per cell [default: the model's, else {DEFAULT_STEPS}].")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True, help="Results folder (rerun the same command to resume).")
@click.option("--batch-size", type=COUNT, default=None, help=f"(pixel, light) samples a step [default: the model's, else {DEFAULT_BATCH_SIZE}].")
@click.option("--lr", type=LEARNING_RATE, default=None, help="Learning rate [default: the model's, else 1e-4].")
@click.option("--schedule", type=click.Choice(["none", "cosine"]), default=None, help="Learning-rate schedule [default: the model's, else none].")
@click.option("--precision", type=PRECISION, default=None, help=PRECISION_HELP)
@click.option("--encoder-arg", "encoder_arg", multiple=True, metavar="K=V", help="Encoder argument, given to every encoder that takes it (repeatable).")
@click.option("--activation-arg", "activation_arg", multiple=True, metavar="K=V", help="Activation argument, given to every activation that takes it (repeatable).")
@click.option("--model-arg", "model_arg", multiple=True, metavar="K=V", help="Model argument, e.g. hidden_features=128, given to every model that takes it (repeatable).")
@click.option("--jobs", type=click.IntRange(1, 1024), default=1, show_default=True, help="Cells trained at once, in worker processes of CPUs/N torch threads each.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option(
    "--ray", "ray", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
    help="Run every cell as a Ray task: on a new local Ray instance, or on the running cluster at ADDRESS "
    "(auto, HOST:PORT, ray://HOST:10001). Needs relightzoo[ray]; --jobs defaults to what the cluster fits.",
)
@click.option("--ray-cpus", type=POSITIVE_FLOAT, default=1, show_default=True, help="CPUs (torch threads) each Ray cell asks for.")
@click.option("--ray-gpus", type=FiniteFloatRange(min=0), default=None, help="GPUs each Ray cell asks for [default: 1 when cells run on CUDA, else 0].")
@click.option("--sheet-lights", type=click.IntRange(1, 1000), default=4, show_default=True, help="Test lights (rows) on the contact sheet.")
@click.option("--json", "json_", is_flag=True, help="Print results.json on stdout (nothing else).")
@click.pass_context
def ablate(ctx: click.Context, **params: Any) -> None:
    """Train and score a grid of encoders x activations (x models, light rules, seeds) on DATA.

    Every cell trains --steps steps and is scored on the held-out lights (all of them, and
    those inside the training lights' cap), beside the blend baseline of its light rule.
    OUT gets grid.json, cells/<name>/ (checkpoints, metrics.jsonl, result.json),
    results.json, results.csv, results.md, contact_sheet.png and loss_curves.png.

    Defaults: each model's own training settings, as for relightzoo train (a siren: 2000
    steps at batch 4096, Adam at 5e-4 with a cosine decay). A default siren
    (3 x 256) step at batch 4096 takes about 29 ms on two CPU threads (about 35% more with
    the fourier encoder), and scoring a cell on the 995 held-out demo lights 10 to 20 s, so
    the 12 cells of

    \b
      relightzoo ablate demo --encoders raw,scaled-spherical,fourier,direction
          --activations sine,cosine,relu --lights xu5:0.77 --out ablation

    plus blend take about 15 minutes on two idle CPU cores, half the 30-minute budget.
    --jobs 2 runs two cells at a time with one thread each. --ray runs each cell as a Ray
    task of --ray-cpus CPUs and --ray-gpus GPUs, on a local Ray instance or the cluster at
    ADDRESS (every node must see DATA and OUT at the same paths); the cells' numbers are
    those of a local run with as many threads.

    Stopped half-way (Ctrl-C saves the running cells' checkpoints), the same command
    resumes: finished cells are kept. OUT from a different grid is an error that says what
    differs.
    """
    from ..console import console, print_json
    from ..data import load_dataset
    from ..util.devices import resolve_device
    from ..zoo.args import parse_kv
    from ..ablate import build_grid, check_rules, claim_results_dir, results_document, run_grid, write_reports

    params["encoder_args"] = parse_kv(params.pop("encoder_arg"), option="--encoder-arg")
    params["activation_args"] = parse_kv(params.pop("activation_arg"), option="--activation-arg")
    params["model_args"] = parse_kv(params.pop("model_arg"), option="--model-arg")

    quiet = params["json_"]
    recipe = _apply_recipe(ctx, params) if params["recipe"] else None
    grid = build_grid(
        _data_id(params["data"]),
        models=params["models"],
        encoders=params["encoders"],
        activations=params["activations"],
        lights=params["lights"],
        seeds=params["seeds"],
        encoder_args=params["encoder_args"],
        activation_args=params["activation_args"],
        model_args=params["model_args"],
        recipe=recipe,
        **{key: params.get(key) for key in MODEL_SETTINGS},
    )
    if params["ray"] is None:
        device = local_device = str(resolve_device(params["device"]))
    dataset = load_dataset(params["data"])
    grid = dataclasses.replace(grid, dataset={"lights": len(dataset), "height": dataset.height, "width": dataset.width})
    splits = check_rules(grid, dataset.lights)
    out: Path = params["out"]
    resuming = claim_results_dir(out, grid)
    pool, jobs = None, params["jobs"]
    if params["ray"] is not None:
        from ..ablate.ray_cells import RayCells

        pool = RayCells(params["ray"], cpus=params["ray_cpus"], gpus=params["ray_gpus"], device=params["device"])
        device = pool.device  # the cells' device; this process only writes the reports
        local_device = str(resolve_device("cpu" if params["device"] == "cpu" else "auto"))
        if ctx.get_parameter_source("jobs").name == "DEFAULT":
            jobs = pool.slots
    cells = grid.cells()
    if not quiet:
        trained = sum(not c.baseline for c in cells)
        console.print(
            f"{'resuming ' if resuming else ''}ablation on {dataset.source} ({dataset.width}x{dataset.height}, "
            f"{len(dataset)} lights): {trained} cells + {len(cells) - trained} baseline row(s), {f'{grid.steps} steps each' if grid.steps else 'each model with its own training defaults'}, "
            f"{jobs} at a time on {device}{' (Ray tasks)' if pool is not None else ''} -> {out}"
        )
    display = _Display(grid, quiet=quiet)
    try:
        with display:
            records = run_grid(grid, out, dataset, splits, jobs=jobs, device=device, on_event=display.event, pool=pool)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted; finished cells are kept in {out}: rerun the same command to resume")
        ctx.exit(130)
        return
    doc = results_document(grid, records, dataset, splits)
    paths = write_reports(doc, out, dataset, splits, sheet_lights=params["sheet_lights"], device=local_device)
    if quiet:
        print_json(doc)
        return
    if not display.live_mode:
        console.print(display.table())
    failed = [r["name"] for r in records.values() if r.get("status") not in ("done", "skipped")]
    if failed:
        console.print(f"[yellow]{len(failed)} cell(s) failed: {', '.join(failed)} (see results.md for why)")
    console.print("wrote " + ", ".join(str(p) for p in paths.values()))
