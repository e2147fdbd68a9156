"""Shared click parameter types: every numeric option is range-checked before any work starts.

Each command declares its numeric options with one of these, so a value out of range (a
negative seed, a learning rate of ``inf``, zero steps where one is needed) is a usage error
(exit 2) that states the range, raised while click parses the command line, before a dataset
is loaded or a model built. The bounds are the ones the code behind the option accepts:
``SEED`` is what numpy's and torch's generators take, counts stay within 32-bit sizes.
"""

from __future__ import annotations

import math

import click

__all__ = [
    "FiniteFloatRange",
    "IntList",
    "SEED",
    "STEPS",
    "COUNT",
    "NONNEGATIVE",
    "PRECISION",
    "PRECISION_HELP",
    "LEARNING_RATE",
    "FINITE",
    "POSITIVE_FLOAT",
    "MAX_SEED",
    "MAX_COUNT",
    "SIZE",
]

MAX_SEED = 2**32 - 1
"""The largest seed: numpy's legacy generator (``np.random.seed``) takes 32-bit seeds."""

MAX_COUNT = 2**31 - 1
"""The largest count of anything (steps, samples, pixels a side): a 32-bit signed size."""


class FiniteFloatRange(click.FloatRange):
    """A ``click.FloatRange`` that also refuses ``nan`` and ``inf`` (which compare as in range)."""

    name = "finite float range"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            where = self._describe_range() if (self.min is not None or self.max is not None) else "any finite number"
            self.fail(f"{value!r} is not a finite number; expected {where}.", param, ctx)
        return rv

    def __repr__(self) -> str:
        return f"<FiniteFloatRange {self._describe_range()}>"


class IntList(click.ParamType):
    """Comma-separated whole numbers, each within ``[min, max]``: ``--seeds 0,1,2``, ``--envmap-k 64,256``."""

    name = "int list"

    def __init__(self, min: int, max: int) -> None:  # noqa: A002 - click's own naming
        self.item = click.IntRange(min, max)

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if not parts:
            self.fail(f"{value!r} holds no numbers; expected comma-separated whole numbers.", param, ctx)
        out = []
        for part in parts:
            try:
                out.append(self.item.convert(part, param, ctx))
            except click.BadParameter as exc:
                self.fail(f"in {value!r}: {exc.message}", param, ctx)
        return out

    def get_metavar(self, param, ctx=None) -> str:  # click passes ctx from 8.2 on
        return "N1,N2"


SEED = click.IntRange(0, MAX_SEED)
"""A random seed: 0 to 2**32 - 1."""

STEPS = click.IntRange(0, 10**9)
"""Optimiser steps (0 trains nothing and saves the model as built)."""

COUNT = click.IntRange(1, MAX_COUNT)
"""A positive count: batch sizes, repeats, intervals, lights."""

NONNEGATIVE = click.IntRange(0, MAX_COUNT)
"""A count that may be zero: warm-up steps, untimed calls."""

POSITIVE_FLOAT = FiniteFloatRange(min=0, min_open=True)
"""A finite number above zero (CPUs a task asks for)."""

LEARNING_RATE = POSITIVE_FLOAT
"""A learning rate: finite and above zero."""

FINITE = FiniteFloatRange()
"""Any finite number (angles)."""

PRECISION = click.Choice(("fp32", "bf16", "auto"))
"""A training precision: relightzoo.train.precision.PRECISIONS, spelled out here so that
``--help`` needs no torch import (tests/test_precision.py checks the two agree)."""

PRECISION_HELP = (
    "fp32, bf16 mixed precision, or auto (bf16 where the CPU or GPU multiplies it natively) "
    "[default: the recipe's or model's, else fp32]."
)
"""The help of ``--precision`` on relightzoo train and relightzoo ablate."""


class Size(click.ParamType):
    """An image size, ``WxH`` or ``N`` (square): ``(width, height)``, in the one grammar of
    :func:`relightzoo.util.sizes.parse_size`; anything else is a usage error."""

    name = "size"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        from ..errors import RelightzooError
        from ..util.sizes import parse_size

        try:
            return parse_size(value)
        except RelightzooError as exc:
            self.fail(str(exc), param, ctx)


SIZE = Size()
"""``--size WxH`` or ``--size N``."""
