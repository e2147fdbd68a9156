"""Running the cells of an ablation grid: train, evaluate, record; in process or in parallel.

Each cell trains with :func:`relightzoo.train.train` into ``DIR/cells/<name>/`` (no
progress bars), is scored with the held-out-light protocol of
:func:`relightzoo.evaluate.evaluate`, and its record is written last, as
``DIR/cells/<name>/result.json``: a cell is finished exactly when that file exists, so a
grid stopped half-way resumes with the cells that lack it. An unfinished cell continues
from its latest checkpoint when it has one that matches, else it trains from scratch.

A cell that fails with a user-facing error (a non-finite loss, say) is recorded as
``failed`` with the message and counts as finished: running it again would fail the same
way. ``jobs > 1`` runs the trained cells in that many worker processes (a spawn-context
:class:`~concurrent.futures.ProcessPoolExecutor`), each limited to ``cpus // jobs`` torch
threads so the workers do not fight over cores; the blend rows always run first in this
process (they take a second, and every later row is compared with them). Any other
:class:`CellPool` (Ray tasks: :mod:`relightzoo.ablate.ray_cells`) runs every cell through
the same :func:`run_in_worker`, the blend rows first.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Protocol

from ..util.atomic import write_json_atomic
from ..errors import CheckpointError, RelightzooError, TooFewLightsError
from .grid import Cell, Grid

__all__ = [
    "CELLS",
    "CellPool",
    "RESULT",
    "EVALUATION",
    "cell_dir",
    "read_result",
    "run_cell",
    "run_grid",
    "run_in_worker",
    "cpu_count",
    "worker_threads",
]

CELLS = "cells"
"""Sub-folder of the results folder that holds one run folder per cell."""

RESULT = "result.json"
"""A cell's record, written when it is finished."""

EVALUATION = "evaluation.json"
"""A cell's full evaluation (per-light scores), beside its record."""

Event = Callable[[str, Cell, "dict[str, Any] | None"], None]
"""``on_event(kind, cell, record)``: kind is ``skip`` (finished before), ``start`` or ``done``."""


def cell_dir(out: str | Path, cell: Cell) -> Path:
    """The run folder of ``cell`` under the results folder ``out``."""
    return Path(out) / CELLS / cell.name


def read_result(out: str | Path, cell: Cell) -> dict[str, Any] | None:
    """The record of a finished cell, or None when it is not finished (or its file is cut off)."""
    path = cell_dir(out, cell) / RESULT
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) and record.get("name") == cell.name else None


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(jobs: int) -> int:
    """Torch threads per worker when ``jobs`` cells run side by side: ``cpus // jobs``, at least 1."""
    return max(1, cpu_count() // max(1, jobs))


def _write_json(path: Path, obj: Any) -> None:
    write_json_atomic(path, obj, allow_nan=False, default=_plain)


def _plain(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def model_settings(grid: Grid, model: str) -> dict[str, Any]:
    """The training settings of ``model``'s cells: the grid's, or where it leaves one unset,
    the model's ``train_defaults``, else the global defaults."""
    from ..train import training_settings
    from ..zoo import get_plugin

    return training_settings(get_plugin("model", model).factory, **grid.training_overrides())


def cell_settings(grid: Grid, cell: Cell):
    """The :class:`~relightzoo.train.TrainingSettings` ``cell`` trains with (checked as
    :func:`relightzoo.train.train` checks them): its model's (:func:`model_settings`), its
    seed, a log line every hundredth of the run, and no steps for a baseline row."""
    from ..train import TrainingSettings
    from ..zoo import get_plugin

    chosen = model_settings(grid, cell.model)
    log_every = max(1, chosen["steps"] // 100)
    if cell.baseline:
        chosen["steps"] = 0
    return TrainingSettings.resolve(get_plugin("model", cell.model).factory, seed=cell.seed, log_every=log_every, **chosen)


def _can_resume(folder: Path, spec: dict, settings, dataset, split) -> bool:
    """Whether ``folder`` holds a checkpoint (with resume state) that :func:`relightzoo.train.train`
    would resume for this cell: the same comparison (:func:`relightzoo.train.state.run_difference`)
    of model, dataset, training lights and settings, and no more steps than the cell's."""
    from ..train import LATEST, read_config, state_path
    from ..train.state import run_config, run_difference

    latest = folder / LATEST
    if not (latest.is_file() and state_path(latest).is_file()):
        return False
    try:
        config = read_config(latest)
    except CheckpointError:
        return False
    wanted = run_config(spec, dataset, split, settings)
    return run_difference(config, wanted) is None and int(config.get("step", 0)) <= settings.steps


def _base_record(cell: Cell, spec: dict | None) -> dict[str, Any]:
    return {**cell.to_json(), "spec": spec}


def run_cell(grid: Grid, cell: Cell, dataset, split, out: str | Path, *, device: str = "auto") -> dict[str, Any]:
    """Train and evaluate one cell; write and return its record.

    The record holds the scores over all test lights and inside the cap (``eval``), the
    PSNR of renders at the training lights (``train_psnr``), the last logged training loss,
    the wall times of training (for a model fitted in closed form, of its fit and save) and
    evaluation, the parameter count and where the checkpoint
    and metrics are (relative to ``out``).
    """
    import torch

    from ..evaluate import evaluate, score_model
    from ..lights import LightSplit
    from ..zoo.capabilities import capabilities
    from ..train import LATEST, METRICS, train
    from ..util.devices import resolve_device

    device = str(resolve_device(device))  # "auto" -> cpu or cuda, which evaluation needs spelled out

    folder = cell_dir(out, cell)
    folder.mkdir(parents=True, exist_ok=True)
    record = _base_record(cell, None)
    try:
        spec = grid.spec(cell, dataset.lights[split.train])
        record["spec"] = spec
        settings = cell_settings(grid, cell)
        resume = not cell.baseline and _can_resume(folder, spec, settings, dataset, split)
        t_fit = time.perf_counter()
        result = train(
            dataset,
            split,
            spec,
            device=device,
            out_dir=folder,
            resume=resume,
            overwrite=not resume,
            progress=False,
            recipe=grid.recipe,
            **settings.train_kwargs(),
        )
        fit_s = time.perf_counter() - t_fit
        model = result.model
        t0 = time.perf_counter()
        evaluation = evaluate(model, dataset, split, baseline=False, device=device, progress=False)
        train_split = LightSplit(
            rule=split.rule, train=split.train, test=split.train, cap=split.cap, in_cap=split.train, held_out=False
        )
        on_train = score_model(model, dataset, train_split, device=device, progress=False, label="training lights")
        eval_s = time.perf_counter() - t0
    except TooFewLightsError as exc:
        # a baseline fit that needs more training lights than the rule gives is not a failure
        record.update(status="skipped" if cell.baseline else "failed", error=str(exc))
        _write_json(folder / RESULT, record)
        return record
    except RelightzooError as exc:
        record.update(status="failed", error=str(exc))
        _write_json(folder / RESULT, record)
        return record
    _write_json(folder / EVALUATION, evaluation)
    scores = evaluation["results"]["model"]
    params = sum(p.numel() for p in model.parameters())
    record.update(
        status="done",
        error=None,
        steps=int(result.step),
        params=int(params),
        eval={"all": scores["all"], "in_cap": scores["in_cap"], "render_ms": scores["render_ms"]},
        train_psnr=on_train["all"]["psnr"],
        train_ssim=on_train["all"]["ssim"],
        loss=_finite(result.loss),
        loss_psnr=_finite(result.psnr),
        train_s=round(float(result.elapsed) if capabilities(model).trainable else fit_s, 3),
        eval_s=round(eval_s, 3),
        wall_s=round(float(result.elapsed) + eval_s, 3),
        threads=torch.get_num_threads(),
        checkpoint=str((folder / LATEST).relative_to(out)),
        metrics=str((folder / METRICS).relative_to(out)),
    )
    _write_json(folder / RESULT, record)
    return record


# --------------------------------------------------------------------------------------
# worker processes

_DATASETS: dict[str, Any] = {}


def _init_worker(threads: int) -> None:
    """Runs once in each worker: ignore Ctrl-C outside training (the training loop installs
    its own handler, which saves the latest checkpoint), and limit torch's threads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(threads)


def run_in_worker(grid_json: dict, cell_json: dict, out: str, device: str) -> dict[str, Any]:
    """Worker side of :func:`run_grid` (a worker process or a Ray task): load the dataset
    once per process, run one cell with :func:`run_cell`; ``interrupted`` when Ctrl-C stopped it."""
    from ..data import load_dataset
    from ..lights import select_lights

    grid, cell = Grid.from_json(grid_json), Cell.from_json(cell_json)
    dataset = _DATASETS.get(grid.data)
    if dataset is None:
        dataset = _DATASETS[grid.data] = load_dataset(grid.data)
    split = select_lights(cell.lights, dataset.lights)
    try:
        return run_cell(grid, cell, dataset, split, out, device=device)
    except KeyboardInterrupt:  # the training loop saved the latest checkpoint
        return {**cell.to_json(), "status": "interrupted"}


def run_grid(
    grid: Grid,
    out: str | Path,
    dataset,
    splits: dict[str, Any],
    *,
    jobs: int = 1,
    device: str = "auto",
    on_event: Event | None = None,
    pool: CellPool | None = None,
) -> dict[str, dict[str, Any]]:
    """Run every unfinished cell of ``grid``; return ``{cell name: record}`` in grid order.

    ``splits`` maps each light rule to its :class:`~relightzoo.lights.LightSplit` on
    ``dataset`` (:func:`relightzoo.ablate.grid.check_rules`). Finished cells are read back,
    not rerun. ``on_event`` hears about each cell as it is skipped, started and done.
    Ctrl-C stops after the running cells save their latest checkpoints and raises
    :class:`KeyboardInterrupt`. ``pool`` (a :class:`CellPool`, such as
    :class:`relightzoo.ablate.ray_cells.RayCells`) runs every cell, ``jobs`` at a time and the
    blend rows first, instead of this process and a local process pool.
    """
    emit = on_event or (lambda kind, cell, record: None)
    cells = grid.cells()
    records: dict[str, dict[str, Any]] = {}
    pending: list[Cell] = []
    for cell in cells:
        record = read_result(out, cell)
        if record is not None:
            records[cell.name] = record
            emit("skip", cell, record)
        else:
            pending.append(cell)
    first = [c for c in pending if c.baseline]
    rest = [c for c in pending if not c.baseline]
    if pool is not None:  # every cell goes to the pool, the blend rows first (later rows compare with them)
        for group in (first, rest):
            if group:
                _run_parallel(grid, group, out, pool=pool, jobs=jobs, device=device, emit=emit, records=records)
        return {c.name: records[c.name] for c in cells if c.name in records}
    if jobs <= 1 or len(rest) <= 1:
        first, rest = first + rest, []
    for cell in first:
        emit("start", cell, None)
        records[cell.name] = run_cell(grid, cell, dataset, splits[cell.lights], out, device=device)
        emit("done", cell, records[cell.name])
    if rest:
        pool = ProcessPoolExecutor(
            max_workers=min(jobs, len(rest)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(worker_threads(jobs),),
        )
        _run_parallel(grid, rest, out, pool=pool, jobs=jobs, device=device, emit=emit, records=records)
    return {c.name: records[c.name] for c in cells if c.name in records}


class CellPool(Protocol):
    """Where :func:`run_grid` sends trained cells: ``submit(run_in_worker, *args)`` returns a
    :class:`~concurrent.futures.Future` of the cell's record, as a process pool's does, and
    ``shutdown(wait=True, cancel_futures=False)`` stops it (cancelled cells save their
    latest checkpoints first). :class:`~concurrent.futures.ProcessPoolExecutor` is one."""

    def submit(self, fn: Callable[..., dict[str, Any]], /, *args: Any) -> Future: ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None: ...


def _run_parallel(
    grid: Grid, cells: list[Cell], out, *, pool: CellPool, jobs: int, device: str, emit: Event, records: dict
) -> None:
    """Keep ``jobs`` cells running in ``pool`` until every cell of ``cells`` has its record."""
    workers = min(jobs, len(cells))
    grid_json = grid.to_json()
    queue = list(cells)
    running: dict[Any, Cell] = {}
    interrupted = False
    try:
        while queue or running:
            while queue and len(running) < workers:  # submit as workers free up, so "start" is true
                cell = queue.pop(0)
                running[pool.submit(run_in_worker, grid_json, cell.to_json(), str(out), device)] = cell
                emit("start", cell, None)
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                cell = running.pop(fut)
                record = fut.result()
                if record.get("status") == "interrupted":
                    interrupted = True
                    continue
                records[cell.name] = record
                emit("done", cell, record)
            if interrupted:
                raise KeyboardInterrupt
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)

