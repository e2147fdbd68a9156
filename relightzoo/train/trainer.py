"""The trainer: one training run of a trainable model, start to finish.

:class:`Trainer` owns a run's optimiser and schedule, its batch source (a
:class:`~relightzoo.data.PixelLightSampler` of (pixel, light) samples, or the model's own
batches through :class:`~relightzoo.train.step.ModelBatches`) and its place in the run folder.
:meth:`Trainer.start` begins a new run or resumes one (:mod:`.recovery` finds where),
:meth:`Trainer.run` is the loop: one step at a time (:mod:`.step`), the loss summed on the
device and read back only on logging and checkpoint steps (:class:`LossWindow`), a record a
logging step (:mod:`.log`), latest/best and the resume state a checkpoint step
(:meth:`Trainer.save`), and Ctrl-C turned into a saved checkpoint. :func:`relightzoo.train.train`
sets a run up and hands it here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..console import console, make_progress
from ..errors import TrainingError
from ..lights import LightSplit
from ..metrics import psnr_from_mse
from ..util.atomic import write_json_atomic
from ..util.devices import keep_freed_memory
from ..zoo.capabilities import capabilities
from .checkpoint import _load_weights, save_checkpoint, save_state, state_path
from .distributed import World
from .log import MetricsLog, StopFlag, open_tensorboard, start_metrics, trim_metrics
from .optim import create_optimizer, create_schedule, current_lr
from .recovery import resume_point
from .settings import TrainingSettings
from .state import BEST, CONFIG, LATEST, METRICS, restore_rng, rng_state
from .step import ModelBatches, model_train_step, train_step

__all__ = ["Trainer", "TrainResult", "TrainingInterrupted", "LossWindow", "write_config"]


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


def write_config(path: Path, config: dict) -> None:
    """Write a run's ``config.json`` (atomically; paths and other objects as text)."""
    write_json_atomic(path, config, default=str)


class Trainer:
    """One training run of a trainable model: its optimiser and batches, where it starts
    (:meth:`start`: fresh or resumed), how it saves (:meth:`save`) and the loop (:meth:`run`)."""

    def __init__(self, net, config: dict, settings: TrainingSettings, dataset, split: LightSplit, out: Path, dev: torch.device, world: World) -> None:
        from ..data import PixelLightSampler

        if dev.type == "cpu":
            keep_freed_memory()
        self.net, self.config, self.settings, self.out, self.dev, self.world = net, config, settings, out, dev, world
        self.opt = create_optimizer(net, name=settings.optimizer, lr=settings.lr)
        self.sched = create_schedule(self.opt, schedule=settings.schedule, steps=settings.steps, warmup_steps=settings.warmup_steps)
        if capabilities(net).draws_own_batches:
            self.sampler, self.step_fn = ModelBatches(net, settings.batch_size, seed=settings.seed, device=dev), model_train_step
        else:
            shard = world.shard(settings.batch_size) if world.distributed else None
            self.sampler = PixelLightSampler(dataset, split.train, settings.batch_size, seed=settings.seed, device=dev, shard=shard)
            self.step_fn = train_step
        self.latest, self.best, self.metrics_path = out / LATEST, out / BEST, out / METRICS
        self.step = self.start_step = 0
        self.elapsed_before = 0.0
        self.t_start = time.perf_counter()  # reset when the loop starts; set here so save() can always read it
        self.best_loss = math.inf
        self.best_step: int | None = None
        self.last_good_step: int | None = None  # the step of the checkpoint on disk
        self.last_loss: float | None = None

    # -- where the run starts ----------------------------------------------------------------
    def start(self, *, resume: bool) -> None:
        """Resume the run in the output folder, or start its log; record the config."""
        world = self.world
        if resume:
            self._resume()
        elif world.is_main:
            start_metrics(self.metrics_path)
        if self.sched is not None:
            self.sched.step_update(num_updates=self.step)
        if world.is_main:
            write_config(self.out / CONFIG, dict(self.config, step=self.step))

    def _resume(self) -> None:
        world, net = self.world, self.net
        if not world.is_main:
            world.barrier()  # rank 0 repairs the run folder first; the others then only read it
        point = resume_point(self.out, self.latest)
        _load_weights(state_path(self.latest), net, point.weights, point.config)
        if world.is_main:
            point.repair(net, self.latest, self.best)
            world.barrier()
        world.barrier()  # nobody writes until every rank has read its resume point
        net.train()
        state = point.state
        self.best_step = point.best_step
        for note in point.notes:
            console.print(f"[yellow]resume: {note}", soft_wrap=True)
        console.print(f"resuming {self.out} from step {point.step}", soft_wrap=True)
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state.get("scheduler") is not None:
            self.sched.load_state_dict(state["scheduler"])
        restore_rng(state["rng"], self.sampler, self.dev, int(state["step"]), self.settings.seed)
        self.step = self.start_step = self.last_good_step = int(state["step"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        self.best_loss = float(state.get("best_loss", math.inf))
        self.last_loss = (point.config.get("metrics") or {}).get("loss")
        if world.is_main:
            trim_metrics(self.metrics_path, self.step)

    # -- saving --------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Training seconds of the whole run, earlier calls included."""
        return self.elapsed_before + (time.perf_counter() - self.t_start)

    def save(self, at_step: int, window_loss: float | None) -> None:
        """Write latest (+ resume state) and, when the interval's loss improved, best."""
        net = self.net
        if not bool(torch.stack([torch.isfinite(p).all() for p in net.parameters()]).all()):
            self.nonfinite(math.nan, at_step - 1, at_step, what="the weights")
        if not self.world.is_main:  # rank 0 writes the files
            self.last_good_step = at_step
            return
        metrics = {"loss": window_loss, "psnr": psnr_from_mse(window_loss) if window_loss is not None else None}
        ckpt_config = dict(self.config, step=at_step, metrics=metrics)
        state = {
            "step": at_step,
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict() if self.sched is not None else None,
            "rng": rng_state(self.sampler, self.dev),
            "elapsed": self.elapsed(),
            "best_loss": self.best_loss,
        }
        improved = window_loss is not None and window_loss < self.best_loss
        if improved or not self.best.exists():
            self.best_step = at_step
        if improved:
            self.best_loss = window_loss
            state["best_loss"] = window_loss
        # The state goes first and holds the weights too, so it is a consistent (weights, state)
        # pair on its own: a kill before latest or best is written leaves them one step behind,
        # and resume rewrites them from the state (see recovery.py).
        state["best_step"] = self.best_step
        state["model"] = net.state_dict()
        save_state(state_path(self.latest), state, header={"step": at_step, "checkpoint": ckpt_config})
        save_checkpoint(self.latest, net, ckpt_config)
        if improved or not self.best.exists():
            save_checkpoint(self.best, net, ckpt_config)
        self.last_good_step = at_step

    def nonfinite(self, value: float, first: int, last: int, *, what: str = "the training loss") -> None:
        """Stop the run: ``what`` became ``value`` between steps ``first + 1`` and ``last``."""
        good, lr = self.last_good_step, self.settings.lr
        kept = (
            f"kept the last good checkpoint {self.latest} (step {good})" if good is not None else "no checkpoint was saved before it"
        )
        raise TrainingError(
            f"{what} became {value} between steps {first + 1} and {last}; stopped and {kept}. "
            f"Try a lower --lr (now {lr:g}, e.g. {lr / 10:g}), a --schedule cosine with --warmup-steps, "
            "or smaller first-layer frequencies (--activation-arg first_omega_0=...)"
        )

    # -- the loop ------------------------------------------------------------------------------
    def run(self, *, progress: bool, tensorboard: bool) -> TrainResult:
        """Train from :attr:`step` to the settings' steps; save on Ctrl-C; return the result."""
        world, dev, s = self.world, self.dev, self.settings
        writer = open_tensorboard(self.out) if tensorboard and world.is_main else None
        step_model = world.wrap(self.net, dev)  # DistributedDataParallel under torchrun, else net itself
        self.net.train()
        window = LossWindow(torch.zeros((), device=dev))
        samples_per_s: float | None = None
        self.t_start = time.perf_counter()
        progress_every = max(1, min(s.log_every, 10))

        from rich.progress import TextColumn

        columns = ("[dim]loss[/] {task.fields[loss]}", "[dim]PSNR[/] {task.fields[psnr]}")
        bar = make_progress(*(TextColumn(c) for c in columns), disable=not (progress and world.is_main))
        interrupted = in_update = False
        with bar, StopFlag() as flag, world.open_log(self.metrics_path) as fh:
            log = MetricsLog(fh, self.metrics_path, self.latest, writer)
            task = bar.add_task("training", total=s.steps, completed=self.step, loss="-", psnr="-")
            try:
                while self.step < s.steps:
                    batch = self.sampler.sample()
                    in_update = True
                    loss = self.step_fn(step_model, self.opt, *batch, precision=s.precision_used)
                    self.step += 1
                    in_update = False
                    if self.sched is not None:
                        self.sched.step_update(num_updates=self.step)
                    window.add(loss)

                    stop = world.any(flag.stop, dev)  # every rank stops after the same step
                    is_log = self.step % s.log_every == 0 or self.step == s.steps or stop
                    is_ckpt = self.step % s.checkpoint_every == 0 or self.step == s.steps or stop
                    if is_log or is_ckpt:
                        total = self._window_total(window, world.mean(window.loss_sum).item())  # the only host sync
                        if is_log:
                            record, samples_per_s = self._record(window, total)
                            log.write(record, self.last_good_step)
                            bar.update(task, completed=self.step, loss=f"{record['loss']:.5f}", psnr=f"{record['psnr']:.2f} dB")
                            window.restart()
                        if is_ckpt:
                            t_save = time.perf_counter()
                            self.save(self.step, window.ckpt_sum / window.ckpt_n)
                            window.pause += time.perf_counter() - t_save
                            window.checkpointed(is_log, total)
                        if stop:
                            interrupted = True
                            break
                    elif self.step % progress_every == 0:
                        bar.update(task, completed=self.step)
            except KeyboardInterrupt:
                interrupted = True
                self._on_ctrl_c(window, aborted=in_update or flag.stop)
            finally:
                log.close()
        return self._finish(interrupted, samples_per_s, log.history)

    def _window_total(self, window: "LossWindow", total: float) -> float:
        """Check the summed loss of the window and add it to the checkpoint interval."""
        if not math.isfinite(total):
            self.nonfinite(total, self.step - window.n, self.step)
        window.ckpt_sum += total
        window.ckpt_n += window.n
        return total

    def _record(self, window: "LossWindow", total: float) -> tuple[dict, float]:
        """The metrics record of a logging step, and the samples a second of its window."""
        mean = total / window.n
        now = time.perf_counter()
        samples_per_s = window.n * self.settings.batch_size / max(now - window.t0 - window.pause, 1e-9)
        self.last_loss = mean
        record = {
            "step": self.step,
            "loss": mean,
            "psnr": psnr_from_mse(mean),
            "lr": current_lr(self.opt),
            "elapsed": round(self.elapsed_before + now - self.t_start, 4),
            "samples_per_s": round(samples_per_s, 1),
        }
        return record, samples_per_s

    def _on_ctrl_c(self, window: "LossWindow", *, aborted: bool) -> None:
        """Ctrl-C between steps saves the latest checkpoint; inside an update (the weights may be
        half-stepped) or on a second Ctrl-C ("abort now") the last checkpoint stays the latest."""
        if aborted:
            kept = (
                f"{self.latest} (step {self.last_good_step}) is the latest checkpoint"
                if self.last_good_step is not None
                else "no checkpoint was saved yet"
            )
            console.print(f"[yellow]interrupted without saving; {kept}")
            return
        total = window.loss_sum.item()
        if not math.isfinite(total):
            self.nonfinite(total, self.step - window.n, self.step)
        count = window.ckpt_n + window.n
        self.save(self.step, (window.ckpt_sum + total) / count if count else None)

    def _finish(self, interrupted: bool, samples_per_s: float | None, history: list[dict]) -> TrainResult:
        elapsed = self.elapsed()
        self.net.eval()
        steps = self.settings.steps
        if interrupted:
            if self.last_good_step is None:
                console.print(f"[yellow]interrupted at step {self.step} of {steps}; no checkpoint was saved")
                raise TrainingInterrupted(0, steps, None, self.out)
            console.print(f"[yellow]interrupted: saved {self.latest} at step {self.last_good_step} of {steps}")
            raise TrainingInterrupted(self.last_good_step, steps, self.latest, self.out)
        if steps == self.start_step and not self.latest.exists():  # a zero-step run still leaves a checkpoint
            self.save(self.step, None)
        if self.world.is_main:
            write_config(self.out / CONFIG, dict(self.config, step=self.step))
        self.world.finish()
        return TrainResult(
            model=self.net,
            config=dict(self.config, step=self.step),
            out_dir=self.out,
            step=self.step,
            steps=steps,
            loss=self.last_loss,
            psnr=psnr_from_mse(self.last_loss) if self.last_loss is not None else None,
            best_loss=self.best_loss if math.isfinite(self.best_loss) else None,
            latest=self.latest,
            best=self.best,
            elapsed=elapsed,
            samples_per_s=samples_per_s,
            resumed_from=self.start_step,
            history=history,
        )


class LossWindow:
    """The loss of the steps since the last log, summed on the device (no host sync a step),
    and the sum and count of the current checkpoint interval."""

    def __init__(self, loss_sum: torch.Tensor) -> None:
        self.loss_sum = loss_sum
        self.ckpt_sum, self.ckpt_n = 0.0, 0
        self.restart()

    def add(self, loss: torch.Tensor) -> None:
        self.loss_sum += loss
        self.n += 1

    def restart(self) -> None:
        """A new logging window starts now."""
        self.loss_sum.zero_()
        self.n, self.pause, self.t0 = 0, 0.0, time.perf_counter()

    def checkpointed(self, logged: bool, total: float) -> None:
        """A checkpoint was saved. Inside a logging window, that window's losses so far belong
        to this checkpoint interval, so they are subtracted from the next one."""
        self.ckpt_sum, self.ckpt_n = (0.0, 0) if logged else (-total, -self.n)
