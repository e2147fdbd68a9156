"""Named recipes: the registry, how explicit options override a recipe, ``train --recipe``
(recorded in the checkpoint), ``relightzoo recipes`` and the one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import relightzoo as rz
from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.recipes import Recipe, RecipeError, get_recipe, list_recipes, merge_recipe, register_recipe
from relightzoo.train import read_config, train

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = Recipe(
    "tiny-test",
    "a small siren for the tests",
    model="siren",
    model_args={"hidden_layers": 1, "hidden_features": 16},
    encoder="direction",
    activation="sine",
    lights="uniform:8",
    steps=4,
    batch_size=64,
    lr=2e-3,
    schedule="cosine",
    warmup_steps=1,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=24, height=8, width=8)


@pytest.fixture
def tiny_recipe():
    register_recipe(TINY, replace=True)
    yield TINY
    from relightzoo import recipes

    recipes._RECIPES.pop(TINY.name, None)


def test_the_thesis_recipe_is_the_thesis_model_and_training():
    thesis = get_recipe("thesis")
    assert thesis in list_recipes() and rz.get_recipe("Thesis") is thesis
    spec = thesis.spec()
    assert spec["model"] == {"name": "siren", "args": {"hidden_layers": 3, "hidden_features": 256}}
    assert spec["encoder"] == {"name": "scaled-spherical", "args": {"phi_divisor": 10.0, "theta_divisor": 100.0}}
    assert spec["activation"]["name"] == "sine"
    assert thesis.lights == "xu5:0.77"
    assert thesis.settings() == {"steps": 2000, "batch_size": 4096, "lr": 1e-4, "schedule": "none", "warmup_steps": 0}


def test_an_unknown_recipe_suggests_the_nearest_and_a_name_is_registered_once(tiny_recipe):
    with pytest.raises(RecipeError) as err:
        get_recipe("thesys")
    assert str(err.value).startswith("unknown recipe 'thesys'; did you mean 'thesis'? known: thesis")
    assert "relightzoo recipes lists them" in str(err.value)
    with pytest.raises(RecipeError, match="a recipe named 'tiny-test' exists already"):
        register_recipe(TINY)
    assert get_recipe(TINY) is TINY and get_recipe("tiny-test") is TINY


def test_explicit_options_win_and_each_override_is_one_line():
    thesis = get_recipe("thesis")
    options, notes = merge_recipe(thesis, {"lr": 1e-3, "steps": 2000, "model_args": {"hidden_features": 64}})
    assert options["lr"] == 1e-3 and options["steps"] == 2000 and options["schedule"] == "none"
    assert options["model_args"] == {"hidden_layers": 3, "hidden_features": 64}
    assert options["encoder_args"] == {"phi_divisor": 10.0, "theta_divisor": 100.0}
    # the same value as the recipe's is not an override
    assert notes == [
        "--lr 0.001 overrides recipe 'thesis' (lr 0.0001)",
        "--model-arg hidden_features=64 overrides recipe 'thesis' (hidden_features=256)",
    ]
    # another model or encoder drops the recipe's arguments for the one it named
    options, notes = merge_recipe(thesis, {"model": "low-rank", "encoder": "direction"}, flags={"model": "--models"})
    assert options["model"] == "low-rank" and options["model_args"] == {} and options["encoder_args"] == {}
    assert options["activation_args"] == {"first_omega_0": 30.0, "hidden_omega_0": 30.0}
    assert notes == [
        "--models low-rank overrides recipe 'thesis' (model siren)",
        "--encoder direction overrides recipe 'thesis' (encoder scaled-spherical)",
    ]


def test_train_with_a_recipe_takes_its_settings_and_records_its_name(data: Path, tmp_path: Path, tiny_recipe):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["train", str(data), "--recipe", "tiny-test", "--out", str(out), "--no-eval"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "overrides" not in res.output
    config = read_config(out / "latest.safetensors")
    assert config["recipe"] == "tiny-test"
    assert config["spec"]["model"]["args"] == {"hidden_layers": 1, "hidden_features": 16}
    assert config["spec"]["encoder"]["name"] == "direction"
    assert config["dataset"]["split"]["rule"] == "uniform:8"
    training = config["training"]
    assert (training["steps"], training["batch_size"], training["lr"], training["schedule"], training["warmup_steps"]) == (4, 64, 2e-3, "cosine", 1)
    assert json.loads((out / "config.json").read_text())["recipe"] == "tiny-test"


def test_an_explicit_option_overrides_the_recipe_and_says_so_on_stderr(data: Path, tmp_path: Path, tiny_recipe):
    out = tmp_path / "run"
    res = CliRunner().invoke(
        main,
        ["train", str(data), "--recipe", "tiny-test", "--lr", "1e-3", "--lights", "uniform:10", "--steps", "4",
         "--model-arg", "hidden_features=8", "--out", str(out), "--no-eval"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[:3] == [
        "--lights uniform:10 overrides recipe 'tiny-test' (lights uniform:8)",
        "--lr 0.001 overrides recipe 'tiny-test' (lr 0.002)",
        "--model-arg hidden_features=8 overrides recipe 'tiny-test' (hidden_features=16)",
    ]
    config = read_config(out / "latest.safetensors")
    assert config["recipe"] == "tiny-test" and config["training"]["lr"] == 1e-3 and config["training"]["schedule"] == "cosine"
    assert config["dataset"]["split"]["rule"] == "uniform:10"
    assert config["spec"]["model"]["args"] == {"hidden_layers": 1, "hidden_features": 8}


def test_recipe_errors_on_the_command_line(data: Path, tmp_path: Path):
    res = CliRunner().invoke(main, ["train", str(data), "--recipe", "thesys", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert res.output.strip().splitlines()[-1].startswith("Error: unknown recipe 'thesys'; did you mean 'thesis'?")
    res = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "x"), "--recipe", "thesis"])
    assert res.exit_code == 2 and "leave out --recipe" in res.output


def test_recipes_lists_every_recipe(tiny_recipe):
    res = CliRunner().invoke(main, ["recipes", "--json"], catch_exceptions=False)
    assert res.exit_code == 0
    listed = {r["name"]: r for r in json.loads(res.stdout)}
    assert set(listed) >= {"thesis", "tiny-test"}
    assert listed["thesis"]["lr"] == 1e-4 and listed["thesis"]["encoder_args"] == {"phi_divisor": 10.0, "theta_divisor": 100.0}
    res = CliRunner().invoke(main, ["recipes"], catch_exceptions=False)
    assert res.exit_code == 0 and "thesis" in res.output and "--encoder-arg phi_divisor=10" in res.output


def test_the_python_api_trains_a_recipe(data: Path, tmp_path: Path, tiny_recipe):
    recipe = rz.get_recipe("tiny-test")
    ds = rz.load_dataset(data)
    result = train(ds, recipe.lights, recipe.spec(), **recipe.settings(), recipe=recipe.name, out_dir=tmp_path / "api", progress=False)
    assert result.step == 4 and result.config["recipe"] == "tiny-test" and result.config["training"]["lr"] == 2e-3


def test_ablate_takes_its_grid_defaults_from_a_recipe(data: Path, tmp_path: Path, tiny_recipe):
    out = tmp_path / "grid"
    res = CliRunner().invoke(
        main, ["ablate", str(data), "--recipe", "tiny-test", "--encoders", "raw,direction", "--out", str(out)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[0] == "--encoders raw,direction overrides recipe 'tiny-test' (encoder direction)"
    grid = json.loads((out / "grid.json").read_text())
    assert grid["recipe"] == "tiny-test" and grid["models"] == ["siren"] and grid["lights"] == ["uniform:8"]
    assert grid["training"] == {"steps": 4, "batch_size": 64, "lr": 2e-3, "schedule": "cosine", "warmup_steps": 1, "precision": None}
    assert grid["model_args"] == {"hidden_layers": 1, "hidden_features": 16}
    doc = json.loads((out / "results.json").read_text())
    assert [c["name"] for c in doc["cells"]] == ["siren_raw_sine_uniform-8_s0", "siren_direction_sine_uniform-8_s0"]
    for cell in doc["cells"]:
        config = read_config(out / cell["checkpoint"])
        assert config["recipe"] == "tiny-test" and config["training"]["warmup_steps"] == 1 and config["step"] == 4
