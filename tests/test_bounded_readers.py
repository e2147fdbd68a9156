"""Readers bounded and typed: huge image headers, deep JSON, metadata and run configs of the wrong
shape, and non-finite weights are each one line through the CLI, never a traceback."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.data import load_dataset, read_image, read_lights_file
from relightzoo.data.images import image_size
from relightzoo.errors import CheckpointError, DataError
from relightzoo.jsonfile import json_depth, parse_json
from relightzoo.train import load_checkpoint, read_config, save_checkpoint
from relightzoo.zoo import create_model


def _png_header(width: int, height: int) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_a_png_claiming_100000_squared_pixels_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "bomb"
    folder.mkdir()
    (folder / "a.png").write_bytes(_png_header(100000, 100000))
    (folder / "lights.txt").write_text("0 0 1\n")
    _one_line_error(_cli("data", "info", str(folder)), "a.png", "100000 x 100000 pixels", "over the 134 megapixels")
    with pytest.raises(DataError, match="100000 x 100000"):
        read_image(folder / "a.png")


def test_a_jpeg_claiming_too_many_pixels_is_one_line(tmp_path: Path) -> None:
    from PIL import Image

    path = tmp_path / "big.jpg"
    Image.new("RGB", (16, 16)).save(path, format="JPEG")
    data = bytearray(path.read_bytes())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65000, 65000)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="big.jpg"):
        image_size(path)


def test_a_zero_sized_png_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "z.png").write_bytes(_png_header(0, 5))
    with pytest.raises(DataError, match=r"0 x 5 pixels \(no pixels\)"):
        image_size(tmp_path / "z.png")


def test_deeply_nested_lights_json_is_one_line(tmp_path: Path) -> None:
    folder = make_olat_folder(tmp_path / "d", n_lights=2, height=4, width=4)
    (folder / "lights.txt").unlink()
    (folder / "lights.json").write_text('{"light_0000.png": ' + "[" * 100000 + "]" * 100000 + "}")
    _one_line_error(_cli("data", "info", str(folder)), "lights.json nests 100001 levels deep; a reader accepts 32 at most")


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [[1]]}') == 3
    assert json_depth('"\\"[[["') == 0
    assert parse_json('{"a": [1, 2]}', "x", DataError) == {"a": [1, 2]}
    with pytest.raises(DataError, match="x line 1: not valid JSON"):
        parse_json("{", "x", DataError)
    with pytest.raises(DataError, match="over the 0 MiB"):
        parse_json("[1]", "x", DataError, max_bytes=2)
    with pytest.raises(DataError, match="not valid JSON"):
        parse_json("[" + "9" * 5000 + "]", "x", DataError)  # beyond Python's int-parsing limit


def test_lights_txt_comment_after_the_numbers(tmp_path: Path) -> None:
    path = tmp_path / "lights.txt"
    path.write_text("# x y z, one line per image\nx y z  # the header\n0 0 1  # the top light\n0.6,0,0.8#no space\n")
    table = read_lights_file(path)
    assert table.dirs.tolist() == [[0.0, 0.0, 1.0], [0.6, 0.0, 0.8]] and table.fmt == "cartesian"


def _siren(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("siren", encoder="raw", activation="sine", hidden_features=8, hidden_layers=1)


def _with_metadata(tmp_path: Path, config) -> Path:
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"relightzoo": json.dumps(config)})
    return path


@pytest.mark.parametrize(
    "config, says",
    [
        ({"format_version": 1, "spec": "siren"}, "spec: expected an object, got the string 'siren'"),
        ({"format_version": 1, "spec": {"model": 3}}, "spec.model: expected an object, got the number 3"),
        ({"format_version": 1, "dataset": {"split": []}}, "dataset.split: expected an object, got a list of 0"),
        ({"format_version": 1, "dataset": {"lights": [[0, 0]]}}, "dataset.lights[0]: expected 3 items, got 2"),
        ({"format_version": 1, "training": 5}, "training: expected an object, got the number 5"),
        ({"format_version": 1, "step": "7"}, "step: expected an integer, got the string '7'"),
        ({"format_version": True}, "has no format_version"),
    ],
)
def test_metadata_of_the_wrong_type_names_the_field(tmp_path: Path, config, says: str) -> None:
    path = _with_metadata(tmp_path, config)
    with pytest.raises(CheckpointError) as err:
        read_config(path)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_header_metadata_of_the_wrong_type_is_one_line(tmp_path: Path) -> None:
    header = json.dumps({"__metadata__": ["not", "a", "map"]}).encode()
    path = tmp_path / "h.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(CheckpointError, match=r"not a safetensors file \(header '__metadata__': expected an object, got a list of 3\)"):
        read_config(path)
    header = json.dumps({"w": {"dtype": "F32", "shape": [1], "data_offsets": "0-4"}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 4)
    with pytest.raises(CheckpointError, match="header 'w'.data_offsets: expected a list"):
        read_config(path)


def test_nonfinite_weights_are_refused_naming_the_tensor(tmp_path: Path) -> None:
    model = _siren()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    path = save_checkpoint(tmp_path / "nan.safetensors", model, {})
    with pytest.raises(CheckpointError, match=r"tensor '[^']+' holds \d+ NaN or infinite values of \d+ \(and \d+ more tensors\)"):
        load_checkpoint(path)
    with pytest.warns(UserWarning, match="loaded anyway"):
        load_checkpoint(path, allow_nonfinite=True)
    _one_line_error(_cli("relight", str(path), "--light", "0,0,1", "--size", "8x8", "--out", str(tmp_path / "x.png")), "NaN or infinite")
    assert not (tmp_path / "x.png").exists()


def test_a_nonfinite_render_is_an_error_not_a_black_image(tmp_path: Path) -> None:
    from relightzoo.errors import OutputError
    from relightzoo.relight import relight_to_file

    model = _siren()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    with pytest.raises(OutputError, match="NaN or infinite"):
        relight_to_file(model, [0.0, 0.0, 1.0], 8, 8, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# -- run folders ---------------------------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    from relightzoo.train import train

    data = load_dataset(make_olat_folder(tmp_path / "data", n_lights=8, height=6, width=6))
    spec = {"model": {"name": "siren", "args": {"hidden_features": 8, "hidden_layers": 1}},
            "encoder": {"name": "raw", "args": {}}, "activation": {"name": "sine", "args": {}}}
    train(data, "xu5:0.77", spec, steps=2, batch_size=16, device="cpu", out_dir=tmp_path / "run", progress=False)
    return tmp_path / "run"


@pytest.mark.parametrize(
    "text, says",
    [
        ("[1, 2, 3]", "config.json is not a relightzoo run's config (the top level: expected an object, got a list of 3)"),
        ('{"architectures": ["BertModel"], "model_type": "bert"}', "config.json is not a relightzoo run's config (the key 'training' is missing)"),
        ('{"format_version": 1, "training": {"steps": "many"}, "dataset": {}, "spec": {"model": {"name": "siren"}}}',
         "training.steps: expected an integer, got the string 'many'"),
        ("{" * 50 + "}" * 50, "config.json nests 50 levels deep"),
    ],
)
def test_a_run_folder_with_a_foreign_config_is_one_line(run_dir: Path, text: str, says: str) -> None:
    (run_dir / "config.json").write_text(text)
    _one_line_error(_cli("train", "--resume", str(run_dir), "--steps", "4"), f"cannot resume {run_dir}", says)


# -- found by the fuzz tests (tests/test_fuzz_readers.py) -------------------------------------


def test_a_corrupt_16_bit_colour_png_is_one_line_not_a_crash(tmp_path: Path) -> None:
    # 8 x 1, 16-bit gray + alpha, Adam7, with a bad row filter byte: torchvision's libpng
    # decoder ended the whole process with a segmentation fault on it
    crash = bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000080000000110040000016e9ecb1d0000001c49444154789ceb54fd79e2"
        "8e4dbab2e3da45cf7b0b6d987819300000dc5f07d2191549d60000000049454e44ae426082"
    )
    (tmp_path / "c.png").write_bytes(crash)
    with pytest.raises(DataError, match=r"^cannot read image c.png: its image data holds 35 bytes where the header implies 36$"):
        read_image(tmp_path / "c.png")


def test_a_valid_16_bit_colour_png_still_reads_at_full_depth(tmp_path: Path) -> None:
    import numpy as np

    from relightzoo.data import write_image

    img = (np.arange(5 * 7 * 3, dtype=np.int64).reshape(5, 7, 3) * 601) % 65536
    write_image(tmp_path / "x.png", img.astype(np.uint16))
    assert np.array_equal(read_image(tmp_path / "x.png"), img)


def test_directions_past_the_float_range_normalise_instead_of_vanishing(tmp_path: Path) -> None:
    from relightzoo.lights import validate_directions

    with pytest.warns(UserWarning, match="not unit length"):
        assert validate_directions([[0.0, 0.0, 1e200]]).tolist() == [[0.0, 0.0, 1.0]]
    (tmp_path / "c.lp").write_text("1\nimg_0.jpg 0.0 0.0 1.3407807929942597e+154\n")
    assert read_lights_file(tmp_path / "c.lp").dirs.tolist() == [[0.0, 0.0, 1.0]]
