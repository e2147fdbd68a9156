"""``relightzoo data info`` and ``relightzoo data convert`` through the real CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from relightzoo.cli import main
from relightzoo.data import read_lights_file, write_lights_file
from relightzoo.lights import cartesian_to_spherical, fibonacci_hemisphere


def _run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_info_text(tiny_dataset):
    res = _run("data", "info", tiny_dataset)
    assert res.exit_code == 0, res.output
    out = res.output
    assert f"source       {tiny_dataset}" in out
    assert "images       64 (16 x 16, 8-bit" in out
    sph = np.degrees(cartesian_to_spherical(fibonacci_hemisphere(64)))
    assert f"polar        {sph[:, 0].min():.1f} .. {sph[:, 0].max():.1f} deg" in out
    assert f"azimuth      {sph[:, 1].min():.1f} .. {sph[:, 1].max():.1f} deg" in out
    # the text plot: a 21 x 41 disc with one mark a light (Fibonacci lights are well apart)
    plot = out[out.index("+y"):].splitlines()
    disc = plot[1:22]
    assert len(disc) == 21 and max(len(line) for line in disc) <= 41 + 3
    marks = sum(line.count("o") + 2 * line.count("O") for line in disc)
    assert 60 <= marks <= 64
    assert disc[10].rstrip().endswith("+x") and "+" in disc[10][15:26]  # the pole at the centre


def test_info_text_plot_places_lights_by_angle(tmp_path):
    from conftest import make_olat_folder

    folder = make_olat_folder(tmp_path / "d", n_lights=3, height=4, width=4)
    # the pole, a light on +x at the horizon, one on +y at polar 45 deg
    write_lights_file(folder / "lights.txt", np.array([[0, 0, 1], [1, 0, 0], [0, 1, 1]]) / [[1], [1], [math.sqrt(2)]])
    res = _run("data", "info", folder)
    assert res.exit_code == 0, res.output
    disc = res.output[res.output.index("+y"):].splitlines()[1:22]
    assert disc[10][20] == "o" and disc[10][40] == "o"  # centre; right rim
    assert disc[5][20] == "o"  # halfway up


def test_info_json(tiny_dataset):
    res = CliRunner().invoke(main, ["data", "info", str(tiny_dataset), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["count"] == 64 and info["width"] == 16 and info["height"] == 16
    assert info["bit_depth"] == 8 and info["lights_file"] == "lights.txt"
    sph = np.degrees(cartesian_to_spherical(fibonacci_hemisphere(64)))
    assert info["polar_deg"] == pytest.approx([sph[:, 0].min(), sph[:, 0].max()], abs=0.01)


def test_info_plot_png(tiny_dataset, tmp_path):
    out = tmp_path / "pics" / "lights.png"
    res = CliRunner().invoke(main, ["data", "info", str(tiny_dataset), "--json", "--plot", str(out), "--thumbnails", "3"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["plot"] == str(out)
    img = np.asarray(Image.open(out).convert("RGB"))
    assert img.shape[0] > 400 and img.shape[1] >= 400
    dots = (img[..., 0] == 40) & (img[..., 1] == 70) & (img[..., 2] == 160)  # light markers
    assert dots.sum() > 64 * 10
    no_thumbs = tmp_path / "bare.png"
    assert _run("data", "info", tiny_dataset, "--plot", no_thumbs, "--thumbnails", "0").exit_code == 0
    assert Image.open(no_thumbs).height < Image.open(out).height


def test_info_errors_are_one_line(tmp_path):
    res = _run("data", "info", tmp_path / "missing")
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: dataset folder {tmp_path / 'missing'} does not exist"
    res = _run("data", "info", "dmeo")
    assert res.exit_code == 1
    assert res.output.strip() == "Error: 'dmeo' is neither a dataset folder nor a built-in scene; did you mean 'demo'?"


def test_info_below_horizon_flag_and_lights_format(tmp_path):
    from conftest import make_olat_folder

    folder = make_olat_folder(tmp_path / "d", n_lights=4, height=4, width=4)
    sph = np.degrees(cartesian_to_spherical(fibonacci_hemisphere(4)))
    sph[1, 0] = 100.0  # below the horizon
    (folder / "lights.txt").write_text("\n".join(f"{p} {t}" for p, t in sph) + "\n")
    res = _run("data", "info", folder, "--lights-format", "spherical-deg")
    assert res.exit_code == 1 and "is below the horizon (z < 0); pass --allow-below-horizon" in res.output
    res = CliRunner().invoke(main, ["data", "info", str(folder), "--lights-format", "spherical-deg",
                                    "--allow-below-horizon", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["polar_deg"][1] == pytest.approx(100.0, abs=0.01)


@pytest.mark.parametrize("fmt", ["spherical", "spherical-deg", "cartesian"])
def test_convert_round_trip(tmp_path, fmt):
    dirs = fibonacci_hemisphere(30)
    src = write_lights_file(tmp_path / "lights.txt", dirs)
    mid, back = tmp_path / f"mid_{fmt}.txt", tmp_path / "back.txt"
    res = _run("data", "convert", src, mid, "--to", fmt)
    assert res.exit_code == 0, res.output
    assert f"wrote 30 lights to {mid} (cartesian -> {fmt})" in res.output
    header = mid.read_text().splitlines()[0]
    assert header == {"cartesian": "x y z", "spherical": "phi theta", "spherical-deg": "phi_deg theta_deg"}[fmt]
    assert read_lights_file(mid).fmt == fmt
    assert _run("data", "convert", mid, back, "--to", "cartesian").exit_code == 0
    np.testing.assert_allclose(read_lights_file(back).dirs, dirs, atol=1e-12)


def test_convert_from_flag_and_json(tiny_dataset, tmp_path):
    sph_deg = np.degrees(cartesian_to_spherical(fibonacci_hemisphere(64)))
    headerless = tiny_dataset / "angles.txt"
    headerless.write_text("\n".join(f"{p} {t}" for p, t in sph_deg) + "\n")
    out_json = tiny_dataset / "lights.json"
    res = _run("data", "convert", headerless, out_json, "--from", "spherical-deg")
    assert res.exit_code == 0, res.output
    mapping = json.loads(out_json.read_text())
    assert list(mapping)[:2] == ["light_0000.png", "light_0001.png"] and len(mapping) == 64
    np.testing.assert_allclose(mapping["light_0005.png"], fibonacci_hemisphere(64)[5], atol=1e-12)
    # json -> json keeps the names; spherical form as objects
    res = _run("data", "convert", out_json, tmp_path / "sph.json", "--to", "spherical-deg")
    assert res.exit_code == 0, res.output
    entry = json.loads((tmp_path / "sph.json").read_text())["light_0005.png"]
    assert entry == pytest.approx({"phi_deg": sph_deg[5, 0], "theta_deg": sph_deg[5, 1]})


def test_convert_errors(tmp_path):
    write_lights_file(tmp_path / "l.txt", fibonacci_hemisphere(3))
    res = _run("data", "convert", tmp_path / "l.txt", tmp_path / "l.json")
    assert res.exit_code == 1
    assert f"Error: writing l.json needs one image name per light: l.txt has 3 lights but {tmp_path} holds 0 images" in res.output
    (tmp_path / "bad.txt").write_text("0 0 1\n0 0\n")
    res = _run("data", "convert", tmp_path / "bad.txt", tmp_path / "o.txt")
    assert res.exit_code == 1 and res.output.strip() == "Error: bad.txt line 2: expected 3 numbers (x y z), got 2"
    res = _run("data", "convert", tmp_path / "none.txt", tmp_path / "o.txt")
    assert res.exit_code == 1 and "lights file" in res.output and "does not exist" in res.output
    res = _run("data", "convert", tmp_path / "l.txt", tmp_path / "o.txt", "--to", "polar")
    assert res.exit_code == 2 and "Invalid value for '--to'" in res.output


def test_data_info_does_not_import_renderer(tiny_dataset):
    code = (
        "import sys; from click.testing import CliRunner; from relightzoo.cli import main; "
        f"r = CliRunner().invoke(main, ['data', 'info', {str(tiny_dataset)!r}]); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in sys.modules if m.startswith('mitsuba') or m.endswith('render_cmd')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_render_subcommand_is_loaded_lazily(tmp_path, monkeypatch):
    from relightzoo.cli import data_cmd

    (tmp_path / "fake_render_cmd.py").write_text(
        "import click\n@click.command('render')\ndef render():\n    click.echo('rendering')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(data_cmd.data.lazy, "render", "fake_render_cmd:render")
    assert "  render" in _run("data", "--help").output
    res = _run("data", "render")
    assert res.exit_code == 0 and res.output == "rendering\n"
    monkeypatch.setitem(data_cmd.data.lazy, "render", "no_such_module_here:render")
    assert "  render" not in _run("data", "--help").output
    assert _run("data", "render").exit_code == 2  # "No such command"


def test_data_help_lists_commands():
    res = _run("data", "--help")
    assert res.exit_code == 0
    assert "info" in res.output and "convert" in res.output
