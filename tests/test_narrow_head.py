"""The siren's head inside a compiled step (relightzoo.builtins.narrow_head): the input
gradient as multiply-adds gives torch's gradients up to float32 rounding; outside a compiled
graph the layer is exactly F.linear. (tests/test_compiled_step.py checks that compiled steps
through it train like the plain step.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from relightzoo.builtins.narrow_head import NARROW_MAX_OUT, NarrowLinear, narrow_linear

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("out_features, bias", [(3, True), (1, True), (NARROW_MAX_OUT, False)])
def test_narrow_linear_gives_torchs_values_and_gradients(out_features: int, bias: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(512, 64, generator=gen, requires_grad=True)
    w = torch.randn(out_features, 64, generator=gen, requires_grad=True)
    b = torch.randn(out_features, generator=gen, requires_grad=True) if bias else None
    g = torch.randn(512, out_features, generator=gen)
    inputs = (x, w, b) if bias else (x, w)
    ref_out = F.linear(x, w, b)
    ref = torch.autograd.grad(ref_out, inputs, g)
    out = NarrowLinear.apply(x, w, b)
    got = torch.autograd.grad(out, inputs, g)
    torch.testing.assert_close(out, ref_out, rtol=0, atol=0)  # forward: the same addmm
    for a, r in zip(got, ref):
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)
    assert not torch.equal(got[0], torch.zeros_like(got[0]))


def test_outside_a_compiled_graph_it_is_f_linear() -> None:
    layer = torch.nn.Linear(16, 3)
    x = torch.randn(8, 16)
    assert torch.equal(narrow_linear(layer, x), F.linear(x, layer.weight, layer.bias))
