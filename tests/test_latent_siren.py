"""The ``latent-siren`` model: siren with a learned per-pixel latent beside every layer; it
starts as siren, fits a small scene better than siren in the same steps, trains through the
CLI, reloads in a fresh process and renders the same, renders other sizes and environment
maps, and says what is wrong."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_olat_folder, render_in_fresh_process, train_small_with_cli
from relightzoo.data import load_dataset
from relightzoo.envmap import envmap_to_lights, relight_envmap
from relightzoo.errors import PluginError
from relightzoo.lights import select_lights
from relightzoo.metrics import psnr
from relightzoo.train import load_checkpoint, train
from relightzoo.zoo import create_model

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"hidden_layers": 2, "hidden_features": 32}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=40, height=12, width=12)


def _model(name: str = "latent-siren", **kwargs):
    return create_model(name, encoder="direction", activation="sine", **{**SMALL, **kwargs})


def test_starts_as_the_siren_with_the_same_weights() -> None:
    torch.manual_seed(0)
    ours = _model(height=6, width=5)
    torch.manual_seed(0)
    theirs = _model("siren")
    # same layers in the same order: copy siren's weights in, the zero latents change nothing
    ours.layers.load_state_dict({k: v for k, v in theirs.net[:-1].state_dict().items()})
    ours.head.load_state_dict(theirs.net[-1].state_dict())
    lights = torch.tensor([[0.2, 0.1, 0.97], [-0.5, 0.3, 0.81]])
    assert torch.allclose(ours.render(lights, 6, 5), theirs.render(lights, 6, 5), atol=1e-6)
    assert ours.latents.shape == (6, 5, 2, 32)


def test_fits_a_small_scene_better_than_siren_in_the_same_steps(data: Path, tmp_path: Path) -> None:
    dataset = load_dataset(data)
    split = select_lights("uniform:16", dataset.lights)
    test = torch.as_tensor(np.asarray(split.test))
    truth = dataset.images(test)
    scores = {}
    for name in ("siren", "latent-siren"):
        torch.manual_seed(0)
        result = train(dataset, split, _model(name), steps=150, batch_size=512, lr=1e-3, out_dir=tmp_path / name, progress=False)
        scores[name] = float(psnr(result.model.render(dataset.lights[test], 12, 12), truth).mean())
    assert scores["latent-siren"] > scores["siren"] + 3.0, scores


def test_trains_through_cli_reloads_in_fresh_process_and_renders_any_size(data: Path, tmp_path: Path) -> None:
    checkpoint = train_small_with_cli(data, tmp_path / "run", "latent-siren", SMALL, steps=3)
    model, config = load_checkpoint(checkpoint)
    assert config["spec"]["model"]["name"] == "latent-siren" and model.latents.shape == (12, 12, 2, 32)
    assert float(model.latents.detach().abs().max()) > 0  # the latents trained
    lights = torch.tensor([[0.2, 0.1, 0.97], [-0.5, 0.3, 0.81]])
    here = model.render(lights, 12, 12)
    assert torch.equal(render_in_fresh_process(checkpoint, lights.tolist(), 12, 12, tmp_path), here)
    big = model.render(lights, 24, 24)
    down = torch.nn.functional.avg_pool2d(big.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    assert big.shape == (2, 24, 24, 3) and float((down - here).abs().mean()) < 0.05
    assert torch.allclose(model.render(lights, 12, 12, chunk=7), here, atol=1e-6)


def test_a_few_latent_values_per_pixel_train_project_to_every_layer_and_reload(data: Path, tmp_path: Path) -> None:
    """``latent_features=k``: a table of k values per pixel and one projection to every
    layer; it trains, its checkpoint reloads in a fresh process and renders the same image."""
    checkpoint = train_small_with_cli(data, tmp_path / "run", "latent-siren", {**SMALL, "latent_features": 4}, steps=5)
    model, _ = load_checkpoint(checkpoint)
    assert model.latents.shape == (12, 12, 1, 4) and model.projection.shape == (4, 2 * 32)
    assert float(model.latents.detach().abs().max()) > 0
    pixels = torch.tensor([[0.1, -0.3], [0.5, 0.5]])
    per_layer = model.layer_latents(pixels)
    expected = (model.pixel_latents(pixels)[0] @ model.projection).reshape(2, 2, 32).transpose(0, 1)
    assert per_layer.shape == (2, 2, 32) and torch.allclose(per_layer, expected)
    lights = torch.tensor([[0.2, 0.1, 0.97], [-0.5, 0.3, 0.81]])
    here = model.render(lights, 12, 12)
    assert torch.equal(render_in_fresh_process(checkpoint, lights.tolist(), 12, 12, tmp_path), here)
    assert model.render(lights, 20, 16).shape == (2, 20, 16, 3)


def test_shadow_samples_read_the_latents_toward_the_light_train_and_reload(data: Path, tmp_path: Path) -> None:
    """``shadow_samples``: a pixel reads the latents between it and the light (pixel y down,
    light y up), not those behind it; the model trains, reloads in a fresh process and
    renders the same image at any size."""
    torch.manual_seed(0)
    model = _model(height=12, width=12, latent_features=2, shadow_samples=4, shadow_reach=0.8)
    with torch.no_grad():
        model.latents[5, 2] = 1.0  # one occluder, four pixels left of the pixel below
    here = torch.tensor([[(2 * 6 + 1) / 12 - 1, (2 * 5 + 1) / 12 - 1]])  # pixel (row 5, column 6)
    from_left, from_right = torch.tensor([[-0.8, 0.0, 0.6]]), torch.tensor([[0.8, 0.0, 0.6]])
    below = torch.tensor([[(2 * 2 + 1) / 12 - 1, (2 * 9 + 1) / 12 - 1]])  # pixel (row 9, column 2): the occluder is up
    with torch.no_grad():
        assert float(model.shadow_latents(here, from_left).abs().max()) > 0.1
        assert float(model.shadow_latents(here, from_right).abs().max()) == 0.0
        assert float(model.shadow_latents(below, torch.tensor([[0.0, 0.8, 0.6]])).abs().max()) > 0.1
        assert float(model.shadow_latents(below, torch.tensor([[0.0, -0.8, 0.6]])).abs().max()) == 0.0

    args = {**SMALL, "latent_features": 4, "shadow_samples": 3}
    checkpoint = train_small_with_cli(data, tmp_path / "run", "latent-siren", args, steps=5)
    model, _ = load_checkpoint(checkpoint)
    assert model.shadow_projection.shape == (3 * 4, 2 * 32) and model.toward_light.shape == (2, 3)
    assert not torch.equal(model.toward_light.detach(), torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]))  # learned
    lights = torch.tensor([[0.2, 0.1, 0.97], [-0.5, 0.3, 0.81]])
    rendered = model.render(lights, 12, 12)
    assert torch.equal(render_in_fresh_process(checkpoint, lights.tolist(), 12, 12, tmp_path), rendered)
    assert model.render(lights, 20, 16).shape == (2, 20, 16, 3)


def test_environment_map_is_the_weighted_sum_of_renders() -> None:
    torch.manual_seed(0)
    model = _model(height=10, width=12)
    with torch.no_grad():
        model.latents.normal_(0.0, 0.01)
    env = np.zeros((16, 32, 3), dtype=np.float32)
    env[3, 5] = (4.0, 2.0, 1.0)
    env[5, 20] = (1.0, 3.0, 2.0)
    image, info = relight_envmap(model, env, k=8, height=10, width=12, progress=False)
    dirs, weights = envmap_to_lights(env, 8)
    renders = model.render(torch.as_tensor(dirs, dtype=torch.float32), 10, 12).numpy()
    assert info["k_used"] == 2
    assert np.allclose(image, np.einsum("khwc,kc->hwc", renders, weights) / math.pi, rtol=1e-5, atol=1e-6)


def test_bad_arguments_and_an_unsized_table_are_one_line_errors() -> None:
    for arg, message in (
        ({"latent_scale": 0.0}, "model 'latent-siren': latent_scale must be a positive number, got 0.0"),
        ({"hidden_layers": 0}, "model 'latent-siren': hidden_layers must be at least 1, got 0"),
        ({"latent_features": -2}, "model 'latent-siren': latent_features must be 0 (a full latent per layer) or a number of values per pixel, got -2"),
        ({"height": 4}, "model 'latent-siren': height and width must both be positive (or both 0: from the training images), got 4 x 0"),
        ({"shadow_samples": -1, "latent_features": 4}, "model 'latent-siren': shadow_samples must be 0 (none) or more, got -1"),
        ({"shadow_samples": 4}, "model 'latent-siren': shadow_samples needs latent_features (a few values per pixel, e.g. 16): the full table has 768 per pixel"),
        ({"shadow_samples": 4, "latent_features": 4, "shadow_reach": 0.0}, "model 'latent-siren': shadow_reach must be a positive number, got 0.0"),
    ):
        with pytest.raises(PluginError) as err:
            create_model("latent-siren", **arg)
        assert str(err.value) == message
    with pytest.raises(PluginError, match="does not know its resolution"):
        create_model("latent-siren").render(torch.tensor([[0.0, 0.0, 1.0]]), 4, 4)


@pytest.mark.parametrize(
    "model_args, light_scale",
    [({}, 0.1), ({"latent_features": 16, "latent_scale": 10.0}, 0.3)],
    ids=["full-table", "quick-recipe-latents"],
)
def test_beats_blend_on_a_small_real_render(tmp_path: Path, model_args: dict, light_scale: float) -> None:
    """A 16 x 16 crop of the demo render (the box's corner, the ball, the stairs) under 150
    of its lights, 49 for training: a few seconds of training must beat blending the nearest
    captures. Measured: latent-siren 28.62 dB held-out with the full table, 28.67 with the
    quick recipe's 16 latent values (light x 0.3, its long recipe's); blend 27.98 (siren in the same steps
    stays below blend); regressing to blend, or to the plain siren, fails."""
    from relightzoo.data.dataset import OLATDataset
    from relightzoo.evaluate import make_baseline
    from relightzoo.sheets import spread_indices

    demo = load_dataset("demo")
    pick = np.sort(np.asarray(spread_indices(demo.lights, 150), dtype=np.int64))
    crop = demo.images(pick)[:, 24:40, 24:40].contiguous()
    scene = OLATDataset(crop, demo.lights[pick].numpy(), names=[demo.names[int(i)] for i in pick], source="demo crop")
    split = select_lights("uniform:49", scene.lights)
    test = torch.as_tensor(np.asarray(split.test))
    truth = scene.images(test)
    blend = float(psnr(make_baseline(scene, split).render(scene.lights[test], 16, 16), truth).mean())
    torch.manual_seed(0)
    model = create_model(
        "latent-siren", encoder="direction", encoder_args={"light_scale": light_scale}, activation="sine",
        hidden_layers=3, hidden_features=128, **model_args,
    )
    result = train(scene, split, model, steps=800, batch_size=2048, lr=1e-3, schedule="cosine", out_dir=tmp_path / "run", progress=False)
    ours = float(psnr(result.model.render(scene.lights[test], 16, 16), truth).mean())
    assert ours > blend + 0.4, (ours, blend)
