"""Environment maps: file formats, the equirectangular geometry, the reduction to lights and
relighting a (stand-in) model under a map."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from relightzoo.envmap import (
    EnvironmentLighting,
    envmap_directions,
    envmap_to_lights,
    linear_to_srgb,
    load_envmap,
    relight_envmap,
    srgb_to_linear,
    texel_solid_angles,
    write_hdr,
)
from relightzoo.errors import DataError
from relightzoo.lights import cartesian_to_spherical, fibonacci_hemisphere
from relightzoo.zoo.api import CoordinateModel


class LambertModel:
    """A stand-in relighting model: ``albedo * max(0, n . l)`` on a fixed normal map.

    The normal map is a bump (normals tilting outwards from the centre), so every light gives
    a different image; the centre pixel faces straight up.
    """

    def __init__(self) -> None:
        self.render_calls = 0

    @staticmethod
    def surface(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        y, x = torch.meshgrid(
            (torch.arange(height) + 0.5) * 2 / height - 1, (torch.arange(width) + 0.5) * 2 / width - 1, indexing="ij"
        )
        n = torch.stack([0.8 * x, -0.8 * y, torch.ones_like(x)], -1)
        n = n / n.norm(dim=-1, keepdim=True)
        albedo = torch.stack([0.3 + 0.5 * (x + 1) / 2, torch.full_like(x, 0.6), 0.9 - 0.4 * (y + 1) / 2], -1)
        return n, albedo

    def render(self, lights: torch.Tensor, height: int, width: int) -> torch.Tensor:
        self.render_calls += 1
        n, albedo = self.surface(height, width)
        lights = torch.as_tensor(lights, dtype=torch.float32).reshape(-1, 3)
        cos = torch.einsum("hwc,lc->lhw", n, lights).clamp(min=0.0)
        return albedo[None] * cos[..., None]


# ------------------------------------------------------------------------------------------
# files


def test_hdr_round_trip_within_rgbe_precision(tmp_path):
    rng = np.random.default_rng(1)
    env = (10.0 ** rng.uniform(-3, 3, size=(8, 16, 1)) * rng.uniform(0.05, 1.0, size=(8, 16, 3))).astype(np.float32)
    env[0, 0] = 0.0
    write_hdr(tmp_path / "sky.hdr", env)
    back = load_envmap(tmp_path / "sky.hdr")
    assert back.shape == (8, 16, 3) and back.dtype == np.float32
    # RGBE keeps 8 bits of mantissa relative to the brightest channel of each texel
    err = np.abs(back - env).max(axis=-1)
    assert (err <= env.max(axis=-1) / 128 + 1e-30).all()
    assert (back[0, 0] == 0).all()


def _rle_channel(values: np.ndarray) -> bytes:
    """Radiance's new-style run-length encoding of one channel of one scanline."""
    out = bytearray()
    i, n = 0, len(values)
    while i < n:
        run = 1
        while i + run < n and values[i + run] == values[i] and run < 127:
            run += 1
        if run >= 3:
            out += bytes([128 + run, int(values[i])])
            i += run
            continue
        j = i
        while j < n and j - i < 128 and not (j + 2 < n and values[j] == values[j + 1] == values[j + 2]):
            j += 1
        out += bytes([j - i]) + bytes(int(v) for v in values[i:j])
        i = j
    return bytes(out)


def _write_rle_hdr(path, rgbe: np.ndarray, flat_rows=()) -> None:
    h, w, _ = rgbe.shape
    body = bytearray(b"#?RADIANCE\n# hand-made\nFORMAT=32-bit_rle_rgbe\nEXPOSURE=1.0\n\n" + f"-Y {h} +X {w}\n".encode())
    for r in range(h):
        if r in flat_rows:
            body += rgbe[r].tobytes()
            continue
        body += bytes([2, 2, w >> 8, w & 0xFF])
        for c in range(4):
            body += _rle_channel(rgbe[r, :, c])
    path.write_bytes(bytes(body))


def test_rle_scanlines_decode_like_flat_ones(tmp_path):
    rng = np.random.default_rng(2)
    h, w = 6, 12
    rgbe = rng.integers(0, 256, size=(h, w, 4), dtype=np.uint8)
    rgbe[..., 3] = rng.integers(120, 140, size=(h, w))
    rgbe[1, 2:9] = rgbe[1, 2]  # long runs in every channel
    rgbe[3, :] = rgbe[3, 0]  # a whole constant scanline
    rgbe[4, 5, 3] = 0  # a black texel
    _write_rle_hdr(tmp_path / "rle.hdr", rgbe, flat_rows=(2,))
    # the same texels written flat (the format write_hdr and other readers use)
    (tmp_path / "flat.hdr").write_bytes(b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n" + f"-Y {h} +X {w}\n".encode() + rgbe.tobytes())
    rle, flat = load_envmap(tmp_path / "rle.hdr"), load_envmap(tmp_path / "flat.hdr")
    assert np.array_equal(rle, flat)
    e = rgbe[0, 0, 3].astype(np.float64)
    assert rle[0, 0, 0] == pytest.approx((rgbe[0, 0, 0] + 0.5) * 2.0 ** (e - 136), rel=1e-6)
    assert (rle[4, 5] == 0).all()
    assert len(set(map(tuple, rle[3]))) == 1


def test_truncated_rle_file_is_an_error(tmp_path):
    rgbe = np.full((4, 8, 4), 130, dtype=np.uint8)
    _write_rle_hdr(tmp_path / "rle.hdr", rgbe)
    data = (tmp_path / "rle.hdr").read_bytes()
    (tmp_path / "cut.hdr").write_bytes(data[:-5])
    with pytest.raises(DataError, match=r"cannot read environment map cut\.hdr: the \.hdr pixel data is truncated or corrupt"):
        load_envmap(tmp_path / "cut.hdr")


def test_png_is_decoded_from_srgb(tmp_path):
    px = np.array([[[0, 10, 128], [255, 64, 200]]], dtype=np.uint8)  # 2 x 1
    Image.fromarray(px).save(tmp_path / "sky.png")
    env = load_envmap(tmp_path / "sky.png")
    # reference values of the sRGB EOTF (IEC 61966-2-1)
    assert env[0, 0] == pytest.approx([0.0, 10 / 255 / 12.92, 0.2158605], abs=1e-6)
    assert env[0, 1, 0] == pytest.approx(1.0, abs=1e-6)
    assert env[0, 1, 1] == pytest.approx(0.0512695, abs=1e-6)


def test_npy_gray_map_is_repeated_to_rgb(tmp_path):
    np.save(tmp_path / "sky.npy", np.arange(8, dtype=np.float64).reshape(2, 4))
    env = load_envmap(tmp_path / "sky.npy")
    assert env.shape == (2, 4, 3) and env.dtype == np.float32
    assert (env[1, 3] == 7).all()


def test_map_that_is_not_2_to_1_names_its_size(tmp_path):
    Image.fromarray(np.zeros((10, 10, 3), dtype=np.uint8)).save(tmp_path / "square.png")
    with pytest.raises(DataError, match=r"environment map square\.png is 10 x 10 \(width x height\); .*exactly twice as wide as it is tall, e\.g\. 20 x 10"):
        load_envmap(tmp_path / "square.png")


def test_corrupt_and_missing_and_empty_files(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(DataError, match=r"^cannot read environment map bad\.png: not a valid PNG/JPEG image \(truncated or corrupt\?\)$"):
        load_envmap(tmp_path / "bad.png")
    (tmp_path / "bad.hdr").write_bytes(b"P6\n4 2\n255\n" + bytes(24))
    with pytest.raises(DataError, match=r"^cannot read environment map bad\.hdr: not a Radiance \.hdr file"):
        load_envmap(tmp_path / "bad.hdr")
    with pytest.raises(DataError, match=r"^environment map .*nowhere\.hdr not found$"):
        load_envmap(tmp_path / "nowhere.hdr")
    (tmp_path / "bad.npy").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"^cannot read environment map bad\.npy: not a \.npy array file$"):
        load_envmap(tmp_path / "bad.npy")
    np.save(tmp_path / "cut.npy", np.ones((4, 8, 3)))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "cut.npy").read_bytes()[:-10])
    with pytest.raises(DataError, match=r"^cannot read environment map cut\.npy: "):
        load_envmap(tmp_path / "cut.npy")
    np.save(tmp_path / "empty.npy", np.zeros((0, 0, 3), dtype=np.float32))
    with pytest.raises(DataError, match=r"^environment map empty\.npy is empty \(0 x 0 texels\)$"):
        load_envmap(tmp_path / "empty.npy")
    (tmp_path / "sky.exr").write_bytes(b"v/1\x01")
    with pytest.raises(DataError, match=r"unsupported file type '\.exr'"):
        load_envmap(tmp_path / "sky.exr")
    np.save(tmp_path / "neg.npy", -np.ones((2, 4, 3), dtype=np.float32))
    with pytest.raises(DataError, match=r"neg\.npy holds negative radiance"):
        load_envmap(tmp_path / "neg.npy")


# ------------------------------------------------------------------------------------------
# geometry and reduction to lights


@pytest.mark.parametrize("h", [1, 3, 16, 33])
def test_solid_angles_sum_to_4_pi(h):
    omega = texel_solid_angles(h, 2 * h)
    assert omega.shape == (h, 2 * h)
    assert omega.sum() == pytest.approx(4 * math.pi, rel=1e-12)
    assert (omega > 0).all()


def test_texel_directions_follow_the_convention():
    h, w = 8, 16
    d = envmap_directions(h, w)
    assert np.allclose(np.linalg.norm(d, axis=-1), 1.0)
    sph = cartesian_to_spherical(d)
    assert np.allclose(sph[:, 0, 0], (np.arange(h) + 0.5) * math.pi / h)  # polar grows downwards
    assert np.allclose(sph[0, :, 1], -math.pi + (np.arange(w) + 0.5) * 2 * math.pi / w)  # azimuth grows rightwards
    assert d[0, 0, 2] > 0.98 and d[-1, 0, 2] < -0.98  # top row is the zenith
    # the centre column sits about +x, three quarters across is +y
    assert d[h // 2, w // 2, 0] > 0.95 and d[h // 2, 3 * w // 4, 1] > 0.95


def test_single_bright_texel_becomes_one_light_in_its_direction():
    env = np.zeros((32, 64, 3), dtype=np.float32)
    env[5, 17] = (2.0, 3.0, 4.0)
    dirs, weights = envmap_to_lights(env, 16)
    assert dirs.shape == (1, 3) and weights.shape == (1, 3)
    assert np.allclose(dirs[0], envmap_directions(32, 64)[5, 17], atol=1e-12)
    assert np.allclose(weights[0], np.array([2.0, 3.0, 4.0]) * texel_solid_angles(32, 64)[5, 17], rtol=1e-6)


def test_constant_map_integrates_the_upper_hemisphere_only():
    env = np.full((24, 48, 3), (0.5, 1.0, 2.0), dtype=np.float32)
    dirs, weights = envmap_to_lights(env, 32)
    assert len(dirs) == 32  # every cell receives texels
    assert np.allclose(weights.sum(axis=0), 2 * math.pi * np.array([0.5, 1.0, 2.0]), rtol=1e-9)
    assert (dirs[:, 2] > 0).all()
    assert np.allclose(np.linalg.norm(dirs, axis=1), 1.0)
    # each light sits close to its cell's centre
    assert (np.einsum("kc,kc->k", dirs, fibonacci_hemisphere(32)) > math.cos(math.radians(15))).all()


def test_lower_hemisphere_and_black_cells_are_dropped():
    env = np.zeros((16, 32, 3), dtype=np.float32)
    env[12:] = 5.0  # ground only
    dirs, weights = envmap_to_lights(env, 8)
    assert len(dirs) == 0 and weights.shape == (0, 3)
    env[2, 3] = 1.0
    env[3, 20] = (0.0, 0.0, 1.0)  # a blue-only texel still counts
    dirs, weights = envmap_to_lights(env, 8)
    assert len(dirs) == 2
    with pytest.raises(DataError, match="at least 1 light"):
        envmap_to_lights(env, 0)


# ------------------------------------------------------------------------------------------
# relighting


def test_single_texel_map_reproduces_the_render_of_that_light():
    model = LambertModel()
    env = np.zeros((32, 64, 3), dtype=np.float32)
    env[6, 40] = (30.0, 20.0, 10.0)
    image, info = relight_envmap(model, env, k=16, height=20, width=24, progress=False)
    d = envmap_directions(32, 64)[6, 40]
    w = np.array([30.0, 20.0, 10.0]) * texel_solid_angles(32, 64)[6, 40]
    expected = model.render(torch.tensor(d[None], dtype=torch.float32), 20, 24)[0].numpy() * w / math.pi
    assert image.shape == (20, 24, 3) and image.dtype == np.float32
    assert np.allclose(image, expected, rtol=1e-5, atol=1e-7)
    assert info["k_requested"] == 16 and info["k_used"] == 1 and info["path"] == "sum"
    assert info["total_weight"] == pytest.approx(list(w), rel=1e-6)


def _cells_by_brute_force(h: int, w: int, k: int):
    """Cell directions and solid angles of a constant map, computed texel by texel."""
    centres = fibonacci_hemisphere(k)
    dirs = envmap_directions(h, w).reshape(-1, 3)
    omega = texel_solid_angles(h, w).reshape(-1)
    upper = dirs[:, 2] > 0
    dirs, omega = dirs[upper], omega[upper]
    cell = np.array([np.argmax(centres @ d) for d in dirs])
    cd = np.array([(dirs[cell == c] * omega[cell == c, None]).sum(0) for c in range(k)])
    return cd / np.linalg.norm(cd, axis=1, keepdims=True), np.array([omega[cell == c].sum() for c in range(k)])


def test_constant_map_gives_the_weighted_sum_of_the_cell_renders():
    model = LambertModel()
    colour = np.array([0.25, 0.5, 1.0])
    env = np.broadcast_to(colour, (16, 32, 3)).astype(np.float32)
    image, info = relight_envmap(model, env, k=12, height=9, width=11, exposure=2.0, progress=False)
    cell_dirs, cell_omega = _cells_by_brute_force(16, 32, 12)
    renders = model.render(torch.tensor(cell_dirs, dtype=torch.float32), 9, 11).numpy()
    expected = 2.0 / math.pi * np.einsum("khwc,k,c->hwc", renders, cell_omega, colour)
    assert np.allclose(image, expected, rtol=1e-4, atol=1e-6)
    assert info["k_used"] == 12 and info["scale"] == pytest.approx(2.0 / math.pi)
    assert info["total_weight"] == pytest.approx(list(2 * math.pi * colour), rel=1e-9)


def test_white_sky_of_one_keeps_the_albedo_of_a_surface_facing_up():
    """The default scaling: a uniform white map of value 1 lights an upward-facing Lambertian
    pixel like its overhead light does, i.e. the pixel shows its albedo."""
    model = LambertModel()
    env = np.ones((64, 128, 3), dtype=np.float32)
    image, _ = relight_envmap(model, env, k=256, height=9, width=9, progress=False)
    n, albedo = LambertModel.surface(9, 9)
    assert n[4, 4].tolist() == pytest.approx([0.0, 0.0, 1.0])
    assert image[4, 4] == pytest.approx(albedo[4, 4].numpy(), rel=0.01)
    # tilted pixels see less of the sky, never more than their albedo
    assert (image <= albedo.numpy() * 1.01).all()


def test_auto_exposure_makes_any_sky_as_bright_as_a_white_one():
    model = LambertModel()
    white, info_white = relight_envmap(model, np.ones((32, 64, 3), np.float32), k=64, height=9, width=9, exposure="auto", progress=False)
    assert info_white["exposure"] == pytest.approx(1.0, rel=0.01)
    rng = np.random.default_rng(4)
    sky = rng.uniform(0.0, 1.0, size=(32, 64, 3)).astype(np.float32)
    sky[4, 10] = 5000.0  # a sun
    dim, info_dim = relight_envmap(model, sky, k=64, height=9, width=9, exposure="auto", progress=False)
    bright, info_bright = relight_envmap(model, sky * 1000, k=64, height=9, width=9, exposure="auto", progress=False)
    assert np.allclose(dim, bright, rtol=1e-4)  # the map's overall scale no longer matters
    assert info_bright["exposure"] == pytest.approx(info_dim["exposure"] / 1000, rel=1e-6)
    fixed, _ = relight_envmap(model, sky, k=64, height=9, width=9, exposure=info_dim["exposure"], progress=False)
    assert np.allclose(fixed, dim, rtol=1e-6)  # the reported exposure reproduces the image
    with pytest.raises(DataError, match=r"exposure must be a positive number or 'auto', got 'bright'"):
        relight_envmap(model, sky, k=4, height=4, width=4, exposure="bright", progress=False)


def test_chunked_and_unchunked_sums_agree():
    model = LambertModel()
    rng = np.random.default_rng(3)
    env = rng.uniform(0, 2, size=(16, 32, 3)).astype(np.float32)
    one, info1 = relight_envmap(model, env, k=40, height=8, width=10, chunk_lights=1, progress=False)
    calls_one = model.render_calls
    many, info2 = relight_envmap(model, env, k=40, height=8, width=10, chunk_lights=64, progress=False)
    assert calls_one == 40 and model.render_calls - calls_one == 1
    assert np.allclose(one, many, rtol=1e-5, atol=1e-7)
    assert info1["k_used"] == info2["k_used"] == 40


def test_a_model_fast_path_is_used_when_offered(tmp_path):
    class FastModel(LambertModel):
        def __init__(self) -> None:
            super().__init__()
            self.fast_calls = []

        def render(self, lights, height, width):  # the fast path must make this unnecessary
            raise AssertionError("render called although relight_envmap is offered")

        def relight_envmap(self, dirs, weights, height, width):
            self.fast_calls.append((dirs.clone(), weights.clone(), height, width))
            return LambertModel.render(self, dirs, height, width).mul(weights[:, None, None, :]).sum(0)

    env = np.zeros((8, 16, 3), dtype=np.float32)
    env[1, 3] = 4.0
    env[2, 11] = (1.0, 2.0, 0.5)
    write_hdr(tmp_path / "two.hdr", env)
    model = FastModel()
    image, info = relight_envmap(model, tmp_path / "two.hdr", k=8, height=5, width=6, exposure=0.5, progress=False)
    assert info["path"] == "model" and len(model.fast_calls) == 1
    dirs, weights, h, w = model.fast_calls[0]
    assert (h, w) == (5, 6) and dirs.shape == (2, 3) and weights.shape == (2, 3)
    reference, _ = relight_envmap(LambertModel(), tmp_path / "two.hdr", k=8, height=5, width=6, exposure=0.5, progress=False)
    assert np.allclose(image, reference, rtol=1e-5, atol=1e-7)


def test_relight_rejects_a_black_sky_and_bad_options():
    model = LambertModel()
    env = np.zeros((8, 16, 3), dtype=np.float32)
    env[6] = 1.0  # below the horizon only
    with pytest.raises(DataError, match=r"^the environment map is black above the horizon"):
        relight_envmap(model, env, k=4, height=4, width=4, progress=False)
    env[1] = 1.0
    with pytest.raises(DataError, match=r"exposure must be a positive number or 'auto', got -1\.0"):
        relight_envmap(model, env, k=4, height=4, width=4, exposure=-1.0, progress=False)
    with pytest.raises(DataError, match=r"output size must be positive, got 4 x 0"):
        relight_envmap(model, env, k=4, height=0, width=4, progress=False)
    with pytest.raises(DataError, match=r"is 16 x 16"):
        relight_envmap(model, np.ones((16, 16, 3), np.float32), k=4, height=4, width=4, progress=False)


def test_srgb_renders_are_summed_in_linear_light():
    model = LambertModel()
    env = np.zeros((16, 32, 3), dtype=np.float32)
    env[2, 5] = 50.0
    env[3, 21] = 50.0
    lin, _ = relight_envmap(model, env, k=8, height=6, width=6, progress=False)
    enc, _ = relight_envmap(model, env, k=8, height=6, width=6, decode_srgb=True, progress=False)
    # with decode_srgb the model's values are read as sRGB codes: decode, sum, encode back
    dirs, weights = envmap_to_lights(env, 8)
    renders = model.render(torch.tensor(dirs, dtype=torch.float32), 6, 6).numpy()
    expected = linear_to_srgb(np.einsum("khwc,kc->hwc", srgb_to_linear(renders), weights) / math.pi)
    assert np.allclose(enc, expected, rtol=1e-4, atol=1e-6)
    assert not np.allclose(enc, lin, atol=1e-3)


class TinyCoordinateModel(CoordinateModel):
    """A real coordinate model (a small MLP) rendering through the base class's chunked render."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(torch.cat([pixels, lights], -1)))


def test_environment_lighting_renders_a_coordinate_model_in_chunks(tmp_path):
    env = np.zeros((8, 16, 3), dtype=np.float32)
    env[1, 2] = 100.0
    env[2, 9] = (2.0, 4.0, 8.0)
    write_hdr(tmp_path / "sky.hdr", env)
    model = TinyCoordinateModel().eval()
    lighting = EnvironmentLighting(tmp_path / "sky.hdr", k=6, exposure=0.5, progress=False)
    small_chunks = lighting.render(model, 7, 9, chunk=5)
    assert lighting.info["k_used"] == 2
    image, _ = relight_envmap(model, load_envmap(tmp_path / "sky.hdr"), k=6, height=7, width=9, exposure=0.5, progress=False)
    assert small_chunks.shape == (7, 9, 3) and small_chunks.dtype == torch.float32
    assert np.allclose(small_chunks.numpy(), np.clip(image, 0, 1), atol=1e-6)
    assert 0.0 < lighting.info["clipped_fraction"] < 1.0 and small_chunks.max() == 1.0
    assert "sky.hdr" in repr(lighting) and "16x8" in repr(lighting)
    with pytest.raises(DataError, match="needs at least 1 light"):
        EnvironmentLighting(env, k=0)
