"""Checkpoints: safetensors + JSON metadata, atomic writes, resume state, one-line errors."""

from __future__ import annotations

import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from relightzoo.errors import CheckpointError
from relightzoo.train import checkpoint as ckpt
from relightzoo.train.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    load_state,
    read_checkpoint,
    read_config,
    save_checkpoint,
    save_state,
    state_path,
)
from relightzoo.zoo import create_model, model_spec


def _mlp(seed: int = 0, width: int = 8) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, 3))


def _siren(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return create_model("siren", encoder="raw", activation="sine", hidden_features=16, hidden_layers=1, **kwargs)


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- round trips -------------------------------------------------------------------------


def test_weights_and_config_round_trip_exactly(tmp_path: Path) -> None:
    model = _mlp()
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"step": 7, "training": {"lr": 1e-4}})
    state, config = read_checkpoint(path)
    assert config["step"] == 7 and config["training"] == {"lr": 1e-4}
    assert config["format_version"] == FORMAT_VERSION
    assert config["relightzoo_version"]
    other = _mlp(seed=1)
    assert not _same_weights(model, other)
    loaded, _ = load_checkpoint(path, model=other)
    assert loaded is other and _same_weights(model, other)


def test_config_values_from_numpy_and_paths_are_stored_as_json(tmp_path: Path) -> None:
    config = {"cap": np.float32(0.5), "train": np.arange(3), "source": tmp_path / "data"}
    path = save_checkpoint(tmp_path / "m.safetensors", _mlp(), config)
    got = read_config(path)
    assert got["cap"] == 0.5 and got["train"] == [0, 1, 2] and got["source"] == str(tmp_path / "data")
    with pytest.raises(TypeError, match="a checkpoint config cannot hold a object"):
        save_checkpoint(tmp_path / "m.safetensors", _mlp(), {"x": object()})
    assert read_config(path)["cap"] == 0.5  # the failed save left the file alone


def test_file_is_plain_safetensors_with_json_metadata(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _mlp(), {"step": 3})
    tensors = load_file(path)  # any safetensors reader opens it
    assert set(tensors) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    header = json.loads(path.read_bytes()[8 : 8 + n])
    assert json.loads(header["__metadata__"]["relightzoo"])["step"] == 3
    assert read_config(path)["step"] == 3


def test_zoo_model_rebuilds_from_its_spec_and_renders_the_same(tmp_path: Path) -> None:
    model = _siren()
    path = save_checkpoint(tmp_path / "siren.safetensors", model, {"step": 0})
    config = read_config(path)
    assert config["spec"] == model_spec(model)
    loaded, _ = load_checkpoint(path)
    assert type(loaded) is type(model) and _same_weights(model, loaded)
    lights = torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.0, 0.8]])
    assert torch.equal(model.eval().render(lights, 5, 7), loaded.render(lights, 5, 7))


def test_loading_memory_maps_the_file_instead_of_reading_it_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _siren()
    path = save_checkpoint(tmp_path / "siren.safetensors", model, {"step": 0})
    state = save_state(tmp_path / "s.state.safetensors", {"step": 3, "w": torch.arange(5.0)})

    def whole_file(self):  # the old way: the file's bytes and then its tensors, both in memory
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(Path, "read_bytes", whole_file)
    loaded, _ = load_checkpoint(path)
    assert _same_weights(model, loaded)
    assert torch.equal(load_state(state)["w"], torch.arange(5.0))


def test_shared_and_non_contiguous_tensors_are_stored(tmp_path: Path) -> None:
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Linear(4, 4)
            self.b = nn.Linear(4, 4)
            self.b.weight = self.a.weight  # tied
            self.register_buffer("t", torch.arange(12.0).reshape(3, 4).t())  # non-contiguous

    model = Tied()
    path = save_checkpoint(tmp_path / "tied.safetensors", model, {})
    assert "b.weight" not in load_file(path)  # stored once
    fresh = Tied()
    with torch.no_grad():
        fresh.a.weight.zero_()
        fresh.t.zero_()
    load_checkpoint(path, model=fresh)
    assert torch.equal(fresh.a.weight, model.a.weight) and fresh.b.weight is fresh.a.weight
    assert torch.equal(fresh.t, model.t)


def test_loading_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _siren(), {})
    state_file = save_state(tmp_path / "m.state.safetensors", {"step": 1, "x": torch.ones(2)})

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling during load")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    load_checkpoint(path)
    assert load_state(state_file)["step"] == 1


# -- resume state ------------------------------------------------------------------------


def test_state_path_sits_beside_the_checkpoint() -> None:
    assert state_path(Path("run/latest.safetensors")) == Path("run/latest.state.safetensors")


def test_optimizer_state_round_trips_and_continues_identically(tmp_path: Path) -> None:
    def steps(model, opt, n):
        g = torch.Generator().manual_seed(3)
        for _ in range(n):
            x = torch.randn(16, 4, generator=g)
            loss = model(x).square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    a = _mlp()
    opt_a = torch.optim.Adam(a.parameters(), lr=1e-2, betas=(0.8, 0.95))
    steps(a, opt_a, 3)
    save_checkpoint(tmp_path / "a.safetensors", a, {})
    save_state(tmp_path / "a.state.safetensors", {"optimizer": opt_a.state_dict(), "step": 3})

    b = _mlp(seed=5)
    load_checkpoint(tmp_path / "a.safetensors", model=b)
    opt_b = torch.optim.Adam(b.parameters(), lr=1e-2, betas=(0.8, 0.95))
    state = load_state(tmp_path / "a.state.safetensors")
    assert set(state["optimizer"]["state"]) == {0, 1, 2, 3}  # int keys survive
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.95)  # tuples survive
    opt_b.load_state_dict(state["optimizer"])
    steps(a, opt_a, 2)
    steps(b, opt_b, 2)
    assert _same_weights(a, b)


def test_rng_states_round_trip(tmp_path: Path) -> None:
    np.random.seed(4)
    gen = torch.Generator().manual_seed(9)
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "gen": gen.get_state(), "best": float("inf")}
    save_state(tmp_path / "s.safetensors", state)
    expect_np, expect_gen = np.random.rand(3), torch.rand(3, generator=gen)
    back = load_state(tmp_path / "s.safetensors")
    assert back["best"] == float("inf")
    np.random.set_state(back["numpy"])
    gen.set_state(back["gen"])
    assert np.array_equal(np.random.rand(3), expect_np)
    assert torch.equal(torch.rand(3, generator=gen), expect_gen)


def test_resume_state_rejects_objects_it_cannot_store(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot store a object"):
        save_state(tmp_path / "s.safetensors", {"x": object()})


# -- bad files: one-line errors ----------------------------------------------------------


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(tmp_path / "nope.safetensors")
    assert _one_line(exc) == f"checkpoint {tmp_path / 'nope.safetensors'} not found"


def test_not_a_safetensors_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, bad)  # a pickle-based torch file
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(bad)
    assert _one_line(exc).startswith(f"{bad} is not a safetensors file")
    text = tmp_path / "notes.safetensors"
    text.write_text("hello, this is text\n")
    with pytest.raises(CheckpointError, match="is not a safetensors file"):
        read_config(text)


def test_truncated_file(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _siren(), {})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert "is truncated" in _one_line(exc) and "the write was cut off" in str(exc.value)
    (n,) = struct.unpack("<Q", data[:8])
    path.write_bytes(data[: 8 + n // 2])  # cut inside the header
    with pytest.raises(CheckpointError, match="is truncated"):
        read_config(path)


def test_foreign_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(3)}, path, metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert _one_line(exc) == f"{path} is a safetensors file but not a relightzoo checkpoint (no 'relightzoo' metadata)"


def test_newer_format_says_to_upgrade(tmp_path: Path) -> None:
    path = tmp_path / "future.safetensors"
    meta = {"relightzoo": json.dumps({"format_version": FORMAT_VERSION + 1, "relightzoo_version": "9.0.0"})}
    save_file({"w": torch.ones(3)}, path, metadata=meta)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    msg = _one_line(exc)
    assert f"uses checkpoint format {FORMAT_VERSION + 1} (written by relightzoo 9.0.0)" in msg
    assert "upgrade relightzoo (pip install -U relightzoo)" in msg


def test_plugin_not_installed_names_plugin_and_package(tmp_path: Path) -> None:
    model = _siren()
    path = save_checkpoint(tmp_path / "m.safetensors", model, {})
    state, config = read_checkpoint(path)
    config["spec"]["activation"] = {"name": "morlet", "args": {"omega": 10.0}}
    config["spec"]["plugins"]["morlet"] = "relightzoo-wavelets 0.3.0"
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"relightzoo": json.dumps(config)})
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert _one_line(exc) == (
        f"{path} needs the activation plugin 'morlet' from package relightzoo-wavelets 0.3.0, "
        "which is not installed (pip install relightzoo-wavelets)"
    )
    del config["spec"]["plugins"]["morlet"]  # a spec that does not say where it came from
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"relightzoo": json.dumps(config)})
    with pytest.raises(CheckpointError, match=r"needs the activation plugin 'morlet', which is not installed$"):
        load_checkpoint(path)


def test_weights_from_another_model(tmp_path: Path) -> None:
    small = save_checkpoint(tmp_path / "small.safetensors", _siren(), {})
    _, config = read_checkpoint(small)
    torch.manual_seed(0)
    wide = create_model("siren", encoder="raw", activation="sine", hidden_features=32, hidden_layers=1)
    mixed = tmp_path / "mixed.safetensors"
    save_file(dict(wide.state_dict()), mixed, metadata={"relightzoo": json.dumps(config)})
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(mixed)
    msg = _one_line(exc)
    assert msg.startswith(f"{mixed}: its weights do not match the model its config describes (shape ")
    assert "was the file written for another model?" in msg


def test_resume_state_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.safetensors", _mlp(), {})
    with pytest.raises(CheckpointError, match="is a relightzoo file but not a resume state"):
        load_state(path)
    os.remove(path)
    with pytest.raises(CheckpointError, match="resume state .* not found"):
        load_state(path)
