"""``relightzoo export --format relight``: the Relight/OpenLIME web layout, read back and
evaluated in numpy against the model's own renders; info.json against the documented fields;
one-line refusals for models the format cannot express."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.export.relight import RELIGHT_FIELDS, evaluate_relight, read_relight, relight_basis, relight_planes
from relightzoo.relight import load_model
from relightzoo.zoo.capabilities import render_model

pytestmark = pytest.mark.usefixtures("one_thread")

LIGHTS = torch.tensor([[0.0, 0.0, 1.0], [0.5, -0.3, 0.81], [-0.6, 0.55, 0.58], [0.9, 0.1, 0.42]])
LIGHTS = LIGHTS / LIGHTS.norm(dim=1, keepdim=True)


def _run(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("export") / "data", n_lights=30, height=10, width=14)


def _fit(data: Path, out: Path, *args: str) -> Path:
    res = _run("train", data, "--out", out, "--no-eval", "--lights", "uniform:20", *args)
    assert res.exit_code == 0, res.output
    return out / "latest.safetensors"


@pytest.mark.parametrize("model, args, kind", [("ptm", [], "ptm"), ("hsh", ["--model-arg", "order=2"], "hsh"),
                                               ("hsh", ["--model-arg", "order=1"], "hsh")])
def test_planes_read_back_render_the_model_within_quantisation(data, tmp_path, model, args, kind):
    ckpt = _fit(data, tmp_path / "run", "--model", model, *args)
    res = _run("export", ckpt, tmp_path / "web", "--format", "relight", "--image-format", "png")
    assert res.exit_code == 0, res.output
    assert f"Relight type {kind}, 27 planes" in res.output if kind == "hsh" else "Relight type ptm, 18 planes" in res.output
    info, planes = read_relight(tmp_path / "web")
    fitted, _ = load_model(ckpt)

    # the change of basis is exact: unquantised planes in Relight's basis give the model's unclamped images
    kind_, exact = relight_planes(fitted, model)
    terms = exact.shape[0]
    ref_linear = fitted.render_linear(LIGHTS, 10, 14).double().numpy()
    got_exact = np.einsum("nt,tchw->nhwc", relight_basis(kind_, LIGHTS.numpy()), exact)
    np.testing.assert_allclose(got_exact, ref_linear, atol=1e-5)

    # read back from the 8-bit planes: within half a quantisation step of each plane, times its basis value
    got = evaluate_relight(info, planes, LIGHTS.numpy())
    step = np.asarray(info["materials"][0]["scale"]).reshape(terms, 3) / 255.0  # [T, 3]
    bound = 0.5 * np.abs(relight_basis(kind, LIGHTS.numpy())) @ step + 1e-6  # [N, 3]
    err = np.abs(got - ref_linear)
    assert (err <= bound[:, None, None, :]).all(), float((err - bound[:, None, None, :]).max())
    # and as 8-bit images beside the model's own render
    ref = render_model(fitted, LIGHTS, 10, 14).numpy()
    assert np.abs(np.round(np.clip(got, 0, 1) * 255) - np.round(ref * 255)).mean() < 1.0


def test_info_json_has_the_documented_fields_and_consistent_planes(data, tmp_path):
    ckpt = _fit(data, tmp_path / "run", "--model", "hsh", "--model-arg", "order=2")
    assert _run("export", ckpt, tmp_path / "web").exit_code == 0  # defaults: relight, JPEG planes
    info = json.loads((tmp_path / "web" / "info.json").read_text())
    assert set(info) <= RELIGHT_FIELDS, set(info) - RELIGHT_FIELDS
    assert {"width", "height", "format", "type", "nplanes", "colorspace", "materials", "lights"} <= set(info)
    assert (info["width"], info["height"], info["format"], info["type"], info["colorspace"], info["nplanes"]) == (
        14, 10, "jpg", "hsh", "rgb", 27)
    files = sorted(p.name for p in (tmp_path / "web").iterdir())
    assert files == ["info.json"] + sorted(f"plane_{i}.jpg" for i in range(9))
    for i in range(9):
        with Image.open(tmp_path / "web" / f"plane_{i}.jpg") as im:
            assert im.size == (14, 10) and im.mode == "RGB" and im.format == "JPEG"
    material = info["materials"][0]
    for key in ("scale", "bias", "range"):
        assert len(material[key]) == 27 and material[key] == info[key]
        assert all(isinstance(v, float) and np.isfinite(v) for v in material[key])
    assert all(s > 0 for s in material["scale"])
    lights = np.asarray(info["lights"]).reshape(-1, 3)
    assert lights.shape == (20, 3)  # the training lights of the uniform:20 split
    np.testing.assert_allclose(np.linalg.norm(lights, axis=1), 1.0, atol=1e-6)
    # JPEG planes: close to the model's render, not exact
    fitted, _ = load_model(ckpt)
    info_, planes = read_relight(tmp_path / "web")
    got = np.clip(evaluate_relight(info_, planes, LIGHTS.numpy()), 0, 1)
    mse = float(((got - render_model(fitted, LIGHTS, 10, 14).numpy()) ** 2).mean())
    assert 10 * np.log10(1 / mse) > 35.0


@pytest.mark.parametrize("args, message", [
    (["--model", "hsh", "--model-arg", "order=3"],
     "model 'hsh' has order 3 (16 terms); Relight's hsh type documents 9 terms (order 2): fit hsh with "
     "--model-arg order=2 to export it"),
    (["--model", "rbf"],
     "model 'rbf' cannot be exported to the Relight web format: its light response is a Gaussian kernel over its "
     "own training lights, which Relight's rbf type evaluates with its own sampled 8-bit basis and kernel, not "
     "exactly this model; ptm and hsh (order <= 2) can"),
    (["--model", "low-rank", "--model-arg", "rank=2", "--steps", "2"],
     "model 'low-rank' cannot be exported to the Relight web format: its light response V(w) is a neural network, "
     "which no Relight type evaluates; ptm and hsh (order <= 2) can"),
    (["--model", "siren", "--model-arg", "hidden_features=8", "--model-arg", "hidden_layers=1", "--steps", "2"],
     "model 'siren' cannot be exported to the Relight web format: it is not a per-pixel light basis (a coordinate "
     "network or an image-based model); ptm and hsh (order <= 2) can"),
])
def test_models_the_format_cannot_express_get_one_line(data, tmp_path, args, message):
    ckpt = _fit(data, tmp_path / "run", *args)
    res = _run("export", ckpt, tmp_path / "web")
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: {message}"
    assert not (tmp_path / "web").exists()


def test_hsh_basis_matches_the_models_own_hemispherical_harmonics():
    from relightzoo.builtins.rti import hsh_basis

    dirs = np.random.default_rng(1).normal(size=(50, 3))
    dirs[:, 2] = np.abs(dirs[:, 2])
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    theirs = relight_basis("hsh", dirs)
    ours = hsh_basis(torch.as_tensor(dirs), 2).numpy()
    # the same nine functions up to an orthogonal change of basis: both orthonormal on the hemisphere
    a, *_ = np.linalg.lstsq(theirs, ours, rcond=None)
    np.testing.assert_allclose(theirs @ a, ours, atol=1e-10)
    np.testing.assert_allclose(a @ a.T, np.eye(9), atol=1e-8)
