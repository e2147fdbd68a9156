"""The checks every plugin must pass, by kind, each with a name.

A model is checked as itself (built with its defaults); an encoder or an activation is
checked inside a small SIREN (``hidden_features=16``, ``hidden_layers=2``) that uses it,
since that is how the zoo uses them. The checks run in order on one shared subject: the
model built first is the one fitted, saved and reloaded, so a later check that needs an
earlier one's result fails with that check's name when it is missing.

Why one module of over 400 lines: the named checks run in order on one shared subject and
each reads the result of the ones before it, so they are kept in the order they run.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import PluginError, RelightzooError

__all__ = ["CheckResult", "CHECKS", "PluginCheck", "run_checks"]

_HOST = {"hidden_features": 16, "hidden_layers": 2}
"""The small SIREN an encoder or activation is checked in."""
_FIT_STEPS = 3
"""Optimiser steps of the fit (with the model's own other training settings)."""
_CHUNK = 37
"""An odd, small chunk: rows split mid-image and a last chunk shorter than the rest."""


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``passed``, and ``message`` saying what failed (or a note)."""

    kind: str
    plugin: str
    check: str
    passed: bool
    message: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "plugin": self.plugin, "check": self.check, "passed": self.passed,
                "message": self.message, "seconds": round(self.seconds, 4)}


class CheckFailed(AssertionError):
    """Raised inside a check: the plugin breaks the contract (the message says how)."""


class _Note(Exception):
    """Raised inside a check that passes with a remark (e.g. a capability not offered)."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise CheckFailed(message)


@dataclass
class PluginCheck:
    """The shared state of one plugin's checks: what was built, fitted and saved so far."""

    kind: str
    name: str
    workdir: Path
    model: Any = None
    fitted: Any = None
    checkpoint: Path | None = None
    notes: dict[str, str] = field(default_factory=dict)

    # -- building ------------------------------------------------------------------------
    def spec_args(self) -> dict[str, Any]:
        """Arguments to model_spec/create_model that build this plugin's subject."""
        if self.kind == "model":
            return {}
        return {self.kind: self.name, **_HOST}

    def model_name(self) -> str:
        return self.name if self.kind == "model" else "siren"

    def build(self) -> Any:
        from ..zoo import create_model

        return create_model(self.model_name(), **self.spec_args())

    def need(self, attr: str, check: str) -> Any:
        value = getattr(self, attr)
        _require(value is not None, f"needs what check {check!r} makes, and it failed")
        return value


# -- the checks ----------------------------------------------------------------------------


def check_builds_from_defaults(pc: PluginCheck) -> None:
    """The plugin builds with no arguments and is of its kind's base class."""
    from ..zoo import Backbone, Encoder, RelightModel, create_activation, create_encoder

    if pc.kind == "encoder":
        enc = create_encoder(pc.name)
        _require(isinstance(enc, Encoder), f"create_encoder({pc.name!r}) built a {type(enc).__name__}, not an Encoder")
        _require(isinstance(getattr(enc, "out_features", None), int) and enc.out_features >= 1,
                 f"out_features must be a positive int, got {getattr(enc, 'out_features', None)!r}")
    elif pc.kind == "activation":
        act = create_activation(pc.name)
        _require(isinstance(act, Backbone), f"create_activation({pc.name!r}) built a {type(act).__name__}, not a Backbone")
    pc.model = pc.build()
    _require(isinstance(pc.model, RelightModel), f"the model is a {type(pc.model).__name__}, not a RelightModel")


def check_builds_from_spec(pc: PluginCheck) -> None:
    """``build_from_spec(model_spec(...))`` builds the same class with the same state shapes."""
    from ..zoo import build_from_spec, model_spec

    model = pc.need("model", "builds_from_defaults")
    rebuilt = build_from_spec(model_spec(pc.model_name(), **pc.spec_args()))
    _require(type(rebuilt) is type(model), f"the spec builds a {type(rebuilt).__name__}, defaults a {type(model).__name__}")
    want = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    _require(want == got, f"the spec builds other weights: {sorted(set(want.items()) ^ set(got.items()))[:3]}")


def check_spec_round_trip(pc: PluginCheck) -> None:
    """The model describes itself: its spec survives JSON and rebuilds the same spec."""
    from ..zoo import build_from_spec, model_spec

    model = pc.need("model", "builds_from_defaults")
    spec = model_spec(model)
    try:
        text = json.dumps(spec, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise CheckFailed(f"the spec is not plain JSON ({exc}); arguments must be int, float, bool, str or lists") from None
    _require(json.loads(text) == spec, "the spec changes through JSON (tuples or non-string keys in the arguments?)")
    again = model_spec(build_from_spec(json.loads(text)))
    _require(again == spec, f"rebuilding from the spec describes another model: {again} != {spec}")
    if pc.kind == "activation":
        from ..zoo import create_activation, get_plugin

        defaults = get_plugin("activation", pc.name).defaults
        if defaults:
            described = create_activation(pc.name).describe()
            _require(described == defaults, f"describe() returns {described}, the arguments are {defaults}")


def check_fits_a_small_scene(pc: PluginCheck) -> None:
    """``relightzoo.train`` fits it on the kit scene (a few steps with the model's own
    settings, or its closed-form fit);
    the training loss is finite and the fit changes the model."""
    from ..train import train
    from ..zoo.capabilities import capabilities
    from .scene import kit_scene

    dataset, split = kit_scene()
    spec = pc.build()
    before = {k: v.detach().clone() for k, v in spec.state_dict().items()}
    caps = capabilities(spec)
    result = train(dataset, split, spec, steps=_FIT_STEPS, out_dir=pc.workdir / "fit",
                   progress=False, log_every=_FIT_STEPS, overwrite=True)
    model = result.model
    if caps.trainable:
        _require(result.loss is not None and math.isfinite(result.loss), f"training loss is {result.loss}")
    after = model.state_dict()
    changed = [k for k, v in after.items() if k not in before or before[k].shape != v.shape or not torch.equal(before[k], v.cpu())]
    if caps.trainable or caps.needs_images:
        _require(bool(changed), "fitting changed none of the model's weights or buffers")
    pc.fitted, pc.checkpoint = model.eval(), result.latest


def _lights(n: int = 2) -> torch.Tensor:
    from .scene import kit_scene

    dataset, split = kit_scene()
    return dataset.lights[torch.as_tensor(split.test[:n])].to(torch.float32)


def _render(model: Any, lights: torch.Tensor, height: int, width: int, chunk: int | None = None) -> torch.Tensor:
    from ..zoo.capabilities import render_model

    with torch.no_grad():
        out = render_model(model, lights, height, width, chunk=chunk)
    _require(isinstance(out, torch.Tensor), f"render returned a {type(out).__name__}, not a tensor")
    out = out.detach().to("cpu")
    _require(tuple(out.shape) == (len(lights), height, width, 3),
             f"render of {len(lights)} lights at {height}x{width} returned shape {list(out.shape)}, "
             f"expected {[len(lights), height, width, 3]}")
    _require(out.dtype == torch.float32, f"render returned {out.dtype}, expected torch.float32")
    _require(bool(torch.isfinite(out).all()), "render returned NaN or infinite values")
    _require(float(out.min()) >= 0.0 and float(out.max()) <= 1.0, f"render left [0, 1]: {float(out.min()):g} .. {float(out.max()):g}")
    return out


def check_renders_the_contract(pc: PluginCheck) -> None:
    """``render(lights [L, 3], H, W)`` is float32 ``[L, H, W, 3]`` in [0, 1], and a light
    renders the same alone as in a batch."""
    from .scene import kit_scene

    model = pc.need("fitted", "fits_a_small_scene")
    dataset, _ = kit_scene()
    lights = _lights(2)
    both = _render(model, lights, dataset.height, dataset.width)
    alone = _render(model, lights[1:], dataset.height, dataset.width)
    err = float((both[1:] - alone).abs().max())
    _require(err <= 1e-5, f"a light renders differently alone than in a batch (max difference {err:.3g})")


def check_renders_at_another_size(pc: PluginCheck) -> None:
    """It renders at a size other than the training images' (odd, not square)."""
    from .scene import kit_scene

    model = pc.need("fitted", "fits_a_small_scene")
    dataset, _ = kit_scene()
    _render(model, _lights(1), dataset.height + 7, dataset.width - 5)


def check_renders_in_chunks(pc: PluginCheck) -> None:
    """A small ``chunk`` (samples per forward pass) gives the same image as the default."""
    from ..zoo.capabilities import render_takes_chunk
    from .scene import kit_scene

    model = pc.need("fitted", "fits_a_small_scene")
    dataset, _ = kit_scene()
    lights = _lights(1)
    whole = _render(model, lights, dataset.height, dataset.width)
    chunked = _render(model, lights, dataset.height, dataset.width, chunk=_CHUNK)
    err = float((whole - chunked).abs().max())
    _require(err <= 1e-5, f"rendering with chunk={_CHUNK} changes the image (max difference {err:.3g})")
    if not render_takes_chunk(model):
        raise _Note("render takes no chunk: rendered whole")


def check_reloads_in_a_fresh_process(pc: PluginCheck) -> None:
    """The saved checkpoint, loaded in another Python process, renders the same image."""
    from safetensors.torch import load_file, save_file

    from .reload import reload_process
    from .scene import kit_scene

    model = pc.need("fitted", "fits_a_small_scene")
    dataset, _ = kit_scene()
    lights = _lights(2)
    here = _render(model, lights, dataset.height, dataset.width)
    save_file({"lights": lights.contiguous()}, pc.workdir / "lights.safetensors")
    out = pc.workdir / "reloaded.safetensors"
    try:
        reload_process().render(pc.checkpoint, pc.workdir / "lights.safetensors", out, dataset.height, dataset.width)
    except RuntimeError as exc:
        raise CheckFailed(f"another process could not load and render the checkpoint: {exc}") from None
    there = load_file(out)["image"]
    _require(tuple(there.shape) == tuple(here.shape), f"reloaded render has shape {list(there.shape)}, expected {list(here.shape)}")
    err = float((there - here).abs().max())
    _require(err <= 1e-6, f"the reloaded model renders differently (max difference {err:.3g}); "
             "is some state kept outside the state dict or the arguments?")


def check_envmap_equals_sum_of_renders(pc: PluginCheck) -> None:
    """Where the model offers ``relight_envmap(dirs [K, 3], weights [K, 3], H, W)``, it is
    ``sum_k weights[k] * render(dirs[k])`` (per RGB channel; no exposure scaling, unclamped)
    on every pixel no single render clamps."""
    from ..zoo.capabilities import capabilities
    from .scene import kit_scene

    model = pc.need("fitted", "fits_a_small_scene")
    fast = capabilities(model).relight_envmap
    if fast is None:
        raise _Note("no relight_envmap: environment maps sum single renders")
    dataset, _ = kit_scene()
    h, w = dataset.height, dataset.width
    gen = torch.Generator().manual_seed(0)
    dirs = torch.nn.functional.normalize(torch.rand(5, 3, generator=gen) * torch.tensor([2.0, 2.0, 1.0]) - torch.tensor([1.0, 1.0, -0.2]), dim=-1)
    weights = torch.rand(5, 3, generator=gen) * 0.3
    with torch.no_grad():
        one_pass = torch.as_tensor(fast(dirs, weights, h, w)).detach().to("cpu", torch.float32)
    _require(tuple(one_pass.shape) == (h, w, 3), f"relight_envmap returned shape {list(one_pass.shape)}, expected {[h, w, 3]}")
    singles = _render(model, dirs, h, w)
    summed = torch.einsum("khwc,kc->hwc", singles, weights)
    unclamped = ((singles > 0.0) & (singles < 1.0)).all(dim=0)
    _require(bool(unclamped.any()), "every pixel of some single render is clamped; cannot compare")
    err = float((one_pass - summed)[unclamped].abs().max())
    _require(err <= 1e-4, f"relight_envmap differs from the weighted sum of renders by {err:.3g} "
             "(it must not scale by exposure or clamp)")


_BAD_VALUES: dict[type, tuple[Any, ...]] = {
    int: (-1, 0),
    float: (float("nan"), float("inf"), -1.0, 0.0),
    str: ("no-such-value",),
}


def check_rejects_bad_arguments(pc: PluginCheck) -> None:
    """An unknown argument, a value of the wrong type and any value the plugin refuses all
    raise the zoo's error type (:class:`~relightzoo.errors.RelightzooError`), never another
    exception; a model that reads images refuses images of the wrong shape the same way."""
    from ..zoo import create_model, get_plugin
    from ..zoo.capabilities import capabilities

    info = get_plugin(pc.kind, pc.name)
    arg_key = {"model": None, "encoder": "encoder_args", "activation": "activation_args"}[pc.kind]

    def build(**args: Any) -> Any:
        if arg_key is None:
            return create_model(pc.name, **args)
        return create_model("siren", **{pc.kind: pc.name, arg_key: args}, **_HOST)

    for args, what in (({"no_such_argument": 1}, "an unknown argument"),):
        try:
            build(**args)
        except RelightzooError:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of the check
            raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from None
        else:
            raise CheckFailed(f"{what} was accepted")
    for key, default in info.defaults.items():
        kind = type(default)
        wrong = [] if kind is str or default is None else ["not-a-value"]
        for value in list(_BAD_VALUES.get(kind, ())) + wrong:
            try:
                build(**{key: value})
            except RelightzooError:
                continue
            except Exception as exc:  # noqa: BLE001 - the point of the check
                raise CheckFailed(f"{key}={value!r} raised {type(exc).__name__} instead of a PluginError: {exc}") from None
            if value == "not-a-value":
                raise CheckFailed(f"{key}={value!r} (a {kind.__name__} argument) was accepted")
    model = pc.need("model", "builds_from_defaults")
    if capabilities(model).needs_images:
        try:
            model.attach_training_data(torch.zeros(2, 4, 4), torch.zeros(2, 3))
        except RelightzooError:
            pass
        except Exception as exc:  # noqa: BLE001 - the point of the check
            raise CheckFailed(f"attach_training_data with images [2, 4, 4] raised {type(exc).__name__}: {exc}") from None


def _is_pickle(data: bytes) -> bool:
    """Whether ``data`` starts like a pickle (protocol 2 to 5) and ends with its STOP opcode."""
    return len(data) >= 3 and data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05") and data[-1:] == b"."


def check_no_pickle_in_the_checkpoint(pc: PluginCheck) -> None:
    """Every file the run wrote is safetensors, JSON or text, and no byte tensor in them
    holds a pickled object: nothing a loader would have to unpickle."""
    from safetensors import safe_open

    pc.need("checkpoint", "fits_a_small_scene")
    run = pc.checkpoint.parent
    for path in sorted(p for p in run.rglob("*") if p.is_file()):
        data = path.read_bytes()
        _require(not _is_pickle(data), f"{path.name} is a pickle")
        _require(data[:4] != b"PK\x03\x04", f"{path.name} is a zip archive (torch.save?)")
        if path.suffix != ".safetensors":
            continue
        try:
            with safe_open(str(path), framework="pt") as fh:
                for key in fh.keys():
                    tensor = fh.get_tensor(key)
                    if tensor.dtype in (torch.uint8, torch.int8) and _is_pickle(tensor.numpy().tobytes()):
                        raise CheckFailed(f"{path.name}: tensor {key!r} holds a pickle; store tensors and plain arguments instead")
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to parse is a failure
            raise CheckFailed(f"{path.name} is not a valid safetensors file: {exc}") from None


# -- the registry of checks ------------------------------------------------------------------

_ALL: tuple[tuple[str, Callable[[PluginCheck], None]], ...] = (
    ("builds_from_defaults", check_builds_from_defaults),
    ("builds_from_spec", check_builds_from_spec),
    ("spec_round_trip", check_spec_round_trip),
    ("fits_a_small_scene", check_fits_a_small_scene),
    ("renders_the_contract", check_renders_the_contract),
    ("renders_at_another_size", check_renders_at_another_size),
    ("renders_in_chunks", check_renders_in_chunks),
    ("reloads_in_a_fresh_process", check_reloads_in_a_fresh_process),
    ("envmap_equals_sum_of_renders", check_envmap_equals_sum_of_renders),
    ("rejects_bad_arguments", check_rejects_bad_arguments),
    ("no_pickle_in_the_checkpoint", check_no_pickle_in_the_checkpoint),
)

CHECKS: dict[str, tuple[str, ...]] = {
    "model": tuple(name for name, _ in _ALL),
    "encoder": tuple(name for name, _ in _ALL if name != "envmap_equals_sum_of_renders"),
    "activation": tuple(name for name, _ in _ALL if name != "envmap_equals_sum_of_renders"),
}
"""The named checks each plugin kind must pass, in the order they run."""


def run_checks(kind: str, name: str, checks: tuple[str, ...] | None = None) -> Iterator[CheckResult]:
    """Run the checks of one plugin in order, yielding each result as it finishes."""
    from ..zoo.factory import registry

    info = registry(kind).get(name)
    kind, name = info.kind, info.name
    wanted = CHECKS[kind] if checks is None else tuple(checks)
    unknown = [c for c in wanted if c not in CHECKS[kind]]
    if unknown:
        raise PluginError(f"unknown check {unknown[0]!r} for a {kind}; checks: {', '.join(CHECKS[kind])}")
    functions = dict(_ALL)
    with tempfile.TemporaryDirectory(prefix="relightzoo-kit-") as tmp:
        pc = PluginCheck(kind, name, Path(tmp))
        for check in CHECKS[kind]:
            if check not in wanted and not _feeds(check, wanted):
                continue
            t0 = time.perf_counter()
            try:
                functions[check](pc)
                passed, message = True, ""
            except _Note as note:
                passed, message = True, str(note)
            except CheckFailed as exc:
                passed, message = False, str(exc)
            except Exception as exc:  # noqa: BLE001 - a crash inside the plugin fails the check, named
                passed, message = False, f"{type(exc).__name__}: {exc}"
            if check in wanted:
                yield CheckResult(kind, name, check, passed, message.splitlines()[0] if message else "", time.perf_counter() - t0)


def _feeds(check: str, wanted: tuple[str, ...]) -> bool:
    """Whether ``check`` makes state a wanted check reads (build and fit run when needed)."""
    return check in ("builds_from_defaults", "fits_a_small_scene") and any(
        w not in ("builds_from_defaults",) for w in wanted
    )
