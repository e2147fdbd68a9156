"""Image-quality metrics of the evaluation protocol: PSNR and SSIM.

Both take images in [0, 1], channels last, either one image ``[H, W, 3]`` or a batch
``[L, H, W, 3]``, and score each image on its own: a batch gives a vector ``[L]`` (one image
gives a 0-d tensor). They run in torch, vectorised over the batch, on whatever device the
images are on, so evaluation scores a batch of renders without a Python loop.

- PSNR in dB over all pixels and channels of an image: ``10 log10(1 / MSE)``. Identical
  images have an infinite PSNR; it is capped at :data:`PSNR_CAP` (100 dB) by default so that
  averages and JSON files stay finite (pass ``cap=None`` for ``inf``). 100 dB is far above
  anything a real render reaches: an error of one 16-bit level everywhere is about 96 dB.
- SSIM as Wang et al. (2004) define it: Gaussian window 11 x 11 with sigma 1.5, constants
  ``C1 = (0.01 L)^2`` and ``C2 = (0.03 L)^2`` with data range ``L = 1``, computed over the
  windows that fit inside the image ("valid" filtering, as the authors' reference code
  does), averaged over windows and then over the three channels.
"""

from __future__ import annotations

import math

import torch

__all__ = ["psnr", "psnr_from_mse", "ssim", "mse", "gaussian_window", "PSNR_CAP", "SSIM_WINDOW", "SSIM_SIGMA", "SSIM_K1", "SSIM_K2"]

PSNR_CAP = 100.0
"""PSNR (dB) reported for identical images, and the largest PSNR :func:`psnr` returns by default."""

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window, in pixels."""

SSIM_SIGMA = 1.5
"""Standard deviation of SSIM's Gaussian window, in pixels."""

SSIM_K1 = 0.01
SSIM_K2 = 0.03
"""SSIM's stabilising constants: ``C1 = (K1 * data_range)^2``, ``C2 = (K2 * data_range)^2``."""


def _as_batch(pred: torch.Tensor, target: torch.Tensor, what: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Check shapes and return float ``[L, H, W, C]`` batches plus whether the input was one image."""
    pred = torch.as_tensor(pred)
    target = torch.as_tensor(target)
    if pred.shape != target.shape:
        raise ValueError(f"{what}: prediction shape {list(pred.shape)} differs from target shape {list(target.shape)}")
    if pred.ndim not in (3, 4):
        raise ValueError(f"{what}: expected images [H, W, C] or [L, H, W, C], got shape {list(pred.shape)}")
    single = pred.ndim == 3
    if single:
        pred, target = pred[None], target[None]
    dtype = torch.promote_types(torch.promote_types(pred.dtype, target.dtype), torch.float32)
    if not dtype.is_floating_point:
        dtype = torch.float32
    return pred.to(dtype), target.to(device=pred.device, dtype=dtype), single


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image over its pixels and channels: ``[L]`` (or 0-d for one image)."""
    p, t, single = _as_batch(pred, target, "mse")
    err = (p - t).square().flatten(1).mean(1)
    return err[0] if single else err


def psnr(pred: torch.Tensor, target: torch.Tensor, *, cap: float | None = PSNR_CAP) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB of each image (data range 1): ``[L]`` or 0-d.

    Identical images score ``cap`` (default 100 dB) rather than infinity; ``cap=None``
    returns ``inf`` for them and leaves every other value uncapped.
    """
    err = mse(pred, target)
    with torch.no_grad():
        value = 10.0 * torch.log10(1.0 / err)  # inf where err == 0
    if cap is not None:
        value = value.clamp(max=cap)
    return value


def psnr_from_mse(mse: float) -> float:
    """PSNR in dB of images in [0, 1] from the MSE of the same images mapped to [-1, 1]
    (the training loss): ``10 log10(4 / mse)``; inf for 0, NaN for a negative or NaN input."""
    if not mse > 0:
        return math.inf if mse == 0 else math.nan
    return 10.0 * math.log10(4.0 / mse)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """A normalised 1-D Gaussian ``[size]``; SSIM's 2-D window is its outer product with itself."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2.0
    g = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    return g / g.sum()


def _band(n: int, g: torch.Tensor) -> torch.Tensor:
    """The ``[n - k + 1, n]`` matrix that applies the 1-D kernel ``g`` ("valid") along an axis of length ``n``."""
    k = len(g)
    rows = torch.arange(n - k + 1, device=g.device)[:, None]
    band = torch.zeros(n - k + 1, n, dtype=g.dtype, device=g.device)
    band[rows, rows + torch.arange(k, device=g.device)[None]] = g
    return band


def _filter(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable "valid" Gaussian filtering of maps ``[N, H, W]`` with the 1-D kernel ``g``.

    Done as two matrix products with banded matrices: on the CPU this is several times
    faster than ``conv2d`` with one input channel, which PyTorch runs poorly.
    """
    return _band(x.shape[-2], g) @ x @ _band(x.shape[-1], g).T


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    *,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
    data_range: float = 1.0,
) -> torch.Tensor:
    """Structural similarity of each image, channels averaged: ``[L]`` (or 0-d for one image).

    The Gaussian window is separable, so filtering is two 1-D passes (matrix products). Images smaller
    than the window in either side use the largest odd window that fits, with the same
    sigma, so tiny test images still get a score.
    """
    p, t, single = _as_batch(pred, target, "ssim")
    out_dtype = p.dtype
    # Local variances are differences of nearly equal means. Centring the values on the middle
    # of the range first (variances and covariances do not change, the means are shifted back)
    # keeps float32 within 1e-5 of a float64 computation on images in [0, 1] (tables show three
    # decimals), at a third of float64's time over a whole evaluation; float64 inputs stay float64.
    work = torch.float64 if p.dtype == torch.float64 else torch.float32
    shift = 0.5 * data_range
    p, t = p.to(work) - shift, t.to(work) - shift
    n, h, w, c = p.shape
    size = min(window, h, w)
    if size % 2 == 0:
        size -= 1
    if size < 1:
        raise ValueError(f"ssim: images of size {h} x {w} are too small")
    g = gaussian_window(size, sigma, dtype=p.dtype, device=p.device)
    # [L, H, W, C] -> [L * C, H, W]: every channel of every image filtered independently.
    x = p.permute(0, 3, 1, 2).reshape(n * c, h, w)
    y = t.permute(0, 3, 1, 2).reshape(n * c, h, w)
    stats = _filter(torch.stack([x, y, x * x, y * y, x * y], 1), g)  # [L * C, 5, h', w']
    mu_x, mu_y, e_xx, e_yy, e_xy = stats.unbind(1)
    var_x = e_xx - mu_x * mu_x
    var_y = e_yy - mu_y * mu_y
    cov = e_xy - mu_x * mu_y
    mu_x, mu_y = mu_x + shift, mu_y + shift
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2))
    per_channel = s.flatten(1).mean(1).reshape(n, c)
    value = per_channel.mean(1).to(out_dtype)
    return value[0] if single else value
