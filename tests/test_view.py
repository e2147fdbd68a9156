"""``relightzoo view`` without a browser: the basis the page evaluates, the server's API,
port selection, Ctrl-C, and errors. (tests/test_view_browser.py drives the page itself.)"""

from __future__ import annotations

import io
import json
import math
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from relightzoo.cli import main
from relightzoo.relight import quantize
from relightzoo.web.basis import pack_planes, web_basis
from relightzoo.web.server import ViewerServer, rotate_z
from relightzoo.web.sources import build_state
from relightzoo.zoo.capabilities import render_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def test_pack_planes_lays_four_numbers_a_texel():
    planes = np.arange(5 * 3 * 2 * 4, dtype=np.float32).reshape(5, 3, 2, 4)
    layers, n = pack_planes(planes)
    assert n == 4 and layers.shape == (4, 2, 4, 4)  # 15 numbers a pixel -> 4 RGBA texels, one padded
    flat = layers.transpose(1, 2, 0, 3).reshape(2, 4, 16)
    np.testing.assert_array_equal(flat[..., :15], planes.transpose(2, 3, 0, 1).reshape(2, 4, 15))
    assert (flat[..., 15] == 0).all()


def test_low_rank_basis_planes_times_factors_is_the_models_render(view_runs):
    state = build_state(str(view_runs["low-rank"]))
    slot = state.slots[0]
    assert slot.path == "webgl" and (slot.height, slot.width) == (12, 20)
    basis = slot.basis
    assert basis.kind == "low-rank" and basis.in_page
    assert [s["type"] for s in basis.segments] == ["sh", "mlp"] and basis.segments[0]["degree"] == 2
    assert basis.terms == 3 + 9
    lights = torch.tensor([[0.3, -0.4, 0.866], [0.0, 0.0, 1.0], [-0.7, 0.1, 0.7]])
    ref = render_model(slot.model, lights, 12, 20)
    torch.testing.assert_close(basis.render(lights), ref, atol=2e-6, rtol=0)


def _classical(name: str, data, **kwargs):
    from relightzoo.data import load_dataset
    from relightzoo.web.sources import model_slot
    from relightzoo.zoo import create_model

    ds = load_dataset(data)
    model = create_model(name, **kwargs)
    model.attach_training_data(ds.images(), ds.lights)
    return model_slot(model.eval(), name, None, name)


@pytest.mark.parametrize("name, kwargs, segments, terms", [
    ("ptm", {}, ["ptm"], 6),
    ("hsh", {"order": 3}, ["hsh"], 16),
    ("rbf", {}, ["constant", "rbf"], 41),
    ("rbf", {"planes": 6}, ["constant", "rbf"], 7),
])
def test_classical_models_are_in_page_bases(view_runs, name, kwargs, segments, terms):
    slot = _classical(name, view_runs["data"], **kwargs)
    assert slot.path == "webgl" and slot.basis.in_page
    assert [s["type"] for s in slot.basis.segments] == segments and slot.basis.terms == terms
    lights = torch.tensor([[0.3, -0.4, 0.866], [0.0, 0.0, 1.0], [-0.7, 0.1, 0.7]])
    torch.testing.assert_close(slot.basis.render(lights), render_model(slot.model, lights, 12, 20), atol=2e-6, rtol=0)


def test_data_is_shown_through_hsh_by_default(view_runs):
    state = build_state(str(view_runs["data"]))
    assert state.slots[0].label == "hsh (fitted to all 40 captures)" and state.slots[0].path == "webgl"


def test_siren_and_blend_are_server_slots(view_runs):
    state = build_state(str(view_runs["siren"]), compare="blend")
    assert [s.path for s in state.slots] == ["server", "server"]
    assert state.slots[0].label == "siren(direction, sine)"
    assert state.slots[1].label == "blend (5 captures)"  # the checkpoint's xu5 training lights
    assert web_basis(state.slots[0].model) is None
    assert state.captured_images.shape == (40, 12, 20, 3)  # the dataset the checkpoint names


def test_api_serves_page_info_planes_renders_captures_and_psnr(view_runs):
    state = build_state(str(view_runs["low-rank"]), compare=str(view_runs["siren"]))
    with ViewerServer(state, 0) as server:
        page = _get(server.url).decode()
        assert '<script src="/static/viewer.js"></script>' in page and "cdn" not in page.lower()
        for name in ("viewer.js", "viewer.css"):
            assert len(_get(server.url + "static/" + name)) > 1000
        info = json.loads(_get(server.url + "api/info"))
        assert [s["path"] for s in info["slots"]] == ["webgl", "server"]
        assert info["slots"][0]["basis"]["layers"] == math.ceil(12 * 3 / 4)
        assert info["captured"]["count"] == 40 and len(info["captured"]["lights"]) == 40
        assert [e["name"] for e in info["envmaps"]] == ["white sky", "overcast", "sunset", "studio"]

        raw = np.frombuffer(_get(server.url + "api/planes/0"), dtype="<f4").reshape(9, 12, 20, 4)
        np.testing.assert_array_equal(raw, pack_planes(state.slots[0].basis.planes)[0])

        light = torch.tensor([0.2, 0.5, math.sqrt(1 - 0.29)])
        for slot, scale in ((1, 1), (1, 4)):
            png = _get(server.url + f"api/render/{slot}?light={','.join(map(str, light.tolist()))}&scale={scale}")
            got = np.asarray(Image.open(io.BytesIO(png)))
            h, w = 12 // scale, 20 // scale
            ref = quantize(render_model(state.slots[slot].model, light[None], h, w)[0], 8)
            assert got.shape == (h, w, 3)
            assert np.abs(got.astype(int) - ref).max() <= 1

        factors = json.loads(_get(server.url + "api/factors/0?dirs=0,0,1;0.6,0,0.8"))
        ref = state.slots[0].basis.factors(torch.tensor([[0.0, 0, 1], [0.6, 0, 0.8]]))
        np.testing.assert_allclose(factors, ref.numpy(), atol=1e-6)

        captured = np.asarray(Image.open(io.BytesIO(_get(server.url + "api/captured/7"))))
        np.testing.assert_array_equal(captured, np.round(state.captured_images[7].numpy() * 255))
        cmp = json.loads(_get(server.url + "api/compare/0?index=7"))
        pred = render_model(state.slots[0].model, state.captured_lights[7:8], 12, 20)[0]
        mse = float(((pred - state.captured_images[7]) ** 2).mean())
        assert cmp["psnr"] == pytest.approx(10 * math.log10(1 / mse), abs=1e-3)

        with pytest.raises(urllib.error.HTTPError) as err:
            _get(server.url + "api/render/0?light=0,0,0")
        assert err.value.code == 400 and "must not be zero" in json.loads(err.value.read())["error"]


def test_envmap_render_on_the_server_is_the_weighted_sum_of_renders(view_runs):
    state = build_state(str(view_runs["siren"]))
    env = state.envmaps[2]  # sunset
    assert env.name == "sunset" and len(env.dirs) == len(env.weights) > 10
    img = state.render(state.slots[0], {"env": "2", "rotation": "90", "exposure": "0.5"})
    dirs = torch.as_tensor(rotate_z(env.dirs, math.pi / 2), dtype=torch.float32)
    renders = render_model(state.slots[0].model, dirs, 12, 20)
    ref = (torch.einsum("lhwc,lc->hwc", renders, torch.as_tensor(env.weights, dtype=torch.float32)) * 0.5 / math.pi)
    assert np.abs(img.astype(int) - quantize(ref.clamp(0, 1), 8)).max() <= 1
    np.testing.assert_allclose(rotate_z(np.array([[1.0, 0, 0]]), math.pi / 2), [[0, 1, 0]], atol=1e-12)


def test_data_source_fits_a_closed_form_model_and_refuses_one_that_trains(view_runs):
    state = build_state(str(view_runs["data"]), model_name="blend")
    assert state.slots[0].label == "blend (fitted to all 40 captures)" and state.slots[0].path == "server"
    res = CliRunner().invoke(main, ["view", str(view_runs["data"]), "--model", "siren"])
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"Error: model 'siren' needs training before it can be viewed: relightzoo train {view_runs['data']} --model siren, "
        "then view the checkpoint"
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_takes_the_next_port_and_stops_cleanly_on_ctrl_c(view_runs):
    port = _free_port()
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", port))
    blocker.listen()
    code = "from relightzoo.cli import main; main()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "view", str(view_runs["low-rank"]), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("serving "):
                break
        served = int(lines[-1].split(":")[2].split("/")[0])
        assert lines[0] == f"port {port} is in use; serving on {served} instead" and served > port
        assert any(l.startswith("low-rank: 20 x 12, relit in the page (WebGL)") for l in lines)
        assert lines[-1] == f"serving http://127.0.0.1:{served}/ (Ctrl-C to stop)"
        assert b"viewer.js" in _get(f"http://127.0.0.1:{served}/")
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0]
    finally:
        blocker.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    assert rest.strip().splitlines()[-1] == "stopped" and "Traceback" not in rest
    with socket.socket() as s:  # nothing listens on the port any more (SO_REUSEADDR: past TIME_WAIT, not a listener)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", served))
        s.listen()
