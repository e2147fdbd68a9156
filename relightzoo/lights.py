"""Light-direction geometry: the first layer of relightzoo.

Conventions (see DESIGN.md): a light is a unit vector (x, y, z), z up, pointing toward the
light. Its spherical form is (phi, theta) with polar angle ``phi = arccos(z)`` in [0, pi/2]
on the upper hemisphere and azimuth ``theta = atan2(y, x)`` in (-pi, pi]; theta is 0 at the
pole. Conversions work on numpy arrays and torch tensors of any leading shape.

This module also holds the hemisphere patterns a light stage uses, the named light-selection
rules of the evaluation protocol (``xu5:PHI``, ``random:K[:SEED]``, ``uniform:K``, ``all``,
``list:i,j,k``) and great-circle paths for transition renders.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ._compat import ArrayLike, backend
from .errors import LightsError

__all__ = [
    "cartesian_to_spherical",
    "spherical_to_cartesian",
    "validate_directions",
    "angular_distance",
    "nearest_lights",
    "light_spacing",
    "fibonacci_hemisphere",
    "latlong_hemisphere",
    "hemisphere_pattern",
    "PATTERNS",
    "LightSplit",
    "select_lights",
    "RULE_HELP",
    "great_circle",
    "orbit",
    "format_direction",
]

UNIT_TOLERANCE = 1e-3
"""How far a direction's length may be from 1 before it is normalised with a warning."""

HORIZON_TOLERANCE = 1e-6
"""z below ``-HORIZON_TOLERANCE`` counts as below the horizon."""


def cartesian_to_spherical(dirs: ArrayLike) -> ArrayLike:
    """Unit vectors ``[..., 3]`` to ``[..., 2]`` holding (polar phi, azimuth theta) in radians.

    Azimuth is folded into (-pi, pi] so that both sides of the seam map to +pi, and is 0 at the
    poles, where atan2(0, 0) = 0.
    """
    xp = backend(dirs)
    x, y, z = dirs[..., 0], dirs[..., 1], dirs[..., 2]
    phi = xp.arccos(xp.clip(z, -1.0, 1.0))
    theta = xp.arctan2(y, x)
    theta = xp.where(theta <= -math.pi, theta + 2 * math.pi, theta)
    return xp.stack([phi, theta], -1)


def spherical_to_cartesian(sph: ArrayLike) -> ArrayLike:
    """``[..., 2]`` (polar phi, azimuth theta) in radians to unit vectors ``[..., 3]``."""
    xp = backend(sph)
    phi, theta = sph[..., 0], sph[..., 1]
    s = xp.sin(phi)
    return xp.stack([s * xp.cos(theta), s * xp.sin(theta), xp.cos(phi)], -1)


def _safe_norms(arr: np.ndarray) -> np.ndarray:
    """Row lengths of ``arr [L, 3]`` without overflow: 1e200 squared is inf, so scale first."""
    scale = np.abs(arr).max(axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    with np.errstate(over="ignore"):  # a length past the float range is inf, handled by the caller
        return np.linalg.norm(arr / safe[:, None], axis=1) * scale


def validate_directions(
    dirs: ArrayLike,
    *,
    allow_below_horizon: bool = False,
    source: str = "light directions",
) -> np.ndarray:
    """Check light directions and return them as unit float64 vectors ``[L, 3]``.

    Raises :class:`LightsError` for NaN or infinite values, zero-length vectors, the wrong
    shape, or (unless ``allow_below_horizon``) a direction below the horizon. Vectors whose
    length is not 1 are normalised with a warning, since light files written by hand often
    hold unnormalised directions.
    """
    arr = dirs.detach().cpu().numpy() if isinstance(dirs, torch.Tensor) else np.asarray(dirs)
    arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise LightsError(f"{source}: expected an array of shape [L, 3], got {list(arr.shape)}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise LightsError(f"{source}: direction {int(np.argmax(bad))} is not finite (NaN or inf)")
    norms = _safe_norms(arr)
    zero = norms < 1e-12
    if zero.any():
        raise LightsError(f"{source}: direction {int(np.argmax(zero))} has zero length")
    off = np.abs(norms - 1.0) > UNIT_TOLERANCE
    if off.any():
        warnings.warn(
            f"{source}: {int(off.sum())} direction(s) are not unit length "
            f"(e.g. #{int(np.argmax(off))}, length {norms[off][0]:.4g}); normalising them",
            stacklevel=2,
        )
    if np.isfinite(norms).all():
        arr = arr / norms[:, None]
    else:  # lengths past the float range: scale to the unit cube first
        arr = arr / np.abs(arr).max(axis=1, keepdims=True)
        arr = arr / np.linalg.norm(arr, axis=1, keepdims=True)
    below = arr[:, 2] < -HORIZON_TOLERANCE
    if below.any() and not allow_below_horizon:
        i = int(np.argmax(below))
        raise LightsError(
            f"{source}: direction {i} {format_direction(arr[i])} is below the horizon (z < 0); "
            "pass --allow-below-horizon to accept it"
        )
    return arr


def angular_distance(a: ArrayLike, b: ArrayLike) -> ArrayLike:
    """Great-circle angle in radians between unit vectors ``a [..., 3]`` and ``b [..., 3]``."""
    xp = backend(a)
    return xp.arccos(xp.clip((a * b).sum(-1), -1.0, 1.0))


def nearest_lights(queries: ArrayLike, dirs: ArrayLike, k: int) -> tuple[ArrayLike, ArrayLike]:
    """The ``k`` nearest of ``dirs [L, 3]`` to each of ``queries [Q, 3]`` on the sphere.

    Returns ``(indices [Q, k], angles [Q, k])``, nearest first.
    """
    if k < 1 or k > len(dirs):
        raise LightsError(f"asked for the {k} nearest lights, but only {len(dirs)} exist")
    xp = backend(queries)
    cos = queries @ dirs.T
    if xp is torch:
        vals, idx = torch.topk(cos, k, dim=-1)
        return idx, torch.arccos(vals.clamp(-1.0, 1.0))
    idx = np.argsort(-cos, axis=-1, kind="stable")[:, :k]
    return idx, np.arccos(np.clip(np.take_along_axis(cos, idx, -1), -1.0, 1.0))


def light_spacing(dirs: ArrayLike, *, statistic: str = "median") -> float:
    """How far apart a capture's lights are: the ``statistic`` (``median`` or ``mean``), over
    the lights of ``dirs [L, 3]``, of the angle in radians to the nearest other light (median
    19.1 degrees for 49 uniform lights on the hemisphere, 12.7 for 100). The median ignores a
    stray pair of coincident lights; ``rbf`` sizes its kernels by the mean."""
    if len(dirs) < 2:
        raise LightsError(f"the spacing of lights needs at least 2 lights, got {len(dirs)}")
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    _, angles = nearest_lights(dirs, dirs, 2)
    nearest = angles[:, 1]
    if isinstance(nearest, torch.Tensor):
        nearest = nearest.detach().cpu().numpy()
    nearest = nearest.astype(np.float64)
    return float(np.median(nearest) if statistic == "median" else np.mean(nearest))


def fibonacci_hemisphere(n: int) -> np.ndarray:
    """``n`` nearly evenly spaced directions over the upper hemisphere (a Fibonacci spiral)."""
    if n < 1:
        raise LightsError(f"a light pattern needs at least 1 light, got {n}")
    i = np.arange(n, dtype=np.float64)
    z = 1.0 - (i + 0.5) / n
    r = np.sqrt(np.clip(1.0 - z * z, 0.0, 1.0))
    az = i * math.pi * (3.0 - math.sqrt(5.0))
    return np.stack([r * np.cos(az), r * np.sin(az), z], -1)


def latlong_hemisphere(n_azimuth: int = 64, n_polar: int = 32) -> np.ndarray:
    """A latitude-longitude grid over the upper hemisphere, like a 64 x 32 light stage.

    Polar angles sit at the centres of ``n_polar`` equal bands of [0, pi/2]; azimuths at the
    centres of ``n_azimuth`` equal sectors of (-pi, pi]. Ordered band by band from the pole.
    """
    if n_azimuth < 1 or n_polar < 1:
        raise LightsError(f"a latlong grid needs positive sizes, got {n_azimuth} x {n_polar}")
    polar = (np.arange(n_polar) + 0.5) / n_polar * (math.pi / 2)
    azimuth = -math.pi + (np.arange(n_azimuth) + 0.5) / n_azimuth * 2 * math.pi
    pp, aa = np.meshgrid(polar, azimuth, indexing="ij")
    return spherical_to_cartesian(np.stack([pp.ravel(), aa.ravel()], -1))


PATTERNS = {
    "fibonacci": "N lights on a Fibonacci spiral (even coverage, any N)",
    "latlong": "a latitude-longitude grid; N = azimuths x polar bands, 2:1 like the 64 x 32 stage",
}


def hemisphere_pattern(name: str, n: int) -> np.ndarray:
    """Build the named pattern (``fibonacci`` or ``latlong``) with about ``n`` lights.

    ``latlong`` uses ``2m x m`` with m = round(sqrt(n / 2)), the light stage's 2:1 shape.
    """
    if name == "fibonacci":
        return fibonacci_hemisphere(n)
    if name == "latlong":
        m = max(1, round(math.sqrt(n / 2)))
        return latlong_hemisphere(2 * m, m)
    raise LightsError(f"unknown light pattern {name!r}; choose one of {', '.join(PATTERNS)}")


RULE_HELP = (
    "xu5:PHI (centre light + 4 at polar PHI rad, 90 deg apart), random:K[:SEED], "
    "uniform:K (farthest-point), all, list:i,j,k"
)


@dataclass(frozen=True)
class LightSplit:
    """A train/test split of a dataset's lights made by a named rule.

    ``train`` and ``test`` are index arrays into the dataset's lights. ``cap`` is the largest
    training polar angle: test lights inside it (``in_cap``) are interpolation, the rest
    extrapolation. For the rule ``all`` there is no held-out light, so ``test`` is the
    training set and ``held_out`` is False.
    """

    rule: str
    train: np.ndarray
    test: np.ndarray
    cap: float
    in_cap: np.ndarray
    held_out: bool = True

    def to_json(self) -> dict:
        """A JSON-ready description, as stored in checkpoints and results files."""
        return {
            "rule": self.rule,
            "train": [int(i) for i in self.train],
            "test": [int(i) for i in self.test],
            "cap": float(self.cap),
            "in_cap": [int(i) for i in self.in_cap],
            "held_out": self.held_out,
        }

    @classmethod
    def from_json(cls, d: dict) -> "LightSplit":
        """Inverse of :meth:`to_json`."""
        return cls(
            rule=d["rule"],
            train=np.asarray(d["train"], dtype=np.int64),
            test=np.asarray(d["test"], dtype=np.int64),
            cap=float(d["cap"]),
            in_cap=np.asarray(d["in_cap"], dtype=np.int64),
            held_out=bool(d.get("held_out", True)),
        )


def _parse_int(text: str, what: str, rule: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise LightsError(f"light rule {rule!r}: {what} must be an integer, got {text!r}") from None


def _count(text: str, rule: str, n_lights: int) -> int:
    k = _parse_int(text, "K", rule)
    if k < 1:
        raise LightsError(f"light rule {rule!r}: K must be at least 1")
    if k > n_lights:
        raise LightsError(f"light rule {rule!r} asks for {k} lights but the dataset has {n_lights}")
    return k


def _select_xu5(dirs: np.ndarray, phi: float) -> np.ndarray:
    """The light nearest the pole, then the nearest unused light to (phi, 0/90/180/270 deg)."""
    chosen = [int(np.argmax(dirs[:, 2]))]
    for az in (0.0, math.pi / 2, math.pi, -math.pi / 2):
        target = spherical_to_cartesian(np.array([phi, az]))
        order = np.argsort(-(dirs @ target), kind="stable")
        chosen.append(int(next(i for i in order if i not in chosen)))
    return np.array(chosen, dtype=np.int64)


def _select_uniform(dirs: np.ndarray, k: int) -> np.ndarray:
    """Greedy farthest-point sampling on the sphere, seeded with the light nearest the pole."""
    chosen = [int(np.argmax(dirs[:, 2]))]
    min_dist = angular_distance(dirs, dirs[chosen[0]])
    for _ in range(k - 1):
        nxt = int(np.argmax(min_dist))
        chosen.append(nxt)
        min_dist = np.minimum(min_dist, angular_distance(dirs, dirs[nxt]))
    return np.array(chosen, dtype=np.int64)


def _train_indices(rule: str, dirs: np.ndarray) -> np.ndarray:
    n = len(dirs)
    name, _, arg = rule.partition(":")
    if name == "all":
        if arg:
            raise LightsError(f"light rule {rule!r}: 'all' takes no argument")
        return np.arange(n, dtype=np.int64)
    if name == "xu5":
        try:
            phi = float(arg)
        except ValueError:
            raise LightsError(f"light rule {rule!r}: PHI must be a polar angle in radians, e.g. xu5:0.77") from None
        if not 0.0 <= phi <= math.pi / 2:
            raise LightsError(f"light rule {rule!r}: polar angle {phi} is outside [0, pi/2] (0 to 1.5708 rad)")
        if n < 5:
            raise LightsError(f"light rule {rule!r} needs 5 lights but the dataset has {n}")
        return _select_xu5(dirs, phi)
    if name == "random":
        k_text, _, seed_text = arg.partition(":")
        k = _count(k_text, rule, n)
        seed = _parse_int(seed_text, "SEED", rule) if seed_text else 0
        return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False)).astype(np.int64)
    if name == "uniform":
        return _select_uniform(dirs, _count(arg, rule, n))
    if name == "list":
        idx = [_parse_int(t.strip(), "each index", rule) for t in arg.split(",") if t.strip()]
        if not idx:
            raise LightsError(f"light rule {rule!r}: list needs at least one index, e.g. list:0,5,9")
        bad = [i for i in idx if not 0 <= i < n]
        if bad:
            raise LightsError(f"light rule {rule!r}: index {bad[0]} is out of range for {n} lights")
        if len(set(idx)) != len(idx):
            raise LightsError(f"light rule {rule!r}: indices repeat")
        return np.array(idx, dtype=np.int64)
    raise LightsError(f"unknown light rule {rule!r}; use {RULE_HELP}")


def select_lights(rule: str, dirs: ArrayLike) -> LightSplit:
    """Split a dataset's lights ``dirs [L, 3]`` into train and test by a named rule.

    The test set is every light not chosen for training; ``in_cap`` are the test lights whose
    polar angle is within the largest training polar angle.
    """
    dirs = dirs.detach().cpu().numpy() if isinstance(dirs, torch.Tensor) else np.asarray(dirs, dtype=np.float64)
    rule = rule.strip()
    train = _train_indices(rule, dirs)
    polar = np.arccos(np.clip(dirs[:, 2], -1.0, 1.0))
    cap = float(polar[train].max())
    held_out = len(train) < len(dirs)
    test = np.setdiff1d(np.arange(len(dirs)), train) if held_out else train.copy()
    in_cap = test[polar[test] <= cap + 1e-9]
    return LightSplit(rule=rule, train=train, test=test, cap=cap, in_cap=in_cap, held_out=held_out)


def great_circle(a: ArrayLike, b: ArrayLike, n: int) -> np.ndarray:
    """``n`` unit vectors from ``a`` to ``b`` (both included) along the shorter great circle."""
    a = validate_directions(np.asarray(a, dtype=np.float64).reshape(1, 3), allow_below_horizon=True)[0]
    b = validate_directions(np.asarray(b, dtype=np.float64).reshape(1, 3), allow_below_horizon=True)[0]
    if n < 2:
        raise LightsError(f"a transition needs at least 2 frames, got {n}")
    omega = float(angular_distance(a, b))
    if omega < 1e-6:
        raise LightsError("a transition needs two different lights; these are the same direction")
    if math.pi - omega < 1e-6:
        raise LightsError("the two lights are opposite: the great circle between them is not unique")
    t = np.linspace(0.0, 1.0, n)[:, None]
    path = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / math.sin(omega)
    return path / np.linalg.norm(path, axis=1, keepdims=True)


def orbit(polar: float, n: int) -> np.ndarray:
    """``n`` directions at a fixed polar angle, azimuth going once around from -pi."""
    if n < 2:
        raise LightsError(f"an orbit needs at least 2 frames, got {n}")
    if not 0.0 <= polar <= math.pi / 2:
        raise LightsError(f"orbit polar angle {polar} is outside [0, pi/2]")
    az = -math.pi + np.arange(n) * (2 * math.pi / n)
    return spherical_to_cartesian(np.stack([np.full(n, polar), az], -1))


def format_direction(d: ArrayLike) -> str:
    """``x, y, z`` with the polar/azimuth angles in degrees, for messages and tables."""
    d = np.asarray(d, dtype=np.float64)
    phi, theta = np.degrees(cartesian_to_spherical(d / max(np.linalg.norm(d), 1e-12)))
    return f"({d[0]:.3f}, {d[1]:.3f}, {d[2]:.3f}; polar {phi:.1f} deg, azimuth {theta:.1f} deg)"
