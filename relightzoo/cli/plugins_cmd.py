"""``relightzoo plugins``: every registered encoder, activation and model, and where it came
from (``relightzoo plugins [PATTERN]``, the default ``list``), and ``relightzoo plugins check
NAME``, the conformance kit (:mod:`relightzoo.testing`) on one plugin."""

from __future__ import annotations

import click

from ..console import console, print_json

__all__ = ["plugins", "list_", "check"]

_KINDS = ("encoder", "activation", "model")


def _kind_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Accept ``encoder`` and ``encoders`` alike."""
    if value is None:
        return None
    from ..util.names import singular

    v = singular(value, _KINDS)
    if v is None:
        raise click.BadParameter(f"{value!r} is not one of {', '.join(_KINDS)}")
    return v


_DEFAULTS_WIDTH = 20
"""The defaults column's width; a longer ``key=value`` breaks after the ``=``."""


def _format_defaults(defaults: dict, required: tuple[str, ...]) -> str:
    parts = []
    for k, v in defaults.items():
        value = repr(v) if isinstance(v, str) else str(v)
        parts.append(f"{k}={value}" if len(k) + 1 + len(value) <= _DEFAULTS_WIDTH else f"{k}=\n  {value}")
    parts += [f"{k}=<required>" for k in required]
    return "\n".join(parts) if parts else "-"


class _DefaultList(click.Group):
    """A group whose first argument, unless it names a subcommand, belongs to ``list``:
    ``relightzoo plugins 'ga*'`` is ``relightzoo plugins list 'ga*'``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


@click.group("plugins", cls=_DefaultList)
def plugins() -> None:
    """List registered plugins (the default: relightzoo plugins [PATTERN]) or check one
    against the conformance kit (relightzoo plugins check NAME)."""


@plugins.command("list")
@click.argument("pattern", required=False, default="*")
@click.option("--kind", "-k", callback=_kind_option, metavar="KIND",
              help="Only this kind: encoder, activation or model.")
@click.option("--json", "json_", is_flag=True, help="Print a JSON list on stdout instead of a table.")
def list_(pattern: str, kind: str | None, json_: bool) -> None:
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

        # The package and the kind are never cut (piped output is 80 columns wide): the
        # description wraps, and so do long defaults, one per line at most a line each.
        package_width = max(len(part) for info in infos for part in info.provider.split(" ", 1))
        table = Table(title="relightzoo plugins", show_lines=True, title_justify="left")
        table.add_column("kind", style="cyan", no_wrap=True, min_width=len("activation"))
        table.add_column("name and description", ratio=1, min_width=16)
        table.add_column("defaults", style="green", overflow="fold", min_width=_DEFAULTS_WIDTH, max_width=_DEFAULTS_WIDTH)
        table.add_column("package", style="magenta", overflow="fold", min_width=min(package_width, 22))
        for info in infos:
            description = escape(info.description)
            if info.kind == "model":
                description += f" [dim](uses: {', '.join(info.uses) or 'no encoder/activation'})[/dim]"
            table.add_row(info.kind, f"[bold]{escape(info.name)}[/bold]\n{description}",
                          escape(_format_defaults(info.defaults, info.required)),
                          escape(info.provider).replace(" ", "\n", 1))
        console.print(table)
    for claim in manager.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(claim.message())}", soft_wrap=True)
    for name, error in manager.failed.items():
        console.print(f"[red]failed to load[/red] plugin {escape(repr(name))}: {escape(error)}")
    if manager.blocked:
        console.print(f"[yellow]blocked by {BLOCK_ENV}:[/yellow] {', '.join(manager.blocked)}")


@plugins.command("check")
@click.argument("name")
@click.option("--kind", "-k", callback=_kind_option, metavar="KIND",
              help="The plugin's kind, when NAME is registered as more than one.")
@click.option("--check", "checks", multiple=True, metavar="CHECK", help="Run only this check (repeatable).")
@click.option("--json", "json_", is_flag=True, help="Print the results as a JSON list on stdout.")
def check(name: str, kind: str | None, checks: tuple[str, ...], json_: bool) -> None:
    """Run the conformance kit on plugin NAME: print each check's name and whether it
    passed; exit 1 when any failed.

    The checks build the plugin from its defaults and from a spec, round-trip its spec,
    fit it a few steps on a crop of the demo scene, render it at another size and in
    chunks, reload its checkpoint in another process, compare a one-pass environment map
    with the sum of single renders, feed it bad arguments and look for pickles.
    """
    import time

    from rich.markup import escape

    from ..testing import check_plugin
    from ..zoo.factory import find_kind

    kind = find_kind(name, kind)
    t0 = time.perf_counter()
    results = []
    for result in check_plugin(kind, name, checks=checks or None):
        results.append(result)
        if not json_:
            mark = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
            note = f": {escape(result.message)}" if result.message else ""
            console.print(f"{mark}  {result.check}{note}  [dim]({result.seconds:.2f} s)[/dim]", soft_wrap=True)
    failed = [r.check for r in results if not r.passed]
    if json_:
        print_json([r.to_json() for r in results])
    else:
        verdict = f"[red]{len(failed)} failed[/red] ({', '.join(failed)})" if failed else "[green]all passed[/green]"
        console.print(f"{kind} {name!r}: {len(results)} checks, {verdict} in {time.perf_counter() - t0:.1f} s", soft_wrap=True)
    if failed:
        raise SystemExit(1)
