"""``relightzoo export``: write a checkpoint in a format other tools open.

``--format relight`` writes the Relight/OpenLIME web RTI layout (see
:mod:`relightzoo.export.relight`): ``info.json`` plus coefficient planes as images, for the
models that are such a basis (``ptm``, ``hsh`` of order <= 2); any other model is refused
with one line saying why.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["export"]

FORMATS = ("relight",)


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "format_", type=click.Choice(FORMATS), default="relight", show_default=True,
              help="relight: the Relight/OpenLIME web layout (info.json + planes as images).")
@click.option("--image-format", type=click.Choice(["jpg", "png"]), default="jpg", show_default=True,
              help="Plane images: JPEG (as Relight writes) or lossless PNG.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, show_default=True, help="JPEG quality of the planes.")
def export(checkpoint: Path, out: Path, format_: str, image_format: str, quality: int) -> None:
    """Write CHECKPOINT to the folder OUT in a web RTI format.

    \b
    relightzoo train my-capture --model hsh --model-arg order=2 --out runs/hsh
    relightzoo export runs/hsh/latest.safetensors web/hsh --format relight
    """
    import numpy as np

    from ..console import console
    from ..export.relight import export_relight
    from ..relight import load_model

    model, config = load_model(checkpoint)
    spec = config.get("spec") or {}
    name = spec.get("model", {}).get("name")
    ds = config.get("dataset") or {}
    lights = None
    if ds.get("lights") and (ds.get("split") or {}).get("train") is not None:
        lights = np.asarray(ds["lights"], dtype=np.float64)[np.asarray(ds["split"]["train"], dtype=np.int64)]
    info = export_relight(model, out, name=name, lights=lights, image_format=image_format, quality=quality)
    console.print(
        f"wrote {out}/info.json and {info['nplanes'] // 3} plane images: Relight type {info['type']}, "
        f"{info['nplanes']} planes, {info['width']} x {info['height']}",
        markup=False, highlight=False, soft_wrap=True,
    )
