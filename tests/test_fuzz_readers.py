"""Property-based fuzzing of every reader of a user's files (hypothesis).

Each target feeds generated files to the real reader and asserts one property: the file
loads, or the reader raises relightzoo's own error (a :class:`RelightzooError`) with a
one-line message; never another exception, never a hang (hypothesis's deadline). Inputs are
generated near the valid format (the structure right, the values and types wrong) so that
the checks past the first line of defence are reached too.

Targets: lights.txt, lights.json, RTI .lp, PNG headers and bodies, safetensors headers and
relightzoo metadata (checkpoints and resume states), and run folders resumed from the CLI.
The ``ci`` profile (``HYPOTHESIS_PROFILE=ci``, which ``.ci/run`` sets) runs 1000 cases per
target; the default profile runs 100 (see ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.torch import save as st_save

from relightzoo import __version__
from relightzoo.errors import RelightzooError

pytestmark = pytest.mark.usefixtures("one_thread")

_FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])


def _one_line(exc: BaseException) -> None:
    assert isinstance(exc, RelightzooError), f"{type(exc).__name__}: {exc}"
    message = str(exc)
    assert message and "\n" not in message and "Traceback" not in message, message


def _loads_or_refuses(fn, *args, **kwargs):
    """``fn(*args)``'s result, or None when it raised relightzoo's one-line error."""
    try:
        result = fn(*args, **kwargs)
    except RelightzooError as exc:
        _one_line(exc)
        event(f"{fn.__name__}: refused ({type(exc).__name__})")
        return None
    event(f"{fn.__name__}: loaded")
    return result


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# -- shared strategies ----------------------------------------------------------------------

_number_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["0", "1", "-1", "0.5", "1e400", "-0", "nan", "inf", "-inf", "1e-320", "0x10", "1_0", "", "+", "."]),
)
_junk_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
_json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(), st.text(max_size=8)
)
_json_values = st.recursive(
    _json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12
)


# -- light files ----------------------------------------------------------------------------


@st.composite
def _lights_txt(draw) -> str:
    lines = []
    if draw(st.booleans()):
        lines.append(draw(st.sampled_from(["x y z", "phi theta", "phi_deg theta_deg", "polar azimuth", "X Y", "a b c"])))
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 9))
        if kind < 6:
            n = draw(st.sampled_from([3, 3, 3, 2, 1, 4]))
            sep = draw(st.sampled_from([" ", "\t", ", ", ","]))
            line = sep.join(draw(_number_text) for _ in range(n))
            if draw(st.booleans()):
                line += draw(st.sampled_from(["  # light", "#", " #x y z", " # 1 2 3"]))
        elif kind < 8:
            line = draw(st.sampled_from(["", "   ", "# a comment", "#"]))
        else:
            line = draw(_junk_text)
        lines.append(line)
    return draw(st.sampled_from(["\n", "\r\n"])).join(lines)


@_FUZZ
@given(text=_lights_txt(), fmt=st.sampled_from([None, None, "cartesian", "spherical", "spherical-deg"]))
def test_fuzz_lights_txt(scratch: Path, text: str, fmt) -> None:
    from relightzoo.data import read_lights_file

    path = scratch / "lights.txt"
    path.write_text(text, encoding="utf-8")
    table = _loads_or_refuses(read_lights_file, path, fmt=fmt)
    if table is not None:
        assert table.dirs.ndim == 2 and table.dirs.shape[1] == 3 and len(table.dirs) >= 1


@st.composite
def _lights_json(draw) -> str:
    choice = draw(st.integers(0, 9))
    if choice == 0:  # deeply nested or plain garbage
        depth = draw(st.integers(1, 3000))
        return '{"a.png": ' + "[" * depth + "]" * depth + "}"
    if choice == 1:
        return draw(st.text(max_size=40))
    if choice == 2:
        return json.dumps(draw(_json_values))
    entries = {}
    for i in range(draw(st.integers(0, 5))):
        form = draw(st.integers(0, 4))
        if form == 0:
            value = [draw(_json_scalars) for _ in range(draw(st.sampled_from([3, 3, 2, 1, 4])))]
        elif form == 1:
            value = dict(zip(draw(st.sampled_from([("x", "y", "z"), ("phi", "theta"), ("phi_deg", "theta_deg"), ("X", "Y", "Z"), ("x", "y")])),
                             [draw(st.floats() | st.integers(-(10**400), 10**400) | _json_scalars) for _ in range(3)]))
        elif form == 2:
            value = [draw(st.floats(-1, 1)), draw(st.floats(-1, 1)), draw(st.floats(0, 1))]
        else:
            value = draw(_json_values)
        entries[draw(st.sampled_from([f"light_{i}.png", "", "a/b.png", "\x00"]))] = value
    try:
        return json.dumps(entries)
    except (ValueError, OverflowError):
        return "{}"


@_FUZZ
@given(text=_lights_json(), fmt=st.sampled_from([None, None, "cartesian", "spherical"]))
def test_fuzz_lights_json(scratch: Path, text: str, fmt) -> None:
    from relightzoo.data import read_lights_file

    path = scratch / "lights.json"
    path.write_text(text, encoding="utf-8")
    table = _loads_or_refuses(read_lights_file, path, fmt=fmt)
    if table is not None:
        assert table.dirs.shape == (len(table.names), 3)


@st.composite
def _lp_file(draw) -> bytes:
    n = draw(st.integers(0, 6))
    lines = [draw(st.sampled_from([str(n), str(n + 1), "", "x", "-1", "99999999999999999999", str(n) + " extra"]))]
    for i in range(n):
        name = draw(st.sampled_from([f"img_{i}.jpg", f"C:\\RTI\\a b\\img_{i}.JPG", f"/x/img_{i}.png", "", '"q.jpg"', "img_0.jpg"]))
        nums = [draw(_number_text) for _ in range(draw(st.sampled_from([3, 3, 3, 2, 4])))]
        lines.append(" ".join([name, *nums]) if draw(st.integers(0, 9)) else draw(_junk_text))
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    raw = text.encode("utf-8", "surrogatepass") if draw(st.booleans()) else text.encode("cp1252", "replace")
    if draw(st.integers(0, 9)) == 0:
        raw = draw(st.binary(max_size=64))
    return raw


@_FUZZ
@given(raw=_lp_file(), below=st.booleans())
def test_fuzz_lp(scratch: Path, raw: bytes, below: bool) -> None:
    from relightzoo.data import read_lights_file

    path = scratch / "capture.lp"
    path.write_bytes(raw)
    table = _loads_or_refuses(read_lights_file, path, allow_below_horizon=below)
    if table is not None:
        assert np.allclose(np.linalg.norm(table.dirs, axis=1), 1.0)


# -- PNG --------------------------------------------------------------------------------------


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


@st.composite
def _png(draw) -> bytes:
    small = st.integers(0, 24)
    huge = st.integers(12000, 2**32 - 1)  # over the pixel budget when both are large
    w = draw(st.one_of(small, huge))
    h = draw(st.one_of(small, huge) if w <= 24 else huge)
    depth = draw(st.sampled_from([1, 2, 4, 8, 8, 16, 16, 3, 0, 255]))
    colour = draw(st.sampled_from([0, 2, 2, 3, 4, 6, 6, 1, 7]))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, draw(st.sampled_from([0, 0, 1])), 0, draw(st.sampled_from([0, 0, 1])))
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    if colour == 3 and draw(st.booleans()):
        out += _chunk(b"PLTE", draw(st.binary(min_size=0, max_size=48)))
    if draw(st.integers(0, 3)):
        bpp = max(1, (depth * {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 3) + 7) // 8) if depth in (1, 2, 4, 8, 16) else 1
        rows = min(h, 24)
        raw = draw(st.binary(min_size=0, max_size=64)) + bytes((1 + min(w, 24) * bpp) * rows)
        data = zlib.compress(raw[: (1 + min(w, 24) * bpp) * rows + draw(st.integers(-8, 8))])
        if draw(st.integers(0, 4)) == 0:
            data = draw(st.binary(max_size=32))
        out += _chunk(b"IDAT", data)
    if draw(st.booleans()):
        out += _chunk(b"IEND", b"")
    if draw(st.integers(0, 5)) == 0:  # flip some bytes anywhere (the CRCs then fail too)
        arr = bytearray(out)
        for _ in range(draw(st.integers(1, 4))):
            arr[draw(st.integers(0, len(arr) - 1))] = draw(st.integers(0, 255))
        out = bytes(arr)
    if draw(st.integers(0, 5)) == 0:
        out = out[: draw(st.integers(0, len(out)))]
    return out


@_FUZZ
@given(data=_png())
def test_fuzz_png(scratch: Path, data: bytes) -> None:
    from relightzoo.data.images import MAX_IMAGE_PIXELS, image_size, read_image

    path = scratch / "img.png"
    path.write_bytes(data)
    size = _loads_or_refuses(image_size, path)
    if size is not None:
        assert size[0] * size[1] <= MAX_IMAGE_PIXELS
    img = _loads_or_refuses(read_image, path)
    if img is not None:
        assert size is not None and img.shape == (*size, 3) and img.dtype in (np.uint8, np.uint16)


# -- safetensors checkpoints and resume states -----------------------------------------------


def _valid_config() -> dict:
    return {
        "format_version": 1,
        "relightzoo_version": __version__,
        "step": 4,
        "spec": {"model": {"name": "siren", "args": {"hidden_features": 4, "hidden_layers": 1}},
                 "encoder": {"name": "raw", "args": {}}, "activation": {"name": "sine", "args": {}},
                 "plugins": {"siren": f"relightzoo {__version__}"}},
        "dataset": {"source": "/nowhere", "height": 4, "width": 4, "lights": [[0.0, 0.0, 1.0]],
                    "split": {"rule": "all", "train": [0], "test": [0], "cap": 0.5, "in_cap": [0], "held_out": False}},
        "training": {"steps": 4, "batch_size": 8, "lr": 0.001, "seed": 0, "schedule": "none"},
        "metrics": {"loss": 0.1, "psnr": 20.0},
    }


@st.composite
def _mutated(draw, base: dict) -> dict:
    """``base`` with a few values, anywhere in it, replaced by generated JSON (or removed)."""
    value = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(0, 3))):
        node, paths = value, []
        while isinstance(node, (dict, list)) and node:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            key = draw(st.sampled_from(keys))
            paths.append((node, key))
            if draw(st.integers(0, 2)) == 0:
                break
            node = node[key]
        if not paths:
            break
        parent, key = paths[-1]
        if isinstance(parent, dict) and draw(st.integers(0, 4)) == 0:
            del parent[key]
        else:
            parent[key] = draw(_json_values)
    return value


def _spec_weights() -> dict[str, torch.Tensor]:
    from relightzoo.zoo import create_model

    torch.manual_seed(0)
    return create_model("siren", encoder="raw", activation="sine", hidden_features=4, hidden_layers=1).state_dict()


_WEIGHTS = None


@st.composite
def _checkpoint_bytes(draw) -> bytes:
    global _WEIGHTS
    if _WEIGHTS is None:
        _WEIGHTS = {k: v.clone() for k, v in _spec_weights().items()}
    form = draw(st.integers(0, 9))
    if form == 0:  # a hand-made header: any JSON, any length field, any body
        header = json.dumps(draw(_json_values) if draw(st.booleans()) else {
            draw(st.sampled_from(["w", "__metadata__"])): draw(_json_values)}).encode()
        n = len(header) + draw(st.sampled_from([0, 0, -1, 1, 2**40]))
        return struct.pack("<Q", max(n, 0)) + header + draw(st.binary(max_size=32))
    if form == 1:
        return draw(st.binary(max_size=64))
    tensors = dict(_WEIGHTS)
    if draw(st.integers(0, 5)) == 0:
        tensors = {k: v.clone() for k, v in tensors.items()}
        next(iter(tensors.values())).view(-1)[0] = draw(st.sampled_from([float("nan"), float("inf"), 1e30]))
    if draw(st.integers(0, 5)) == 0:
        tensors.pop(draw(st.sampled_from(sorted(tensors))))
    config = draw(_mutated(_valid_config()))
    metadata = {"relightzoo": json.dumps(config, allow_nan=True)}
    if draw(st.integers(0, 4)) == 0:
        metadata["relightzoo"] = draw(st.sampled_from(["", "[", "null", "3", '"x"', "[" * 5000, json.dumps([config])]))
    if draw(st.integers(0, 4)) == 0:
        metadata["relightzoo.aliases"] = json.dumps(draw(_json_values))
    if draw(st.integers(0, 4)) == 0:
        metadata["relightzoo.state"] = json.dumps(draw(_mutated({"step": 4, "optimizer": {"__tensor__": "t0"}, "x": {"__items__": [[0, 1]]}, "y": {"__tuple__": [1]}})))
    data = st_save(tensors, metadata=metadata)
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]
    return data


@_FUZZ
@given(data=_checkpoint_bytes())
def test_fuzz_checkpoint(scratch: Path, data: bytes) -> None:
    from relightzoo.train.checkpoint import load_checkpoint, load_state, read_config

    path = scratch / "latest.safetensors"
    path.write_bytes(data)
    config = _loads_or_refuses(read_config, path)
    if config is not None:
        assert isinstance(config, dict) and isinstance(config["format_version"], int)
    loaded = _loads_or_refuses(load_checkpoint, path)
    if loaded is not None:
        model, _ = loaded
        assert all(bool(torch.isfinite(p).all()) for p in model.parameters())
    _loads_or_refuses(load_state, path)


# -- run folders --------------------------------------------------------------------------------


@st.composite
def _run_folder(draw) -> tuple[str, bool]:
    form = draw(st.integers(0, 9))
    if form == 0:
        return draw(st.text(max_size=40)), draw(st.booleans())
    if form == 1:
        return json.dumps(draw(_json_values)), draw(st.booleans())
    config = _valid_config()
    config["training"] = dict(config["training"], checkpoint_every=2, log_every=1, warmup_steps=0, optimizer="adam")
    return json.dumps(draw(_mutated(config)), allow_nan=True), draw(st.booleans())


@_FUZZ
@given(folder=_run_folder())
def test_fuzz_run_folder_resume(scratch: Path, folder) -> None:
    from relightzoo.cli import main

    text, with_checkpoint = folder
    run = scratch / "run"
    run.mkdir(exist_ok=True)
    (run / "config.json").write_text(text, encoding="utf-8")
    latest = run / "latest.safetensors"
    if with_checkpoint and not latest.exists():
        latest.write_bytes(st_save(_spec_weights(), metadata={"relightzoo": json.dumps(_valid_config())}))
    elif not with_checkpoint:
        latest.unlink(missing_ok=True)
    result = CliRunner().invoke(main, ["train", "--resume", str(run), "--no-eval", "--json"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{type(result.exception).__name__}: {result.exception}") from result.exception
    assert result.exit_code in (1, 2), result.output  # the dataset "/nowhere" never loads
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
