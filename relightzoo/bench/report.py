"""Presenting a bench document: a rich table per section, one line on the machine."""

from __future__ import annotations

from rich.table import Table

from .suite import PERIODIC

__all__ = ["machine_line", "variant_label", "cells_table", "envmap_table", "frames_table", "rss_line", "format_ratio"]


def format_ratio(r: float | None) -> str:
    """``0.81x``, or ``-`` when there is nothing to compare with."""
    return "-" if r is None else f"{r:.2f}x"


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:.1f}"


def machine_line(doc: dict) -> str:
    """CPU, cores, threads, GPU, torch version and load, in one line."""
    m = doc["machine"]
    gpu = f", GPU {m['gpu']}" if m.get("gpu") else ""
    load = f", load {m['loadavg'][0]:.2f}" if m.get("loadavg") else ""
    peer = doc["peer"]
    peer_s = f"peer siren-pytorch {peer['version']}" if peer["installed"] else "peer siren-pytorch not installed"
    return (
        f"{m['cpu']}, {m['cores']} cores, {m['threads']} threads{gpu}; torch {m['torch']}; device {m['device']}{load}; "
        f"{peer_s}"
    )


def variant_label(cell: dict) -> str:
    """`` (numpy sin/cos)``, `` (compiled step, poly sin/cos)``: for a sine or cosine cell
    the sin and cos it trained with (the periodic kernel eagerly; in a compiled step, where
    that kernel plays no part, ``poly`` or ``torch``: relightzoo.builtins.sincos), and the
    step kernel and the precision when they are not plain and fp32."""
    parts = []
    periodic = cell["activation"] in PERIODIC
    compiled = cell.get("step", "plain") != "plain" and not cell.get("step_fell_back")
    if periodic and not compiled:  # numpy's kernel takes float32 only: a bf16 step uses torch's sin and cos
        parts.append(f"{cell.get('kernel', 'plain') if cell.get('precision', 'fp32') == 'fp32' else 'plain'} sin/cos")
    if cell.get("step", "plain") != "plain":
        parts.append(f"{cell['step']} step" + (" -> plain: did not compile" if cell.get("step_fell_back") else ""))
    if periodic and compiled:
        parts.append(f"{cell.get('sincos', 'torch')} sin/cos")
    if cell.get("precision", "fp32") != "fp32":
        parts.append(cell["precision"])
    return f" ({', '.join(parts)})" if parts else ""


def cells_table(doc: dict) -> Table:
    """One row per encoder x activation: throughput and memory beside roofline and peer."""
    s = doc["settings"]
    t = Table(title=f"{doc['model']}, batch {s['batch_size']}, render {s['size']}x{s['size']}, "
                    f"medians of {s['repeats']} after {s['warmup']} warm-up")
    for col in ("encoder", "act"):
        t.add_column(col)
    for col in ("train/s", "/roof", "/peer", "MP/s", "/roof", "/peer", "MiB", "/roof", "/peer"):
        t.add_column(col, justify="right")
    for c in doc["cells"]:
        tr, rd, mem = c["train"], c["render"], c["memory"]
        target = tr.get("target_vs_roofline")
        roof = format_ratio(tr["vs_roofline"])
        if target is not None and tr["vs_roofline"] is not None:
            roof = f"[{'green' if tr['vs_roofline'] >= target else 'red'}]{roof}[/]"
        t.add_row(
            c["encoder"],
            c["activation"] + variant_label(c),
            f"{tr['samples_per_s']['ours']:,.0f}",
            roof,
            format_ratio(tr["vs_peer"]),
            f"{rd['megapixels_per_s']['ours']:.3f}",
            format_ratio(rd["vs_roofline"]),
            format_ratio(rd["vs_peer"]),
            _mib(mem["train_bytes"].get("ours")),
            format_ratio(mem["train_vs_roofline"]),
            format_ratio(mem["train_vs_peer"]),
        )
    return t


def envmap_table(rows: list[dict]) -> Table:
    """Environment-map relighting time for each K."""
    t = Table(title="environment-map relighting, default siren")
    for col in ("K", "lights used", "size", "seconds", "ms / light", "vs K single renders"):
        t.add_column(col, justify="right")
    for r in rows:
        t.add_row(str(r["k"]), str(r["k_used"]), f"{r['size']}x{r['size']}", f"{r['seconds']:.2f}",
                  f"{r['ms_per_light']:.1f}", format_ratio(r["vs_single_renders"]))
    return t


def frames_table(frames: dict) -> Table:
    """One row per model: its frame time at a new light, beside the budget and the plain path."""
    t = Table(
        title=f"frame time at a new light, {frames['size']}x{frames['size']} (each model fitted "
        f"{frames['fit_steps']} steps on demo, {frames['fit_lights']})"
    )
    t.add_column("model")
    for col in ("ms / frame", f"<= {frames['budget_ms']:g} ms", "plain ms", "cache speed-up"):
        t.add_column(col, justify="right")
    for r in frames["models"]:
        ok = "[green]yes[/]" if r["under_budget"] else "[red]no[/]"
        t.add_row(r["name"], f"{r['ms']:.1f}", ok, f"{r['plain_ms']:.1f}", format_ratio(r["vs_plain"]))
    return t


def rss_line(r: dict) -> str:
    """The large render's peak RSS, its baseline and growth."""
    return (
        f"relightzoo relight --size {r['size']}x{r['size']} ({r['model']}, CPU): peak RSS {_mib(r['peak_rss_bytes'])} MiB, "
        f"baseline (16x16 render) {_mib(r['baseline_rss_bytes'])} MiB, growth {_mib(r['growth_bytes'])} MiB, "
        f"{r['seconds']:.1f} s"
    )
