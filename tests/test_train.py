"""The training loop: repeatability, exact resume, Ctrl-C, logs, checkpoints, bad runs."""

from __future__ import annotations

import json
import math
import signal
import sys
import types
from pathlib import Path

import pytest
import torch

from conftest import make_olat_folder
from relightzoo.data import OLATDataset, PixelLightSampler, load_dataset, pixel_grid
from relightzoo.errors import TrainingError
from relightzoo.lights import select_lights
from relightzoo.metrics import psnr
from relightzoo.train import (
    TrainingInterrupted,
    create_optimizer,
    create_schedule,
    load_checkpoint,
    psnr_from_mse,
    read_config,
    resolve_device,
    train,
)
from relightzoo.zoo import CoordinateModel, model_spec

TINY = {"hidden_features": 16, "hidden_layers": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> OLATDataset:
    folder = make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=16, height=12, width=12)
    return load_dataset(folder)


def _spec(encoder: str = "scaled-spherical", activation: str = "sine", **model_args) -> dict:
    return model_spec("siren", encoder=encoder, activation=activation, **(TINY | model_args))


def _run(dataset, out: Path, *, steps: int = 12, **kwargs):
    # Every setting explicit (a constant rate unless a test asks for a schedule), so the tests
    # exercise the loop rather than the model's train_defaults.
    opts = dict(steps=steps, batch_size=128, lr=1e-3, schedule="none", seed=0, device="cpu", out_dir=out, log_every=4,
                progress=False)
    opts.update(kwargs)
    spec = opts.pop("spec", None) or _spec()
    rule = opts.pop("rule", "xu5:0.77")
    return train(dataset, rule, spec, **opts)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- repeatability and resume ------------------------------------------------------------


def test_one_seed_gives_identical_weights_and_another_differs(dataset, tmp_path: Path) -> None:
    a = _run(dataset, tmp_path / "a")
    b = _run(dataset, tmp_path / "b")
    c = _run(dataset, tmp_path / "c", seed=1)
    assert _same(_weights(a.model), _weights(b.model))
    assert not _same(_weights(a.model), _weights(c.model))
    assert len(a.history) == 3 and [h["loss"] for h in a.history] == [h["loss"] for h in b.history]


def test_resume_continues_exactly(dataset, tmp_path: Path) -> None:
    straight = _run(dataset, tmp_path / "straight", steps=16, checkpoint_every=8)
    half = _run(dataset, tmp_path / "split", steps=8, checkpoint_every=8)
    assert half.step == 8
    rest = _run(dataset, tmp_path / "split", steps=16, checkpoint_every=8, resume=True)
    assert rest.resumed_from == 8 and rest.step == 16
    assert _same(_weights(straight.model), _weights(rest.model))
    # the log continues where it stopped: one line per logging step, no repeats
    steps = [json.loads(line)["step"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [4, 8, 12, 16]


def _interrupt_at(monkeypatch: pytest.MonkeyPatch, call: int, how: str) -> None:
    """Make the sampler's ``call``-th batch arrive with a Ctrl-C (a real SIGINT or a raised KeyboardInterrupt)."""
    real = PixelLightSampler.sample
    count = {"n": 0}

    def sample(self):
        count["n"] += 1
        if count["n"] == call:
            if how == "signal":
                signal.raise_signal(signal.SIGINT)  # handled: this step finishes, then the run stops
            else:
                raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(PixelLightSampler, "sample", sample)


@pytest.mark.parametrize("how", ["signal", "raise"])
def test_ctrl_c_saves_latest_and_resume_matches_a_straight_run(
    dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    opts = dict(steps=20, schedule="cosine", warmup_steps=3, checkpoint_every=100)
    handler_before = signal.getsignal(signal.SIGINT)  # SIG_IGN where the suite runs in the background
    straight = _run(dataset, tmp_path / "straight", **opts)
    with monkeypatch.context() as m:
        _interrupt_at(m, 7, how)
        with pytest.raises(TrainingInterrupted) as stop:
            _run(dataset, tmp_path / "run", **opts)
    stopped_at = 7 if how == "signal" else 6  # a signal lets the current step finish
    assert stop.value.step == stopped_at and stop.value.out_dir == tmp_path / "run"
    assert isinstance(stop.value, KeyboardInterrupt)
    assert read_config(tmp_path / "run" / "latest.safetensors")["step"] == stopped_at
    assert signal.getsignal(signal.SIGINT) is handler_before  # the caller's handler is restored
    resumed = _run(dataset, tmp_path / "run", resume=True, **opts)
    assert resumed.resumed_from == stopped_at
    assert _same(_weights(straight.model), _weights(resumed.model))


# -- files of a run ----------------------------------------------------------------------


def test_run_folder_holds_config_metrics_and_checkpoints(dataset, tmp_path: Path) -> None:
    res = _run(dataset, tmp_path / "run", steps=10, checkpoint_every=5, log_every=2)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["best.safetensors", "config.json", "latest.safetensors", "latest.state.safetensors", "metrics.jsonl"]
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6, 8, 10]
    for r in lines:
        assert set(r) == {"step", "loss", "psnr", "lr", "elapsed", "samples_per_s"}
        assert r["psnr"] == pytest.approx(psnr_from_mse(r["loss"]))
        assert r["lr"] == 1e-3 and r["samples_per_s"] > 0
    assert lines[-1]["loss"] < lines[0]["loss"]
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["spec"] == _spec() and config["step"] == 10
    assert config["dataset"]["split"]["rule"] == "xu5:0.77" and len(config["dataset"]["lights"]) == 16
    expected = {"steps": 10, "batch_size": 128, "lr": 1e-3, "seed": 0, "schedule": "none", "optimizer": "adam"}
    assert {k: config["training"][k] for k in expected} == expected
    latest, cfg = load_checkpoint(tmp_path / "run" / "latest.safetensors")
    assert cfg["step"] == 10 and _same(_weights(latest), _weights(res.model))
    best_cfg = read_config(tmp_path / "run" / "best.safetensors")
    assert best_cfg["metrics"]["loss"] == pytest.approx(res.best_loss)
    assert res.best_loss == min(read_config(tmp_path / "run" / "latest.safetensors")["metrics"]["loss"], best_cfg["metrics"]["loss"])


def test_loss_is_mse_on_targets_in_minus_one_to_one(dataset, tmp_path: Path) -> None:
    res = _run(dataset, tmp_path / "run", steps=4, log_every=4, lr=1e-12, batch_size=4096)
    split = select_lights("xu5:0.77", dataset.lights)
    imgs = dataset.images(split.train)
    grid = pixel_grid(dataset.height, dataset.width)
    with torch.no_grad():
        pred = torch.stack([res.model(grid, light.expand(len(grid), 3)) for light in dataset.lights[split.train]])
    full_mse = float(((pred - (imgs.reshape(len(split.train), -1, 3) * 2 - 1)) ** 2).mean())
    # a learning rate of 1e-12 leaves the weights as initialised: the logged loss is the
    # untrained model's MSE over random samples, close to the MSE over every training pixel
    assert res.loss == pytest.approx(full_mse, rel=0.15)


def test_a_siren_fits_its_training_lights(tmp_path: Path) -> None:
    folder = make_olat_folder(tmp_path / "fit", n_lights=8, height=8, width=8)
    ds = load_dataset(folder)
    spec = model_spec("siren", encoder="scaled-spherical", activation="sine", hidden_features=64, hidden_layers=2)
    res = train(ds, "list:0,2,4,6", spec, steps=600, batch_size=256, lr=1e-3, seed=0, device="cpu",
                out_dir=tmp_path / "run", log_every=100, progress=False)
    idx = [0, 2, 4, 6]
    rendered = res.model.render(ds.lights[idx], ds.height, ds.width)
    score = psnr(rendered, ds.images(idx)).mean().item()
    assert score > 30.0, f"training-light PSNR {score:.2f} dB"


# -- models without training and models of your own ------------------------------------


def test_blend_is_attached_and_saved_not_trained(dataset, tmp_path: Path) -> None:
    res = train(dataset, "xu5:0.77", model_spec("blend"), steps=50, out_dir=tmp_path / "blend", progress=False, device="cpu")
    assert res.step == 0 and res.loss is None
    loaded, cfg = load_checkpoint(tmp_path / "blend" / "latest.safetensors")
    assert cfg["spec"]["model"]["name"] == "blend"
    test = torch.as_tensor(select_lights("xu5:0.77", dataset.lights).test[:3])
    assert torch.equal(loaded.render(dataset.lights[test], 12, 12), res.model.render(dataset.lights[test], 12, 12))
    assert (tmp_path / "blend" / "best.safetensors").exists()


class _Plain(CoordinateModel):
    """A coordinate model the zoo did not build."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    def forward(self, pixels, lights):
        return self.net(torch.cat([pixels, lights], -1))


def test_a_model_of_your_own_trains_and_loads_into_a_fresh_one(dataset, tmp_path: Path) -> None:
    torch.manual_seed(0)
    with pytest.warns(UserWarning, match="was not built by relightzoo.zoo.create_model"):
        res = train(dataset, "xu5:0.77", _Plain(), steps=5, batch_size=64, out_dir=tmp_path / "own", progress=False, device="cpu")
    fresh, cfg = load_checkpoint(tmp_path / "own" / "latest.safetensors", model=_Plain())
    assert cfg["spec"] is None and _same(_weights(fresh), _weights(res.model))


# -- errors ------------------------------------------------------------------------------


def test_resume_that_does_not_match_names_the_setting(dataset, tmp_path: Path, tmp_path_factory) -> None:
    out = tmp_path / "run"
    _run(dataset, out, steps=4)
    cases = [
        (dict(spec=_spec(encoder="raw")), "encoder (--encoder): the run has 'scaled-spherical', this command 'raw'"),
        (dict(spec=_spec(activation="relu")), "activation (--activation): the run has 'sine', this command 'relu'"),
        (dict(spec=_spec(hidden_features=8)), "model argument hidden_features (--model-arg): the run has 16, this command 8"),
        (dict(rule="uniform:5"), "training lights (--lights): the run used 'xu5:0.77'"),
        (dict(batch_size=64), "training setting batch_size (--batch-size): the run has 128, this command 64"),
        (dict(lr=1e-2), "training setting lr (--lr): the run has 0.001, this command 0.01"),
    ]
    for change, expected in cases:
        with pytest.raises(TrainingError) as exc:
            _run(dataset, out, steps=8, resume=True, **change)
        assert str(exc.value).startswith(f"--resume {out} does not match this command: ")
        assert expected in str(exc.value)
    other = load_dataset(make_olat_folder(tmp_path_factory.mktemp("other") / "o", n_lights=16, height=12, width=12, seed=3))
    with pytest.raises(TrainingError, match=r"does not match this command: dataset \(DATA\): the run trained on .*tiny, this command on .*o$"):
        _run(other, out, steps=8, resume=True)


def test_resume_needs_a_run_and_a_new_run_needs_a_new_folder(dataset, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=f"cannot resume {tmp_path / 'none'}: it holds no latest.safetensors"):
        _run(dataset, tmp_path / "none", resume=True)
    _run(dataset, tmp_path / "run", steps=2)
    with pytest.raises(TrainingError, match=f"{tmp_path / 'run'} already holds a run; continue it with --resume"):
        _run(dataset, tmp_path / "run", steps=2)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(dataset, tmp_path: Path, monkeypatch) -> None:
    real = PixelLightSampler.sample
    count = {"n": 0}

    def poisoned(self):
        count["n"] += 1
        pixels, lights, rgb = real(self)
        if count["n"] > 10:
            rgb = torch.full_like(rgb, math.nan)
        return pixels, lights, rgb

    monkeypatch.setattr(PixelLightSampler, "sample", poisoned)
    with pytest.raises(TrainingError) as exc:
        _run(dataset, tmp_path / "run", steps=20, checkpoint_every=8, log_every=4)
    msg = str(exc.value)
    assert msg.startswith("the training loss became nan between steps 9 and 12; stopped and kept the last good checkpoint")
    assert "(step 8). Try a lower --lr (now 0.001, e.g. 0.0001)" in msg and "\n" not in msg
    model, cfg = load_checkpoint(tmp_path / "run" / "latest.safetensors")
    assert cfg["step"] == 8 and all(torch.isfinite(p).all() for p in model.parameters())


def test_tensorboard_missing_is_a_clear_error(dataset, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    with pytest.raises(TrainingError, match=r"^--tensorboard needs the tensorboard package: pip install tensorboard$"):
        _run(dataset, tmp_path / "run", tensorboard=True)


def test_tensorboard_gets_the_logged_scalars(dataset, tmp_path: Path, monkeypatch) -> None:
    written: list[tuple] = []

    class Writer:
        def __init__(self, log_dir):
            written.append(("dir", log_dir))

        def add_scalar(self, tag, value, step):
            written.append((tag, step))

        def close(self):
            written.append(("closed",))

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    _run(dataset, tmp_path / "run", steps=8, log_every=4, tensorboard=True)
    assert written[0] == ("dir", str(tmp_path / "run" / "tensorboard"))
    assert ("train/loss", 4) in written and ("train/psnr", 8) in written and ("train/lr", 8) in written
    assert written[-1] == ("closed",)


def test_bad_settings(dataset, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(TrainingError, match="--batch-size must be at least 1, got 0"):
        _run(dataset, tmp_path / "a", batch_size=0)
    with pytest.raises(TrainingError, match="unknown schedule 'linear'; choose one of none, cosine"):
        _run(dataset, tmp_path / "b", schedule="linear")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(TrainingError, match="device 'cuda' asked for CUDA but no CUDA GPU is available; use --device cpu"):
        resolve_device("cuda")


# -- optimiser and schedule --------------------------------------------------------------


def test_adam_and_schedules_through_timm() -> None:
    model = torch.nn.Linear(3, 3)
    opt = create_optimizer(model)
    assert type(opt).__name__ == "Adam" and opt.param_groups[0]["lr"] == 1e-4
    assert opt.defaults["fused"] is True and not create_optimizer(model, fused=False).defaults["fused"]
    assert create_schedule(opt, schedule="none", steps=100) is None
    sched = create_schedule(opt, schedule="cosine", steps=100, warmup_steps=10)
    lrs = []
    for step in range(101):
        sched.step_update(num_updates=step)
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-6) and lrs[10] == pytest.approx(1e-4, rel=0.05)
    assert all(a <= b for a, b in zip(lrs[:10], lrs[1:11]))  # warm-up rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then decays
    assert lrs[100] == pytest.approx(0.0, abs=1e-9)
    opt2 = create_optimizer(torch.nn.Linear(3, 3), lr=1e-3)
    const = create_schedule(opt2, schedule="none", steps=100, warmup_steps=4)
    const.step_update(num_updates=50)
    assert opt2.param_groups[0]["lr"] == pytest.approx(1e-3)


def test_resume_on_another_device_type_warns_and_goes_on(dataset, tmp_path: Path) -> None:
    from relightzoo.train import load_state, save_state, state_path

    out = tmp_path / "run"
    _run(dataset, out, steps=4)
    state_file = state_path(out / "latest.safetensors")
    state = load_state(state_file)
    state["rng"]["device_type"] = "cuda"  # as if trained on a GPU
    state["rng"]["sampler"]["generator"] = torch.zeros(16, dtype=torch.uint8)  # a CUDA generator's state
    save_state(state_file, state)
    with pytest.warns(UserWarning, match="resuming on cpu a run trained on cuda: the batches from here on differ"):
        res = _run(dataset, out, steps=8, resume=True)
    assert res.step == 8 and res.resumed_from == 4


def test_a_models_train_defaults_fill_only_unset_settings():
    """Settings left unset come from the model's train_defaults, explicit ones win."""
    from relightzoo.train import GLOBAL_DEFAULTS, training_settings

    class Quick:
        train_defaults = {"lr": 3e-3, "schedule": "cosine"}

    got = training_settings(Quick(), steps=None, batch_size=None, lr=None, schedule=None, warmup_steps=None)
    assert got == {**GLOBAL_DEFAULTS, "lr": 3e-3, "schedule": "cosine"}
    assert training_settings(Quick(), lr=1e-4)["lr"] == 1e-4
    assert training_settings(object(), schedule=None)["schedule"] == "none"
