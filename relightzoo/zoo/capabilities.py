"""What a model offers beyond ``render``, asked in one place.

Every caller (the training loop, evaluation, relighting, environment maps, animations,
ablations, benchmarks) learns a model's optional capabilities from :func:`capabilities`
and renders through :func:`render_model`, instead of each testing attributes its own way.
The contract these read is written down on :class:`relightzoo.zoo.RelightModel` and in
docs/plugins.md:

- ``needs_images``: the model receives the captured training images through
  ``attach_training_data(images, lights)`` before it trains, is evaluated or renders from
  data. A model that sets no ``needs_images`` but overrides ``attach_training_data`` needs
  them too (an override is a request for the images, not a no-op).
- ``trainable``: False for a model with nothing to train by gradient steps (fitted in
  closed form when it receives the images, or no fitting at all).
- ``training_batch(generator, batch_size) -> (*inputs, target)``: a trainable model that is
  not a coordinate model draws its own batches.
- ``train_defaults``: the model's own training settings (keys of
  :data:`relightzoo.train.settings.SETTINGS`).
- ``relight_envmap(dirs [K, 3], weights [K, 3], height, width) -> [H, W, 3]``: an
  environment map in one pass.
- ``render(lights, height, width, *, chunk=None)``: ``chunk`` is optional; a model whose
  ``render`` does not take it is called without it.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = ["Capabilities", "capabilities", "render_model", "render_takes_chunk"]


@dataclass(frozen=True)
class Capabilities:
    """The optional capabilities of one model (see the module docstring for each contract)."""

    needs_images: bool
    """Receives the training images (``attach_training_data``) before training or rendering from data."""
    trainable: bool
    """Trains by gradient steps (False: fitted in closed form or not at all)."""
    coordinate: bool
    """A :class:`~relightzoo.zoo.CoordinateModel`: trains on random (pixel, light) samples."""
    training_batch: Callable[..., Any] | None
    """The model's own batch sampler, or None."""
    relight_envmap: Callable[..., Any] | None
    """The model's one-pass environment-map renderer, or None."""
    train_defaults: dict[str, Any] = field(default_factory=dict)
    """The model's own training settings (a copy; empty when it states none)."""

    @property
    def draws_own_batches(self) -> bool:
        return self.training_batch is not None


def _callable_attr(obj: Any, name: str) -> Callable[..., Any] | None:
    fn = getattr(obj, name, None)
    return fn if callable(fn) else None


def _declares(cls: type, name: str) -> bool:
    """Whether ``cls`` or one of its bases other than the zoo's generic base classes
    (whose defaults mean "not offered") defines ``name``."""
    from .api import CoordinateModel, RelightModel

    generic = (RelightModel, CoordinateModel, torch.nn.Module, object)
    return any(name in vars(klass) for klass in cls.__mro__ if klass not in generic)


def _needs_images(model: Any) -> bool:
    if isinstance(model, type):
        flag = getattr(model, "needs_images", False)
        return flag if isinstance(flag, bool) else False
    cls = type(model)
    if _declares(cls, "needs_images"):
        return bool(getattr(model, "needs_images"))
    return _declares(cls, "attach_training_data") or bool(getattr(model, "needs_images", False))


def capabilities(model: Any) -> Capabilities:
    """The optional capabilities of ``model`` (an instance; a model class gives its
    ``train_defaults`` and class-level flags). Works for any object with a ``render``,
    not only :class:`~relightzoo.zoo.RelightModel` subclasses."""
    from .api import CoordinateModel

    defaults = getattr(model, "train_defaults", None)
    return Capabilities(
        needs_images=_needs_images(model),
        trainable=bool(getattr(model, "trainable", True)),
        coordinate=isinstance(model, CoordinateModel) or (isinstance(model, type) and issubclass(model, CoordinateModel)),
        training_batch=None if isinstance(model, type) else _callable_attr(model, "training_batch"),
        relight_envmap=None if isinstance(model, type) else _callable_attr(model, "relight_envmap"),
        train_defaults=dict(defaults) if isinstance(defaults, dict) else {},
    )


@functools.lru_cache(maxsize=None)
def _render_takes_chunk(render: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(render).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "chunk" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def render_takes_chunk(model: Any) -> bool:
    """Whether ``model.render`` accepts ``chunk`` (checked once per class)."""
    fn = getattr(type(model), "render", None)
    if fn is None:
        fn = getattr(model, "render")
    return _render_takes_chunk(fn)


def render_model(model: Any, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
    """``model.render(lights, height, width, chunk=chunk)``, the one way every caller renders.

    ``chunk`` (samples per forward pass, a memory bound) is passed only when given and only
    to a ``render`` that takes it; otherwise the model uses its own default. The result is
    whatever the model returns (``[L, H, W, 3]`` in [0, 1] by contract).
    """
    if chunk is not None and render_takes_chunk(model):
        return model.render(lights, height, width, chunk=int(chunk))
    return model.render(lights, height, width)
