"""The ``relightzoo`` command line: one click group whose subcommands load lazily.

Each subcommand lives in its own module (``relightzoo/cli/<name>_cmd.py``) and is imported
only when used, so ``relightzoo --help`` and ``relightzoo data info`` stay quick. User
errors (:class:`relightzoo.errors.RelightzooError`) become one-line messages with exit
status 1; set ``RELIGHTZOO_DEBUG=1`` to see their traceback.
"""

from __future__ import annotations

import os
import warnings

import click

from .. import __version__
from ..errors import RelightzooError
from .lazy import LazyGroup

__all__ = ["main", "COMMANDS"]

COMMANDS: dict[str, tuple[str, str]] = {
    "plugins": ("relightzoo.cli.plugins_cmd:plugins", "List registered encoders, activations and models."),
    "recipes": ("relightzoo.cli.recipes_cmd:recipes", "List the named recipes train --recipe accepts."),
    "data": ("relightzoo.cli.data_cmd:data", "Inspect, convert and render OLAT datasets."),
    "train": ("relightzoo.cli.train_cmd:train", "Train a model on a dataset's training lights."),
    "eval": ("relightzoo.cli.eval_cmd:eval_", "Score a checkpoint on held-out lights beside the classical baselines."),
    "relight": ("relightzoo.cli.relight_cmd:relight", "Render a checkpoint under new lights or an envmap."),
    "ablate": ("relightzoo.cli.ablate_cmd:ablate", "Train and compare a grid of encoders x activations."),
    "bench": ("relightzoo.cli.bench_cmd:bench", "Measure throughput and memory against a roofline."),
    "view": ("relightzoo.cli.view_cmd:view", "Relight a checkpoint or dataset live in the browser."),
    "export": ("relightzoo.cli.export_cmd:export", "Write a checkpoint in the Relight/OpenLIME web format."),
}
"""Subcommand name -> (``module:attribute`` of its click command, one-line help).

The help line is kept here so that ``relightzoo --help`` lists the commands without
importing them (several pull in torch and timm)."""


class _MainGroup(LazyGroup):
    """The top group: every command lazy (:data:`COMMANDS`), listed without importing any,
    and user errors turned into one-line messages."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List commands from :data:`COMMANDS` without importing them."""
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except RelightzooError as exc:
            if os.environ.get("RELIGHTZOO_DEBUG"):
                raise
            raise click.ClickException(str(exc)) from None


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as one line (``warning: ...``) instead of Python's two-line form."""
    return f"warning: {message}\n"


@click.group(cls=_MainGroup, lazy={name: spec for name, (spec, _) in COMMANDS.items()}, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "--version", prog_name="relightzoo")
def main() -> None:
    """relightzoo: learn (pixel, light direction) -> RGB from light-stage photographs
    and relight scenes under new lights, environment maps and resolutions.

    DATA is a dataset folder (images + lights.txt, lights.json or an RTI .lp file) or the
    name of a built-in scene (``demo``). Set RELIGHTZOO_DEBUG=1 to see tracebacks of user errors.
    """
    if not os.environ.get("RELIGHTZOO_DEBUG"):
        warnings.formatwarning = _format_warning
