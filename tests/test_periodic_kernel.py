"""The periodic layer's kernels (relightzoo.builtins.activations): the compiled kernel (sin and
cos in one torch.compile'd pass) trains like the plain one up to float32 rounding, or, where
it cannot compile, warns once and falls back to the plain kernel; the switch and its errors."""

from __future__ import annotations

import warnings

import pytest
import torch
from click.testing import CliRunner

from relightzoo.builtins.activations import PERIODIC_KERNELS, periodic_kernel, set_periodic_kernel
from relightzoo.cli import main
from relightzoo.errors import PluginError
from relightzoo.zoo import create_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _step(activation: str, kernel: str) -> tuple[torch.Tensor, list[torch.Tensor], str, list[str]]:
    previous = set_periodic_kernel(kernel)
    try:
        torch.manual_seed(0)
        model = create_model("siren", activation=activation, hidden_layers=2, hidden_features=32)
        gen = torch.Generator().manual_seed(1)
        pixels = torch.rand(256, 2, generator=gen) * 2 - 1
        lights = torch.nn.functional.normalize(torch.rand(256, 3, generator=gen) + 0.1, dim=-1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = model(pixels, lights)
            out.square().mean().backward()
        return out.detach(), [p.grad for p in model.parameters()], periodic_kernel(), [str(w.message) for w in caught]
    finally:
        set_periodic_kernel(previous)


@pytest.mark.parametrize("activation", ["sine", "cosine"])
def test_compiled_kernel_trains_like_the_plain_one(activation: str) -> None:
    out, grads, kernel, caught = _step(activation, "plain")
    assert kernel == "plain" and not [w for w in caught if "periodic kernel" in w]
    c_out, c_grads, c_kernel, c_caught = _step(activation, "compiled")
    fell_back = [w for w in c_caught if "compiled periodic kernel failed" in w]
    if c_kernel == "compiled":  # it compiled: the same values up to float32 rounding
        assert not fell_back
        torch.testing.assert_close(c_out, out, rtol=0, atol=1e-6)
        for a, b in zip(c_grads, grads):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    else:  # no compiler here: one warning, then exactly the plain kernel
        assert c_kernel == "plain" and len(fell_back) == 1
        torch.testing.assert_close(c_out, out, rtol=0, atol=0)


def test_the_switch_names_its_kernels() -> None:
    assert PERIODIC_KERNELS == ("plain", "compiled")
    with pytest.raises(PluginError, match="unknown periodic kernel 'fused'"):
        set_periodic_kernel("fused")
    res = CliRunner().invoke(main, ["bench", "--periodic", "plain,fused", "--batch-size", "8", "--size", "4"])
    assert res.exit_code == 2 and "choose from plain, compiled" in res.output
