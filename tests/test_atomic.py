"""The one atomic writer: the previous file survives any failure, resource faults are one line,
stray temporary files are found and removed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from relightzoo.util import atomic
from relightzoo.util.atomic import atomic_path, remove_stale_temps, write_bytes_atomic, write_json_atomic
from relightzoo.errors import OutputError, RelightzooError
from relightzoo.train.checkpoint import load_state, save_checkpoint, save_state


def _fail_fsync(monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """Make the next fsync fail with ``code`` (where a full disk surfaces on delayed allocation)."""

    def fsync(fd: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def test_disk_full_is_one_line_saying_what_was_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "latest.safetensors"
    torch.manual_seed(0)
    save_checkpoint(path, nn.Linear(3, 2), {"step": 40})
    before = path.read_bytes()
    _fail_fsync(monkeypatch, errno.ENOSPC)
    with pytest.raises(OutputError) as err:
        save_checkpoint(path, nn.Linear(3, 2), {"step": 50})
    msg = str(err.value)
    assert "\n" not in msg and "the disk is full" in msg and "the previous latest.safetensors (step 40) is kept" in msg
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.safetensors"]  # the temporary file is gone


def test_read_only_and_permission_denied_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_fsync(monkeypatch, errno.EROFS)
    with pytest.raises(OutputError, match=r"^cannot write .*out.json: the file system is read-only; choose another output folder$"):
        write_json_atomic(tmp_path / "out.json", {"a": 1})
    _fail_fsync(monkeypatch, errno.EACCES)
    with pytest.raises(OutputError, match=r"permission denied; choose a folder you can write to$"):
        write_bytes_atomic(tmp_path / "x.bin", b"123")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_folder_in_the_way_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(OutputError, match="it is a folder"):
        write_bytes_atomic(tmp_path / "taken", b"x")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a folder"):
        write_bytes_atomic(tmp_path / "file" / "below.json", b"x")


def test_interrupt_mid_write_keeps_the_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "latest.state.safetensors"
    save_state(path, {"step": 5})

    def interrupt(tmp: Path, target: Path) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_commit", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save_state(path, {"step": 6})
    monkeypatch.undo()
    assert load_state(path)["step"] == 5
    assert [p.name for p in tmp_path.iterdir()] == ["latest.state.safetensors"]


def test_atomic_path_hands_a_writer_a_temporary_name(tmp_path: Path) -> None:
    from PIL import Image

    target = tmp_path / "img.png"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".img.png.") and not target.exists()
        Image.fromarray(np.zeros((2, 3, 3), np.uint8)).save(tmp, format="PNG")
    assert Image.open(target).size == (3, 2) and len(list(tmp_path.iterdir())) == 1


def test_stray_temporary_files_are_removed_and_nothing_else(tmp_path: Path) -> None:
    keep = ["latest.safetensors", ".hidden", "notes.tmp", "a.b.tmp"]
    strays = [".latest.safetensors.k2j3h4.tmp", ".config.json.x_9.tmp"]
    for name in keep + strays:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_stale_temps(tmp_path)
    assert sorted(p.name for p in removed) == sorted(strays)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_every_error_is_a_relightzoo_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fail_fsync(monkeypatch, errno.EIO)
    with pytest.raises(RelightzooError, match=r"^cannot write .*: Input/output error$"):
        write_bytes_atomic(tmp_path / "a", b"1")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_logging_is_one_line_saying_the_checkpoint_is_kept(tmp_path: Path) -> None:
    from relightzoo.train.log import append_line as _append_line

    class FullDisk:
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self) -> None:  # pragma: no cover - write fails first
            pass

    latest = tmp_path / "latest.safetensors"
    with pytest.raises(OutputError) as err:
        _append_line(FullDisk(), "{}", tmp_path / "metrics.jsonl", latest, 40)
    msg = str(err.value)
    assert "\n" not in msg and "metrics.jsonl: the disk is full" in msg and f"{latest} (step 40) is kept" in msg
