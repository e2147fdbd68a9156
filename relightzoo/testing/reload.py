"""Reloading a checkpoint in another Python process, for the conformance kit.

A checkpoint must render with nothing but the file and the installed plugins: no object
left over from the process that trained it. :class:`ReloadProcess` starts one child
interpreter (``python -m relightzoo.testing.reload``) and asks it, one JSON line per
request, to load a checkpoint and render some lights into a safetensors file. The child is
started once and serves every request of the parent process (starting Python and torch
costs seconds; a request costs milliseconds), and each request builds its zoo afresh: the
built-ins plus exactly the plugins registered in the parent, imported by module name, so a
plugin registered by a test fixture is found there too.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any

__all__ = ["ReloadProcess", "reload_process", "plugin_refs", "render_in_fresh_process"]

_TIMEOUT_S = 120.0


def plugin_refs() -> list[dict[str, Any]]:
    """How to register each third-party plugin of this process's zoo in another process:
    ``{"name", "package", "version", "module", "attr"}`` (``attr`` None for a module; else
    a module-level class instantiated without arguments)."""
    from ..zoo.manager import get_manager

    zoo = get_manager()
    refs = []
    for source in zoo.sources:
        if source.builtin:
            continue
        obj = zoo.pm.get_plugin(source.name)
        if isinstance(obj, types.ModuleType):
            module, attr = obj.__name__, None
        else:
            module, attr = type(obj).__module__, type(obj).__qualname__
        refs.append({"name": source.name, "package": source.package, "version": source.version, "module": module, "attr": attr})
    return refs


def _install_plugins(refs: list[dict[str, Any]]) -> None:
    """Make the process-wide zoo the built-ins plus ``refs`` (in the child)."""
    from ..zoo.manager import ZooPlugins, reset_manager

    zoo = ZooPlugins()
    zoo.add_builtins()
    for ref in refs:
        if "<locals>" in str(ref["attr"]):
            raise RuntimeError(f"plugin {ref['name']!r} is a class defined inside a function; define it at module level")
        obj: Any = importlib.import_module(ref["module"])
        if ref["attr"] is not None:
            for part in ref["attr"].split("."):
                obj = getattr(obj, part)
            obj = obj()
        zoo.add_plugin(obj, ref["name"], package=ref["package"], version=ref["version"])
    reset_manager(zoo)


def _serve() -> None:
    """The child's loop: one JSON request per line on stdin, one JSON reply per line on stdout."""
    import torch
    from safetensors.torch import load_file, save_file

    from ..train.checkpoint import load_checkpoint
    from ..zoo.capabilities import render_model

    torch.set_num_threads(1)
    for line in sys.stdin:
        try:
            req = json.loads(line)
            _install_plugins(req["plugins"])
            model, _ = load_checkpoint(req["checkpoint"])
            lights = load_file(req["lights"])["lights"]
            with torch.no_grad():
                image = render_model(model, lights, int(req["height"]), int(req["width"]))
            save_file({"image": torch.as_tensor(image).detach().to("cpu", torch.float32).contiguous()}, req["out"])
            reply: dict[str, Any] = {"ok": True}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the check
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


class ReloadProcess:
    """A child interpreter that loads checkpoints and renders them (see the module docstring)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._path = ""
        self._lock = threading.Lock()

    def _start(self) -> subprocess.Popen[str]:
        path = os.pathsep.join(p for p in sys.path if p)
        if self._proc is not None and self._proc.poll() is None and path != self._path:
            # sys.path changed since the child started (a plugin added to it): a new child sees it
            self._proc.kill()
            self._proc.wait()
        if self._proc is None or self._proc.poll() is not None:
            self._path = path
            env = dict(os.environ, PYTHONPATH=path)
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "relightzoo.testing.reload"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
            )
        return self._proc

    def render(self, checkpoint: Path, lights_file: Path, out: Path, height: int, width: int) -> None:
        """Load ``checkpoint`` there and write its render of the lights in ``lights_file``
        (safetensors, key ``lights``) to ``out`` (key ``image``); raise RuntimeError with the
        child's error otherwise."""
        request = {"checkpoint": str(checkpoint), "lights": str(lights_file), "out": str(out),
                   "height": int(height), "width": int(width), "plugins": plugin_refs()}
        with self._lock:
            proc = self._start()
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(request) + "\n")
            proc.stdin.flush()
            reply_holder: list[str] = []
            reader = threading.Thread(target=lambda: reply_holder.append(proc.stdout.readline()), daemon=True)
            reader.start()
            reader.join(_TIMEOUT_S)
            if not reply_holder or not reply_holder[0]:
                self.close()
                raise RuntimeError("the reloading process did not answer (it crashed or took too long)")
        reply = json.loads(reply_holder[0])
        if not reply["ok"]:
            raise RuntimeError(reply["error"])

    def close(self) -> None:
        """End the child (it also ends when this process exits)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(timeout=5)
            except Exception:  # noqa: BLE001 - it must go either way
                proc.kill()


_shared: ReloadProcess | None = None


def reload_process() -> ReloadProcess:
    """The process-wide :class:`ReloadProcess`, started on first use and ended at exit."""
    global _shared
    if _shared is None:
        _shared = ReloadProcess()
        atexit.register(_shared.close)
    return _shared


def render_in_fresh_process(checkpoint: str | Path, lights: Any, height: int, width: int, folder: str | Path) -> Any:
    """Load ``checkpoint`` in the reloading process (one torch thread, the built-ins and this
    process's plugins) and return its render of ``lights [L, 3]`` at ``height x width`` as a
    float32 tensor ``[L, H, W, 3]``: what a checkpoint holds, and nothing else. ``folder``
    receives the request's two small files."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = Path(folder)
    lights_file, out = folder / "fresh_lights.safetensors", folder / "fresh_render.safetensors"
    save_file({"lights": torch.as_tensor(lights, dtype=torch.float32).reshape(-1, 3).contiguous()}, str(lights_file))
    reload_process().render(Path(checkpoint), lights_file, out, height, width)
    return load_file(str(out))["image"]


if __name__ == "__main__":
    _serve()
