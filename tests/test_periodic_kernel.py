"""The periodic layer's kernels (relightzoo.builtins.activations): the numpy kernel (the
default) and the compiled kernel (sin and cos in one torch.compile'd pass) train like the
plain one up to float32 rounding; the compiled one, where it cannot compile, warns once and
falls back to the plain kernel; the switch and its errors."""

from __future__ import annotations

import types
import warnings

import pytest
import torch
from click.testing import CliRunner

from relightzoo.builtins.activations import DEFAULT_PERIODIC_KERNEL, PERIODIC_KERNELS, periodic_kernel, set_periodic_kernel
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


@pytest.mark.parametrize("activation", ["sine", "cosine"])
def test_numpy_kernel_trains_like_the_plain_one(activation: str) -> None:
    out, grads, _, _ = _step(activation, "plain")
    n_out, n_grads, kernel, caught = _step(activation, "numpy")
    assert kernel == "numpy" and not caught
    # numpy's float32 sin and cos are within one unit in the last place of torch's
    torch.testing.assert_close(n_out, out, rtol=0, atol=2.5e-7)
    for a, b in zip(n_grads, grads):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_numpy_kernel_is_what_trains(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import relightzoo.builtins.activations as acts

    calls: list[str] = []

    def counted(fn):
        def wrapper(*args, **kwargs):
            calls.append(fn.__name__)
            return fn(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(acts, "np", types.SimpleNamespace(sin=counted(np.sin), cos=counted(np.cos)))
    _step("sine", "plain")
    assert calls == []
    _step("sine", "numpy")  # two sine layers: derivative and value of each
    assert calls == ["cos", "sin", "cos", "sin"]


def test_numpy_kernel_keeps_the_in_place_contract() -> None:
    """The pre-activation buffer becomes the output (no copy) and the derivative is exact."""
    from relightzoo.builtins.activations import _PeriodicInPlace

    for is_cos in (False, True):
        z0 = torch.linspace(-40.0, 40.0, 4096).reshape(64, 64)
        z = z0.clone().requires_grad_(True)
        y = z * 1.0  # a non-leaf buffer, as the layer's matrix product is
        out = _PeriodicInPlace.apply(y, is_cos, True)
        assert out.data_ptr() == y.data_ptr()
        torch.testing.assert_close(out, torch.cos(z0) if is_cos else torch.sin(z0), rtol=0, atol=2.5e-7)
        out.sum().backward()
        torch.testing.assert_close(z.grad, -torch.sin(z0) if is_cos else torch.cos(z0), rtol=0, atol=2.5e-7)


def test_the_switch_names_its_kernels() -> None:
    assert PERIODIC_KERNELS == ("plain", "numpy", "compiled") and DEFAULT_PERIODIC_KERNEL == "numpy"
    with pytest.raises(PluginError, match="unknown periodic kernel 'fused'"):
        set_periodic_kernel("fused")
    res = CliRunner().invoke(main, ["bench", "--periodic", "plain,fused", "--batch-size", "8", "--size", "4"])
    assert res.exit_code == 2 and "choose from plain, numpy, compiled" in res.output
