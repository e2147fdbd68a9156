"""PSNR and SSIM against known values and a slow, obviously correct reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from relightzoo.metrics import PSNR_CAP, gaussian_window, mse, psnr, ssim


def _reference_ssim(a: np.ndarray, b: np.ndarray, window: int = 11, sigma: float = 1.5) -> float:
    """SSIM of one [H, W, C] pair by a loop over every window position (Wang et al. 2004)."""
    x = np.arange(window) - (window - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    w2 = np.outer(g, g)
    w2 /= w2.sum()
    c1, c2 = 0.01**2, 0.03**2
    h, w, c = a.shape
    per_channel = []
    for ch in range(c):
        scores = []
        for i in range(h - window + 1):
            for j in range(w - window + 1):
                pa = a[i : i + window, j : j + window, ch]
                pb = b[i : i + window, j : j + window, ch]
                ma, mb = (w2 * pa).sum(), (w2 * pb).sum()
                va = (w2 * (pa - ma) ** 2).sum()
                vb = (w2 * (pb - mb) ** 2).sum()
                cov = (w2 * (pa - ma) * (pb - mb)).sum()
                scores.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
        per_channel.append(np.mean(scores))
    return float(np.mean(per_channel))


def _images(n=3, h=16, w=14, seed=0) -> torch.Tensor:
    return torch.rand(n, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_psnr_of_known_mse():
    target = torch.zeros(2, 8, 8, 3)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1] += 0.01  # MSE 1e-4 -> 40 dB
    got = psnr(pred, target)
    assert got.shape == (2,)
    assert got[0].item() == pytest.approx(20.0, abs=1e-4)
    assert got[1].item() == pytest.approx(40.0, abs=1e-3)
    assert mse(pred, target)[0].item() == pytest.approx(0.01, rel=1e-5)


def test_psnr_is_per_image_not_pooled():
    target = torch.zeros(2, 4, 4, 3)
    pred = target.clone()
    pred[0, 0, 0, 0] = 1.0  # one wrong channel of 48 -> MSE 1/48
    got = psnr(pred, target)
    assert got[0].item() == pytest.approx(10 * math.log10(48), abs=1e-4)
    assert got[1].item() == PSNR_CAP


def test_psnr_identical_images_are_capped_or_inf_on_request():
    img = _images(1)[0]
    assert psnr(img, img).item() == PSNR_CAP == 100.0
    assert psnr(img, img, cap=None).item() == math.inf
    assert psnr(img, img).ndim == 0  # one image -> a scalar


def test_ssim_of_identical_images_is_one():
    imgs = _images()
    got = ssim(imgs, imgs)
    assert got.shape == (3,)
    torch.testing.assert_close(got, torch.ones(3), atol=1e-6, rtol=0)


def test_ssim_drops_with_noise():
    gen = torch.Generator().manual_seed(1)
    # a smooth image, so structure is there to lose
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 32), indexing="ij")
    clean = torch.stack([xx, yy, (xx + yy) / 2], -1)
    scores = []
    for sigma in (0.01, 0.05, 0.2):
        noisy = (clean + sigma * torch.randn(clean.shape, generator=gen)).clamp(0, 1)
        scores.append(ssim(noisy, clean).item())
    assert 1.0 > scores[0] > scores[1] > scores[2] > 0.0


def test_ssim_matches_the_windowed_reference_on_random_images():
    a = _images(2, 15, 13, seed=2)
    b = (a + 0.2 * torch.randn(a.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    got = ssim(b, a)
    for i in range(2):
        ref = _reference_ssim(b[i].double().numpy(), a[i].double().numpy())
        assert got[i].item() == pytest.approx(ref, abs=1e-5)
    # and for independent random images (SSIM near zero, where errors would show most)
    c = _images(1, 12, 12, seed=4)[0]
    d = _images(1, 12, 12, seed=5)[0]
    assert ssim(c, d).item() == pytest.approx(_reference_ssim(c.double().numpy(), d.double().numpy()), abs=1e-5)


def test_ssim_is_symmetric_and_batched_like_single_calls():
    a, b = _images(seed=6), _images(seed=7)
    batched = ssim(a, b)
    torch.testing.assert_close(batched, ssim(b, a))
    for i in range(3):
        assert batched[i].item() == pytest.approx(ssim(a[i], b[i]).item(), abs=1e-6)


def test_ssim_on_images_smaller_than_the_window():
    a = _images(1, 6, 9, seed=8)
    assert ssim(a, a).item() == pytest.approx(1.0, abs=1e-6)
    b = (a + 0.1).clamp(0, 1)
    # a 5x5 window (largest odd size that fits 6 rows), checked against the reference
    assert ssim(b, a).item() == pytest.approx(_reference_ssim(b[0].double().numpy(), a[0].double().numpy(), window=5), abs=1e-5)


def test_gaussian_window_is_normalised_and_symmetric():
    g = gaussian_window()
    assert len(g) == 11
    assert g.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(g, g.flip(0))
    assert int(g.argmax()) == 5


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"prediction shape \[1, 4, 4, 3\] differs from target shape \[1, 4, 5, 3\]"):
        psnr(torch.zeros(1, 4, 4, 3), torch.zeros(1, 4, 5, 3))
    with pytest.raises(ValueError, match="expected images"):
        ssim(torch.zeros(4, 3), torch.zeros(4, 3))



def test_ssim_in_float32_matches_float64_on_the_demo_scene():
    """Evaluation scores float32 renders in float32 (a third of float64's time); on real
    images, dark and bright, the result stays within 1e-5 of the float64 computation (tables show three decimals)."""
    from relightzoo.data import load_dataset

    demo = load_dataset("demo")
    truth = demo.images(np.arange(0, 1000, 50))
    noisy = (truth + 0.03 * torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    single = ssim(noisy, truth)
    double = ssim(noisy.double(), truth.double())
    assert single.dtype == torch.float32 and double.dtype == torch.float64
    assert float((single.double() - double).abs().max()) < 1e-5
