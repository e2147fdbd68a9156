"""bfloat16 mixed-precision training (relightzoo.train.precision): it trains, every trainable
built-in model runs under it, ``auto`` follows the hardware, runs record it and resumes keep it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.data import OLATDataset, load_dataset
from relightzoo.errors import TrainingError
from relightzoo.metrics import psnr
from relightzoo.recipes import get_recipe
from relightzoo.train import train
from relightzoo.train import precision as precision_module
from relightzoo.util import devices
from relightzoo.lights import select_lights
from relightzoo.zoo import build_from_spec, capabilities, get_plugin, list_plugins, model_spec

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> OLATDataset:
    return load_dataset(make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=24, height=12, width=12))


def _siren() -> dict:
    return model_spec("siren", encoder="direction", activation="sine", hidden_features=32, hidden_layers=2)


def _run(dataset, out: Path, **kwargs):
    opts = dict(steps=300, batch_size=256, lr=1e-3, schedule="cosine", seed=0, device="cpu", out_dir=out, log_every=50, progress=False)
    opts.update(kwargs)
    return train(dataset, opts.pop("rule", "uniform:12"), opts.pop("spec", None) or _siren(), **opts)


def test_bf16_runs_the_matrix_multiplies_in_bf16_and_fits_as_well_as_fp32(dataset, tmp_path: Path) -> None:
    seen: list[torch.dtype] = []
    fp32 = _run(dataset, tmp_path / "fp32")
    torch.manual_seed(0)
    model = build_from_spec(_siren())
    hook = model.net[1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    bf16 = _run(dataset, tmp_path / "bf16", spec=model, precision="bf16")
    assert seen and set(seen) == {torch.bfloat16}, set(seen)  # every training forward: bf16 products
    seen.clear()
    test = list(select_lights("uniform:12", dataset.lights).test)
    target = dataset.images(test)
    scores = {}
    for name, res in (("fp32", fp32), ("bf16", bf16)):
        with torch.no_grad():
            scores[name] = psnr(res.model.render(dataset.lights[test], dataset.height, dataset.width), target).mean().item()
    hook.remove()
    assert seen and set(seen) == {torch.float32}  # rendering stays float32
    # weights, and so checkpoints, stay float32
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())
    # held out, the untrained network scores 10.2 dB and fp32 25.7; bf16 must fit as well (25.7)
    assert scores["fp32"] > 24.0, scores
    assert scores["bf16"] > scores["fp32"] - 0.3, scores
    config = json.loads((tmp_path / "bf16" / "config.json").read_text())
    assert config["training"]["precision"] == "bf16" and config["training"]["precision_used"] == "bf16"


def test_bf16_resume_continues_exactly(dataset, tmp_path: Path) -> None:
    kw = dict(checkpoint_every=8, log_every=4, precision="bf16", schedule="none")  # a cosine would depend on the steps
    straight = _run(dataset, tmp_path / "straight", steps=16, **kw)
    _run(dataset, tmp_path / "split", steps=8, **kw)
    rest = _run(dataset, tmp_path / "split", steps=16, resume=True, **kw)
    assert rest.resumed_from == 8
    for (name, a), b in zip(straight.model.state_dict().items(), rest.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_resume_must_keep_the_precision(dataset, tmp_path: Path) -> None:
    _run(dataset, tmp_path / "run", steps=4, log_every=4)
    with pytest.raises(TrainingError, match=r"training setting precision \(--precision\): the run has 'fp32', this command 'bf16'"):
        _run(dataset, tmp_path / "run", steps=8, log_every=4, precision="bf16", resume=True)


def test_every_trainable_built_in_model_trains_under_bf16(dataset, tmp_path: Path) -> None:
    trained = []
    for info in list_plugins("model"):
        if info.package != "relightzoo" or not capabilities(get_plugin("model", info.name).factory).trainable:
            continue
        res = _run(dataset, tmp_path / info.name, spec=model_spec(info.name), steps=2, batch_size=None, log_every=1, precision="bf16")
        assert res.loss is not None and torch.isfinite(torch.tensor(res.loss)), info.name
        trained.append(info.name)
    assert {"siren", "latent-siren", "low-rank", "neural-rti", "learned-blend"} <= set(trained), trained


def test_auto_is_bf16_only_where_the_hardware_multiplies_it(monkeypatch) -> None:
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert precision_module.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert precision_module.resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(devices, "_cpu_flags", lambda: {"avx2", "avx512f"})
    assert precision_module.resolve_precision("auto", "cpu") == "fp32"
    assert precision_module.resolve_precision("bf16", "cpu") == "bf16"  # asked for: kept, even if slow
    assert precision_module.resolve_precision("fp32", "cpu") == "fp32"


def test_auto_is_recorded_with_what_it_chose(dataset, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(devices, "_cpu_flags", lambda: set())
    _run(dataset, tmp_path / "run", steps=4, log_every=4, precision="auto")
    training = json.loads((tmp_path / "run" / "config.json").read_text())["training"]
    assert (training["precision"], training["precision_used"]) == ("auto", "fp32")


def test_unknown_precision_is_one_line_with_the_nearest(dataset, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"^unknown --precision 'bf61' \(did you mean 'bf16'\?\); choose one of fp32, bf16, auto$"):
        _run(dataset, tmp_path / "run", steps=4, precision="bf61")
    result = CliRunner().invoke(main, ["train", "demo", "--precision", "half", "--steps", "1"])
    assert result.exit_code == 2 and "'half' is not one of 'fp32', 'bf16', 'auto'" in result.output
    assert "Traceback" not in result.output


def test_the_cli_offers_exactly_the_training_precisions() -> None:
    from relightzoo.cli.params import PRECISION

    assert tuple(PRECISION.choices) == precision_module.PRECISIONS


def test_the_dense_recipes_train_in_the_fastest_precision() -> None:
    assert get_recipe("quick").precision == "auto" and get_recipe("long").precision == "auto"
    assert get_recipe("thesis").precision is None  # the thesis's float32 run, reproduced as it was
