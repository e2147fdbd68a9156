"""``relightzoo view``: a live relighting viewer in the browser, served on 127.0.0.1.

The command builds what to show (:mod:`relightzoo.web.sources`), starts the local server
(:mod:`relightzoo.web.server`), prints the address (and opens it with ``--open``) and serves
until Ctrl-C, which stops it cleanly and frees the port.
"""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["view"]

DEFAULT_PORT = 8765


@click.command("view")
@click.argument("source", metavar="CHECKPOINT|DATA")
@click.option("--compare", metavar="CHECKPOINT|blend",
              help="A second model beside the first: another checkpoint, or 'blend' on the same training lights.")
@click.option("--data", metavar="DATA",
              help="Captured images to compare with [default: the dataset the checkpoint was trained on, when at hand].")
@click.option("--model", "model_name", metavar="NAME",
              help="For DATA: the closed-form model to fit and show [default: hsh when installed, else blend].")
@click.option("--envmap", "envmaps", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Add an environment map file to the picker (.hdr, .png/.jpg as sRGB, .npy); repeatable.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port on 127.0.0.1; when it is taken the next free one is used (0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option("--device", default="cpu", show_default=True, help="Device for server-side renders (cpu, cuda, auto).")
def view(source: str, compare: str | None, data: str | None, model_name: str | None, envmaps: tuple[Path, ...],
         port: int, open_browser: bool, device: str) -> None:
    """Relight CHECKPOINT (or DATA through a closed-form model) live in the browser.

    Drag the light on the hemisphere pad or type its polar and azimuth angles; light the
    scene with an environment map (rotation, exposure); see the capture nearest the light
    beside the model's render with the PSNR; put a second model beside the first; play an
    orbit or a transition. Per-pixel-basis models (ptm, hsh, rbf, low-rank) are relit in
    the page by a WebGL shader; others (siren, blend) are rendered here, a quarter-resolution
    frame first. The page says which. Ctrl-C stops the server.

    \b
    relightzoo view runs/siren/latest.safetensors --compare blend
    relightzoo view demo --model hsh
    """
    import webbrowser

    from ..console import console
    from ..util.devices import resolve_device
    from ..web.server import ViewerServer
    from ..web.sources import build_state

    state = build_state(source, compare=compare, data=data, model_name=model_name, envmap_files=envmaps,
                        device=resolve_device(device))
    server = ViewerServer(state, port)
    say = lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    if server.notice:
        say(server.notice)
    for slot in state.slots:
        how = "relit in the page (WebGL)" if slot.path == "webgl" else "rendered by the server (quarter resolution first)"
        say(f"{slot.label}: {slot.width} x {slot.height}, {how}")
    say(f"serving {server.url} (Ctrl-C to stop)")
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    say("stopped")
