"""``light_scale=auto``: plugin arguments chosen from the training lights, once, and recorded."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.ablate import build_grid
from relightzoo.builtins.encoders import light_scale_for
from relightzoo.cli import main
from relightzoo.data import load_dataset
from relightzoo.errors import LightsError, PluginError
from relightzoo.lights import hemisphere_pattern, light_spacing, select_lights
from relightzoo.train import load_checkpoint, train
from relightzoo.zoo import create_model, model_spec, resolve_auto_args, resolve_auto_spec

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=64, height=8, width=8)


def _dome(rule: str) -> torch.Tensor:
    """The training lights that ``rule`` picks from 1000 Fibonacci lights (the demo's dome)."""
    lights = torch.as_tensor(hemisphere_pattern("fibonacci", 1000), dtype=torch.float32)
    return lights[select_lights(rule, lights).train]


def test_spacing_is_the_median_angle_to_the_nearest_other_light() -> None:
    axes = np.eye(3)
    assert light_spacing(axes) == pytest.approx(math.pi / 2)
    dome = _dome("uniform:49")
    assert math.degrees(light_spacing(dome)) == pytest.approx(19.1, abs=0.3)
    # a stray pair of coincident lights does not make the capture look dense
    assert light_spacing(torch.cat([dome, dome[:1]])) == pytest.approx(light_spacing(dome), abs=0.01)
    assert math.degrees(light_spacing(_dome("uniform:100"))) == pytest.approx(12.7, abs=0.3)
    with pytest.raises(LightsError, match="at least 2 lights, got 1"):
        light_spacing(axes[:1])


def test_light_scale_follows_the_calibration_and_keeps_its_ends() -> None:
    chosen = {k: light_scale_for(_dome(f"uniform:{k}")) for k in (16, 25, 36, 49, 64, 100, 200)}
    assert (chosen[25], chosen[49], chosen[100]) == (0.15, 0.2, 0.45)  # the measured optima
    assert chosen[25] < chosen[36] < chosen[49] < chosen[64] < chosen[100]  # between them: interpolated
    assert chosen[16] == 0.15 and chosen[200] == 0.45  # beyond them: the nearest measured value
    assert light_scale_for(_dome("xu5:0.77")) == 0.15
    assert light_scale_for(torch.tensor([[0.0, 0.0, 1.0]])) == 0.15  # one light has no spacing: the sparsest


def test_auto_is_replaced_by_the_choice_and_said_once() -> None:
    lights = _dome("uniform:49")
    args, notes = resolve_auto_args("encoder", "direction", {"light_scale": "auto"}, lights)
    assert args == {"light_scale": 0.2}
    assert notes == ["encoder 'direction': light_scale=auto is 0.2 for these 49 training lights"]
    assert resolve_auto_args("encoder", "direction", {"light_scale": 0.3}, lights) == ({"light_scale": 0.3}, [])
    # a spec keeps "auto" (checked) until a run chooses it; building a model from it is an error
    spec = model_spec("siren", encoder="direction", encoder_args={"light_scale": "AUTO"})
    assert spec["encoder"]["args"]["light_scale"] == "auto"
    with pytest.raises(PluginError, match=r"^light_scale=auto is chosen from the training lights when a run starts"):
        create_model("siren", encoder="direction", encoder_args={"light_scale": "auto"})
    resolved, _ = resolve_auto_spec(spec, lights)
    assert resolved["encoder"]["args"]["light_scale"] == 0.2 and spec["encoder"]["args"]["light_scale"] == "auto"


def test_auto_where_the_plugin_cannot_choose_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    with pytest.raises(PluginError) as err:
        resolve_auto_args("activation", "sine", {"hidden_omega_0": "auto"}, _dome("uniform:16"))
    assert str(err.value) == (
        "activation 'sine' cannot choose 'hidden_omega_0' from the training lights, so hidden_omega_0=auto "
        "is not allowed (its arguments that take auto: none)"
    )
    res = CliRunner().invoke(main, ["train", str(data), "--model", "siren", "--encoder", "fourier", "--encoder-arg",
                                    "light_scale=auto", "--steps", "1", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1, res.output
    assert "encoder 'fourier' cannot choose 'light_scale' from the training lights" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "r").exists()
    with pytest.raises(PluginError, match=r"^cell siren_fourier_sine_uniform-16_s0: encoder 'fourier' cannot choose"):
        build_grid(str(data), models="siren", encoders="fourier", activations="sine", lights="uniform:16", seeds=[0],
                   encoder_args={"light_scale": "auto"})


def test_the_cli_chooses_once_records_the_number_and_resumes_with_it(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", str(data), "--model", "siren", "--model-arg", "hidden_features=16", "--model-arg", "hidden_layers=1",
            "--encoder", "direction", "--encoder-arg", "light_scale=auto", "--lights", "uniform:16",
            "--batch-size", "64", "--no-eval"]
    res = CliRunner().invoke(main, [*args, "--steps", "4", "--out", str(out)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    dataset = load_dataset(data)
    expected = light_scale_for(dataset.lights[select_lights("uniform:16", dataset.lights).train])
    assert f"light_scale=auto is {expected:.3g} for these 16 training lights" in " ".join(res.output.split())
    config = json.loads((out / "config.json").read_text())
    assert config["spec"]["encoder"]["args"]["light_scale"] == expected
    model, _ = load_checkpoint(out / "latest.safetensors")
    assert model.encoder.light_scale == expected
    res = CliRunner().invoke(main, ["train", "--resume", str(out), "--steps", "6"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["step"] == 6


def test_train_and_ablate_resolve_a_spec_with_auto(data: Path, tmp_path: Path) -> None:
    dataset = load_dataset(data)
    spec = model_spec("siren", encoder="direction", encoder_args={"light_scale": "auto"}, hidden_features=16, hidden_layers=1)
    result = train(dataset, "uniform:16", spec, steps=2, batch_size=32, out_dir=tmp_path / "api", progress=False)
    chosen = result.model.encoder.light_scale
    assert chosen == light_scale_for(dataset.lights[select_lights("uniform:16", dataset.lights).train]) != 0.1

    res = CliRunner().invoke(main, [
        "ablate", str(data), "--models", "siren", "--encoders", "direction", "--activations", "sine",
        "--lights", "uniform:16,uniform:32", "--encoder-arg", "light_scale=auto", "--model-arg", "hidden_features=16",
        "--model-arg", "hidden_layers=1", "--steps", "2", "--batch-size", "32", "--out", str(tmp_path / "grid"),
    ], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cells = {c["name"]: c for c in json.loads((tmp_path / "grid" / "results.json").read_text())["cells"]}
    scales = [cells[f"siren_direction_sine_uniform-{k}_s0"]["spec"]["encoder"]["args"]["light_scale"] for k in (16, 32)]
    assert scales[0] == chosen and scales[1] > scales[0]  # each rule's own lights, denser -> higher
