"""Loading OLAT dataset folders: every image and light-file format, and every bad input."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_olat_folder
from relightzoo.data import (
    OLATDataset,
    load_dataset,
    read_image,
    read_lights_file,
    write_dataset,
    write_image,
    write_lights_file,
)
from relightzoo.data import builtin
from relightzoo.data.synthetic import lambertian_scene
from relightzoo.errors import DataError, LightsError
from relightzoo.lights import cartesian_to_spherical, fibonacci_hemisphere


def _raises(cls, text):
    return pytest.raises(cls, match=re.escape(text))


def _lights_lines(folder: Path) -> list[str]:
    return (folder / "lights.txt").read_text().splitlines()


# -- images ------------------------------------------------------------------------------


def test_load_8bit_png(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    assert len(ds) == 64 and (ds.height, ds.width) == (16, 16)
    assert ds.pixels.dtype == torch.uint8 and ds.pixels.shape == (64, 16, 16, 3)
    assert ds.bit_depth == 8 and ds.max_value == 255.0
    assert ds.names == sorted(ds.names) and ds.names[0] == "light_0000.png"
    assert ds.source == str(tiny_dataset) and ds.lights_file == "lights.txt"
    expected_lights = fibonacci_hemisphere(64)
    np.testing.assert_allclose(ds.lights.numpy(), expected_lights, atol=1e-6)
    assert ds.lights.dtype == torch.float32
    truth = lambertian_scene(expected_lights, 16, 16, seed=0)
    imgs = ds.images()
    assert imgs.dtype == torch.float32 and imgs.shape == (64, 16, 16, 3)
    assert float((imgs - torch.from_numpy(truth)).abs().max()) <= 0.5 / 255 + 1e-6
    np.testing.assert_array_equal(ds.images([5, 2]).numpy(), imgs[[5, 2]].numpy())


def test_load_16bit_png(tmp_path):
    folder = make_olat_folder(tmp_path / "d16", n_lights=10, height=12, width=9, bit_depth=16, seed=3)
    ds = load_dataset(folder)
    assert ds.pixels.dtype == torch.uint16 and ds.bit_depth == 16 and (ds.height, ds.width) == (12, 9)
    truth = lambertian_scene(fibonacci_hemisphere(10), 12, 9, seed=3)
    err = float((ds.images() - torch.from_numpy(truth)).abs().max())
    assert err <= 0.5 / 65535 + 1e-6  # full 16-bit precision, not 8 bits
    assert ds.describe()["bit_depth"] == 16


def test_load_jpeg(tmp_path):
    lights = fibonacci_hemisphere(6)
    images = lambertian_scene(lights, 32, 32, seed=1)
    names = [f"img_{i:02d}.jpg" for i in range(6)]
    write_dataset(tmp_path / "j", images, lights, names=names)
    ds = load_dataset(tmp_path / "j")
    assert ds.names == names and ds.pixels.dtype == torch.uint8
    err = (ds.images() - torch.from_numpy(images)).abs()
    assert float(err.mean()) < 0.02 and float(err.max()) < 0.2


def test_gray_rgba_and_palette_images_become_rgb(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    rng = np.random.default_rng(0)
    gray8 = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    gray16 = rng.integers(0, 65536, (5, 7), dtype=np.uint16)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    Image.fromarray(gray8).save(folder / "a_gray8.png")
    Image.fromarray(rgba).save(folder / "c_rgba.png")
    Image.fromarray(rgba[..., :3]).convert("P").save(folder / "d_palette.png")
    np.testing.assert_array_equal(read_image(folder / "a_gray8.png"), np.repeat(gray8[..., None], 3, -1))
    np.testing.assert_array_equal(read_image(folder / "c_rgba.png"), rgba[..., :3])
    assert read_image(folder / "d_palette.png").shape == (5, 7, 3)
    write_image(folder / "b_gray16.png", gray16)
    got16 = read_image(folder / "b_gray16.png")
    assert got16.dtype == np.uint16
    np.testing.assert_array_equal(got16, np.repeat(gray16[..., None], 3, -1))
    write_lights_file(folder / "lights.txt", fibonacci_hemisphere(4))
    ds = load_dataset(folder)
    # one 16-bit image promotes the set to uint16, exactly (8-bit v -> v * 257)
    assert ds.pixels.dtype == torch.uint16
    np.testing.assert_array_equal(ds.pixels[0, ..., 0].numpy(), gray8.astype(np.uint16) * 257)
    np.testing.assert_array_equal(ds.pixels[1, ..., 1].numpy(), gray16)


def test_16bit_rgb_png_round_trip_is_exact(tmp_path):
    img = np.random.default_rng(1).integers(0, 65536, (6, 11, 3), dtype=np.uint16)
    write_image(tmp_path / "x.png", img)
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), img)


# -- light files -------------------------------------------------------------------------


def _replace_lights(folder: Path, text: str, name: str = "lights.txt") -> None:
    (folder / "lights.txt").unlink()
    (folder / name).write_text(text)


@pytest.fixture
def small(tmp_path) -> Path:
    return make_olat_folder(tmp_path / "small", n_lights=5, height=8, width=8)


def _expected(n=5):
    return fibonacci_hemisphere(n)


def test_lights_txt_cartesian_without_header_with_comments_and_commas(small):
    d = _expected()
    lines = ["# captured 2024", ""] + [f"{x}, {y},{z}" if i % 2 else f"{x}\t{y} {z}" for i, (x, y, z) in enumerate(d)]
    _replace_lights(small, "\n".join(lines) + "\n")
    np.testing.assert_allclose(load_dataset(small).lights.numpy(), d, atol=1e-6)


def test_lights_txt_cartesian_with_header(small):
    assert _lights_lines(small)[0] == "x y z"  # what write_dataset writes
    np.testing.assert_allclose(load_dataset(small).lights.numpy(), _expected(), atol=1e-6)
    table = read_lights_file(small / "lights.txt")
    assert table.fmt == "cartesian" and table.names is None


@pytest.mark.parametrize(
    "header, scale, fmt",
    [("", 1.0, None), ("phi theta", 1.0, None), ("polar azimuth", 1.0, None),
     ("phi_deg theta_deg", 180 / math.pi, None), ("", 180 / math.pi, "spherical-deg")],
)
def test_lights_txt_spherical(small, header, scale, fmt):
    sph = cartesian_to_spherical(_expected()) * scale
    body = "\n".join(f"{float(p)!r} {float(t)!r}" for p, t in sph)
    _replace_lights(small, (header + "\n" if header else "") + body + "\n")
    ds = load_dataset(small, lights_format=fmt)
    np.testing.assert_allclose(ds.lights.numpy(), _expected(), atol=1e-6)


def test_lights_format_overrides_header(small):
    sph_deg = np.degrees(cartesian_to_spherical(_expected()))
    body = "\n".join(f"{p} {t}" for p, t in sph_deg)
    _replace_lights(small, "phi theta\n" + body + "\n")
    # as radians the header is wrong (angles of 80 rad); the override reads degrees
    ds = load_dataset(small, lights_format="spherical-deg")
    np.testing.assert_allclose(ds.lights.numpy(), _expected(), atol=1e-6)


def test_degrees_without_header_say_how_to_read_them(small):
    sph_deg = np.degrees(cartesian_to_spherical(_expected()))
    _replace_lights(small, "\n".join(f"{p} {t}" for p, t in sph_deg) + "\n")
    with _raises(DataError, "lights.txt: 2-column angles over 2 pi look like degrees; add the header line "
                           "'phi_deg theta_deg' or pass --lights-format spherical-deg"):
        load_dataset(small)


@pytest.mark.parametrize("style", ["list", "xyz", "phi", "phi_deg", "list2"])
def test_lights_json(small, style):
    d = _expected()
    sph = cartesian_to_spherical(d)
    names = [f"light_{i:04d}.png" for i in range(5)]
    entries = {}
    for i in (3, 0, 4, 1, 2):  # any order: matched by name
        entries[names[i]] = {
            "list": list(d[i]),
            "xyz": dict(zip("xyz", d[i])),
            "phi": {"phi": sph[i, 0], "theta": sph[i, 1]},
            "phi_deg": {"theta_deg": math.degrees(sph[i, 1]), "phi_deg": math.degrees(sph[i, 0])},
            "list2": list(sph[i]),
        }[style]
    _replace_lights(small, json.dumps(entries), "lights.json")
    ds = load_dataset(small)
    assert ds.lights_file == "lights.json"
    np.testing.assert_allclose(ds.lights.numpy(), d, atol=1e-6)


@pytest.mark.parametrize("fmt", ["cartesian", "spherical", "spherical-deg"])
@pytest.mark.parametrize("suffix", [".txt", ".json"])
def test_write_read_lights_file_round_trip(tmp_path, fmt, suffix):
    d = fibonacci_hemisphere(9)
    names = [f"n{i}.png" for i in range(9)]
    path = write_lights_file(tmp_path / f"l{suffix}", d, fmt, names=names)
    table = read_lights_file(path)
    assert table.fmt == fmt
    np.testing.assert_allclose(table.dirs, d, atol=1e-12)
    assert table.names == (names if suffix == ".json" else None)


def test_json_needs_names(tmp_path):
    with _raises(DataError, "writing l.json needs one image name per light (3 lights, no names)"):
        write_lights_file(tmp_path / "l.json", fibonacci_hemisphere(3))


def test_non_unit_lights_are_normalised_with_warning(small):
    d = _expected() * np.array([[2.0], [1.0], [1.0], [0.5], [1.0]])
    _replace_lights(small, "\n".join(" ".join(map(str, r)) for r in d) + "\n")
    with pytest.warns(UserWarning, match=re.escape("lights.txt: 2 direction(s) are not unit length")):
        ds = load_dataset(small)
    np.testing.assert_allclose(ds.lights.numpy(), _expected(), atol=1e-6)


def test_both_light_files_warn_and_use_txt(small):
    (small / "lights.json").write_text(json.dumps({f"light_{i:04d}.png": [0, 0, 1] for i in range(5)}))
    with pytest.warns(UserWarning, match="holds both lights.txt and lights.json; using lights.txt"):
        ds = load_dataset(small)
    np.testing.assert_allclose(ds.lights.numpy(), _expected(), atol=1e-6)


def test_numbered_names_pair_with_lights_in_natural_order(tmp_path):
    lights = fibonacci_hemisphere(11)
    images = lambertian_scene(lights, 4, 4)
    folder = tmp_path / "n"
    folder.mkdir()
    for i in range(11):  # 1.png ... 11.png: as text, 10.png and 11.png would come before 2.png
        write_image(folder / f"{i + 1}.png", images[i])
    (folder / "lights.txt").write_text("".join(f"{x!r} {y!r} {z!r}  # light {i + 1}\n" for i, (x, y, z) in enumerate(lights.tolist())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning about the order any more: it is the documented one
        ds = load_dataset(folder)
    assert ds.names == [f"{i + 1}.png" for i in range(11)]
    for i in range(11):  # each image keeps the light it was rendered under
        assert np.array_equal(ds.pixels[i].numpy(), read_image(folder / f"{i + 1}.png"))
        assert np.allclose(ds.lights[i].numpy(), lights[i], atol=1e-6)
    with pytest.raises(DataError, match="image names must sort in light order"):
        write_dataset(tmp_path / "m", images[:3], lights[:3], names=["10.png", "2.png", "3.png"])


# -- bad inputs --------------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with _raises(DataError, f"dataset folder {tmp_path / 'nope'} does not exist"):
        load_dataset(tmp_path / "nope")
    with _raises(DataError, f"dataset folder {tmp_path}/nope does not exist"):
        load_dataset(f"{tmp_path}/nope")


def test_file_instead_of_folder(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with _raises(DataError, f"{tmp_path / 'x.txt'} is a file, not a dataset folder"):
        load_dataset(tmp_path / "x.txt")


def test_unknown_name_suggests_builtin():
    with _raises(DataError, "'dmeo' is neither a dataset folder nor a built-in scene; did you mean 'demo'?"):
        load_dataset("dmeo")
    with _raises(DataError, "'zzzz' is neither a dataset folder nor a built-in scene; built-in scenes: demo"):
        load_dataset("zzzz")


def test_builtin_demo_resolves_inside_package(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "_HERE", tmp_path)
    with _raises(DataError, "the built-in scene 'demo' is not installed"):
        load_dataset("demo")
    make_olat_folder(tmp_path / "demo", n_lights=6, height=4, width=4)
    ds = load_dataset("demo")
    assert ds.source == "demo" and len(ds) == 6
    # a folder named like a built-in scene in the working directory wins
    monkeypatch.chdir(tmp_path / "demo")
    make_olat_folder(tmp_path / "demo" / "demo", n_lights=3, height=4, width=4)
    assert len(load_dataset("demo")) == 3


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with _raises(DataError, f"no images in {tmp_path / 'empty'}: expected PNG or JPEG files"):
        load_dataset(tmp_path / "empty")
    write_lights_file(tmp_path / "empty" / "lights.txt", fibonacci_hemisphere(2))
    with _raises(DataError, "no images in"):
        load_dataset(tmp_path / "empty")


def test_unreadable_image(small):
    (small / "light_0003.png").write_bytes(b"this is not a png")
    with _raises(DataError, "cannot read image light_0003.png:"):
        load_dataset(small)


@pytest.mark.parametrize("bit_depth, ext", [(8, ".png"), (16, ".png"), (8, ".jpg")])
def test_truncated_image(tmp_path, bit_depth, ext):
    lights = fibonacci_hemisphere(3)
    names = [f"light_{i}{ext}" for i in range(3)]
    folder = write_dataset(tmp_path / "t", lambertian_scene(lights, 40, 40), lights, bit_depth=bit_depth, names=names)
    data = (folder / names[1]).read_bytes()
    (folder / names[1]).write_bytes(data[: len(data) // 2])
    with _raises(DataError, f"cannot read image {names[1]}:"):
        load_dataset(folder)


def test_images_of_different_sizes(small):
    write_image(small / "light_0002.png", np.zeros((8, 10, 3), dtype=np.uint8))
    with _raises(DataError, "images have different sizes: light_0000.png is 8x8 but light_0002.png is 10x8 (width x height)"):
        load_dataset(small)


def test_missing_lights_file(small):
    (small / "lights.txt").unlink()
    with _raises(DataError, f"no lights file in {small}: expected lights.txt, lights.json or an RTI .lp file"):
        load_dataset(small)


def test_light_count_mismatch(small):
    lines = _lights_lines(small)
    (small / "lights.txt").write_text("\n".join(lines[:-1]) + "\n")
    with _raises(DataError, f"lights.txt has 4 light directions but {small} has 5 images"):
        load_dataset(small)
    (small / "lights.txt").write_text("\n".join(lines + lines[-1:]) + "\n")
    with _raises(DataError, f"lights.txt has 6 light directions but {small} has 5 images"):
        load_dataset(small)


def test_lights_json_missing_and_unknown_images(small):
    d = _expected()
    entries = {f"light_{i:04d}.png": list(d[i]) for i in range(4)}
    _replace_lights(small, json.dumps(entries), "lights.json")
    with _raises(DataError, "lights.json has no direction for image light_0004.png"):
        load_dataset(small)
    entries["light_0004.png"] = list(d[4])
    entries["ghost.png"] = [0, 0, 1]
    (small / "lights.json").write_text(json.dumps(entries))
    with _raises(DataError, f"lights.json names ghost.png, which is not an image in {small}"):
        load_dataset(small)


@pytest.mark.parametrize(
    "text, message",
    [
        ("x y z\n0 0 1\n0 1\n", "lights.txt line 3: expected 3 numbers (x y z), got 2"),
        ("0 0 1\n0 0 1 5\n", "lights.txt line 2: expected 3 numbers (x y z), got 4"),
        ("# c\n0 0 1\n0 zero 1\n", "lights.txt line 3: cannot read 'zero' as a number"),
        ("phi theta\n0.1 0.2 0.3\n", "lights.txt line 2: expected 2 numbers (phi theta), got 3"),
        ("a b c\n0 0 1\n", "lights.txt line 1: unknown header 'a b c'; use 'x y z'; 'phi theta'; 'phi_deg theta_deg'"),
        ("1 2 3 4\n", "lights.txt line 1: expected 3 numbers (x y z) or 2 (phi theta), got 4"),
        ("# only a comment\n", "holds no light directions"),
    ],
)
def test_malformed_lights_txt(small, text, message):
    (small / "lights.txt").write_text(text)
    with _raises(DataError, message):
        load_dataset(small)


def test_malformed_lights_json(small):
    _replace_lights(small, "{not json", "lights.json")
    with _raises(DataError, "lights.json line 1: not valid JSON"):
        load_dataset(small)
    (small / "lights.json").write_text(json.dumps({"light_0000.png": [1, 2, 3, 4]}))
    with _raises(DataError, "lights.json: entry 'light_0000.png': expected [x, y, z] or [phi, theta], got 4 numbers"):
        load_dataset(small)
    (small / "lights.json").write_text(json.dumps({"light_0000.png": {"a": 1}}))
    with _raises(DataError, "lights.json: entry 'light_0000.png' has keys ['a']; use x/y/z, phi/theta or phi_deg/theta_deg"):
        load_dataset(small)


def test_unknown_lights_format(small):
    with _raises(DataError, "unknown lights format 'polarish'; use one of cartesian, spherical, spherical-deg"):
        load_dataset(small, lights_format="polarish")


@pytest.mark.parametrize(
    "row, message",
    [
        ("nan 0 1", "lights.txt: direction 2 is not finite (NaN or inf)"),
        ("0 0 0", "lights.txt: direction 2 has zero length"),
        ("0.6 0 -0.8", "lights.txt: direction 2 (0.600, 0.000, -0.800; polar 143.1 deg, azimuth 0.0 deg) is below the horizon (z < 0); pass --allow-below-horizon to accept it"),
    ],
)
def test_bad_directions(small, row, message):
    lines = _lights_lines(small)
    lines[3] = row  # line 0 is the header, so this is direction 2
    (small / "lights.txt").write_text("\n".join(lines) + "\n")
    with _raises(LightsError, message):
        load_dataset(small)


def test_below_horizon_accepted_with_flag(small):
    lines = _lights_lines(small)
    lines[3] = "0.6 0 -0.8"
    (small / "lights.txt").write_text("\n".join(lines) + "\n")
    ds = load_dataset(small, allow_below_horizon=True)
    np.testing.assert_allclose(ds.lights[2].numpy(), [0.6, 0, -0.8], atol=1e-6)
    assert ds.describe()["polar_deg"][1] == pytest.approx(143.13, abs=0.01)


# -- the dataset object ------------------------------------------------------------------


def test_describe(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    info = ds.describe()
    sph = np.degrees(cartesian_to_spherical(fibonacci_hemisphere(64)))
    assert info["count"] == 64 and info["resolution"] == "16x16" and info["bit_depth"] == 8
    assert info["dtype"] == "uint8" and info["source"] == str(tiny_dataset)
    assert info["polar_deg"] == pytest.approx([sph[:, 0].min(), sph[:, 0].max()], abs=0.01)
    assert info["azimuth_deg"] == pytest.approx([sph[:, 1].min(), sph[:, 1].max()], abs=0.01)
    assert 10 < info["spacing_deg"] < 25  # 64 lights over 2 pi sr: about 18 degrees apart
    json.dumps(info)  # JSON-ready


def test_subset_and_in_memory_dataset(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    sub = ds.subset([10, 3])
    assert len(sub) == 2 and sub.names == [ds.names[10], ds.names[3]]
    assert torch.equal(sub.pixels, ds.pixels[[10, 3]]) and torch.equal(sub.lights, ds.lights[[10, 3]])
    mem = OLATDataset(np.zeros((2, 3, 4, 3), dtype=np.float32), fibonacci_hemisphere(2))
    assert (mem.height, mem.width, mem.bit_depth, len(mem)) == (3, 4, 32, 2)
    with _raises(DataError, "images must have shape [L, H, W, 3], got [2, 3, 4]"):
        OLATDataset(np.zeros((2, 3, 4)), fibonacci_hemisphere(2))
    with _raises(DataError, "<memory>: 2 images but 3 light directions"):
        OLATDataset(np.zeros((2, 3, 4, 3)), fibonacci_hemisphere(3))


def test_write_dataset_checks_its_inputs(tmp_path):
    with _raises(DataError, "3 images but 2 light directions"):
        write_dataset(tmp_path / "w", np.zeros((3, 2, 2, 3)), fibonacci_hemisphere(2))
    with _raises(DataError, "image names must sort in light order"):
        write_dataset(tmp_path / "w", np.zeros((2, 2, 2, 3)), fibonacci_hemisphere(2), names=["b.png", "a.png"])
    with _raises(DataError, "bit depth must be 8 or 16, got 12"):
        write_dataset(tmp_path / "w", np.zeros((2, 2, 2, 3)), fibonacci_hemisphere(2), bit_depth=12)
