"""Light transitions as animations: the light paths, their renders, and animated GIFs.

A transition moves the light along the shorter great circle between two directions (the
thesis's figure 4.2); an orbit circles the pole at a fixed polar angle. Either path is
rendered frame by frame with any :class:`relightzoo.zoo.api.RelightModel` and written as a
looping GIF with one adaptive palette for the whole animation, so colours do not flicker
from frame to frame.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import GifImagePlugin, Image

from .console import make_progress
from .errors import DataError
from .lights import great_circle, orbit, validate_directions
from .util.devices import device_of
from .util.images import to_uint8
from .zoo.capabilities import render_model

__all__ = ["transition_lights", "orbit_lights", "render_sequence", "write_gif", "MAX_GIF_FPS"]

MAX_GIF_FPS = 50
"""GIF delays are whole hundredths of a second and viewers slow down anything under 2."""

_PALETTE_SAMPLE_PIXELS = 1 << 18
"""Pixels (drawn evenly from the frames) the shared palette is fitted to."""


def transition_lights(a: Any, b: Any, frames: int, *, allow_below_horizon: bool = False) -> np.ndarray:
    """``frames`` unit vectors ``[N, 3]`` from light ``a`` to light ``b`` (both included).

    The path is the shorter great circle, which stays on the upper hemisphere when both ends
    are on it. Raises :class:`relightzoo.errors.LightsError` for an end below the horizon
    (unless ``allow_below_horizon``), identical or opposite ends, or fewer than 2 frames.
    """
    a, b = (
        validate_directions(
            np.asarray(v, dtype=np.float64).reshape(1, 3), allow_below_horizon=allow_below_horizon, source=f"transition {end}"
        )[0]
        for v, end in ((a, "start"), (b, "end"))
    )
    return great_circle(a, b, int(frames))


def orbit_lights(polar: float, frames: int) -> np.ndarray:
    """``frames`` directions ``[N, 3]`` at polar angle ``polar`` (radians), once around the pole.

    Azimuth starts at -pi and steps by ``2 pi / N``, so the last frame leads back to the first
    and the GIF loops without a jump.
    """
    return orbit(float(polar), int(frames))


def render_sequence(
    model: Any,
    lights: Any,
    height: int,
    width: int,
    *,
    chunk_lights: int = 1,
    render_chunk: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Render ``model`` at each of ``lights [N, 3]``: frames ``[N, H, W, 3]`` float32 in [0, 1].

    Frames are rendered ``chunk_lights`` at a time with a progress bar (on stderr);
    ``render_chunk`` is passed on to ``model.render`` as its ``chunk`` (samples per forward
    pass) when given. Directions go to the device of the model's parameters.
    """
    dirs = validate_directions(lights, allow_below_horizon=True, source="frame lights")
    height, width = int(height), int(width)
    if height < 1 or width < 1:
        raise DataError(f"frame size must be positive, got {width} x {height}")
    d = torch.as_tensor(dirs, dtype=torch.float32, device=device_of(model))
    out = np.empty((len(d), height, width, 3), dtype=np.float32)
    step = max(1, int(chunk_lights))
    with make_progress(transient=True, disable=not progress) as bar:
        task = bar.add_task("rendering frames", total=len(d))
        for s in range(0, len(d), step):
            with torch.no_grad():
                imgs = torch.as_tensor(render_model(model, d[s : s + step], height, width, chunk=render_chunk))
            out[s : s + len(imgs)] = imgs.detach().float().cpu().clamp(0.0, 1.0).numpy()
            bar.advance(task, len(imgs))
    return out


def _frames_uint8(frames: Any) -> np.ndarray:
    """GIF frames ``[N, H, W, 3]`` checked (shape, size) and as uint8."""
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise DataError(f"GIF frames must have shape [N, H, W, 3], got {list(arr.shape)}")
    n, h, w = arr.shape[:3]
    if n == 0 or h == 0 or w == 0:
        raise DataError(f"cannot write a GIF of {n} frames of {w} x {h} pixels: nothing to show")
    if h > 0xFFFF or w > 0xFFFF:
        raise DataError(f"GIF frames are at most 65535 pixels a side, got {w} x {h}")
    return to_uint8(arr)


def _shared_palette(frames: np.ndarray) -> Image.Image:
    """A 256-colour palette image fitted (median cut) to pixels drawn from every frame."""
    flat = frames.reshape(-1, 3)
    step = max(1, len(flat) // _PALETTE_SAMPLE_PIXELS)
    sample = flat[::step]
    return Image.fromarray(sample[None]).quantize(colors=256, method=Image.Quantize.MEDIANCUT)


def write_gif(frames: Any, path: str | Path, fps: float = 12, loop: int | None = 0) -> int:
    """Write ``frames [N, H, W, 3]`` (float in [0, 1], or uint8) as an animated GIF.

    One adaptive palette (256 colours, median cut over all frames) serves every frame, with
    no dithering, so a still region stays still. ``loop=0`` repeats forever, ``loop=n`` plays
    n + 1 times in most viewers and ``None`` plays once. Each frame lasts ``round(100 / fps)``
    hundredths of a second (GIF's unit), so ``fps`` may be at most 50.

    Every frame is written in full, including frames identical to the one before (Pillow's
    ``save_all`` would merge those into one longer frame), and the file is read back to check
    it holds exactly N frames. Returns N. The file is written to a temporary name first.
    """
    path = Path(path)
    q = _frames_uint8(frames)
    fps = float(fps)
    if not (0 < fps <= MAX_GIF_FPS):
        raise DataError(f"GIF frame rate must be above 0 and at most {MAX_GIF_FPS} fps, got {fps:g}")
    if loop is not None and not 0 <= int(loop) <= 0xFFFF:
        raise DataError(f"GIF loop count must be 0 (forever) to 65535, got {loop}")
    centis = max(2, round(100.0 / fps))
    palette = _shared_palette(q)
    info: dict[str, Any] = {"duration": centis * 10}
    if loop is not None:
        info["loop"] = int(loop)

    chunks: list[bytes] = []
    for i, frame in enumerate(q):
        im = Image.fromarray(frame).quantize(palette=palette, dither=Image.Dither.NONE)
        if i == 0:
            header, _ = GifImagePlugin.getheader(im, info=dict(info))
            chunks.extend(header)
        # disposal 1: leave the frame in place; each frame covers the whole canvas anyway
        chunks.extend(GifImagePlugin.getdata(im, duration=centis * 10, disposal=1))
    chunks.append(b";")

    from .util.atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(b"".join(chunks))
        with Image.open(tmp) as check:
            written = getattr(check, "n_frames", 1)
        if written != len(q):  # pragma: no cover - a Pillow behaviour change would land here
            raise RuntimeError(f"wrote {written} GIF frames instead of {len(q)}")
    return len(q)
