"""A misbehaving third-party plugin stays contained: a name clash with a built-in, a plugin
that fails to load or is blocked, and what a checkpoint that needs it then says."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from relightzoo import __version__
from relightzoo.builtins.encoders import DirectionEncoder
from relightzoo.cli import main
from relightzoo.errors import CheckpointError
from relightzoo.train import load_checkpoint, read_checkpoint, save_checkpoint
from relightzoo.zoo import Encoder, create_encoder, create_model, hookimpl
from relightzoo.zoo.manager import PluginWarning, build_manager, reset_manager
from test_registry import FakeEntryPoint


class Shifted(Encoder):
    """An encoder a third party registers under the built-in's name ``direction``."""

    def __init__(self) -> None:
        super().__init__()
        self.out_features = 5

    def forward(self, pixels, lights):
        return torch.cat([pixels, lights + 1.0], -1)


class Clashing:
    @hookimpl
    def register_encoders(self, register):
        register("direction", Shifted, "claims a built-in's name")
        register("shifted", Shifted, "its own name")


@pytest.fixture
def zoo_with():
    """``zoo_with(*entry_points)``: the process-wide zoo with these fake entry points."""

    def build(*eps, blocked=()):
        zoo = build_manager(list(eps), blocked=list(blocked))
        reset_manager(zoo)
        return zoo

    yield build
    reset_manager()


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_plugin_claiming_a_builtin_name_is_skipped_for_that_name_and_everything_else_works(zoo_with, tmp_path):
    before = create_model("siren", encoder="direction", hidden_features=8, hidden_layers=1)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", before, {})
    with pytest.warns(PluginWarning) as record:
        zoo_with(FakeEntryPoint("clash", Clashing(), package="relightzoo-clash", version="1.0"))
    assert [str(w.message) for w in record] == [
        "plugin 'clash' (package relightzoo-clash 1.0) registers the encoder name 'direction', which "
        f"relightzoo {__version__} already provides: kept relightzoo {__version__}'s, skipped relightzoo-clash's; "
        "rename it in relightzoo-clash or set RELIGHTZOO_BLOCK_PLUGINS=clash"
    ]
    assert isinstance(create_encoder("direction"), DirectionEncoder)
    assert isinstance(create_encoder("shifted"), Shifted)  # the rest of the plugin is kept
    res = _cli("plugins", "--kind", "encoder")
    assert res.exit_code == 0, res.output
    assert "skipped plugin 'clash' (package relightzoo-clash 1.0) registers the encoder name 'direction'" in " ".join(res.output.split())
    res = _cli("relight", ckpt, "--light", "0,0,1", "--size", "5x4", "--out", tmp_path / "x.png")
    assert res.exit_code == 0, res.output


def test_a_checkpoint_of_the_skipped_claim_says_so(zoo_with, tmp_path):
    with pytest.warns(PluginWarning):
        zoo_with(FakeEntryPoint("clash", Clashing(), package="relightzoo-clash", version="1.0"))
    model = create_model("siren", encoder="direction", hidden_features=8, hidden_layers=1)
    path = save_checkpoint(tmp_path / "m.safetensors", model, {})
    state, config = read_checkpoint(path)
    config["spec"]["plugins"]["direction"] = "relightzoo-clash 1.0"  # as written where the plugin won
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"relightzoo": json.dumps(config)})
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert str(exc.value) == (
        f"{path} needs the encoder plugin 'direction' from package relightzoo-clash 1.0, which is installed, but its "
        f"claim to the name was skipped: relightzoo {__version__} provides encoder 'direction' here"
    )


class Morlet:
    @hookimpl
    def register_encoders(self, register):
        register("morlet-enc", Shifted, "an encoder")


def _checkpoint_needing_morlet(tmp_path: Path) -> Path:
    model = create_model("siren", encoder="direction", hidden_features=8, hidden_layers=1)
    path = save_checkpoint(tmp_path / "m.safetensors", model, {})
    state, config = read_checkpoint(path)
    config["spec"]["encoder"] = {"name": "morlet-enc", "args": {}}
    config["spec"]["plugins"]["morlet-enc"] = "relightzoo-morlet 0.3.0"
    save_file({k: v.contiguous() for k, v in state.items()}, path, metadata={"relightzoo": json.dumps(config)})
    return path


def test_a_checkpoint_needing_a_plugin_that_failed_to_load_gives_the_error(zoo_with, tmp_path):
    path = _checkpoint_needing_morlet(tmp_path)
    broken = FakeEntryPoint("morlet", error=ImportError("No module named 'pywt'"), package="relightzoo-morlet", version="0.3.0")
    with pytest.warns(PluginWarning):
        zoo_with(broken)
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert str(exc.value) == (
        f"{path} needs the encoder plugin 'morlet-enc' from package relightzoo-morlet 0.3.0, "
        "which is installed but failed to load: ImportError: No module named 'pywt'"
    )
    res = _cli("relight", path, "--light", "0,0,1", "--size", "4x4", "--out", tmp_path / "x.png")
    assert res.exit_code == 1 and "failed to load: ImportError: No module named 'pywt'" in res.output


def test_a_checkpoint_needing_a_blocked_plugin_says_it_is_blocked(zoo_with, tmp_path):
    path = _checkpoint_needing_morlet(tmp_path)
    zoo_with(FakeEntryPoint("morlet", Morlet(), package="relightzoo-morlet", version="0.3.0"), blocked=["morlet"])
    with pytest.raises(CheckpointError) as exc:
        load_checkpoint(path)
    assert str(exc.value) == (
        f"{path} needs the encoder plugin 'morlet-enc' from package relightzoo-morlet 0.3.0, "
        "which is installed but blocked by RELIGHTZOO_BLOCK_PLUGINS (remove morlet from it)"
    )
    zoo_with(FakeEntryPoint("morlet", Morlet(), package="relightzoo-morlet", version="0.3.0"))
    model, _ = load_checkpoint(path)  # loads once unblocked
    assert isinstance(model.encoder, Shifted)


def test_the_listing_keeps_the_package_column_whole_at_80_columns(installed_plugins):
    installed_plugins("gabor")
    res = CliRunner().invoke(main, ["plugins"], terminal_width=80)  # what a pipe gets
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80
    package_cells = [line.rsplit("│", 2)[1].strip() for line in lines if line.startswith("│") and line.count("│") == 5]
    assert "relightzoo-gabor" in package_cells and "relightzoo" in package_cells and __version__ in package_cells
    gabor = importlib.metadata.version("relightzoo-gabor")
    assert set(package_cells) <= {"", "relightzoo", "relightzoo-gabor", __version__, gabor}, set(package_cells)
