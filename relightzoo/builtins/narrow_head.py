"""A linear layer with few outputs (the siren's RGB head) inside a compiled step, its input
gradient as a few multiply-adds that inductor fuses into the layer below's backward loop.

The head's backward is two matrix multiplies: the weight gradient ``g^T x`` and the input
gradient ``g W`` (``[batch, 3] @ [3, width]``). With an inner dimension of 3 the second is
all memory traffic, and MKL serves it badly: on one AVX-512 core it writes the 4 MiB
``[4096, 256]`` result in 0.95 ms, where a plain copy of that size takes 0.13 ms. Inside a
compiled graph :class:`NarrowLinear` computes that gradient as ``sum_j g[:, j] W[j]``,
elementwise, so inductor fuses it into the loop that already reads the gradient below (the
periodic layer's ``g * cos(z)``, ReLU's mask): the GEMM and one 4 MiB round trip disappear.
Forward and the weight gradient stay MKL's. On one thread this added 2 to 4 points to the
default siren's compiled step against the roofline (sine 0.905 to 0.928, cosine 0.902 to
0.939, relu 0.941 to 0.985: steps of both variants interleaved in one process, CPU time,
load 3; benchmarks/README.md). Eagerly, and outside a compiled graph, the layer is
``torch.nn.functional.linear`` as before; the values agree up to float32 rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NARROW_MAX_OUT", "NarrowLinear", "narrow_linear"]

NARROW_MAX_OUT = 4
"""The most outputs for which the input gradient is written as multiply-adds (measured at 3)."""


class NarrowLinear(torch.autograd.Function):
    """``x W^T + b`` with the input gradient ``sum_j g[:, j:j+1] W[j]`` (elementwise)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = grad[:, 0:1] * weight[0]
            for j in range(1, weight.shape[0]):
                grad_x = grad_x + grad[:, j : j + 1] * weight[j]
        grad_w = grad.t() @ x if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


def narrow_linear(layer: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``; inside a compiled graph, for a 2-D ``x`` and at most :data:`NARROW_MAX_OUT`
    outputs, through :class:`NarrowLinear`."""
    if torch.compiler.is_compiling() and x.dim() == 2 and layer.out_features <= NARROW_MAX_OUT and torch.is_grad_enabled():
        return NarrowLinear.apply(x, layer.weight, layer.bias)
    return F.linear(x, layer.weight, layer.bias)
