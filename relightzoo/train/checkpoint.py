"""Checkpoints: one self-describing ``.safetensors`` file per model, and its resume state.

A checkpoint holds the model's state dict as tensors and, in the safetensors metadata under
the key ``relightzoo``, a JSON config: ``format_version``, ``relightzoo_version``, the model
``spec`` (what :func:`relightzoo.zoo.build_from_spec` rebuilds the model from), the
``dataset`` (source, size, lights, the train/test split), the ``training`` settings and the
``step``. It loads and renders with nothing else at hand, and loading executes nothing: the
file is safetensors and JSON, never pickle.

Resume state (optimiser state, step, RNG states, scheduler state) sits beside a checkpoint
as ``<stem>.state.safetensors``: any nested structure of dicts, lists, numbers and tensors is
flattened into named tensors plus a JSON skeleton (see :func:`save_state`).

Every write goes through :mod:`relightzoo.util.atomic` (a temporary file in the same folder,
fsynced, then :func:`os.replace`), so a crash mid-write leaves the previous file intact, and a
full disk or a read-only folder is a one-line :class:`~relightzoo.errors.OutputError`.

Why one module of over 400 lines: it is the one reader and writer of the file format. The
checkpoint and the resume state share the header checks, the JSON schemas, the metadata
layout and the tensor preparation; splitting them would spread one format's rules over
two files.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file as _st_load_file
from safetensors.torch import save as _st_save
from torch import nn

from .. import __version__
from ..util.atomic import write_bytes_atomic
from ..errors import CheckpointError, PluginError
from ..jsonfile import NUMBER, ListOf, MapOf, Nullable, check_schema, parse_json
from ..zoo.factory import spec_or_none

__all__ = [
    "FORMAT_VERSION",
    "METADATA_KEY",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "read_config",
    "state_path",
    "save_state",
    "load_state",
]

FORMAT_VERSION = 1
"""The checkpoint layout this version writes; a file with a larger number needs a newer relightzoo."""

METADATA_KEY = "relightzoo"
"""The safetensors metadata key holding the JSON config."""

_ALIASES_KEY = "relightzoo.aliases"
"""Metadata key mapping the names of shared (tied) tensors to the one name stored."""

_STATE_KEY = "relightzoo.state"
"""Metadata key of a resume-state file's JSON skeleton."""

_MAX_HEADER = 100 * 1024 * 1024
"""safetensors' own limit on the JSON header; a larger length means the file is not safetensors."""


# --------------------------------------------------------------------------------------
# tensors <-> safetensors


def _storage_ptr(t: torch.Tensor) -> int:
    try:
        return t.untyped_storage().data_ptr()
    except Exception:  # pragma: no cover - tensors without storage (meta)
        return 0


def _prepare_tensors(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Make a state dict safetensors-ready: CPU, contiguous, no two names sharing memory.

    Names that are the very same tensor (tied weights) are stored once; the others are
    returned as ``aliases`` (name -> stored name) and restored on load. Tensors that merely
    overlap another's storage (views) are copied.
    """
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple, str] = {}
    used_storage: set[int] = set()
    for name, t in state.items():
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"state dict entry {name!r} is a {type(t).__name__}, not a tensor")
        t = t.detach()
        key = (_storage_ptr(t), t.data_ptr(), tuple(t.shape), tuple(t.stride()), t.dtype, t.device)
        if t.numel() and key in seen:
            aliases[name] = seen[key]
            continue
        if t.numel():
            seen[key] = name
        ptr = _storage_ptr(t)
        out = t.to("cpu").contiguous()
        complete = out.numel() * out.element_size() == out.untyped_storage().nbytes()
        if out.numel() and (ptr in used_storage or _storage_ptr(out) in used_storage or not complete):
            out = out.clone()
        used_storage.add(ptr)
        used_storage.add(_storage_ptr(out))
        tensors[name] = out
    return tensors, aliases


def _read_header(path: Path, what: str) -> dict:
    """Parse a safetensors file's JSON header, telling "not safetensors" from "truncated".

    A safetensors file is an 8-byte little-endian header length, the JSON header, then the
    tensor bytes at the offsets the header lists.
    """
    if not path.exists():
        raise CheckpointError(f"{what} {path} not found")
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a folder, not a .safetensors file")
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path} is not a safetensors file (only {size} bytes)")
        (n,) = struct.unpack("<Q", head)
        if n == 0 or n > _MAX_HEADER:
            raise CheckpointError(f"{path} is not a safetensors file")
        raw = fh.read(n)
    if not raw.startswith(b"{"):
        raise CheckpointError(f"{path} is not a safetensors file")
    if len(raw) < n:
        raise CheckpointError(f"{path} is truncated ({size} bytes, its header alone needs {8 + n}); the write was cut off")
    try:
        header = parse_json(raw, "its header", _NotSafetensors, max_bytes=_MAX_HEADER)
    except _NotSafetensors as exc:
        raise CheckpointError(f"{path} is not a safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is not a safetensors file")
    end = 0
    for name, info in header.items():
        schema = _METADATA_SCHEMA if name == "__metadata__" else _TENSOR_SCHEMA
        problem = check_schema(info, schema, f"header {name!r}")
        if problem:
            raise CheckpointError(f"{path} is not a safetensors file ({problem})")
        if name != "__metadata__":
            end = max(end, info["data_offsets"][1])
    if size < 8 + n + end:
        raise CheckpointError(f"{path} is truncated ({size} of {8 + n + end} bytes); the write was cut off")
    return header


class _NotSafetensors(CheckpointError):
    """A header that is not bounded, valid JSON (reworded by :func:`_read_header`)."""


_TENSOR_SCHEMA = {"dtype": str, "shape": ListOf(int), "data_offsets": ListOf(int, 2, 2)}
_METADATA_SCHEMA = Nullable(MapOf(str))

_PLUGIN_SCHEMA = Nullable({"name": Nullable(str), "args?": Nullable(dict)})  # name None: a custom object
SPEC_SCHEMA = {
    "model": {"name": str, "args?": Nullable(dict)},
    "encoder?": _PLUGIN_SCHEMA,
    "activation?": _PLUGIN_SCHEMA,
    "plugins?": Nullable(MapOf(Nullable(str))),
}
"""The model spec a checkpoint records (what :func:`relightzoo.zoo.build_from_spec` reads)."""

SPLIT_SCHEMA = {
    "rule": str,
    "train": ListOf(int),
    "test": ListOf(int),
    "cap": NUMBER,
    "in_cap": ListOf(int),
    "held_out?": bool,
}
DATASET_SCHEMA = {
    "source?": str,
    "height?": int,
    "width?": int,
    "lights?": ListOf(ListOf(NUMBER, 3, 3)),
    "split?": SPLIT_SCHEMA,
}
TRAINING_SCHEMA = {
    "steps?": int,
    "batch_size?": int,
    "lr?": NUMBER,
    "optimizer?": str,
    "schedule?": Nullable(str),
    "warmup_steps?": int,
    "precision?": str,
    "precision_used?": str,
    "seed?": int,
    "checkpoint_every?": int,
    "log_every?": int,
    "device?": str,
}
CONFIG_SCHEMA = {
    "format_version": int,
    "relightzoo_version?": str,
    "step?": int,
    "spec?": Nullable(SPEC_SCHEMA),
    "dataset?": DATASET_SCHEMA,
    "training?": TRAINING_SCHEMA,
    "metrics?": MapOf(Nullable(NUMBER)),
    "kind?": str,
}
"""The types of a checkpoint's (and a run's ``config.json``) JSON config; other keys are free."""
CONFIG_SCHEMA["checkpoint?"] = Nullable(CONFIG_SCHEMA)  # a resume state's header holds its checkpoint's config


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file whose header was checked, read through a memory map
    (``safetensors.torch.load_file``), so loading never holds the whole file in memory as
    well as its tensors; a damaged body is a one-line :class:`CheckpointError`."""
    try:
        return _st_load_file(str(path))
    except SafetensorError as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None


def _load_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and the metadata of a safetensors file, with one-line errors for bad files."""
    header = _read_header(path, "checkpoint")
    tensors = _read_tensors(path)
    meta = header.get("__metadata__") or {}
    return tensors, {str(k): str(v) for k, v in meta.items()}


# --------------------------------------------------------------------------------------
# checkpoints


def _config_from_metadata(path: Path, meta: dict[str, str]) -> dict:
    text = meta.get(METADATA_KEY)
    if text is None:
        raise CheckpointError(
            f"{path} is a safetensors file but not a relightzoo checkpoint (no {METADATA_KEY!r} metadata)"
        )
    config = parse_json(text, f"{path}: the relightzoo metadata", CheckpointError)
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: the relightzoo metadata is not a JSON object")
    version = config.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: the relightzoo metadata has no format_version")
    if version > FORMAT_VERSION:
        made_by = config.get("relightzoo_version", "a newer version")
        raise CheckpointError(
            f"{path} uses checkpoint format {version} (written by relightzoo {made_by}); this relightzoo "
            f"{__version__} reads format {FORMAT_VERSION}: upgrade relightzoo (pip install -U relightzoo)"
        )
    problem = check_schema(config, CONFIG_SCHEMA)
    if problem:
        raise CheckpointError(f"{path}: the relightzoo metadata is damaged or not relightzoo's ({problem})")
    return config


def save_checkpoint(path: str | Path, model: nn.Module, config: dict) -> Path:
    """Save ``model``'s weights and ``config`` to ``path`` (one ``.safetensors`` file), atomically.

    ``config`` is stored as JSON; ``format_version`` and ``relightzoo_version`` are filled in,
    and so is ``spec`` (from :func:`relightzoo.zoo.model_spec`) when the config has none and
    the model was built by the zoo. Returns the path written.
    """
    path = Path(path)
    config = dict(config)
    config["format_version"] = FORMAT_VERSION
    config["relightzoo_version"] = __version__
    if "spec" not in config:
        spec = spec_or_none(model)
        if spec is not None:
            config["spec"] = spec
    tensors, aliases = _prepare_tensors(model.state_dict())
    metadata = {METADATA_KEY: json.dumps(config, sort_keys=True, default=_json_value)}
    if aliases:
        metadata[_ALIASES_KEY] = json.dumps(aliases, sort_keys=True)
    write_bytes_atomic(path, _st_save(tensors, metadata=metadata), kept=_kept(path))
    return path


def _kept(path: Path) -> str:
    """What survives a failed write of ``path``: the previous file, said with its step."""
    if not path.is_file():
        return f"{path.name} was not written"
    try:
        step = read_config(path).get("step")
    except CheckpointError:
        step = None
    at = f" (step {step})" if isinstance(step, int) else ""
    return f"the previous {path.name}{at} is kept"


def _json_value(o: Any) -> Any:
    """numpy/torch scalars and arrays, and paths, as JSON values."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"a checkpoint config cannot hold a {type(o).__name__}")


def read_config(path: str | Path) -> dict:
    """The JSON config of a checkpoint, reading only its header (no weights, no model)."""
    path = Path(path)
    header = _read_header(path, "checkpoint")
    meta = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    return _config_from_metadata(path, meta)


def read_checkpoint(path: str | Path, *, device: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict (tied names restored) and config of a checkpoint, without building a model."""
    path = Path(path)
    tensors, meta = _load_tensors(path)
    config = _config_from_metadata(path, meta)
    aliases = parse_json(meta.get(_ALIASES_KEY, "{}"), f"{path}: the {_ALIASES_KEY} metadata", CheckpointError)
    problem = check_schema(aliases, MapOf(str))
    if problem or any(target not in tensors for target in aliases.values()):
        raise CheckpointError(f"{path}: the {_ALIASES_KEY} metadata is damaged ({problem or 'it names a tensor the file lacks'})")
    state = {k: v.to(device) for k, v in tensors.items()}
    for name, target in aliases.items():
        state[name] = state[target]
    return state, config


def load_checkpoint(
    path: str | Path,
    *,
    device: str | torch.device = "cpu",
    model: nn.Module | None = None,
    allow_nonfinite: bool = False,
) -> tuple[nn.Module, dict]:
    """Rebuild the model a checkpoint describes, load its weights, and return ``(model, config)``.

    The model is built from the config's ``spec`` through the zoo, so it needs the plugins that
    built it; a missing one is named with the package that provides it. Pass ``model`` to load
    the weights into a model you built instead. The model is returned in eval mode on ``device``.

    Weights that hold NaN or infinity (a diverged run saved by other code) are an error naming
    the first such tensor, since such a model renders nothing but NaN; ``allow_nonfinite``
    loads them anyway with a warning, to inspect them.
    """
    path = Path(path)
    state, config = read_checkpoint(path, device="cpu")
    _check_finite(path, state, allow=allow_nonfinite)
    if model is None:
        spec = config.get("spec")
        if not isinstance(spec, dict):
            raise CheckpointError(f"{path} does not record which model it holds (no 'spec' in its config)")
        model = _build(path, spec)
    _load_weights(path, model, state, config)
    return model.to(device).eval(), config


def _check_finite(path: Path, state: dict[str, torch.Tensor], *, allow: bool) -> None:
    """Refuse (or, with ``allow``, warn about) weights that hold NaN or infinity, naming the tensor."""
    import warnings

    bad = [name for name, t in state.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if not bad:
        return
    first = state[bad[0]]
    count = int((~torch.isfinite(first)).sum())
    more = f" (and {len(bad) - 1} more tensor{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    message = (
        f"{path}: tensor {bad[0]!r} holds {count} NaN or infinite value{'s' if count != 1 else ''} of {first.numel()}{more}; "
        "the run that wrote it diverged, so it renders nothing but NaN"
    )
    if not allow:
        raise CheckpointError(message + "; use an earlier checkpoint, or retrain with a lower --lr")
    warnings.warn(message + "; loaded anyway (allow_nonfinite=True)", stacklevel=3)


def _build(path: Path, spec: dict) -> nn.Module:
    """Build the model of ``spec``, naming any plugin that is not installed and its package."""
    from ..zoo import build_from_spec

    try:
        return build_from_spec(spec)
    except (TypeError, ValueError) as exc:  # arguments the plugin refuses (a damaged or foreign config)
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: cannot rebuild its model from the recorded arguments ({reason})") from None
    except PluginError as exc:
        _check_plugins(path, spec)  # names a plugin that is not installed, if that is the cause
        raise CheckpointError(f"{path}: cannot rebuild its model: {exc}") from None


def _check_plugins(path: Path, spec: dict) -> None:
    """Raise a one-line error naming the first plugin in ``spec`` that is not registered."""
    from ..zoo.factory import missing_plugin, missing_plugin_message

    missing = missing_plugin(spec)
    if missing is not None:
        raise CheckpointError(missing_plugin_message(*missing, needed_by=str(path)))


def _load_weights(path: Path, model: nn.Module, state: dict[str, torch.Tensor], config: dict) -> None:
    """Copy ``state`` into ``model``; a mismatch is one line saying what differs.

    Models whose buffers take their shape from the data (``blend``) adapt while loading, so
    the shapes are compared only after ``load_state_dict`` has refused the weights.
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    try:
        model.load_state_dict(state, strict=True)
        return
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {list(state[k].shape)} vs {list(s)}" for k, s in expected.items() if k in state and tuple(state[k].shape) != s]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", wrong)):
        if items:
            parts.append(f"{label} " + ", ".join(items[:3]) + (" ..." if len(items) > 3 else ""))
    detail = "; ".join(parts) if parts else first
    raise CheckpointError(
        f"{path}: its weights do not match the model its config describes ({detail}); "
        "was the file written for another model?"
    )


# --------------------------------------------------------------------------------------
# resume state


def state_path(checkpoint: str | Path) -> Path:
    """The resume-state file beside a checkpoint: ``latest.safetensors`` -> ``latest.state.safetensors``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.state.safetensors")


def _pack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested structure by a reference, keeping JSON types exact.

    Tensors become ``{"__tensor__": key}``; tuples ``{"__tuple__": [...]}``; dicts whose keys
    are not all strings (an optimiser's per-parameter state is keyed by int) become
    ``{"__items__": [[key, value], ...]}``; dicts that look like one of these markers are
    wrapped too, so unpacking is unambiguous.
    """
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_pack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and not any(k.startswith("__") for k in obj):
            return {k: _pack(v, tensors) for k, v in obj.items()}
        return {"__items__": [[_pack(k, tensors), _pack(v, tensors)] for k, v in obj.items()]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if hasattr(obj, "item") and getattr(obj, "ndim", 1) == 0:  # numpy scalars
        return obj.item()
    if hasattr(obj, "dtype") and hasattr(obj, "shape"):  # numpy arrays, kept as int64/float64 tensors
        arr = np.asarray(obj)
        wide = arr.astype(np.float64 if arr.dtype.kind == "f" else np.int64)
        return _pack(torch.from_numpy(np.ascontiguousarray(wide)), tensors) | {"__numpy__": arr.dtype.str}
    raise TypeError(f"cannot store a {type(obj).__name__} in resume state")


def _unpack(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`_pack`."""
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            t = tensors[obj["__tensor__"]]
            return t.numpy().astype(np.dtype(obj["__numpy__"])) if obj.get("__numpy__") else t
        if "__tuple__" in obj:
            return tuple(_unpack(v, tensors) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {_hashable(_unpack(k, tensors)): _unpack(v, tensors) for k, v in obj["__items__"]}
        return {k: _unpack(v, tensors) for k, v in obj.items()}
    return obj


def _hashable(k: Any) -> Any:
    return tuple(k) if isinstance(k, list) else k


def save_state(path: str | Path, state: dict, *, header: dict | None = None) -> Path:
    """Save a nested resume state (dicts, lists, tuples, numbers, strings, tensors) atomically.

    Tensors are stored as safetensors tensors and the rest as a JSON skeleton in the metadata,
    so the file holds an optimiser's ``state_dict()`` exactly, with its int keys and tuples,
    and loading it runs no code. ``header`` (JSON values) joins the file's relightzoo config,
    which :func:`read_config` reads without loading the tensors; a training run stores the
    step and the checkpoint config there.
    """
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _pack(state, tensors)
    config = dict(header or {}, format_version=FORMAT_VERSION, relightzoo_version=__version__, kind="state")
    metadata = {
        _STATE_KEY: json.dumps(skeleton),
        METADATA_KEY: json.dumps(config, sort_keys=True, default=_json_value),
    }
    write_bytes_atomic(path, _st_save(tensors, metadata=metadata), kept=_kept(path))
    return path


def load_state(path: str | Path) -> dict:
    """Load a resume state written by :func:`save_state`."""
    path = Path(path)
    header = _read_header(path, "resume state")
    meta = {str(k): str(v) for k, v in (header.get("__metadata__") or {}).items()}
    _config_from_metadata(path, meta)
    if _STATE_KEY not in meta:
        raise CheckpointError(f"{path} is a relightzoo file but not a resume state")
    tensors = _read_tensors(path)
    try:
        return _unpack(parse_json(meta[_STATE_KEY], f"{path}: the {_STATE_KEY} metadata", CheckpointError), tensors)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
        raise CheckpointError(f"{path}: its resume state is damaged (the {_STATE_KEY!r} metadata does not match its tensors)") from None
