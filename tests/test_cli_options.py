"""Numeric options are range-checked by click before any work starts, with the range in the message."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from relightzoo.cli import COMMANDS, main
from relightzoo.cli.params import FiniteFloatRange, IntList


def _commands():
    """Every leaf command of the CLI, with its path (``data info``, ``train``...)."""
    for name, (spec, _) in COMMANDS.items():
        module, _, attr = spec.partition(":")
        try:
            cmd = getattr(importlib.import_module(module), attr)
        except ImportError:  # a command whose optional extra is absent
            continue
        stack = [((name,), cmd)]
        while stack:
            path, c = stack.pop()
            if isinstance(c, click.Group):
                stack.extend((path + (sub,), c.commands[sub]) for sub in c.commands)
            else:
                yield " ".join(path), c


def test_every_numeric_option_is_bounded() -> None:
    unbounded = []
    for path, cmd in _commands():
        for p in cmd.params:
            t = p.type
            if isinstance(t, (click.types.IntParamType, click.types.FloatParamType)) and not isinstance(
                t, (click.IntRange, click.FloatRange)
            ):
                unbounded.append(f"{path} {p.opts[0]}")
            elif isinstance(t, click.FloatRange) and not isinstance(t, FiniteFloatRange):
                unbounded.append(f"{path} {p.opts[0]} (lets nan/inf through)")
            elif isinstance(t, click.IntRange) and t.max is None:
                unbounded.append(f"{path} {p.opts[0]} (no upper bound)")
    assert unbounded == []


@pytest.mark.parametrize(
    "args, says",
    [
        (["train", "nowhere", "--seed", "-1"], "-1 is not in the range 0<=x<=4294967295"),
        (["train", "nowhere", "--seed", str(2**64)], "is not in the range 0<=x<=4294967295"),
        (["train", "nowhere", "--lr", "inf"], "'inf' is not a finite number; expected x>0"),
        (["train", "nowhere", "--lr", "nan"], "'nan' is not a finite number; expected x>0"),
        (["train", "nowhere", "--lr", "0"], "0 is not in the range x>0"),
        (["train", "nowhere", "--steps", "-5"], "is not in the range 0<=x<=1000000000"),
        (["train", "nowhere", "--batch-size", "0"], "is not in the range 1<=x<=2147483647"),
        (["ablate", "nowhere", "--seeds", "0,-3"], "in '0,-3': -3 is not in the range 0<=x<=4294967295"),
        (["ablate", "nowhere", "--lr", "1e400"], "is not a finite number"),
        (["bench", "--repeats", "0"], "is not in the range 1<=x<=10000"),
        (["bench", "--envmap-k", "64,0"], "in '64,0': 0 is not in the range 1<=x<=1048576"),
        (["relight", "nowhere.safetensors", "--polar", "nan", "--out", "x.png"], "'nan' is not a finite number"),
        (["relight", "nowhere.safetensors", "--light", "0,0,1", "--frames", "100000", "--out", "x.gif"], "2<=x<=10000"),
    ],
)
def test_out_of_range_is_a_usage_error_before_any_work(args: list[str], says: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output  # a usage error: nothing was loaded ("nowhere" would be exit 1)
    assert says in " ".join(result.output.split()), result.output
    assert list(tmp_path.iterdir()) == []


def test_int_list_reads_comma_separated_numbers() -> None:
    assert IntList(0, 9).convert("1, 2,3", None, None) == [1, 2, 3]
    with pytest.raises(click.BadParameter, match="holds no numbers"):
        IntList(0, 9).convert(",", None, None)
