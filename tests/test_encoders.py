"""The built-in coordinate encoders: shapes, values and their defining properties."""

from __future__ import annotations

import math

import pytest
import torch

from relightzoo.errors import PluginError
from relightzoo.lights import spherical_to_cartesian
from relightzoo.zoo import Encoder, create_encoder


def _lights(phi_theta: list[tuple[float, float]]) -> torch.Tensor:
    return spherical_to_cartesian(torch.tensor(phi_theta, dtype=torch.float64)).float()


@pytest.fixture
def samples() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    pixels = torch.rand(64, 2, generator=gen) * 2 - 1
    upper = torch.rand(64, 3, generator=gen) * torch.tensor([2.0, 2.0, 1.0]) - torch.tensor([1.0, 1.0, 0.0])
    lights = torch.nn.functional.normalize(upper, dim=-1)
    return pixels, lights


@pytest.mark.parametrize("name", ["raw", "scaled-spherical", "fourier", "direction"])
def test_every_encoder_states_its_width_and_keeps_it(name, samples):
    enc = create_encoder(name)
    assert isinstance(enc, Encoder)
    out = enc(*samples)
    assert out.shape == (64, enc.out_features)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_raw_is_pixels_then_polar_and_azimuth():
    pixels = torch.tensor([[0.25, -0.5], [1.0, 1.0], [-1.0, 0.0]])
    lights = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    out = create_encoder("raw")(pixels, lights)
    expected = torch.tensor([[0.25, -0.5, 0.0, 0.0], [1.0, 1.0, math.pi / 2, 0.0], [-1.0, 0.0, math.pi / 2, math.pi / 2]])
    torch.testing.assert_close(out, expected)


def test_scaled_spherical_divides_the_angles(samples):
    raw = create_encoder("raw")(*samples)
    out = create_encoder("scaled-spherical")(*samples)
    torch.testing.assert_close(out, raw / torch.tensor([1.0, 1.0, 10.0, 100.0]))
    custom = create_encoder("scaled-spherical", phi_divisor=2, theta_divisor="4")(*samples)
    torch.testing.assert_close(custom, raw / torch.tensor([1.0, 1.0, 2.0, 4.0]))
    with pytest.raises(PluginError, match="encoder 'scaled-spherical': theta_divisor must be a finite non-zero number, got 0.0"):
        create_encoder("scaled-spherical", theta_divisor=0)


def test_direction_has_no_seam_at_theta_pi():
    eps = 1e-4
    lights = _lights([(0.8, math.pi - eps), (0.8, -math.pi + eps)])
    pixels = torch.zeros(2, 2)
    direction = create_encoder("direction", light_scale=1.0)(pixels, lights)
    raw = create_encoder("raw")(pixels, lights)
    assert (direction[0] - direction[1]).abs().max() < 1e-3  # neighbours stay neighbours
    assert (raw[0, 3] - raw[1, 3]).abs() > 6.0  # while theta jumps by 2 pi
    torch.testing.assert_close(direction[:, 2:], lights)


def test_direction_is_smooth_at_the_pole():
    # lights 1e-3 rad from the pole on opposite sides: theta differs by pi, the vector barely moves
    lights = _lights([(1e-3, 0.0), (1e-3, math.pi)])
    direction = create_encoder("direction", light_scale=0.5)(torch.zeros(2, 2), lights)
    assert (direction[0] - direction[1]).abs().max() < 2e-3
    torch.testing.assert_close(direction[:, 2:], lights * 0.5)


def test_fourier_features_are_seeded_and_saved(samples):
    a = create_encoder("fourier", pixel_features=16, light_features=8, pixel_seed=3)
    b = create_encoder("fourier", pixel_features=16, light_features=8, pixel_seed=3)
    c = create_encoder("fourier", pixel_features=16, light_features=8, pixel_seed=4)
    assert a.out_features == 2 * (16 + 8)
    torch.testing.assert_close(a(*samples), b(*samples))
    assert not torch.allclose(a.pixel_matrix, c.pixel_matrix)
    torch.testing.assert_close(a.light_matrix, c.light_matrix)  # the light seed did not change
    state = a.state_dict()
    assert set(state) == {"pixel_matrix", "light_matrix"}
    assert state["pixel_matrix"].shape == (16, 2) and state["light_matrix"].shape == (8, 3)


def test_fourier_outputs_sine_cosine_pairs_with_the_given_scale(samples):
    enc = create_encoder("fourier", pixel_features=512, light_features=4, pixel_scale=3.0)
    out = enc(*samples)
    sin, cos = out[:, :512], out[:, 512:1024]
    torch.testing.assert_close(sin**2 + cos**2, torch.ones_like(sin))
    # entries of B are N(0, scale^2), stored multiplied by 2 pi
    std = (enc.pixel_matrix / (2 * math.pi)).std().item()
    assert 2.7 < std < 3.3


def test_fourier_with_zero_features_passes_coordinates_through(samples):
    enc = create_encoder("fourier", pixel_features=0, light_features=4)
    out = enc(*samples)
    assert enc.out_features == 2 + 8
    torch.testing.assert_close(out[:, :2], samples[0])
    enc = create_encoder("fourier", pixel_features=4, light_features=0, include_input=True)
    assert enc.out_features == 8 + 3 + 5
    torch.testing.assert_close(enc(*samples)[:, -5:], torch.cat(samples, -1))


def test_fourier_argument_errors():
    with pytest.raises(PluginError, match="encoder 'fourier' argument 'pixel_features' expects an integer"):
        create_encoder("fourier", pixel_features="many")
    with pytest.raises(PluginError, match="encoder 'fourier': light_features must be 0 or more, got -1"):
        create_encoder("fourier", light_features=-1)


def test_a_custom_encoder_passes_through(samples):
    class Constant(Encoder):
        def __init__(self):
            super().__init__()
            self.out_features = 1

        def forward(self, pixels, lights):
            return torch.ones(len(pixels), 1)

    enc = Constant()
    assert create_encoder(enc) is enc
