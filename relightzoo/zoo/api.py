"""The three plugin kinds' base classes: what an encoder, an activation backbone and a model
must provide. Built-in plugins and third-party plugins subclass these.

Shapes follow DESIGN.md: pixels ``[N, 2]`` in [-1, 1], lights ``[N, 3]`` unit vectors,
images ``[L, H, W, 3]`` float32 in [0, 1]; coordinate models output RGB in [-1, 1].
"""

from __future__ import annotations

import warnings
from typing import Any, Callable, ClassVar, Mapping

import torch
from torch import nn

from ..data.coords import pixel_grid
from ..util.devices import device_of

__all__ = [
    "Encoder",
    "Backbone",
    "RelightModel",
    "CoordinateModel",
    "CapturedImagesModel",
    "DEFAULT_RENDER_CHUNK",
    "training_data_tensors",
]

DEFAULT_RENDER_CHUNK = 1 << 16
"""Samples per forward pass when a coordinate model renders an image (bounds peak memory)."""


class Encoder(nn.Module):
    """Maps ``(pixels [N, 2], lights [N, 3])`` to features ``[N, out_features]``.

    Subclasses set ``self.out_features`` in ``__init__`` so a model can size its first layer
    before calling the encoder.

    ``separable = True`` promises that the features are a pixel-only part plus a light-only
    part (``f(p, l) = g(p) + h(l)``, as any concatenation of pixel and light features is):
    a model may then compute the pixel part of its first layer once per image size and add
    the light's part per frame (:mod:`relightzoo.zoo.frame_cache`). Leave it False otherwise.

    ``auto_args`` maps argument names to functions of the training light directions
    (float32 ``[T, 3]``) that choose their value: the user writes ``name=auto`` and the run
    records the value chosen (:mod:`relightzoo.zoo.auto_args`; any plugin class may set it).
    """

    out_features: int
    separable: bool = False
    auto_args: ClassVar[Mapping[str, Callable[[torch.Tensor], Any]]] = {}

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class Backbone:
    """An activation backbone: a nonlinearity plus the weight initialisation that belongs to it.

    ``layer`` builds one hidden layer (linear map + nonlinearity, initialised to match);
    ``init_head`` initialises the final linear layer that follows the last hidden layer.
    """

    name: str = "backbone"

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def init_head(self, head: nn.Linear) -> None:
        """Initialise the output layer; the default keeps torch's own initialisation."""

    def describe(self) -> dict:
        """The constructor arguments, as recorded in checkpoints."""
        return {}


class RelightModel(nn.Module):
    """A relighting model: renders whole images for any light directions.

    **Required**: :meth:`render`. Everything else is optional; the zoo asks for it through
    :func:`relightzoo.zoo.capabilities` (one place, so every command treats a model alike):

    - ``trainable`` (default True): False for a model with nothing to train by gradient
      steps, such as one fitted in closed form from the images (``blend``). ``relightzoo
      train`` then only hands it the images and saves it.
    - ``needs_images`` (default False): True for a model that reads the captured training
      images. It receives them through :meth:`attach_training_data` before training,
      before evaluation and when rendering from a dataset. Overriding
      :meth:`attach_training_data` without setting ``needs_images`` counts as True.
    - ``training_batch(generator, batch_size) -> (*inputs, target)``: a trainable model
      that is not a :class:`CoordinateModel` draws its own batches; the loop calls
      ``model(*inputs)`` and fits it to ``target`` (RGB in [-1, 1]) with the MSE.
    - ``train_defaults``: a dict of the model's own training settings (``steps``,
      ``batch_size``, ``lr``, ``schedule``, ``warmup_steps``); a user's flags still win.
    - ``relight_envmap(dirs [K, 3], weights [K, 3], height, width) -> [H, W, 3]``: the
      environment map in one pass: ``sum_k weights[k] * render(dirs[k])`` per RGB channel,
      with no exposure scaling (the caller applies ``exposure / pi``) and unclamped.
    - ``data_shaped_buffers``: names of buffers (or parameters) whose shape comes from the
      data (the training images, a per-pixel table). A freshly built model holds them empty; loading
      a state dict resizes each to the saved tensor's shape first
      (:meth:`resize_data_shaped_buffer`), through torch's public
      ``register_load_state_dict_pre_hook``.
    """

    trainable: bool = True
    needs_images: bool = False
    data_shaped_buffers: tuple[str, ...] = ()

    def __init__(self) -> None:
        super().__init__()
        self.register_load_state_dict_pre_hook(_resize_data_shaped_buffers)
        _warn_private_load_override(type(self))

    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:  # pragma: no cover - abstract
        """Images ``[L, H, W, 3]`` in [0, 1] lit from each of ``lights [L, 3]`` (unit vectors).

        ``chunk`` is an optional hint: at most that many samples per forward pass, to bound
        memory. None means the model's own choice; a model may ignore it (or not take it)."""
        raise NotImplementedError

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Give an image model the captured training images ``[T, H, W, 3]`` and their lights ``[T, 3]``."""

    def resize_data_shaped_buffer(self, name: str, shape: torch.Size) -> None:
        """Make buffer ``name`` (listed in ``data_shaped_buffers``) an uninitialised tensor of
        ``shape`` on its device, keeping its dtype; the state dict's values are copied in
        next. Override it when the buffer's size means more (another layer to rebuild)."""
        current = getattr(self, name, None)
        dtype = current.dtype if isinstance(current, torch.Tensor) else torch.float32
        device = current.device if isinstance(current, torch.Tensor) else None
        fresh = torch.empty(shape, dtype=dtype, device=device)
        setattr(self, name, nn.Parameter(fresh, requires_grad=current.requires_grad) if isinstance(current, nn.Parameter) else fresh)


def _resize_data_shaped_buffers(module, state_dict, prefix, *_rest) -> None:
    """Load pre-hook of every :class:`RelightModel`: size its ``data_shaped_buffers`` as saved."""
    for name in type(module).data_shaped_buffers:
        saved = state_dict.get(prefix + name)
        current = getattr(module, name, None)
        if isinstance(saved, torch.Tensor) and (not isinstance(current, torch.Tensor) or current.shape != saved.shape):
            module.resize_data_shaped_buffer(name, saved.shape)


_WARNED_PRIVATE_LOAD: set[type] = set()


def _warn_private_load_override(cls: type) -> None:
    """A deprecation warning, once per class, for a model that overrides torch's private
    ``_load_from_state_dict`` (it still works; ``data_shaped_buffers`` is the public way)."""
    if cls in _WARNED_PRIVATE_LOAD:
        return
    _WARNED_PRIVATE_LOAD.add(cls)
    for klass in cls.__mro__:
        if klass in (RelightModel, nn.Module):
            return
        if "_load_from_state_dict" in vars(klass):
            warnings.warn(
                f"{cls.__module__}.{cls.__qualname__} overrides torch's private _load_from_state_dict to size its buffers; "
                'declare them instead: data_shaped_buffers = ("name", ...) on the class '
                "(docs/plugins.md, 'Data-shaped buffers')",
                DeprecationWarning,
                stacklevel=4,
            )
            return


class CoordinateModel(RelightModel):
    """A model of single samples: ``forward(pixels [N, 2], lights [N, 3]) -> RGB [N, 3]`` in [-1, 1].

    It trains on random (pixel, light) batches and renders any resolution in chunks of
    ``chunk`` samples, so peak memory does not grow with the image size.
    """

    def forward(self, pixels: torch.Tensor, lights: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def render(self, lights: torch.Tensor, height: int, width: int, *, chunk: int | None = None) -> torch.Tensor:
        return self.render_rows(lights, height, width, 0, height, chunk=chunk)

    @torch.no_grad()
    def render_rows(
        self, lights: torch.Tensor, height: int, width: int, r0: int, r1: int, *, chunk: int | None = None
    ) -> torch.Tensor:
        """Rows ``r0:r1`` of the ``height x width`` images lit from ``lights [L, 3]``:
        ``[L, r1 - r0, W, 3]`` in [0, 1], computed ``chunk`` samples at a time (default
        :data:`DEFAULT_RENDER_CHUNK`). Rendering a large image band by band this way bounds
        memory whatever its size."""
        chunk = DEFAULT_RENDER_CHUNK if chunk is None else int(chunk)
        device = device_of(self)
        lights = torch.as_tensor(lights, dtype=torch.float32, device=device).reshape(-1, 3)
        out = torch.empty(len(lights), r1 - r0, width, 3)
        rows_per_chunk = max(1, chunk // max(width, 1))
        for li, light in enumerate(lights):
            for a in range(r0, r1, rows_per_chunk):
                b = min(r1, a + rows_per_chunk)
                pix = pixel_grid(height, width, device=device, rows=slice(a, b))
                rgb = self(pix, light.expand(len(pix), 3))
                out[li, a - r0 : b - r0] = ((rgb.float() + 1.0) * 0.5).clamp(0.0, 1.0).reshape(b - a, width, 3).cpu()
        return out


def training_data_tensors(label: str, images: torch.Tensor, lights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Detached tensors of training images ``[T, H, W, 3]`` and their lights ``[T, 3]``, or
    a one-line :class:`~relightzoo.errors.PluginError` naming the model (``label``) and the
    shape that is wrong. Image models call it first in ``attach_training_data``."""
    from ..errors import PluginError

    images = torch.as_tensor(images).detach()
    lights = torch.as_tensor(lights).detach()
    if images.dim() != 4 or images.shape[-1] != 3:
        raise PluginError(f"{label}: images must be [T, H, W, 3], got {list(images.shape)}")
    if lights.shape != (images.shape[0], 3):
        raise PluginError(f"{label}: lights must be [{images.shape[0]}, 3], got {list(lights.shape)}")
    return images, lights


class CapturedImagesModel(RelightModel):
    """An image model that keeps the captured training images and their lights as buffers
    (``images [T, H, W, 3]``, ``lights [T, 3]``), so that its checkpoint renders with nothing
    else at hand.

    The buffers' shapes depend on the data, so a freshly built model starts with empty ones
    and takes their shapes from the saved tensors when a state dict is loaded
    (``data_shaped_buffers``).
    """

    needs_images = True
    data_shaped_buffers = ("images", "lights")
    label: str = "model"
    """How error messages name the model, e.g. ``model 'blend'``."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("images", torch.zeros(0, 0, 0, 3))
        self.register_buffer("lights", torch.zeros(0, 3))

    def attach_training_data(self, images: torch.Tensor, lights: torch.Tensor) -> None:
        """Keep the training images ``[T, H, W, 3]`` (float, [0, 1]) and their lights ``[T, 3]``."""
        from ..errors import PluginError

        images, lights = training_data_tensors(self.label, images, lights)
        if images.shape[0] == 0:
            raise PluginError(f"{self.label} needs at least one training image")
        device = self.images.device
        self.images = images.to(device=device, dtype=torch.float32).contiguous()
        self.lights = lights.to(device=device, dtype=torch.float32).contiguous()

    def check_training_data(self) -> None:
        """Raise a one-line error when no training images are held yet."""
        from ..errors import PluginError

        if len(self.lights) == 0:
            raise PluginError(f"{self.label} holds no training images; attach_training_data() or load a checkpoint first")
