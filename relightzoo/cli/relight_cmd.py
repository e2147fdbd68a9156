"""``relightzoo relight``: render a checkpoint under new lighting, at any size.

One image under one light (``--light x,y,z``, or ``--polar P --azimuth A``, radians unless
``--degrees``), one image under an environment map (``--envmap FILE``, reduced to
``--envmap-k`` directional lights), or an animated GIF: the light moving along the great
circle from the start light to ``--to x,y,z``, or once around the pole at ``--orbit-polar``.
Everything that can be checked before the render is checked first (the options, the light,
the size, the output file) so a mistake costs no rendering time.

Images are written linear, like the datasets' images, so they compare pixel for pixel with
the captures; ``--srgb`` applies the sRGB curve for display. PNG outputs are rendered and
compressed band by band, so any size renders in bounded memory.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import click

from ..errors import DataError
from .params import FINITE, SIZE, FiniteFloatRange

__all__ = ["relight"]

DEFAULT_FRAMES = 36
DEFAULT_FPS = 12.0


def _parse_light(ctx: click.Context, param: click.Parameter, value: str | None):
    """``x,y,z`` (commas or spaces) to three floats; NaN/inf pass through to validation."""
    if value is None:
        return None
    parts = [p for p in value.replace(",", " ").split() if p]
    try:
        nums = [float(p) for p in parts]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not three numbers x,y,z (e.g. 0.36,0.48,0.8)") from None
    if len(nums) != 3:
        raise click.BadParameter(f"{value!r} has {len(nums)} numbers; a direction is x,y,z (e.g. 0.36,0.48,0.8)")
    return tuple(nums)


def _parse_exposure(ctx: click.Context, param: click.Parameter, value: str | None):
    """``--exposure``: a positive number or ``auto``."""
    if value is None:
        return None
    if value.strip().lower() == "auto":
        return "auto"
    try:
        e = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'auto'") from None
    if not (math.isfinite(e) and e > 0):
        raise click.BadParameter(f"{value!r}: the exposure must be a positive number or 'auto'")
    return e


def _check_modes(light, polar, azimuth, envmap, to_light, orbit_polar, out: Path, extras: dict) -> str:
    """Which output the options ask for: ``image``, ``envmap``, ``transition`` or ``orbit``.

    ``extras`` maps the mode-specific options (``--envmap-k``, ``--exposure``, ``--frames``,
    ``--fps``) to their values (None when not given), so an option that the chosen mode
    ignores is an error instead of a silent no-op.
    """
    direction = light is not None or polar is not None or azimuth is not None
    if envmap is not None and (direction or to_light is not None or orbit_polar is not None):
        raise click.UsageError("--envmap lights the scene by itself: leave out --light/--polar/--azimuth/--to/--orbit-polar")
    if orbit_polar is not None and (direction or to_light is not None):
        raise click.UsageError("--orbit-polar animates the light by itself: leave out --light/--polar/--azimuth/--to")
    if to_light is not None and not direction:
        raise click.UsageError("--to needs a start light: --light x,y,z or --polar P --azimuth A")
    mode = "envmap" if envmap is not None else "orbit" if orbit_polar is not None else "transition" if to_light is not None else "image"
    animated = mode in ("orbit", "transition")
    if animated and out.suffix.lower() != ".gif":
        raise click.UsageError(f"--{'orbit-polar' if mode == 'orbit' else 'to'} makes an animation: --out must be a .gif file")
    if not animated and out.suffix.lower() == ".gif":
        raise click.UsageError("a .gif output needs an animation: add --to x,y,z or --orbit-polar P")
    for option, value in extras.items():
        if value is None:
            continue
        if option in ("--envmap-k", "--exposure") and mode != "envmap":
            raise click.UsageError(f"{option} applies to --envmap")
        if option in ("--frames", "--fps") and not animated:
            raise click.UsageError(f"{option} applies to an animation (--to or --orbit-polar)")
        if option == "--bit-depth" and animated:
            raise click.UsageError("--bit-depth applies to PNG images; a GIF is 8-bit")
    return mode


def _lighting(light, polar, azimuth, degrees: bool, allow_below_horizon: bool):
    """The directional light the options describe: exactly one form, validated."""
    from ..relight import as_lighting, direction_from_angles

    angles = polar is not None or azimuth is not None
    if light is not None and angles:
        raise click.UsageError("give the light once: either --light x,y,z or --polar P --azimuth A, not both")
    if light is None and not angles:
        raise click.UsageError("give a light: --light x,y,z or --polar P --azimuth A (or --envmap FILE, or --orbit-polar P)")
    if degrees and not angles:
        raise click.UsageError("--degrees applies to --polar/--azimuth or --orbit-polar, not to --light")
    if angles:
        if polar is None or azimuth is None:
            raise click.UsageError("--polar and --azimuth go together; give both")
        if not degrees and all(math.isfinite(v) for v in (polar, azimuth)) and max(abs(polar), abs(azimuth)) > 2 * math.pi:
            raise click.UsageError(f"--polar {polar:g} --azimuth {azimuth:g} look like degrees: add --degrees (default: radians)")
        light = direction_from_angles(polar, azimuth, degrees=degrees)
    return as_lighting(light, allow_below_horizon=allow_below_horizon)


def _orbit_polar(value: float, degrees: bool) -> float:
    """``--orbit-polar`` in radians, checked: finite, inside [0, 90] degrees."""
    if not math.isfinite(value):
        raise click.UsageError(f"--orbit-polar {value}: the polar angle must be a finite number")
    if not degrees and abs(value) > 2 * math.pi:
        raise click.UsageError(f"--orbit-polar {value:g} looks like degrees: add --degrees (default: radians)")
    polar = math.radians(value) if degrees else value
    if not 0.0 <= polar <= math.pi / 2 + 1e-12:
        shown = f"{value:g} deg" if degrees else f"{value:g} rad"
        raise click.UsageError(f"--orbit-polar {shown} is outside 0..90 degrees: an orbit stays on the upper hemisphere")
    return min(polar, math.pi / 2)


@click.command("relight")
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--light", callback=_parse_light, metavar="X,Y,Z", help="Light direction (toward the light, z up); normalised if not unit length.")
@click.option("--polar", type=FINITE, metavar="P", help="Polar angle of the light from z (radians, or degrees with --degrees).")
@click.option("--azimuth", type=FINITE, metavar="A", help="Azimuth of the light from x toward y (radians, or degrees with --degrees).")
@click.option("--degrees", is_flag=True, help="--polar, --azimuth and --orbit-polar are in degrees.")
@click.option("--envmap", type=click.Path(path_type=Path, dir_okay=False), help="Light the scene with an equirectangular environment map (.hdr; .png/.jpg read as sRGB; .npy). Only its upper half (the sky) lights the scene.")
@click.option("--envmap-k", type=click.IntRange(1, 1 << 20), metavar="K", help="Directional lights the environment map is reduced to [default: 64] (more: smoother, slower; time grows with K).")
@click.option("--exposure", callback=_parse_exposure, metavar="E|auto", help="Brightness of an --envmap render [default: 1]: 1 lights a surface facing up at its albedo under a white sky of radiance 1; 'auto' scales any map to that brightness.")
@click.option("--to", "to_light", callback=_parse_light, metavar="X,Y,Z", help="Animate the light from --light (or --polar/--azimuth) to this direction along the great circle; --out must be a .gif.")
@click.option("--orbit-polar", type=FINITE, metavar="P", help="Animate the light once around the pole at this polar angle (radians, or degrees with --degrees); --out must be a .gif.")
@click.option("--frames", type=click.IntRange(2, 10000), help=f"Frames of a --to or --orbit-polar animation [default: {DEFAULT_FRAMES}].")
@click.option("--fps", type=FiniteFloatRange(min=0, max=50, min_open=True), help=f"Frames per second of the animation [default: {DEFAULT_FPS:g}].")
@click.option("--size", type=SIZE, metavar="WxH", help="Output size, e.g. 1024x1024 (or 512 for a square); default: the training images' size.")
@click.option("--out", "out", required=True, metavar="IMAGE", type=click.Path(path_type=Path), help="Output image (.png, or .jpg for 8 bit; .gif for an animation).")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), help="PNG bit depth [default: 8].")
@click.option("--srgb", is_flag=True, help="Encode the output with the sRGB curve for display (default: linear values, like the datasets' images).")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--allow-below-horizon", is_flag=True, help="Accept a light below the horizon (z < 0): extrapolation.")
def relight(
    checkpoint: Path,
    light,
    polar: float | None,
    azimuth: float | None,
    degrees: bool,
    envmap: Path | None,
    envmap_k: int | None,
    exposure,
    to_light,
    orbit_polar: float | None,
    frames: int | None,
    fps: float | None,
    size: tuple[int, int] | None,
    out: Path,
    bit_depth: str | None,
    srgb: bool,
    device: str,
    allow_below_horizon: bool,
) -> None:
    """Render CHECKPOINT under a light, an environment map or a moving light, at any size.

    \b
    relightzoo relight run/best.safetensors --light 0.36,0.48,0.8 --out lit.png
    relightzoo relight run/best.safetensors --polar 40 --azimuth 90 --degrees --size 4096x4096 --out big.png
    relightzoo relight run/best.safetensors --envmap sky.hdr --envmap-k 256 --exposure auto --out sky.png
    relightzoo relight run/best.safetensors --light 0,0,1 --to 0.8,0,0.6 --frames 24 --out move.gif
    relightzoo relight run/best.safetensors --orbit-polar 45 --degrees --frames 36 --fps 12 --out orbit.gif
    """
    from ..console import console
    from ..lights import format_direction
    from ..relight import check_output_path, check_output_size, load_model, relight_to_file
    from ..train import read_config
    from ..util.devices import resolve_device

    extras = {"--envmap-k": envmap_k, "--exposure": exposure, "--frames": frames, "--fps": fps, "--bit-depth": bit_depth}
    mode = _check_modes(light, polar, azimuth, envmap, to_light, orbit_polar, out, extras)
    frames = DEFAULT_FRAMES if frames is None else frames
    fps = DEFAULT_FPS if fps is None else fps
    depth = int(bit_depth or 8)
    lighting = lights = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if mode == "envmap":
            if degrees:
                raise click.UsageError("--degrees applies to --polar/--azimuth or --orbit-polar, not to --envmap")
            from ..envmap import DEFAULT_ENVMAP_K, EnvironmentLighting

            # reads and checks the map now, before the checkpoint is loaded
            lighting = EnvironmentLighting(envmap, k=envmap_k or DEFAULT_ENVMAP_K, exposure=1.0 if exposure is None else exposure)
        elif mode == "orbit":
            from ..animation import orbit_lights

            orbit_polar = _orbit_polar(orbit_polar, degrees)
            lights = orbit_lights(orbit_polar, frames)
        else:
            lighting = _lighting(light, polar, azimuth, degrees, allow_below_horizon)
            if mode == "transition":
                from ..animation import transition_lights

                lights = transition_lights(lighting.direction, to_light, frames, allow_below_horizon=allow_below_horizon)
    for w in caught:  # a non-unit direction is normalised: tell the user, once, in one line
        console.print(f"warning: {w.message}", soft_wrap=True)
    if lights is None:
        check_output_path(out, bit_depth=depth)
    else:
        check_output_path(out, extensions=(".gif",))
    config = read_config(checkpoint)
    if size is None:
        ds = config.get("dataset") or {}
        if not (ds.get("width") and ds.get("height")):
            raise DataError(f"{checkpoint} does not record its image size; pass --size WxH")
        size = (int(ds["width"]), int(ds["height"]))
    width, height = size
    if lights is None:
        check_output_size(height, width, bytes_per_pixel=3 * depth // 8)
    else:
        check_output_size(height, width, images=len(lights), bytes_per_pixel=15)  # float frames + 8-bit copy
    model, _ = load_model(checkpoint, device=resolve_device(device))
    model.eval()
    encoding = "sRGB" if srgb else "linear"

    if lights is not None:
        from ..animation import render_sequence, write_gif

        rendered = render_sequence(model, lights, height, width)
        if srgb:
            from ..util.images import linear_to_srgb

            rendered = linear_to_srgb(rendered)
        n = write_gif(rendered, out, fps=fps)
        what = (
            f"orbit at polar {math.degrees(orbit_polar):.1f} deg"
            if mode == "orbit"
            else f"{format_direction(lights[0])} -> {format_direction(lights[-1])}"
        )
        console.print(f"wrote {out} ({n} frames, {width}x{height}, {fps:g} fps, {encoding}), {what}", soft_wrap=True)
        return

    relight_to_file(model, lighting, height, width, out, bit_depth=depth, srgb=srgb)
    if mode == "envmap":
        info = lighting.info
        clipped = f"; {info['clipped_fraction']:.1%} of values clipped (lower --exposure)" if info["clipped_fraction"] > 0.001 else ""
        console.print(
            f"wrote {out} ({width}x{height}, {depth}-bit, {encoding}), environment map {envmap.name} as "
            f"K={info['k_used']} lights (asked for {info['k_requested']}), exposure {info['exposure']:.4g}, "
            + ("in one pass (the model's own environment-map path)" if info["path"] == "model"
               else "by summing K renders (this model has no one-pass environment-map path)")
            + clipped,
            soft_wrap=True,
        )
        return
    console.print(f"wrote {out} ({width}x{height}, {depth}-bit, {encoding}), light {format_direction(lighting.direction)}", soft_wrap=True)
