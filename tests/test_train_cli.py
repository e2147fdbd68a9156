"""``relightzoo train`` through the CLI: runs, held-out scores beside blend, resume, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import make_olat_folder, render_in_fresh_process
from relightzoo.cli import main
from relightzoo.data import PixelLightSampler
from relightzoo.train import load_checkpoint, read_config

# A constant rate: extending a run's --steps on resume then matches a longer straight run
# (under the siren's default cosine schedule the rates depend on the run's length).
SMALL = ["--model-arg", "hidden_features=16", "--model-arg", "hidden_layers=2", "--batch-size", "128", "--lr", "1e-3",
         "--schedule", "none"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=16, height=12, width=12)


def _flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def _train(*args: str, input: str | None = None):
    """``relightzoo train ARGS``; a run that names no model, recipe or run to resume trains
    siren (these tests exercise the per-option defaults, not the default recipe)."""
    if not {"--model", "--recipe", "--resume", "--help"} & set(args):
        args = ("--model", "siren", *args)
    return CliRunner().invoke(main, ["train", *args], catch_exceptions=False, input=input)


def test_train_then_held_out_psnr_beside_blend(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = _train(str(data), "--steps", "20", "--out", str(out), *SMALL)
    assert res.exit_code == 0, res.output
    assert "trained 20 steps" in res.output
    assert "held-out lights (11; " in res.output  # 16 lights - 5 xu5 training lights
    assert re.search(r"^siren\(scaled-spherical, sine\) +PSNR \d+\.\d\d dB \(in cap \d+\.\d\d\)", res.output, re.M)
    assert re.search(r"^blend \(baseline\) +PSNR \d+\.\d\d dB \(in cap \d+\.\d\d\)", res.output, re.M)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["best.safetensors", "config.json", "eval", "latest.safetensors", "latest.state.safetensors", "metrics.jsonl"]
    results = json.loads((out / "eval" / "results.json").read_text())
    assert set(results["results"]) == {"model", "blend", "rbf"} and results["step"] == 20
    # beside blend, the classical fits that five training lights allow, and a note for the others
    assert re.search(r"^rbf \(baseline\) +PSNR \d+\.\d\d dB", res.output, re.M)
    assert "ptm skipped: model 'ptm' needs at least 6 training lights, got 5" in res.output
    assert "hsh skipped: model 'hsh' of order 2 needs at least 9 training lights, got 5" in res.output
    r = results["results"]
    best = results["best_baseline"]
    assert best == max(("blend", "rbf"), key=lambda m: r[m]["all"]["psnr"])
    vs_blend = f"{r['model']['all']['psnr'] - r['blend']['all']['psnr']:+.2f} dB vs blend"
    vs_best = f"{r['model']['all']['psnr'] - r[best]['all']['psnr']:+.2f} dB vs the best classical model ({best})"
    expected = f"siren(scaled-spherical, sine): {vs_blend}, " + (vs_best if best != "blend" else "blend is the best classical model")
    assert expected in _flat(res.output)
    config = read_config(out / "latest.safetensors")
    assert config["spec"]["model"] == {"name": "siren", "args": {"hidden_layers": 2, "hidden_features": 16}}
    assert config["spec"]["encoder"]["name"] == "scaled-spherical" and config["spec"]["activation"]["name"] == "sine"
    assert config["dataset"]["split"]["rule"] == "xu5:0.77"
    assert config["training"]["lr"] == 1e-3 and config["training"]["batch_size"] == 128


def _grey_psnr(data: Path, per_light: list[dict]) -> float:
    """Mean PSNR of a flat mid-grey image against the held-out images ``per_light`` lists."""
    import numpy as np

    from relightzoo.data import load_dataset

    images = load_dataset(data).images().numpy().astype(np.float64)
    return float(np.mean([10 * np.log10(1 / np.mean((images[e["index"]] - 0.5) ** 2)) for e in per_light]))


def test_json_puts_only_json_on_stdout(data: Path, tmp_path: Path) -> None:
    res = _train(str(data), "--steps", "8", "--out", str(tmp_path / "run"), "--json", *SMALL)
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["run"]["step"] == 8 and doc["run"]["out_dir"] == str(tmp_path / "run")
    written = json.loads((tmp_path / "run" / "eval" / "results.json").read_text())["results"]
    for method in ("model", "blend"):
        assert doc["evaluation"][method]["all"]["count"] == 11
        for group in ("all", "in_cap"):  # the JSON carries the very scores evaluated and written
            assert doc["evaluation"][method][group]["psnr"] == written[method][group]["psnr"]
            assert doc["evaluation"][method][group]["ssim"] == written[method][group]["ssim"]
    # blend, from five training lights, beats a flat mid-grey guess clearly (measured: 14.8 vs 10.7 dB)
    grey = _grey_psnr(data, written["model"]["per_light"])
    assert doc["evaluation"]["blend"]["all"]["psnr"] > grey + 3.0, (doc["evaluation"]["blend"]["all"], grey)
    assert "trained" not in res.stdout


def test_resume_takes_settings_from_the_run_and_matches_a_straight_run(data: Path, tmp_path: Path) -> None:
    common = ["--encoder", "raw", "--activation", "relu", "--seed", "3", "--checkpoint-every", "5", "--no-eval", *SMALL]
    assert _train(str(data), "--steps", "12", "--out", str(tmp_path / "straight"), *common).exit_code == 0
    assert _train(str(data), "--steps", "6", "--out", str(tmp_path / "run"), *common).exit_code == 0
    res = _train("--resume", str(tmp_path / "run"), "--steps", "12", "--no-eval")  # no DATA, no options
    assert res.exit_code == 0, res.output
    a, _ = load_checkpoint(tmp_path / "straight" / "latest.safetensors")
    b, cfg = load_checkpoint(tmp_path / "run" / "latest.safetensors")
    assert cfg["step"] == 12 and cfg["spec"]["encoder"]["name"] == "raw" and cfg["training"]["seed"] == 3
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    res = _train("--resume", str(tmp_path / "run"), "--no-eval")  # the run's own --steps: already there
    assert res.exit_code == 0 and "is already at step 12 of 12; pass a larger --steps to go on" in _flat(res.output)


def test_resume_mismatch_and_misuse(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert _train(str(data), "--steps", "4", "--out", str(out), "--no-eval", *SMALL).exit_code == 0
    res = _train("--resume", str(out), "--encoder", "fourier")
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1] == (
        f"Error: --resume {out} does not match this command: encoder (--encoder): the run has "
        "'scaled-spherical', this command 'fourier'"
    )
    res = _train("--resume", str(out), "--lights", "uniform:6")
    assert res.exit_code == 1 and "training lights (--lights): the run used 'xu5:0.77'" in res.output
    res = _train("--resume", str(out), "--out", str(tmp_path / "elsewhere"))
    assert res.exit_code == 2 and "--resume RUN_DIR continues that run in place" in res.output
    res = _train("--resume", str(tmp_path / "missing"))
    assert res.exit_code == 1 and f"Error: cannot resume {tmp_path / 'missing'}: the folder does not exist" in res.output
    res = _train(str(data), "--steps", "4", "--out", str(out), "--no-eval", *SMALL)
    assert res.exit_code == 1 and f"Error: {out} already holds a run; continue it with --resume {out}" in res.output


def test_bad_input_is_one_line(data: Path, tmp_path: Path) -> None:
    res = _train("--steps", "2")
    assert res.exit_code == 2 and "Missing argument 'DATA'" in res.output
    res = _train(str(data), "--lights", "xu7:1", "--out", str(tmp_path / "a"))
    assert res.exit_code == 1 and res.output.startswith("Error: unknown light rule 'xu7:1'")
    res = _train(str(data), "--model-arg", "width=3", "--out", str(tmp_path / "b"))
    assert res.exit_code == 1 and res.output.startswith("Error: ") and "width" in res.output
    res = _train(str(data), "--model-arg", "hidden_features", "--out", str(tmp_path / "c"))
    assert res.exit_code == 1 and "Error: --model-arg 'hidden_features' is not of the form KEY=VALUE" in res.output
    res = _train(str(tmp_path / "nowhere"), "--out", str(tmp_path / "d"))
    assert res.exit_code == 1 and f"Error: dataset folder {tmp_path / 'nowhere'} does not exist" in res.output
    res = _train(str(data), "--schedule", "linear")
    assert res.exit_code == 2 and "'linear' is not one of 'none', 'cosine'" in res.output


def test_ctrl_c_saves_and_says_how_to_resume(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = PixelLightSampler.sample
    calls = {"n": 0}

    def sample(self):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(PixelLightSampler, "sample", sample)
    out = tmp_path / "run"
    res = _train(str(data), "--steps", "50", "--out", str(out), *SMALL)
    assert res.exit_code == 130
    assert f"to continue: relightzoo train --resume {out}" in _flat(res.output)
    assert read_config(out / "latest.safetensors")["step"] == 4


def test_blend_needs_no_training(data: Path, tmp_path: Path) -> None:
    res = _train(str(data), "--model", "blend", "--out", str(tmp_path / "blend"))
    assert res.exit_code == 0, res.output
    assert "nothing to train" in res.output and "blend skipped: it is the model evaluated" in res.output
    assert "rbf (baseline)" in res.output  # the other baselines are scored beside it
    model, cfg = load_checkpoint(tmp_path / "blend" / "best.safetensors")
    assert cfg["spec"]["model"]["name"] == "blend" and "encoder" not in cfg["spec"]
    assert model.images.shape == (5, 12, 12, 3)


def test_default_run_folder(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = _train(str(data), "--steps", "2", "--no-eval", *SMALL)
    assert res.exit_code == 0, res.output
    (run,) = (tmp_path / "runs").iterdir()
    assert run.name.startswith("siren-scaled-spherical-sine-") and (run / "latest.safetensors").exists()


def test_every_encoder_and_activation_trains_on_the_demo_saves_and_renders_the_same_in_a_fresh_process(
    tmp_path: Path,
) -> None:
    combos = [(e, a) for e in ("raw", "scaled-spherical", "fourier", "direction") for a in ("sine", "cosine", "relu")]
    light = torch.tensor([[0.3, -0.2, 0.93]])
    expected = {}
    for enc, act in combos:
        out = tmp_path / f"{enc}-{act}"
        res = _train("demo", "--encoder", enc, "--activation", act, "--steps", "3", "--out", str(out), "--no-eval", *SMALL)
        assert res.exit_code == 0, res.output
        model, _ = load_checkpoint(out / "latest.safetensors")
        expected[f"{enc}-{act}"] = model.render(light, 9, 7)
    fresh = {n: render_in_fresh_process(tmp_path / n / "latest.safetensors", [[0.3, -0.2, 0.93]], 9, 7, tmp_path) for n in expected}
    for name, image in expected.items():
        assert image.shape == (1, 9, 7, 3)
        assert torch.equal(fresh[name], image), name


def test_help_states_the_real_defaults() -> None:
    from relightzoo.train import DEFAULT_BATCH_SIZE, DEFAULT_LR, DEFAULT_STEPS

    res = CliRunner().invoke(main, ["train", "--help"], terminal_width=200)
    assert res.exit_code == 0
    text = _flat(res.output)
    assert f"Optimiser steps [default: the model's, else {DEFAULT_STEPS}]" in text
    assert f"samples a step [default: the model's, else {DEFAULT_BATCH_SIZE}]" in text
    assert float(re.search(r"Learning rate \[default: the model's, else ([^\]]+)\]", text).group(1)) == DEFAULT_LR
    assert "[default: siren]" in text and "[default: scaled-spherical]" in text and "[default: xu5:0.77]" in text


def test_the_demo_scene_trains_with_the_default_model(tmp_path: Path) -> None:
    res = _train("demo", "--steps", "2", "--batch-size", "256", "--out", str(tmp_path / "demo"), "--no-eval")
    assert res.exit_code == 0, res.output
    config = read_config(tmp_path / "demo" / "latest.safetensors")
    assert config["dataset"]["source"] == "demo" and config["step"] == 2
    assert config["spec"]["model"]["args"] == {"hidden_layers": 3, "hidden_features": 256}
    assert len(config["dataset"]["split"]["train"]) == 5


def test_a_run_the_model_refuses_leaves_no_out_folder(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "refused"
    res = CliRunner().invoke(main, ["train", str(data), "--model", "ptm", "--lights", "uniform:4", "--out", str(out)])
    assert res.exit_code == 1, res.output
    assert "needs at least 6 training lights, got 4" in _flat(res.output)
    assert not out.exists()
