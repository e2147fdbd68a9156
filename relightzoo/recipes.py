"""Named recipes: a model, its plugins, its training lights and its training settings under
one name, as timm names pretrained configurations.

``relightzoo train DATA --recipe thesis`` trains the recipe; ``relightzoo recipes`` lists them.
A recipe fixes the options it names; an option the user also gives explicitly wins, and the
command says so in one line on stderr (:func:`merge_recipe` returns those lines). A setting a
recipe leaves as None stays the model's own default (``train_defaults``), else the global one.

Adding a recipe is one call in this module (or in your own code before training)::

    register_recipe(Recipe("my-recipe", "what it is and what it scores", model="siren",
                           encoder="direction", lights="uniform:100", steps=3000, lr=1e-3))

From Python::

    recipe = get_recipe("thesis")
    rz.train(data, recipe.lights, recipe.spec(), **recipe.settings(), recipe=recipe.name, out_dir="runs/t")
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import RecipeError
from .train.settings import MODEL_SETTINGS

__all__ = [
    "Recipe",
    "RecipeError",
    "RECIPE_OPTIONS",
    "register_recipe",
    "get_recipe",
    "list_recipes",
    "merge_recipe",
    "DEFAULT_RECIPE",
]

RECIPE_OPTIONS = ("model", "encoder", "activation", "lights", *MODEL_SETTINGS)
"""The single-valued options a recipe may fix, named as ``relightzoo train``'s parameters."""

_ARG_OPTIONS = {"model_args": "--model-arg", "encoder_args": "--encoder-arg", "activation_args": "--activation-arg"}
"""Plugin-argument options a recipe may fill, and their flags."""

@dataclass(frozen=True)
class Recipe:
    """One named configuration: what to build, on which training lights, how to train it.

    ``encoder`` / ``activation`` None: the zoo's defaults (for models that use them). Training
    settings None: the model's ``train_defaults``, else the global defaults. ``lights`` is a
    light rule (``xu5:0.77``, ``uniform:100``, ...).
    """

    name: str
    description: str
    model: str = "siren"
    model_args: Mapping[str, Any] = field(default_factory=dict)
    encoder: str | None = None
    encoder_args: Mapping[str, Any] = field(default_factory=dict)
    activation: str | None = None
    activation_args: Mapping[str, Any] = field(default_factory=dict)
    lights: str = "xu5:0.77"
    steps: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    schedule: str | None = None
    warmup_steps: int | None = None
    precision: str | None = None

    def spec(self) -> dict[str, Any]:
        """The zoo model spec (checked against the registry, not built)."""
        from .zoo import model_spec

        return model_spec(
            self.model,
            encoder=self.encoder,
            activation=self.activation,
            encoder_args=dict(self.encoder_args),
            activation_args=dict(self.activation_args),
            **dict(self.model_args),
        )

    def settings(self) -> dict[str, Any]:
        """The training settings the recipe fixes (keyword arguments of :func:`relightzoo.train.train`)."""
        return {k: getattr(self, k) for k in MODEL_SETTINGS if getattr(self, k) is not None}

    def options(self) -> dict[str, Any]:
        """Every option the recipe fixes, by ``relightzoo train`` parameter name."""
        out = {k: getattr(self, k) for k in RECIPE_OPTIONS if getattr(self, k) is not None}
        out.update({k: dict(getattr(self, k)) for k in _ARG_OPTIONS if getattr(self, k)})
        return out

    def to_json(self) -> dict[str, Any]:
        """The recipe as JSON (what ``relightzoo recipes --json`` prints)."""
        return {"name": self.name, "description": self.description, **self.options()}


_RECIPES: dict[str, Recipe] = {}


def register_recipe(recipe: Recipe, *, replace: bool = False) -> Recipe:
    """Add ``recipe`` to the registry; a name taken already is an error unless ``replace``."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"register_recipe needs a Recipe, got {type(recipe).__name__}")
    if recipe.name in _RECIPES and not replace:
        raise RecipeError(f"a recipe named {recipe.name!r} exists already")
    _RECIPES[recipe.name] = recipe
    return recipe


def list_recipes() -> list[Recipe]:
    """Every registered recipe, in registration order."""
    return list(_RECIPES.values())


def get_recipe(name: str | Recipe) -> Recipe:
    """The recipe called ``name`` (a :class:`Recipe` passes through); an unknown name is a
    one-line :class:`RecipeError` suggesting the nearest."""
    if isinstance(name, Recipe):
        return name
    key = str(name).strip().lower()
    if key in _RECIPES:
        return _RECIPES[key]
    names = list(_RECIPES)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.4)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise RecipeError(f"unknown recipe {name!r}; {hint}known: {', '.join(names)} (relightzoo recipes lists them)")


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def merge_recipe(
    recipe: Recipe, given: Mapping[str, Any], *, flags: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """Resolve a command's options from ``recipe`` and the options the user gave explicitly.

    ``given`` holds only what the user set: any of :data:`RECIPE_OPTIONS` (one value each),
    and ``model_args`` / ``encoder_args`` / ``activation_args`` (dicts). An explicit option
    wins over the recipe; so does each explicit plugin argument. Naming another model (or
    encoder, activation) than the recipe's drops the recipe's arguments for it, which belong
    to the recipe's plugin. ``flags`` renames options in the messages (``{"model":
    "--models"}``); by default ``batch_size`` is ``--batch-size``.

    Returns ``(options, notes)``: every option of :data:`RECIPE_OPTIONS` and the three
    argument dicts (None / empty where neither sets it), and one line per explicit value
    that differs from the recipe's, e.g. ``--lr 0.001 overrides recipe 'thesis' (lr 0.0001)``.
    """
    flags = dict(flags or {})
    fixed = recipe.options()
    options: dict[str, Any] = {}
    notes: list[str] = []
    for key in RECIPE_OPTIONS:
        mine = fixed.get(key)
        if key in given and given[key] is not None:
            value = given[key]
            if mine is not None and value != mine:
                flag = flags.get(key, "--" + key.replace("_", "-"))
                notes.append(f"{flag} {_show(value)} overrides recipe {recipe.name!r} ({key} {_show(mine)})")
            options[key] = value
        else:
            options[key] = mine
    for key, flag in _ARG_OPTIONS.items():
        plugin = key[: -len("_args")]
        mine = dict(fixed.get(key) or {})
        if options.get(plugin) != fixed.get(plugin):
            mine = {}  # the recipe's arguments belong to the plugin it names, not to the one given
        explicit = dict(given.get(key) or {})
        for k, v in explicit.items():
            if k in mine and mine[k] != v:
                notes.append(f"{flag} {k}={_show(v)} overrides recipe {recipe.name!r} ({k}={_show(mine[k])})")
        options[key] = {**mine, **explicit}
    return options, notes


THESIS = register_recipe(
    Recipe(
        "thesis",
        "the thesis's model: SIREN 3 x 256, sine, (x, y, phi/10, theta/100), five xu5:0.77 lights, "
        "Adam at 1e-4 with no schedule, 2000 steps of 4096 samples",
        model="siren",
        model_args={"hidden_layers": 3, "hidden_features": 256},
        encoder="scaled-spherical",
        encoder_args={"phi_divisor": 10.0, "theta_divisor": 100.0},
        activation="sine",
        activation_args={"first_omega_0": 30.0, "hidden_omega_0": 30.0},
        lights="xu5:0.77",
        steps=2000,
        batch_size=4096,
        lr=1e-4,
        schedule="none",
        warmup_steps=0,
    )
)
"""The thesis's setting, the recipe the zoo's numbers started from."""


_DENSE_DIRECTION = {
    "encoder": "direction",
    "encoder_args": {"light_scale": 0.1},
    "activation": "sine",
    "activation_args": {"first_omega_0": 30.0, "hidden_omega_0": 30.0},
    "lights": "uniform:49",
}
"""What the dense recipes share: the light direction x 0.1, a sine backbone at omega 30, 49
uniform training lights (a dense RTI dome)."""

_COSINE_5E4 = {"lr": 5e-4, "schedule": "cosine", "warmup_steps": 0}
"""Adam at 5e-4 decayed by a cosine, no warm-up (the dense recipes)."""

_FAST_PRECISION = {"precision": "auto"}
"""bfloat16 mixed precision where the CPU or GPU multiplies it natively, else float32
(relightzoo.train.precision): the same held-out PSNR in about 0.45 of the time on a CPU with
AVX-512 BF16 (docs/ablation.md)."""

_LATENT_SIREN = {"hidden_layers": 3, "hidden_features": 256, "latent_scale": 10.0, "latent_features": 16}
"""The latent-siren of the dense recipes: siren's 3 x 256 with 16 latent values per pixel,
projected to every later layer. Against a full 768-value latent per pixel (and light x 0.1)
it scores higher in 1200 steps than the full table in 2000 (docs/ablation.md)."""

_QUICK_LIGHT = {**_DENSE_DIRECTION, "encoder_args": {"light_scale": "auto"}}
"""With the spatial detail in the latents, the light input takes a higher frequency than
siren's x 0.1, the higher the denser the training lights: ``light_scale=auto`` chooses it from
their spacing (x 0.2 for 49 uniform lights, x 0.45 for 100; x 1 over-fits between them;
relightzoo.builtins.encoders.light_scale_for, docs/ablation.md)."""

_LONG_LIGHT = {**_DENSE_DIRECTION, "encoder_args": {"light_scale": 0.3}}
"""The long recipe keeps the light x 0.3 it was measured with: the optima behind
``light_scale=auto`` were measured at 1200 steps, and at 7000 steps ``auto`` moved the four
headline rows by -0.24 to +0.23 dB (+0.06 on average; docs/ablation.md)."""

QUICK = register_recipe(
    Recipe(
        "quick",
        "the zoo's best quick recipe for a dense capture (relightzoo train DATA with no --model): latent-siren "
        "3 x 256 with 16 latent values per pixel, direction encoder (light x auto: 0.2 for 49 lights, 0.45 for 100), "
        "49 uniform lights, "
        "1200 Adam steps of 4096 samples at 5e-4 with a cosine decay (about 30 s of training on 2 CPU cores "
        "with bfloat16, a minute in float32)",
        model="latent-siren",
        model_args=_LATENT_SIREN,
        **_QUICK_LIGHT,
        steps=1200,
        batch_size=4096,
        **_COSINE_5E4,
        **_FAST_PRECISION,
    )
)
"""What ``relightzoo train DATA`` trains when no --model and no --recipe is given."""

LONG = register_recipe(
    Recipe(
        "long",
        "the quick model with shadow samples, trained for 7000 steps instead of 1200 (five minutes on "
        "2 CPU cores with bfloat16, about twice that in float32): latent-siren 3 x 256 with 16 latent values "
        "per pixel that also reads the latents of 8 points toward the light, direction encoder (light x 0.3), "
        "49 uniform lights",
        model="latent-siren",
        model_args={**_LATENT_SIREN, "shadow_samples": 8},
        **_LONG_LIGHT,
        steps=7000,
        batch_size=4096,
        **_COSINE_5E4,
        **_FAST_PRECISION,
    )
)
"""The best dense recipe within five minutes on 2 CPU cores (docs/ablation.md's frontier)."""

SIREN_DIRECTION = register_recipe(
    Recipe(
        "siren-direction",
        "the best plain SIREN found: 4 x 256, sine, the unit light direction x 0.1, 49 uniform lights, "
        "3000 Adam steps of 8192 samples at 5e-4 with a cosine decay (about five minutes on 2 CPU cores)",
        model="siren",
        model_args={"hidden_layers": 4, "hidden_features": 256},
        **_DENSE_DIRECTION,
        steps=3000,
        batch_size=8192,
        **_COSINE_5E4,
    )
)
"""A coordinate network with no latents, for comparison with the quick and long recipes."""

DEFAULT_RECIPE = QUICK.name
"""The recipe ``relightzoo train DATA`` trains when neither --model nor --recipe is given:
the zoo's best quick recipe. Its training lights are a dense dome (49 spread lights, the
density of public RTI benchmarks), the capture an RTI user makes every day."""
