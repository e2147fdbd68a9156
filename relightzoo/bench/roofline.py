"""The roofline: a model's layer-shaped dense matrix multiplies, timed alone.

A coordinate network's step is mostly GEMMs; everything else (activations, the loss, the
optimiser, the sampler) is overhead. The roofline runs the same GEMMs (the shapes of every
linear layer's forward and, for training, backward) on preallocated operands, chained as the
layers chain, so its time is what the step would cost if the overhead were free, and its
buffers are the working set the step cannot do without (every layer's activation kept for
backward, two gradient buffers, the weight gradients).

Shapes, for a layer ``y = x W^T`` with ``x [B, in]`` and ``W [out, in]``:

- forward: ``[B, in] @ [in, out]``;
- backward: ``[out, B] @ [B, in]`` (the weight gradient) and ``[B, out] @ [out, in]`` (the
  input gradient), except the first layer's input gradient, which autograd skips because
  the encoder's features need none.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["GemmShape", "dense_layers", "gemm_shapes", "Roofline"]


@dataclass(frozen=True)
class GemmShape:
    """One matrix multiply ``[m, k] @ [k, n]`` and what it stands for."""

    m: int
    k: int
    n: int
    role: str  # "forward", "weight-grad" or "input-grad"
    layer: int

    @property
    def flops(self) -> int:
        return 2 * self.m * self.k * self.n


def dense_layers(model: nn.Module) -> list[tuple[int, int]]:
    """``(in_features, out_features)`` of every dense layer of ``model``, in order.

    A dense layer is a module with a 2-D ``weight`` parameter of its own: ``nn.Linear`` and
    its subclasses, and look-alikes such as siren-pytorch's ``Siren`` layer.
    """
    out = []
    for module in model.modules():
        w = module._parameters.get("weight") if hasattr(module, "_parameters") else None
        if isinstance(w, torch.Tensor) and w.dim() == 2:
            out.append((int(w.shape[1]), int(w.shape[0])))
    return out


def gemm_shapes(model_or_layers, batch: int, *, backward: bool = True) -> list[GemmShape]:
    """The GEMMs one forward (and, with ``backward``, one backward) pass over ``batch`` rows does."""
    layers = dense_layers(model_or_layers) if isinstance(model_or_layers, nn.Module) else list(model_or_layers)
    shapes = [GemmShape(batch, i, o, "forward", li) for li, (i, o) in enumerate(layers)]
    if backward:
        for li in reversed(range(len(layers))):
            i, o = layers[li]
            shapes.append(GemmShape(o, batch, i, "weight-grad", li))
            if li > 0:
                shapes.append(GemmShape(batch, o, i, "input-grad", li))
    return shapes


class Roofline:
    """The GEMMs of ``layers`` over ``batch`` rows on preallocated, chained buffers.

    Calling it runs them once (forward, then backward when ``backward``). ``flops`` counts
    the multiply-adds twice; ``nbytes`` is the working set it allocates beyond the weights:
    for training every layer's output (kept for backward), two gradient buffers and the
    weight gradients; for rendering two activation buffers (one layer's input and output).
    """

    def __init__(
        self,
        layers: list[tuple[int, int]],
        batch: int,
        *,
        backward: bool,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        if not layers:
            raise ValueError("a roofline needs at least one dense layer")
        device = torch.device(device)
        g = torch.Generator(device="cpu").manual_seed(0)
        self.layers, self.batch, self.backward = list(layers), int(batch), bool(backward)
        self.shapes = gemm_shapes(self.layers, self.batch, backward=self.backward)
        self.flops = sum(s.flops for s in self.shapes)

        def rand(*shape: int, scale: float = 1.0) -> torch.Tensor:
            return (torch.randn(*shape, generator=g) * scale).to(device, dtype)

        self.weights = [rand(o, i, scale=i**-0.5) for i, o in self.layers]
        widest = max(max(i, o) for i, o in self.layers)
        self.x = rand(self.batch, self.layers[0][0])
        nbytes = 0
        if self.backward:
            self.acts = [torch.empty(self.batch, o, device=device, dtype=dtype) for _, o in self.layers]
            self.grads = [torch.empty(self.batch * widest, device=device, dtype=dtype) for _ in range(2)]
            self.grads[0][: self.batch * self.layers[-1][1]].normal_(generator=None)
            self.wgrads = [torch.empty(o, i, device=device, dtype=dtype) for i, o in self.layers]
            nbytes += sum(t.nbytes for t in (*self.acts, *self.grads, *self.wgrads))
        else:
            self.acts = [torch.empty(self.batch * widest, device=device, dtype=dtype) for _ in range(2)]
            nbytes += sum(t.nbytes for t in self.acts)
        self.nbytes = nbytes

    def _act(self, li: int) -> torch.Tensor:
        """The output buffer of layer ``li`` (``[B, out]``)."""
        o = self.layers[li][1]
        if self.backward:
            return self.acts[li]
        return self.acts[li % 2][: self.batch * o].view(self.batch, o)

    def __call__(self) -> None:
        x = self.x
        for li, w in enumerate(self.weights):
            y = self._act(li)
            torch.mm(x, w.t(), out=y)
            x = y
        if not self.backward:
            return
        g = self.grads[0][: self.batch * self.layers[-1][1]].view(self.batch, self.layers[-1][1])
        for li in reversed(range(len(self.layers))):
            i, o = self.layers[li]
            inp = self.x if li == 0 else self.acts[li - 1]
            torch.mm(g.t(), inp, out=self.wgrads[li])
            if li > 0:
                nxt = self.grads[(len(self.layers) - li) % 2][: self.batch * i].view(self.batch, i)
                torch.mm(g, self.weights[li], out=nxt)
                g = nxt
