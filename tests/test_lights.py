"""Light geometry: conversions, patterns, selection rules, great circles, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relightzoo.errors import LightsError
from relightzoo.lights import (
    LightSplit,
    angular_distance,
    cartesian_to_spherical,
    fibonacci_hemisphere,
    great_circle,
    hemisphere_pattern,
    latlong_hemisphere,
    nearest_lights,
    select_lights,
    spherical_to_cartesian,
    validate_directions,
)


def _random_upper(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v[:, 2] = np.abs(v[:, 2])
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# -- conversions -------------------------------------------------------------------------


def test_round_trip_numpy():
    dirs = _random_upper(500)
    sph = cartesian_to_spherical(dirs)
    assert sph.shape == (500, 2)
    assert np.all((sph[:, 0] >= 0) & (sph[:, 0] <= math.pi / 2))
    np.testing.assert_allclose(spherical_to_cartesian(sph), dirs, atol=1e-12)
    np.testing.assert_allclose(cartesian_to_spherical(spherical_to_cartesian(sph)), sph, atol=1e-9)


def test_round_trip_torch_matches_numpy():
    dirs = _random_upper(200, seed=1)
    t = torch.from_numpy(dirs)
    sph_t = cartesian_to_spherical(t)
    assert isinstance(sph_t, torch.Tensor) and sph_t.shape == (200, 2)
    np.testing.assert_allclose(sph_t.numpy(), cartesian_to_spherical(dirs), atol=1e-12)
    back = spherical_to_cartesian(sph_t)
    assert isinstance(back, torch.Tensor)
    np.testing.assert_allclose(back.numpy(), dirs, atol=1e-12)
    # float32 tensors stay float32
    assert cartesian_to_spherical(t.float()).dtype == torch.float32


def test_leading_shapes_are_kept():
    dirs = _random_upper(24).reshape(2, 3, 4, 3)
    assert cartesian_to_spherical(dirs).shape == (2, 3, 4, 2)
    assert spherical_to_cartesian(cartesian_to_spherical(dirs)).shape == (2, 3, 4, 3)


def test_pole():
    for xp_dirs in (np.array([0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)):
        phi, theta = (float(v) for v in cartesian_to_spherical(xp_dirs))
        assert phi == 0.0 and theta == 0.0
    # any azimuth at polar 0 is the pole
    for theta in (-3.0, 0.0, 1.0, math.pi):
        np.testing.assert_allclose(spherical_to_cartesian(np.array([0.0, theta])), [0, 0, 1], atol=1e-15)


@pytest.mark.parametrize("to", [np.asarray, lambda a: torch.tensor(a, dtype=torch.float64)])
def test_azimuth_seam_maps_to_plus_pi(to):
    # the negative x axis reached from y > 0, y = +0, y = -0 and the wrapped-around -pi angle
    dirs = to(np.array([[-1.0, 0.0, 0.0], [-1.0, -0.0, 0.0], [-0.6, 0.0, 0.8], [-0.6, -0.0, 0.8]]))
    theta = np.asarray(cartesian_to_spherical(dirs))[:, 1]
    np.testing.assert_array_equal(theta, [math.pi] * 4)
    sph = to(np.array([[0.5, -math.pi], [0.5, math.pi]]))
    back = cartesian_to_spherical(spherical_to_cartesian(sph))
    np.testing.assert_allclose(np.asarray(back)[:, 1], [math.pi, math.pi], atol=1e-12)
    # just either side of the seam: continuous to +pi from above, to -pi from below
    eps = 1e-9
    near = np.asarray(cartesian_to_spherical(to(np.array([[-1.0, eps, 0.0], [-1.0, -eps, 0.0]]))))[:, 1]
    assert near[0] == pytest.approx(math.pi - eps, abs=1e-12)
    assert near[1] == pytest.approx(-math.pi + eps, abs=1e-12)


def test_azimuth_range_is_half_open():
    theta = cartesian_to_spherical(_random_upper(5000, seed=3))[:, 1]
    assert np.all(theta > -math.pi) and np.all(theta <= math.pi)


@pytest.mark.parametrize(
    "x, y, expected",
    [(1, 1, math.pi / 4), (-1, 1, 3 * math.pi / 4), (-1, -1, -3 * math.pi / 4), (1, -1, -math.pi / 4),
     (1, 0, 0.0), (0, 1, math.pi / 2), (0, -1, -math.pi / 2)],
)
def test_quadrants(x, y, expected):
    d = np.array([x, y, 1.0])
    d /= np.linalg.norm(d)
    phi, theta = cartesian_to_spherical(d)
    assert theta == pytest.approx(expected, abs=1e-12)
    assert phi == pytest.approx(math.acos(d[2]), abs=1e-12)
    np.testing.assert_allclose(spherical_to_cartesian(np.array([phi, theta])), d, atol=1e-12)


# -- patterns ----------------------------------------------------------------------------


def test_fibonacci_pattern():
    dirs = fibonacci_hemisphere(300)
    assert dirs.shape == (300, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-12)
    assert np.all(dirs[:, 2] > 0)
    # even coverage: nearest-neighbour distances vary little
    cos = dirs @ dirs.T
    np.fill_diagonal(cos, -1)
    nn = np.arccos(np.clip(cos.max(1), -1, 1))
    assert nn.max() / nn.min() < 2.5


def test_latlong_pattern_64_by_32():
    dirs = latlong_hemisphere(64, 32)
    assert dirs.shape == (2048, 3)
    np.testing.assert_allclose(np.linalg.norm(dirs, axis=1), 1.0, atol=1e-12)
    assert np.all(dirs[:, 2] > 0)
    sph = cartesian_to_spherical(dirs)
    assert len(np.unique(np.round(sph[:, 0], 9))) == 32
    assert len(np.unique(np.round(sph[:, 1], 9))) == 64
    assert len(np.unique(np.round(dirs, 9), axis=0)) == 2048


def test_hemisphere_pattern_by_name():
    assert hemisphere_pattern("fibonacci", 37).shape == (37, 3)
    assert hemisphere_pattern("latlong", 2048).shape == (2048, 3)
    assert hemisphere_pattern("latlong", 500).shape == (2 * 16 * 16, 3)  # m = round(sqrt(250)) = 16
    with pytest.raises(LightsError, match="unknown light pattern 'spiral'; choose one of fibonacci, latlong"):
        hemisphere_pattern("spiral", 10)
    with pytest.raises(LightsError, match="at least 1 light, got 0"):
        fibonacci_hemisphere(0)


# -- selection rules ---------------------------------------------------------------------


def _ring_pattern(seed: int = 0) -> tuple[np.ndarray, dict]:
    """The pole, rings at polar 0.19/0.77/1.29 with 8 azimuths each (0, 45, ... deg), and
    distractors 0.05 rad off the 0.77 ring's axis lights; shuffled. Returns dirs and a map
    (polar, azimuth_deg) -> index."""
    entries = [(0.0, 0.0)]
    for phi in (0.19, 0.77, 1.29):
        entries += [(phi, az) for az in range(-135, 181, 45)]
    entries += [(0.77 + 0.05, az + 7) for az in (0, 90, 180, -90)]
    perm = np.random.default_rng(seed).permutation(len(entries))
    shuffled = [entries[i] for i in perm]
    sph = np.array([[p, math.radians(a)] for p, a in shuffled])
    return spherical_to_cartesian(sph), {e: k for k, e in enumerate(shuffled)}


@pytest.mark.parametrize("phi", [0.19, 0.77, 1.29])
def test_xu5_picks_centre_and_four_axis_lights(phi):
    dirs, where = _ring_pattern()
    split = select_lights(f"xu5:{phi}", dirs)
    expected = [where[(0.0, 0.0)], where[(phi, 0)], where[(phi, 90)], where[(phi, 180)], where[(phi, -90)]]
    assert split.train.tolist() == expected
    assert split.cap == pytest.approx(phi)
    assert sorted(split.test.tolist()) == sorted(set(range(len(dirs))) - set(expected))
    polar = np.arccos(dirs[:, 2])
    assert sorted(split.in_cap.tolist()) == sorted(i for i in split.test if polar[i] <= phi + 1e-9)


def test_xu5_torch_input_and_bounds():
    dirs, where = _ring_pattern(seed=5)
    split = select_lights("xu5:0.77", torch.from_numpy(dirs))
    assert split.train[0] == where[(0.0, 0.0)]
    assert select_lights("xu5:0", dirs).train[0] == where[(0.0, 0.0)]
    select_lights(f"xu5:{math.pi / 2}", dirs)  # the horizon itself is allowed


def test_random_rule_reproducible_by_seed():
    dirs = fibonacci_hemisphere(200)
    a = select_lights("random:20:7", dirs)
    b = select_lights("random:20:7", dirs)
    c = select_lights("random:20:8", dirs)
    assert a.train.tolist() == b.train.tolist()
    assert a.train.tolist() != c.train.tolist()
    assert len(set(a.train.tolist())) == 20 and a.train.tolist() == sorted(a.train.tolist())
    assert select_lights("random:20", dirs).train.tolist() == select_lights("random:20:0", dirs).train.tolist()
    assert len(a.test) == 180 and not set(a.test) & set(a.train)


def test_uniform_rule_is_greedy_farthest_point():
    dirs = fibonacci_hemisphere(150)
    split = select_lights("uniform:12", dirs)
    chosen = split.train.tolist()
    assert len(set(chosen)) == 12
    assert chosen[0] == int(np.argmax(dirs[:, 2]))  # starts at the light nearest the pole
    for j in range(1, 12):
        prev = dirs[chosen[:j]]
        min_dist = np.arccos(np.clip(dirs @ prev.T, -1, 1)).min(axis=1)
        assert min_dist[chosen[j]] == pytest.approx(min_dist.max(), abs=1e-12)
    # spread: better separated than a random choice of the same size
    def min_sep(idx):
        cos = dirs[idx] @ dirs[idx].T
        np.fill_diagonal(cos, -1)
        return np.arccos(np.clip(cos.max(), -1, 1))
    assert min_sep(chosen) > min_sep(select_lights("random:12:1", dirs).train)


def test_all_and_list_rules():
    dirs = fibonacci_hemisphere(10)
    everything = select_lights("all", dirs)
    assert everything.train.tolist() == list(range(10))
    assert not everything.held_out and everything.test.tolist() == list(range(10))
    picked = select_lights("list:3, 0,7", dirs)
    assert picked.train.tolist() == [3, 0, 7]
    assert picked.test.tolist() == [1, 2, 4, 5, 6, 8, 9]
    assert picked.held_out


def test_split_json_round_trip():
    split = select_lights("random:4:2", fibonacci_hemisphere(12))
    back = LightSplit.from_json(split.to_json())
    assert back.rule == split.rule and back.cap == split.cap and back.held_out == split.held_out
    for field in ("train", "test", "in_cap"):
        assert getattr(back, field).tolist() == getattr(split, field).tolist()


@pytest.mark.parametrize(
    "rule, message",
    [
        ("random:10", "light rule 'random:10' asks for 10 lights but the dataset has 5"),
        ("uniform:6", "light rule 'uniform:6' asks for 6 lights but the dataset has 5"),
        ("random:0", "K must be at least 1"),
        ("random:many", "K must be an integer, got 'many'"),
        ("random:2:x", "SEED must be an integer, got 'x'"),
        ("xu5:2.0", "polar angle 2.0 is outside [0, pi/2]"),
        ("xu5:-0.1", "polar angle -0.1 is outside [0, pi/2]"),
        ("xu5:abc", "PHI must be a polar angle in radians"),
        ("list:1,9", "index 9 is out of range for 5 lights"),
        ("list:1,1", "indices repeat"),
        ("list:", "list needs at least one index"),
        ("all:3", "'all' takes no argument"),
        ("closest:3", "unknown light rule 'closest:3'"),
        ("xu6:0.2", "unknown light rule 'xu6:0.2'"),
    ],
)
def test_rule_errors(rule, message):
    with pytest.raises(LightsError, match=_re(message)):
        select_lights(rule, fibonacci_hemisphere(5))


def test_xu5_needs_five_lights():
    with pytest.raises(LightsError, match="needs 5 lights but the dataset has 4"):
        select_lights("xu5:0.5", fibonacci_hemisphere(4))


def _re(text: str) -> str:
    import re

    return re.escape(text)


# -- nearest lights and great circles ----------------------------------------------------


def test_nearest_lights_numpy_and_torch_agree():
    dirs = fibonacci_hemisphere(50)
    q = _random_upper(5, seed=2)
    idx, ang = nearest_lights(q, dirs, 3)
    idx_t, ang_t = nearest_lights(torch.from_numpy(q), torch.from_numpy(dirs), 3)
    assert idx.tolist() == idx_t.tolist()
    np.testing.assert_allclose(ang, ang_t.numpy(), atol=1e-7)
    brute = np.argsort(angular_distance(q[:, None, :], dirs[None]), axis=1)[:, :3]
    assert idx.tolist() == brute.tolist()
    with pytest.raises(LightsError, match="asked for the 51 nearest lights, but only 50 exist"):
        nearest_lights(q, dirs, 51)


def test_great_circle_endpoints_unit_constant_step():
    a = np.array([1.0, 0.0, 1.0]) / math.sqrt(2)
    b = np.array([0.0, -0.3, 1.0]) / math.hypot(0.3, 1.0)
    path = great_circle(a, b, 17)
    assert path.shape == (17, 3)
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0, atol=1e-12)
    steps = angular_distance(path[1:], path[:-1])
    np.testing.assert_allclose(steps, angular_distance(a, b) / 16, atol=1e-9)
    # all on one plane through the origin (a great circle)
    normal = np.cross(a, b)
    np.testing.assert_allclose(path @ normal, 0.0, atol=1e-12)


def test_great_circle_errors():
    a = np.array([0.0, 0.0, 1.0])
    with pytest.raises(LightsError, match="needs two different lights; these are the same direction"):
        great_circle(a, a.copy(), 5)
    with pytest.raises(LightsError, match="the two lights are opposite"):
        great_circle(np.array([1.0, 0, 0]), np.array([-1.0, 0, 0]), 5)
    with pytest.raises(LightsError, match="at least 2 frames, got 1"):
        great_circle(a, np.array([1.0, 0, 0]), 1)


# -- validation --------------------------------------------------------------------------


def test_validate_accepts_unit_and_returns_float64():
    dirs = fibonacci_hemisphere(8).astype(np.float32)
    out = validate_directions(torch.from_numpy(dirs))
    assert out.dtype == np.float64 and out.shape == (8, 3)
    np.testing.assert_allclose(out, dirs, atol=1e-6)


def test_validate_normalises_non_unit_with_warning():
    dirs = np.array([[0.0, 0.0, 2.0], [0.3, 0.4, 0.0], [0.0, 0.6, 0.8]])
    with pytest.warns(UserWarning, match=r"2 direction\(s\) are not unit length \(e.g. #0, length 2\); normalising"):
        out = validate_directions(dirs)
    np.testing.assert_allclose(out, [[0, 0, 1], [0.6, 0.8, 0], [0, 0.6, 0.8]], atol=1e-12)


@pytest.mark.parametrize(
    "dirs, message",
    [
        ([[0, 0, 1], [np.nan, 0, 1]], "direction 1 is not finite (NaN or inf)"),
        ([[0, 0, 1], [0, np.inf, 1]], "direction 1 is not finite (NaN or inf)"),
        ([[0, 0, 1], [0, 0, 0]], "direction 1 has zero length"),
        ([[0, 0, 1], [0.6, 0, -0.8]], "direction 1 (0.600, 0.000, -0.800; polar 143.1 deg, azimuth 0.0 deg) is below the horizon (z < 0); pass --allow-below-horizon to accept it"),
        ([[0, 0, 1, 0]], "expected an array of shape [L, 3], got [1, 4]"),
        ([0, 0, 1], "expected an array of shape [L, 3], got [3]"),
    ],
)
def test_validate_errors(dirs, message):
    with pytest.raises(LightsError, match=_re("my lights: " + message)):
        validate_directions(np.array(dirs, dtype=np.float64), source="my lights")


def test_validate_allows_below_horizon_when_asked():
    out = validate_directions(np.array([[0.6, 0.0, -0.8]]), allow_below_horizon=True)
    np.testing.assert_allclose(out, [[0.6, 0.0, -0.8]])
