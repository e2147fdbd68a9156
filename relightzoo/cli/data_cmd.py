"""``relightzoo data``: inspect datasets, draw a few of their lights, convert light files, render new datasets.

``render`` lives in :mod:`relightzoo.cli.render_cmd` and is imported only when it is called,
so ``data info`` never loads the renderer.
"""

from __future__ import annotations

from pathlib import Path

import click

from .lazy import LazyGroup

__all__ = ["data"]

_FORMATS = ["cartesian", "spherical", "spherical-deg"]
@click.group(cls=LazyGroup, lazy={"render": "relightzoo.cli.render_cmd:render"})
def data() -> None:
    """Inspect OLAT datasets, convert light files, render new datasets.

    DATA is a folder of PNG/JPEG images plus lights.txt (one direction per image, in sorted
    file-name order) or lights.json (file name -> direction), or a built-in scene (demo).
    """


@data.command("info")
@click.argument("data_arg", metavar="DATA")
@click.option("--json", "json_", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("--lights-format", type=click.Choice(_FORMATS), default=None,
              help="Read lights.txt in this format, overriding its header.")
@click.option("--allow-below-horizon", is_flag=True, help="Accept light directions with z < 0.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save a picture of the light positions (and a few images) to this PNG.")
@click.option("--thumbnails", type=click.IntRange(0, 12), default=4, show_default=True,
              help="How many images to show under the --plot picture.")
def info(data_arg: str, json_: bool, lights_format: str | None, allow_below_horizon: bool,
         plot_path: Path | None, thumbnails: int) -> None:
    """Count, resolution, bit depth and light coverage of DATA, with a map of its lights."""
    from ..console import console, print_json
    from ..data import load_dataset
    from .lightplot import png_plot, text_plot

    ds = load_dataset(data_arg, allow_below_horizon=allow_below_horizon, lights_format=lights_format)
    summary = ds.describe()
    if plot_path is not None:
        picks = _spread(len(ds), thumbnails)
        thumbs = list(zip(picks, ds.images(picks).numpy())) if picks else []
        title = f"{summary['source']}: {len(ds)} lights, {summary['resolution']}"
        png_plot(plot_path, ds.lights, thumbs, title=title)
        summary["plot"] = str(plot_path)
    if json_:
        print_json(summary)
        return
    p, a = summary["polar_deg"], summary["azimuth_deg"]
    rows = [
        ("source", summary["source"]),
        ("images", f"{summary['count']} ({summary['width']} x {summary['height']}, "
                   f"{summary['bit_depth']}-bit, {summary['memory_mb']} MB in memory)"),
        ("lights file", str(summary["lights_file"])),
        ("polar", f"{p[0]:.1f} .. {p[1]:.1f} deg (0 = overhead, 90 = horizon)"),
        ("azimuth", f"{a[0]:.1f} .. {a[1]:.1f} deg"),
        ("spacing", f"{summary['spacing_deg']:.2f} deg median to the nearest light"),
    ]
    for key, value in rows:
        console.print(f"{key:<12} {value}", markup=False, highlight=False, soft_wrap=True)
    console.print("", markup=False)
    console.print(text_plot(ds.lights), markup=False, highlight=False, soft_wrap=True)
    if plot_path is not None:
        console.print(f"wrote {plot_path}", markup=False, highlight=False, soft_wrap=True)


def _spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)``."""
    k = min(k, n)
    if k <= 0:
        return []
    return sorted({round(i * (n - 1) / max(k - 1, 1)) for i in range(k)})


@data.command("sheet")
@click.argument("data_arg", metavar="DATA")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--count", type=click.IntRange(1, 1000), default=8, show_default=True, help="How many lights to show.")
@click.option("--columns", type=click.IntRange(1, 100), default=4, show_default=True, help="Images a row.")
@click.option("--scale", type=click.IntRange(1, 64), default=3, show_default=True, help="Pixel enlargement.")
def sheet(data_arg: str, out: Path, count: int, columns: int, scale: int) -> None:
    """Write OUT (a PNG): COUNT of DATA's lights side by side, from the pole down to 75
    degrees, each labelled with its polar angle and azimuth (docs/images/demo_lights.png)."""
    from ..console import console
    from ..data import load_dataset
    from ..data.render.sheet import lights_sheet, spread_lights
    from ..util.atomic import write_image_atomic

    ds = load_dataset(data_arg)
    lights = ds.lights.numpy()
    idx = spread_lights(lights, count)
    write_image_atomic(out, lights_sheet(ds.images().numpy(), lights, idx, columns=columns, scale=scale))
    console.print(f"wrote {out} ({len(idx)} lights of {len(ds)})", markup=False, highlight=False, soft_wrap=True)


@data.command("convert")
@click.argument("lights_in", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("lights_out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--to", "to_fmt", type=click.Choice(_FORMATS), default=None,
              help="Format to write [default: cartesian; an .lp file is always cartesian].")
@click.option("--from", "from_fmt", type=click.Choice(_FORMATS), default=None,
              help="Format to read (default: from the file's header, else 3 columns = cartesian, 2 = radians).")
def convert(lights_in: Path, lights_out: Path, to_fmt: str | None, from_fmt: str | None) -> None:
    """Convert a light file: lights.txt (cartesian or spherical, radians or degrees),
    lights.json and RTI .lp, each way; the output's extension picks its kind.

    Writing a .json or .lp needs image names: they come from a .json or .lp input, or else
    from the images beside LIGHTS_IN (one per line, in sorted order). Writing lights.txt from
    named lights orders its lines by sorted image name, the order lights.txt pairs by.
    """
    from ..console import console
    from ..data.dataset import list_images
    from ..data.lightfile import read_lights_file, write_lights_file
    from ..errors import DataError
    from ..lights import validate_directions

    out_kind = lights_out.suffix.lower()
    if out_kind == ".lp" and to_fmt not in (None, "cartesian"):
        raise DataError(f"{lights_out.name}: an .lp file holds cartesian directions (x y z); drop --to {to_fmt}")
    to_fmt = to_fmt or "cartesian"
    table = read_lights_file(lights_in, fmt=from_fmt, allow_below_horizon=True)
    dirs = validate_directions(table.dirs, allow_below_horizon=True, source=lights_in.name)
    names = table.names
    if out_kind in (".json", ".lp") and names is None:
        folder = lights_in.resolve().parent
        names = list_images(folder)
        if len(names) != len(dirs):
            raise DataError(
                f"writing {lights_out.name} needs one image name per light: {lights_in.name} has {len(dirs)} "
                f"lights but {folder} holds {len(names)} images"
            )
    if out_kind not in (".json", ".lp") and names is not None:
        order = sorted(range(len(names)), key=lambda i: names[i])
        dirs, names = dirs[order], [names[i] for i in order]
    write_lights_file(lights_out, dirs, to_fmt, names=names)
    console.print(f"wrote {len(dirs)} lights to {lights_out} ({table.fmt} -> {to_fmt})", markup=False, highlight=False, soft_wrap=True)
