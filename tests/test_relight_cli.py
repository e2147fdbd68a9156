"""Relighting: the Python API (any light, any size, saving 8/16-bit images) and
``relightzoo relight`` with its errors, on a briefly trained siren checkpoint."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from relightzoo.cli import main
from relightzoo.data.images import read_image
from relightzoo.data.synthetic import lambertian_scene
from relightzoo.errors import LightsError
from relightzoo.relight import (
    DirectionalLight,
    OutputError,
    as_lighting,
    check_output_path,
    check_output_size,
    direction_from_angles,
    parse_size,
    relight,
    relight_many,
    save_image,
)
from relightzoo.zoo.api import CoordinateModel


class AnalyticModel(CoordinateModel):
    """A coordinate model in closed form: a grey surface whose normal tilts with the pixel
    position, shaded ``max(0, n . l)``. Smooth in pixel and light, so a render at any size
    can be checked against :func:`_closed_form`."""

    def __init__(self):
        super().__init__()
        self.gain = torch.nn.Parameter(torch.tensor(1.0))
        self.calls = 0

    def forward(self, pixels, lights):
        self.calls += 1
        n = torch.cat([0.3 * pixels, torch.ones(len(pixels), 1)], -1)
        n = n / n.norm(dim=-1, keepdim=True)
        shade = (n * lights).sum(-1, keepdim=True).clamp(min=0) * self.gain
        return (2 * shade - 1).expand(-1, 3)


def _closed_form(light, h, w):
    from relightzoo.data.coords import pixel_grid

    pix = pixel_grid(h, w)
    n = torch.cat([0.3 * pix, torch.ones(len(pix), 1)], -1)
    n = n / n.norm(dim=-1, keepdim=True)
    return (n @ torch.tensor(light, dtype=torch.float32)).clamp(0, 1).reshape(h, w, 1).expand(h, w, 3)


def test_relight_renders_any_size_in_chunks():
    model = AnalyticModel()
    light = direction_from_angles(0.5, 1.0)
    for h, w in ((7, 5), (40, 64)):
        img = relight(model, light, h, w, chunk=100)
        assert img.shape == (h, w, 3) and img.dtype == torch.float32
        torch.testing.assert_close(img, _closed_form(light, h, w), atol=1e-5, rtol=0)
    assert model.calls > 40 * 64 // 100  # chunked: many small forward passes


def test_relight_many_and_a_lighting_object():
    model = AnalyticModel()
    dirs = np.array([[0, 0, 1.0], [0.6, 0, 0.8]])
    imgs = relight_many(model, dirs, 8, 8)
    assert imgs.shape == (2, 8, 8, 3)
    torch.testing.assert_close(imgs[1], relight(model, DirectionalLight((0.6, 0.0, 0.8)), 8, 8))


def test_directions_are_validated():
    with pytest.warns(UserWarning, match="not unit length .*normalising"):
        assert as_lighting([0, 0, 2.0]).direction == (0.0, 0.0, 1.0)
    with pytest.raises(LightsError, match="direction 0 is not finite"):
        as_lighting([float("nan"), 0, 1])
    with pytest.raises(LightsError, match="is below the horizon"):
        as_lighting([0, 0, -1])
    assert as_lighting([0, 0, -1], allow_below_horizon=True).direction == (0.0, 0.0, -1.0)
    with pytest.raises(LightsError, match="3 components"):
        as_lighting([0, 1])


def test_direction_from_angles():
    np.testing.assert_allclose(direction_from_angles(90, 90, degrees=True), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(direction_from_angles(math.pi / 3, 0), [math.sqrt(3) / 2, 0, 0.5], atol=1e-12)
    with pytest.raises(LightsError, match="angles must be finite numbers"):
        direction_from_angles(float("nan"), 0.0)


@pytest.mark.parametrize(
    "text,message",
    [
        ("0x5", "width and height must be at least 1"),
        ("-4x5", "width and height must be at least 1"),
        ("64y", "is not WIDTHxHEIGHT"),
        ("axb", "is not WIDTHxHEIGHT"),
        ("1.5x2", "is not WIDTHxHEIGHT"),
    ],
)
def test_parse_size_errors(text, message):
    with pytest.raises(OutputError, match=message):
        parse_size(text)


def test_parse_size():
    assert parse_size("640x480") == (640, 480)
    assert parse_size(" 32X16 ") == (32, 16)
    assert parse_size("64") == (64, 64)  # one grammar with `data render --size`: N is a square


def test_an_output_too_large_for_memory_is_refused_before_allocating():
    with pytest.raises(OutputError, match=r"an output of 1000000x1000000 needs about \d+\.\d GiB of memory but only"):
        check_output_size(1_000_000, 1_000_000)
    check_output_size(512, 512)  # small sizes pass


def test_save_image_8_and_16_bit(tmp_path):
    img = torch.from_numpy(lambertian_scene(np.array([[0.2, 0.1, 0.97]]), 12, 10)[0])
    p8 = save_image(img, tmp_path / "a.png")
    p16 = save_image(img, tmp_path / "sub" / "b.png", bit_depth=16)
    a8, a16 = read_image(p8), read_image(p16)
    assert a8.dtype == np.uint8 and a16.dtype == np.uint16 and a8.shape == (12, 10, 3)
    np.testing.assert_allclose(a8 / 255.0, img.numpy(), atol=0.5 / 255 + 1e-6)
    np.testing.assert_allclose(a16 / 65535.0, img.numpy(), atol=0.5 / 65535 + 1e-6)


def test_output_path_errors(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"cannot write .*out\.png: .*file\.txt is a file, not a folder"):
        check_output_path(blocker / "out.png")  # a file where a folder should be
    with pytest.raises(OutputError, match="it is a folder"):
        check_output_path(_folder(tmp_path, "x.png"))
    with pytest.raises(OutputError, match=r"unknown image format '\.tif'; use \.png or \.jpg"):
        check_output_path(tmp_path / "x.tif")
    with pytest.raises(OutputError, match="16-bit images need a .png file"):
        check_output_path(tmp_path / "x.jpg", bit_depth=16)


def _folder(root, name):
    d = root / name
    d.mkdir()
    return d


# -- relightzoo relight ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A siren trained for a few steps on a 12 x 12 dataset."""
    from conftest import make_olat_folder

    from relightzoo.data import load_dataset
    from relightzoo.train import train
    from relightzoo.zoo import create_model

    root = tmp_path_factory.mktemp("relightrun")
    folder = make_olat_folder(root / "data", n_lights=24, height=12, width=12)
    net = create_model("siren", hidden_layers=1, hidden_features=16)
    return train(load_dataset(folder), "uniform:8", net, steps=3, batch_size=256, device="cpu", out_dir=root / "run", progress=False).latest


def _run(*args):
    return CliRunner().invoke(main, ["relight", *map(str, args)])


def test_relight_cli_matches_the_python_api(ckpt, tmp_path):
    from relightzoo.relight import load_model

    res = _run(ckpt, "--light", "0.36,0.48,0.8", "--out", tmp_path / "a.png", "--device", "cpu")
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output and "12x12, 8-bit" in res.output
    got = read_image(tmp_path / "a.png")
    assert got.shape == (12, 12, 3) and got.dtype == np.uint8  # the training images' size by default
    model, config = load_model(ckpt)
    want = relight(model, [0.36, 0.48, 0.8], 12, 12).numpy()
    np.testing.assert_array_equal(got, np.round(want * 255).astype(np.uint8))


def test_relight_cli_angles_any_size_and_16_bit(ckpt, tmp_path):
    # polar 60 deg, azimuth 90 deg is (0, sin 60, cos 60)
    res = _run(ckpt, "--polar", "60", "--azimuth", "90", "--degrees", "--size", "40x24", "--bit-depth", "16", "--out", tmp_path / "b.png")
    assert res.exit_code == 0, res.output
    res = _run(ckpt, "--light", f"0,{math.sin(math.pi / 3)},0.5", "--size", "40x24", "--bit-depth", "16", "--out", tmp_path / "c.png")
    assert res.exit_code == 0, res.output
    b, c = read_image(tmp_path / "b.png"), read_image(tmp_path / "c.png")
    assert b.shape == (24, 40, 3) and b.dtype == np.uint16
    np.testing.assert_array_equal(b, c)
    res = _run(ckpt, "--polar", str(math.pi / 3), "--azimuth", str(math.pi / 2), "--size", "40x24", "--bit-depth", "16", "--out", tmp_path / "d.png")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(read_image(tmp_path / "d.png").astype(int), b.astype(int), atol=2)


def test_relight_cli_normalises_a_non_unit_light_with_a_warning(ckpt, tmp_path):
    res = _run(ckpt, "--light", "0,0,3", "--out", tmp_path / "n.png")
    assert res.exit_code == 0, res.output
    assert "warning: light direction: 1 direction(s) are not unit length" in res.output
    res = _run(ckpt, "--light", "0,0,1", "--out", tmp_path / "u.png")
    np.testing.assert_array_equal(read_image(tmp_path / "n.png"), read_image(tmp_path / "u.png"))


@pytest.mark.parametrize(
    "args,code,message",
    [
        ([], 2, "Error: give a light: --light x,y,z or --polar P --azimuth A"),
        (["--light", "0,0,1", "--polar", "0.1", "--azimuth", "0"], 2, "Error: give the light once: either --light x,y,z or --polar P --azimuth A, not both"),
        (["--polar", "0.5"], 2, "Error: --polar and --azimuth go together; give both"),
        (["--light", "0,0,1", "--degrees"], 2, "Error: --degrees applies to --polar/--azimuth or --orbit-polar, not to --light"),
        (["--polar", "45", "--azimuth", "30"], 2, "Error: --polar 45 --azimuth 30 look like degrees: add --degrees (default: radians)"),
        (["--light", "nan,0,1"], 1, "Error: light direction: direction 0 is not finite (NaN or inf)"),
        (["--light", "0,0,0"], 1, "Error: light direction: direction 0 has zero length"),
        (["--light", "0,1"], 2, "'0,1' has 2 numbers; a direction is x,y,z"),
        (["--light", "up"], 2, "'up' is not three numbers x,y,z"),
        (["--light", "0,0,-1"], 1, "is below the horizon (z < 0); pass --allow-below-horizon to accept it"),
        (["--light", "0,0,1", "--size", "0x12"], 2, "size '0x12': width and height must be at least 1"),
        (["--light", "0,0,1", "--size", "-5x12"], 2, "size '-5x12': width and height must be at least 1"),
        (["--light", "0,0,1", "--size", "12by12"], 2, "size '12by12' is not WIDTHxHEIGHT, e.g. 512x512"),
        (["--light", "0,0,1", "--size", "2000000x2000000"], 1, "Error: an output of 2000000x2000000 needs about"),
    ],
)
def test_relight_cli_bad_input(ckpt, tmp_path, args, code, message):
    res = _run(ckpt, *args, "--out", tmp_path / "x.png")
    assert res.exit_code == code, res.output
    assert message in res.output
    assert not (tmp_path / "x.png").exists()


def test_relight_cli_unwritable_output_fails_before_rendering(ckpt, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _run(ckpt, "--light", "0,0,1", "--out", blocker / "x.png")
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: cannot write {blocker / 'x.png'}: {blocker} is a file, not a folder"
    res = _run(ckpt, "--light", "0,0,1", "--out", tmp_path / "x.bmp")
    assert res.exit_code == 1 and "unknown image format '.bmp'" in res.output
    res = _run(ckpt, "--light", "0,0,1", "--out", tmp_path / "x.jpg", "--bit-depth", "16")
    assert res.exit_code == 1 and "16-bit images need a .png file" in res.output
    res = _run(tmp_path / "none.safetensors", "--light", "0,0,1", "--out", tmp_path / "x.png")
    assert res.exit_code == 1 and res.output.strip() == f"Error: checkpoint {tmp_path / 'none.safetensors'} not found"


# -- any resolution: bands and chunks -----------------------------------------------------


def _tiny_siren(seed=0):
    from relightzoo.zoo import create_model

    torch.manual_seed(seed)
    return create_model("siren", hidden_layers=2, hidden_features=24).eval()


def test_chunked_and_unchunked_renders_are_identical(tmp_path):
    from relightzoo.relight import quantize, relight_to_file

    model = _tiny_siren()
    light = [0.36, 0.48, 0.8]
    whole = model.render(torch.tensor([light]), 29, 41, chunk=29 * 41)[0]  # one forward pass
    banded = relight(model, light, 29, 41, chunk=37, band_pixels=150)  # 3-row bands, 37-sample chunks
    assert torch.equal(banded, whole)
    for depth in (8, 16):
        out = relight_to_file(model, light, 29, 41, tmp_path / f"x{depth}.png", bit_depth=depth, chunk=37, band_pixels=150)
        got = read_image(out)
        assert got.dtype == (np.uint8 if depth == 8 else np.uint16) and got.shape == (29, 41, 3)
        np.testing.assert_array_equal(got, quantize(whole, depth))
    np.testing.assert_array_equal(read_image(tmp_path / "x8.png"), np.round(whole.numpy() * 255).astype(np.uint8))


def test_a_large_render_needs_memory_for_a_band_not_the_image():
    from relightzoo.bench.relighting import render_peak_rss

    features = 64
    r = render_peak_rss(1024, model_kwargs={"hidden_layers": 2, "hidden_features": features})
    unchunked = 1024 * 1024 * features * 4 * 2  # two activation buffers of one forward pass over every pixel
    # Growth over the 16 x 16 baseline can come out near zero or even negative (which library
    # pages a run touches varies); the property is that it stays far below an unchunked pass.
    assert r["growth_bytes"] < unchunked / 4, r
    # a process that has imported torch holds well over 64 MiB (a unit slip, KiB for bytes, fails)
    assert 64 * 2**20 < r["baseline_rss_bytes"] and 64 * 2**20 < r["peak_rss_bytes"] < 4 * 2**30, r
    assert r["peak_rss_bytes"] == r["baseline_rss_bytes"] + r["growth_bytes"]
    assert r["png_bytes"] > 1024 * 1024 * 3 // 100  # a 1024 x 1024 render of a random siren is not flat


def test_srgb_encodes_for_display(ckpt, tmp_path):
    from relightzoo.envmap import linear_to_srgb
    from relightzoo.relight import load_model, quantize

    res = _run(ckpt, "--light", "0,0,1", "--srgb", "--out", tmp_path / "s.png")
    assert res.exit_code == 0, res.output
    assert "sRGB" in res.output
    model, _ = load_model(ckpt)
    lin = relight(model, [0, 0, 1], 12, 12).numpy()
    np.testing.assert_array_equal(read_image(tmp_path / "s.png"), quantize(np.clip(linear_to_srgb(lin), 0, 1), 8))


# -- environment maps and animations through the CLI ---------------------------------------


def test_relight_cli_envmap_states_k_and_matches_the_python_api(ckpt, tmp_path):
    from relightzoo.envmap import EnvironmentLighting, write_hdr
    from relightzoo.relight import load_model, quantize

    sky = np.full((16, 32, 3), 0.5, dtype=np.float32)
    sky[2, 5] = 400.0  # a sun
    write_hdr(tmp_path / "sky.hdr", sky)
    res = _run(ckpt, "--envmap", tmp_path / "sky.hdr", "--envmap-k", "16", "--exposure", "0.5", "--out", tmp_path / "e.png")
    assert res.exit_code == 0, res.output
    assert "environment map sky.hdr as K=" in res.output and "(asked for 16)" in res.output and "exposure 0.5" in res.output
    assert "by summing K renders (this model has no one-pass environment-map path)" in " ".join(res.output.split())
    model, _ = load_model(ckpt)
    from relightzoo.envmap import load_envmap

    want = relight(model, EnvironmentLighting(load_envmap(tmp_path / "sky.hdr"), k=16, exposure=0.5, progress=False), 12, 12)
    np.testing.assert_array_equal(read_image(tmp_path / "e.png"), quantize(want, 8))
    res = _run(ckpt, "--envmap", tmp_path / "sky.hdr", "--exposure", "auto", "--size", "20x10", "--out", tmp_path / "a.png")
    assert res.exit_code == 0, res.output
    assert "(asked for 64)" in res.output and read_image(tmp_path / "a.png").shape == (10, 20, 3)


def _gif_frames(path):
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [(np.asarray(f.convert("RGB")), f.info.get("duration")) for f in ImageSequence.Iterator(im)]


def test_relight_cli_transition_and_orbit_gifs(ckpt, tmp_path):
    from relightzoo.relight import load_model

    res = _run(ckpt, "--light", "0,0,1", "--to", "0.6,0,0.8", "--frames", "5", "--size", "16x16", "--out", tmp_path / "t.gif")
    assert res.exit_code == 0, res.output
    assert "5 frames, 16x16, 12 fps" in res.output
    frames = _gif_frames(tmp_path / "t.gif")
    assert len(frames) == 5 and frames[0][0].shape == (16, 16, 3)
    model, _ = load_model(ckpt)
    for f, light in ((frames[0][0], [0, 0, 1]), (frames[-1][0], [0.6, 0, 0.8])):  # the ends are the two lights
        want = relight(model, light, 16, 16).numpy() * 255
        assert np.abs(f.astype(float) - want).mean() < 3  # a 256-colour palette
    res = _run(ckpt, "--orbit-polar", "30", "--degrees", "--frames", "4", "--fps", "10", "--out", tmp_path / "o.gif")
    assert res.exit_code == 0, res.output
    assert "orbit at polar 30.0 deg" in res.output
    frames = _gif_frames(tmp_path / "o.gif")
    assert len(frames) == 4 and all(d == 100 for _, d in frames)


@pytest.mark.parametrize(
    "args,out,code,message",
    [
        (["--to", "0,0,1"], "x.gif", 2, "Error: --to needs a start light"),
        (["--light", "0,0,1", "--to", "0.6,0,0.8"], "x.png", 2, "--to makes an animation: --out must be a .gif file"),
        (["--light", "0,0,1"], "x.gif", 2, "a .gif output needs an animation"),
        (["--light", "0,0,1", "--frames", "4"], "x.png", 2, "--frames applies to an animation"),
        (["--light", "0,0,1", "--envmap-k", "4"], "x.png", 2, "--envmap-k applies to --envmap"),
        (["--light", "0,0,1", "--to", "0,0,1"], "x.gif", 1, "a transition needs two different lights"),
        (["--orbit-polar", "100", "--degrees"], "x.gif", 2, "--orbit-polar 100 deg is outside 0..90 degrees"),
        (["--orbit-polar", "45"], "x.gif", 2, "--orbit-polar 45 looks like degrees"),
        (["--orbit-polar", "0.5", "--light", "0,0,1"], "x.gif", 2, "--orbit-polar animates the light by itself"),
        (["--orbit-polar", "0.5", "--bit-depth", "16"], "x.gif", 2, "a GIF is 8-bit"),
        (["--envmap", "{sky}", "--light", "0,0,1"], "x.png", 2, "--envmap lights the scene by itself"),
        (["--envmap", "{sky}", "--exposure", "-1"], "x.png", 2, "the exposure must be a positive number or 'auto'"),
        (["--envmap", "{bad}"], "x.png", 1, "must be exactly twice as wide as it is tall"),
        (["--envmap", "{missing}"], "x.png", 1, "not found"),
    ],
)
def test_relight_cli_envmap_and_animation_errors(ckpt, tmp_path, args, out, code, message):
    from relightzoo.envmap import write_hdr

    write_hdr(tmp_path / "sky.hdr", np.ones((4, 8, 3), dtype=np.float32))
    write_hdr(tmp_path / "bad.hdr", np.ones((4, 4, 3), dtype=np.float32))
    paths = {"sky": tmp_path / "sky.hdr", "bad": tmp_path / "bad.hdr", "missing": tmp_path / "none.hdr"}
    res = _run(ckpt, *(a.format(**paths) for a in args), "--out", tmp_path / out)
    assert res.exit_code == code, res.output
    assert message in res.output
    assert not (tmp_path / out).exists()


def test_an_environment_map_renders_the_same_in_bands():
    from relightzoo.envmap import EnvironmentLighting

    model = _tiny_siren(1)
    sky = np.full((8, 16, 3), 0.25, dtype=np.float32)
    sky[1, 3] = 50.0
    whole = EnvironmentLighting(sky, k=8, progress=False)
    banded = EnvironmentLighting(sky, k=8, progress=False)
    a = relight(model, whole, 20, 30, band_pixels=20 * 30)
    b = relight(model, banded, 20, 30, band_pixels=90, chunk=45)  # 3-row bands
    torch.testing.assert_close(b, a, atol=1e-6, rtol=0)
    assert banded.info["bands"] == 7 and banded.info["k_used"] == whole.info["k_used"]
    assert banded.info["clipped_fraction"] == pytest.approx(whole.info["clipped_fraction"], abs=1e-9)
