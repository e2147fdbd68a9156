"""``relightzoo plugins``: every registered encoder, activation and model, and where it came from."""

from __future__ import annotations

import click

from ..console import console, print_json

__all__ = ["plugins"]

_KINDS = ("encoder", "activation", "model")


def _kind_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Accept ``encoder`` and ``encoders`` alike."""
    if value is None:
        return None
    v = value.strip().lower()
    v = v[:-1] if v.endswith("s") and v[:-1] in _KINDS else v
    if v not in _KINDS:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(_KINDS)}")
    return v


def _format_defaults(defaults: dict, required: tuple[str, ...]) -> str:
    parts = [f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in defaults.items()]
    parts += [f"{k}=<required>" for k in required]
    return "\n".join(parts) if parts else "-"


@click.command("plugins")
@click.argument("pattern", required=False, default="*")
@click.option("--kind", "-k", callback=_kind_option, metavar="KIND",
              help="Only this kind: encoder, activation or model.")
@click.option("--json", "json_", is_flag=True, help="Print a JSON list on stdout instead of a table.")
def plugins(pattern: str, kind: str | None, json_: bool) -> None:
    """List registered plugins: kind, name, description, default arguments, package.

    PATTERN filters names with shell wildcards (e.g. 'gelu*', '*relu*'). Third-party
    plugins come from the entry-point group 'relightzoo'; set RELIGHTZOO_BLOCK_PLUGINS=a,b
    to skip some. Override defaults with e.g. --encoder-arg pixel_scale=6 when training.
    """
    from ..zoo import list_plugins
    from ..zoo.manager import BLOCK_ENV, get_manager

    infos = list_plugins(kind, pattern)
    if json_:
        print_json([info.to_json() for info in infos])
        return
    from rich.markup import escape

    manager = get_manager()
    if not infos:
        what = f"{kind} plugins" if kind else "plugins"
        console.print(f"No {what} match {pattern!r}.")
    else:
        from rich.table import Table

        table = Table(title="relightzoo plugins", show_lines=True, title_justify="left")
        table.add_column("kind", style="cyan", no_wrap=True)
        table.add_column("name and description", ratio=1, min_width=24)
        table.add_column("defaults", style="green", no_wrap=True)
        table.add_column("package", style="magenta", no_wrap=True)
        for info in infos:
            description = escape(info.description)
            if info.kind == "model":
                description += f" [dim](uses: {', '.join(info.uses) or 'no encoder/activation'})[/dim]"
            table.add_row(info.kind, f"[bold]{escape(info.name)}[/bold]\n{description}",
                          escape(_format_defaults(info.defaults, info.required)),
                          escape(info.provider).replace(" ", "\n", 1))
        console.print(table)
    for name, error in manager.failed.items():
        console.print(f"[red]failed to load[/red] plugin {escape(repr(name))}: {escape(error)}")
    if manager.blocked:
        console.print(f"[yellow]blocked by {BLOCK_ENV}:[/yellow] {', '.join(manager.blocked)}")
