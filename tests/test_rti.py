"""The classical RTI fits ``ptm``, ``hsh`` and ``rbf``: exact recovery of their own basis,
interpolation, checkpoints in a fresh process, other sizes, one-pass environment maps,
one-line errors, and training + evaluation through the CLI on the demo scene."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from conftest import render_in_fresh_process

from relightzoo.builtins.rti import hsh_basis, ptm_basis
from relightzoo.cli import main
from relightzoo.envmap import relight_envmap
from relightzoo.errors import PluginError
from relightzoo.lights import fibonacci_hemisphere
from relightzoo.train import load_checkpoint, read_config
from relightzoo.zoo import build_from_spec, create_model, model_spec

H, W = 6, 7


def _lights(n: int) -> torch.Tensor:
    return torch.as_tensor(fibonacci_hemisphere(n), dtype=torch.float32)


def _held_out() -> torch.Tensor:
    """Lights that are none of the Fibonacci training lights."""
    return F.normalize(torch.tensor([[0.3, -0.2, 0.93], [-0.5, 0.4, 0.6], [0.05, 0.7, 0.5]]), dim=-1)


def _images_from_basis(basis: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random coefficient planes ``[B, 3, H, W]`` and the images ``[T, H, W, 3]`` they make."""
    g = torch.Generator().manual_seed(seed)
    planes = torch.rand(basis.shape[1], 3, H, W, generator=g, dtype=torch.float64) - 0.5
    images = torch.einsum("tb,bchw->thwc", basis, planes)
    return planes, images


@pytest.mark.parametrize(
    ("name", "kwargs", "terms", "basis"),
    [
        ("ptm", {}, 6, ptm_basis),
        ("hsh", {}, 9, lambda l: hsh_basis(l, 2)),
        ("hsh", {"order": 3}, 16, lambda l: hsh_basis(l, 3)),
    ],
)
def test_fits_images_made_from_its_own_basis_and_recovers_them_at_held_out_lights(name, kwargs, terms, basis):
    train = _lights(30).double()
    planes, images = _images_from_basis(basis(train))
    model = create_model(name, **kwargs)
    assert not model.trainable and model.needs_images and model.terms == terms
    model.attach_training_data(images.float(), train.float())
    assert model.coefficients.shape == (terms, 3, H, W)
    torch.testing.assert_close(model.coefficients.double(), planes, atol=2e-5, rtol=0)
    test = _held_out()
    truth = torch.einsum("lb,bchw->lhwc", basis(test.double()), planes).float()
    torch.testing.assert_close(model.render_linear(test, H, W), truth, atol=2e-5, rtol=0)
    torch.testing.assert_close(model.render(test, H, W), truth.clamp(0, 1), atol=2e-5, rtol=0)


def test_ptm_is_the_biquadratic_in_the_projected_light():
    light = torch.tensor([[0.36, 0.48, 0.8]])
    torch.testing.assert_close(ptm_basis(light), torch.tensor([[0.36**2, 0.48**2, 0.36 * 0.48, 0.36, 0.48, 1.0]]))


def test_hemispherical_harmonics_are_orthonormal_over_the_upper_hemisphere():
    dirs = torch.as_tensor(fibonacci_hemisphere(60000), dtype=torch.float64)
    for order, terms in ((1, 4), (2, 9), (3, 16)):
        y = hsh_basis(dirs, order)
        assert y.shape == (60000, terms)
        gram = y.T @ y * (2 * math.pi / len(dirs))  # the hemisphere's solid angle is 2 pi
        assert float((gram - torch.eye(terms, dtype=torch.float64)).abs().max()) < 5e-3
    # degree 0 is the constant 1 / sqrt(2 pi); the pole is the pole of the stretched sphere
    torch.testing.assert_close(hsh_basis(dirs[:3], 0), torch.full((3, 1), 1 / math.sqrt(2 * math.pi), dtype=torch.float64))


@pytest.mark.parametrize("planes", [0, 11])
def test_rbf_without_regulariser_interpolates_its_training_lights_exactly(planes):
    train = _lights(12)
    images = torch.rand(12, H, W, 3, generator=torch.Generator().manual_seed(2))
    model = create_model("rbf", regularizer=0.0, planes=planes)
    model.attach_training_data(images, train)
    assert model.terms == 1 + (planes or 12)
    torch.testing.assert_close(model.render(train, H, W), images, atol=1e-4, rtol=0)
    # between the training lights it is a smooth blend: within the training images' range
    mid = _held_out()
    out = model.render_linear(mid, H, W)
    assert float(out.min()) > -0.5 and float(out.max()) < 1.5
    # far from every training light the interpolation falls back to the mean image
    far = F.normalize(torch.tensor([[1.0, 0.0, 1e-3]]), dim=-1)
    narrow = create_model("rbf", regularizer=0.0, width=0.05)
    narrow.attach_training_data(images, train)
    torch.testing.assert_close(narrow.render_linear(far, H, W)[0], images.mean(0), atol=1e-4, rtol=0)


def test_rbf_on_pca_planes_keeps_only_the_principal_components():
    train = _lights(20)
    g = torch.Generator().manual_seed(3)
    # images of rank 3 around a mean: three PCA planes represent them exactly
    base = torch.rand(3, H * W * 3, generator=g)
    images = (0.5 + (torch.rand(20, 3, generator=g) - 0.5) @ base * 0.3).reshape(20, H, W, 3)
    pca = create_model("rbf", planes=3, regularizer=0.0)
    pca.attach_training_data(images, train)
    full = create_model("rbf", regularizer=0.0)
    full.attach_training_data(images, train)
    assert pca.coefficients.shape == (4, 3, H, W) and full.coefficients.shape == (21, 3, H, W)
    test = _held_out()
    torch.testing.assert_close(pca.render_linear(test, H, W), full.render_linear(test, H, W), atol=1e-4, rtol=0)
    torch.testing.assert_close(pca.render(train, H, W), images, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("name", "kwargs"), [("ptm", {}), ("hsh", {"order": 3}), ("rbf", {"planes": 5})])
def test_renders_other_sizes_by_resampling_its_planes(name, kwargs):
    train = _lights(30)
    images = torch.rand(30, H, W, 3, generator=torch.Generator().manual_seed(4)) * 0.5 + 0.25
    model = create_model(name, **kwargs)
    model.attach_training_data(images, train)
    test = _held_out()
    native = model.render_linear(test, H, W)
    for size, antialias in (((12, 14), False), ((3, 4), True)):
        other = model.render_linear(test, *size)
        assert other.shape == (3, *size, 3)
        expected = F.interpolate(native.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False,
                                 antialias=antialias).permute(0, 2, 3, 1)
        torch.testing.assert_close(other, expected, atol=1e-5, rtol=0)
        torch.testing.assert_close(model.render(test, *size), expected.clamp(0, 1), atol=1e-5, rtol=0)


@pytest.mark.parametrize(("name", "kwargs"), [("ptm", {}), ("hsh", {}), ("rbf", {}), ("rbf", {"planes": 4})])
def test_one_pass_envmap_equals_the_sum_of_single_light_renders(name, kwargs):
    train = _lights(30)
    images = torch.rand(30, H, W, 3, generator=torch.Generator().manual_seed(5)) * 0.2 + 0.4
    model = create_model(name, **kwargs)
    model.attach_training_data(images, train)
    dirs = _lights(40)
    weights = torch.rand(40, 3, generator=torch.Generator().manual_seed(6)) * 0.1
    renders = model.render(dirs, H, W)
    assert float(renders.min()) > 0 and float(renders.max()) < 1  # nothing clamped: the identity is exact
    summed = torch.einsum("lhwc,lc->hwc", renders.double(), weights.double())
    fast = model.relight_envmap(dirs, weights, H, W)
    assert fast.shape == (H, W, 3)
    torch.testing.assert_close(fast.double(), summed, atol=1e-5, rtol=1e-5)
    # through relightzoo.envmap the model's own path is taken, at another size too
    env = np.ones((8, 16, 3), dtype=np.float32)
    image, info = relight_envmap(model, env, k=16, height=2 * H, width=2 * W, progress=False)
    assert info["path"] == "model" and image.shape == (2 * H, 2 * W, 3)
    with pytest.raises(PluginError, match="40 directions but 3 weights"):
        model.relight_envmap(dirs, weights[:3], H, W)


@pytest.mark.parametrize(
    ("name", "kwargs", "count", "message"),
    [
        ("ptm", {}, 5, "model 'ptm' needs at least 6 training lights, got 5"),
        ("hsh", {}, 8, "model 'hsh' of order 2 needs at least 9 training lights, got 8"),
        ("hsh", {"order": 3}, 15, "model 'hsh' of order 3 needs at least 16 training lights, got 15"),
        ("rbf", {}, 1, "model 'rbf' needs at least 2 training lights, got 1"),
        ("rbf", {"planes": 12}, 12, "model 'rbf': planes=12 is more than the 11 principal components of 12 training images; use planes from 1 to 11, or 0 for no PCA"),
    ],
)
def test_too_few_training_lights_is_a_one_line_error(name, kwargs, count, message):
    model = create_model(name, **kwargs)
    with pytest.raises(PluginError) as err:
        model.attach_training_data(torch.rand(count, H, W, 3), _lights(count))
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("rbf", {"width": 0.0}, "model 'rbf': width must be a positive number (in units of the light spacing), got 0.0"),
        ("rbf", {"width": -1.0}, "model 'rbf': width must be a positive number (in units of the light spacing), got -1.0"),
        ("rbf", {"regularizer": -1e-3}, "model 'rbf': regularizer must be 0 or a positive number, got -0.001"),
        ("rbf", {"planes": -2}, "model 'rbf': planes must be 0 (no PCA) or a number of principal components, got -2"),
        ("hsh", {"order": 0}, "model 'hsh': order must be from 1 to 6, got 0"),
        ("hsh", {"order": 7}, "model 'hsh': order must be from 1 to 6, got 7"),
    ],
)
def test_bad_arguments_are_one_line_errors(name, kwargs, message):
    with pytest.raises(PluginError) as err:
        create_model(name, **kwargs)
    assert str(err.value) == message


def test_an_unfitted_model_says_what_it_needs():
    with pytest.raises(PluginError, match=r"model 'ptm' is not fitted; attach_training_data\(\) or load a checkpoint first"):
        create_model("ptm").render(_held_out(), H, W)


def test_state_dict_reloads_into_a_freshly_built_model():
    train = _lights(20)
    images = torch.rand(20, H, W, 3, generator=torch.Generator().manual_seed(7))
    model = create_model("rbf", planes=6, width=1.5)
    model.attach_training_data(images, train)
    fresh = build_from_spec(json.loads(json.dumps(model_spec(model))))
    fresh.load_state_dict(model.state_dict())
    assert set(model.state_dict()) == {"coefficients", "centres", "mixing", "sigma"}
    assert torch.equal(fresh.render(_held_out(), H, W), model.render(_held_out(), H, W))


def test_train_and_eval_through_the_cli_on_the_demo_scene_and_reload_in_a_fresh_process(tmp_path: Path):
    runs = {}
    for name, args in (("ptm", []), ("hsh", ["--model-arg", "order=3"]), ("rbf", []), ("rbf-pca", ["--model-arg", "planes=8"])):
        out = tmp_path / name
        res = CliRunner().invoke(
            main,
            ["train", "demo", "--model", name.split("-")[0], *args, "--lights", "uniform:49", "--out", str(out), "--no-eval"],
            catch_exceptions=False,
        )
        assert res.exit_code == 0, res.output
        assert f"saved {name.split('-')[0]} (nothing to train)" in res.output
        config = read_config(out / "latest.safetensors")
        assert config["spec"]["model"]["name"] == name.split("-")[0] and config["dataset"]["split"]["rule"] == "uniform:49"
        runs[name] = out / "latest.safetensors"
    res = CliRunner().invoke(main, ["eval", str(runs["rbf"]), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)["results"]
    # interpolating 49 of the demo's lights relights the 951 others better than blending the nearest three
    assert results["model"]["all"]["count"] == 951
    assert results["model"]["all"]["psnr"] > results["blend"]["all"]["psnr"] + 0.5
    # the checkpoints hold coefficient planes: 6 for ptm, 16 for hsh order 3, the mean and 8 PCA planes for rbf
    shapes = {name: load_checkpoint(path)[0].coefficients.shape[0] for name, path in runs.items()}
    assert shapes == {"ptm": 6, "hsh": 16, "rbf": 50, "rbf-pca": 9}
    light = _held_out()
    expected = {name: load_checkpoint(path)[0].render(light, 64, 64) for name, path in runs.items()}
    fresh = {str(i): render_in_fresh_process(p, light, 64, 64, tmp_path) for i, p in enumerate(runs.values())}
    for i, name in enumerate(runs):
        assert torch.equal(fresh[str(i)], expected[name]), name
