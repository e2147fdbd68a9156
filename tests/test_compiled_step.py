"""The compiled training step (relightzoo.train.compiled_step): it trains like the plain step up
to float32 rounding, a resumed compiled run repeats the uninterrupted one exactly, a step that
cannot compile warns once and trains exactly as plain, and the switch names its kernels."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.data import load_dataset
from relightzoo.errors import TrainingError
from relightzoo.train import create_optimizer, train, train_step
from relightzoo.train import compiled_step
from relightzoo.train.compiled_step import STEP_KERNELS, set_step_kernel, step_kernel
from relightzoo.zoo import create_model, model_spec

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"hidden_features": 16, "hidden_layers": 2}


@pytest.fixture
def kernel():
    """Set the step kernel for one test, restoring the previous one afterwards."""
    previous = step_kernel()
    yield set_step_kernel
    set_step_kernel(previous)


def _batch(n: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    pixels = torch.rand(n, 2, generator=gen) * 2 - 1
    lights = torch.nn.functional.normalize(torch.rand(n, 3, generator=gen) + 0.1, dim=-1)
    return pixels, lights, torch.rand(n, 3, generator=gen)


def _steps(activation: str, name: str, steps: int = 3) -> tuple[list[float], list[torch.Tensor], str, list[str]]:
    """``steps`` Adam steps of a small siren on one batch with step kernel ``name``: the losses,
    the final parameters, the kernel in force afterwards and the warnings raised."""
    previous = set_step_kernel(name)
    try:
        torch.manual_seed(0)
        model = create_model("siren", activation=activation, **TINY)
        opt = create_optimizer(model, lr=1e-3)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            losses = [float(train_step(model, opt, *(t.clone() for t in _batch()))) for _ in range(steps)]
        return losses, [p.detach().clone() for p in model.parameters()], step_kernel(), [str(w.message) for w in caught]
    finally:
        set_step_kernel(previous)


@pytest.mark.parametrize("activation", ["sine", "cosine", "relu"])
def test_compiled_step_trains_like_the_plain_one(activation: str) -> None:
    losses, params, used, caught = _steps(activation, "plain")
    assert used == "plain" and not [w for w in caught if "compiled training step" in w]
    assert losses[-1] < losses[0]  # it learns the batch
    c_losses, c_params, c_used, c_caught = _steps(activation, "compiled")
    fell_back = [w for w in c_caught if "compiled training step failed" in w]
    if c_used == "compiled":  # it compiled: the same training up to float32 rounding
        assert not fell_back
        assert c_losses == pytest.approx(losses, rel=1e-5)
        for a, b in zip(c_params, params):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    else:  # no compiler here: one warning, then exactly the plain step
        assert c_used == "plain" and len(fell_back) == 1
        assert c_losses == losses and all(torch.equal(a, b) for a, b in zip(c_params, params))


def test_a_step_that_cannot_compile_warns_once_and_trains_exactly_as_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    losses, params, _, _ = _steps("sine", "plain")

    def broken(model, inputs, target):  # fails in backward, after the forward has run
        out = torch.nn.functional.mse_loss(model(*inputs), target)

        def refuse(grad):
            raise RuntimeError("C++ compile error\nsecond line")

        out.register_hook(refuse)
        return out

    monkeypatch.setattr(compiled_step, "_compiled_mse", lambda: broken)
    c_losses, c_params, used, caught = _steps("sine", "compiled")
    failed = [w for w in caught if "compiled training step failed" in w]
    assert used == "plain" and len(failed) == 1 and "RuntimeError: C++ compile error" in failed[0]
    assert "second line" not in failed[0]
    assert c_losses == losses and all(torch.equal(a, b) for a, b in zip(c_params, params))


def test_a_resumed_compiled_run_repeats_the_uninterrupted_one(tmp_path: Path, kernel) -> None:
    kernel("compiled")
    data = load_dataset(make_olat_folder(tmp_path / "data", n_lights=12, height=10, width=10))
    spec = model_spec("siren", activation="sine", **TINY)  # the model and batch of the test above: one compiled graph
    opts = dict(batch_size=256, lr=1e-3, schedule="none", seed=0, device="cpu", log_every=3, progress=False,
                checkpoint_every=3)
    straight = train(data, "xu5:0.77", spec, steps=6, out_dir=tmp_path / "straight", **opts)
    train(data, "xu5:0.77", spec, steps=3, out_dir=tmp_path / "split", **opts)
    rest = train(data, "xu5:0.77", spec, steps=6, out_dir=tmp_path / "split", resume=True, **opts)
    assert rest.resumed_from == 3
    a, b = straight.model.state_dict(), rest.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert straight.history[-1]["step"] == rest.history[-1]["step"] == 6
    assert straight.history[-1]["loss"] == rest.history[-1]["loss"]


def test_the_switch_names_its_kernels(kernel) -> None:
    assert STEP_KERNELS == ("plain", "compiled")
    assert kernel("compiled") in STEP_KERNELS and step_kernel() == "compiled"
    with pytest.raises(TrainingError, match="unknown step kernel 'fused'; choose one of plain, compiled"):
        set_step_kernel("fused")
    assert step_kernel() == "compiled"
    res = CliRunner().invoke(main, ["bench", "--step", "plain,fused", "--batch-size", "8", "--size", "4"])
    assert res.exit_code == 2 and "choose from plain, compiled" in res.output


def test_bench_measures_and_names_the_compiled_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bench's plumbing: a cell per step kernel, named in the JSON and the table, the
    kernel restored afterwards (the compiled graph itself is replaced by its eager function
    here: compiling is what the tests above check, and it costs seconds)."""
    from relightzoo.bench.report import variant_label
    from relightzoo.bench.suite import BenchSettings, run_bench

    used = []
    monkeypatch.setattr(compiled_step, "_compiled_mse", lambda: (used.append(step_kernel()), compiled_step._mse)[1])
    before = step_kernel()
    settings = BenchSettings(activations=["sine", "relu"], batch_size=32, size=4, repeats=1, warmup=0, hidden_layers=1,
                             hidden_features=8, device="cpu", step=["plain", "compiled"], sincos=["poly", "torch"])
    cells = run_bench(settings)["cells"]
    assert [(c["activation"], c["kernel"], c["step"], c["sincos"], c["step_fell_back"]) for c in cells] == [
        ("sine", "numpy", "plain", "poly", False), ("sine", "numpy", "compiled", "poly", False),
        ("sine", "numpy", "compiled", "torch", False),  # the sin/cos kernels only where they apply
        ("relu", "plain", "plain", "poly", False), ("relu", "plain", "compiled", "poly", False),
    ]
    assert used and set(used) == {"compiled"}  # only the compiled cells went through the compiled function
    for cell in cells:
        assert cell["train"]["vs_roofline"] > 0 and cell["train"]["samples_per_s"]["ours"] > 0
    assert [variant_label(c) for c in cells] == [
        " (numpy sin/cos)", " (compiled step, poly sin/cos)", " (compiled step, torch sin/cos)", "", " (compiled step)",
    ]
    assert variant_label(dict(cells[1], step_fell_back=True)) == " (numpy sin/cos, compiled step -> plain: did not compile)"
    assert step_kernel() == before  # the bench restores the kernel it found
