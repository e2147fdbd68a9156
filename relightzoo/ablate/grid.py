"""An ablation grid: what it varies, what it holds fixed, its cells and their names.

A :class:`Grid` is models x encoders x activations x light rules x seeds on one dataset,
with one set of training settings and plugin arguments shared by every cell.
:func:`build_grid` checks it before anything trains: an empty axis, and every unknown
plugin name or plugin argument anywhere in the grid, are reported together in one line
with the nearest registered name for each. :func:`check_rules` checks the light rules
against the dataset.

Cells (:meth:`Grid.cells`): every model that uses an encoder and an activation
(:attr:`relightzoo.zoo.PluginInfo.uses`) gets one cell per encoder x activation x rule x
seed; a model that uses neither gets one per rule x seed. The classical baselines
(:data:`BASELINES`: ``blend``, ``ptm``, ``hsh``, ``rbf``, each with its default arguments)
are one extra cell each per rule (they have no randomness), so every table has them; a fit
that needs more training lights than a rule gives is recorded as skipped. Naming a baseline
in ``models`` adds nothing beyond its row unless the grid's ``--model-arg`` changes it (``hsh``
with ``order=3``): it then gets its own cells like any model. A cell's name joins its parts with ``_`` (plugin
names never hold one: the registry turns underscores into dashes), for example
``siren_scaled-spherical_sine_xu5-0.77_s0`` and ``blend_xu5-0.77``.

Plugin arguments (``--encoder-arg`` etc.) go to every plugin of the grid that takes them,
so ``pixel_scale=6`` tunes ``fourier`` while ``raw`` ignores it; an argument that no plugin
of its kind in the grid takes is an error.

Why one module of over 400 lines: a grid's definition, its cell names, the checks of every
name and argument it holds and its results folder's claim all read the same fields, and
``grid.json`` must round-trip through all of them; running cells is :mod:`.runner`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..util.atomic import write_json_atomic
from ..util.names import nearest_names
from ..errors import GridError, LightsError, OutputError, PluginError

__all__ = [
    "BASELINE",
    "BASELINES",
    "Cell",
    "Grid",
    "GridError",
    "build_grid",
    "check_rules",
    "cell_name",
    "parse_list",
    "grid_differences",
    "claim_results_dir",
    "GRID_FILE",
]

GRID_FILE = "grid.json"
"""The grid definition, stored in the results folder so a rerun resumes only the same grid."""

BASELINE = "blend"
"""The baseline every cell's PSNR difference (``delta_vs_blend``) is taken against."""

BASELINES = ("blend", "ptm", "hsh", "rbf")
"""The classical baselines every table carries as rows, one each per light rule (the same as
:data:`relightzoo.evaluate.BASELINES`, kept here so that listing cells imports no torch)."""


def parse_list(text: str | Iterable[str] | None) -> list[str]:
    """Comma-separated names as a list: blanks dropped, whitespace stripped, repeats removed
    (first kept). ``"raw, fourier,,raw"`` -> ``["raw", "fourier"]``."""
    if text is None:
        return []
    items = text.split(",") if isinstance(text, str) else [t for part in text for t in str(part).split(",")]
    out: list[str] = []
    for item in (i.strip() for i in items):
        if item and item not in out:
            out.append(item)
    return out


def _rule_part(rule: str) -> str:
    """A light rule as a file-name part: ``xu5:0.77`` -> ``xu5-0.77``, ``list:1,2`` -> ``list-1-2``."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", rule).strip("-") or "rule"


def cell_name(model: str, encoder: str | None, activation: str | None, rule: str, seed: int | None) -> str:
    """The folder name of a cell: its parts joined by ``_`` (see the module docstring)."""
    parts = [model, encoder, activation, _rule_part(rule), None if seed is None else f"s{seed}"]
    return "_".join(p for p in parts if p)


@dataclass(frozen=True)
class Cell:
    """One training-and-evaluation run of the grid (or a baseline row)."""

    name: str
    model: str
    encoder: str | None
    activation: str | None
    lights: str
    seed: int
    baseline: bool = False

    @property
    def label(self) -> str:
        """A short human label: ``siren scaled-spherical/sine``, ``blend (baseline)``."""
        if self.baseline:
            return f"{self.model} (baseline)"
        parts = "/".join(p for p in (self.encoder, self.activation) if p)
        return f"{self.model} {parts}".strip()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "encoder": self.encoder,
            "activation": self.activation,
            "lights": self.lights,
            "seed": self.seed,
            "baseline": self.baseline,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Cell":
        return cls(**{k: d[k] for k in ("name", "model", "encoder", "activation", "lights", "seed", "baseline")})


@dataclass(frozen=True)
class Grid:
    """The definition of an ablation: the axes, the shared settings, the plugin arguments.

    ``uses`` maps each model to the plugin kinds it consumes (from the registry), so the
    cells can be listed without the registry. Build one with :func:`build_grid`.
    """

    data: str
    models: tuple[str, ...]
    encoders: tuple[str, ...]
    activations: tuple[str, ...]
    lights: tuple[str, ...]
    seeds: tuple[int, ...]
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    schedule: str | None = None
    warmup_steps: int | None = None
    precision: str | None = None
    encoder_args: dict[str, Any] = field(default_factory=dict)
    activation_args: dict[str, Any] = field(default_factory=dict)
    model_args: dict[str, Any] = field(default_factory=dict)
    uses: dict[str, tuple[str, ...]] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    """A fingerprint of the dataset (light count and image size), so a folder whose content
    changed is not mistaken for the one a results folder was made from."""
    recipe: str | None = None
    """The recipe the grid's defaults came from (``ablate --recipe``), recorded in every cell."""

    # -- cells --------------------------------------------------------------------------
    def cells(self) -> list[Cell]:
        """Every cell in run order: per rule, the baselines first, then the grid."""
        out: list[Cell] = []
        for rule in self.lights:
            for base in BASELINES:
                out.append(Cell(cell_name(base, None, None, rule, None), base, None, None, rule, 0, baseline=True))
            for model in self.models:
                if model in BASELINES and not self.args_for("model", model):
                    continue
                uses = self.uses.get(model, ("encoder", "activation"))
                encoders = self.encoders if "encoder" in uses else (None,)
                activations = self.activations if "activation" in uses else (None,)
                for enc in encoders:
                    for act in activations:
                        for seed in self.seeds:
                            name = cell_name(model, enc, act, rule, seed)
                            out.append(Cell(name, model, enc, act, rule, int(seed)))
        return out

    def args_for(self, kind: str, name: str | None) -> dict[str, Any]:
        """The grid's ``kind`` arguments (``encoder``/``activation``/``model``) that the
        plugin ``name`` takes."""
        if name is None:
            return {}
        from ..zoo import get_plugin

        given = {"encoder": self.encoder_args, "activation": self.activation_args, "model": self.model_args}[kind]
        info = get_plugin(kind, name)
        return {k: v for k, v in given.items() if info.accepts_any or k in info.arg_names}

    def spec(self, cell: Cell, train_lights: Any = None) -> dict[str, Any]:
        """The zoo model spec of ``cell`` (checked against the registry, not built), its
        ``auto`` arguments chosen for ``train_lights`` (the cell's training light directions;
        None keeps them ``"auto"``: :mod:`relightzoo.zoo.auto_args`)."""
        from ..zoo import model_spec, resolve_auto_spec

        if cell.baseline:
            return model_spec(cell.model)
        spec = model_spec(
            cell.model,
            encoder=cell.encoder,
            activation=cell.activation,
            encoder_args=self.args_for("encoder", cell.encoder),
            activation_args=self.args_for("activation", cell.activation),
            **self.args_for("model", cell.model),
        )
        return spec if train_lights is None else resolve_auto_spec(spec, train_lights)[0]

    def training_overrides(self) -> dict[str, Any]:
        """The training settings the grid sets for every cell (None: the model's default)."""
        from ..train.settings import MODEL_SETTINGS

        return {key: getattr(self, key) for key in MODEL_SETTINGS}

    # -- files --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The grid definition as stored in ``grid.json``."""
        return {
            "data": self.data,
            "dataset": dict(self.dataset),
            "models": list(self.models),
            "encoders": list(self.encoders),
            "activations": list(self.activations),
            "lights": list(self.lights),
            "seeds": list(self.seeds),
            "training": self.training_overrides(),
            "encoder_args": dict(self.encoder_args),
            "activation_args": dict(self.activation_args),
            "model_args": dict(self.model_args),
            "uses": {k: list(v) for k, v in self.uses.items()},
        } | ({"recipe": self.recipe} if self.recipe is not None else {})

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Grid":
        from ..train.settings import settings_overrides

        tr = d["training"]
        return cls(
            data=d["data"],
            models=tuple(d["models"]),
            encoders=tuple(d["encoders"]),
            activations=tuple(d["activations"]),
            lights=tuple(d["lights"]),
            seeds=tuple(int(s) for s in d["seeds"]),
            **settings_overrides(tr),
            encoder_args=dict(d.get("encoder_args") or {}),
            activation_args=dict(d.get("activation_args") or {}),
            model_args=dict(d.get("model_args") or {}),
            uses={k: tuple(v) for k, v in (d.get("uses") or {}).items()},
            dataset=dict(d.get("dataset") or {}),
            recipe=d.get("recipe"),
        )


# --------------------------------------------------------------------------------------
# building and checking


def _nearest(name: str, names: list[str]) -> str | None:
    """The registered name nearest to ``name`` (close spelling first, then a shared prefix,
    then simply the most similar)."""
    if not names:
        return None
    near = nearest_names(name, names)
    return near[0] if near else max(names, key=lambda n: difflib.SequenceMatcher(None, name, n).ratio())


def _resolve_names(kind: str, names: list[str], problems: list[str]) -> list[str]:
    """Registered names for ``names`` (normalised); unknown ones are added to ``problems``."""
    from ..zoo.factory import registry
    from ..util.names import normalise_name

    reg = registry(kind)
    out = []
    for name in names:
        if name in reg:
            key = reg.get(name).name
            if key not in out:
                out.append(key)
        else:
            near = _nearest(normalise_name(name), reg.names())
            problems.append(f"{kind} {name!r}" + (f" (did you mean {near!r}?)" if near else ""))
    return out


def _check_args(kind: str, args: Mapping[str, Any], plugins: list[str], option: str, problems: list[str]) -> None:
    """Add to ``problems`` each argument that no ``kind`` plugin of the grid takes."""
    from ..zoo import get_plugin, list_plugins

    if not args:
        return
    infos = [get_plugin(kind, p) for p in plugins]
    if not infos:
        problems.append(f"{option} {', '.join(args)} (no model in the grid uses an {kind})")
        return
    if any(i.accepts_any for i in infos):
        return
    known = sorted({a for i in infos for a in i.arg_names})
    for key in args:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            elsewhere = [i.name for i in list_plugins(kind) if key in i.arg_names]
            where = ", ".join(i.name for i in infos)
            if elsewhere:
                hint = f"only {', '.join(elsewhere)} take{'s' if len(elsewhere) == 1 else ''} it"
            elif near:
                hint = f"did you mean {near[0]!r}?"
            else:
                hint = f"they take {', '.join(known) or 'no arguments'}"
            problems.append(f"{option} {key!r} (no {kind} of {where} takes it; {hint})")


def _optional(kind: type, value: Any) -> Any:
    """``kind(value)``, keeping None (a setting left to the model's default)."""
    return None if value is None else kind(value)


def build_grid(
    data: str,
    *,
    models: Iterable[str],
    encoders: Iterable[str],
    activations: Iterable[str],
    lights: Iterable[str],
    seeds: Iterable[int | str],
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    schedule: str | None = None,
    encoder_args: Mapping[str, Any] | None = None,
    activation_args: Mapping[str, Any] | None = None,
    model_args: Mapping[str, Any] | None = None,
    dataset: Mapping[str, Any] | None = None,
    warmup_steps: int | None = None,
    precision: str | None = None,
    recipe: str | None = None,
) -> Grid:
    """Check the grid's axes and names and return it with canonical plugin names.

    Training settings left as None are each model's own (``train_defaults``), else the
    global defaults: see :func:`relightzoo.train.training_settings`.

    Raises :class:`GridError` for an empty axis, and one :class:`GridError` listing every
    unknown plugin name and unused plugin argument at once (each unknown name with the
    nearest registered one). Argument values of the wrong type raise
    :class:`~relightzoo.errors.PluginError` from the registry. Nothing is built or trained.
    """
    from ..zoo import get_plugin

    axes = {
        "--models": parse_list(models),
        "--encoders": parse_list(encoders),
        "--activations": parse_list(activations),
        "--lights": _split_rules(lights if isinstance(lights, str) else ",".join(lights)),
        "--seeds": parse_list([str(s) for s in seeds]),
    }
    empty = [opt for opt, values in axes.items() if not values]
    if empty:
        named = empty[0] if len(empty) == 1 else f"{', '.join(empty[:-1])} and {empty[-1]}"
        raise GridError(f"the grid is empty: {named} list{'s' if len(empty) == 1 else ''} nothing")
    seed_values: list[int] = []
    for s in axes["--seeds"]:
        try:
            seed_values.append(int(s))
        except ValueError:
            raise GridError(f"--seeds: {s!r} is not an integer") from None

    problems: list[str] = []
    model_names = _resolve_names("model", axes["--models"], problems)
    uses = {m: tuple(get_plugin("model", m).uses) for m in model_names}
    trained = [m for m in model_names if m != BASELINE]
    need_enc = any("encoder" in uses[m] for m in trained)
    need_act = any("activation" in uses[m] for m in trained)
    enc_names = _resolve_names("encoder", axes["--encoders"], problems)
    act_names = _resolve_names("activation", axes["--activations"], problems)
    enc_args, act_args, mod_args = dict(encoder_args or {}), dict(activation_args or {}), dict(model_args or {})
    if not [p for p in problems if p.startswith("model ")]:
        _check_args("encoder", enc_args, enc_names if need_enc else [], "--encoder-arg", problems)
        _check_args("activation", act_args, act_names if need_act else [], "--activation-arg", problems)
        _check_args("model", mod_args, trained, "--model-arg", problems)
    if problems:
        raise GridError(f"unknown name{'s' if len(problems) > 1 else ''} in the grid: {'; '.join(problems)}")
    grid = Grid(
        data=str(data),
        models=tuple(model_names),
        encoders=tuple(enc_names),
        activations=tuple(act_names),
        lights=tuple(axes["--lights"]),
        seeds=tuple(seed_values),
        steps=_optional(int, steps),
        batch_size=_optional(int, batch_size),
        lr=_optional(float, lr),
        schedule=schedule,
        warmup_steps=_optional(int, warmup_steps),
        precision=precision,
        encoder_args=enc_args,
        activation_args=act_args,
        model_args=mod_args,
        uses=uses,
        dataset=dict(dataset or {}),
        recipe=recipe,
    )
    names = [c.name for c in grid.cells()]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise GridError(f"two light rules give the same cell name {clash[0]!r}; list each rule once")
    for cell in grid.cells():  # argument types, checked against each plugin's defaults
        try:
            grid.spec(cell)
        except PluginError as exc:
            raise PluginError(f"cell {cell.name}: {exc}") from None
    return grid


def _split_rules(text: str) -> list[str]:
    """Split ``--lights`` on commas that start a new rule: ``list:1,2,3,xu5:0.77`` keeps the
    list's indices together (a part that is only digits continues a ``list:`` rule)."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if out and out[-1].startswith("list:") and part.isdigit():
            out[-1] += "," + part
        elif part not in out:
            out.append(part)
    return out


def check_rules(grid: Grid, lights) -> dict[str, Any]:
    """The :class:`~relightzoo.lights.LightSplit` of every rule of ``grid`` on a dataset's
    ``lights``; every bad rule is reported at once in one :class:`LightsError` line."""
    from ..lights import select_lights

    splits, problems = {}, []
    for rule in grid.lights:
        try:
            split = select_lights(rule, lights)
        except LightsError as exc:
            problems.append(str(exc))
            continue
        if not split.held_out:
            problems.append(f"light rule {rule!r} trains on every light and leaves none to evaluate")
            continue
        splits[rule] = split
    if problems:
        raise LightsError(f"bad light rule{'s' if len(problems) > 1 else ''}: {'; '.join(problems)}")
    return splits


_LABELS = {
    "data": "dataset (DATA)",
    "dataset": "dataset content",
    "models": "--models",
    "encoders": "--encoders",
    "activations": "--activations",
    "lights": "--lights",
    "seeds": "--seeds",
    "encoder_args": "--encoder-arg",
    "activation_args": "--activation-arg",
    "model_args": "--model-arg",
    "recipe": "--recipe",
}


def _show(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "(none)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
    return str(value)


def grid_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What differs between two grid definitions (``grid.json`` form), as short phrases:
    ``"--encoders raw,fourier there, raw,direction here"``."""
    diffs = []
    for key, label in _LABELS.items():
        a, b = stored.get(key), current.get(key)
        if key == "data" and a is not None and b is not None and Path(str(a)) == Path(str(b)):
            continue
        if a != b:
            diffs.append(f"{label} {_show(a)} there, {_show(b)} here")
    ta, tb = stored.get("training") or {}, current.get("training") or {}
    for key in sorted(set(ta) | set(tb)):
        if ta.get(key) != tb.get(key):
            diffs.append(f"--{key.replace('_', '-')} {ta.get(key)} there, {tb.get(key)} here")
    return diffs


def claim_results_dir(out: str | Path, grid: Grid) -> bool:
    """Make ``out`` the results folder of ``grid``; returns whether it already was (a resume).

    A new folder gets ``grid.json``. A folder whose ``grid.json`` defines another grid
    raises :class:`GridError` that says what differs; one with an unreadable ``grid.json``
    raises too. Nothing is written when the check fails.
    """
    import json

    out = Path(out)
    path = out / GRID_FILE
    current = grid.to_json()
    if path.exists():
        try:
            stored = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise GridError(f"{path} cannot be read ({exc}); remove it or choose another --out") from None
        diffs = grid_differences(stored, current)
        if diffs:
            raise GridError(
                f"{out} holds the results of a different grid: {'; '.join(diffs)}. "
                "Rerun with the same options to resume it, or choose another --out"
            )
        return True
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, current)
    except OutputError as exc:
        raise GridError(str(exc)) from None
    except OSError as exc:
        raise GridError(f"cannot write to {out}: {exc.strerror or exc}") from None
    return False
