"""Frame caches (relightzoo.zoo.frame_cache): a model that keeps light-independent work across
frames renders what its plain path renders, follows weight changes, stays within its memory
bound; and ``relightzoo bench --frames`` times models through the registry."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from relightzoo.bench.frames import frame_timings
from relightzoo.cli import main
from relightzoo.data.synthetic import lambertian_scene
from relightzoo.lights import hemisphere_pattern
from relightzoo.zoo import Encoder, create_model
from relightzoo.zoo.frame_cache import FrameCache, frame_cache, frame_cache_enabled

pytestmark = pytest.mark.usefixtures("one_thread")

LIGHTS = torch.nn.functional.normalize(torch.tensor([[0.3, 0.2, 0.93], [-0.5, 0.1, 0.86], [0.05, -0.7, 0.7]]), dim=-1)


@pytest.fixture(scope="module")
def capture() -> tuple[torch.Tensor, torch.Tensor]:
    lights = torch.as_tensor(hemisphere_pattern("fibonacci", 24), dtype=torch.float32)
    images = torch.as_tensor(lambertian_scene(lights.numpy(), 12, 16, 0), dtype=torch.float32)
    return images, lights


def _plain(model, lights, h, w):
    with frame_cache(False):
        return model.render(lights, h, w)


def _fitted(name: str, capture, **kwargs):
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    if getattr(model, "needs_images", False):
        model.attach_training_data(*capture)
    return model.eval()


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("ptm", {}),
        ("hsh", {}),
        ("rbf", {}),
        ("low-rank", {"pixel_basis": "network", "pixel_hidden_features": 16, "pixel_hidden_layers": 1}),
        ("low-rank", {"pixel_basis": "table"}),
        ("siren", {"encoder": "scaled-spherical", "activation": "sine", "hidden_features": 32}),
        ("siren", {"encoder": "fourier", "activation": "cosine", "hidden_features": 32}),
        ("siren", {"encoder": "direction", "activation": "relu", "hidden_features": 32}),
        ("siren", {"encoder": "raw", "activation": "gelu", "hidden_features": 32}),
    ],
)
def test_cached_frames_are_the_plain_renders(name: str, kwargs: dict, capture) -> None:
    model = _fitted(name, capture, **kwargs)
    for size in ((12, 16), (40, 30), (40, 30)):  # the training size, a new one, then from the cache
        cached = model.render(LIGHTS, *size)
        assert cached.is_contiguous() and cached.shape == (3, *size, 3)
        torch.testing.assert_close(cached, _plain(model, LIGHTS, *size), rtol=0, atol=2e-5)
    assert len(model._frames) >= 1  # the light-independent part was kept
    one = model.render(LIGHTS[1:2], 40, 30)  # a single frame from the cache = that light of the batch
    torch.testing.assert_close(one[0], cached[1], rtol=0, atol=2e-5)


def test_the_cache_follows_new_weights(capture) -> None:
    model = _fitted("siren", capture, hidden_features=32)
    before = model.render(LIGHTS, 20, 20)
    with torch.no_grad():
        model.net[0].weight.mul_(1.5)  # an in-place change, as an optimiser step makes
    after = model.render(LIGHTS, 20, 20)
    assert (after - before).abs().max() > 1e-2
    torch.testing.assert_close(after, _plain(model, LIGHTS, 20, 20), rtol=0, atol=2e-5)
    other = _fitted("siren", capture, hidden_features=32)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01)
    model.load_state_dict(other.state_dict())
    torch.testing.assert_close(model.render(LIGHTS, 20, 20), _plain(other, LIGHTS, 20, 20), rtol=0, atol=2e-5)
    ptm = _fitted("ptm", capture)
    first = ptm.render(LIGHTS, 20, 20)
    ptm.attach_training_data(capture[0].flip(1), capture[1])  # refit on other images
    torch.testing.assert_close(ptm.render(LIGHTS, 20, 20), _plain(ptm, LIGHTS, 20, 20), rtol=0, atol=2e-5)
    assert (ptm.render(LIGHTS, 20, 20) - first).abs().max() > 1e-2


class _Mixing(Encoder):
    """Features that mix pixel and light (not separable): the first layer cannot be split."""

    def __init__(self) -> None:
        super().__init__()
        self.out_features = 2

    def forward(self, pixels, lights):
        return pixels * lights[:, 2:3]


def test_models_without_a_separable_encoder_or_over_the_memory_bound_take_the_plain_path(
    capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    mixing = create_model("siren", encoder=_Mixing(), hidden_features=16).eval()
    mixing.render(LIGHTS, 10, 10)
    assert len(mixing._frames) == 0
    import relightzoo.builtins.siren as siren_module

    monkeypatch.setattr(siren_module, "FRAME_CACHE_BYTES", 10 * 10 * 16 * 4 - 1)
    model = _fitted("siren", capture, hidden_features=16)
    model.render(LIGHTS, 10, 10)
    assert len(model._frames) == 0
    model.render(LIGHTS, 9, 10)
    assert len(model._frames) == 1


def test_frame_cache_switch_and_lru() -> None:
    cache = FrameCache(maxsize=2)
    calls = []
    for key in ("a", "b", "a", "c", "b"):
        cache.get(key, lambda k=key: calls.append(k) or k)
    assert calls == ["a", "b", "c", "b"]  # "a" reused; "b" dropped when "c" came (least recently used)
    with frame_cache(False):
        assert not frame_cache_enabled()
        cache.get("c", lambda: calls.append("c!"))
    assert frame_cache_enabled() and calls[-1] == "c!"


def test_bench_frames_times_models_from_the_registry() -> None:
    doc = frame_timings(["ptm", "siren"], size=32, repeats=1, warmup=1)
    assert [r["name"] for r in doc["models"]] == ["ptm", "siren"]
    for r in doc["models"]:
        assert r["ms"] > 0 and r["plain_ms"] > 0 and r["cached"] and r["vs_plain"] > 0 and len(r["all_ms"]) == 1
        assert r["under_budget"] == (r["ms"] <= doc["budget_ms"])
    assert doc["under_budget"] == [r["name"] for r in doc["models"] if r["under_budget"]]
    res = CliRunner().invoke(main, ["bench", "--skip-grid", "--frames", "ptm,sirn", "--json"])
    assert res.exit_code == 1 and "sirn" in res.output and "siren" in res.output


def test_bench_frames_command_prints_the_table() -> None:
    res = CliRunner().invoke(main, ["bench", "--skip-grid", "--frames", "blend", "--size", "32", "--repeats", "1", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    assert [r["name"] for r in doc["frames"]["models"]] == ["blend"] and doc["frames"]["size"] == 32
    assert doc["frames"]["models"][0]["cached"] is False and doc["frames"]["models"][0]["vs_plain"] is None
