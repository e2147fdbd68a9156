"""Transitions and orbits: the light paths, their renders and the animated GIFs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageSequence

from relightzoo.animation import orbit_lights, render_sequence, transition_lights, write_gif
from relightzoo.errors import DataError, LightsError
from relightzoo.lights import angular_distance, cartesian_to_spherical


class SpotModel:
    """A stand-in model: a bright spot that sits where the light points (x, y of the light)."""

    def render(self, lights: torch.Tensor, height: int, width: int) -> torch.Tensor:
        lights = torch.as_tensor(lights, dtype=torch.float32).reshape(-1, 3)
        y, x = torch.meshgrid(
            (torch.arange(height) + 0.5) * 2 / height - 1, (torch.arange(width) + 0.5) * 2 / width - 1, indexing="ij"
        )
        d2 = (x[None] - lights[:, 0, None, None]) ** 2 + (y[None] - lights[:, 1, None, None]) ** 2
        spot = torch.exp(-d2 / 0.1)
        return torch.stack([spot, 0.5 * spot + 0.2, lights[:, 2, None, None].expand_as(spot)], -1)


def _read_gif(path):
    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB"), dtype=np.float32) / 255 for f in ImageSequence.Iterator(im)]
        return np.stack(frames), dict(im.info), im.n_frames


def test_transition_runs_along_the_great_circle_from_a_to_b():
    a, b = np.array([0.0, 0.0, 1.0]), np.array([2.0, 2.0, 1.0]) / 3.0
    path = transition_lights(a, b, 9)
    assert path.shape == (9, 3)
    assert np.allclose(path[0], a) and np.allclose(path[-1], b)
    steps = angular_distance(path[1:], path[:-1])
    assert np.allclose(steps, steps[0])  # constant angular speed
    normal = np.cross(path[0], path[-1])
    assert np.allclose(path @ normal, 0.0, atol=1e-12)  # one great circle
    assert (path[:, 2] >= 0).all()


def test_transition_errors():
    with pytest.raises(LightsError, match="two different lights"):
        transition_lights([0, 0, 1], [0, 0, 1], 5)
    with pytest.raises(LightsError, match=r"transition end: direction 0 .* is below the horizon"):
        transition_lights([0, 0, 1], [0.8, 0, -0.6], 5)
    below = transition_lights([0, 0, 1], [0.8, 0, -0.6], 5, allow_below_horizon=True)
    assert below[-1][2] == pytest.approx(-0.6)
    with pytest.raises(LightsError, match="at least 2 frames, got 1"):
        transition_lights([0, 0, 1], [1, 0, 0], 1)


def test_orbit_circles_the_pole_at_one_polar_angle():
    path = orbit_lights(0.6, 8)
    sph = cartesian_to_spherical(path)
    assert np.allclose(sph[:, 0], 0.6)
    assert np.allclose(np.diff(np.unwrap(sph[:, 1])), 2 * math.pi / 8)
    with pytest.raises(LightsError, match="outside"):
        orbit_lights(2.0, 8)


def test_render_sequence_renders_each_light():
    model = SpotModel()
    lights = transition_lights([0, 0, 1], [0.8, 0, 0.6], 5)
    frames = render_sequence(model, lights, 12, 16, chunk_lights=2, progress=False)
    assert frames.shape == (5, 12, 16, 3) and frames.dtype == np.float32
    expected = model.render(torch.tensor(lights, dtype=torch.float32), 12, 16).clamp(0, 1).numpy()
    assert np.allclose(frames, expected, atol=1e-6)
    with pytest.raises(DataError, match="frame size must be positive, got 0 x 12"):
        render_sequence(model, lights, 12, 0, progress=False)


def test_gif_has_the_asked_frames_size_and_loop(tmp_path):
    model = SpotModel()
    frames = render_sequence(model, orbit_lights(0.7, 10), 24, 32, progress=False)
    n = write_gif(frames, tmp_path / "orbit.gif", fps=20)
    assert n == 10
    back, info, count = _read_gif(tmp_path / "orbit.gif")
    assert count == 10 and back.shape == (10, 24, 32, 3)
    assert info["loop"] == 0 and info["duration"] == 50
    assert np.abs(back - frames).mean() < 0.01  # one shared 256-colour palette
    assert not (tmp_path / "orbit.gif.tmp").exists()


def test_identical_frames_are_all_kept(tmp_path):
    still = np.tile(np.linspace(0, 1, 20, dtype=np.float32)[None, :, None], (10, 1, 3))
    frames = np.stack([still] * 4 + [1 - still] + [1 - still] * 2)
    assert write_gif(frames, tmp_path / "still.gif", fps=5, loop=None) == 7
    back, info, count = _read_gif(tmp_path / "still.gif")
    assert count == 7
    assert "loop" not in info  # plays once
    assert np.abs(back[:4] - still).max() < 0.02 and np.abs(back[4:] - (1 - still)).max() < 0.02


def test_gif_input_errors(tmp_path):
    with pytest.raises(DataError, match=r"GIF frames must have shape \[N, H, W, 3\], got \[4, 4, 3\]"):
        write_gif(np.zeros((4, 4, 3)), tmp_path / "a.gif")
    with pytest.raises(DataError, match="cannot write a GIF of 0 frames"):
        write_gif(np.zeros((0, 4, 4, 3)), tmp_path / "a.gif")
    with pytest.raises(DataError, match="at most 50 fps, got 60"):
        write_gif(np.zeros((2, 4, 4, 3)), tmp_path / "a.gif", fps=60)
    assert not (tmp_path / "a.gif").exists()
