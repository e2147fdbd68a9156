"""RTI ``.lp`` light files: reading, one-line errors, writing, converting, and a capture
folder (JPEGs + ``.lp`` with Windows paths) that trains and evaluates as it is."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from relightzoo.cli import main
from relightzoo.data import load_dataset, read_image, read_lights_file, write_image, write_lights_file
from relightzoo.data.lpfile import lp_base_name, read_lp, write_lp
from relightzoo.errors import DataError, LightsError
from relightzoo.lights import fibonacci_hemisphere

pytestmark = pytest.mark.usefixtures("one_thread")


def _raises(cls, text):
    return pytest.raises(cls, match="^" + re.escape(text) + "$")


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    """Four 6 x 4 JPEGs and a well-formed .lp naming them by Windows paths, out of order."""
    folder = tmp_path / "capture"
    for i in range(1, 5):
        write_image(folder / f"img_0{i}.jpg", np.full((4, 6, 3), 0.2 * i))
    _write(folder, "4\n"
           "C:\\Captures\\Vase 2\\jpeg-exports\\img_03.jpg 0 0 2\n"
           "img_01.jpg 0.5 0 0.5\n"
           "jpeg-exports/img_04.jpg -0.3 0.3 0.9\n"
           "D:\\img_02.jpg  0.0\t-1.5 1.5\n")
    return folder


def _write(folder: Path, text: str, name: str = "capture.lp") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


def test_base_names_of_windows_posix_and_relative_paths():
    assert lp_base_name("C:\\Captures\\Vase 2\\img_03.jpg") == "img_03.jpg"
    assert lp_base_name("jpeg-exports/img_04.jpg") == "img_04.jpg"
    assert lp_base_name("/home/me/img.JPG") == "img.JPG"
    assert lp_base_name('"C:\\a b\\c.jpg"') == "c.jpg"


def test_capture_folder_loads_matched_by_base_name_and_normalised(capture):
    with _no_warnings():
        ds = load_dataset(capture)
    assert ds.names == ["img_01.jpg", "img_02.jpg", "img_03.jpg", "img_04.jpg"]
    assert ds.lights_file == "capture.lp"
    s = 2 ** -0.5
    expected = [[s, 0, s], [0, -s, s], [0, 0, 1], np.array([-0.3, 0.3, 0.9]) / np.sqrt(0.99)]
    np.testing.assert_allclose(ds.lights.numpy(), np.array(expected, dtype=np.float64), atol=1e-6)
    # each image kept its own light: img_0i is grey 0.2 i
    np.testing.assert_allclose(ds.images()[:, 0, 0, 0].numpy(), [0.2, 0.4, 0.6, 0.8], atol=2 / 255)


def test_names_match_ignoring_case(capture):
    (capture / "capture.lp").write_text("4\nIMG_01.JPG 0 0 1\nimg_02.jpg 0 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n")
    assert load_dataset(capture).names[0] == "img_01.jpg"


_LINES = "img_01.jpg 0 0 1\nimg_02.jpg 0 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n"


@pytest.mark.parametrize(
    "text, cls, message",
    [
        ("5\n" + _LINES, DataError, "capture.lp line 1: says 5 lights but the file lists 4"),
        ("3\n" + _LINES, DataError, "capture.lp line 1: says 3 lights but the file lists 4"),
        ("four\n" + _LINES, DataError,
         "capture.lp line 1: expected the number of lights (a positive whole number), got 'four'"),
        ("4.5\n" + _LINES, DataError,
         "capture.lp line 1: expected the number of lights (a positive whole number), got '4.5'"),
        ("", DataError,
         "capture.lp is empty; an .lp file starts with the number of lights, then 'filename x y z' lines"),
        ("4\nimg_01.jpg 0 0 1\nimg_02.jpg 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n", DataError,
         "capture.lp line 3: expected 'filename x y z', got 'img_02.jpg 0 1'"),
        ("4\nimg_01.jpg 0 0 1\nimg_02.jpg 0 0 1\nimg_03.jpg 0 zero 1\nimg_04.jpg 0 0 1\n", DataError,
         "capture.lp line 4: cannot read 'zero' as a number (expected 'filename x y z')"),
        ("4\nimg_01.jpg 0 0 1\nimg_02.jpg nan 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n", LightsError,
         "capture.lp line 3: the direction of img_02.jpg is not finite (nan 0.0 1.0)"),
        ("4\nimg_01.jpg 0 0 1\nimg_02.jpg 0 0 1\nimg_03.jpg 0 0 inf\nimg_04.jpg 0 0 1\n", LightsError,
         "capture.lp line 4: the direction of img_03.jpg is not finite (0.0 0.0 inf)"),
        ("4\nimg_01.jpg 0 0 1\nimg_02.jpg 0 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 0\n", LightsError,
         "capture.lp line 5: the direction of img_04.jpg has zero length"),
        ("4\nimg_01.jpg 0 0 1\nimg_02.jpg 0.5 0.2 -0.3\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n", LightsError,
         "capture.lp line 3: the direction of img_02.jpg (0.5, 0.2, -0.3) is below the horizon (z < 0); "
         "pass --allow-below-horizon to accept it"),
        ("4\nimg_01.jpg 0 0 1\nC:\\x\\img_01.jpg 0 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n", DataError,
         "capture.lp line 3 names img_01.jpg again (first on line 2)"),
        ("4\nimg_01.jpg 0 0 1\nC:\\shots\\img_09.jpg 0 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n", DataError,
         "capture.lp line 3 names img_09.jpg, which is not an image in {folder}"),
        ("3\nimg_01.jpg 0 0 1\nimg_03.jpg 0 0 1\nimg_04.jpg 0 0 1\n", DataError,
         "capture.lp has no line for image img_02.jpg; list every image of {folder} in it"),
        ("1\nC:\\shots\\ 0 0 1\n", DataError, "capture.lp line 2: 'C:\\shots\\' names a folder, not an image file"),
    ],
)
def test_each_problem_is_one_line_error(capture, text, cls, message):
    (capture / "capture.lp").write_text(text)
    with _raises(cls, message.format(folder=capture)):
        load_dataset(capture)


def test_below_horizon_accepted_with_flag(capture):
    (capture / "capture.lp").write_text(_LINES.replace("img_02.jpg 0 0 1", "img_02.jpg 1 0 -0.1").join(["4\n", ""]))
    ds = load_dataset(capture, allow_below_horizon=True)
    assert ds.lights[1, 2] < 0


def test_binary_file_and_two_lp_files(capture):
    (capture / "capture.lp").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff")
    with _raises(DataError, "capture.lp is not a text file; an .lp file holds a count, then 'filename x y z' lines"):
        load_dataset(capture)
    (capture / "capture.lp").write_text("4\n" + _LINES)
    (capture / "other.lp").write_text("4\n" + _LINES)
    with _raises(DataError, f"{capture} holds 2 .lp files (capture.lp, other.lp); keep the one that describes these images"):
        load_dataset(capture)


def test_windows_code_page_and_crlf(capture):
    text = "4\r\nC:\\Fotos\\Caf\xe9\\img_01.jpg 0 0 1\r\n" + _LINES.split("\n", 1)[1].replace("\n", "\r\n")
    (capture / "capture.lp").write_bytes(text.encode("cp1252"))
    assert len(load_dataset(capture)) == 4


def test_write_lp_reads_back_exactly(tmp_path):
    dirs = fibonacci_hemisphere(7)
    names = [f"shot {i}.jpg" for i in range(7)]  # names with spaces survive
    write_lp(tmp_path / "a.lp", dirs, names)
    lp = read_lp(tmp_path / "a.lp")
    assert lp.names == names and lp.lines == list(range(2, 9))
    np.testing.assert_array_equal(lp.dirs, dirs / np.linalg.norm(dirs, axis=1, keepdims=True))
    assert (tmp_path / "a.lp").read_text().splitlines()[0] == "7"
    with _raises(DataError, "a.lp: an .lp file holds cartesian directions (x y z); it cannot be written as spherical"):
        write_lights_file(tmp_path / "a.lp", dirs, "spherical", names=names)
    with _raises(DataError, "writing b.lp needs one image name per light (7 lights, no names)"):
        write_lights_file(tmp_path / "b.lp", dirs)


def test_convert_txt_to_lp_to_json_and_back(capture, tmp_path):
    ds = load_dataset(capture)
    txt = write_lights_file(tmp_path / "spherical.txt", ds.lights, "spherical-deg")
    for name in ds.names:  # images beside the .txt give the .lp its names
        (tmp_path / name).write_bytes((capture / name).read_bytes())
    res = _run("data", "convert", txt, tmp_path / "out.lp")
    assert res.exit_code == 0, res.output
    assert "wrote 4 lights to" in res.output and "(spherical-deg -> cartesian)" in res.output
    lp = read_lp(tmp_path / "out.lp")
    assert lp.names == ds.names
    np.testing.assert_allclose(lp.dirs, ds.lights.numpy(), atol=1e-6)
    # .lp in any order -> lights.txt lines in sorted image order; -> lights.json by name
    assert _run("data", "convert", capture / "capture.lp", tmp_path / "back.txt").exit_code == 0
    np.testing.assert_allclose(read_lights_file(tmp_path / "back.txt").dirs, ds.lights.numpy(), atol=1e-6)
    assert _run("data", "convert", capture / "capture.lp", tmp_path / "back.json").exit_code == 0
    mapping = json.loads((tmp_path / "back.json").read_text())
    np.testing.assert_allclose(mapping["img_04.jpg"], ds.lights[3].numpy(), atol=1e-6)
    assert _run("data", "convert", tmp_path / "back.json", tmp_path / "again.lp").exit_code == 0
    assert sorted(read_lp(tmp_path / "again.lp").names) == ds.names  # json keeps the .lp's order
    res = _run("data", "convert", txt, tmp_path / "x.lp", "--to", "spherical")
    assert res.exit_code == 1
    assert res.output.strip() == "Error: x.lp: an .lp file holds cartesian directions (x y z); drop --to spherical"


def test_rti_capture_of_the_demo_scene_trains_and_evaluates(tmp_path):
    """The demo scene written as an RTI capture (JPEGs, Windows paths, shuffled lines,
    unnormalised directions) loads image for image like the demo, then trains and evaluates."""
    demo = load_dataset("demo")
    picks = np.arange(0, 1000, 25)  # 40 lights
    folder = tmp_path / "rti"
    rng = np.random.default_rng(0)
    lines = []
    for k, i in enumerate(picks):
        name = f"IMG_{k + 1:03d}.jpg"
        write_image(folder / name, demo.images([i])[0].numpy())
        scale = rng.uniform(0.5, 3.0)
        x, y, z = (demo.lights[i].double().numpy() * scale).tolist()
        lines.append(f"C:\\Users\\lab\\RTI\\still-life\\jpeg-exports\\{name} {x:.9f} {y:.9f} {z:.9f}")
    rng.shuffle(lines)
    (folder / "still-life.lp").write_text(f"{len(lines)}\r\n" + "\r\n".join(lines) + "\r\n")

    ds = load_dataset(folder)
    assert len(ds) == 40 and ds.lights_file == "still-life.lp"
    np.testing.assert_allclose(ds.lights.numpy(), demo.lights[picks].numpy(), atol=1e-6)
    np.testing.assert_array_equal(ds.pixels[7].numpy(), read_image(folder / "IMG_008.jpg"))
    assert np.abs(ds.images([7]).numpy() - demo.images([picks[7]]).numpy()).mean() < 0.01  # JPEG of the same image

    run = tmp_path / "run"
    res = _run("train", folder, "--model", "low-rank", "--model-arg", "rank=4", "--steps", "40",
               "--lights", "uniform:20", "--out", run, "--json")
    assert res.exit_code == 0, res.output
    res = _run("eval", run / "latest.safetensors", "--json")
    assert res.exit_code == 0, res.output
    scores = json.loads(res.stdout)["results"]
    assert scores["model"]["all"]["count"] == 20  # scored on the 20 captures it did not train on
    print(scores["model"]["all"]["psnr"], scores["blend"]["all"]["psnr"])
    assert scores["model"]["all"]["psnr"] > 20.0


class _no_warnings:
    """Context: fail on any warning (an .lp file's unnormalised directions are its custom, not a mistake)."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
