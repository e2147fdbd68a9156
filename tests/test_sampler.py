"""The (pixel, light) sampler: correct samples, only training lights, seeded, resumable,
and bounded memory."""

from __future__ import annotations

import re
import resource

import pytest
import torch

from conftest import make_olat_folder
from relightzoo.data import OLATDataset, PixelLightSampler, load_dataset
from relightzoo.errors import DataError
from relightzoo.lights import fibonacci_hemisphere


def _decode(ds: OLATDataset, pixels: torch.Tensor, lights: torch.Tensor):
    """Recover (light index, row, col) of each sample from its coordinates and direction."""
    h, w = ds.height, ds.width
    col = ((pixels[:, 0] + 1) * w / 2 - 0.5).round().long()
    row = ((pixels[:, 1] + 1) * h / 2 - 0.5).round().long()
    light = (lights @ ds.lights.T).argmax(1)
    return light, row, col


@pytest.mark.parametrize("bit_depth", [8, 16])
@pytest.mark.parametrize("train", [None, [40, 3, 17, 8]])
def test_samples_match_the_images(tmp_path, bit_depth, train):
    ds = load_dataset(make_olat_folder(tmp_path / "d", n_lights=48, height=12, width=20, bit_depth=bit_depth))
    sampler = PixelLightSampler(ds, train, 4096, seed=3)
    pixels, lights, rgb = sampler.sample()
    assert pixels.shape == (4096, 2) and lights.shape == (4096, 3) and rgb.shape == (4096, 3)
    assert pixels.dtype == lights.dtype == rgb.dtype == torch.float32
    assert float(pixels.abs().max()) < 1.0 and float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0
    light, row, col = _decode(ds, pixels, lights)
    # coordinates are exactly pixel centres and the directions exactly dataset lights
    torch.testing.assert_close(pixels[:, 0], (col.float() + 0.5) * (2 / 20) - 1)
    torch.testing.assert_close(pixels[:, 1], (row.float() + 0.5) * (2 / 12) - 1)
    torch.testing.assert_close(lights, ds.lights[light])
    torch.testing.assert_close(rgb, ds.images()[light, row, col], rtol=0, atol=1e-7)
    allowed = set(range(48)) if train is None else set(train)
    assert set(light.tolist()) == allowed  # every training light drawn, no other
    assert len(sampler) == len(allowed) * 12 * 20


def test_coverage_is_uniform(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    sampler = PixelLightSampler(ds, [0, 1], 20000, seed=0)
    light, row, col = _decode(ds, *sampler.sample()[:2])
    counts = torch.bincount(row * 16 + col, minlength=256).float()
    assert counts.min() > 0 and counts.std() / counts.mean() < 0.2  # Poisson: about 1/sqrt(39)
    assert abs(float((light == 0).float().mean()) - 0.5) < 0.02


def test_seeded_and_repeatable(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    a = PixelLightSampler(ds, range(0, 64, 3), 256, seed=11)
    b = PixelLightSampler(ds, range(0, 64, 3), 256, seed=11)
    c = PixelLightSampler(ds, range(0, 64, 3), 256, seed=12)
    for _ in range(3):
        xa, xb, xc = a.sample(), b.sample(), c.sample()
        for ta, tb in zip(xa, xb):
            assert torch.equal(ta, tb)
        assert not torch.equal(xa[0], xc[0])
    # the sampler's own generator: the global RNG stream is left untouched
    torch.manual_seed(0)
    expected_next = torch.rand(1)
    torch.manual_seed(0)
    PixelLightSampler(ds, range(0, 64, 3), 256, seed=11).sample()
    assert torch.equal(torch.rand(1), expected_next)


def test_resume_from_state_dict(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    first = PixelLightSampler(ds, [1, 5, 9], 512, seed=4)
    for _ in range(3):
        first.sample()
    state = first.state_dict()
    expected = [first.sample() for _ in range(2)]
    resumed = PixelLightSampler(ds, [1, 5, 9], 512, seed=999)
    resumed.load_state_dict(state)
    for want in expected:
        for t_want, t_got in zip(want, resumed.sample()):
            assert torch.equal(t_want, t_got)
    with pytest.raises(DataError, match="sampler state was saved with different training lights"):
        PixelLightSampler(ds, [1, 5], 512).load_state_dict(state)
    with pytest.raises(DataError, match="sampler state was saved with batch size 512, not 64"):
        PixelLightSampler(ds, [1, 5, 9], 64).load_state_dict(state)


def test_bad_arguments(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    with pytest.raises(DataError, match=re.escape("light index 64 is out of range for a dataset of 64 lights")):
        PixelLightSampler(ds, [0, 64], 8)
    with pytest.raises(DataError, match="at least one training light"):
        PixelLightSampler(ds, [], 8)
    with pytest.raises(DataError, match="batch size must be at least 1, got 0"):
        PixelLightSampler(ds, None, 0)


def _tensor_bytes(obj) -> dict[int, int]:
    """Bytes of each distinct storage among the tensors an object holds."""
    out = {}
    for v in vars(obj).values():
        if isinstance(v, torch.Tensor):
            out[v.untyped_storage().data_ptr()] = v.untyped_storage().nbytes()
    return out


def test_memory_holds_no_coordinates(tmp_path):
    ds = load_dataset(make_olat_folder(tmp_path / "m", n_lights=100, height=32, width=32))
    all_lights = PixelLightSampler(ds, None, 1024)
    # all lights on the same device: the dataset's own storage is used, not copied
    assert ds.pixels.untyped_storage().data_ptr() in _tensor_bytes(all_lights)
    own = {k: v for k, v in _tensor_bytes(all_lights).items() if k != ds.pixels.untyped_storage().data_ptr()}
    assert sum(own.values()) < 100 * 3 * 4 + 100 * 8 + 64  # the lights and indices, nothing per pixel
    some = PixelLightSampler(ds, range(0, 100, 2), 1024)
    own = {k: v for k, v in _tensor_bytes(some).items() if k != ds.pixels.untyped_storage().data_ptr()}
    assert sum(own.values()) < 100 * 3 * 4 + 100 * 8 + 64


def test_light_stage_sized_set_trains_without_materialising(tmp_path):
    """512 x 512 x 1000 lights: every coordinate would be 2 GiB as float32 (x, y) and 3 GiB
    more for the light directions; the sampler must use a few MB. The images here are a
    broadcast view, so the test itself costs no memory either."""
    base = torch.arange(512 * 512 * 3, dtype=torch.int32).remainder(251).to(torch.uint8).reshape(1, 512, 512, 3)
    ds = OLATDataset(base.expand(1000, 512, 512, 3), fibonacci_hemisphere(1000))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    sampler = PixelLightSampler(ds, range(0, 1000, 7), 8192, seed=1)
    for _ in range(5):
        pixels, lights, rgb = sampler.sample()
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    assert grown_mib < 200
    light, row, col = _decode(ds, pixels, lights)
    assert set(light.tolist()) <= set(range(0, 1000, 7))
    torch.testing.assert_close(rgb, base[0, row, col].float() / 255)
