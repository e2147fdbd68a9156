"""Environment maps: load them, reduce them to directional lights, relight a model under them.

Light transport is linear, so a scene under an environment map is an integral of the scene's
one-light images over the sphere of directions. A relighting model renders those one-light
images, and this module turns the integral into a weighted sum of ``K`` renders.

Files. :func:`load_envmap` reads PNG/JPEG (taken as sRGB and linearised), Radiance ``.hdr``
(RGBE, flat or run-length encoded scanlines) and ``.npy`` float arrays, always as linear
radiance ``[H, W, 3]`` float32 (the ``.hdr`` codec is :mod:`relightzoo.data.hdr`, the sRGB
curve :mod:`relightzoo.util.images`; :func:`write_hdr`, :func:`srgb_to_linear` and
:func:`linear_to_srgb` are importable from here too).

Equirectangular convention (latitude-longitude, the same axes as :mod:`relightzoo.lights`):
z is up, a direction's polar angle is ``phi = arccos z`` and its azimuth
``theta = atan2(y, x)``. Row ``i`` of an ``H x W`` map covers polar angles
``[i, i + 1] * pi / H``: the top row looks at the zenith (+z), the middle of the map is the
horizon, the bottom row the nadir (-z). Column ``j`` covers azimuths
``-pi + [j, j + 1] * 2 pi / W``: azimuth increases from -pi at the left edge through 0
(the +x axis, the map's centre column) to +pi at the right edge; +y is a quarter of the way
from the centre to the right edge. A map must be exactly twice as wide as it is tall.

Lights come from above: the models learn directions on the upper hemisphere, so texels below
the horizon (the bottom half of the map, ground bounce) are ignored.

Why one module of over 400 lines: the map's convention (rows, columns, solid angles) is
shared by loading checks, the reduction to lights and the weighted render, and a change to
it must change all three together; the ``.hdr`` codec lives in :mod:`relightzoo.data.hdr`.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .console import make_progress
from .errors import DataError
from .data.hdr import read_hdr, write_hdr
from .lights import fibonacci_hemisphere
from .util.devices import device_of
from .util.images import linear_to_srgb, srgb_to_linear
from .zoo.api import DEFAULT_RENDER_CHUNK
from .zoo.capabilities import capabilities, render_model

__all__ = [
    "ENVMAP_EXTENSIONS",
    "DEFAULT_ENVMAP_K",
    "load_envmap",
    "write_hdr",
    "srgb_to_linear",
    "linear_to_srgb",
    "envmap_directions",
    "texel_solid_angles",
    "envmap_to_lights",
    "relight_envmap",
    "EnvironmentLighting",
]

ENVMAP_EXTENSIONS = (".hdr", ".pic", ".png", ".jpg", ".jpeg", ".npy")
"""File extensions (lower case) :func:`load_envmap` reads."""

DEFAULT_ENVMAP_K = 64
"""Directional lights an environment map is reduced to unless the caller asks for another K."""

_ASSIGN_BLOCK = 1 << 22
"""Texel x cell dot products computed at once when texels are assigned to cells (16 MB)."""


# --------------------------------------------------------------------------------------------
# reading and writing


def load_envmap(path: str | Path) -> np.ndarray:
    """Read an equirectangular environment map as linear radiance ``[H, W, 3]`` float32.

    PNG and JPEG (8 or 16 bit) are sRGB-encoded and are linearised with the sRGB EOTF;
    Radiance ``.hdr``/``.pic`` files and ``.npy`` arrays (``[H, W, 3]`` or gray ``[H, W]``)
    already hold linear radiance. The ``EXPOSURE`` line of an ``.hdr`` header is ignored, as
    most readers do. Raises :class:`DataError` with one line when the file is missing, cannot
    be read, is empty, holds negative or non-finite values, or is not twice as wide as tall.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"environment map {path} not found")
    if path.is_dir():
        raise DataError(f"environment map {path} is a folder; give an image file")
    suffix = path.suffix.lower()
    if suffix in (".hdr", ".pic"):
        env = read_hdr(path)
    elif suffix in (".png", ".jpg", ".jpeg"):
        env = _read_srgb_image(path)
    elif suffix == ".npy":
        env = _read_npy(path)
    else:
        raise DataError(
            f"environment map {path.name}: unsupported file type {suffix or '(none)'!r}; "
            f"use {', '.join(ENVMAP_EXTENSIONS)}"
        )
    return _check_envmap(env, path.name)


def _check_envmap(env: np.ndarray, name: str) -> np.ndarray:
    """Validate a radiance array (shape, 2:1, finite, non-negative) and return it as float32."""
    env = np.asarray(env)
    if env.ndim == 2:
        env = np.repeat(env[..., None], 3, axis=-1)
    if env.ndim == 3 and env.shape[-1] == 1:
        env = np.repeat(env, 3, axis=-1)
    if env.ndim != 3 or env.shape[-1] != 3:
        raise DataError(f"environment map {name}: expected an RGB image [H, W, 3], got shape {list(env.shape)}")
    h, w = env.shape[:2]
    if h == 0 or w == 0:
        raise DataError(f"environment map {name} is empty ({w} x {h} texels)")
    if w != 2 * h:
        raise DataError(
            f"environment map {name} is {w} x {h} (width x height); an equirectangular map must be "
            f"exactly twice as wide as it is tall, e.g. {2 * h} x {h}"
        )
    env = env.astype(np.float32, copy=False)
    if not np.isfinite(env).all():
        raise DataError(f"environment map {name} holds NaN or infinite values")
    if (env < 0).any():
        raise DataError(f"environment map {name} holds negative radiance (min {float(env.min()):.4g})")
    return env


def _read_srgb_image(path: Path) -> np.ndarray:
    from .data.images import read_image, to_float  # the data layer's PNG/JPEG reader (8 and 16 bit)

    try:
        img = read_image(path)
    except DataError:
        raise DataError(
            f"cannot read environment map {path.name}: not a valid PNG/JPEG image (truncated or corrupt?)"
        ) from None
    return srgb_to_linear(to_float(img))


def _read_npy(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise DataError(f"cannot read environment map {path.name}: {exc.strerror or exc}") from None
    if magic != b"\x93NUMPY":
        raise DataError(f"cannot read environment map {path.name}: not a .npy array file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read environment map {path.name}: {reason}") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "fiu":
        raise DataError(f"cannot read environment map {path.name}: expected a numeric array, got {getattr(arr, 'dtype', type(arr))}")
    return arr


# --------------------------------------------------------------------------------------------
# geometry


def _row_polar_edges(h: int) -> np.ndarray:
    return np.arange(h + 1, dtype=np.float64) * (math.pi / h)


def envmap_directions(h: int, w: int) -> np.ndarray:
    """Unit vectors ``[h, w, 3]`` (float64) toward the centre of each texel of an ``h x w`` map.

    Texel ``(i, j)`` has polar angle ``(i + 0.5) * pi / h`` and azimuth
    ``-pi + (j + 0.5) * 2 pi / w`` (see the module docstring for the convention).
    """
    phi = (np.arange(h, dtype=np.float64) + 0.5) * (math.pi / h)
    theta = -math.pi + (np.arange(w, dtype=np.float64) + 0.5) * (2 * math.pi / w)
    sp = np.sin(phi)[:, None]
    return np.stack(
        [sp * np.cos(theta)[None, :], sp * np.sin(theta)[None, :], np.broadcast_to(np.cos(phi)[:, None], (h, w))], -1
    )


def texel_solid_angles(h: int, w: int) -> np.ndarray:
    """Solid angle ``[h, w]`` (steradians, float64) each texel covers; they sum to 4 pi.

    The exact integral of ``sin(phi) dphi dtheta`` over the texel:
    ``(2 pi / w) * (cos phi_top - cos phi_bottom)``, the same for every texel of a row.
    """
    edges = np.cos(_row_polar_edges(h))
    row = (edges[:-1] - edges[1:]) * (2 * math.pi / w)
    return np.broadcast_to(row[:, None], (h, w)).copy()


def _upper_solid_angles(h: int, w: int) -> np.ndarray:
    """Per-row solid angle ``[h]`` of each texel's part above the horizon (a row crossing it counts half)."""
    edges = np.cos(np.minimum(_row_polar_edges(h), math.pi / 2))
    return (edges[:-1] - edges[1:]) * (2 * math.pi / w)


# --------------------------------------------------------------------------------------------
# reduction to directional lights


def envmap_to_lights(envmap: np.ndarray, k: int = DEFAULT_ENVMAP_K) -> tuple[np.ndarray, np.ndarray]:
    """Reduce the upper hemisphere of a map to at most ``k`` directional lights.

    The upper-hemisphere texels are split into ``k`` cells, each texel going to the nearest of
    :func:`relightzoo.lights.fibonacci_hemisphere` ``(k)``. A cell becomes one light:

    - its weight (per RGB channel) is the sum over its texels of radiance x solid angle, so the
      weights integrate the map: a constant map of radiance ``c`` gives weights summing to
      ``2 pi c``;
    - its direction is the mean of its texels' directions weighted by radiance (the channel
      sum) x solid angle, normalised, so a single bright texel becomes exactly one light in
      that texel's direction and a sun keeps its position instead of snapping to a cell centre.

    Cells with no light (all texels black) are dropped, so fewer than ``k`` lights may come
    back. Texels below the horizon are ignored: the models learn lights from above only.

    Returns ``(dirs [k', 3], weights [k', 3])`` as float64 arrays, in cell order.
    """
    env = _check_envmap(envmap, "array")
    k = int(k)
    if k < 1:
        raise DataError(f"an environment map needs at least 1 light (K), got {k}")
    h, w = env.shape[:2]
    omega_rows = _upper_solid_angles(h, w)
    rows = np.flatnonzero(omega_rows > 0)
    dirs = envmap_directions(h, w)[rows].reshape(-1, 3)
    omega = np.repeat(omega_rows[rows], w)
    flux = env[rows].reshape(-1, 3).astype(np.float64) * omega[:, None]  # radiance x solid angle
    strength = flux.sum(axis=1)
    lit = strength > 0
    dirs, flux, strength = dirs[lit], flux[lit], strength[lit]

    centres = fibonacci_hemisphere(k).astype(np.float32)
    cells = np.empty(len(dirs), dtype=np.int64)
    block = max(1, _ASSIGN_BLOCK // k)
    dirs32 = dirs.astype(np.float32)
    for s in range(0, len(dirs), block):
        cells[s : s + block] = np.argmax(dirs32[s : s + block] @ centres.T, axis=1)

    weights = np.stack([np.bincount(cells, weights=flux[:, c], minlength=k) for c in range(3)], -1)
    mean_dir = np.stack([np.bincount(cells, weights=dirs[:, c] * strength, minlength=k) for c in range(3)], -1)
    keep = weights.sum(axis=1) > 0
    norms = np.linalg.norm(mean_dir, axis=1, keepdims=True)
    # A cell whose texels' directions cancel out (impossible for cells this small) falls back to its centre.
    fallback = keep & (norms[:, 0] < 1e-12)
    mean_dir[fallback] = centres[fallback]
    norms[fallback] = 1.0
    out_dirs = mean_dir[keep] / norms[keep]
    return out_dirs, weights[keep]


# --------------------------------------------------------------------------------------------
# relighting


def relight_envmap(
    model: Any,
    envmap: np.ndarray | str | Path,
    *,
    k: int = DEFAULT_ENVMAP_K,
    height: int,
    width: int,
    exposure: float | str = 1.0,
    chunk_lights: int = 8,
    decode_srgb: bool = False,
    render_chunk: int | None = None,
    progress: bool = True,
) -> tuple[np.ndarray, dict]:
    """Render ``model`` under an environment map (an array from :func:`load_envmap` or a path).

    The map is reduced to ``k' <= k`` lights by :func:`envmap_to_lights` and the image is::

        image = exposure / pi * sum_i weights[i] * model.render(dirs[i])

    with ``weights[i]`` the radiance x solid angle (per RGB channel) of light ``i``'s cell.
    The factor ``1 / pi`` reads a model's one-light render as the scene under a light of the
    same irradiance as a uniform sky of radiance 1 (which delivers irradiance pi to a surface
    facing up). So a white map of value 1 lights a surface facing up exactly as brightly as
    the overhead light does (a Lambertian pixel keeps its albedo; the whole image is twice the
    hemisphere average of the renders). For any map, a surface facing up shows its albedo
    times the cosine-weighted mean radiance of the sky: an 8-bit sky photo (linearised
    values at most 1) never overexposes and comes out darker than the captures in proportion
    to how dark the sky is, while HDR maps with a sun give values far above 1 (``info``
    reports the clipped fraction).

    ``exposure="auto"`` picks ``exposure = pi / E`` with ``E = sum_i lum(weights[i]) *
    max(0, dirs[i].z)`` the luminance of the irradiance the reduced lights deliver to a
    surface facing up, so that any map, LDR or HDR, lights that surface as brightly as the
    white sky of radiance 1 does, keeping the map's colour and direction (and a uniform white
    map of 1 gets exposure 1 up to the discretisation). ``info["exposure"]`` states the value
    used, to repeat it for another frame or map.

    Renders are summed ``chunk_lights`` lights at a time, so memory holds one chunk of images,
    never all ``k'``. A model that offers ``relight_envmap(dirs [k', 3], weights [k', 3],
    height, width) -> [H, W, 3]`` (the weighted sum, no scaling; e.g. a low-rank model) is
    asked for that instead. With ``decode_srgb`` the renders are taken to be sRGB-encoded:
    they are linearised before summing and the result is encoded back (the fast path is then
    not used, since it sums in the model's own encoding). ``render_chunk`` is passed on to
    ``model.render`` as its ``chunk`` (samples per forward pass) when given. Directions go to
    the device of the model's parameters; images come back to the CPU.

    Returns ``(image [H, W, 3] float32, info)``; ``info`` holds ``k_requested``, ``k_used``,
    ``total_weight`` (per channel), ``exposure`` (the number used), ``scale`` (exposure / pi), ``path``
    (``"model"`` or ``"sum"``), ``clipped_fraction`` (values above 1) and ``seconds``.
    """
    t0 = time.perf_counter()
    if isinstance(envmap, (str, Path)):
        envmap = load_envmap(envmap)
    else:
        envmap = _check_envmap(envmap, "array")
    height, width, chunk_lights = int(height), int(width), int(chunk_lights)
    if height < 1 or width < 1:
        raise DataError(f"output size must be positive, got {width} x {height}")
    _check_exposure(exposure)
    if chunk_lights < 1:
        raise DataError(f"chunk_lights must be at least 1, got {chunk_lights}")
    dirs, weights = envmap_to_lights(envmap, k)
    if len(dirs) == 0:
        raise DataError("the environment map is black above the horizon: there is no light to relight with")
    if exposure == "auto":
        irradiance = float((weights @ _LUMINANCE) @ np.maximum(dirs[:, 2], 0.0))
        if irradiance <= 0:
            raise DataError("exposure 'auto': the environment map sends no light onto a surface facing up; give a number")
        exposure = math.pi / irradiance
    scale = float(exposure) / math.pi
    d = torch.as_tensor(dirs, dtype=torch.float32)
    wt = torch.as_tensor(weights, dtype=torch.float32)
    device = device_of(model)
    fast = capabilities(model).relight_envmap
    if fast is not None and not decode_srgb:
        with torch.no_grad():
            total = torch.as_tensor(fast(d.to(device), wt.to(device), height, width)).detach().float().cpu()
        if tuple(total.shape) != (height, width, 3):
            raise TypeError(f"{type(model).__name__}.relight_envmap returned shape {list(total.shape)}, expected {[height, width, 3]}")
        path = "model"
    else:
        total = torch.zeros(height, width, 3, dtype=torch.float32)
        with make_progress(transient=True, disable=not progress) as bar:
            task = bar.add_task(f"environment map, {len(d)} lights", total=len(d))
            for s in range(0, len(d), chunk_lights):
                with torch.no_grad():
                    imgs = torch.as_tensor(render_model(model, d[s : s + chunk_lights].to(device), height, width, chunk=render_chunk))
                imgs = imgs.detach().float().cpu()
                if decode_srgb:
                    imgs = torch.from_numpy(srgb_to_linear(imgs.numpy()))
                total += torch.einsum("lhwc,lc->hwc", imgs, wt[s : s + chunk_lights])
                bar.advance(task, len(imgs))
        path = "sum"
    image = (total * scale).numpy().astype(np.float32)
    if decode_srgb:
        image = linear_to_srgb(image)
    info = {
        "k_requested": int(k),
        "k_used": int(len(d)),
        "total_weight": [float(v) for v in weights.sum(axis=0)],
        "exposure": float(exposure),
        "scale": scale,
        "path": path,
        "clipped_fraction": float((image > 1.0).mean()),
        "seconds": time.perf_counter() - t0,
    }
    return image, info


_LUMINANCE = np.array([0.2126, 0.7152, 0.0722])
"""Rec. 709 / sRGB luminance weights of linear R, G, B."""


def _check_exposure(exposure: float | str) -> None:
    if exposure == "auto":
        return
    try:
        ok = math.isfinite(float(exposure)) and float(exposure) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise DataError(f"exposure must be a positive number or 'auto', got {exposure!r}")


class EnvironmentLighting:
    """An environment map as a lighting source for :func:`relightzoo.relight.relight`.

    Follows the ``Lighting`` protocol of :mod:`relightzoo.relight`: ``render(model, height,
    width, *, chunk)`` returns one image ``[H, W, 3]`` in [0, 1] (clipped; the unclipped image
    comes from :func:`relight_envmap`). After a render, :attr:`info` holds what
    :func:`relight_envmap` reported (K requested and used, total weight, clipped fraction).
    """

    def __init__(
        self,
        envmap: np.ndarray | str | Path,
        *,
        k: int = DEFAULT_ENVMAP_K,
        exposure: float | str = 1.0,
        chunk_lights: int = 8,
        decode_srgb: bool = False,
        progress: bool = True,
    ) -> None:
        self.source = str(envmap) if isinstance(envmap, (str, Path)) else "array"
        self.envmap = load_envmap(envmap) if isinstance(envmap, (str, Path)) else _check_envmap(envmap, "array")
        self.k = int(k)
        if self.k < 1:
            raise DataError(f"an environment map needs at least 1 light (K), got {self.k}")
        _check_exposure(exposure)
        self.exposure = exposure if exposure == "auto" else float(exposure)
        self.chunk_lights = int(chunk_lights)
        self.decode_srgb = bool(decode_srgb)
        self.progress = bool(progress)
        self.info: dict = {}

    def render(self, model: Any, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor:
        """The clipped image ``[H, W, 3]`` float32 in [0, 1] on the CPU."""
        image, self.info = relight_envmap(
            model,
            self.envmap,
            k=self.k,
            height=height,
            width=width,
            exposure=self.exposure,
            chunk_lights=self.chunk_lights,
            decode_srgb=self.decode_srgb,
            render_chunk=chunk,
            progress=self.progress,
        )
        return torch.from_numpy(np.clip(image, 0.0, 1.0))

    def __repr__(self) -> str:
        h, w = self.envmap.shape[:2]
        return f"EnvironmentLighting({self.source!r}, {w}x{h}, k={self.k}, exposure={self.exposure})"
