"""A run killed at any write boundary resumes exactly as an uninterrupted run would.

Every file a training run writes goes through :mod:`relightzoo.util.atomic`, whose ``_commit``
(the rename of a finished temporary file) is the boundary between two writes. A kill is
injected at the N-th commit, for every N the uninterrupted run makes, twice: just before the
rename (the temporary file stays behind, as after ``kill -9``) and just after it (the next
file is never started). The killed process's cleanup never runs (``_discard`` is a no-op), and
the kill is not an ``Exception`` or a ``KeyboardInterrupt``, so no handler in the loop sees it.
Then the run is resumed and must end bit for bit where the uninterrupted one ends: weights,
best checkpoint, optimiser state, log, with no temporary file left.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from conftest import make_olat_folder
from relightzoo.util import atomic
from relightzoo.data import OLATDataset, load_dataset
from relightzoo.errors import TrainingError
from relightzoo.train import load_state, read_checkpoint, train
from relightzoo.zoo import model_spec

pytestmark = pytest.mark.usefixtures("one_thread")

STEPS, EVERY = 6, 2
_TIMING = ("elapsed", "samples_per_s")


class Killed(BaseException):
    """Stands for SIGKILL: nothing in the process may catch it."""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> OLATDataset:
    return load_dataset(make_olat_folder(tmp_path_factory.mktemp("data") / "d", n_lights=16, height=8, width=8))


def _run(dataset, out: Path, **kwargs):
    spec = model_spec("siren", encoder="scaled-spherical", activation="sine", hidden_features=8, hidden_layers=1)
    return train(
        dataset, "xu5:0.77", spec, steps=STEPS, batch_size=64, lr=1e-2, schedule="cosine", warmup_steps=1, seed=3,
        device="cpu", out_dir=out, checkpoint_every=EVERY, log_every=1, progress=False, **kwargs,
    )


def _snapshot(out: Path) -> dict:
    """Everything a finished run leaves, less wall-clock timings."""
    latest, latest_cfg = read_checkpoint(out / "latest.safetensors")
    best, best_cfg = read_checkpoint(out / "best.safetensors")
    state = load_state(out / "latest.state.safetensors")
    for key in ("elapsed",):
        state.pop(key)
    metrics = [{k: v for k, v in json.loads(line).items() if k not in _TIMING} for line in (out / "metrics.jsonl").read_text().splitlines()]
    return {
        "latest": latest, "latest_cfg": latest_cfg, "best": best, "best_cfg": best_cfg, "state": state, "metrics": metrics,
        "config": json.loads((out / "config.json").read_text()),
        "files": sorted(p.name for p in out.iterdir()),
    }


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if hasattr(a, "shape"):  # numpy arrays in the RNG state
        return a.tolist() == b.tolist()
    return a == b


def _count_writes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    real = atomic._commit
    written: list[Path] = []

    def counting(tmp: Path, path: Path) -> None:
        written.append(path)
        real(tmp, path)

    monkeypatch.setattr(atomic, "_commit", counting)
    return written


def _kill_at(monkeypatch: pytest.MonkeyPatch, n: int, when: str) -> None:
    real = atomic._commit
    count = {"n": 0}

    def commit(tmp: Path, path: Path) -> None:
        count["n"] += 1
        if count["n"] == n and when == "before-rename":
            raise Killed
        real(tmp, path)
        if count["n"] == n:
            raise Killed

    monkeypatch.setattr(atomic, "_commit", commit)
    monkeypatch.setattr(atomic, "_discard", lambda tmp: None)  # a killed process cleans up nothing


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory: pytest.TempPathFactory):
    """The uninterrupted run: its final files and the list of writes it made."""
    out = tmp_path_factory.mktemp("straight") / "run"
    with pytest.MonkeyPatch.context() as mp:
        writes = _count_writes(mp)
        _run(dataset, out)
    return _snapshot(out), [p.name for p in writes]


def test_the_run_writes_through_the_atomic_writer(reference) -> None:
    _, writes = reference
    # a new metrics.jsonl and config.json, then (state, latest[, best]) at steps 2, 4, 6, then config.json again
    assert writes[:2] == ["metrics.jsonl", "config.json"] and writes[-1] == "config.json"
    saves = writes[2:-1]
    assert saves[:3] == ["latest.state.safetensors", "latest.safetensors", "best.safetensors"]
    assert saves.count("latest.state.safetensors") == STEPS // EVERY == saves.count("latest.safetensors")


@pytest.mark.parametrize("when", ["before-rename", "after-rename"])
def test_a_kill_at_every_write_boundary_resumes_exactly(dataset, reference, tmp_path: Path, when: str, capsys) -> None:
    expected, writes = reference
    injected = 0
    for n in range(1, len(writes) + 1):
        out = tmp_path / f"{when}-{n}"
        with pytest.MonkeyPatch.context() as mp:
            _kill_at(mp, n, when)
            with pytest.raises(Killed):
                _run(dataset, out)
        injected += 1
        state_written = "latest.state.safetensors" in writes[: n if when == "after-rename" else n - 1]
        if not state_written:
            # killed before the first checkpoint: nothing to resume, and the message says so
            with pytest.raises(TrainingError, match="holds no checkpoint yet|holds no latest.safetensors"):
                _run(dataset, out, resume=True)
            _run(dataset, out, overwrite=True)
            continue
        capsys.readouterr()
        _run(dataset, out, resume=True)
        said = capsys.readouterr().err
        assert "resuming" in said and "from step" in said, said
        if when == "before-rename":
            assert "removed 1 temporary file left by an interrupted write" in said, (n, said)
        got = _snapshot(out)
        for key in expected:
            assert _equal(got[key], expected[key]), (when, n, writes[n - 1], key)
    assert injected == len(writes) >= 10


def test_the_resume_says_which_checkpoint_it_rewrote(dataset, reference, tmp_path: Path, capsys) -> None:
    _, writes = reference
    n = writes.index("latest.safetensors", writes.index("latest.safetensors") + 1)  # right after the second state write
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as mp:
        _kill_at(mp, n, "after-rename")
        with pytest.raises(Killed):
            _run(dataset, out)
    assert read_checkpoint(out / "latest.safetensors")[1]["step"] == 2
    capsys.readouterr()
    _run(dataset, out, resume=True)
    said = capsys.readouterr().err
    assert "latest.safetensors was at step 2; rewrote it from the resume state at step 4" in said
