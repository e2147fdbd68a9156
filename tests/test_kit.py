"""The conformance kit (relightzoo.testing): every registered plugin passes it, and a plugin
broken on purpose fails exactly the check named for what is broken."""

from __future__ import annotations

import json
import math
import pickle

import pytest
import torch
from click.testing import CliRunner

from relightzoo.cli import main
from relightzoo.errors import PluginError
from relightzoo.testing import CHECKS, PluginCheckError, assert_plugin_passes, check_plugin, kit_scene
from relightzoo.zoo import RelightModel, hookimpl, list_plugins

pytestmark = pytest.mark.usefixtures("one_thread")

NEEDS = "needs what check"


# -- every registered plugin ------------------------------------------------------------------


@pytest.mark.parametrize("kind,name", [(i.kind, i.name) for i in list_plugins()], ids=lambda v: str(v))
def test_every_registered_plugin_passes_the_kit(kind, name):
    results = assert_plugin_passes(kind, name)
    assert [r.check for r in results] == list(CHECKS[kind])


def test_the_kit_scene_is_a_crop_of_the_demo_scene():
    from relightzoo.data import load_dataset

    scene, split = kit_scene()
    demo = load_dataset("demo")
    assert (len(scene), scene.height, scene.width) == (16, 24, 24) and len(split.train) == 10
    i = demo.names.index(scene.names[3])
    torch.testing.assert_close(scene.images([3])[0], demo.images([i])[0, 20:44, 20:44], rtol=0, atol=0)


# -- a plugin broken on purpose, one per check ----------------------------------------------------


class Linear(RelightModel):
    """A correct closed-form model the broken ones start from: per pixel and channel,
    ``rgb = c0 + c . light``, least squares over the training images; unclamped
    one-pass environment maps."""

    trainable = False
    needs_images = True
    data_shaped_buffers = ("coeffs",)

    def __init__(self, ridge: float = 1e-3) -> None:
        super().__init__()
        if not math.isfinite(ridge) or ridge < 0:
            raise PluginError(f"ridge must be a finite number >= 0, got {ridge}")
        self.ridge = ridge
        self.register_buffer("coeffs", torch.zeros(4, 0, 0, 3))

    @staticmethod
    def basis(lights: torch.Tensor) -> torch.Tensor:
        lights = torch.as_tensor(lights, dtype=torch.float32).reshape(-1, 3)
        return torch.cat([torch.ones(len(lights), 1), lights], -1)

    def attach_training_data(self, images, lights):
        if images.dim() != 4 or images.shape[-1] != 3:
            raise PluginError(f"images must be [T, H, W, 3], got {list(images.shape)}")
        t, h, w, _ = images.shape
        a = self.basis(lights).double()
        x = torch.linalg.solve(a.T @ a + self.ridge * torch.eye(4, dtype=a.dtype), a.T @ images.reshape(t, -1).double())
        self.coeffs = x.reshape(4, h, w, 3).float()

    def linear(self, lights, height, width):
        img = torch.einsum("lk,khwc->lhwc", self.basis(lights), self.coeffs)
        if img.shape[1:3] != (height, width):
            img = torch.nn.functional.interpolate(img.permute(0, 3, 1, 2), size=(height, width), mode="bilinear").permute(0, 2, 3, 1)
        return img

    def render(self, lights, height, width, *, chunk=None):
        return self.linear(lights, height, width).clamp(0.0, 1.0)

    def relight_envmap(self, dirs, weights, height, width):
        return torch.einsum("khwc,kc->hwc", self.linear(dirs, height, width), torch.as_tensor(weights, dtype=torch.float32))


class NotAModel(torch.nn.Module):
    def __init__(self, ridge: float = 1e-3) -> None:
        super().__init__()


_builds = {"count": 0}


class ShapeOfSecondBuild(Linear):
    """Its second construction in a process differs from the others (not deterministic)."""

    def __init__(self, ridge: float = 1e-3) -> None:
        super().__init__(ridge)
        _builds["count"] += 1
        self.register_buffer("extra", torch.zeros(2 if _builds["count"] == 2 else 1))


class NanDefault(Linear):
    def __init__(self, ridge: float = float("nan")) -> None:
        RelightModel.__init__(self)
        self.ridge = 1e-3
        self.register_buffer("coeffs", torch.zeros(4, 0, 0, 3))


class Unfeedable(Linear):
    trainable = True  # but neither a coordinate model nor drawing its own batches


class BatchDependent(Linear):
    relight_envmap = None

    def render(self, lights, height, width, *, chunk=None):
        out = super().render(lights, height, width)
        return out if len(out) == 1 else out * 0.5


class FixedSize(Linear):
    def render(self, lights, height, width, *, chunk=None):
        return self.linear(lights, self.coeffs.shape[1], self.coeffs.shape[2]).clamp(0, 1)


class ChunkDropsRows(Linear):
    def render(self, lights, height, width, *, chunk=None):
        out = super().render(lights, height, width)
        if chunk is not None:
            out[:, -1] = 0.0  # "forgets" the last partial chunk
        return out


class StateOutsideTheStateDict(Linear):
    def attach_training_data(self, images, lights):
        super().attach_training_data(images, lights)
        self.gain = float(images.mean()) + 0.5  # a plain attribute: not saved

    def render(self, lights, height, width, *, chunk=None):
        return (self.linear(lights, height, width) * getattr(self, "gain", 1.0)).clamp(0, 1)

    def relight_envmap(self, dirs, weights, height, width):
        return super().relight_envmap(dirs, weights, height, width) * getattr(self, "gain", 1.0)


class ScaledEnvmap(Linear):
    def relight_envmap(self, dirs, weights, height, width):
        return super().relight_envmap(dirs, weights, height, width) / math.pi  # applies the caller's scaling


class CrashesOnZeroRidge(Linear):
    def __init__(self, ridge: float = 1e-3) -> None:
        RelightModel.__init__(self)
        self.strength = 1.0 / ridge  # ZeroDivisionError for ridge=0, not a PluginError
        self.ridge = ridge
        self.register_buffer("coeffs", torch.zeros(4, 0, 0, 3))


class PickledBlob(Linear):
    def attach_training_data(self, images, lights):
        super().attach_training_data(images, lights)
        blob = pickle.dumps({"fitted_with": len(lights)})
        self.blob = torch.frombuffer(bytearray(blob), dtype=torch.uint8).clone()

    def __init__(self, ridge: float = 1e-3) -> None:
        super().__init__(ridge)
        self.register_buffer("blob", torch.zeros(0, dtype=torch.uint8))

    data_shaped_buffers = ("coeffs", "blob")


BROKEN = {
    "builds_from_defaults": NotAModel,
    "builds_from_spec": ShapeOfSecondBuild,
    "spec_round_trip": NanDefault,
    "fits_a_small_scene": Unfeedable,
    "renders_the_contract": BatchDependent,
    "renders_at_another_size": FixedSize,
    "renders_in_chunks": ChunkDropsRows,
    "reloads_in_a_fresh_process": StateOutsideTheStateDict,
    "envmap_equals_sum_of_renders": ScaledEnvmap,
    "rejects_bad_arguments": CrashesOnZeroRidge,
    "no_pickle_in_the_checkpoint": PickledBlob,
}


class KitTestPlugins:
    """Registers the correct model and every broken one (module level, so that the kit's
    reloading process can import them by name)."""

    @hookimpl
    def register_models(self, register):
        register("kit-linear", Linear, "a correct closed-form model")
        for check, factory in BROKEN.items():
            register(f"broken-{check.replace('_', '-')}", factory, f"fails {check}")


@pytest.fixture
def kit_plugins(register_plugin):
    return register_plugin(KitTestPlugins(), "kit-test")


def test_every_check_has_a_plugin_broken_for_it():
    assert set(BROKEN) == set(CHECKS["model"])


def test_a_correct_plugin_passes_every_check(kit_plugins):
    results = {r.check: r for r in check_plugin("model", "kit-linear")}
    assert all(r.passed for r in results.values()), {c: r.message for c, r in results.items() if not r.passed}
    assert results["envmap_equals_sum_of_renders"].message == ""  # offered, and compared


@pytest.mark.parametrize("check", list(CHECKS["model"]))
def test_a_plugin_broken_on_purpose_fails_exactly_its_check(kit_plugins, check):
    results = list(check_plugin("model", f"broken-{check.replace('_', '-')}"))
    failed = [r for r in results if not r.passed]
    assert failed and failed[0].check == check, [(r.check, r.message) for r in failed]
    own = [r.check for r in failed if not r.message.startswith(NEEDS)]
    if check == "builds_from_defaults":  # nothing else can be built either
        assert own[0] == check
    else:
        assert own == [check], [(r.check, r.message) for r in failed]


def test_failure_messages_say_what_is_wrong(kit_plugins):
    def message(check):
        (result,) = [r for r in check_plugin("model", f"broken-{check.replace('_', '-')}", checks=[check])]
        return result.message

    assert "not a RelightModel" in message("builds_from_defaults")
    assert "renders differently alone than in a batch" in message("renders_the_contract")
    assert "expected [1, 31, 19, 3]" in message("renders_at_another_size")
    assert "must not scale by exposure or clamp" in message("envmap_equals_sum_of_renders")
    assert "ridge=0.0 raised ZeroDivisionError instead of a PluginError" in message("rejects_bad_arguments")
    assert "holds a pickle" in message("no_pickle_in_the_checkpoint")
    assert "renders differently" in message("reloads_in_a_fresh_process")


def test_assert_plugin_passes_names_the_failed_checks(kit_plugins):
    with pytest.raises(PluginCheckError, match=r"model 'broken-renders-in-chunks' failed renders_in_chunks: rendering with chunk=37"):
        assert_plugin_passes("model", "broken-renders-in-chunks")


def test_the_cli_prints_each_check_and_exits_1_on_a_failure(kit_plugins):
    res = CliRunner().invoke(main, ["plugins", "check", "kit-linear"])
    assert res.exit_code == 0, res.output
    for check in CHECKS["model"]:
        assert f"PASS  {check}" in res.output
    assert "model 'kit-linear': 11 checks, all passed" in res.output
    res = CliRunner().invoke(main, ["plugins", "check", "broken-renders-at-another-size"])
    assert res.exit_code == 1
    assert "FAIL renders_at_another_size: render of 1 lights at 31x19 returned shape" in " ".join(res.output.split())
    assert "1 failed (renders_at_another_size)" in res.output
    res = CliRunner().invoke(main, ["plugins", "check", "kit-linear", "--check", "spec_round_trip", "--json"])
    assert res.exit_code == 0
    assert [(r["check"], r["passed"]) for r in json.loads(res.stdout)] == [("spec_round_trip", True)]
    res = CliRunner().invoke(main, ["plugins", "check", "kit-lnear"])
    assert res.exit_code == 1 and "no plugin is called 'kit-lnear'; did you mean 'kit-linear' (model)?" in res.output
    res = CliRunner().invoke(main, ["plugins", "check", "kit-linear", "--check", "flies"])
    assert res.exit_code == 1 and "unknown check 'flies' for a model" in res.output
