"""The ``learned-blend`` model: equals blend before training, trains through the CLI (the
loop's image-model path), saves, reloads in a fresh process and renders the same; errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from conftest import make_olat_folder, render_in_fresh_process
from relightzoo.cli import main
from relightzoo.data import load_dataset
from relightzoo.errors import PluginError
from relightzoo.lights import select_lights
from relightzoo.train import load_checkpoint, read_config
from relightzoo.train.loop import ModelBatches
from relightzoo.zoo import build_from_spec, create_model

# Small and fast: crops of 8 x 8, four per step.
# A constant rate: under the model's default cosine schedule a run's rates depend on its
# length, so 4 steps resumed to 6 could not equal 6 straight steps.
FAST = ["--model", "learned-blend", "--model-arg", "crop=8", "--model-arg", "decoder_width=8",
        "--batch-size", "256", "--lr", "1e-3", "--schedule", "none", "--log-every", "1"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=24, height=16, width=16)


def _attached(name: str, dataset, split, **kwargs):
    idx = torch.as_tensor(np.asarray(split.train))
    model = create_model(name, **kwargs)
    model.attach_training_data(dataset.images(idx), dataset.lights[idx])
    return model.eval()


@pytest.mark.parametrize(("k", "power"), [(3, 2.0), (2, 1.0)])
def test_untrained_model_equals_blend(data: Path, k: int, power: float) -> None:
    dataset = load_dataset(data)
    split = select_lights("uniform:8", dataset.lights)
    torch.manual_seed(0)
    learned = _attached("learned-blend", dataset, split, k=k, power=power)
    blend = _attached("blend", dataset, split, k=k, power=power)
    # held-out lights, a training light itself, and a direction between captured ones
    lights = torch.cat([dataset.lights[torch.as_tensor(split.test)], dataset.lights[split.train[:1]],
                        torch.tensor([[0.3, -0.2, 0.9]])])
    ours, theirs = learned.render(lights, 16, 16), blend.render(lights, 16, 16)
    assert ours.shape == theirs.shape == (len(lights), 16, 16, 3)
    assert (ours - theirs).abs().max() < 1e-5
    # another size: rendered at the training size, then resized like blend's
    assert (learned.render(lights[:3], 24, 20) - blend.render(lights[:3], 24, 20)).abs().max() < 1e-5


def test_training_batch_is_leave_one_out(data: Path) -> None:
    dataset = load_dataset(data)
    split = select_lights("uniform:8", dataset.lights)
    model = _attached("learned-blend", dataset, split, crop=8, self_fraction=0.0)
    gen = torch.Generator().manual_seed(1)
    neighbours, dirs, target_dir, weights, position, target = model.training_batch(gen, 64 * 5)
    assert neighbours.shape == (5, 3, 3, 8, 8) and target.shape == (5, 3, 8, 8) and position.shape == (5, 2, 8, 8)
    assert torch.allclose(weights.sum(-1), torch.ones(5))
    # with self_fraction=0 no neighbour is the target itself
    assert not bool(((dirs - target_dir[:, None]).abs().sum(-1) < 1e-6).any())
    assert float(target.min()) >= -1.0 and float(target.max()) <= 1.0


def test_trains_through_cli_reloads_in_fresh_process_and_resumes(data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", str(data), "--lights", "uniform:8", "--steps", "4", "--out", str(run), *FAST],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "trained 4 steps" in res.output and "blend (baseline)" in res.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4] and all(np.isfinite(r["loss"]) for r in records)
    config = read_config(run / "latest.safetensors")
    assert config["spec"]["model"]["name"] == "learned-blend" and config["step"] == 4

    model, _ = load_checkpoint(run / "latest.safetensors")
    lights = torch.tensor([[0.2, 0.1, 0.97], [-0.5, 0.3, 0.81]])
    here = model.render(lights, 16, 16)
    dataset = load_dataset(data)
    blend = _attached("blend", dataset, select_lights("uniform:8", dataset.lights))
    assert not torch.equal(here, blend.render(lights, 16, 16))  # training moved it off blend
    # ... by Adam's steps: most weights moved, none by more than 4 steps of lr 1e-3 (sign-like updates)
    torch.manual_seed(0)  # the run's seed: the initial weights it started from
    start = build_from_spec(config["spec"]).state_dict()
    moved = torch.cat([(model.state_dict()[k] - start[k]).abs().flatten() for k, _ in model.named_parameters()])
    assert float((moved > 1e-7).float().mean()) > 0.5 and float(moved.max()) <= 4 * 1e-3 * 1.05, (
        float((moved > 1e-7).float().mean()), float(moved.max()))

    assert torch.equal(render_in_fresh_process(run / "latest.safetensors", lights.tolist(), 16, 16, tmp_path), here)

    # resuming 4 -> 6 steps gives the weights of an uninterrupted 6-step run
    res = CliRunner().invoke(main, ["train", "--resume", str(run), "--steps", "6", "--no-eval"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    straight = tmp_path / "straight"
    res = CliRunner().invoke(main, ["train", str(data), "--lights", "uniform:8", "--steps", "6", "--no-eval",
                                    "--out", str(straight), *FAST], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    resumed = load_file(str(run / "latest.safetensors"))
    uninterrupted = load_file(str(straight / "latest.safetensors"))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)


def test_model_batches_state_round_trip(data: Path) -> None:
    dataset = load_dataset(data)
    model = _attached("learned-blend", dataset, select_lights("uniform:8", dataset.lights), crop=8)
    a = ModelBatches(model, 128, seed=3)
    a.sample()
    state = a.state_dict()
    expected = a.sample()
    b = ModelBatches(model, 128, seed=99)
    b.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(b.sample(), expected))


def test_unknown_backbone_suggests_nearest_timm_names(data: Path, tmp_path: Path) -> None:
    with pytest.raises(PluginError) as err:
        create_model("learned-blend", backbone="resnet81")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("model 'learned-blend': timm has no backbone 'resnet81'; did you mean 'resnet18'")
    res = CliRunner().invoke(main, ["train", str(data), "--model", "learned-blend", "--model-arg", "backbone=mobilenet_v9",
                                    "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert "Error: model 'learned-blend': timm has no backbone 'mobilenet_v9'" in res.output


def test_k_not_below_the_number_of_training_lights(data: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["train", str(data), "--model", "learned-blend", "--lights", "xu5:0.77",
                                    "--model-arg", "k=5", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert (
        "Error: model 'learned-blend': k=5 neighbours need more than the 5 training lights given "
        "(leave-one-out training predicts each from k others); use --model-arg k=4 or more training lights"
    ) in " ".join(res.output.split())
    assert not (tmp_path / "r" / "latest.safetensors").exists()


@pytest.mark.parametrize(("arg", "message"), [
    ({"k": 0}, "model 'learned-blend': k must be at least 1, got 0"),
    ({"self_fraction": 1.0}, "model 'learned-blend': self_fraction must be in [0, 1), got 1.0"),
])
def test_bad_arguments(arg: dict, message: str) -> None:
    with pytest.raises(PluginError, match=None) as err:
        create_model("learned-blend", **arg)
    assert str(err.value) == message
