"""``relightzoo train``: fit a model to a dataset's training lights, then score the held-out ones.

With no ``--model`` and no ``--recipe``, ``relightzoo train DATA`` trains the zoo's best quick
recipe (:data:`relightzoo.recipes.DEFAULT_RECIPE`: latent-siren on 49 spread training
lights, a dense capture as an RTI user makes it), about a minute on two CPU cores. Naming a
model without a recipe keeps the per-option defaults below (siren, scaled-spherical
encoder, sine activation, the thesis's ``xu5:0.77`` training lights); ``--recipe thesis``
is the thesis's model. The run directory gets ``config.json``,
``metrics.jsonl``, ``latest.safetensors`` and ``best.safetensors``; the command ends by
evaluating the held-out lights and printing PSNR beside the classical baselines (blend and the
RTI fits ptm, hsh, rbf; a fit with too few training lights is skipped with a note) and the
difference to blend and to the best of them.

``--recipe NAME`` takes the model, plugins, training lights and settings from a named recipe
(:mod:`relightzoo.recipes`); options given explicitly win, each with a one-line note on stderr.

``--resume RUN_DIR`` continues a run exactly where it stopped. Options left out are taken
from the run; options given must agree with it (``--steps`` may grow).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from ..errors import TrainingError
from ..lights import RULE_HELP
from ..train.settings import DEFAULT_LOG_EVERY, RUN_OPTIONS
from ..zoo.factory import DEFAULT_ACTIVATION, DEFAULT_ENCODER  # the zoo's defaults, shown in --help
from .params import COUNT, LEARNING_RATE, NONNEGATIVE, PRECISION, PRECISION_HELP, SEED, STEPS

__all__ = ["train", "DEFAULT_MODEL", "DEFAULT_ENCODER", "DEFAULT_ACTIVATION", "DEFAULT_LIGHTS", "default_run_dir"]

DEFAULT_MODEL = "siren"
DEFAULT_LIGHTS = "xu5:0.77"
"""The thesis's setting: the centre light and four at polar angle 0.77 rad."""


def default_run_dir(model: str, encoder: str | None, activation: str | None, *, now: float | None = None) -> Path:
    """``runs/<model>-<encoder>-<activation>-<YYYYmmdd-HHMMSS>``: descriptive and new each run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    parts = [p for p in (model, encoder, activation) if p]
    return Path("runs") / ("-".join(parts) + f"-{stamp}")


def _explicit(ctx: click.Context, name: str) -> bool:
    """Whether the user set option ``name`` on the command line (not a default)."""
    source = ctx.get_parameter_source(name)
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def _run_config(run_dir: Path) -> dict:
    """The configuration a run recorded: ``config.json``, or its latest checkpoint's header."""
    from ..jsonfile import check_schema, parse_json
    from ..train import LATEST, read_config, state_path
    from ..train.checkpoint import CONFIG_SCHEMA, SPEC_SCHEMA

    path = run_dir / "config.json"
    if path.is_file():
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise TrainingError(f"cannot resume {run_dir}: cannot read {path.name} ({exc.strerror or exc})") from None
        config = parse_json(text, f"cannot resume {run_dir}: {path.name}", TrainingError, max_bytes=_MAX_CONFIG_BYTES)
        problem = check_schema(config, _RUN_SCHEMA | CONFIG_SCHEMA | {"spec": SPEC_SCHEMA})
        if problem:
            raise TrainingError(f"cannot resume {run_dir}: {path.name} is not a relightzoo run's config ({problem})")
        return config
    for checkpoint in (run_dir / LATEST, state_path(run_dir / LATEST)):
        if checkpoint.exists():
            config = read_config(checkpoint)
            return config.get("checkpoint") if isinstance(config.get("checkpoint"), dict) else config
    if not run_dir.exists():
        raise TrainingError(f"cannot resume {run_dir}: the folder does not exist")
    raise TrainingError(f"cannot resume {run_dir}: it holds no {LATEST}; start a new run with --out instead")


_MAX_CONFIG_BYTES = 16 * 2**20
"""A run's config.json is a few kilobytes (its dataset's light list); 16 MiB is far beyond any."""

_RUN_SCHEMA = {"training": dict, "dataset": dict}
"""What a run's config.json must hold besides a checkpoint config's fields (``spec`` is required too)."""


def _fill_from_run(ctx: click.Context, params: dict[str, Any], run: dict) -> None:
    """Take every option the user left out from the run being resumed."""
    spec = run.get("spec") or {}
    training = run.get("training") or {}
    dataset = run.get("dataset") or {}
    if params["data"] is None:
        params["data"] = dataset.get("source")
    for kind, arg in (("model", "model_args"), ("encoder", "encoder_args"), ("activation", "activation_args")):
        entry = spec.get(kind) or {}
        if not _explicit(ctx, kind):
            params[kind] = entry.get("name")
        run_args = dict(entry.get("args") or {})
        if params[kind] == entry.get("name"):
            run_args.update(params[arg])
            params[arg] = run_args
    if not _explicit(ctx, "lights") and (dataset.get("split") or {}).get("rule"):
        params["lights"] = dataset["split"]["rule"]
    for key in RUN_OPTIONS:
        if not _explicit(ctx, key) and key in training:
            params[key] = training[key]


def _model_uses(name: str) -> tuple[str, ...]:
    """Which of encoder/activation the model plugin ``name`` consumes (all, if unknown)."""
    from ..zoo import list_plugins

    for info in list_plugins("model"):
        if info.name == name:
            return tuple(getattr(info, "uses", ("encoder", "activation")))
    return ("encoder", "activation")


def _build_model(params: dict[str, Any], seed: int, train_lights: Any):
    """The model the options name, built with ``seed``; the plugin kinds it uses; and one
    line per ``auto`` argument chosen for ``train_lights`` (:mod:`relightzoo.zoo.auto_args`)."""
    import torch

    from ..zoo import create_model, resolve_auto_args

    uses = _model_uses(params["model"])
    notes: list[str] = []
    for kind in ("model", *uses):
        params[f"{kind}_args"], said = resolve_auto_args(kind, params[kind], params[f"{kind}_args"], train_lights)
        notes.extend(said)
    kwargs: dict[str, Any] = dict(params["model_args"])
    if "encoder" in uses:
        kwargs["encoder"] = params["encoder"]
        kwargs["encoder_args"] = params["encoder_args"] or None
    if "activation" in uses:
        kwargs["activation"] = params["activation"]
        kwargs["activation_args"] = params["activation_args"] or None
    torch.manual_seed(seed)
    return create_model(params["model"], **kwargs), uses, notes


def _apply_recipe(ctx: click.Context, params: dict[str, Any], name: str) -> str:
    """Fill the options the user left out from recipe ``name``; print one line on stderr for
    each explicit option that overrides the recipe. Returns the recipe's name."""
    from ..console import console
    from ..recipes import RECIPE_OPTIONS, get_recipe, merge_recipe

    recipe = get_recipe(name)
    given = {k: params[k] for k in RECIPE_OPTIONS if _explicit(ctx, k)}
    given.update({k: params[k] for k in ("model_args", "encoder_args", "activation_args") if params[k]})
    options, notes = merge_recipe(recipe, given)
    for note in notes:
        console.print(note, highlight=False, markup=False)
    for key, value in options.items():
        if value is not None:
            params[key] = value
    return recipe.name


def _summary_line(label: str, res: dict) -> str:
    def f(v, d=2):
        return "-" if v is None else f"{v:.{d}f}"

    return (
        f"{label:<28} PSNR {f(res['all']['psnr'])} dB (in cap {f(res['in_cap']['psnr'])}), "
        f"SSIM {f(res['all']['ssim'], 4)}"
    )


def _comparison_line(name: str, results: dict, best: str | None) -> str | None:
    """``siren(...): +0.42 dB vs blend, -1.10 dB vs the best classical model (rbf)`` (PSNR over all
    test lights), or None when no baseline was scored."""
    mine = results["model"]["all"]["psnr"]
    if mine is None:
        return None
    parts = []
    if "blend" in results and results["blend"]["all"]["psnr"] is not None:
        parts.append(f"{mine - results['blend']['all']['psnr']:+.2f} dB vs blend")
    if best is not None and best != "blend":
        parts.append(f"{mine - results[best]['all']['psnr']:+.2f} dB vs the best classical model ({best})")
    elif best == "blend":
        parts.append("blend is the best classical model")
    return f"{name}: {', '.join(parts)}" if parts else None


@click.command("train")
@click.argument("data", required=False, metavar="DATA")
@click.option("--recipe", metavar="NAME", help="A named recipe (relightzoo recipes lists them): model, plugins, lights and training settings; options given explicitly win.")
@click.option("--model", default=DEFAULT_MODEL, show_default=True, help="Model plugin (see relightzoo plugins).")
@click.option("--encoder", default=DEFAULT_ENCODER, show_default=True, help="Coordinate encoder plugin.")
@click.option("--activation", default=DEFAULT_ACTIVATION, show_default=True, help="Activation backbone plugin.")
@click.option("--lights", default=DEFAULT_LIGHTS, show_default=True, metavar="RULE", help=f"Training lights: {RULE_HELP}.")
@click.option("--steps", type=STEPS, default=None, help="Optimiser steps [default: the model's, else 2000].")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), help="Run folder [default: runs/MODEL-ENCODER-ACTIVATION-TIME].")
@click.option("--encoder-arg", "encoder_arg", multiple=True, metavar="K=V", help="Encoder argument (repeatable).")
@click.option("--activation-arg", "activation_arg", multiple=True, metavar="K=V", help="Activation argument (repeatable).")
@click.option("--model-arg", "model_arg", multiple=True, metavar="K=V", help="Model argument, e.g. hidden_features=128 (repeatable).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the initialisation and the batches.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--batch-size", type=COUNT, default=None, help="(pixel, light) samples a step [default: the model's, else 4096].")
@click.option("--lr", type=LEARNING_RATE, default=None, help="Learning rate [default: the model's, else 1e-4].")
@click.option("--schedule", type=click.Choice(["none", "cosine"]), default=None, help="Learning-rate schedule [default: the model's, else none].")
@click.option("--warmup-steps", type=NONNEGATIVE, default=None, help="Linear learning-rate warm-up steps [default: the model's, else 0].")
@click.option("--precision", type=PRECISION, default=None, help=PRECISION_HELP)
@click.option("--checkpoint-every", type=COUNT, default=None, help="Save latest/best every K steps [default: a tenth of the run].")
@click.option("--log-every", type=COUNT, default=DEFAULT_LOG_EVERY, show_default=True, help="Write metrics.jsonl every K steps.")
@click.option("--resume", type=click.Path(path_type=Path, file_okay=False), metavar="RUN_DIR", help="Continue the run in RUN_DIR where it stopped.")
@click.option("--tensorboard", is_flag=True, help="Also log to RUN_DIR/tensorboard (needs the tensorboard package).")
@click.option("--eval/--no-eval", "evaluate_", default=True, show_default=True, help="Score the held-out lights at the end.")
@click.option("--allow-below-horizon", is_flag=True, help="Accept light directions below the horizon (z < 0).")
@click.option("--json", "json_", is_flag=True, help="Print the run summary and scores as JSON on stdout (nothing else).")
@click.pass_context
def train(ctx: click.Context, **params: Any) -> None:
    """Train a model on DATA's training lights and score it on the held-out ones.

    DATA is a dataset folder or a built-in scene (demo). Checkpoints, config.json and
    metrics.jsonl go to --out; Ctrl-C saves the latest checkpoint, and --resume RUN_DIR
    continues from it (DATA and options may be left out: they come from the run).

    Data-parallel on N processes: torchrun --nproc-per-node N -m relightzoo train ...
    (--batch-size is the global batch, split over the processes; rank 0 writes the run;
    a run resumes on any number of processes).
    """
    from ..console import console, print_json
    from ..data import load_dataset
    from ..lights import select_lights
    from ..train import TrainingInterrupted
    from ..util.devices import resolve_device
    from ..train import train as run_training
    from ..train.distributed import world_from_env
    from ..zoo.args import parse_kv

    world = world_from_env()  # under torchrun: rank 0 prints, evaluates and writes; the others only train
    if not world.is_main:
        console.quiet = True
    from ..zoo.capabilities import capabilities

    params["encoder_args"] = parse_kv(params.pop("encoder_arg"), option="--encoder-arg")
    params["activation_args"] = parse_kv(params.pop("activation_arg"), option="--activation-arg")
    params["model_args"] = parse_kv(params.pop("model_arg"), option="--model-arg")
    resume: Path | None = params["resume"]
    recipe_name = params.pop("recipe")
    if recipe_name is None and resume is None and not _explicit(ctx, "model"):
        from ..recipes import DEFAULT_RECIPE

        recipe_name = DEFAULT_RECIPE  # no model named: the zoo's best quick recipe
    if recipe_name is not None:
        if resume is not None:
            raise click.UsageError("--resume RUN_DIR continues the run with its own settings; leave out --recipe")
        recipe_name = _apply_recipe(ctx, params, recipe_name)
    if resume is not None:
        if params["out"] is not None and Path(params["out"]).resolve() != resume.resolve():
            raise click.UsageError("--resume RUN_DIR continues that run in place; leave out --out or give the same folder")
        run = _run_config(resume)
        _fill_from_run(ctx, params, run)
        recipe_name = run.get("recipe")
    if params["data"] is None:
        raise click.UsageError("Missing argument 'DATA' (a dataset folder or 'demo').")
    device = resolve_device(params["device"])

    dataset = load_dataset(params["data"], allow_below_horizon=params["allow_below_horizon"])
    split = select_lights(params["lights"], dataset.lights)
    model, uses, auto_notes = _build_model(params, params["seed"], dataset.lights[split.train])
    out = resume if resume is not None else params["out"]
    if out is None:
        out = default_run_dir(
            params["model"],
            params["encoder"] if "encoder" in uses else None,
            params["activation"] if "activation" in uses else None,
        )
    if not params["json_"]:
        console.print(
            ("resuming " if resume is not None else "")
            + f"training {params['model']} on {dataset.source} ({dataset.width}x{dataset.height}, {len(dataset)} lights; "
            f"{len(split.train)} training lights by {split.rule}) on {device} -> {out}"
        )
        for note in auto_notes:
            console.print(note)
    try:
        result = run_training(
            dataset,
            split,
            model,
            steps=params["steps"],
            batch_size=params["batch_size"],
            lr=params["lr"],
            seed=params["seed"],
            device=device,
            out_dir=out,
            checkpoint_every=params["checkpoint_every"],
            log_every=params["log_every"],
            resume=resume is not None,
            progress=not params["json_"],
            schedule=params["schedule"],
            warmup_steps=params["warmup_steps"],
            precision=params["precision"],
            tensorboard=params["tensorboard"],
            recipe=recipe_name,
        )
    except TrainingInterrupted as stop:
        if stop.checkpoint is not None:
            console.print(f"[yellow]to continue: relightzoo train --resume {stop.out_dir}")
        ctx.exit(130)
        return
    if not world.is_main:
        return

    summary: dict[str, Any] = {"run": result.to_json(), "evaluation": None}
    if not params["json_"]:
        if not capabilities(result.model).trainable:
            console.print(f"saved {params['model']} (nothing to train) to {out}")
        elif result.step == result.resumed_from and resume is not None:
            console.print(f"the run in {out} is already at step {result.step} of {result.config['training']['steps']}; pass a larger --steps to go on")
        elif result.loss is not None:
            console.print(
                f"trained {result.step} steps in {result.elapsed:.1f} s: training loss {result.loss:.5f} "
                f"(PSNR {result.psnr:.2f} dB); checkpoints in {out}"
            )
    if params["evaluate_"]:
        summary["evaluation"] = _evaluate(result, dataset, split, device, quiet=params["json_"])
    if params["json_"]:
        print_json(summary)


def _evaluate(result, dataset, split, device, *, quiet: bool) -> dict:
    """Score the trained model on the held-out lights, write eval/results.json, print PSNRs."""
    import warnings

    from ..console import console
    from ..evaluate import evaluate, results_document
    from ..util.atomic import write_json_atomic

    if not split.held_out:
        warnings.warn(f"the split {split.rule!r} holds out no light: the scores are on the training lights", stacklevel=1)
    evaluation = evaluate(result.model, dataset, split, device=device, progress=not quiet)
    doc = results_document(result.latest, result.config, evaluation, device=str(device))
    write_json_atomic(result.out_dir / "eval" / "results.json", doc, allow_nan=False)
    if not quiet:
        which = "held-out" if split.held_out else "training"
        console.print(f"{which} lights ({len(split.test)}; {len(split.in_cap)} inside the training cap):")
        res = evaluation["results"]
        name = doc.get("method_name", "model")
        for key, scores in res.items():
            console.print(_summary_line(name if key == "model" else f"{key} (baseline)", scores), highlight=False)
        for key, reason in evaluation.get("skipped", {}).items():
            console.print(f"{key} skipped: {reason}", highlight=False, markup=False)
        comparison = _comparison_line(name, res, evaluation.get("best_baseline"))
        if comparison:
            console.print(comparison, highlight=False)
        console.print(f"wrote {result.out_dir / 'eval' / 'results.json'}")
    return {k: {g: v[g] for g in ("all", "in_cap")} | {"render_ms": v["render_ms"]} for k, v in evaluation["results"].items()}
