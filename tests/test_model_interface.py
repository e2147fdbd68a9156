"""The model interface a plugin implements: capabilities asked in one place, one ``render``
signature, data-shaped buffers through a public mechanism, and today's plugins unbroken."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.errors import PluginError
from relightzoo.train import load_checkpoint
from relightzoo.zoo import CapturedImagesModel, RelightModel, capabilities, create_model, hookimpl, render_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=24, height=12, width=12)


def _cli(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def _ptm_basis(lights: torch.Tensor) -> torch.Tensor:
    u, v = lights[:, 0], lights[:, 1]
    return torch.stack([u * u, v * v, u * v, u, v, torch.ones_like(u)], -1)


class PTM(RelightModel):
    """A per-pixel polynomial texture map fitted by least squares, written to the documented
    interface: ``trainable``, ``needs_images``, ``data_shaped_buffers``, a ``render`` without ``chunk``."""

    trainable = False
    needs_images = True
    data_shaped_buffers = ("coeffs",)

    def __init__(self, ridge: float = 1e-4) -> None:
        super().__init__()
        if ridge < 0:
            raise PluginError(f"model 'ptm': ridge must be 0 or more, got {ridge}")
        self.ridge = ridge
        self.register_buffer("coeffs", torch.zeros(6, 0, 0, 3))

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        t, h, w, _ = images.shape
        a = _ptm_basis(lights.double())
        solved = torch.linalg.solve(a.T @ a + self.ridge * torch.eye(6, dtype=a.dtype), a.T @ images.reshape(t, -1).double())
        self.coeffs = solved.reshape(6, h, w, 3).float()

    def render(self, lights: torch.Tensor, height: int, width: int) -> torch.Tensor:
        img = torch.einsum("lk,khwc->lhwc", _ptm_basis(torch.as_tensor(lights, dtype=torch.float32).reshape(-1, 3)), self.coeffs)
        if tuple(img.shape[1:3]) != (height, width):
            img = torch.nn.functional.interpolate(img.permute(0, 3, 1, 2), size=(height, width), mode="bilinear").permute(0, 2, 3, 1)
        return img.clamp(0.0, 1.0)


class PTMPlugin:
    @hookimpl
    def register_models(self, register):
        register("ptm-test", PTM, "polynomial texture map (test)")


def test_capabilities_follow_the_documented_contract() -> None:
    blend = capabilities(create_model("blend"))
    assert (blend.needs_images, blend.trainable, blend.coordinate, blend.draws_own_batches) == (True, False, False, False)
    siren = capabilities(create_model("siren"))
    assert (siren.needs_images, siren.trainable, siren.coordinate, siren.relight_envmap) == (False, True, True, None)
    assert siren.train_defaults == {"lr": 5e-4, "schedule": "cosine"}
    assert capabilities(create_model("learned-blend")).draws_own_batches
    lowrank = create_model("low-rank")
    assert capabilities(lowrank).relight_envmap == lowrank.relight_envmap and capabilities(lowrank).needs_images

    class Overrides(RelightModel):  # overriding attach_training_data asks for the images
        def attach_training_data(self, images, lights):
            pass

    class SaysNo(Overrides):
        needs_images = False

    assert capabilities(Overrides()).needs_images and not capabilities(SaysNo()).needs_images
    assert not capabilities(RelightModel()).needs_images
    assert capabilities(PTM).train_defaults == {} and capabilities(type(lowrank)).train_defaults["steps"] == 1000


def test_render_model_passes_chunk_only_to_a_render_that_takes_it() -> None:
    seen = []

    class WithChunk(RelightModel):
        def render(self, lights, height, width, *, chunk=None):
            seen.append(chunk)
            return torch.zeros(len(lights), height, width, 3)

    class WithoutChunk(RelightModel):
        def render(self, lights, height, width):
            seen.append("none")
            return torch.zeros(len(lights), height, width, 3)

    light = torch.tensor([[0.0, 0.0, 1.0]])
    render_model(WithChunk(), light, 2, 3, chunk=64)
    render_model(WithChunk(), light, 2, 3)
    assert render_model(WithoutChunk(), light, 2, 3, chunk=64).shape == (1, 2, 3, 3)
    assert seen == [64, None, "none"]
    siren = create_model("siren", hidden_features=8, hidden_layers=1).eval()
    torch.testing.assert_close(render_model(siren, light, 9, 7, chunk=5), siren.render(light, 9, 7), rtol=0, atol=1e-6)


def test_data_shaped_buffers_take_the_saved_shape_through_the_public_load_hook() -> None:
    fitted = PTM()
    fitted.attach_training_data(torch.rand(7, 5, 4, 3), torch.nn.functional.normalize(torch.rand(7, 3) + 0.1, dim=-1))
    fresh = PTM()
    assert fresh.coeffs.shape == (6, 0, 0, 3)
    fresh.load_state_dict(fitted.state_dict())
    assert torch.equal(fresh.coeffs, fitted.coeffs)
    images = CapturedImagesModel()
    images.attach_training_data(torch.rand(3, 4, 5, 3), torch.eye(3))
    other = CapturedImagesModel()
    other.load_state_dict(images.state_dict())
    assert torch.equal(other.images, images.images) and torch.equal(other.lights, images.lights)
    assert "_load_from_state_dict" not in vars(CapturedImagesModel)


def test_a_closed_form_image_model_from_the_docs_trains_evaluates_relights_and_reloads(data, tmp_path, register_plugin) -> None:
    register_plugin(PTMPlugin(), "ptm")
    out = tmp_path / "ptm"
    res = _cli("train", data, "--model", "ptm-test", "--lights", "uniform:16", "--out", out, "--no-eval")
    assert res.exit_code == 0, res.output
    assert "nothing to train" in res.output
    ckpt = out / "latest.safetensors"
    res = _cli("eval", ckpt, "--json")
    assert res.exit_code == 0, res.output
    scores = json.loads(res.output)["results"]
    assert scores["model"]["all"]["psnr"] > 25.0  # a quadratic in the light fits a Lambertian scene
    assert scores["model"]["all"]["psnr"] > scores["blend"]["all"]["psnr"]
    res = _cli("relight", ckpt, "--light", "0.3,0.2,0.93", "--size", "20x10", "--out", tmp_path / "one.png")
    assert res.exit_code == 0, res.output
    res = _cli("relight", ckpt, "--orbit-polar", "40", "--degrees", "--frames", "3", "--out", tmp_path / "orbit.gif")
    assert res.exit_code == 0, res.output
    from relightzoo.envmap import write_hdr

    write_hdr(tmp_path / "sky.hdr", np.full((8, 16, 3), 0.5, dtype=np.float32))
    res = _cli("relight", ckpt, "--envmap", tmp_path / "sky.hdr", "--envmap-k", "8", "--out", tmp_path / "sky.png")
    assert res.exit_code == 0, res.output
    model, _ = load_checkpoint(ckpt)
    assert model.coeffs.shape == (6, 12, 12, 3)


class LegacyImages(RelightModel):
    """Written against the interface before it was documented: the attributes, torch's
    private ``_load_from_state_dict`` and ``render(..., chunk=None)``."""

    needs_images = True
    trainable = False

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(0, 0, 3))

    def attach_training_data(self, images, lights):
        self.mean = images.mean(0)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        saved = state_dict.get(prefix + "mean")
        if saved is not None and saved.shape != self.mean.shape:
            self.mean = torch.empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def render(self, lights, height, width, chunk=None):
        img = self.mean.permute(2, 0, 1)[None]
        img = torch.nn.functional.interpolate(img, size=(height, width), mode="bilinear").permute(0, 2, 3, 1)
        return img.expand(len(lights), -1, -1, -1).clamp(0, 1)


class LegacyPlugin:
    @hookimpl
    def register_models(self, register):
        register("legacy-mean", LegacyImages, "mean image (old interface)")


def test_a_plugin_written_against_the_old_interface_keeps_working_with_a_deprecation_warning(data, tmp_path, register_plugin) -> None:
    register_plugin(LegacyPlugin(), "legacy")
    with pytest.warns(DeprecationWarning, match=r"LegacyImages overrides torch's private _load_from_state_dict.*data_shaped_buffers"):
        create_model("legacy-mean")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # warned once per class, not at every build
        create_model("legacy-mean")
    out = tmp_path / "legacy"
    res = _cli("train", data, "--model", "legacy-mean", "--lights", "uniform:8", "--out", out)
    assert res.exit_code == 0, res.output
    ckpt = out / "latest.safetensors"
    for args in (["--light", "0,0,1", "--size", "6x4", "--out", tmp_path / "x.png"],
                 ["--orbit-polar", "30", "--degrees", "--frames", "2", "--out", tmp_path / "x.gif"]):
        res = _cli("relight", ckpt, *args)
        assert res.exit_code == 0, res.output
    model, _ = load_checkpoint(ckpt)
    assert model.mean.shape == (12, 12, 3) and float(model.mean.mean()) > 0.01


def test_a_trainable_model_the_loop_cannot_feed_says_how_to_declare_a_closed_form_fit(data, tmp_path, register_plugin) -> None:
    class Forgot(PTM):
        trainable = True

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register("forgot", Forgot)

    register_plugin(Plugin(), "forgot")
    res = _cli("train", data, "--model", "forgot", "--out", tmp_path / "f")
    assert res.exit_code == 1
    assert "set trainable = False on a model fitted in closed form" in res.output
