"""The compiled step's polynomial sin and cos (relightzoo/builtins/sincos.py): where its
coefficients come from, how accurate it is, and what one fused pass costs.

    python benchmarks/sincos.py                  # all three parts, one thread
    python benchmarks/sincos.py --threads 2 --repeats 300

1. coefficients: ``P`` in ``sin(r) = r + r^3 P(r^2)`` on ``[0, pi/2]`` by iteratively
   reweighted least squares on Chebyshev nodes (float64, absolute error), rounded to
   float32, beside the module's ``SIN_COEFFS``;
2. accuracy: the largest absolute error against float64 sin and cos of the same float32
   inputs, eagerly and compiled (fused multiply-adds, as the compiled step builds it), for
   ``|z|`` up to 1 ... 1e7, beside torch's float32 sin and cos;
3. timing: one compiled pass over a 4096 x 256 float32 tensor (the default siren's hidden
   layer at the default batch), median of ``--repeats`` interleaved calls (the thread's CPU
   time on one thread, wall time on more):
   a copy, ReLU forward and backward, torch's sin and ``g * cos``, the polynomial's, and the
   two alternatives not kept (a ``torch.where`` fallback to torch's sin, a clamped ``r``).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from relightzoo.builtins.sincos import SIN_COEFFS, _reduce, _sin_reduced, poly_cos, poly_sin
from relightzoo.train.compiled_step import _inductor_options


def fit_coefficients(terms: int = 4, nodes: int = 6000, iterations: int = 200) -> np.ndarray:
    """Near-minimax ``P`` (lowest degree first) for the absolute error of sin on [0, pi/2]."""
    t = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    r = (np.pi / 2) * (t + 1) / 2
    r = r[r > 1e-3]
    target, weight = (np.sin(r) - r) / r**3, r**3  # error of sin = r^3 x error of P
    basis = np.stack([(r * r) ** i for i in range(terms)], 1)
    w = weight.copy()
    for _ in range(iterations):  # reweight towards the worst nodes: approaches the equioscillating fit
        coeffs, *_ = np.linalg.lstsq(basis * w[:, None], target * w, rcond=None)
        err = np.abs(basis @ coeffs - target) * weight
        w = w * (1 + err / err.max())
    return coeffs


def accuracy(limits=(1.0, 40.0, 6000.0, 1e5, 1e6, 1e7), n: int = 2_000_000) -> list[dict]:
    both = torch.compile(lambda z: (poly_sin(z), poly_cos(z)), dynamic=False, options=_inductor_options())
    rows = []
    for limit in limits:
        z = ((torch.rand(n, dtype=torch.float64) * 2 - 1) * limit).float()
        zd = z.double()
        cs, cc = both(z)
        row = {"limit": limit}
        for name, s, c in (("torch", torch.sin(z), torch.cos(z)), ("poly", poly_sin(z), poly_cos(z)), ("poly compiled", cs, cc)):
            row[name] = max((s.double() - torch.sin(zd)).abs().max().item(), (c.double() - torch.cos(zd)).abs().max().item())
        rows.append(row)
    return rows


def timings(repeats: int) -> dict[str, float]:
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter  # one thread: immune to other jobs' scheduling
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(4096, 256, generator=gen) * 3
    g = torch.randn(4096, 256, generator=gen)
    opts = _inductor_options()

    def clamped_sin(t):
        k = torch.round(t * 0.3183098861837907)
        return _sin_reduced(_reduce(t, k).clamp(-2.0, 2.0)) * (1.0 - 2.0 * ((k * 0.5 - torch.floor(k * 0.5)) * 2.0))

    passes = {
        "copy (x 2)": lambda t: t * 2.0,
        "relu": torch.relu,
        "relu backward: g * (z > 0)": lambda t: g * (t > 0),
        "torch sin": torch.sin,
        "torch g * cos": lambda t: g * torch.cos(t),
        "poly sin": poly_sin,
        "poly g * cos": lambda t: g * poly_cos(t),
        "poly sin, torch.where fallback beyond 6000": lambda t: torch.where(t.abs() <= 6000.0, poly_sin(t), torch.sin(t)),
        "poly sin, r clamped": clamped_sin,
    }
    compiled = {name: torch.compile(fn, dynamic=False, options=opts) for name, fn in passes.items()}
    times = {name: [] for name in compiled}
    for fn in compiled.values():
        fn(z)
        fn(z)
    for _ in range(repeats):
        for name, fn in compiled.items():
            t0 = clock()
            fn(z)
            times[name].append(clock() - t0)
    return {name: 1e3 * statistics.median(v) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    fitted = fit_coefficients()
    print("coefficients (fitted now | SIN_COEFFS):")
    for a, b in zip(fitted.astype(np.float32).tolist(), SIN_COEFFS):
        print(f"  {a: .10e} | {b: .10e}")
    rr = np.linspace(-np.pi / 2, np.pi / 2, 400_001)
    c = np.asarray(SIN_COEFFS, dtype=np.float64)
    print(f"  max |sin error| in exact arithmetic on [-pi/2, pi/2]: {np.abs(rr + rr**3 * np.polyval(c[::-1], rr * rr) - np.sin(rr)).max():.2e}")

    print("\nmax abs error against float64 (sin and cos together):")
    print(f"  {'|z| <=':>10} {'torch':>10} {'poly':>10} {'compiled':>10}")
    for row in accuracy():
        print(f"  {row['limit']:>10g} {row['torch']:>10.2e} {row['poly']:>10.2e} {row['poly compiled']:>10.2e}")

    clock = "thread CPU" if args.threads == 1 else "wall"
    print(f"\none compiled pass over 4096 x 256 float32, {torch.get_num_threads()} thread(s), median {clock} ms of {args.repeats}:")
    for name, ms in timings(args.repeats).items():
        print(f"  {name:45s} {ms:.3f}")


if __name__ == "__main__":
    main()
