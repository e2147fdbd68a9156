"""``relightzoo data render``: Mitsuba OLAT datasets through the CLI, loaded back by the loader.

Renders are tiny (16 x 12 pixels, a handful of lights, low spp) so the file runs in seconds.
"""

from __future__ import annotations

import json
import shlex
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from relightzoo.cli import main
from relightzoo.data import load_dataset
from relightzoo.data.render import SCENES, render_olat
from relightzoo.lights import hemisphere_pattern, spherical_to_cartesian


def _run(*args: str):
    return CliRunner().invoke(main, ["data", "render", *args])


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def _needs_mitsuba() -> None:
    pytest.importorskip("mitsuba", reason="the renderer tests need Mitsuba 3 (pip install -e '.[dev]' or '.[render]')")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A 16 x 12 dataset of the blocks scene under 6 Fibonacci lights, direct light only."""
    _needs_mitsuba()
    out = tmp_path_factory.mktemp("render") / "blocks"
    result = _run("blocks", str(out), "--size", "16x12", "--lights", "6", "--spp", "16", "--max-depth", "2")
    assert result.exit_code == 0, result.output
    return out


def test_render_writes_a_dataset_the_loader_reads(small):
    ds = load_dataset(small)
    assert len(ds) == 6
    assert (ds.height, ds.width) == (12, 16)
    assert ds.names[0] == "light_0000.png"
    np.testing.assert_allclose(ds.lights.numpy(), hemisphere_pattern("fibonacci", 6), atol=1e-5)
    images = ds.images().numpy()
    assert images.shape == (6, 12, 16, 3)
    assert images.max() > 0.3  # well exposed, not a black frame


def test_lights_change_the_images(small):
    images = load_dataset(small).images().numpy()
    for i in range(len(images)):
        for j in range(i + 1, len(images)):
            assert np.abs(images[i] - images[j]).mean() > 0.01, (i, j)
    # shadows move: the darkest pixels under one light are not the darkest under another
    dark = [set(np.argsort(img.mean(-1).ravel())[:20]) for img in images[:3]]
    assert len(dark[0] & dark[1]) < 20 and len(dark[1] & dark[2]) < 20


def test_render_json_records_the_command_that_rebuilds_it(small, tmp_path):
    record = json.loads((small / "render.json").read_text())
    assert record["scene"] == "blocks"
    assert (record["width"], record["height"], record["lights"]) == (16, 12, 6)
    assert record["max_depth"] == 2 and record["spp"] >= 16 and record["seed"] == 0
    assert record["encoding"] == "linear"
    assert record["mitsuba_version"]
    argv = shlex.split(record["command"])
    assert argv[:5] == ["relightzoo", "data", "render", "blocks", str(small)]
    argv[4] = str(tmp_path / "again")
    result = CliRunner().invoke(main, argv[1:])
    assert result.exit_code == 0, result.output
    again = load_dataset(tmp_path / "again").pixels.numpy()
    np.testing.assert_array_equal(again, load_dataset(small).pixels.numpy())


def test_two_seeds_agree_to_40_db():
    """Ground truth is clean enough to score against: seed noise stays below -40 dB."""
    _needs_mitsuba()
    light = spherical_to_cartesian(np.array([[0.6, 2.0]]))
    a = render_olat("spheres", light, 24, 24, spp=64, max_depth=2, seed=0, progress=False)
    b = render_olat("spheres", light, 24, 24, spp=64, max_depth=2, seed=1, progress=False)
    assert not np.array_equal(a, b)  # the seed changes the samples
    assert _psnr(a, b) >= 40.0


def test_sixteen_bit(tmp_path):
    _needs_mitsuba()
    result = _run("spheres", str(tmp_path / "d"), "--size", "8", "--lights", "2", "--spp", "4",
                  "--max-depth", "2", "--bit-depth", "16", "--pattern", "latlong")
    assert result.exit_code == 0, result.output
    ds = load_dataset(tmp_path / "d")
    assert ds.pixels.numpy().dtype == np.uint16
    assert (len(ds), ds.height, ds.width) == (2, 8, 8)


def test_unknown_scene_suggests_the_nearest(tmp_path):
    result = _run("sphere", str(tmp_path / "x"))
    assert result.exit_code == 1
    assert "unknown scene 'sphere'; did you mean 'spheres'?" in result.output
    assert not (tmp_path / "x").exists()


def test_non_empty_out_needs_overwrite(small):
    result = _run("blocks", str(small), "--size", "4", "--lights", "1")
    assert result.exit_code == 1
    assert "is not empty; pass --overwrite" in result.output


def test_overwrite_replaces_old_images(tmp_path):
    _needs_mitsuba()
    out = tmp_path / "d"
    assert _run("corner", str(out), "--size", "6", "--lights", "3", "--spp", "4", "--max-depth", "2").exit_code == 0
    (out / "notes.txt").write_text("kept")
    result = _run("corner", str(out), "--size", "6", "--lights", "2", "--spp", "4", "--max-depth", "2", "--overwrite")
    assert result.exit_code == 0, result.output
    assert len(load_dataset(out)) == 2
    assert (out / "notes.txt").read_text() == "kept"


def test_list_names_every_scene():
    result = _run("--list")
    assert result.exit_code == 0
    for spec in SCENES.values():
        assert spec.name in result.output
        assert spec.description[:30] in result.output


def test_bad_size_is_a_usage_error(tmp_path):
    result = _run("spheres", str(tmp_path / "x"), "--size", "64by64")
    assert result.exit_code == 2
    assert "expected N or WxH" in result.output


def test_without_mitsuba_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mitsuba", None)  # makes `import mitsuba` fail
    result = _run("spheres", str(tmp_path / "x"), "--size", "4", "--lights", "1")
    assert result.exit_code == 1
    assert 'pip install "relightzoo[render]"' in result.output
    assert not (tmp_path / "x").exists()
