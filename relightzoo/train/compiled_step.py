"""The training step's forward, loss and backward as one compiled graph (``torch.compile``).

A step of the default siren is mostly matrix multiplies; what else it does (the sine and
cosine, their derivative's multiply in backward, the bias gradients' column sums, the loss
and its gradient, the encoder) is a dozen passes over ``batch x width`` tensors and a few
hundred operator calls. Compiled as one graph, inductor fuses those passes into a few loops
around the matrix multiplies (which stay MKL's), so the step costs little more than its
GEMMs: on one CPU thread the default siren trains at 0.87 to 0.94 of the roofline against
0.82 to 0.90 eagerly in the latest runs on a shared machine (``relightzoo bench --step
plain,compiled``; benchmarks/README.md). Two pieces serve the compiled graph only: the
periodic layer's polynomial sin and cos (:mod:`relightzoo.builtins.sincos`) and the siren
head's input gradient as multiply-adds (:mod:`relightzoo.builtins.narrow_head`), both
fused by inductor into the loops around the GEMMs.

Two step kernels (:func:`set_step_kernel`, or the environment variable ``RELIGHTZOO_STEP``):

- ``plain`` (the default): eager PyTorch, nothing to compile;
- ``compiled``: the model's forward and the MSE compiled together; autograd runs the
  compiled backward. It needs a C++ compiler on the CPU (Triton on CUDA) and compiles in
  the first step (about 10 s on 2 cores for the default siren, a second or two when
  inductor's on-disk cache already holds the graph), so it pays off for runs of a few
  thousand steps. Values are the eager step's up to float32 rounding (the fused kernels
  evaluate sin and cos with their own code: by default a polynomial with its own range
  reduction, :mod:`relightzoo.builtins.sincos`, within 1.5e-7 of torch's, which takes
  fewer instructions a loop than SLEEF's sin and cos; the C++ compiler may fuse
  multiply-adds); runs stay deterministic, so a
  resumed compiled run repeats the uninterrupted one exactly. Where compiling or running
  the graph fails (no compiler, an operator inductor cannot handle), the step warns once,
  discards the partial gradients and trains with ``plain`` from then on.

Models are passed to the compiled function as arguments, so models of one structure share
one compiled graph (an ablation grid compiles once per architecture, not once per cell).
"""

from __future__ import annotations

import functools
import warnings
from typing import Sequence

import torch
import torch.nn.functional as F

from ..errors import TrainingError
from ..util.switches import Switch
from .precision import precision_context

__all__ = ["STEP_KERNELS", "step_kernel", "set_step_kernel", "loss_and_backward"]

STEP_KERNELS = ("plain", "compiled")
"""How a training step computes its forward, loss and backward (see the module docstring)."""

_kernel = Switch("step kernel", STEP_KERNELS, "plain", "RELIGHTZOO_STEP", TrainingError)


def step_kernel() -> str:
    """The step kernel training uses: ``plain`` or ``compiled``."""
    return _kernel.get()


def set_step_kernel(name: str) -> str:
    """Train with step kernel ``name`` from now on; returns the previous one."""
    return _kernel.set(name)


def _mse(model: torch.nn.Module, inputs: tuple[torch.Tensor, ...], target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(model(*inputs), target)


def _inductor_options() -> dict:
    """Let the C++ compiler fuse multiply-adds in inductor's CPU loops (one rounding
    instead of two: the periodic layer's polynomial, relightzoo.builtins.sincos, is mostly
    multiply-adds), where this torch's inductor has the setting."""
    from torch._inductor import config

    return {"cpp.enable_floating_point_contract_flag": "fast"} if hasattr(config.cpp, "enable_floating_point_contract_flag") else {}


@functools.lru_cache(maxsize=1)
def _compiled_mse():
    return torch.compile(_mse, dynamic=False, options=_inductor_options())


def loss_and_backward(
    model: torch.nn.Module, inputs: Sequence[torch.Tensor], target: torch.Tensor, *, precision: str = "fp32"
) -> torch.Tensor:
    """The MSE between ``model(*inputs)`` and ``target``, its gradients accumulated into the
    parameters (``.grad``, which the caller has cleared), with the selected step kernel; the
    forward in ``precision`` (``fp32`` or ``bf16``, :mod:`.precision`), the loss in float32."""
    inputs = tuple(inputs)
    if _kernel.name == "compiled":
        try:
            with precision_context(precision, target.device):
                loss = _compiled_mse()(model, inputs, target)
            loss.backward()
            return loss
        except Exception as exc:  # noqa: BLE001 - no compiler, an unsupported operator or device: fall back
            for p in model.parameters():
                p.grad = None  # a backward that failed part-way may have left some
            _kernel.name = "plain"
            warnings.warn(
                f"the compiled training step failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                "training with the plain one",
                stacklevel=3,
            )
    with precision_context(precision, target.device):
        loss = F.mse_loss(model(*inputs), target)
    loss.backward()
    return loss
