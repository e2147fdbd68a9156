"""Frame rates of ``relightzoo view``: the in-page WebGL path and the server path.

Runs the viewer's server in this process and drives the page in the system's headless
Chromium with software GL (SwiftShader; see relightzoo/web/browser.py), like the browser
tests. Each figure sits beside a reference measured in the same run on the same frames:

- in-page path: a per-pixel-basis model at SIZE x SIZE (a ``low-rank`` table of
  ``--rank`` + 9 harmonic planes, untrained: speed does not depend on the values; and
  ``hsh`` order 2 fitted to a synthetic capture when that model is installed). The page
  draws ``--frames`` frames of an orbit, waiting for each (``readPixels``), and reports
  frames a second; the reference is the same frames rendered by the model in torch here.
- server path: a default ``siren`` (3 x 256, sine) at SIZE x SIZE: full frames and the
  quarter-resolution first frames through the page (request, render, PNG, draw), beside
  the model's own render time in torch (the floor the server path can reach).

    python benchmarks/viewer_fps.py                       # 512 x 512, prints a table
    python benchmarks/viewer_fps.py --json fps.json
    python benchmarks/viewer_fps.py --screenshot docs/images/viewer.png --checkpoint RUN/latest.safetensors

Target (issue 10): in-page >= 30 frames a second at 512 x 512 on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from relightzoo.web.browser import find_chromium, launch_chromium
from relightzoo.web.server import ViewerServer, ViewerState
from relightzoo.web.sources import build_state, model_slot
from relightzoo.zoo import create_model, list_plugins
from relightzoo.zoo.capabilities import render_model


def _orbit(frames: int) -> torch.Tensor:
    p = math.radians(45)
    return torch.tensor([[math.sin(p) * math.cos(a), math.sin(p) * math.sin(a), math.cos(p)]
                         for a in (2 * math.pi * n / frames for n in range(frames))], dtype=torch.float32)


def _torch_fps(model, size: int, frames: int) -> float:
    lights = _orbit(frames)
    render_model(model, lights[:1], size, size)  # warm-up
    t0 = time.perf_counter()
    for i in range(frames):
        render_model(model, lights[i : i + 1], size, size)
    return frames / (time.perf_counter() - t0)


def _low_rank(size: int, rank: int):
    torch.manual_seed(0)
    model = create_model("low-rank", rank=rank, height=size, width=size)
    with torch.no_grad():
        model.table.normal_(0, 0.3)
        model.light_net[-1].weight.normal_(0, 0.1)
    model.initialised.fill_(1)
    return model.eval()


def _hsh(size: int):
    if "hsh" not in {p.name for p in list_plugins("model")}:
        return None
    from relightzoo.data.synthetic import lambertian_scene
    from relightzoo.lights import fibonacci_hemisphere

    lights = fibonacci_hemisphere(30)
    images = torch.as_tensor(lambertian_scene(lights, size, size, 0), dtype=torch.float32)
    model = create_model("hsh", order=2)
    model.attach_training_data(images, torch.as_tensor(lights, dtype=torch.float32))
    return model.eval()


def _page(browser, server: ViewerServer):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    page.evaluate("window.relightzoo.ready")
    return page


def _webgl_renderer(page) -> str:
    return page.evaluate("""() => { const gl = document.createElement('canvas').getContext('webgl2');
        const ext = gl.getExtension('WEBGL_debug_renderer_info');
        return ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER); }""")


def measure(size: int, frames: int, rank: int, server_frames: int) -> dict:
    from playwright.sync_api import sync_playwright

    rows = []
    machine = {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
               "chromium": subprocess.run([str(find_chromium()), "--version"], capture_output=True, text=True).stdout.strip()}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        in_page = [("low-rank", _low_rank(size, rank)), ("hsh", _hsh(size))]
        for name, model in in_page:
            if model is None:
                continue
            slot = model_slot(model, name, None, name)
            assert slot.path == "webgl", name
            with ViewerServer(ViewerState(slots=[slot], envmaps=[]), 0) as server:
                page = _page(browser, server)
                machine["webgl_renderer"] = _webgl_renderer(page)
                page.evaluate("window.relightzoo.benchmark(0, 5)")  # warm-up
                fps = page.evaluate(f"window.relightzoo.benchmark(0, {frames})")
                page.close()
            ref = _torch_fps(model, size, max(5, frames // 10))
            rows.append({"path": "in-page WebGL", "model": f"{name} ({slot.basis.terms} planes)", "size": f"{size}x{size}",
                         "frames": frames, "fps": round(fps, 1), "reference": "torch render, this process",
                         "reference_fps": round(ref, 1), "ratio": round(fps / ref, 2)})

        siren = create_model("siren").eval()
        slot = model_slot(siren, "siren", (size, size), "siren")
        with ViewerServer(ViewerState(slots=[slot], envmaps=[]), 0) as server:
            page = _page(browser, server)
            page.evaluate("window.relightzoo.benchmark(0, 1)")  # warm-up
            full = page.evaluate(f"window.relightzoo.benchmark(0, {server_frames})")
            # the quarter-resolution first frames alone: a stream of lights, each replaced before its full frame
            quarter = page.evaluate(f"""async () => {{
                const v = window.relightzoo.state.views[0], t0 = performance.now();
                for (let n = 0; n < {server_frames * 4}; n++) {{
                  const q = `light=${{[Math.sin(0.8) * Math.cos(n), Math.sin(0.8) * Math.sin(n), Math.cos(0.8)].join(",")}}`;
                  const r = await fetch(`/api/render/0?${{q}}&scale=4`);
                  const bmp = await createImageBitmap(await r.blob());
                  v.ctx.drawImage(bmp, 0, 0, v.slot.width, v.slot.height);
                }}
                return {server_frames * 4} * 1000 / (performance.now() - t0); }}""")
            page.close()
        ref_full = _torch_fps(siren, size, server_frames)
        ref_quarter = _torch_fps(siren, size // 4, server_frames * 4)
        rows.append({"path": "server (full frame)", "model": "siren 3x256 sine", "size": f"{size}x{size}",
                     "frames": server_frames, "fps": round(full, 2), "reference": "torch render, this process",
                     "reference_fps": round(ref_full, 2), "ratio": round(full / ref_full, 2)})
        rows.append({"path": "server (quarter-resolution first frame)", "model": "siren 3x256 sine",
                     "size": f"{size // 4}x{size // 4}", "frames": server_frames * 4, "fps": round(quarter, 1),
                     "reference": "torch render, this process", "reference_fps": round(ref_quarter, 1),
                     "ratio": round(quarter / ref_quarter, 2)})
        browser.close()
    return {"machine": machine, "rows": rows}


def screenshot(checkpoint: str, path: Path, compare: str | None) -> None:
    """A picture of the page for the docs: CHECKPOINT beside --compare, light at polar 40."""
    from playwright.sync_api import sync_playwright

    state = build_state(checkpoint, compare=compare)
    with sync_playwright() as pw, ViewerServer(state, 0) as server:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1100, "height": 760})
        page.goto(server.url)
        page.evaluate("window.relightzoo.ready")
        page.evaluate(f"window.relightzoo.setLight({math.sin(0.7) * math.cos(2.3)}, {math.sin(0.7) * math.sin(2.3)}, {math.cos(0.7)})")
        page.evaluate("window.relightzoo.settled()")
        page.wait_for_timeout(800)  # the captured comparison loads after a pause
        page.screenshot(path=str(path), type="png")
        browser.close()
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)  # keep docs small


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--frames", type=int, default=120, help="in-page frames timed")
    parser.add_argument("--server-frames", type=int, default=3, help="full server frames timed")
    parser.add_argument("--rank", type=int, default=4, help="learned planes of the low-rank model (9 harmonic planes on top)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--screenshot", type=Path, help="instead: save a picture of the page viewing --checkpoint")
    parser.add_argument("--checkpoint", help="the checkpoint the --screenshot shows")
    parser.add_argument("--compare", default="blend", help="the second model in the --screenshot")
    args = parser.parse_args()
    if args.screenshot:
        screenshot(args.checkpoint, args.screenshot, args.compare)
        print(f"wrote {args.screenshot} ({args.screenshot.stat().st_size // 1024} KiB)")
        return
    result = measure(args.size, args.frames, args.rank, args.server_frames)
    print(json.dumps(result["machine"]))
    print("| path | model | size | frames/s | reference | reference frames/s | ratio |")
    print("|---|---|---|---|---|---|---|")
    for r in result["rows"]:
        print(f"| {r['path']} | {r['model']} | {r['size']} | {r['fps']} | {r['reference']} | {r['reference_fps']} | {r['ratio']} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
