"""``relightzoo ablate``: a 2 x 2 grid on a tiny dataset, its outputs, resume, --jobs, errors."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from conftest import make_olat_folder
from relightzoo.ablate import build_grid, worker_threads
from relightzoo.cli import main
from relightzoo.plots import PALETTE, Series, line_plot, log_ticks, nice_ticks

SMALL = [
    "--model-arg", "hidden_features=16", "--model-arg", "hidden_layers=2",
    "--steps", "20", "--batch-size", "128", "--lr", "1e-3",
]
GRID = ["--encoders", "raw,direction", "--activations", "sine,relu", *SMALL]
CELLS = [
    "siren_raw_sine_xu5-0.77_s0",
    "siren_raw_relu_xu5-0.77_s0",
    "siren_direction_sine_xu5-0.77_s0",
    "siren_direction_relu_xu5-0.77_s0",
]
BLEND = "blend_xu5-0.77"
BASELINE_ROWS = [BLEND, "ptm_xu5-0.77", "hsh_xu5-0.77", "rbf_xu5-0.77"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=16, height=12, width=12)


def _ablate(*args: str):
    return CliRunner().invoke(main, ["ablate", *map(str, args)], catch_exceptions=False)


def _flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ablate") / "grid"
    res = _ablate(data, *GRID, "--out", out)
    assert res.exit_code == 0, res.output
    return out, res.output


def test_grid_writes_every_cell_and_the_blend_row(run: tuple[Path, str]) -> None:
    out, output = run
    doc = json.loads((out / "results.json").read_text())
    assert [c["name"] for c in doc["cells"]] == CELLS
    assert [b["name"] for b in doc["blend"]] == [BLEND] and doc["missing"] == []
    # the classical fits beside blend: five training lights are too few for ptm (6) and hsh (9)
    bases = {b["name"]: b for b in doc["baselines"]}
    assert list(bases) == BASELINE_ROWS
    assert bases["ptm_xu5-0.77"]["status"] == "skipped"
    assert bases["ptm_xu5-0.77"]["error"] == "model 'ptm' needs at least 6 training lights, got 5"
    assert bases["hsh_xu5-0.77"]["error"] == "model 'hsh' of order 2 needs at least 9 training lights, got 5"
    rbf = bases["rbf_xu5-0.77"]
    assert rbf["status"] == "done" and rbf["eval"]["all"]["count"] == 11 and rbf["train_s"] > 0
    assert rbf["delta_vs_blend"]["all"] == pytest.approx(rbf["eval"]["all"]["psnr"] - doc["blend"][0]["eval"]["all"]["psnr"])
    top = max((doc["blend"][0], rbf), key=lambda b: b["eval"]["all"]["psnr"])
    assert doc["grid"]["encoders"] == ["raw", "direction"] and doc["grid"]["training"]["steps"] == 20
    blend = doc["blend"][0]
    assert blend["model"] == "blend" and blend["params"] == 0 and blend["status"] == "done"
    for cell in doc["cells"]:
        assert cell["status"] == "done" and cell["steps"] == 20
        assert cell["spec"]["model"]["args"] == {"hidden_layers": 2, "hidden_features": 16}
        ev = cell["eval"]
        assert ev["all"]["count"] == 11  # 16 lights - 5 xu5 training lights
        assert 0 < ev["in_cap"]["count"] < 11
        assert np.isfinite([ev["all"]["psnr"], ev["in_cap"]["psnr"], ev["all"]["ssim"], cell["train_psnr"]]).all()
        assert cell["delta_vs_blend"]["all"] == pytest.approx(ev["all"]["psnr"] - blend["eval"]["all"]["psnr"])
        assert cell["delta_vs_blend"]["in_cap"] == pytest.approx(ev["in_cap"]["psnr"] - blend["eval"]["in_cap"]["psnr"])
        assert cell["best_baseline"] == top["model"]
        assert cell["delta_vs_best_baseline"]["all"] == pytest.approx(ev["all"]["psnr"] - top["eval"]["all"]["psnr"])
        assert cell["params"] > 0 and cell["train_s"] > 0 and cell["eval_s"] > 0
        assert (out / cell["checkpoint"]).is_file()
        assert len((out / cell["metrics"]).read_text().splitlines()) == 20  # logged every step of 20
    # raw (x, y, phi, theta) and direction (x, y, unit vector) differ by one input
    by_name = {c["name"]: c for c in doc["cells"]}
    assert by_name[CELLS[2]]["params"] - by_name[CELLS[0]]["params"] == 16
    assert "done siren_direction_relu_xu5-0.77_s0: PSNR" in _flat(output)


def test_csv_and_markdown_hold_one_row_per_cell(run: tuple[Path, str]) -> None:
    out, _ = run
    doc = json.loads((out / "results.json").read_text())
    with (out / "results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows] == [*BASELINE_ROWS, *CELLS]
    assert [r["kind"] for r in rows] == ["blend", "baseline", "baseline", "baseline"] + ["cell"] * 4
    assert rows[1]["status"] == "skipped" and rows[1]["error"].startswith("model 'ptm' needs at least 6")
    for row, cell in zip(rows[4:], doc["cells"]):
        assert float(row["psnr_all"]) == pytest.approx(cell["eval"]["all"]["psnr"])
        assert float(row["delta_psnr_in_cap"]) == pytest.approx(cell["delta_vs_blend"]["in_cap"])
        assert float(row["delta_psnr_best_baseline_all"]) == pytest.approx(cell["delta_vs_best_baseline"]["all"])
        assert row["best_baseline"] == cell["best_baseline"]
    md = (out / "results.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| model | encoder | activation | PSNR all | PSNR in-cap |")
    assert "| Δ best classical all |" in table[0]
    assert len(table) == 1 + 8
    assert table[1].startswith("| blend (baseline) | – | – |")
    assert table[2].startswith("| ptm (baseline) | – | – | skipped: model 'ptm' needs at least 6 training lights, got 5 |")
    assert table[4].startswith("| rbf (baseline) | – | – |")
    cell = doc["cells"][3]
    assert "| siren | direction | relu | " in table[8]
    assert f"{cell['delta_vs_blend']['all']:+.2f}" in table[8]
    assert f"{cell['delta_vs_best_baseline']['all']:+.2f} ({cell['best_baseline']})" in table[8]
    assert f"{cell['params']:,}" in table[8]
    best = max([doc["blend"][0], doc["baselines"][3]] + doc["cells"], key=lambda c: c["eval"]["all"]["psnr"])
    assert md.count("**") == 2 and f"**{best['eval']['all']['psnr']:.2f}**" in md


def test_contact_sheet_and_loss_curves_are_pngs(run: tuple[Path, str]) -> None:
    out, _ = run
    with Image.open(out / "contact_sheet.png") as sheet:
        assert sheet.format == "PNG"
        sheet.load()
    # 7 columns (truth, blend, rbf, 4 cells; ptm and hsh were skipped) of 12 px images upscaled 10x, 4 rows of lights
    assert 7 * 120 < sheet.width < 7 * 140
    assert 4 * 120 < sheet.height < 4 * 120 + 400
    with Image.open(out / "loss_curves.png") as plot:
        assert plot.format == "PNG" and plot.size[0] >= 960 and plot.size[1] >= 540
        pixels = {tuple(p) for p in np.asarray(plot.convert("RGB")).reshape(-1, 3)}
    for colour in PALETTE[:4]:  # one line per trained cell (and a legend swatch)
        assert colour in pixels
    assert PALETTE[4] not in pixels


def test_resume_skips_finished_cells(run: tuple[Path, str], tmp_path: Path) -> None:
    out = tmp_path / "grid"
    shutil.copytree(run[0], out)
    stamp = {c: (out / "cells" / c / "latest.safetensors").stat().st_mtime_ns for c in CELLS}
    results_before = (out / "cells" / CELLS[0] / "result.json").stat().st_mtime_ns
    shutil.rmtree(out / "cells" / CELLS[3])  # never started
    (out / "cells" / CELLS[2] / "result.json").unlink()  # trained, stopped before its result
    res = _ablate(_data_of(run[0]), *GRID, "--out", out)
    assert res.exit_code == 0, res.output
    text = _flat(res.output)
    assert text.startswith("resuming ablation on")
    for name in (BLEND, *CELLS[:2]):
        assert f"kept {name}:" in text
    for name in CELLS[2:]:
        assert f"done {name}:" in text
    for name in CELLS[:3]:  # the finished ones and the one that had reached its last step
        assert (out / "cells" / name / "latest.safetensors").stat().st_mtime_ns == stamp[name]
    assert (out / "cells" / CELLS[0] / "result.json").stat().st_mtime_ns == results_before
    assert (out / "cells" / CELLS[3] / "result.json").is_file()
    doc = json.loads((out / "results.json").read_text())
    assert [c["name"] for c in doc["cells"]] == CELLS
    before = {c["name"]: c for c in json.loads((run[0] / "results.json").read_text())["cells"]}
    for cell in doc["cells"]:  # same seed, same settings: the same numbers
        assert cell["eval"]["all"]["psnr"] == pytest.approx(before[cell["name"]]["eval"]["all"]["psnr"], abs=1e-4)


def _data_of(out: Path) -> str:
    return json.loads((out / "grid.json").read_text())["data"]


def test_jobs_2_gives_the_same_cells(run: tuple[Path, str], tmp_path: Path) -> None:
    out = tmp_path / "parallel"
    res = _ablate(_data_of(run[0]), *GRID, "--out", out, "--jobs", "2", "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert doc == json.loads((out / "results.json").read_text())
    serial = json.loads((run[0] / "results.json").read_text())
    assert [c["name"] for c in doc["cells"]] == [c["name"] for c in serial["cells"]]
    for a, b in zip(doc["cells"], serial["cells"]):
        assert a["threads"] == worker_threads(2)
        assert a["eval"]["all"]["psnr"] == pytest.approx(b["eval"]["all"]["psnr"], abs=1e-3)
        assert a["train_psnr"] == pytest.approx(b["train_psnr"], abs=1e-3)


def test_a_diverging_cell_is_recorded_as_failed_and_not_retried(data: Path, tmp_path: Path) -> None:
    args = [data, "--encoders", "raw", "--activations", "relu", *SMALL, "--lr", "1e9", "--out", tmp_path / "x"]
    res = _ablate(*args)
    assert res.exit_code == 0, res.output
    assert "1 cell(s) failed: siren_raw_relu_xu5-0.77_s0" in _flat(res.output)
    doc = json.loads((tmp_path / "x" / "results.json").read_text())
    (cell,) = doc["cells"]
    assert cell["status"] == "failed" and "Try a lower --lr (now 1e+09" in cell["error"]
    assert re.match(r"the (training loss|weights) became (-?inf|nan) between steps", cell["error"])
    md = (tmp_path / "x" / "results.md").read_text()
    assert f"| siren | raw | relu | failed: {cell['error']} |" in md
    again = _ablate(*args)
    assert "kept siren_raw_relu_xu5-0.77_s0: failed: the" in _flat(again.output)


def test_models_without_encoder_appear_once_per_rule() -> None:
    grid = build_grid(
        "demo",
        models="siren,blend",
        encoders="raw,fourier",
        activations="sine",
        lights="xu5:0.77,uniform:10,list:0,3,7",
        seeds=[0, 1],
        steps=10,
        batch_size=8,
        lr=1e-3,
    )
    names = [c.name for c in grid.cells()]
    assert grid.lights == ("xu5:0.77", "uniform:10", "list:0,3,7")
    assert [n for n in names if n.startswith("blend")] == ["blend_xu5-0.77", "blend_uniform-10", "blend_list-0-3-7"]
    assert len(names) == 3 * (4 + 2 * 1 * 2)  # per rule: 4 baseline rows, 2 encoders x 2 seeds
    assert names[:6] == ["blend_xu5-0.77", "ptm_xu5-0.77", "hsh_xu5-0.77", "rbf_xu5-0.77",
                         "siren_raw_sine_xu5-0.77_s0", "siren_raw_sine_xu5-0.77_s1"]


def test_a_classical_baseline_named_with_arguments_that_change_it_gets_its_own_cells() -> None:
    from relightzoo.ablate import BASELINES
    from relightzoo.evaluate import BASELINES as EVALUATED

    assert BASELINES == EVALUATED == ("blend", "ptm", "hsh", "rbf")  # every report carries the same baselines
    plain = build_grid("demo", models="siren,hsh,rbf", encoders="raw", activations="sine", lights="uniform:20", seeds=[0])
    assert [c.name for c in plain.cells()] == ["blend_uniform-20", "ptm_uniform-20", "hsh_uniform-20", "rbf_uniform-20",
                                               "siren_raw_sine_uniform-20_s0"]
    variant = build_grid("demo", models="hsh,rbf", encoders="raw", activations="sine", lights="uniform:20", seeds=[0],
                         model_args={"order": 3})
    cells = variant.cells()
    assert [c.name for c in cells][4:] == ["hsh_uniform-20_s0"]
    assert variant.spec(cells[4])["model"] == {"name": "hsh", "args": {"order": 3}}
    assert variant.spec(cells[2])["model"] == {"name": "hsh", "args": {"order": 2}}  # the baseline row keeps its defaults


# --------------------------------------------------------------------------------------
# errors, all before any training


def _error(res) -> str:
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1, res.output
    return lines[0]


def test_empty_grid_is_an_error(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    msg = _error(_ablate(data, "--encoders", " , ", "--activations", "", *SMALL, "--out", out))
    assert msg == "Error: the grid is empty: --encoders and --activations list nothing"
    assert not out.exists()


def test_unknown_names_are_listed_at_once(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    res = _ablate(
        data, "--models", "sirn", "--encoders", "fourir,raw,drection", "--activations", "sin,relu",
        "--steps", "5", "--out", out,
    )
    assert _error(res) == (
        "Error: unknown names in the grid: model 'sirn' (did you mean 'siren'?); encoder 'fourir' "
        "(did you mean 'fourier'?); encoder 'drection' (did you mean 'direction'?); activation 'sin' "
        "(did you mean 'sine'?)"
    )
    res = _ablate(data, "--encoders", "raw,direction", "--encoder-arg", "pixel_scale=3", "--model-arg", "depth=3", "--out", out)
    assert _error(res) == (
        "Error: unknown names in the grid: --encoder-arg 'pixel_scale' (no encoder of raw, direction takes it; "
        "only fourier takes it); --model-arg 'depth' (no model of siren takes it; they take hidden_features, "
        "hidden_layers)"
    )
    assert not out.exists()


def test_bad_light_rules_are_checked_against_the_dataset(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "x"
    res = _ablate(data, "--lights", "xu5:0.77,uniform:100,xu5:3,all", *SMALL, "--out", out)
    assert _error(res) == (
        "Error: bad light rules: light rule 'uniform:100' asks for 100 lights but the dataset has 16; "
        "light rule 'xu5:3': polar angle 3.0 is outside [0, pi/2] (0 to 1.5708 rad); "
        "light rule 'all' trains on every light and leaves none to evaluate"
    )
    assert not out.exists()


def test_results_folder_of_another_grid_is_an_error(run: tuple[Path, str], tmp_path: Path) -> None:
    out = tmp_path / "grid"
    shutil.copytree(run[0], out)
    before = sorted(p.name for p in (out / "cells").iterdir())
    args = [a if a != "raw,direction" else "raw,fourier" for a in GRID]
    args[args.index("--steps") + 1] = "30"
    res = _ablate(_data_of(run[0]), *args, "--out", out)
    assert _error(res) == (
        f"Error: {out} holds the results of a different grid: --encoders raw,direction there, raw,fourier here; "
        "--steps 20 there, 30 here. Rerun with the same options to resume it, or choose another --out"
    )
    assert sorted(p.name for p in (out / "cells").iterdir()) == before


# --------------------------------------------------------------------------------------
# the plot helper


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 2000) == [0, 500, 1000, 1500, 2000]
    assert nice_ticks(0.3, 2.1) == [0.5, 1.0, 1.5, 2.0]
    assert log_ticks(0.002, 0.5) == [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
    assert log_ticks(1e-5, 1.0) == [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]


def test_log_plot_drops_non_positive_points_and_draws_lines() -> None:
    img = line_plot(
        [Series("a", [0, 1, 2, 3], [1.0, 0.1, 0.0, 0.01]), Series("b", [0, 3], [0.5, 0.05])],
        title="t", xlabel="step", ylabel="loss", log_y=True, width=400, height=300,
    )
    assert img.size == (400, 300)
    pixels = {tuple(p) for p in np.asarray(img).reshape(-1, 3)}
    assert PALETTE[0] in pixels and PALETTE[1] in pixels and PALETTE[2] not in pixels
    empty = line_plot([], log_y=True, width=300, height=200)
    assert empty.size == (300, 200)


def test_cells_take_each_models_training_defaults_unless_the_grid_sets_them() -> None:
    from relightzoo.ablate.report import markdown_table
    from relightzoo.ablate.runner import model_settings

    grid = build_grid("demo", models="siren,low-rank", encoders="direction", activations="sine", lights="xu5:0.77", seeds=[0])
    assert model_settings(grid, "siren")["lr"] == 5e-4 and model_settings(grid, "siren")["schedule"] == "cosine"
    assert model_settings(grid, "low-rank")["lr"] == 3e-3 and model_settings(grid, "low-rank")["schedule"] == "cosine"
    fixed = build_grid("demo", models="low-rank", encoders="direction", activations="sine", lights="xu5:0.77", seeds=[0], lr=1e-3)
    assert model_settings(fixed, "low-rank")["lr"] == 1e-3 and model_settings(fixed, "low-rank")["schedule"] == "cosine"


def test_a_grid_left_to_model_defaults_reports_them(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "defaults"
    args = ["ablate", str(data), "--models", "siren,low-rank", "--encoders", "direction", "--activations", "sine",
            "--model-arg", "hidden_features=8", "--model-arg", "rank=2", "--steps", "3", "--out", str(out)]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    text = (out / "results.md").read_text()
    assert "siren: 3 steps at batch 4096, learning rate 0.0005, schedule cosine" in text
    assert "low-rank: 3 steps at batch 4096, learning rate 0.003, schedule cosine" in text


def test_python_api_runs_a_grid_with_the_default_device(data: Path, tmp_path: Path) -> None:
    from relightzoo.ablate import check_rules, claim_results_dir, run_grid
    from relightzoo.data import load_dataset

    grid = build_grid(str(data), models="siren", encoders="raw", activations="relu", lights="xu5:0.77", seeds=[0],
                      steps=2, model_args={"hidden_features": 8, "hidden_layers": 1})
    dataset = load_dataset(data)
    claim_results_dir(tmp_path / "api", grid)
    records = run_grid(grid, tmp_path / "api", dataset, check_rules(grid, dataset.lights))
    assert [r["status"] for r in records.values()] == ["done", "skipped", "skipped", "done", "done"]  # blend, ptm, hsh, rbf, siren


def test_a_model_with_nothing_to_train_is_reported_as_such_and_named_once(data: Path, tmp_path: Path) -> None:
    from relightzoo.ablate.report import _column_lines

    out = tmp_path / "closed-form"
    # rbf with PCA planes differs from its baseline row, so it gets a cell of its own
    args = ["ablate", str(data), "--models", "siren,rbf", "--encoders", "direction", "--activations", "sine",
            "--model-arg", "hidden_features=8", "--model-arg", "planes=4", "--steps", "3", "--out", str(out)]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    text = (out / "results.md").read_text()
    assert "rbf: nothing to train (fitted when given the training images)" in text
    assert "rbf: 3 steps" not in text and "siren: 3 steps at batch 4096" in text
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["cells"] if not r.get("baseline")}
    assert rows["rbf"]["spec"]["model"]["args"]["planes"] == 4
    assert _column_lines(rows["rbf"], True, False, False) == ["rbf"]  # the contact sheet's heading
    assert _column_lines(rows["siren"], True, False, False) == ["siren", "direction", "sine"]


def test_ablate_help_states_the_siren_training_defaults_it_runs() -> None:
    from relightzoo.train import training_settings
    from relightzoo.zoo import get_plugin

    settings = training_settings(get_plugin("model", "siren").factory)
    assert (settings["steps"], settings["batch_size"], settings["lr"], settings["schedule"]) == (2000, 4096, 5e-4, "cosine")
    res = CliRunner().invoke(main, ["ablate", "--help"], terminal_width=200)
    assert "a siren: 2000 steps at batch 4096, Adam at 5e-4 with a cosine decay" in _flat(res.output)


def test_a_cell_whose_checkpoint_differs_only_in_warmup_steps_trains_afresh_not_into_a_refusal(data: Path, tmp_path: Path) -> None:
    """The grid's resume check is the training loop's: a leftover checkpoint of the same cell
    with other warm-up steps is not resumed (train() would refuse it and the cell would fail)."""
    from relightzoo.ablate.runner import cell_dir, cell_settings, run_cell
    from relightzoo.data import load_dataset
    from relightzoo.lights import select_lights
    from relightzoo.train import train

    def grid(warmup: int):
        return build_grid(str(data), models=["siren"], encoders=["raw"], activations=["relu"], lights=["xu5:0.77"],
                          seeds=[0], steps=6, batch_size=64, lr=1e-3, warmup_steps=warmup,
                          model_args={"hidden_features": 8, "hidden_layers": 1})

    ds = load_dataset(data)
    split = select_lights("xu5:0.77", ds.lights)
    before, after = grid(0), grid(3)
    cell = next(c for c in after.cells() if not c.baseline)
    s = cell_settings(before, cell)
    # the cell's run from an earlier grid, stopped before its result was written
    train(ds, split, before.spec(cell), steps=3, batch_size=s.batch_size, lr=s.lr, seed=s.seed, device="cpu",
          out_dir=cell_dir(tmp_path, cell), log_every=1, schedule=s.schedule, warmup_steps=0, progress=False)
    record = run_cell(after, cell, ds, split, tmp_path, device="cpu")
    assert record["status"] == "done", record.get("error")
    assert record["steps"] == 6
    config = json.loads((cell_dir(tmp_path, cell) / "config.json").read_text())
    assert config["training"]["warmup_steps"] == 3
    # a leftover of the very same settings is resumed, not retrained
    rerun = run_cell(after, cell, ds, split, tmp_path, device="cpu")
    assert rerun["status"] == "done" and rerun["steps"] == 6
