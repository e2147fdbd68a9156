"""Built-in activation backbones: a nonlinearity with the initialisation that belongs to it.

- ``sine`` (SIREN, Sitzmann et al. 2020): ``sin(omega_0 (W x + b))``; first layer
  ``W ~ U(-1/in, 1/in)``, hidden layers ``W ~ U(-sqrt(6/in)/omega_0, sqrt(6/in)/omega_0)``,
  with separate omega_0 for the first and the hidden layers.
- ``cosine``: ``cos(omega_0 (W x + b))`` with SIREN's weight initialisation and a bias that
  puts the phase ``omega_0 b`` uniformly over a whole period. (SIREN's small bias would put
  every pre-activation near 0, where cos is flat and even: outputs averaging about
  ``exp(-1/2)`` instead of 0 and vanishing gradients. With a uniform phase, cos(z + U) has
  exactly the distribution of sin(z + U), so the cosine network starts with the statistics
  SIREN's analysis asks for, like random Fourier features.)
- ``relu``: Kaiming-normal initialisation (fan in).
- every other activation timm knows (``gelu``, ``silu``, ``tanh``, ...), from timm's layer
  table, with Kaiming initialisation (Xavier for the saturating ones).

Speed: the sine layer is the training hot path. It keeps SIREN's parameterisation (the
parameters are W and b, so Adam's steps, and therefore training, match the classic code)
and computes ``sin(addmm(omega b, x, (omega W)^T))``: scaling the small weight matrix costs
``in x out`` operations per step, against ``batch x in x out`` for the matrix multiply,
instead of scaling the ``batch x out`` activations.

Three kernels compute the elementwise part while training (:func:`set_periodic_kernel`, or
the environment variable ``RELIGHTZOO_PERIODIC``), all in place on the matrix product with
the derivative kept for backward (:class:`_PeriodicInPlace`):

- ``numpy`` (the default): numpy's vectorised float32 sin and cos on the same CPU buffers
  (no copy). On the CPU they take about 0.4 of torch's eager sin and cos (0.54 against
  1.33 ms a 4096 x 256 pass on one AVX-512 core): the default siren trains at 0.83 to 0.88
  of the roofline on one thread against 0.74 to 0.79 with torch's (benchmarks/README.md);
  they need nothing beyond numpy. Off the CPU, or for
  a tensor that is not contiguous float32, the layer uses ``plain``;
- ``plain``: torch's sin and cos;
- ``compiled``: ``torch.compile`` of sin and cos together, one pass that reads the
  pre-activation once and writes both; it needs a C++ compiler on the CPU, Triton on CUDA,
  and costs a few seconds of compilation in the first step; where compilation fails the
  layer warns once and falls back to ``plain``.

All give the same values up to float32 rounding (numpy's and torch's sin differ by at most
one unit in the last place). ``relightzoo bench --periodic plain,numpy,compiled`` reports
each kernel's ratio to the roofline. Inside a compiled training step
(:mod:`relightzoo.train.compiled_step`, which fuses the whole step and is faster still) no
kernel is used: the layer hands the compiler sin and cos as a polynomial with its own range
reduction (:mod:`relightzoo.builtins.sincos`: a dozen multiply-adds that inductor fuses into
the forward and backward loops, fewer instructions than SLEEF's sin and cos, within 1.5e-7
of them), or torch's sin and cos (``RELIGHTZOO_SINCOS=torch``; ``relightzoo bench --step
compiled --sincos torch,poly`` measures both).
"""

from __future__ import annotations

import functools
import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

from relightzoo.errors import PluginError
from relightzoo.builtins.sincos import PolyPeriodic, sincos_kernel
from relightzoo.util.switches import Switch
from relightzoo.zoo.api import Backbone
from relightzoo.zoo.hookspecs import hookimpl

__all__ = [
    "PERIODIC_KERNELS",
    "DEFAULT_PERIODIC_KERNEL",
    "periodic_kernel",
    "set_periodic_kernel",
    "PeriodicLayer",
    "SineBackbone",
    "CosineBackbone",
    "DenseLayer",
    "ReluBackbone",
    "TimmBackbone",
    "TIMM_ACTIVATIONS",
    "register_activations",
]


class _PeriodicInPlace(torch.autograd.Function):
    """sin or cos computed in place on the matrix product, its derivative kept for backward.

    Autograd's own ``torch.sin`` keeps the pre-activation, allocates the output, and in
    backward allocates ``cos(z)`` and then ``grad * cos(z)``. Here the derivative is computed
    in forward, the pre-activation buffer becomes the output, and backward is one multiply
    done in place on the saved derivative (no allocation; the value is exactly
    ``grad * cos(z)``). For cos the saved factor is ``sin(z)`` and the sign is applied to the
    product in backward (the same float result as multiplying by ``-sin(z)``).

    A second backward through the same graph (``retain_graph=True``) is refused by autograd
    (the saved derivative was modified in place), and double backward by
    ``once_differentiable``: the saved derivative is a constant, so second derivatives
    through it would be wrong rather than merely slow.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, is_cos: bool, with_numpy: bool = False) -> torch.Tensor:
        if with_numpy and z.device.type == "cpu" and z.dtype == torch.float32 and z.is_contiguous():
            # numpy's vectorised float32 sin and cos (the ``numpy`` kernel): the same buffers, one pass each
            factor, values = torch.empty_like(z), z.detach().numpy()
            (np.sin if is_cos else np.cos)(values, out=factor.numpy())
            (np.cos if is_cos else np.sin)(values, out=values)
            out = z
        elif is_cos:
            factor = torch.sin(z)
            out = z.cos_()
        else:
            factor = torch.cos(z)
            out = z.sin_()
        ctx.is_cos = is_cos
        ctx.mark_dirty(z)
        ctx.save_for_backward(factor)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        (factor,) = ctx.saved_tensors
        product = factor.mul_(grad)
        return (product.neg_() if ctx.is_cos else product), None, None


PERIODIC_KERNELS = ("plain", "numpy", "compiled")
"""How a periodic layer computes its elementwise work while training (see the module docstring)."""

DEFAULT_PERIODIC_KERNEL = "numpy"
"""The kernel periodic layers train with unless told otherwise: the fastest on the CPU that needs nothing extra."""

_kernel = Switch("periodic kernel", PERIODIC_KERNELS, DEFAULT_PERIODIC_KERNEL, "RELIGHTZOO_PERIODIC", PluginError)


def periodic_kernel() -> str:
    """The kernel periodic layers train with: ``plain``, ``numpy`` or ``compiled``."""
    return _kernel.get()


def set_periodic_kernel(name: str) -> str:
    """Train periodic layers with kernel ``name`` from now on; returns the previous one."""
    return _kernel.set(name)


def _sin_and_cos(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.sin(z), torch.cos(z)


@functools.lru_cache(maxsize=1)
def _compiled_sin_and_cos():
    return torch.compile(_sin_and_cos, dynamic=False, fullgraph=True)


class _PeriodicCompiled(torch.autograd.Function):
    """sin or cos with its derivative, both from one compiled pass over the pre-activation;
    backward is the same in-place multiply as :class:`_PeriodicInPlace`."""

    @staticmethod
    def forward(ctx, z: torch.Tensor, is_cos: bool, _unused: bool = False) -> torch.Tensor:
        s, c = _compiled_sin_and_cos()(z)
        out, factor = (c, s) if is_cos else (s, c)
        ctx.is_cos = is_cos
        ctx.save_for_backward(factor)
        return out

    backward = staticmethod(_PeriodicInPlace.backward)


def _periodic(z: torch.Tensor, is_cos: bool) -> torch.Tensor:
    """The training-time elementwise part, with the selected kernel."""
    if torch.compiler.is_compiling():  # inside a compiled step (relightzoo.train.compiled_step): let inductor fuse it
        if sincos_kernel() == "poly" and z.device.type == "cpu" and z.dtype == torch.float32:  # relightzoo.builtins.sincos
            return PolyPeriodic.apply(z, is_cos)
        return torch.cos(z) if is_cos else torch.sin(z)
    if _kernel.name == "compiled":
        try:
            return _PeriodicCompiled.apply(z, is_cos, False)  # the arguments of _PeriodicInPlace, whose backward it shares
        except Exception as exc:  # noqa: BLE001 - no compiler, no Triton, an unsupported device: fall back
            _kernel.name = "plain"
            warnings.warn(f"the compiled periodic kernel failed ({type(exc).__name__}); training with the plain one", stacklevel=3)
    return _PeriodicInPlace.apply(z, is_cos, _kernel.name == "numpy")


class PeriodicLayer(nn.Linear):
    """``f(omega (W x + b))`` for ``f`` = sin or cos; parameters stored as in SIREN."""

    def __init__(self, in_features: int, out_features: int, omega: float, fn: str = "sin") -> None:
        super().__init__(in_features, out_features)
        if fn not in ("sin", "cos"):
            raise ValueError(f"fn must be 'sin' or 'cos', got {fn!r}")
        self.omega = float(omega)
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight * self.omega
        b = self.bias * self.omega
        z = torch.addmm(b, x, w.t()) if x.dim() == 2 else F.linear(x, w, b)
        if torch.is_grad_enabled() and z.requires_grad:
            return _periodic(z, self.fn == "cos")
        return z.sin_() if self.fn == "sin" else z.cos_()

    def activate(self, linear: torch.Tensor) -> torch.Tensor:
        """The layer's output from ``W x + b`` (no gradient; ``linear`` is overwritten)."""
        linear.mul_(self.omega)
        return linear.sin_() if self.fn == "sin" else linear.cos_()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, omega={self.omega:g}, fn={self.fn}"


def _check_omega(name: str, **omegas: float) -> None:
    for key, value in omegas.items():
        if not math.isfinite(value) or value <= 0:
            raise PluginError(f"activation {name!r}: {key} must be a positive number, got {value}")


class SineBackbone(Backbone):
    """SIREN: sin(omega_0 (W x + b)) with SIREN's uniform initialisation."""

    name = "sine"
    fn = "sin"

    def __init__(self, first_omega_0: float = 30.0, hidden_omega_0: float = 30.0) -> None:
        _check_omega(self.name, first_omega_0=first_omega_0, hidden_omega_0=hidden_omega_0)
        self.first_omega_0 = float(first_omega_0)
        self.hidden_omega_0 = float(hidden_omega_0)

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:
        omega = self.first_omega_0 if first else self.hidden_omega_0
        layer = PeriodicLayer(in_features, out_features, omega, self.fn)
        with torch.no_grad():
            bound = 1.0 / in_features if first else math.sqrt(6.0 / in_features) / omega
            layer.weight.uniform_(-bound, bound)
            self.init_bias(layer, omega)
        return layer

    def init_bias(self, layer: PeriodicLayer, omega: float) -> None:
        """SIREN keeps torch's default bias, U(-1/sqrt(in), 1/sqrt(in))."""

    def init_head(self, head: nn.Linear) -> None:
        """SIREN's last linear layer: the hidden-layer uniform bound."""
        bound = math.sqrt(6.0 / head.in_features) / self.hidden_omega_0
        with torch.no_grad():
            head.weight.uniform_(-bound, bound)

    def describe(self) -> dict:
        return {"first_omega_0": self.first_omega_0, "hidden_omega_0": self.hidden_omega_0}


class CosineBackbone(SineBackbone):
    """cos(omega_0 (W x + b)): SIREN's weight init, phase omega_0 b uniform over a period."""

    name = "cosine"
    fn = "cos"

    def init_bias(self, layer: PeriodicLayer, omega: float) -> None:
        layer.bias.uniform_(-math.pi / omega, math.pi / omega)


class DenseLayer(nn.Linear):
    """A linear map followed by an activation module."""

    def __init__(self, in_features: int, out_features: int, act: nn.Module) -> None:
        super().__init__(in_features, out_features)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(F.linear(x, self.weight, self.bias))

    def activate(self, linear: torch.Tensor) -> torch.Tensor:
        """The layer's output from ``W x + b``."""
        return self.act(linear)


class ReluLayer(nn.Linear):
    """``relu(W x + b)``, computed in place on the matrix product's output."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.addmm(self.bias, x, self.weight.t()) if x.dim() == 2 else F.linear(x, self.weight, self.bias)
        return torch.relu_(z)

    def activate(self, linear: torch.Tensor) -> torch.Tensor:
        """The layer's output from ``W x + b`` (``linear`` is overwritten)."""
        return torch.relu_(linear)


class ReluBackbone(Backbone):
    """ReLU with Kaiming-normal initialisation (fan in)."""

    name = "relu"

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:
        layer = ReluLayer(in_features, out_features)
        nn.init.kaiming_normal_(layer.weight, nonlinearity="relu", mode="fan_in")
        return layer

    def init_head(self, head: nn.Linear) -> None:
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)


_XAVIER = {"tanh", "sigmoid", "hard_sigmoid", "hardsigmoid", "identity"}
_GAINS = {"leaky_relu": "leaky_relu", "selu": "selu", "tanh": "tanh", "sigmoid": "sigmoid"}


class TimmBackbone(Backbone):
    """Any activation in timm's layer table, with Kaiming init (Xavier for saturating ones)."""

    def __init__(self, act_name: str) -> None:
        self.act_name = act_name
        self.name = act_name.replace("_", "-")
        from timm.layers import get_act_layer  # timm (and torchvision) only when one is built

        self.act_layer = get_act_layer(act_name)

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:
        layer = DenseLayer(in_features, out_features, self.act_layer())
        if self.act_name in _XAVIER:
            nn.init.xavier_uniform_(layer.weight, gain=nn.init.calculate_gain(_GAINS.get(self.act_name, "linear")))
            nn.init.zeros_(layer.bias)
        else:
            nn.init.kaiming_normal_(layer.weight, nonlinearity=_GAINS.get(self.act_name, "relu"), mode="fan_in")
        return layer

    def init_head(self, head: nn.Linear) -> None:
        nn.init.xavier_uniform_(head.weight)
        nn.init.zeros_(head.bias)


TIMM_ACTIVATION_CLASSES: dict[str, str] = {
    "celu": "CELU", "elu": "ELU", "gelu": "GELU", "gelu_tanh": "GELUTanh", "hard_mish": "HardMish",
    "hard_sigmoid": "Hardsigmoid", "hard_swish": "Hardswish", "identity": "Identity",
    "leaky_relu": "LeakyReLU", "mish": "Mish", "prelu": "PReLU", "quick_gelu": "QuickGELU",
    "relu6": "ReLU6", "selu": "SELU", "sigmoid": "Sigmoid", "silu": "SiLU", "swish": "SiLU",
    "tanh": "Tanh",
}
"""timm's activation table (``timm.layers.create_act._ACT_LAYER_DEFAULT``) less ``relu``
(the built-in replaces it) and the ``hardsigmoid``/``hardswish`` spelling aliases, as
name -> class name. Written out rather than read from timm so that registering plugins does
not import timm and torchvision (about 0.2 GiB and a second of start-up) for commands that
never build one; tests/test_activations.py checks it against timm's table."""

TIMM_ACTIVATIONS: list[str] = sorted(TIMM_ACTIVATION_CLASSES)
"""timm activation names registered as plugins (``leaky_relu`` is registered as ``leaky-relu``)."""


def _timm_factory(act_name: str):
    """A no-argument factory for one timm activation (so `plugins` shows no defaults)."""

    def factory() -> TimmBackbone:
        return TimmBackbone(act_name)

    factory.__name__ = f"timm_{act_name}"
    return factory


def _timm_description(act_name: str) -> str:
    init = "Xavier" if act_name in _XAVIER else "Kaiming"
    alias = " (alias of silu)" if act_name == "swish" else ""
    return f"timm's {act_name} ({TIMM_ACTIVATION_CLASSES[act_name]}){alias}, {init} init"


@hookimpl
def register_activations(register):
    """The built-in activations: sine, cosine, relu and timm's table."""
    register("sine", SineBackbone, "SIREN sin(omega_0 (Wx+b)), SIREN init; omega_0 for first and hidden layers")
    register("cosine", CosineBackbone, "cos(omega_0 (Wx+b)), SIREN weight init, phase uniform over a period")
    register("relu", ReluBackbone, "ReLU with Kaiming-normal init")
    for act_name in TIMM_ACTIVATIONS:
        register(act_name, _timm_factory(act_name), _timm_description(act_name))
