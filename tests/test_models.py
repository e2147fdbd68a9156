"""The built-in models: siren (shapes, rendering at any size, rebuilding from its spec) and
blend (exact at training lights, sensible between them, reloadable from a state dict)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from relightzoo.data.synthetic import lambertian_scene
from relightzoo.errors import PluginError
from relightzoo.lights import great_circle, hemisphere_pattern
from relightzoo.zoo import CoordinateModel, RelightModel, build_from_spec, create_model, get_plugin, model_spec


@pytest.fixture(scope="module")
def scene() -> tuple[torch.Tensor, torch.Tensor]:
    lights = hemisphere_pattern("fibonacci", 40)
    images = lambertian_scene(lights, 12, 16)
    return torch.from_numpy(images), torch.from_numpy(lights).float()


# -- siren ----------------------------------------------------------------------------------


def test_siren_defaults_are_three_layers_of_256():
    model = create_model("siren")
    assert isinstance(model, CoordinateModel) and model.trainable and not model.needs_images
    linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 256), (256, 256), (256, 256), (256, 3)]
    spec = model_spec(model)
    assert spec["encoder"]["name"] == "scaled-spherical" and spec["activation"]["name"] == "sine"


@pytest.mark.parametrize("encoder", ["raw", "scaled-spherical", "fourier", "direction"])
@pytest.mark.parametrize("activation", ["sine", "relu", "gelu"])
def test_siren_forward_with_every_encoder(encoder, activation):
    torch.manual_seed(0)
    model = create_model("siren", encoder=encoder, activation=activation, hidden_layers=2, hidden_features=16)
    pixels = torch.rand(10, 2) * 2 - 1
    lights = torch.nn.functional.normalize(torch.rand(10, 3), dim=-1)
    out = model(pixels, lights)
    assert out.shape == (10, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    for name, p in model.named_parameters():  # each gets a finite gradient, and not all zeros
        assert p.grad is not None and bool(torch.isfinite(p.grad).all()), name
        assert float(p.grad.abs().max()) > 0, f"{name}: the gradient is all zeros"


def test_siren_renders_any_resolution_in_chunks():
    torch.manual_seed(0)
    model = create_model("siren", encoder="direction", hidden_features=32)
    lights = torch.tensor([[0.0, 0.0, 1.0], [0.6, 0.0, 0.8]])
    small = model.render(lights, 6, 8)
    assert small.shape == (2, 6, 8, 3) and 0 <= small.min() and small.max() <= 1
    chunked = model.render(lights, 6, 8, chunk=8)  # one row at a time
    torch.testing.assert_close(small, chunked)
    big = model.render(lights[:1], 30, 40)
    assert big.shape == (1, 30, 40, 3)
    # a pixel centre shared by both grids renders the same at both sizes (6x8 -> 30x40: factor 5, centre at 2)
    torch.testing.assert_close(big[0, 2::5, 2::5], small[0], atol=1e-5, rtol=0)


def test_siren_is_rebuilt_from_its_spec():
    torch.manual_seed(0)
    model = create_model("siren", encoder="fourier", activation="cosine",
                         encoder_args={"pixel_features": 8, "light_features": 4}, hidden_features=24)
    spec = json.loads(json.dumps(model_spec(model)))  # survives JSON, as in a checkpoint
    rebuilt = build_from_spec(spec)
    assert model_spec(rebuilt) == spec
    rebuilt.load_state_dict(model.state_dict())
    pixels, lights = torch.rand(7, 2), torch.nn.functional.normalize(torch.rand(7, 3), dim=-1)
    torch.testing.assert_close(rebuilt(pixels, lights), model(pixels, lights))


def test_siren_argument_errors():
    with pytest.raises(PluginError, match="model 'siren' has no argument 'layers'"):
        create_model("siren", layers=3)
    with pytest.raises(PluginError, match="model 'siren': hidden_layers must be at least 1, got 0"):
        create_model("siren", hidden_layers=0)
    with pytest.raises(PluginError, match="encoder 'raw' has no argument 'scale'; its arguments are: none"):
        create_model("siren", encoder="raw", encoder_args={"scale": 2})


# -- blend ----------------------------------------------------------------------------------


def _blend(scene, **kwargs):
    model = create_model("blend", **kwargs)
    model.attach_training_data(*scene)
    return model


def test_blend_is_an_untrained_image_model_without_encoder():
    info = get_plugin("model", "blend")
    assert info.uses == () and info.defaults == {"k": 3, "power": 2.0}
    model = create_model("blend", encoder="fourier", activation="relu")  # ignored, not built
    assert isinstance(model, RelightModel) and not model.trainable and model.needs_images
    assert set(model_spec(model)) == {"model", "plugins"}
    with pytest.raises(PluginError, match="model 'blend' holds no training images"):
        model.render(torch.tensor([[0.0, 0.0, 1.0]]), 4, 4)


def test_blend_returns_the_training_image_at_a_training_light(scene):
    images, lights = scene
    model = _blend(scene)
    out = model.render(lights[[0, 17, 39]], 12, 16)
    torch.testing.assert_close(out, images[[0, 17, 39]], atol=1e-6, rtol=0)


def test_blend_interpolates_between_lights_sensibly(scene):
    images, lights = scene
    model = _blend(scene)
    query = great_circle(lights[3].numpy(), lights[7].numpy(), 5)[2:3]
    idx, weights = model.weights(torch.from_numpy(query))
    assert idx.shape == (1, 3)
    torch.testing.assert_close(weights.sum(-1), torch.ones(1))
    assert (weights[0, :-1] >= weights[0, 1:]).all()  # nearer lights weigh more
    out = model.render(torch.from_numpy(query).float(), 12, 16)[0]
    torch.testing.assert_close(out, torch.einsum("k,khwc->hwc", weights[0], images[idx[0]]))
    truth = torch.from_numpy(lambertian_scene(query, 12, 16)[0])
    nearest_error = (images[idx[0, 0]] - truth).abs().mean()
    assert (out - truth).abs().mean() < 0.7 * nearest_error  # better than the nearest image alone


def test_blend_renders_other_sizes(scene):
    model = _blend(scene)
    big = model.render(scene[1][:2], 36, 48)
    assert big.shape == (2, 36, 48, 3)
    # three times the size: every third pixel centre sits on an original pixel centre
    torch.testing.assert_close(big[:, 1::3, 1::3], scene[0][:2], atol=1e-5, rtol=0)
    small = model.render(scene[1][:2], 6, 8)
    assert small.shape == (2, 6, 8, 3)
    torch.testing.assert_close(small.mean((1, 2)), scene[0][:2].mean((1, 2)), atol=0.02, rtol=0)


def test_blend_reloads_from_a_state_dict_into_a_fresh_model(scene, tmp_path):
    model = _blend(scene, k=4, power=1.5)
    path = tmp_path / "blend.safetensors"
    save_file(model.state_dict(), str(path))
    fresh = build_from_spec(model_spec(model))
    assert fresh.images.shape == (0, 0, 0, 3)
    fresh.load_state_dict(load_file(str(path)))
    assert fresh.images.shape == (40, 12, 16, 3) and (fresh.k, fresh.power) == (4, 1.5)
    query = torch.nn.functional.normalize(torch.tensor([[0.2, -0.3, 0.9], [0.0, 0.5, 0.5]]), dim=-1)
    torch.testing.assert_close(fresh.render(query, 12, 16), model.render(query, 12, 16))


def test_blend_argument_and_data_errors(scene):
    with pytest.raises(PluginError, match="model 'blend': k must be at least 1, got 0"):
        create_model("blend", k=0)
    model = create_model("blend")
    with pytest.raises(PluginError, match=r"model 'blend': lights must be \[40, 3\], got \[3, 3\]"):
        model.attach_training_data(scene[0], scene[1][:3])
    with pytest.raises(PluginError, match=r"images must be \[T, H, W, 3\], got \[40, 12, 16\]"):
        model.attach_training_data(scene[0][..., 0], scene[1])


def test_blend_with_k_beyond_the_training_set_uses_them_all():
    lights = torch.nn.functional.normalize(torch.tensor([[0.0, 0.0, 1.0], [0.5, 0.0, 0.8]]), dim=-1)
    images = torch.from_numpy(lambertian_scene(lights.numpy().astype(np.float64), 4, 4))
    model = create_model("blend", k=5)
    model.attach_training_data(images, lights)
    out = model.render(torch.nn.functional.normalize(torch.tensor([[0.25, 0.0, 0.9]]), dim=-1), 4, 4)
    assert out.shape == (1, 4, 4, 3)
    assert (out[0] >= images.min(0).values - 1e-6).all() and (out[0] <= images.max(0).values + 1e-6).all()
