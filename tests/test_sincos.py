"""The compiled step's polynomial sin and cos (relightzoo.builtins.sincos): within the stated
bound of float64 sin and cos over a wide range, eagerly and compiled; special values; the
periodic layer hands it to the compiler and a compiled step with it trains like the plain
step; the switch and the bench option."""

from __future__ import annotations

import shutil

import pytest
import torch
from click.testing import CliRunner

from relightzoo.builtins.sincos import (
    DEFAULT_SINCOS_KERNEL,
    EXACT_RANGE,
    MAX_ABS_ERROR,
    SINCOS_KERNELS,
    PolyPeriodic,
    poly_cos,
    poly_sin,
    set_sincos_kernel,
    sincos_kernel,
)
from relightzoo.cli import main
from relightzoo.errors import PluginError

pytestmark = pytest.mark.usefixtures("one_thread")

needs_compiler = pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                                    reason="torch.compile on the CPU needs a C++ compiler")


def _inputs(limit: float, n: int = 400_000) -> torch.Tensor:
    """Random float32 values in [-limit, limit], plus multiples of pi/2 (zeros and extrema)."""
    gen = torch.Generator().manual_seed(0)
    z = (torch.rand(n, dtype=torch.float64, generator=gen) * 2 - 1) * limit
    quarter = torch.arange(-int(limit / 1.5707963267948966), int(limit / 1.5707963267948966) + 1, dtype=torch.float64)
    return torch.cat([z, quarter * (torch.pi / 2)]).float()


def _max_errors(fn_sin, fn_cos, z: torch.Tensor) -> tuple[float, float]:
    zd = z.double()
    return ((fn_sin(z).double() - torch.sin(zd)).abs().max().item(), (fn_cos(z).double() - torch.cos(zd)).abs().max().item())


@pytest.mark.parametrize("limit", [1.0, 40.0, EXACT_RANGE])
def test_poly_sin_and_cos_are_within_the_bound_of_float64(limit: float) -> None:
    z = _inputs(limit)
    err_sin, err_cos = _max_errors(poly_sin, poly_cos, z)
    assert err_sin <= MAX_ABS_ERROR and err_cos <= MAX_ABS_ERROR
    # the bound is tight: torch's own float32 sin is within 0.6 units in the last place, the polynomial within 2.5
    t_sin, t_cos = _max_errors(torch.sin, torch.cos, z)
    assert max(t_sin, t_cos) < 4e-8 and max(err_sin, err_cos) > 4e-8


def test_special_values_behave_like_torch() -> None:
    half_pi, pi = 1.5707963705062866, 3.1415927410125732  # float32 pi/2 and pi
    z = torch.tensor([0.0, -0.0, half_pi, -half_pi, pi, -pi, 2 * pi, 1e-30, -1e-30])
    torch.testing.assert_close(poly_sin(z), torch.sin(z), rtol=0, atol=MAX_ABS_ERROR)
    torch.testing.assert_close(poly_cos(z), torch.cos(z), rtol=0, atol=MAX_ABS_ERROR)
    assert poly_sin(torch.tensor([0.0])).item() == 0.0 and poly_cos(torch.tensor([0.0])).item() == 1.0
    assert poly_sin(torch.tensor([1e-30])).item() == pytest.approx(1e-30, rel=1e-6)  # tiny inputs: sin(z) = z
    bad = torch.tensor([float("inf"), -float("inf"), float("nan")])
    assert poly_sin(bad).isnan().all() and poly_cos(bad).isnan().all()  # as torch.sin and torch.cos


def test_beyond_the_exact_range_the_error_grows_as_documented() -> None:
    """Without fused multiply-adds (eagerly) the reduction loses bits past EXACT_RANGE: about
    1e-6 at |z| = 1e5, the figure the module docstring gives."""
    err_sin, err_cos = _max_errors(poly_sin, poly_cos, _inputs(1e5))
    assert MAX_ABS_ERROR < max(err_sin, err_cos) < 2e-6


@needs_compiler
def test_compiled_poly_sin_and_cos_are_within_the_bound_up_to_1e5() -> None:
    """Compiled as the step compiles them (multiply-adds fused), the bound holds up to |z| = 1e5."""
    from relightzoo.train.compiled_step import _inductor_options

    both = torch.compile(lambda z: (poly_sin(z), poly_cos(z)), dynamic=False, options=_inductor_options())
    for limit in (40.0, 1e5):
        z = _inputs(limit, n=100_000)
        z = torch.cat([z[:50_000], z[-50_000:]])  # random values and the largest multiples of pi/2; one shape, one compilation
        err_sin, err_cos = _max_errors(lambda t: both(t)[0], lambda t: both(t)[1], z)
        assert err_sin <= MAX_ABS_ERROR and err_cos <= MAX_ABS_ERROR, limit


def test_poly_periodic_gradient_is_the_derivative() -> None:
    z = (torch.rand(1000, dtype=torch.float64) * 80 - 40).float().requires_grad_()
    g = torch.randn(1000)
    for is_cos, deriv in ((False, torch.cos), (True, lambda t: -torch.sin(t))):
        (grad,) = torch.autograd.grad(PolyPeriodic.apply(z, is_cos), z, g)
        torch.testing.assert_close(grad, deriv(z.detach()) * g, rtol=0, atol=4 * MAX_ABS_ERROR)


def test_the_switch_names_its_kernels() -> None:
    assert SINCOS_KERNELS == ("poly", "torch") and DEFAULT_SINCOS_KERNEL == "poly"
    previous = set_sincos_kernel("torch")
    try:
        assert sincos_kernel() == "torch"
        with pytest.raises(PluginError, match="unknown sin/cos kernel 'fast'; choose one of poly, torch"):
            set_sincos_kernel("fast")
        assert sincos_kernel() == "torch"
    finally:
        set_sincos_kernel(previous)
    res = CliRunner().invoke(main, ["bench", "--sincos", "poly,fast", "--batch-size", "8", "--size", "4"])
    assert res.exit_code == 2 and "choose from poly, torch" in res.output


@needs_compiler
def test_a_compiled_step_trains_like_the_plain_one_with_either_kernel() -> None:
    """Three Adam steps of a small siren: the compiled step with each sin/cos kernel gives the
    plain step's losses and parameters up to float32 rounding (tests/test_compiled_step.py
    checks sine and cosine with the default kernel); the two kernels give different bits, so
    the switch really changes the compiled graph."""
    from test_compiled_step import _steps

    losses, params, _, _ = _steps("sine", "plain")
    results = {}
    for kernel in SINCOS_KERNELS:
        previous = set_sincos_kernel(kernel)
        try:
            c_losses, c_params, used, caught = _steps("sine", "compiled")
        finally:
            set_sincos_kernel(previous)
        assert used == "compiled" and not [w for w in caught if "compiled training step failed" in w]
        assert c_losses == pytest.approx(losses, rel=1e-5)
        for a, b in zip(c_params, params):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
        results[kernel] = c_params
    assert any(not torch.equal(a, b) for a, b in zip(results["poly"], results["torch"]))


def test_the_layer_uses_the_polynomial_for_float32_on_the_cpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a compiled graph (simulated here) the periodic layer hands float32 CPU tensors
    to the polynomial and anything else (bfloat16 under autocast) to torch's sin and cos."""
    from relightzoo.builtins import activations

    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    used = []
    monkeypatch.setattr(activations.PolyPeriodic, "apply", lambda z, is_cos: used.append(z.dtype) or torch.zeros_like(z))
    z = torch.linspace(-3, 3, 7)
    assert torch.equal(activations._periodic(z.clone(), False), torch.zeros(7)) and used == [torch.float32]
    half = z.bfloat16()
    assert torch.equal(activations._periodic(half, True), torch.cos(half)) and used == [torch.float32]
