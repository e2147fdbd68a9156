"""``relightzoo recipes``: the named recipes ``train --recipe`` and ``ablate --recipe`` accept."""

from __future__ import annotations

import click

__all__ = ["recipes"]


def _describe(options: dict) -> str:
    """The options a recipe fixes, as the flags that would set them."""
    parts = []
    for key, value in options.items():
        if isinstance(value, dict):
            flag = "--" + key[: -len("_args")] + "-arg"
            parts += [f"{flag} {k}={v:g}" if isinstance(v, float) else f"{flag} {k}={v}" for k, v in value.items()]
        else:
            parts.append(f"--{key.replace('_', '-')} {value:g}" if isinstance(value, float) else f"--{key.replace('_', '-')} {value}")
    return "\n".join(parts)


@click.command("recipes")
@click.option("--json", "json_", is_flag=True, help="Print a JSON list on stdout instead of a table.")
def recipes(json_: bool) -> None:
    """List the named recipes: name, description and the options each fixes.

    Train one with relightzoo train DATA --recipe NAME; an option given beside it wins over
    the recipe's (the command says so on stderr).
    """
    from rich.markup import escape
    from rich.table import Table

    from ..console import console, print_json
    from ..recipes import list_recipes

    items = list_recipes()
    if json_:
        print_json([r.to_json() for r in items])
        return
    table = Table(title="relightzoo recipes", show_lines=True, title_justify="left")
    table.add_column("name and description", ratio=1, min_width=24)
    table.add_column("fixes", style="green", no_wrap=True)
    for r in items:
        table.add_row(f"[bold]{escape(r.name)}[/bold]\n{escape(r.description)}", escape(_describe(r.options())))
    console.print(table)
