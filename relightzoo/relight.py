"""Relight a scene: render a trained model under any lighting, at any output size.

The Python face of ``relightzoo relight``::

    from relightzoo.relight import load_model, relight, save_image
    model, config = load_model("run/best.safetensors")
    img = relight(model, [0.36, 0.48, 0.8], 512, 512)   # float32 [H, W, 3] in [0, 1]
    save_image(img, "lit.png")                          # or bit_depth=16

Lighting is described by a :class:`Lighting` object that knows how to render itself with a
model; a bare direction (any array-like of 3 numbers) is a :class:`DirectionalLight`. An
environment map is a weighted sum of directional lights (light transport is linear), so it
slots in as another :class:`Lighting`, and a transition is a sequence of lightings, without
changing :func:`relight`. Coordinate models render in chunks of samples, so the output size
is bounded only by the memory of the output itself, which :func:`check_output_size` checks
before anything is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from .errors import LightsError, RelightzooError
from .lights import spherical_to_cartesian, validate_directions
from .zoo.api import DEFAULT_RENDER_CHUNK

__all__ = [
    "OutputError",
    "Lighting",
    "DirectionalLight",
    "as_lighting",
    "relight",
    "relight_many",
    "load_model",
    "save_image",
    "check_output_size",
    "check_output_path",
    "parse_size",
    "direction_from_angles",
    "OUTPUT_BYTES_PER_PIXEL",
    "OUTPUT_EXTENSIONS",
]

OUTPUT_BYTES_PER_PIXEL = 48
"""Peak bytes per output pixel while rendering and saving: the float32 RGB render (12) plus
the float copies and the quantised array made when the image is written."""

OUTPUT_EXTENSIONS = (".png", ".jpg", ".jpeg")
"""Image formats :func:`save_image` writes (16 bit: PNG only)."""


class OutputError(RelightzooError):
    """An output size, image file or folder that cannot be rendered or written."""


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
    tensors = [*model.parameters(), *model.buffers()] if isinstance(model, torch.nn.Module) else []
    device = tensors[0].device if tensors else torch.device("cpu")
    with torch.no_grad():
        out = model.render(lights.to(device), height, width, chunk=chunk)
    return out.detach().to("cpu", torch.float32).clamp(0.0, 1.0)


def _check_hw(height: int, width: int) -> None:
    if int(height) < 1 or int(width) < 1:
        raise OutputError(f"output size must be positive, got {width}x{height}")


def relight(
    model,
    light,
    height: int,
    width: int,
    *,
    chunk: int = DEFAULT_RENDER_CHUNK,
    allow_below_horizon: bool = False,
) -> torch.Tensor:
    """Render ``model`` under ``light`` at ``height x width``: float32 ``[H, W, 3]`` in [0, 1], CPU.

    ``light`` is a direction (x, y, z) or a :class:`Lighting`. Any size works: coordinate
    models sample their pixel grid at the new resolution in chunks of ``chunk`` samples.
    """
    _check_hw(height, width)
    check_output_size(height, width)
    model.eval()
    return as_lighting(light, allow_below_horizon=allow_below_horizon).render(model, int(height), int(width), chunk=chunk)


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
    return _render_directions(model, torch.as_tensor(dirs, dtype=torch.float32), int(height), int(width), chunk)


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
    if data is not None and getattr(model, "needs_images", False):
        from .data import load_dataset
        from .lights import LightSplit

        split = LightSplit.from_json((config.get("dataset") or {})["split"])
        dataset = load_dataset(data)
        train = np.asarray(split.train)
        model.attach_training_data(dataset.images(train).to(device), dataset.lights[torch.as_tensor(train)].to(device))
    return model, config


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``512x384``) to ``(width, height)``; a one-line :class:`OutputError` otherwise."""
    parts = text.strip().lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().lstrip("+-").isdigit() for p in parts):
        raise OutputError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 512x512")
    w, h = (int(p) for p in parts)
    if w < 1 or h < 1:
        raise OutputError(f"size {text!r}: width and height must be at least 1")
    return w, h


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation, or None where that cannot be told."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_output_size(height: int, width: int, *, images: int = 1) -> None:
    """Raise :class:`OutputError` before allocating when ``images`` outputs of ``height x width``
    would not fit in the memory now available (about :data:`OUTPUT_BYTES_PER_PIXEL` per pixel)."""
    need = int(height) * int(width) * int(images) * OUTPUT_BYTES_PER_PIXEL
    have = _available_memory()
    if have is not None and need > have:
        raise OutputError(
            f"an output of {width}x{height} needs about {_gib(need)} of memory but only {_gib(have)} "
            "is available; choose a smaller --size"
        )


def _gib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def check_output_path(path: str | Path, *, bit_depth: int = 8) -> Path:
    """Check that an image can be written to ``path`` (format, bit depth, folder) before rendering.

    Creates missing parent folders. Raises :class:`OutputError` with the reason otherwise.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in OUTPUT_EXTENSIONS:
        raise OutputError(f"cannot write {path}: unknown image format {ext or '(none)'!r}; use .png or .jpg")
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


def save_image(image: torch.Tensor | np.ndarray, path: str | Path, *, bit_depth: int = 8) -> Path:
    """Write an image ``[H, W, 3]`` in [0, 1] as an 8-bit (default) or 16-bit PNG, or an 8-bit JPEG."""
    from .data.images import write_image

    path = check_output_path(path, bit_depth=bit_depth)
    arr = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    try:
        write_image(path, arr, bit_depth=bit_depth)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
