"""``relightzoo data render SCENE OUT``: render an OLAT dataset of a named scene with Mitsuba 3.

The dataset is written in the folder format (``light_0000.png`` ... plus ``lights.txt``) with a
``render.json`` beside it recording the scene, every option, the Mitsuba version, how long it
took and the exact command that rebuilds it. Needs ``pip install "relightzoo[render]"``.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from .. import __version__
from ..errors import RelightzooError
from .params import SEED, SIZE

__all__ = ["render", "RENDER_JSON"]

RENDER_JSON = "render.json"
"""The file beside the images that records how they were rendered."""


def _list_scenes() -> None:
    from ..console import console
    from ..data.render.scenes import SCENES

    width = max(len(n) for n in SCENES)
    for spec in SCENES.values():
        console.print(f"{spec.name:<{width}}  {spec.description} [dim](spp {spec.spp}, depth {spec.max_depth})[/dim]")


def _prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty OUT unless ``overwrite``; then remove the old images and light files
    (other files, such as a README, are kept) so no stale image outlives the new render."""
    from ..data.images import is_image_file

    if out.exists() and not out.is_dir():
        raise RelightzooError(f"{out} exists and is not a folder")
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise RelightzooError(f"{out} exists and is not empty; pass --overwrite to replace its images")
    for p in out.iterdir():
        if p.is_file() and (is_image_file(p) or p.name in ("lights.txt", "lights.json", RENDER_JSON)):
            p.unlink()


def _command_line(scene: str, out: Path, width: int, height: int, lights: int, pattern: str, spp: int,
                  max_depth: int, seed: int, bit_depth: int, overwrite: bool) -> str:
    """The command that rebuilds this dataset, every option spelled out."""
    args = ["relightzoo", "data", "render", scene, str(out), "--size", f"{width}x{height}",
            "--lights", str(lights), "--pattern", pattern, "--spp", str(spp), "--max-depth", str(max_depth),
            "--seed", str(seed), "--bit-depth", str(bit_depth)]
    if overwrite:
        args.append("--overwrite")
    return shlex.join(args)


@click.command("render")
@click.argument("scene", required=False)
@click.argument("out", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--size", type=SIZE, default="64", show_default=True, help="Image size: N (square) or WxH.")
@click.option("--lights", "n_lights", type=click.IntRange(1, 100000), default=256, show_default=True,
              help="Number of lights (latlong rounds to a 2:1 grid).")
@click.option("--pattern", type=click.Choice(["fibonacci", "latlong"]), default="fibonacci", show_default=True,
              help="How the lights cover the upper hemisphere.")
@click.option("--spp", type=click.IntRange(1, 1 << 16), default=None,
              help="Samples per pixel (default: the scene's, chosen for >= 40 dB between seeds).")
@click.option("--max-depth", type=click.IntRange(2, 1024), default=None,
              help="Path depth: 2 = direct light only, 3 = one bounce of interreflection (default: the scene's).")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Sampler seed.")
@click.option("--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True, help="PNG bit depth.")
@click.option("--overwrite", is_flag=True, help="Replace the images in a non-empty OUT.")
@click.option("--list", "list_", is_flag=True, help="List the scenes and exit.")
@click.option("--json", "json_", is_flag=True, help="Print the render record (render.json) on stdout.")
def render(scene: str | None, out: Path | None, size: tuple[int, int], n_lights: int, pattern: str, spp: int | None,
           max_depth: int | None, seed: int, bit_depth: str, overwrite: bool, list_: bool, json_: bool) -> None:
    """Render an OLAT dataset of SCENE into the folder OUT with Mitsuba 3.

    One image per directional light over the upper hemisphere, linear (not sRGB) values at a
    fixed exposure, written as light_0000.png ... plus lights.txt and render.json.
    Needs: pip install "relightzoo[render]". See the scenes with --list.
    """
    from ..console import console, print_json
    from ..data.folder import write_dataset
    from ..data.render import mitsuba_renderer as mr
    from ..data.render.scenes import get_scene
    from ..lights import hemisphere_pattern

    if list_:
        _list_scenes()
        return
    if scene is None or out is None:
        raise click.UsageError("SCENE and OUT are required (or pass --list to see the scenes)")
    width, height = size
    spec = get_scene(scene)
    lights = hemisphere_pattern(pattern, n_lights)
    start = time.perf_counter()
    renderer = mr.OLATRenderer(spec, width, height, spp=spp, max_depth=max_depth)  # fails early without mitsuba
    _prepare_out(out, overwrite)
    images = mr.render_with(renderer, lights, seed=seed, progress=not json_)
    seconds = time.perf_counter() - start
    write_dataset(out, images, lights, bit_depth=int(bit_depth))

    record = {
        "scene": spec.name,
        "description": spec.description,
        "width": width,
        "height": height,
        "lights": int(len(lights)),
        "pattern": pattern,
        "spp": renderer.spp,
        "max_depth": renderer.max_depth,
        "seed": seed,
        "bit_depth": int(bit_depth),
        "encoding": mr.ENCODING,
        "exposure": spec.exposure,
        "variant": mr.VARIANT,
        "sampler": mr.SAMPLER,
        "integrator": "path",
        "render_seconds": round(seconds, 1),
        "mitsuba_version": mr.mitsuba_version(),
        "relightzoo_version": __version__,
        "command": _command_line(spec.name, out, width, height, n_lights, pattern, renderer.spp,
                                 renderer.max_depth, seed, int(bit_depth), overwrite),
    }
    from ..util.atomic import write_json_atomic

    write_json_atomic(out / RENDER_JSON, record)
    if json_:
        print_json(record)
    else:
        console.print(f"wrote {len(lights)} images of {spec.name} ({width}x{height}, spp {renderer.spp}, "
                      f"depth {renderer.max_depth}) to {out} in {seconds:.1f} s")
