"""The ``low-rank`` model: one-pass environment relighting, errors, CLI round trip, fitting."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_olat_folder, render_in_fresh_process
from relightzoo.builtins.lowrank import LowRankModel, real_harmonics
from relightzoo.cli import main
from relightzoo.data.synthetic import lambertian_scene
from relightzoo.envmap import relight_envmap
from relightzoo.errors import PluginError
from relightzoo.lights import fibonacci_hemisphere
from relightzoo.metrics import psnr
from relightzoo.train import load_checkpoint, read_config
from relightzoo.zoo import create_model

SMALL = ["--model-arg", "rank=4", "--model-arg", "light_hidden_features=16", "--batch-size", "256", "--lr", "3e-3"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=24, height=10, width=12)


def _random_model(seed: int = 0, **kwargs) -> LowRankModel:
    """A table model with random factors (so every component matters), values kept in [0, 1]."""
    torch.manual_seed(seed)
    model = create_model("low-rank", rank=6, height=10, width=12, light_hidden_features=16, harmonics=1, **kwargs)
    with torch.no_grad():
        model.table.uniform_(0.0, 0.02 / model.table_scale)
        model.table[1:4] *= 0.1  # the degree-1 harmonics take both signs: keep their part small
        model.light_net[-1].weight.mul_(0.2)  # V varies with the light but stays positive
        model.light_net[-1].bias.fill_(0.5)
    return model.eval()


def test_one_pass_envmap_equals_the_weighted_sum_of_single_light_renders() -> None:
    model = _random_model()
    dirs = torch.as_tensor(fibonacci_hemisphere(40), dtype=torch.float32)
    weights = torch.rand(40, 3, generator=torch.Generator().manual_seed(1)) * 0.2
    fast = model.relight_envmap(dirs, weights, 10, 12)
    renders = model.render(dirs, 10, 12)
    assert 0.0 < float(renders.min()) and float(renders.max()) < 1.0  # no clamping: the identity is exact
    summed = torch.einsum("lhwc,lc->hwc", renders.double(), weights.double())
    assert fast.shape == (10, 12, 3)
    torch.testing.assert_close(fast.double(), summed, rtol=1e-5, atol=1e-6)
    # forward() agrees with render(): (out + 1) / 2 is the linear image
    pixel = torch.tensor([[-11 / 12, -0.9]])  # the top-left pixel centre
    out = model(pixel, dirs[:1])
    torch.testing.assert_close((out[0] + 1) / 2, renders[0, 0, 0], rtol=1e-5, atol=1e-6)


def test_envmap_relighting_takes_the_fast_path_and_clamping_is_documented() -> None:
    model = _random_model(seed=3)
    with torch.no_grad():
        model.light_net[-1].bias.fill_(20.0)  # renders far above 1: clamped one by one
    env = np.ones((16, 32, 3), dtype=np.float32)
    image, info = relight_envmap(model, env, k=32, height=10, width=12, progress=False)
    assert info["path"] == "model" and info["k_used"] == 32
    from relightzoo.envmap import envmap_to_lights

    dirs, weights = envmap_to_lights(env, 32)
    d, w = torch.as_tensor(dirs, dtype=torch.float32), torch.as_tensor(weights, dtype=torch.float32)
    linear = torch.einsum("lhwc,lc->hwc", model.render_linear(d, 10, 12).double(), w.double()) * info["scale"]
    clamped = torch.einsum("lhwc,lc->hwc", model.render(d, 10, 12).double(), w.double()) * info["scale"]
    torch.testing.assert_close(torch.as_tensor(image).double(), linear, rtol=1e-5, atol=1e-5)
    single = model.render_linear(d, 10, 12)
    unclamped = ((single >= 0) & (single <= 1)).all(0)  # pixels no single-light render clamps
    assert 0 < int(unclamped.sum()) < unclamped.numel()
    torch.testing.assert_close(clamped[unclamped], linear[unclamped], rtol=1e-5, atol=1e-5)
    assert float((linear - clamped)[~unclamped].abs().min()) > 0  # elsewhere the clamped sum differs


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rank": 0}, "model 'low-rank': rank must be at least 1, got 0"),
        ({"pixel_basis": "grid"}, "model 'low-rank': pixel_basis must be one of table, network, got 'grid'"),
        ({"light_encoding": "angles"}, "model 'low-rank': light_encoding must be one of direction, harmonics, got 'angles'"),
        ({"height": 8}, "model 'low-rank': height and width must both be positive (or both 0: from the training images), got 8 x 0"),
        ({"harmonics": 9}, "model 'low-rank': harmonics must be from -1 (none) to 8, got 9"),
        ({"light_hidden_features": 0}, "model 'low-rank': light_hidden_features must be at least 1, got 0"),
    ],
)
def test_bad_options_are_one_line_errors(kwargs, message) -> None:
    with pytest.raises(PluginError) as err:
        create_model("low-rank", **kwargs)
    assert str(err.value) == message


def test_rank_zero_from_the_cli_is_a_one_line_error(data: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["train", str(data), "--model", "low-rank", "--model-arg", "rank=0", "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == "Error: model 'low-rank': rank must be at least 1, got 0"


def test_an_unsized_table_says_what_it_needs() -> None:
    model = create_model("low-rank")
    with pytest.raises(PluginError, match="does not know its resolution: give height and width"):
        model.render(torch.tensor([[0.0, 0.0, 1.0]]), 4, 4)


def test_real_harmonics_are_orthonormal_and_start_with_the_linear_basis() -> None:
    dirs = torch.randn(40000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    y = real_harmonics(dirs, 3)
    gram = y.T @ y * (4 * math.pi / len(dirs))
    assert y.shape == (40000, 16)
    assert float((gram - torch.eye(16, dtype=torch.float64)).abs().max()) < 0.05
    c0, c1 = math.sqrt(1 / (4 * math.pi)), math.sqrt(3 / (4 * math.pi))
    torch.testing.assert_close(y[:, :4], torch.stack([torch.full_like(dirs[:, 0], c0), c1 * dirs[:, 1], c1 * dirs[:, 2], c1 * dirs[:, 0]], -1))


def test_trains_through_the_cli_saves_reloads_in_a_fresh_process_and_renders_identically(data: Path, tmp_path: Path) -> None:
    runs = {}
    for basis in ("table", "network"):
        out = tmp_path / basis
        extra = ["--model-arg", "pixel_hidden_features=16", "--model-arg", "pixel_hidden_layers=2"] if basis == "network" else []
        res = CliRunner().invoke(
            main,
            ["train", str(data), "--model", "low-rank", "--model-arg", f"pixel_basis={basis}", "--lights", "uniform:12",
             "--steps", "30", "--out", str(out), "--encoder", "fourier", "--encoder-arg", "pixel_features=8", *SMALL, *extra],
            catch_exceptions=False,
        )
        assert res.exit_code == 0, res.output
        assert "trained 30 steps" in res.output and "blend (baseline)" in res.output
        config = read_config(out / "latest.safetensors")
        assert config["spec"]["model"]["name"] == "low-rank" and config["spec"]["model"]["args"]["pixel_basis"] == basis
        runs[basis] = out / "latest.safetensors"
    light = torch.tensor([[0.3, -0.2, 0.93]])
    expected = {}
    for basis, path in runs.items():
        model, _ = load_checkpoint(path)
        expected[basis] = model.render(light, 10, 12)
        # another resolution: the table is interpolated bilinearly, the network evaluated
        big = model.render(light, 20, 24)
        assert big.shape == (1, 20, 24, 3) and torch.isfinite(big).all()
        assert float((big[0, 1::2, 1::2] - expected[basis][0]).abs().mean()) < 0.1
    table_model, _ = load_checkpoint(runs["table"])
    assert table_model.table_size == (10, 12) and not table_model.needs_images
    fresh = {str(i): render_in_fresh_process(p, [[0.3, -0.2, 0.93]], 10, 12, tmp_path) for i, p in enumerate(runs.values())}
    for i, basis in enumerate(runs):
        assert torch.equal(fresh[str(i)], expected[basis]), basis


def test_evaluation_does_not_reinitialise_a_trained_table(data: Path, tmp_path: Path) -> None:
    from relightzoo.data import load_dataset
    from relightzoo.evaluate import evaluate
    from relightzoo.lights import select_lights

    ds = load_dataset(data)
    split = select_lights("uniform:8", ds.lights)
    model = create_model("low-rank", rank=3, light_hidden_features=8)
    assert model.needs_images
    model.attach_training_data(ds.images(split.train), ds.lights[torch.as_tensor(split.train)])
    assert model.table_size == (10, 12) and not model.needs_images
    with torch.no_grad():
        model.table.add_(0.01)
    before = model.table.detach().clone()
    evaluate(model, ds, split, progress=False)
    assert torch.equal(model.table.detach(), before)


def test_a_rank_4_model_fits_held_out_lights_of_a_lambertian_scene(tmp_path: Path) -> None:
    """The analytic scene is ``albedo * (a + (1 - a) max(0, n . l))``: smooth in the light,
    so a rank-4 table with a small V must predict lights it never saw."""
    from relightzoo.data import load_dataset
    from relightzoo.evaluate import score_model
    from relightzoo.lights import select_lights
    from relightzoo.train import train

    ds = load_dataset(make_olat_folder(tmp_path / "scene", n_lights=80, height=12, width=12))
    split = select_lights("uniform:30", ds.lights)
    result = train(
        ds, split, {"model": {"name": "low-rank", "args": {"rank": 4, "light_hidden_features": 32}}},
        steps=300, batch_size=1024, lr=3e-3, schedule="cosine", out_dir=tmp_path / "run", progress=False, device="cpu",
    )
    scores = score_model(result.model, ds, split, progress=False)
    blend = score_model(_blend(ds, split), ds, split, progress=False)
    assert scores["all"]["psnr"] > 32.0, scores["all"]
    assert scores["all"]["psnr"] > blend["all"]["psnr"] + 2.0, (scores["all"], blend["all"])
    # against exact ground truth, rendered analytically at fresh lights (not 8-bit files)
    fresh = torch.as_tensor(fibonacci_hemisphere(17), dtype=torch.float32)
    truth = torch.as_tensor(lambertian_scene(fresh, 12, 12, 0))
    assert float(psnr(result.model.render(fresh, 12, 12), truth).mean()) > 32.0


def _blend(ds, split):
    from relightzoo.evaluate import make_baseline

    return make_baseline(ds, split)


def test_no_pixel_hidden_layers_builds_a_linear_head_on_the_encoding() -> None:
    """``pixel_hidden_layers=0`` builds zero hidden layers, as ``light_hidden_layers=0`` does
    for V: U is one linear layer over the pixel encoding, and the model trains and renders."""
    model = create_model("low-rank", pixel_basis="network", pixel_hidden_layers=0, pixel_hidden_features=16, rank=2,
                         harmonics=-1, light_hidden_layers=0, encoder="raw", activation="relu")
    layers = list(model.pixel_net)
    assert len(layers) == 1 and isinstance(layers[0], torch.nn.Linear)
    assert layers[0].in_features == model.encoder.out_features and layers[0].out_features == 3 * model.components
    one = create_model("low-rank", pixel_basis="network", pixel_hidden_layers=1, pixel_hidden_features=16, rank=2,
                       harmonics=-1, encoder="raw", activation="relu")
    assert len(list(one.pixel_net)) == 2 and sum(p.numel() for p in one.pixel_net.parameters()) > sum(p.numel() for p in model.pixel_net.parameters())
    out = model.render(torch.tensor([[0.0, 0.0, 1.0]]), 4, 5)
    assert out.shape == (1, 4, 5, 3) and torch.isfinite(out).all()
