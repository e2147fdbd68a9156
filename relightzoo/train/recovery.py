"""Where a stopped run continues: the newest consistent (weights, resume state) pair on disk.

A training run saves, at each checkpoint step, first the resume state
``latest.state.safetensors`` and then ``latest.safetensors`` and (when the loss improved)
``best.safetensors``, each written atomically (:mod:`relightzoo.util.atomic`). The resume state
carries the model's weights, the checkpoint config and the step beside the optimiser, RNG and
sampler states, so it is a consistent pair on its own: whatever instant the process is killed
at, the state file on disk is the previous one or the new one, whole. :func:`resume_point`
reads it, says when ``latest`` or ``best`` lag behind it (a kill between two writes), and
:meth:`ResumePoint.repair` rewrites them from the state, so the resumed run continues exactly
as an uninterrupted one would from that step. Temporary files a kill left behind are removed.

Runs written before the state held the weights (no ``model`` entry) resume from
``latest.safetensors`` when both record the same step, as they always did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..util.atomic import remove_stale_temps
from ..errors import CheckpointError, TrainingError
from .checkpoint import load_state, read_checkpoint, read_config, save_checkpoint, state_path

__all__ = ["ResumePoint", "resume_point", "resume_config"]


@dataclass
class ResumePoint:
    """The step a run continues from, the state to restore, and what was done to get there.

    ``weights`` is the model's state dict at ``step``; ``config`` the checkpoint config saved
    with it; ``notes`` are one-line messages for the user (stray files removed, checkpoints
    rewritten).
    """

    out: Path
    step: int
    state: dict
    weights: dict[str, torch.Tensor]
    config: dict
    best_step: int | None
    notes: list[str] = field(default_factory=list)

    def repair(self, model: torch.nn.Module, latest: Path, best: Path) -> None:
        """Rewrite ``latest`` (and ``best``, when the state says it improved at this step) from
        ``model`` (the state's weights loaded) when they are missing or at another step."""
        if _step_of(latest) != self.step:
            was = _step_of(latest)
            save_checkpoint(latest, model, self.config)
            self.notes.append(
                f"{latest.name} was {'missing' if was is None else f'at step {was}'}; "
                f"rewrote it from the resume state at step {self.step}"
            )
        if self.best_step == self.step and _step_of(best) != self.step:
            save_checkpoint(best, model, self.config)
            self.notes.append(f"rewrote {best.name} from the resume state at step {self.step} (its best loss)")


def _step_of(path: Path) -> int | None:
    """The step a checkpoint records, or None when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        step = read_config(path).get("step")
    except CheckpointError:
        return None
    return step if isinstance(step, int) else None


def resume_config(latest: Path) -> dict:
    """The checkpoint config a resume continues from (the resume state's, else ``latest``'s)."""
    state_file = state_path(latest)
    if state_file.is_file():
        header = read_config(state_file)
        if isinstance(header.get("checkpoint"), dict):
            return header["checkpoint"]
    return read_config(latest)


def resume_point(out: Path, latest: Path) -> ResumePoint:
    """Find the newest consistent (weights, state) pair in the run folder ``out``.

    Removes temporary files left by a killed write first. Raises :class:`TrainingError` when
    no consistent pair exists, saying why.
    """
    notes = []
    removed = remove_stale_temps(out)
    if removed:
        notes.append(
            f"removed {len(removed)} temporary file{'s' if len(removed) != 1 else ''} left by an interrupted write "
            f"({', '.join(p.name for p in removed[:3])}{' ...' if len(removed) > 3 else ''})"
        )
    state_file = state_path(latest)
    if not state_file.is_file():
        if latest.is_file():
            raise TrainingError(
                f"cannot resume {out}: {state_file.name} is missing, so the optimiser and batch order cannot be restored"
            )
        raise TrainingError(f"cannot resume {out}: it holds no checkpoint yet; start a new run with --out instead")
    try:
        state = load_state(state_file)
    except CheckpointError as exc:
        raise TrainingError(f"cannot resume {out}: {exc}") from None
    step = int(state["step"])
    best_step = state.get("best_step")
    if isinstance(state.get("model"), dict):
        header = read_config(state_file)
        config = header.get("checkpoint") if isinstance(header.get("checkpoint"), dict) else {}
        weights = state.pop("model")
        return ResumePoint(out, step, state, weights, config, best_step if isinstance(best_step, int) else None, notes)
    # A resume state without weights (written by an earlier relightzoo): latest must match it.
    try:
        weights, config = read_checkpoint(latest)
    except CheckpointError as exc:
        raise TrainingError(f"cannot resume {out}: {exc}") from None
    saved_step = config.get("step")
    if saved_step != step:
        raise TrainingError(
            f"cannot resume {out}: {latest.name} is at step {saved_step} but its resume state at step {step}, "
            "and this resume state (from an earlier relightzoo) holds no weights to continue from"
        )
    return ResumePoint(out, step, state, weights, config, None, notes)
