"""sin and cos as a dozen float32 multiply-adds, for the periodic layer inside a compiled step.

Inside a compiled training step (:mod:`relightzoo.train.compiled_step`) inductor fuses the
periodic layer's elementwise work into one loop per pass: ``sin(z)`` in forward, ``g *
cos(z)`` in backward. Each loop calls SLEEF's vectorised sin or cos, whose range reduction
and polynomial cost about as much as reading and writing the 4 MiB tensor itself (one
AVX-512 core, a 4096 x 256 pass: a plain copy 0.13 ms, ``sin`` 0.33 ms, ``g * cos`` 0.39 ms,
ReLU's ``g * (z > 0)`` 0.19 ms). Written as plain torch operations, the functions here
compile into the same loops with fewer instructions (0.28 ms and 0.31 ms):

- range reduction by pi (Cody-Waite): ``k = round(z / pi)`` (for cos ``round(z / pi -
  1/2) + 1/2``, a half-integer), ``r = z - k pi`` with pi split into three float32 parts
  (:data:`PI_PARTS`: the first two have 8 and 12 significant bits, so ``k`` times them is
  exact while ``|k|`` stays below 2**11 for cos and 2**12 for sin); ``r`` lies in
  ``[-pi/2, pi/2]``;
- one odd polynomial, ``sin(r) = r + r^3 P(r^2)`` with ``P`` of degree 3 (:data:`SIN_COEFFS`:
  a near-minimax fit of the absolute error on ``[0, pi/2]``, iteratively reweighted least
  squares on Chebyshev nodes in float64, rounded to float32; ``benchmarks/sincos.py``
  derives them); sin and cos share it, as ``cos(z) = -(-1)^k sin(z - (k + 1/2) pi)``;
- the sign ``(-1)^k`` from ``k``'s parity, by multiplication (no selects).

Accuracy (float32 against float64 ``sin``/``cos`` of the same float32 input,
tests/test_sincos.py): at most :data:`MAX_ABS_ERROR` (1.5e-7, two units in the last place
of values near 1; torch's own is 3.6e-8) for ``|z| <=`` :data:`EXACT_RANGE` (6000) as
written, and up to ``|z| = 1e5`` in the compiled step, which lets the C++ compiler fuse
multiply-adds (one rounding in ``z - k pi``; 2e-7 at ``|z| = 1e6``). That is below the
rounding the float32 matrix multiply already puts into ``z`` (``ulp(z) / 2 >= 6e-8`` for
``|z| >= 1``; SIREN's pre-activations are in the tens), so training matches the torch path
to float32 rounding. Beyond that the reduction loses bits (without fused multiply-adds
1e-6 at ``|z| = 1e5`` and 3e-2 at 1e6), and from about ``|z| = 1e7`` on the values are
meaningless and unbounded (``inf`` at 1e20): a network whose pre-activations got there
has diverged. ``nan`` and ``+-inf`` give ``nan``, as torch's do; ``sin(-0.0)`` is ``+0.0``.
Not kept, by measurement: a per-element fallback to torch's sin beyond the range
(``torch.where``: the fused loop then evaluates both, 0.73 ms a pass instead of 0.32), and
clamping ``r`` to keep huge inputs bounded (0.08 ms a pass, a quarter of the gain).

:class:`PolyPeriodic` is the autograd function the periodic layer uses in a compiled graph:
forward evaluates only its own function and keeps ``z``; backward recomputes the
derivative factor with the same polynomial (``cos`` for sin, ``-sin`` for cos) inside the
backward loop. Computing sin and cos together in forward and keeping the factor, as the
eager kernels do, measured slower here (it writes one more 4 MiB tensor a layer: 3.9
against 3.6 ms of fused loops a step on one core), since these loops are bound by memory
as much as by arithmetic.

Which sin and cos a compiled step uses is a switch (:func:`set_sincos_kernel`, or the
environment variable ``RELIGHTZOO_SINCOS``): ``poly`` (this module, the default) or
``torch`` (torch's sin and cos, SLEEF in inductor's loops). ``relightzoo bench --step
compiled --sincos torch,poly`` measures both. The polynomial is used for float32 on the CPU
only: on CUDA the compiled step keeps torch's sin and cos (libdevice's in Triton's loops),
as the polynomial has not been measured on a GPU, and so does a bfloat16 pre-activation
(``--precision bf16``'s autocast; there the polynomial, compiled, was 2.8e-3 off against
torch's 2.0e-3 bfloat16 rounding). The eager step never uses it: as separate eager
operations its dozen passes would cost far more than one sin.
"""

from __future__ import annotations

import torch

from relightzoo.errors import PluginError
from relightzoo.util.switches import Switch

__all__ = [
    "SINCOS_KERNELS",
    "DEFAULT_SINCOS_KERNEL",
    "sincos_kernel",
    "set_sincos_kernel",
    "poly_sin",
    "poly_cos",
    "PolyPeriodic",
    "PI_PARTS",
    "SIN_COEFFS",
    "EXACT_RANGE",
    "MAX_ABS_ERROR",
]

SINCOS_KERNELS = ("poly", "torch")
"""How a compiled step evaluates the periodic layer's sin and cos (see the module docstring)."""

DEFAULT_SINCOS_KERNEL = "poly"
"""The in-graph sin and cos unless told otherwise."""

_kernel = Switch("sin/cos kernel", SINCOS_KERNELS, DEFAULT_SINCOS_KERNEL, "RELIGHTZOO_SINCOS", PluginError)

INV_PI = 0.3183098861837907
PI_PARTS = (3.140625, 0.0009677410125732422, -8.742277657347586e-08)
"""pi as three float32 numbers: 8 significant bits, 12 bits, and the rest (their float64 sum
is pi within 4e-15)."""

SIN_COEFFS = (-0.16666656732559204, 0.008333017118275166, -0.00019806614727713168, 2.6000548132287804e-06)
"""``P`` in ``sin(r) = r + r^3 P(r^2)`` on ``[-pi/2, pi/2]``, lowest degree first; absolute
error 1.7e-8 in exact arithmetic."""

EXACT_RANGE = 6000.0
"""``|z|`` up to which the reduction is exact enough for :data:`MAX_ABS_ERROR` without fused
multiply-adds (with them, as compiled: 1e5)."""

MAX_ABS_ERROR = 1.5e-7
"""The largest absolute error of :func:`poly_sin` and :func:`poly_cos` for ``|z| <=`` :data:`EXACT_RANGE`."""


def sincos_kernel() -> str:
    """The sin and cos a compiled step's periodic layers use: ``poly`` or ``torch``."""
    return _kernel.get()


def set_sincos_kernel(name: str) -> str:
    """Evaluate sin and cos in compiled steps with ``name`` from now on; returns the previous one."""
    return _kernel.set(name)


def _sin_reduced(r: torch.Tensor) -> torch.Tensor:
    """sin(r) for ``r`` in ``[-pi/2, pi/2]``."""
    r2 = r * r
    c0, c1, c2, c3 = SIN_COEFFS
    return r + r * r2 * (c0 + r2 * (c1 + r2 * (c2 + r2 * c3)))


def _reduce(z: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    p1, p2, p3 = PI_PARTS
    return ((z - k * p1) - k * p2) - k * p3


def _odd(k: torch.Tensor) -> torch.Tensor:
    """1.0 where the integer-valued ``k`` is odd, 0.0 where it is even."""
    half = k * 0.5
    return (half - torch.floor(half)) * 2.0


def poly_sin(z: torch.Tensor) -> torch.Tensor:
    """sin(z) from the shared reduction and polynomial (within :data:`MAX_ABS_ERROR`)."""
    k = torch.round(z * INV_PI)
    return _sin_reduced(_reduce(z, k)) * (1.0 - 2.0 * _odd(k))


def poly_cos(z: torch.Tensor) -> torch.Tensor:
    """cos(z) from the shared reduction and polynomial (within :data:`MAX_ABS_ERROR`)."""
    k = torch.round(z * INV_PI - 0.5)
    return _sin_reduced(_reduce(z, k + 0.5)) * (2.0 * _odd(k) - 1.0)


class PolyPeriodic(torch.autograd.Function):
    """sin(z) or cos(z) by the polynomial; ``z`` is kept and backward recomputes the factor.

    Meant for compiled graphs, where inductor fuses each direction's operations into one
    loop (forward with the matrix product's consumer, backward with the gradient's
    multiply); eagerly it is a dozen separate passes.
    """

    @staticmethod
    def forward(ctx, z: torch.Tensor, is_cos: bool) -> torch.Tensor:
        ctx.is_cos = is_cos
        ctx.save_for_backward(z)
        return poly_cos(z) if is_cos else poly_sin(z)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (z,) = ctx.saved_tensors
        return (-(poly_sin(z) * grad) if ctx.is_cos else poly_cos(z) * grad), None
