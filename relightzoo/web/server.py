"""The local HTTP server behind ``relightzoo view``: the page, the models' data, server renders.

Built on the standard library's :class:`http.server.ThreadingHTTPServer` (no dependency, and
the viewer is a local tool, not a web service): it binds 127.0.0.1 only, serves the page from
the package (``relightzoo/web/static/``, nothing from a CDN) and a small JSON/PNG API:

==============================  =================================================================
``GET /``                       the page (``static/index.html``); ``/static/NAME`` its script and style
``GET /api/info``               the slots (each model: label, path ``webgl`` or ``server``, size,
                                basis segments), the captured lights, the environment maps
``GET /api/planes/SLOT``        a per-pixel-basis model's planes: float32 RGBA layers ``[L, H, W, 4]``
``GET /api/factors/SLOT``       ``?dirs=x,y,z;...``: the model's light basis ``f(w)`` as JSON
``GET /api/render/SLOT``        ``?light=x,y,z`` or ``?env=I&rotation=DEG&exposure=E``, ``&scale=S``:
                                the model's render as an 8-bit PNG, at 1/S of its size
``GET /api/captured/I``         captured image ``I`` as an 8-bit PNG
``GET /api/compare/SLOT``       ``?index=I``: PSNR of the model's render against captured image ``I``
``GET /api/envmap/I``           a thumbnail of environment map ``I``
==============================  =================================================================

Model calls are serialised by one lock: requests arrive on threads, and a model renders
one frame at a time. :class:`ViewerServer` picks the next free port when the one asked for
is taken and says so.
"""

from __future__ import annotations

import errno
import io
import json
import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import torch

from ..errors import RelightzooError, ViewerError
from ..util.images import to_uint8
from ..metrics import psnr
from ..zoo.capabilities import capabilities, render_model
from .basis import WebBasis, pack_planes
from .envmaps import ViewerEnvmap

__all__ = ["ViewerSlot", "ViewerState", "ViewerServer", "PORT_TRIES", "STATIC_FILES"]

PORT_TRIES = 20
"""How many ports after the one asked for are tried before giving up."""

STATIC_FILES = {"index.html": "text/html; charset=utf-8", "viewer.js": "text/javascript; charset=utf-8",
                "viewer.css": "text/css; charset=utf-8"}
"""The page's files (package data under ``relightzoo/web/static/``) and their content types."""


@dataclass
class ViewerSlot:
    """One model the page shows: ``path`` is ``webgl`` (a per-pixel basis evaluated in the
    page) or ``server`` (rendered here, a quarter-resolution frame first)."""

    label: str
    model: Any
    height: int
    width: int
    basis: WebBasis | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return "webgl" if self.basis is not None else "server"

    def describe(self) -> dict:
        out = {"label": self.label, "path": self.path, "height": self.height, "width": self.width,
               "notes": list(self.notes) + (self.basis.notes if self.basis else []), "basis": None}
        if self.basis is not None:
            _, layers = pack_planes(self.basis.planes[:, :, :1, :1])
            out["basis"] = {"kind": self.basis.kind, "terms": self.basis.terms, "layers": layers,
                            "segments": self.basis.segments, "in_page": self.basis.in_page}
        return out


@dataclass
class ViewerState:
    """Everything the server serves: the slots, the captured images (optional) and the maps."""

    slots: list[ViewerSlot]
    envmaps: list[ViewerEnvmap]
    captured_images: torch.Tensor | None = None  # [L, H, W, 3] float32 in [0, 1]
    captured_lights: torch.Tensor | None = None  # [L, 3]
    captured_source: str | None = None
    title: str = "relightzoo view"
    lock: threading.Lock = field(default_factory=threading.Lock)

    def info(self) -> dict:
        captured = None
        if self.captured_images is not None:
            captured = {"source": self.captured_source, "count": int(len(self.captured_images)),
                        "height": int(self.captured_images.shape[1]), "width": int(self.captured_images.shape[2]),
                        "lights": self.captured_lights.double().tolist()}
        return {
            "title": self.title,
            "slots": [s.describe() for s in self.slots],
            "captured": captured,
            "envmaps": [{"name": e.name, "dirs": e.dirs.tolist(), "weights": e.weights.tolist(),
                         "auto_exposure": e.auto_exposure} for e in self.envmaps],
        }

    # -- rendering on the server ---------------------------------------------------------------
    def render(self, slot: ViewerSlot, query: dict[str, str]) -> np.ndarray:
        """The 8-bit frame ``[h, w, 3]`` a render request asks for."""
        from ..relight import quantize

        scale = max(1, int(float(query.get("scale", "1"))))
        h, w = max(1, slot.height // scale), max(1, slot.width // scale)
        with self.lock, torch.no_grad():
            if "env" in query:
                env = self.envmaps[int(query["env"])]
                rotation = math.radians(float(query.get("rotation", "0")))
                exposure = float(query.get("exposure", env.auto_exposure))
                img = _envmap_render(slot.model, env, rotation, exposure, h, w)
            else:
                light = _direction(query.get("light", "0,0,1"))
                img = render_model(slot.model, light[None], h, w)[0]
        return quantize(img.float().cpu(), 8)

    def compare(self, slot: ViewerSlot, index: int) -> dict:
        """PSNR (dB) of ``slot``'s render at captured light ``index`` against that capture."""
        target = self.captured_images[index]
        with self.lock, torch.no_grad():
            pred = render_model(slot.model, self.captured_lights[index : index + 1], target.shape[0], target.shape[1])[0]
        return {"index": index, "psnr": float(psnr(pred.float().cpu(), target)),
                "light": self.captured_lights[index].double().tolist()}


def _direction(text: str) -> torch.Tensor:
    values = [float(v) for v in text.split(",")]
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise ValueError(f"a light is three finite numbers x,y,z, got {text!r}")
    d = torch.tensor(values, dtype=torch.float32)
    norm = float(d.norm())
    if norm < 1e-12:
        raise ValueError("a light direction must not be zero")
    return d / norm


def rotate_z(dirs: np.ndarray, angle: float) -> np.ndarray:
    """Directions ``[K, 3]`` turned by ``angle`` radians about the vertical axis."""
    c, s = math.cos(angle), math.sin(angle)
    out = np.array(dirs, dtype=np.float64, copy=True)
    out[:, 0], out[:, 1] = c * dirs[:, 0] - s * dirs[:, 1], s * dirs[:, 0] + c * dirs[:, 1]
    return out


def _envmap_render(model: Any, env: ViewerEnvmap, rotation: float, exposure: float, h: int, w: int) -> torch.Tensor:
    """``exposure / pi * sum_j weights_j render(rotated dirs_j)``, clamped (as ``relight --envmap``)."""
    dirs = torch.as_tensor(rotate_z(env.dirs, rotation), dtype=torch.float32)
    weights = torch.as_tensor(env.weights, dtype=torch.float32)
    fast = capabilities(model).relight_envmap
    if fast is not None:
        img = fast(dirs, weights, h, w)
    else:
        img = torch.zeros(h, w, 3)
        for s in range(0, len(dirs), 8):
            renders = render_model(model, dirs[s : s + 8], h, w).float().cpu()
            img += torch.einsum("lhwc,lc->hwc", renders, weights[s : s + 8])
    return (img.float().cpu() * (exposure / math.pi)).clamp_(0.0, 1.0)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _static(name: str) -> bytes:
    return resources.files("relightzoo.web").joinpath("static", name).read_bytes()


class _Handler(BaseHTTPRequestHandler):
    """Routes GET requests to the page and the API; errors are JSON ``{"error": ...}``."""

    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the console is the user's
        pass

    def _send(self, body: bytes, content_type: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(json.dumps(obj).encode(), "application/json", status)

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        route = [p for p in parts.path.split("/") if p]
        state = self.server.state
        try:
            if not route or route == ["index.html"]:
                return self._send(_static("index.html"), STATIC_FILES["index.html"])
            if route[0] == "static" and len(route) == 2 and route[1] in STATIC_FILES:
                return self._send(_static(route[1]), STATIC_FILES[route[1]])
            if route[0] != "api" or len(route) < 2:
                return self._json({"error": f"no such page {parts.path}"}, 404)
            what, arg = route[1], (route[2] if len(route) > 2 else None)
            if what == "info":
                return self._json(state.info())
            if what == "captured" and state.captured_images is not None:
                i = int(arg)
                return self._send(_png(to_uint8(state.captured_images[i])), "image/png")
            if what == "envmap":
                return self._send(state.envmaps[int(arg)].thumbnail_png, "image/png")
            slot = state.slots[int(arg)]
            if what == "planes" and slot.basis is not None:
                layers, _ = pack_planes(slot.basis.planes)
                return self._send(layers.astype("<f4").tobytes(), "application/octet-stream")
            if what == "factors" and slot.basis is not None:
                dirs = torch.stack([_direction(d) for d in query.get("dirs", "0,0,1").split(";")])
                with state.lock:
                    return self._json(slot.basis.factors(dirs).double().tolist())
            if what == "render":
                return self._send(_png(state.render(slot, query)), "image/png")
            if what == "compare" and state.captured_images is not None:
                return self._json(state.compare(slot, int(query["index"])))
            return self._json({"error": f"no such request {parts.path}"}, 404)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            return self._json({"error": f"bad request {parts.path}: {exc}"}, 400)
        except RelightzooError as exc:
            return self._json({"error": str(exc)}, 400)
        except (BrokenPipeError, ConnectionResetError):
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # rebinding over TIME_WAIT after a restart; a port another process listens on stays taken

    def __init__(self, address: tuple[str, int], state: ViewerState) -> None:
        self.state = state
        super().__init__(address, _Handler)


class ViewerServer:
    """The viewer's server on 127.0.0.1, on ``port`` or the next free one.

    ``notice`` says which port was taken when the one asked for was in use (else None).
    Use :meth:`serve_forever` in the foreground (Ctrl-C stops it) or :meth:`start` /
    :meth:`close` for a background thread (tests).
    """

    host = "127.0.0.1"

    def __init__(self, state: ViewerState, port: int = 8765) -> None:
        self.state = state
        self.notice: str | None = None
        last: OSError | None = None
        for candidate in range(port, port + PORT_TRIES + 1) if port else [0]:
            try:
                self._server = _Server((self.host, candidate), state)
                break
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise ViewerError(f"cannot serve on {self.host}:{candidate}: {exc.strerror or exc}") from None
                last = exc
        else:
            raise ViewerError(f"ports {port} to {port + PORT_TRIES} are all in use ({last.strerror if last else ''}); pass --port")
        self.port = int(self._server.server_address[1])
        if port and self.port != port:
            self.notice = f"port {port} is in use; serving on {self.port} instead"
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def serve_forever(self) -> None:
        """Serve until interrupted (Ctrl-C raises KeyboardInterrupt here); always closes the socket."""
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._server.server_close()

    def start(self) -> "ViewerServer":
        """Serve from a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop a background server and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> "ViewerServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
