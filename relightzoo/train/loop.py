"""Training a model: random (pixel, light) batches, MSE in [-1, 1], checkpoints and logs.

:func:`train` fits a coordinate model (siren and its kin) to the training lights of a
:class:`~relightzoo.lights.LightSplit`: each step draws a batch of random (pixel, light)
samples across every training image (:class:`~relightzoo.data.PixelLightSampler`), and
minimises the mean squared error between the model's RGB and the target ``2 * rgb - 1``.
A fixed seed makes a run repeatable bit for bit on one machine.

An image model (``learned-blend``) trains through the same loop by drawing its own batches:
it offers ``training_batch(generator, batch_size) -> (*inputs, target)`` and the loop
minimises the MSE between ``model(*inputs)`` and ``target`` (both in [-1, 1]), with the same
checkpoints, resume, logs and CLI (:class:`ModelBatches`, :func:`model_train_step`).

The run directory holds ``config.json`` (what was trained, on what, how), ``metrics.jsonl``
(one JSON object a logging step), ``latest.safetensors`` and ``best.safetensors`` (lowest
mean training loss over a checkpoint interval) written every ``checkpoint_every`` steps,
and ``latest.state.safetensors``, the optimiser/RNG/sampler state that makes ``resume``
continue exactly where the run stopped. Ctrl-C finishes the current step, saves the latest
checkpoint and raises :class:`TrainingInterrupted`; a non-finite loss stops the run with a
:class:`~relightzoo.errors.TrainingError` and leaves the last good checkpoint in place.

The parts live beside this module: the settings (:mod:`.settings`), the run's record and
resume (:mod:`.state`, :mod:`.recovery`), the logs and Ctrl-C (:mod:`.log`), one step and
the batches (:mod:`.step`, :class:`~relightzoo.data.PixelLightSampler`), checkpoints
(:mod:`.checkpoint`), and the loop itself (:mod:`.trainer`). :func:`train` sets a run up:
it resolves and checks the settings, refuses a run that cannot go on before anything is
written, and hands the rest to :class:`~relightzoo.train.trainer.Trainer`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ..data.attach import attach_training_images
from ..errors import TrainingError
from ..lights import LightSplit, select_lights
from ..util.devices import resolve_device
from ..zoo.capabilities import capabilities
from ..zoo.auto_args import resolve_auto_spec
from ..zoo.factory import spec_or_none
from .checkpoint import save_checkpoint, state_path
from .distributed import join
from .log import start_metrics
from .optim import DEFAULT_OPTIMIZER
from .settings import DEFAULT_BATCH_SIZE, DEFAULT_LOG_EVERY, DEFAULT_STEPS, TrainingSettings
from .state import BEST, CONFIG, LATEST, METRICS, check_resume, run_config
from .step import ModelBatches, model_train_step, train_step
from .trainer import Trainer, TrainingInterrupted, TrainResult, write_config

__all__ = [
    "TrainResult",
    "TrainingInterrupted",
    "train",
    "train_step",
    "model_train_step",
    "ModelBatches",
    "LATEST",
    "BEST",
    "CONFIG",
    "METRICS",
    "DEFAULT_STEPS",
    "DEFAULT_BATCH_SIZE",
]


def _build_model(model_or_spec, seed: int):
    from ..zoo import build_from_spec

    if isinstance(model_or_spec, dict):
        torch.manual_seed(seed)
        return build_from_spec(model_or_spec)
    if isinstance(model_or_spec, torch.nn.Module):
        return model_or_spec
    raise TypeError(f"train() needs a model spec (dict) or a model, got {type(model_or_spec).__name__}")


def _spec_of(model) -> dict | None:
    """The zoo spec of ``model``; None (with a warning) for a model the zoo did not build."""
    spec = spec_or_none(model)
    if spec is None:
        warnings.warn(
            f"this {type(model).__name__} was not built by relightzoo.zoo.create_model: its checkpoints "
            "record no spec and load only into a model you build (load_checkpoint(path, model=...))",
            stacklevel=3,
        )
    return spec


def _model_name(spec: dict | None) -> str:
    return repr(((spec or {}).get("model") or {}).get("name"))


def train(
    dataset,
    split: LightSplit | str,
    model: dict | torch.nn.Module,
    *,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    seed: int = 0,
    device: str | torch.device = "auto",
    out_dir: str | Path,
    checkpoint_every: int | None = None,
    log_every: int = DEFAULT_LOG_EVERY,
    resume: bool = False,
    progress: bool = True,
    schedule: str | None = None,
    warmup_steps: int | None = None,
    precision: str | None = None,
    optimizer: str = DEFAULT_OPTIMIZER,
    tensorboard: bool = False,
    overwrite: bool = False,
    recipe: str | None = None,
) -> TrainResult:
    """Train ``model`` (a spec dict or a built model) on the training lights of ``split``.

    ``split`` is a :class:`LightSplit` or a rule such as ``xu5:0.77``. Checkpoints go to
    ``out_dir`` every ``checkpoint_every`` steps (default: ten times a run, at least every
    ``log_every``) and at the end; metrics are logged every ``log_every`` steps. With
    ``resume`` the run in ``out_dir`` continues from its latest checkpoint to ``steps``; the
    model, dataset, lights and training settings must be the run's (a
    :class:`TrainingError` names the first that differs). A model with ``trainable = False``
    (``blend``) only receives the training images and is saved. A model with a
    ``training_batch`` method draws its own batches (:class:`ModelBatches`). ``out_dir`` must not hold a
    run already unless ``resume`` or ``overwrite``. Settings left as None come from the
    model's ``train_defaults``, else the global defaults (:meth:`TrainingSettings.resolve`).
    ``precision`` (``fp32``, ``bf16`` or ``auto``; :mod:`.precision`) is what the forward pass
    computes in; ``auto`` is decided for the device and recorded as ``precision_used``.
    ``recipe`` names the recipe the run follows (:mod:`relightzoo.recipes`); it is recorded
    in the config (``config["recipe"]``) and in every checkpoint. A spec argument written
    ``auto`` (``light_scale``) is chosen for the training lights and recorded as the value chosen.
    """
    if isinstance(split, str):
        split = select_lights(split, dataset.lights)
    if isinstance(model, dict):  # arguments written "auto" are chosen for these training lights
        model = resolve_auto_spec(model, dataset.lights[split.train])[0]
    # Build the model with the run's seed so its initialisation is repeatable.
    np.random.seed(seed)
    net = _build_model(model, seed)
    settings = TrainingSettings.resolve(
        net,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        warmup_steps=warmup_steps,
        precision=precision,
        seed=seed,
        optimizer=optimizer,
        checkpoint_every=checkpoint_every,
        log_every=log_every,
    )
    world, dev = join(resolve_device(device), settings.batch_size)  # a torchrun launch: this rank's place and device
    settings = settings.on(dev, world.size)
    out = Path(out_dir)
    latest = out / LATEST
    if resume and not latest.exists() and not state_path(latest).exists():
        raise TrainingError(f"cannot resume {out}: it holds no {LATEST}; start a new run with --out instead")
    if not resume and not overwrite and latest.exists():
        raise TrainingError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")

    net = net.to(dev)
    spec = _spec_of(net)
    config = run_config(spec, dataset, split, settings, recipe)
    if resume:
        check_resume(out, config)
    # Everything that can refuse the run (the model's own checks of the training images
    # included) runs before the output folder exists, so a refused run leaves nothing behind.
    caps = capabilities(net)
    if caps.needs_images:
        attach_training_images(net, dataset, split.train, device=dev)
    if caps.trainable and not caps.coordinate and not caps.draws_own_batches:
        raise TrainingError(
            f"model {_model_name(spec)} is trainable but is neither a coordinate model "
            "(forward(pixels, lights)) nor draws its own batches (training_batch(generator, batch_size)); "
            "set trainable = False on a model fitted in closed form (see docs/plugins.md)"
        )
    if caps.trainable and world.distributed and caps.draws_own_batches:
        raise TrainingError(
            f"model {_model_name(spec)} draws its own batches; data-parallel training "
            "(torchrun) splits (pixel, light) batches of coordinate models only"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not caps.trainable:
        return _save_untrained(net, config, out)
    trainer = Trainer(net, config, settings, dataset, split, out, dev, world)
    trainer.start(resume=resume)
    return trainer.run(progress=progress, tensorboard=tensorboard)


def _save_untrained(net, config: dict, out: Path) -> TrainResult:
    """A model with nothing to train: record the run and save it as latest and best."""
    config = dict(config, step=0)
    write_config(out / CONFIG, config)
    save_checkpoint(out / LATEST, net, config)
    save_checkpoint(out / BEST, net, config)
    start_metrics(out / METRICS)
    return TrainResult(
        model=net.eval(),
        config=config,
        out_dir=out,
        step=0,
        steps=0,
        loss=None,
        psnr=None,
        best_loss=None,
        latest=out / LATEST,
        best=out / BEST,
        elapsed=0.0,
        samples_per_s=None,
    )
