"""Relight a scene: render a trained model under any lighting, at any output size.

The Python face of ``relightzoo relight``::

    from relightzoo.relight import load_model, relight, relight_to_file, save_image
    model, config = load_model("run/best.safetensors")
    img = relight(model, [0.36, 0.48, 0.8], 512, 512)   # float32 [H, W, 3] in [0, 1]
    save_image(img, "lit.png")                          # or bit_depth=16, srgb=True
    relight_to_file(model, [0, 0, 1], 4096, 4096, "big.png")  # banded: bounded memory

Lighting is described by a :class:`Lighting` object that knows how to render itself with a
model; a bare direction (any array-like of 3 numbers) is a :class:`DirectionalLight`. An
environment map is a weighted sum of directional lights (light transport is linear), so it
slots in as another :class:`Lighting`, and a transition is a sequence of lightings, without
changing :func:`relight`.

Any resolution. A coordinate model is rendered in bands of whole rows
(:data:`DEFAULT_BAND_PIXELS` pixels at a time), each band in chunks of ``chunk`` samples, so
the memory a render needs does not grow with the output beyond the output itself:
:func:`relight` fills one preallocated float32 ``[H, W, 3]`` tensor band by band, and
:func:`relight_to_file` quantises each band and streams it into the PNG file
(:mod:`relightzoo.util.imagefile`), so a 4096 x 4096 image never exists in memory as
floats (a JPEG holds the 8-bit image, 3 bytes a pixel).
:func:`check_output_size` refuses an output that would not fit before anything is allocated.

Colour encoding. The datasets' images are linear (renders of a linear light transport, and
what the models learn), so outputs are written as they are, linear, comparable pixel for
pixel with the captures. ``srgb=True`` (``relightzoo relight --srgb``) applies the sRGB
transfer curve for display instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .data.attach import attach_training_images
from .errors import LightsError, OutputError
from .lights import spherical_to_cartesian, validate_directions
from .util.callable_module import make_module_callable
from .util.devices import available_memory, device_of
from .util.imagefile import write_bands
from .util.images import max_value, quantize
from .util.sizes import parse_size
from .zoo.api import DEFAULT_RENDER_CHUNK, CoordinateModel
from .zoo.capabilities import capabilities, render_model

__all__ = [
    "OutputError",
    "Lighting",
    "DirectionalLight",
    "as_lighting",
    "relight",
    "relight_many",
    "relight_to_file",
    "iter_bands",
    "quantize",
    "load_model",
    "save_image",
    "check_output_size",
    "check_output_path",
    "parse_size",
    "direction_from_angles",
    "OUTPUT_BYTES_PER_PIXEL",
    "OUTPUT_EXTENSIONS",
    "DEFAULT_BAND_PIXELS",
]

OUTPUT_BYTES_PER_PIXEL = 12
"""Bytes per pixel of the float32 RGB image :func:`relight` returns (assembled in place, band
by band: the only allocation that grows with the output size)."""

DEFAULT_BAND_PIXELS = 1 << 20
"""Output pixels (whole rows) rendered at a time: a band's float image is 12 MiB, and an
environment map renders a few lights of one band at once."""

OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""Image formats :func:`save_image` writes (16 bit: PNG only)."""


@runtime_checkable
class Lighting(Protocol):
    """Anything that can light a scene: renders one image ``[H, W, 3]`` in [0, 1] with a model."""

    def render(self, model, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor: ...


@dataclass(frozen=True)
class DirectionalLight:
    """One distant light from ``direction`` (a unit vector toward the light, z up)."""

    direction: tuple[float, float, float]

    def render(self, model, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor:
        return _render_directions(model, torch.tensor([self.direction], dtype=torch.float32), height, width, chunk)[0]


def direction_from_angles(polar: float, azimuth: float, *, degrees: bool = False) -> np.ndarray:
    """The unit vector of polar angle ``polar`` (from z) and azimuth ``azimuth`` (from x toward y)."""
    angles = np.array([polar, azimuth], dtype=np.float64)
    if not np.isfinite(angles).all():
        raise LightsError(f"polar {polar} / azimuth {azimuth}: angles must be finite numbers")
    if degrees:
        angles = np.radians(angles)
    return spherical_to_cartesian(angles)


def as_lighting(light, *, allow_below_horizon: bool = False) -> Lighting:
    """A :class:`Lighting` passes through; a direction (3 numbers) is validated
    (finite, non-zero, above the horizon; normalised with a warning when not unit length)
    and becomes a :class:`DirectionalLight`."""
    if isinstance(light, Lighting):
        return light
    arr = light.detach().cpu().numpy() if isinstance(light, torch.Tensor) else np.asarray(light, dtype=np.float64)
    if arr.size != 3:
        raise LightsError(f"a light direction has 3 components (x, y, z), got {arr.size}")
    d = validate_directions(arr.reshape(1, 3), allow_below_horizon=allow_below_horizon, source="light direction")[0]
    return DirectionalLight(tuple(float(v) for v in d))


def _render_directions(model, lights: torch.Tensor, height: int, width: int, chunk: int) -> torch.Tensor:
    """``model.render`` for directions ``[L, 3]`` on the model's device; float32 ``[L, H, W, 3]`` on the CPU."""
    with torch.no_grad():
        out = render_model(model, lights.to(device_of(model)), height, width, chunk=chunk)
    return out.detach().to("cpu", torch.float32).clamp_(0.0, 1.0)


def _check_hw(height: int, width: int) -> None:
    if int(height) < 1 or int(width) < 1:
        raise OutputError(f"output size must be positive, got {width}x{height}")


class _RowBand:
    """A coordinate model seen through rows ``r0:r1`` of an ``height x width`` image.

    Its :meth:`render` is :meth:`CoordinateModel.render` restricted to those rows (same
    pixel coordinates, same arithmetic), so any :class:`Lighting` that renders through
    ``model.render`` (a directional light, an environment map's weighted sum) renders one
    band of the full image without knowing it.
    """

    def __init__(self, model: CoordinateModel, height: int, width: int, r0: int, r1: int) -> None:
        self.model, self.height, self.width, self.r0, self.r1 = model, height, width, r0, r1

    def parameters(self):
        return self.model.parameters()

    def buffers(self):
        return self.model.buffers()

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int = DEFAULT_RENDER_CHUNK) -> torch.Tensor:
        if (height, width) != (self.r1 - self.r0, self.width):
            raise ValueError(f"band render asked for {width}x{height}, the band is {self.width}x{self.r1 - self.r0}")
        return self.model.render_rows(lights, self.height, self.width, self.r0, self.r1, chunk=chunk)


def _bandable(model: Any) -> bool:
    """True for a coordinate model that renders with :meth:`CoordinateModel.render` itself."""
    return isinstance(model, CoordinateModel) and type(model).render is CoordinateModel.render


def iter_bands(
    model,
    light,
    height: int,
    width: int,
    *,
    chunk: int = DEFAULT_RENDER_CHUNK,
    band_pixels: int = DEFAULT_BAND_PIXELS,
    allow_below_horizon: bool = False,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Render ``model`` under ``light`` band by band: yields ``(r0, r1, rows [r1 - r0, W, 3])``.

    Bands hold about ``band_pixels`` pixels of whole rows (a model that is not a plain
    coordinate model, such as ``blend``, renders in one band). A lighting with an ``info``
    dict (an environment map) ends with ``info`` describing the whole image: its
    ``clipped_fraction`` averaged over the bands and its ``seconds`` summed.
    """
    _check_hw(height, width)
    height, width = int(height), int(width)
    lighting = as_lighting(light, allow_below_horizon=allow_below_horizon)
    if hasattr(model, "eval"):
        model.eval()
    if not _bandable(model):
        yield 0, height, _finite(lighting.render(model, height, width, chunk=chunk), 0, height, width)
        return
    rows = max(1, int(band_pixels) // width)
    infos: list[tuple[int, dict]] = []
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        band = lighting.render(_RowBand(model, height, width, r0, r1), r1 - r0, width, chunk=chunk)
        if isinstance(getattr(lighting, "info", None), dict) and lighting.info:
            infos.append(((r1 - r0) * width, dict(lighting.info)))
        yield r0, r1, _finite(band, r0, r1, width)
    if len(infos) > 1:
        merged = dict(infos[0][1])
        total = sum(n for n, _ in infos)
        if "clipped_fraction" in merged:
            merged["clipped_fraction"] = sum(n * i["clipped_fraction"] for n, i in infos) / total
        if "seconds" in merged:
            merged["seconds"] = sum(i["seconds"] for _, i in infos)
        merged["bands"] = len(infos)
        lighting.info = merged


def _finite(image: torch.Tensor, r0: int, r1: int, width: int) -> torch.Tensor:
    """``image`` (rows ``r0:r1``) when every value is finite; else an :class:`OutputError`.

    A model with NaN or infinite weights renders NaN, which quantising would turn into a black
    image written with no complaint; refusing it here keeps that from passing for a render.
    """
    if not bool(torch.isfinite(image).all()):
        bad = int((~torch.isfinite(image)).sum())
        raise OutputError(
            f"the model rendered {bad} NaN or infinite values in rows {r0}-{r1 - 1} (of width {width}); "
            "its weights are probably not finite (a diverged run), so nothing was written"
        )
    return image


def relight(
    model,
    light,
    height: int,
    width: int,
    *,
    chunk: int = DEFAULT_RENDER_CHUNK,
    band_pixels: int = DEFAULT_BAND_PIXELS,
    allow_below_horizon: bool = False,
) -> torch.Tensor:
    """Render ``model`` under ``light`` at ``height x width``: float32 ``[H, W, 3]`` in [0, 1], CPU.

    ``light`` is a direction (x, y, z) or a :class:`Lighting`. Any size works: a coordinate
    model samples its pixel grid at the new resolution band by band (``band_pixels``), in
    chunks of ``chunk`` samples, into one preallocated image.
    """
    _check_hw(height, width)
    check_output_size(height, width)
    lighting = as_lighting(light, allow_below_horizon=allow_below_horizon)
    out = None
    for r0, r1, band in iter_bands(model, lighting, height, width, chunk=chunk, band_pixels=band_pixels):
        if r0 == 0 and r1 == height:
            return band.to("cpu", torch.float32).clamp_(0.0, 1.0)
        if out is None:
            out = torch.empty(int(height), int(width), 3)
        out[r0:r1] = band.clamp(0.0, 1.0)
    return out


def relight_many(
    model,
    lights: Sequence | np.ndarray | torch.Tensor,
    height: int,
    width: int,
    *,
    chunk: int = DEFAULT_RENDER_CHUNK,
    allow_below_horizon: bool = False,
) -> torch.Tensor:
    """Render one image per direction of ``lights [L, 3]``: ``[L, H, W, 3]`` (the frames of a transition)."""
    _check_hw(height, width)
    dirs = validate_directions(lights, allow_below_horizon=allow_below_horizon, source="light directions")
    check_output_size(height, width, images=len(dirs))
    model.eval()
    frames = _render_directions(model, torch.as_tensor(dirs, dtype=torch.float32), int(height), int(width), chunk)
    return _finite(frames, 0, int(height), int(width))


def load_model(
    checkpoint: str | Path, *, device: str | torch.device = "cpu", data: str | Path | None = None
) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint ready to render: ``(model, config)``, the model in eval mode on ``device``.

    A checkpoint renders with nothing else at hand (an image model such as ``blend`` keeps
    its training images in it). Pass ``data`` to give an image model (``needs_images``) the
    training images of the split the checkpoint records from that dataset instead.
    """
    from .train.checkpoint import load_checkpoint

    model, config = load_checkpoint(checkpoint, device=device)
    if data is not None and capabilities(model).needs_images:
        from .data import load_dataset
        from .lights import LightSplit

        split = LightSplit.from_json((config.get("dataset") or {})["split"])
        attach_training_images(model, load_dataset(data), split.train, device=device)
    return model, config


def check_output_size(height: int, width: int, *, images: int = 1, bytes_per_pixel: int = OUTPUT_BYTES_PER_PIXEL) -> None:
    """Raise :class:`OutputError` before allocating when ``images`` outputs of ``height x width``
    would not fit in the memory now available (``bytes_per_pixel`` each: by default the
    float32 RGB image :func:`relight` returns)."""
    need = int(height) * int(width) * int(images) * int(bytes_per_pixel)
    have = available_memory()
    if have is not None and need > have:
        raise OutputError(
            f"an output of {width}x{height} needs about {_gib(need)} of memory but only {_gib(have)} "
            "is available; choose a smaller --size"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_output_path(path: str | Path, *, bit_depth: int = 8, extensions: Sequence[str] = OUTPUT_EXTENSIONS) -> Path:
    """Check that an image can be written to ``path`` (format, bit depth, folder) before rendering.

    ``extensions`` are the formats accepted (``(".gif",)`` for an animation). Creates missing
    parent folders. Raises :class:`OutputError` with the reason otherwise.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in extensions:
        names = " or ".join(e for e in extensions if e != ".jpeg")
        raise OutputError(f"cannot write {path}: unknown image format {ext or '(none)'!r}; use {names}")
    if bit_depth not in (8, 16):
        raise OutputError(f"bit depth must be 8 or 16, got {bit_depth}")
    if bit_depth == 16 and ext != ".png":
        raise OutputError(f"cannot write {path}: 16-bit images need a .png file")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    blocker = next((p for p in path.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise OutputError(f"cannot write {path}: {blocker} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise OutputError(f"cannot write {path}: permission denied")
    return path


def save_image(image: torch.Tensor | np.ndarray, path: str | Path, *, bit_depth: int = 8, srgb: bool = False) -> Path:
    """Write an image ``[H, W, 3]`` in [0, 1] as an 8-bit (default) or 16-bit PNG, or an 8-bit JPEG.

    Values are written linear unless ``srgb`` (see the module docstring). The image is
    quantised a band of rows at a time, so saving adds little memory to the image itself.
    """
    path = check_output_path(path, bit_depth=bit_depth)
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise OutputError(f"cannot write {path}: expected an image of shape [H, W, 3], got {list(arr.shape)}")
    h, w = arr.shape[:2]
    rows = max(1, DEFAULT_BAND_PIXELS // max(w, 1))
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float32) / np.float32(max_value(arr.dtype))
    bands = ((r0, min(h, r0 + rows), arr[r0 : r0 + rows]) for r0 in range(0, h, rows))
    return write_bands(bands, path, h, w, bit_depth=bit_depth, srgb=srgb)


def relight_to_file(
    model,
    light,
    height: int,
    width: int,
    path: str | Path,
    *,
    bit_depth: int = 8,
    srgb: bool = False,
    chunk: int = DEFAULT_RENDER_CHUNK,
    band_pixels: int = DEFAULT_BAND_PIXELS,
    allow_below_horizon: bool = False,
) -> Path:
    """Render ``model`` under ``light`` at ``height x width`` straight into an image file.

    A PNG (8 or 16 bit) is rendered, quantised and compressed band by band, so peak memory
    is one band whatever the size; a JPEG holds the 8-bit image (3 bytes a pixel). Values are
    written linear unless ``srgb``. Returns the path written.
    """
    _check_hw(height, width)
    path = check_output_path(path, bit_depth=bit_depth)
    height, width = int(height), int(width)
    check_output_size(height, width, bytes_per_pixel=3 * (2 if int(bit_depth) == 16 else 1))  # the decoded image
    bands = iter_bands(model, light, height, width, chunk=chunk, band_pixels=band_pixels, allow_below_horizon=allow_below_horizon)
    return write_bands(bands, path, height, width, bit_depth=bit_depth, srgb=srgb)


make_module_callable(__name__)  # rz.relight(...) works even when the attribute holds this module (util/callable_module.py)
