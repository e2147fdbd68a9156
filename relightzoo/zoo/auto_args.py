"""Plugin arguments chosen from the training lights: ``--encoder-arg light_scale=auto``.

Some settings depend on the capture rather than on the scene: how fast a network may vary
with the light direction depends on how far apart the training lights are (a dome of 49
lights leaves twice the angle between neighbours that one of 100 lights does). A plugin
class names such arguments in its ``auto_args`` mapping, argument name -> a function of the
training light directions (float32 ``[T, 3]``) that returns the value to use::

    class DirectionEncoder(Encoder):
        auto_args = {"light_scale": light_scale_for}

Writing ``auto`` for such an argument (``--encoder-arg light_scale=auto``, a recipe's
argument, a spec dict) asks for that choice. It is made once, when a run starts and its
training lights are known (``relightzoo train``, ``relightzoo ablate``,
:func:`relightzoo.train.train`); the run's spec and every checkpoint record the number
chosen, so evaluation, relighting and resume rebuild the same model. ``auto`` for an
argument the plugin cannot choose is a one-line error naming those it can.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, Mapping

import torch

from ..errors import PluginError
from .registry import KINDS

__all__ = ["AUTO", "auto_choosers", "auto_keys", "split_auto", "resolve_auto_args", "resolve_auto_spec"]

AUTO = "auto"
"""The argument value that asks the plugin to choose from the training lights."""

def auto_choosers(kind: str, name: str) -> Mapping[str, Callable[[torch.Tensor], Any]]:
    """The ``auto_args`` of the registered ``kind`` plugin ``name`` (empty when it has none)."""
    from .manager import get_manager

    choosers = getattr(get_manager().registries[kind].get(name).factory, "auto_args", None)
    return choosers if isinstance(choosers, Mapping) else {}


def auto_keys(args: Mapping[str, Any] | None) -> list[str]:
    """The names of the arguments in ``args`` written ``auto`` (any case)."""
    return [key for key, value in (args or {}).items() if isinstance(value, str) and value.strip().lower() == AUTO]


def split_auto(kind: str, name: str, args: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str]]:
    """``args`` without their ``auto`` values, and the names of the arguments written ``auto``
    (checked: :class:`PluginError` for ``auto`` where the ``kind`` plugin ``name`` cannot choose)."""
    plain = dict(args or {})
    asked = auto_keys(plain)
    if asked:
        choosers = auto_choosers(kind, name)
        for key in asked:
            if key not in choosers:
                can = ", ".join(sorted(choosers)) or "none"
                raise PluginError(
                    f"{kind} {name!r} cannot choose {key!r} from the training lights, so {key}=auto is not "
                    f"allowed (its arguments that take auto: {can})"
                )
            del plain[key]
    return plain, asked


def resolve_auto_args(
    kind: str, name: str, args: Mapping[str, Any] | None, train_lights: Any
) -> tuple[dict[str, Any], list[str]]:
    """``args`` with each ``auto`` value replaced by the plugin's choice for ``train_lights``.

    ``train_lights`` are the training light directions (``[T, 3]``, array or tensor). Returns
    the new arguments and one line per choice made (``encoder 'direction': light_scale=auto
    is 0.2 for these 49 training lights``). :class:`PluginError` for ``auto`` where the plugin
    cannot choose (:func:`split_auto`).
    """
    out, asked = split_auto(kind, name, args)
    if not asked:
        return out, []
    choosers = auto_choosers(kind, name)
    lights = torch.as_tensor(train_lights, dtype=torch.float32).detach().cpu().reshape(-1, 3)
    notes: list[str] = []
    for key in asked:
        out[key] = value = choosers[key](lights)
        shown = f"{value:.3g}" if isinstance(value, float) else repr(value)
        notes.append(f"{kind} {name!r}: {key}=auto is {shown} for these {len(lights)} training lights")
    return out, notes


def resolve_auto_spec(spec: Mapping[str, Any], train_lights: Any) -> tuple[dict[str, Any], list[str]]:
    """A model spec (``{"model": {"name", "args"}, "encoder": ..., "activation": ...}``) with
    every ``auto`` argument chosen for ``train_lights`` (:func:`resolve_auto_args`), and the
    lines saying what was chosen. A spec without ``auto`` comes back as an equal copy."""
    out = copy.deepcopy(dict(spec))
    notes: list[str] = []
    for kind in KINDS:
        entry = out.get(kind)
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            continue
        args, said = resolve_auto_args(kind, entry["name"], entry.get("args"), train_lights)
        if said:
            out[kind] = {**entry, "args": args}
            notes.extend(said)
    return out, notes
