"""``relightzoo relight``: render a checkpoint under one new light, at any size.

The light is given either as a direction (``--light x,y,z``) or as angles (``--polar P
--azimuth A``, radians unless ``--degrees``). Everything that can be checked before the
render is checked first (the light, the size, the output file) so a mistake costs no
rendering time. Environment maps (``--envmap FILE``) and transitions are further lighting
sources of :mod:`relightzoo.relight` and will join :func:`_lighting` as options.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import click

from ..errors import DataError, RelightzooError

__all__ = ["relight"]


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


def _parse_size(ctx: click.Context, param: click.Parameter, value: str | None):
    if value is None:
        return None
    from ..relight import parse_size

    try:
        return parse_size(value)
    except RelightzooError as exc:
        raise click.BadParameter(str(exc)) from None


def _lighting(light, polar, azimuth, degrees: bool, allow_below_horizon: bool):
    """The lighting the options describe: exactly one form, validated (see module docstring)."""
    from ..relight import as_lighting, direction_from_angles

    angles = polar is not None or azimuth is not None
    if light is not None and angles:
        raise click.UsageError("give the light once: either --light x,y,z or --polar P --azimuth A, not both")
    if light is None and not angles:
        raise click.UsageError("give a light: --light x,y,z or --polar P --azimuth A")
    if degrees and not angles:
        raise click.UsageError("--degrees applies to --polar/--azimuth, not to --light")
    if angles:
        if polar is None or azimuth is None:
            raise click.UsageError("--polar and --azimuth go together; give both")
        if not degrees and all(math.isfinite(v) for v in (polar, azimuth)) and max(abs(polar), abs(azimuth)) > 2 * math.pi:
            raise click.UsageError(f"--polar {polar:g} --azimuth {azimuth:g} look like degrees: add --degrees (default: radians)")
        light = direction_from_angles(polar, azimuth, degrees=degrees)
    return as_lighting(light, allow_below_horizon=allow_below_horizon)


@click.command("relight")
@click.argument("checkpoint", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--light", callback=_parse_light, metavar="X,Y,Z", help="Light direction (toward the light, z up); normalised if not unit length.")
@click.option("--polar", type=float, metavar="P", help="Polar angle of the light from z (radians, or degrees with --degrees).")
@click.option("--azimuth", type=float, metavar="A", help="Azimuth of the light from x toward y (radians, or degrees with --degrees).")
@click.option("--degrees", is_flag=True, help="--polar and --azimuth are in degrees.")
@click.option("--size", callback=_parse_size, metavar="WxH", help="Output size, e.g. 1024x1024; default: the training images' size.")
@click.option("--out", "out", required=True, metavar="IMAGE", type=click.Path(path_type=Path), help="Output image (.png, or .jpg for 8 bit).")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True, help="PNG bit depth.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--allow-below-horizon", is_flag=True, help="Accept a light below the horizon (z < 0): extrapolation.")
def relight(
    checkpoint: Path,
    light,
    polar: float | None,
    azimuth: float | None,
    degrees: bool,
    size: tuple[int, int] | None,
    out: Path,
    bit_depth: str,
    device: str,
    allow_below_horizon: bool,
) -> None:
    """Render CHECKPOINT under one light direction at any output size and save it as IMAGE.

    \b
    relightzoo relight run/best.safetensors --light 0.36,0.48,0.8 --out lit.png
    relightzoo relight run/best.safetensors --polar 40 --azimuth 90 --degrees --size 1024x1024 --out big.png
    """
    from ..console import console
    from ..lights import format_direction
    from ..relight import check_output_path, check_output_size, load_model, relight as relight_image, save_image
    from ..train import read_config, resolve_device

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lighting = _lighting(light, polar, azimuth, degrees, allow_below_horizon)
    for w in caught:  # a non-unit direction is normalised: tell the user, once, in one line
        console.print(f"warning: {w.message}", soft_wrap=True)
    depth = int(bit_depth)
    check_output_path(out, bit_depth=depth)
    config = read_config(checkpoint)
    if size is None:
        ds = config.get("dataset") or {}
        if not (ds.get("width") and ds.get("height")):
            raise DataError(f"{checkpoint} does not record its image size; pass --size WxH")
        size = (int(ds["width"]), int(ds["height"]))
    width, height = size
    check_output_size(height, width)
    torch_device = resolve_device(device)
    model, _ = load_model(checkpoint, device=torch_device)
    image = relight_image(model, lighting, height, width)
    save_image(image, out, bit_depth=depth)
    console.print(f"wrote {out} ({width}x{height}, {depth}-bit), light {format_direction(lighting.direction)}", soft_wrap=True)
