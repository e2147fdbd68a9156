"""The evaluation protocol: scores per light and per group, the blend baseline, the contact
sheet, and ``relightzoo eval`` end to end on a tiny dataset and a briefly trained siren."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import make_olat_folder
from PIL import Image

from relightzoo.cli import main
from relightzoo.data import load_dataset
from relightzoo.data.synthetic import lambertian_scene
from relightzoo.errors import DataError
from relightzoo.evaluate import evaluate, evaluation_sheet, resolve_split, score_model
from relightzoo.lights import select_lights
from relightzoo.sheets import ERROR_VMAX, error_heatmap, spread_indices
from relightzoo.zoo.api import RelightModel


class OracleModel(RelightModel):
    """Renders the analytic scene the test datasets are made of: exact up to 8-bit rounding."""

    trainable = False

    def render(self, lights, height, width, *, chunk=0):
        return torch.from_numpy(lambertian_scene(lights, height, width, seed=0))


class GreyModel(RelightModel):
    """A mid-grey image under every light."""

    trainable = False

    def render(self, lights, height, width, *, chunk=0):
        return torch.full((len(lights), height, width, 3), 0.5)


class SlowGreyModel(GreyModel):
    """Mid-grey that takes :attr:`MS_PER_LIGHT` milliseconds a light to render."""

    MS_PER_LIGHT = 2.0

    def render(self, lights, height, width, *, chunk=0):
        time.sleep(self.MS_PER_LIGHT / 1000.0 * len(lights))
        return super().render(lights, height, width, chunk=chunk)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = make_olat_folder(tmp_path_factory.mktemp("eval") / "tiny", n_lights=40, height=16, width=16)
    return load_dataset(folder)


def test_scores_per_light_match_a_direct_computation(tiny):
    split = select_lights("xu5:0.77", tiny.lights)
    res = score_model(GreyModel(), tiny, split, progress=False, batch_size=7)
    assert [e["index"] for e in res["per_light"]] == [int(i) for i in split.test]
    images = tiny.images().numpy().astype(np.float64)
    for entry in res["per_light"]:
        img = images[entry["index"]]
        assert entry["name"] == tiny.names[entry["index"]]
        assert entry["psnr"] == pytest.approx(10 * math.log10(1 / np.mean((img - 0.5) ** 2)), abs=1e-3)
        assert entry["in_cap"] == (entry["index"] in set(int(i) for i in split.in_cap))
        assert entry["polar_deg"] <= 90.0
    ps = np.array([e["psnr"] for e in res["per_light"]])
    in_cap = np.array([e["in_cap"] for e in res["per_light"]])
    assert res["all"]["count"] == len(split.test) == 35
    assert res["all"]["psnr"] == pytest.approx(ps.mean())
    assert res["all"]["psnr_std"] == pytest.approx(ps.std())
    assert res["in_cap"]["count"] == len(split.in_cap) == int(in_cap.sum())
    assert 0 < res["in_cap"]["count"] < res["all"]["count"]  # xu5:0.77 leaves lights on both sides of the cap
    assert res["in_cap"]["psnr"] == pytest.approx(ps[in_cap].mean())

    t0 = time.perf_counter()
    slow = score_model(SlowGreyModel(), tiny, split, progress=False, batch_size=7)
    wall_ms = 1000.0 * (time.perf_counter() - t0)
    # rendering takes 2 ms a light, and the timing cannot exceed the whole call
    assert SlowGreyModel.MS_PER_LIGHT <= slow["render_ms"] <= wall_ms / len(split.test)


def test_an_exact_model_scores_near_the_quantisation_limit(tiny):
    split = select_lights("uniform:6", tiny.lights)
    res = evaluate(OracleModel(), tiny, split, baseline=False, progress=False)
    model = res["results"]["model"]
    # 8-bit rounding alone leaves an MSE of about (1/255)^2 / 12, i.e. about 59 dB
    assert 55.0 < model["all"]["psnr"] < 62.0
    assert model["all"]["ssim"] > 0.999
    assert "blend" not in res["results"]


def test_evaluate_reports_dataset_split_and_blend_beside_the_model(tiny):
    split = select_lights("uniform:12", tiny.lights)
    res = evaluate(GreyModel(), tiny, split, progress=False)
    assert res["dataset"] == {"source": tiny.source, "height": 16, "width": 16, "lights": 40}
    assert res["split"]["rule"] == "uniform:12"
    assert res["split"]["n_train"] == 12 and res["split"]["n_test"] == 28
    assert res["split"]["cap_deg"] == pytest.approx(math.degrees(split.cap))
    blend, grey = res["results"]["blend"], res["results"]["model"]
    assert [e["index"] for e in blend["per_light"]] == [e["index"] for e in grey["per_light"]]
    # blending 12 well spread captured images beats a flat grey guess by a wide margin
    assert blend["all"]["psnr"] > grey["all"]["psnr"] + 5.0
    assert blend["all"]["ssim"] > grey["all"]["ssim"]
    json.dumps(res, allow_nan=False)  # results.json must be strict JSON


def test_a_split_with_no_light_inside_the_cap_reports_an_empty_group(tiny):
    split = select_lights("xu5:0.0", tiny.lights)  # every training light at the pole
    res = evaluate(GreyModel(), tiny, split, baseline=False, progress=False)
    assert res["results"]["model"]["in_cap"] == {"count": 0, "psnr": None, "psnr_std": None, "ssim": None, "ssim_std": None}


def test_resolve_split_uses_the_recorded_split_or_a_rule(tiny):
    split = select_lights("xu5:0.77", tiny.lights)
    config = {"dataset": {"source": tiny.source, "height": 16, "width": 16, "lights": 40, "split": split.to_json()}}
    got = resolve_split(config, tiny)
    assert got.rule == "xu5:0.77"
    np.testing.assert_array_equal(got.test, split.test)
    assert resolve_split(config, tiny, "random:10").rule == "random:10"


def test_resolve_split_refuses_a_dataset_that_does_not_match_the_checkpoint(tiny):
    split = select_lights("xu5:0.77", tiny.lights)
    base = {"source": "x", "height": 16, "width": 16, "lights": 40, "split": split.to_json()}
    with pytest.raises(DataError, match=r"is 16x16 but the checkpoint was trained on 32x16 images; .*--lights RULE"):
        resolve_split({"dataset": {**base, "width": 32}}, tiny)
    with pytest.raises(DataError, match=r"has 40 lights but the checkpoint was trained on a dataset with 64; "):
        resolve_split({"dataset": {**base, "lights": 64}}, tiny)
    moved = tiny.lights.numpy()[::-1].tolist()
    with pytest.raises(DataError, match="other light directions than the checkpoint's training data"):
        resolve_split({"dataset": {**base, "lights": moved}}, tiny)
    with pytest.raises(DataError, match="records no train/test split; choose one with --lights RULE"):
        resolve_split({"dataset": {"source": "x"}}, tiny)


def test_spread_indices_cover_the_dome_without_repeats(tiny):
    dirs = tiny.lights.numpy()
    pick = spread_indices(dirs, 5)
    assert len(set(pick.tolist())) == 5
    assert pick[0] == int(np.argmax(dirs[:, 2]))  # starts at the pole
    assert np.all(np.diff(dirs[pick, 2]) <= 0)  # then down the dome
    assert len(spread_indices(dirs, 100)) == 40


def test_error_heatmap_scale():
    target = np.zeros((2, 3, 3), dtype=np.float32)
    pred = target.copy()
    pred[0, 0] = ERROR_VMAX  # at the top of the scale
    pred[1, 0] = 1.0  # beyond it: clipped to the same colour
    heat = error_heatmap(pred, target)
    assert heat.dtype == np.uint8 and heat.shape == (2, 3, 3)
    assert heat[0, 1].sum() < 10  # no error: (near) black
    assert tuple(heat[0, 0]) == tuple(heat[1, 0]) and heat[0, 0].sum() > 600  # bright yellow


def test_evaluation_sheet_has_a_row_per_light_and_upscales_with_nearest(tiny):
    split = select_lights("uniform:12", tiny.lights)
    sheet = evaluation_sheet(OracleModel(), tiny, split, n_lights=3)
    small = evaluation_sheet(OracleModel(), tiny, split, n_lights=1, baseline=False)
    assert sheet.mode == small.mode == "RGB"
    # 4 columns against 3, of 256-pixel tiles (16 x 16 images upscaled 16 times), 6 pixels apart
    assert sheet.width - small.width == 256 + 6
    assert sheet.height > small.height + 2 * 256
    # the one row shows the test light nearest the pole, its ground truth upscaled by
    # repeating each pixel 16 x 16 times (nearest), in the first column
    test = np.asarray(split.test)
    light = int(test[np.argmax(tiny.lights.numpy()[test, 2])])
    gt = np.round(tiny.images([light])[0].numpy() * 255).astype(np.uint8)
    tile = np.kron(gt, np.ones((16, 16, 1), dtype=np.uint8))
    arr = np.asarray(small)
    found = [y for y in range(arr.shape[0] - 255) if np.array_equal(arr[y : y + 256, 6 : 6 + 256], tile)]
    assert len(found) == 1


# -- relightzoo eval ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A siren trained for a few steps on a 12 x 12, 24-light dataset: (checkpoint, data folder)."""
    from relightzoo.train import train
    from relightzoo.zoo import create_model

    root = tmp_path_factory.mktemp("evalrun")
    folder = make_olat_folder(root / "data", n_lights=24, height=12, width=12)
    net = create_model("siren", hidden_layers=1, hidden_features=16)
    result = train(load_dataset(folder), "xu5:0.77", net, steps=3, batch_size=256, device="cpu", out_dir=root / "run", progress=False)
    return result.latest, folder


def test_eval_cli_writes_results_and_sheet_beside_the_checkpoint(run):
    ckpt, folder = run
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "siren" in res.output and "blend (baseline)" in res.output and "PSNR all" in res.output
    out = ckpt.parent / "eval"
    doc = json.loads((out / "results.json").read_text())
    assert doc["checkpoint"] == str(ckpt) and doc["step"] == 3
    assert doc["model"]["model"]["name"] == "siren" and doc["method_name"] == "siren(scaled-spherical, sine)"
    assert doc["dataset"]["source"] == str(folder.resolve()) and doc["dataset"]["lights"] == 24
    assert doc["split"]["rule"] == "xu5:0.77" and doc["split"]["n_test"] == 19
    # five training lights: blend and rbf are scored beside the model, ptm and hsh need more lights
    assert list(doc["results"]) == ["model", "blend", "rbf"]
    assert doc["skipped"] == {
        "ptm": "model 'ptm' needs at least 6 training lights, got 5",
        "hsh": "model 'hsh' of order 2 needs at least 9 training lights, got 5",
    }
    for method in ("model", "blend", "rbf"):
        res_m = doc["results"][method]
        assert set(res_m) == {"all", "in_cap", "per_light", "render_ms"} | ({"fit_s"} if method != "model" else set())
        assert set(res_m["all"]) == {"count", "psnr", "psnr_std", "ssim", "ssim_std"}
        assert len(res_m["per_light"]) == 19
    best = max(("blend", "rbf"), key=lambda m: doc["results"][m]["all"]["psnr"])
    assert doc["best_baseline"] == best
    # the table shows the numbers of the file, and why a fit is missing
    assert f"{doc['results']['blend']['all']['psnr']:.2f}" in res.output
    assert f"{doc['results']['rbf']['all']['psnr']:.2f}" in res.output
    assert "ptm skipped: model 'ptm' needs at least 6 training lights, got 5" in res.output
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.mode == "RGB" and sheet.width == 6 + 4 * (252 + 6)  # 12 px upscaled 21 times


def test_eval_cli_json_and_another_split(run, tmp_path):
    ckpt, _ = run
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--lights", "uniform:8", "--out", str(tmp_path / "e"), "--json", "--sheet-lights", "0", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # nothing but JSON on stdout
    assert doc["split"]["rule"] == "uniform:8" and doc["split"]["n_test"] == 16
    assert json.loads((tmp_path / "e" / "results.json").read_text()) == doc
    assert not (tmp_path / "e" / "contact_sheet.png").exists()


def test_eval_cli_refuses_a_dataset_that_does_not_match_the_checkpoint(run, tmp_path):
    ckpt, _ = run
    other_size = make_olat_folder(tmp_path / "small", n_lights=24, height=8, width=8)
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--data", str(other_size), "--out", str(tmp_path / "e")])
    assert res.exit_code == 1
    assert res.output.strip() == (
        f"Error: dataset {other_size} is 8x8 but the checkpoint was trained on 12x12 images; "
        "its recorded split does not apply (choose one with --lights RULE)"
    )
    other_count = make_olat_folder(tmp_path / "more", n_lights=30, height=12, width=12)
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--data", str(other_count), "--out", str(tmp_path / "e")])
    assert res.exit_code == 1
    assert "has 30 lights but the checkpoint was trained on a dataset with 24; " in res.output
    assert len(res.output.strip().splitlines()) == 1
    # with a split of its own, another dataset of the scene evaluates (the model renders any size)
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--data", str(other_size), "--lights", "uniform:5", "--out", str(tmp_path / "e2"), "--device", "cpu"])
    assert res.exit_code == 0, res.output


def test_eval_cli_errors_are_one_line(run, tmp_path):
    ckpt, _ = run
    res = CliRunner().invoke(main, ["eval", str(tmp_path / "missing.safetensors")])
    assert res.exit_code == 1 and res.output.strip() == f"Error: checkpoint {tmp_path / 'missing.safetensors'} not found"
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--out", str(blocker / "eval"), "--device", "cpu"])
    assert res.exit_code == 1 and res.output.startswith(f"Error: cannot write to {blocker / 'eval'}: ")
    res = CliRunner().invoke(main, ["eval", str(ckpt), "--lights", "xu5:3", "--out", str(tmp_path / "e")])
    assert res.exit_code == 1 and "polar angle 3.0 is outside [0, pi/2]" in res.output
