"""The training loop: random (pixel, light) batches, MSE in [-1, 1], checkpoints and logs.

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

The step itself stays lean (it sets the throughput the benchmark compares with the matmul
roofline): no host sync except on logging steps, gradients set to None rather than zeroed,
the loss summed on the device between logs.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .. import __version__
from ..atomic import output_error, write_json_atomic, write_text_atomic
from ..console import console, make_progress
from ..errors import CheckpointError, TrainingError
from ..lights import LightSplit, select_lights
from .checkpoint import _load_weights, save_checkpoint, save_state, state_path
from .distributed import World, join
from .recovery import resume_config, resume_point
from .optim import DEFAULT_OPTIMIZER, SCHEDULES, create_optimizer, create_schedule, current_lr
from .settings import DEFAULT_BATCH_SIZE, DEFAULT_STEPS, training_settings
from ..zoo.capabilities import capabilities

__all__ = [
    "TrainResult",
    "TrainingInterrupted",
    "train",
    "train_step",
    "model_train_step",
    "ModelBatches",
    "keep_freed_memory",
    "resolve_device",
    "psnr_from_mse",
    "LATEST",
    "BEST",
    "CONFIG",
    "METRICS",
    "DEFAULT_STEPS",
    "DEFAULT_BATCH_SIZE",
]

LATEST = "latest.safetensors"
BEST = "best.safetensors"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


_RESUME_MUST_MATCH = ("batch_size", "lr", "optimizer", "schedule", "warmup_steps", "seed")
"""Training settings a resumed run must share with the run it continues (``steps`` may grow)."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after saving the latest checkpoint.

    A :class:`KeyboardInterrupt`, so code that stops on Ctrl-C still does; ``step``,
    ``checkpoint`` and ``out_dir`` say where the run stands and how to resume it.
    """

    def __init__(self, step: int, steps: int, checkpoint: Path | None, out_dir: Path) -> None:
        super().__init__(f"interrupted at step {step} of {steps}")
        self.step = step
        self.steps = steps
        self.checkpoint = checkpoint
        self.out_dir = out_dir


@dataclass
class TrainResult:
    """What a finished :func:`train` call hands back."""

    model: torch.nn.Module
    config: dict
    out_dir: Path
    step: int
    steps: int
    loss: float | None
    psnr: float | None
    best_loss: float | None
    latest: Path
    best: Path
    elapsed: float
    samples_per_s: float | None
    resumed_from: int = 0
    history: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        """A JSON-ready summary (without the model)."""
        return {
            "out_dir": str(self.out_dir),
            "step": self.step,
            "steps": self.steps,
            "loss": self.loss,
            "psnr": self.psnr,
            "best_loss": self.best_loss,
            "latest": str(self.latest),
            "best": str(self.best),
            "elapsed": self.elapsed,
            "samples_per_s": self.samples_per_s,
            "resumed_from": self.resumed_from,
        }


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in [0, 1] from the MSE of the same images mapped to [-1, 1]."""
    if not mse > 0:
        return math.inf if mse == 0 else math.nan
    return 10.0 * math.log10(4.0 / mse)


_ALLOCATOR_TUNED = False


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory instead of handing it back to the system.

    A CPU training step allocates and frees the same few-megabyte activation buffers every
    step. By default glibc returns such blocks to the kernel (``munmap`` or heap trimming),
    so each step faults the pages in again, which costs about a tenth of a siren step on the
    CPU. Raising the mmap and trim thresholds keeps them: the process holds its peak
    working set until it exits. Done once per process, glibc only (a no-op elsewhere);
    returns whether the setting took effect.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_trim_threshold, 1 << 30) == 1 and libc.mallopt(m_mmap_threshold, 32 << 20) == 1
    except (OSError, AttributeError):
        return False
    _ALLOCATOR_TUNED = ok
    return ok


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``auto`` (or None) picks CUDA when available, else the CPU; CUDA without a GPU is an error."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TrainingError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"device {device!r} asked for CUDA but no CUDA GPU is available; use --device cpu")
    return dev


# --------------------------------------------------------------------------------------
# configuration: what a run records, and what a resume must match


def _dataset_json(dataset, split: LightSplit) -> dict:
    source = str(dataset.source)
    if Path(source).is_dir():
        source = str(Path(source).resolve())
    return {
        "source": source,
        "height": int(dataset.height),
        "width": int(dataset.width),
        "lights": [[round(float(v), 7) for v in d] for d in dataset.lights.tolist()],
        "split": split.to_json(),
    }


def _spec_of(model) -> dict | None:
    """The zoo spec of ``model``; None (with a warning) for a model the zoo did not build."""
    from ..errors import PluginError
    from ..zoo import model_spec

    try:
        return model_spec(model)
    except PluginError:
        warnings.warn(
            f"this {type(model).__name__} was not built by relightzoo.zoo.create_model: its checkpoints "
            "record no spec and load only into a model you build (load_checkpoint(path, model=...))",
            stacklevel=3,
        )
        return None


def _describe_spec(spec: dict | None, kind: str) -> str:
    entry = (spec or {}).get(kind) or {}
    return repr(entry.get("name"))


def _compare_spec(old: dict, new: dict) -> str | None:
    """The first difference between two model specs, said as a setting, or None."""
    if not old or not new:
        return None if not old and not new else "model: one of the two was not built by the zoo and has no spec"
    for kind, flag in (("model", "--model"), ("encoder", "--encoder"), ("activation", "--activation")):
        a, b = old.get(kind) or {}, new.get(kind) or {}
        if a.get("name") != b.get("name"):
            return f"{kind} ({flag}): the run has {a.get('name')!r}, this command {b.get('name')!r}"
        aa, ba = a.get("args") or {}, b.get("args") or {}
        for key in sorted(set(aa) | set(ba)):
            if aa.get(key) != ba.get(key):
                return f"{kind} argument {key} ({flag}-arg): the run has {aa.get(key)!r}, this command {ba.get(key)!r}"
    return None


def _compare_dataset(old: dict, new: dict) -> str | None:
    """The first difference between two dataset records, said as a setting, or None."""
    if old.get("source") != new.get("source"):
        return f"dataset (DATA): the run trained on {old.get('source')}, this command on {new.get('source')}"
    if (old.get("height"), old.get("width")) != (new.get("height"), new.get("width")):
        return (
            f"dataset size: the run trained on {old.get('width')}x{old.get('height')} images, "
            f"this command's are {new.get('width')}x{new.get('height')}"
        )
    lo, ln = old.get("lights") or [], new.get("lights") or []
    if len(lo) != len(ln) or (len(lo) and np.abs(np.asarray(lo) - np.asarray(ln)).max() > 1e-5):
        return f"dataset lights: the run's dataset had {len(lo)} lights, this command's has {len(ln)} with other directions"
    so, sn = old.get("split") or {}, new.get("split") or {}
    if list(so.get("train", [])) != list(sn.get("train", [])):
        return (
            f"training lights (--lights): the run used {so.get('rule')!r} (lights {so.get('train')}), "
            f"this command {sn.get('rule')!r} (lights {sn.get('train')})"
        )
    return None


def _compare_training(old: dict, new: dict) -> str | None:
    for key in _RESUME_MUST_MATCH:
        if key in old and old.get(key) != new.get(key):
            flag = "--" + key.replace("_", "-")
            return f"training setting {key} ({flag}): the run has {old.get(key)!r}, this command {new.get(key)!r}"
    return None


# --------------------------------------------------------------------------------------
# RNG state


def _rng_state(sampler, device: torch.device) -> dict:
    state: dict[str, Any] = {
        "device_type": device.type,
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "sampler": sampler.state_dict() if sampler is not None else None,
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _restore_rng(state: dict, sampler, device: torch.device, step: int, seed: int) -> None:
    """Restore the RNG states; across device types (a CUDA run resumed on the CPU) the
    sampler's generator cannot carry over, so it is reseeded from (seed, step) with a warning."""
    torch.set_rng_state(state["torch"].to(torch.uint8))
    np_state = state["numpy"]
    np.random.set_state((np_state[0], np.asarray(np_state[1], dtype=np.uint32), *np_state[2:]))
    saved_type = state.get("device_type", device.type)
    if saved_type != device.type:
        warnings.warn(
            f"resuming on {device.type} a run trained on {saved_type}: the batches from here on differ from "
            "those of an uninterrupted run",
            stacklevel=3,
        )
        if sampler is not None:
            sampler.generator.manual_seed(seed * 1_000_003 + step)
        return
    if sampler is not None and state.get("sampler") is not None:
        sampler.load_state_dict(state["sampler"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"].to(torch.uint8), device)


# --------------------------------------------------------------------------------------
# Ctrl-C


class _StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step.

    A second Ctrl-C raises :class:`KeyboardInterrupt` at once. Outside the main thread
    (where signal handlers cannot be set) Ctrl-C raises as usual.
    """

    def __init__(self) -> None:
        self.stop = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        if self.stop:
            raise KeyboardInterrupt
        self.stop = True
        console.print("[yellow]Ctrl-C: stopping after this step and saving the latest checkpoint (Ctrl-C again to abort)")

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# --------------------------------------------------------------------------------------
# files


def _write_json(path: Path, obj: Any) -> None:
    write_json_atomic(path, obj, default=str)


def _append_line(log, line: str, path: Path, latest: Path, good_step: int | None) -> None:
    """Append one line to the open log ``path``; a full disk (or another write error) is one
    line saying that the last checkpoint is kept, not an ``OSError`` traceback."""
    try:
        log.write(line + "\n")
        log.flush()
    except OSError as exc:
        kept = f"{latest} (step {good_step}) is kept" if good_step is not None else "no checkpoint was saved yet"
        raise output_error(exc, path, kept=kept) from None


def _trim_metrics(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resume starts from)."""
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line).get("step", 0) <= step:
                keep.append(line)
        except json.JSONDecodeError:
            continue  # a line cut off by a crash
    write_text_atomic(path, "".join(k + "\n" for k in keep))


def _open_tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise TrainingError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))


# --------------------------------------------------------------------------------------
# the loop


def _build_model(model_or_spec, seed: int):
    from ..zoo import build_from_spec

    if isinstance(model_or_spec, dict):
        torch.manual_seed(seed)
        return build_from_spec(model_or_spec)
    if isinstance(model_or_spec, torch.nn.Module):
        return model_or_spec
    raise TypeError(f"train() needs a model spec (dict) or a model, got {type(model_or_spec).__name__}")


def _attach_data(model, dataset, split: LightSplit, device: torch.device) -> None:
    idx = torch.as_tensor(np.asarray(split.train, dtype=np.int64))
    model.attach_training_data(dataset.images(idx).to(device), dataset.lights[idx].to(device, torch.float32))


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
    log_every: int = 100,
    resume: bool = False,
    progress: bool = True,
    schedule: str | None = None,
    warmup_steps: int | None = None,
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
    model's ``train_defaults``, else the global defaults (:func:`training_settings`).
    ``recipe`` names the recipe the run follows (:mod:`relightzoo.recipes`); it is recorded
    in the config (``config["recipe"]``) and in every checkpoint.
    """
    # Build the model with the run's seed so its initialisation is repeatable.
    np.random.seed(seed)
    net = _build_model(model, seed)
    settings = training_settings(net, steps=steps, batch_size=batch_size, lr=lr, schedule=schedule, warmup_steps=warmup_steps)
    steps, batch_size, lr = settings["steps"], settings["batch_size"], settings["lr"]
    schedule, warmup_steps = settings["schedule"], settings["warmup_steps"]
    if steps < 0:
        raise TrainingError(f"--steps must be 0 or more, got {steps}")
    if batch_size < 1:
        raise TrainingError(f"--batch-size must be at least 1, got {batch_size}")
    if log_every < 1:
        raise TrainingError(f"--log-every must be at least 1, got {log_every}")
    if schedule not in SCHEDULES:
        raise TrainingError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if warmup_steps < 0:
        raise TrainingError(f"--warmup-steps must be 0 or more, got {warmup_steps}")
    if checkpoint_every is None:
        checkpoint_every = max(log_every, math.ceil(max(steps, 1) / 10 / log_every) * log_every)
    if checkpoint_every < 1:
        raise TrainingError(f"--checkpoint-every must be at least 1, got {checkpoint_every}")
    world, dev = join(resolve_device(device), batch_size)  # a torchrun launch: this rank's place and device
    out = Path(out_dir)
    if isinstance(split, str):
        split = select_lights(split, dataset.lights)
    latest = out / LATEST
    if resume and not latest.exists() and not state_path(latest).exists():
        raise TrainingError(f"cannot resume {out}: it holds no {LATEST}; start a new run with --out instead")
    if not resume and not overwrite and latest.exists():
        raise TrainingError(f"{out} already holds a run; continue it with --resume {out} or choose another --out")

    net = net.to(dev)
    spec = _spec_of(net)
    training = {
        "steps": int(steps),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "optimizer": optimizer,
        "schedule": schedule,
        "warmup_steps": int(warmup_steps),
        "seed": int(seed),
        "checkpoint_every": int(checkpoint_every),
        "log_every": int(log_every),
        "device": str(dev),
        "world_size": world.size,
    }
    config = {
        "format_version": 1,
        "relightzoo_version": __version__,
        "spec": spec,
        "dataset": _dataset_json(dataset, split),
        "training": training,
    }
    if recipe is not None:
        config["recipe"] = str(recipe)
    if resume:
        _check_resume(out, config)
    # Everything that can refuse the run (the model's own checks of the training images
    # included) runs before the output folder exists, so a refused run leaves nothing behind.
    caps = capabilities(net)
    if caps.needs_images:
        _attach_data(net, dataset, split, dev)
    if caps.trainable and not caps.coordinate and not caps.draws_own_batches:
        raise TrainingError(
            f"model {_describe_spec(spec, 'model')} is trainable but is neither a coordinate model "
            "(forward(pixels, lights)) nor draws its own batches (training_batch(generator, batch_size)); "
            "set trainable = False on a model fitted in closed form (see docs/plugins.md)"
        )
    if caps.trainable and world.distributed and caps.draws_own_batches:
        raise TrainingError(
            f"model {_describe_spec(spec, 'model')} draws its own batches; data-parallel training "
            "(torchrun) splits (pixel, light) batches of coordinate models only"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not caps.trainable:
        return _save_untrained(net, config, out)
    return _fit(net, config, dataset, split, out, dev, resume=resume, progress=progress, tensorboard=tensorboard, world=world)


def _check_resume(out: Path, config: dict) -> None:
    """Raise :class:`TrainingError` naming the first setting the command changes from the run."""
    try:
        saved = resume_config(out / LATEST)
    except CheckpointError as exc:
        raise TrainingError(f"cannot resume {out}: {exc}") from None
    for diff in (
        _compare_spec(saved.get("spec"), config["spec"]),
        _compare_dataset(saved.get("dataset") or {}, config["dataset"]),
        _compare_training(saved.get("training") or {}, config["training"]),
    ):
        if diff:
            raise TrainingError(f"--resume {out} does not match this command: {diff}")


def _save_untrained(net, config: dict, out: Path) -> TrainResult:
    """A model with nothing to train: record the run and save it as latest and best."""
    config = dict(config, step=0)
    _write_json(out / CONFIG, config)
    save_checkpoint(out / LATEST, net, config)
    save_checkpoint(out / BEST, net, config)
    (out / METRICS).touch()
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


def _fit(
    net, config: dict, dataset, split: LightSplit, out: Path, dev: torch.device, *, resume: bool, progress: bool, tensorboard: bool, world: World
) -> TrainResult:
    from ..data import PixelLightSampler

    if dev.type == "cpu":
        keep_freed_memory()
    tr = config["training"]
    steps, batch_size, seed = tr["steps"], tr["batch_size"], tr["seed"]
    log_every, checkpoint_every = tr["log_every"], tr["checkpoint_every"]
    opt = create_optimizer(net, name=tr["optimizer"], lr=tr["lr"])
    sched = create_schedule(opt, schedule=tr["schedule"], steps=steps, warmup_steps=tr["warmup_steps"])
    if capabilities(net).draws_own_batches:
        sampler, step_fn = ModelBatches(net, batch_size, seed=seed, device=dev), model_train_step
    else:
        shard = world.shard(batch_size) if world.distributed else None
        sampler = PixelLightSampler(dataset, split.train, batch_size, seed=seed, device=dev, shard=shard)
        step_fn = train_step

    step, elapsed_before, best_loss, start_step, resumed_loss = 0, 0.0, math.inf, 0, None
    latest, best, metrics_path = out / LATEST, out / BEST, out / METRICS
    best_step: int | None = None
    if resume:
        if not world.is_main:
            world.barrier()  # rank 0 repairs the run folder first; the others then only read it
        point = resume_point(out, latest)
        _load_weights(state_path(latest), net, point.weights, point.config)
        if world.is_main:
            point.repair(net, latest, best)
            world.barrier()
        world.barrier()  # nobody writes until every rank has read its resume point
        net.train()
        state = point.state
        best_step = point.best_step
        for note in point.notes:
            console.print(f"[yellow]resume: {note}", soft_wrap=True)
        console.print(f"resuming {out} from step {point.step}", soft_wrap=True)
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        _restore_rng(state["rng"], sampler, dev, int(state["step"]), seed)
        step = start_step = int(state["step"])
        elapsed_before = float(state.get("elapsed", 0.0))
        best_loss = float(state.get("best_loss", math.inf))
        resumed_loss = (point.config.get("metrics") or {}).get("loss")
        if world.is_main:
            _trim_metrics(metrics_path, step)
    elif world.is_main:
        write_text_atomic(metrics_path, "")
    if sched is not None:
        sched.step_update(num_updates=step)
    if world.is_main:
        _write_json(out / CONFIG, dict(config, step=step))

    writer = _open_tensorboard(out) if tensorboard and world.is_main else None
    step_model = world.wrap(net, dev)  # DistributedDataParallel under torchrun, else net itself
    history: list[dict] = []
    last_good_step = start_step if resume else None
    net.train()

    def save(at_step: int, window_loss: float | None) -> None:
        """Write latest (+ resume state) and, when the interval's loss improved, best."""
        nonlocal best_loss, last_good_step, best_step
        if not bool(torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all()):
            _nonfinite(math.nan, at_step - 1, at_step, out, last_good_step, tr["lr"], what="the weights")
        if not world.is_main:  # rank 0 writes the files
            last_good_step = at_step
            return
        metrics = {"loss": window_loss, "psnr": psnr_from_mse(window_loss) if window_loss is not None else None}
        ckpt_config = dict(config, step=at_step, metrics=metrics)
        state = {
            "step": at_step,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "rng": _rng_state(sampler, dev),
            "elapsed": elapsed_before + (time.perf_counter() - t_start),
            "best_loss": best_loss,
        }
        improved = window_loss is not None and window_loss < best_loss
        if improved or not best.exists():
            best_step = at_step
        if improved:
            best_loss = window_loss
            state["best_loss"] = best_loss
        # The state goes first and holds the weights too, so it is a consistent (weights, state)
        # pair on its own: a kill before latest or best is written leaves them one step behind,
        # and resume rewrites them from the state (see recovery.py).
        state["best_step"] = best_step
        state["model"] = net.state_dict()
        save_state(state_path(latest), state, header={"step": at_step, "checkpoint": ckpt_config})
        save_checkpoint(latest, net, ckpt_config)
        if improved or not best.exists():
            save_checkpoint(best, net, ckpt_config)
        last_good_step = at_step

    loss_sum = torch.zeros((), device=dev)
    window_n, window_pause, window_t0 = 0, 0.0, time.perf_counter()
    ckpt_loss_sum, ckpt_n = 0.0, 0
    last_loss: float | None = resumed_loss if resume else None
    samples_per_s: float | None = None
    t_start = time.perf_counter()
    progress_every = max(1, min(log_every, 10))

    columns = ("[dim]loss[/] {task.fields[loss]}", "[dim]PSNR[/] {task.fields[psnr]}")
    from rich.progress import TextColumn

    bar = make_progress(*(TextColumn(c) for c in columns), disable=not (progress and world.is_main))
    interrupted = False
    in_update = False
    with bar, _StopFlag() as flag, world.open_log(metrics_path) as log:
        task = bar.add_task("training", total=steps, completed=step, loss="-", psnr="-")
        try:
            while step < steps:
                batch = sampler.sample()
                in_update = True
                loss = step_fn(step_model, opt, *batch)
                step += 1
                in_update = False
                if sched is not None:
                    sched.step_update(num_updates=step)
                loss_sum += loss
                window_n += 1

                stop = world.any(flag.stop, dev)  # every rank stops after the same step
                is_log = step % log_every == 0 or step == steps or stop
                is_ckpt = step % checkpoint_every == 0 or step == steps or stop
                if is_log or is_ckpt:
                    window_total = world.mean(loss_sum).item()  # the only host sync, on logging/checkpoint steps
                    if not math.isfinite(window_total):
                        _nonfinite(window_total, step - window_n, step, out, last_good_step, tr["lr"])
                    ckpt_loss_sum += window_total
                    ckpt_n += window_n
                    if is_log:
                        mean = window_total / window_n
                        now = time.perf_counter()
                        samples_per_s = window_n * batch_size / max(now - window_t0 - window_pause, 1e-9)
                        last_loss = mean
                        record = {
                            "step": step,
                            "loss": mean,
                            "psnr": psnr_from_mse(mean),
                            "lr": current_lr(opt),
                            "elapsed": round(elapsed_before + now - t_start, 4),
                            "samples_per_s": round(samples_per_s, 1),
                        }
                        _append_line(log, json.dumps(record), metrics_path, latest, last_good_step)
                        history.append(record)
                        if writer is not None:
                            for key in ("loss", "psnr", "lr", "samples_per_s"):
                                writer.add_scalar(f"train/{key}", record[key], step)
                        bar.update(task, completed=step, loss=f"{mean:.5f}", psnr=f"{record['psnr']:.2f} dB")
                        loss_sum.zero_()
                        window_n, window_pause, window_t0 = 0, 0.0, time.perf_counter()
                    if is_ckpt:
                        t_save = time.perf_counter()
                        save(step, ckpt_loss_sum / ckpt_n)
                        window_pause += time.perf_counter() - t_save
                        # A checkpoint inside a logging window: that window's losses so far belong
                        # to this checkpoint interval, so they are subtracted from the next one.
                        ckpt_loss_sum, ckpt_n = (0.0, 0) if is_log else (-window_total, -window_n)
                    if stop:
                        interrupted = True
                        break
                elif step % progress_every == 0:
                    bar.update(task, completed=step)
        except KeyboardInterrupt:
            interrupted = True
            if in_update or flag.stop:
                # Inside an update the weights may be half-stepped; a second Ctrl-C means "abort
                # now". Either way the last checkpoint stays the latest.
                kept = (
                    f"{latest} (step {last_good_step}) is the latest checkpoint"
                    if last_good_step is not None
                    else "no checkpoint was saved yet"
                )
                console.print(f"[yellow]interrupted without saving; {kept}")
            else:
                window_total = loss_sum.item()
                if not math.isfinite(window_total):
                    _nonfinite(window_total, step - window_n, step, out, last_good_step, tr["lr"])
                count = ckpt_n + window_n
                save(step, (ckpt_loss_sum + window_total) / count if count else None)
        finally:
            if writer is not None:
                writer.close()
    elapsed = elapsed_before + time.perf_counter() - t_start
    net.eval()
    if interrupted:
        if last_good_step is None:
            console.print(f"[yellow]interrupted at step {step} of {steps}; no checkpoint was saved")
            raise TrainingInterrupted(0, steps, None, out)
        console.print(f"[yellow]interrupted: saved {latest} at step {last_good_step} of {steps}")
        raise TrainingInterrupted(last_good_step, steps, latest, out)
    if steps == start_step and not latest.exists():  # a zero-step run still leaves a checkpoint
        save(step, None)
    if world.is_main:
        _write_json(out / CONFIG, dict(config, step=step))
    world.finish()
    return TrainResult(
        model=net,
        config=dict(config, step=step),
        out_dir=out,
        step=step,
        steps=steps,
        loss=last_loss,
        psnr=psnr_from_mse(last_loss) if last_loss is not None else None,
        best_loss=best_loss if math.isfinite(best_loss) else None,
        latest=latest,
        best=best,
        elapsed=elapsed,
        samples_per_s=samples_per_s,
        resumed_from=start_step,
        history=history,
    )


def train_step(model, optimizer, pixels: torch.Tensor, lights: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
    """One optimiser step on a batch; returns the loss as a detached 0-d tensor (no host sync).

    The loss is the MSE between the model's output and ``2 * rgb - 1`` (``rgb`` in [0, 1] is
    mapped in place: the sampler hands out a fresh tensor each batch).
    """
    return model_train_step(model, optimizer, pixels, lights, rgb.mul_(2.0).sub_(1.0))


def model_train_step(model, optimizer, *batch: torch.Tensor) -> torch.Tensor:
    """One optimiser step on a batch a model drew itself (``training_batch``): ``batch`` is
    ``(*inputs, target)`` with ``target`` in [-1, 1]; the loss is the MSE between
    ``model(*inputs)`` and ``target``, as for coordinate models. Returns the detached loss."""
    *inputs, target = batch
    loss = F.mse_loss(model(*inputs), target)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


class ModelBatches:
    """The batch source of a model that draws its own batches (an image model).

    Such a model offers ``training_batch(generator, batch_size) -> (*inputs, target)``, with
    ``target`` in [-1, 1] and ``forward(*inputs)`` giving the prediction on the same scale;
    ``batch_size`` counts target pixels, like the (pixel, light) samples of a coordinate
    model. This wraps it with a seeded generator and the sampler's ``sample`` /
    ``state_dict`` / ``load_state_dict``, so checkpoints, resume and the logs work unchanged.
    """

    def __init__(self, model, batch_size: int, *, seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.model = model
        self.batch_size = int(batch_size)
        self.generator = torch.Generator(device=torch.device(device))
        self.generator.manual_seed(int(seed))

    def sample(self) -> tuple[torch.Tensor, ...]:
        """One batch, ``(*inputs, target)``."""
        return tuple(self.model.training_batch(self.generator, self.batch_size))

    def state_dict(self) -> dict:
        """The generator state and the batch size, to resume the batch sequence exactly."""
        return {"generator": self.generator.get_state().clone(), "batch_size": self.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict`."""
        if int(state["batch_size"]) != self.batch_size:
            raise TrainingError(f"batch state was saved with batch size {int(state['batch_size'])}, not {self.batch_size}")
        self.generator.set_state(torch.as_tensor(state["generator"]).to(torch.uint8).cpu())


def _nonfinite(
    value: float, first: int, last: int, out: Path, good_step: int | None, lr: float, *, what: str = "the training loss"
) -> None:
    kept = (
        f"kept the last good checkpoint {out / LATEST} (step {good_step})"
        if good_step is not None
        else "no checkpoint was saved before it"
    )
    raise TrainingError(
        f"{what} became {value} between steps {first + 1} and {last}; stopped and {kept}. "
        f"Try a lower --lr (now {lr:g}, e.g. {lr / 10:g}), a --schedule cosine with --warmup-steps, "
        "or smaller first-layer frequencies (--activation-arg first_omega_0=...)"
    )
