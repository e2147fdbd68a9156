"""``relightzoo bench``: training and render throughput and peak memory of the zoo's siren for
each encoder x activation, each beside its matrix-multiply roofline and siren-pytorch, as
ratios; optionally environment-map relighting time against K and a large render's peak RSS.
"""

from __future__ import annotations

import click

from .params import COUNT, IntList

__all__ = ["bench"]


def _names(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


@click.command("bench")
@click.option("--encoders", default="scaled-spherical", show_default=True, help="Comma-separated encoders.")
@click.option("--activations", default="sine,cosine,relu", show_default=True, help="Comma-separated activations.")
@click.option("--batch-size", type=COUNT, default=None, help="Samples a training step [default: relightzoo train's, 4096].")
@click.option("--size", type=click.IntRange(1, 65536), default=256, show_default=True, help="Render size (SIZE x SIZE) for render throughput and --envmap-k.")
@click.option("--repeats", type=click.IntRange(1, 10000), default=7, show_default=True, help="Timed repeats; medians are reported.")
@click.option("--warmup", type=click.IntRange(0, 10000), default=3, show_default=True, help="Untimed calls before timing.")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when available), cpu, cuda or cuda:N.")
@click.option("--threads", type=click.IntRange(1, 4096), default=None, help="torch intra-op threads [default: torch's choice].")
@click.option("--envmap-k", "envmap_k", type=IntList(1, 1 << 20), default=None, metavar="K1,K2", help="Also time environment-map relighting of the default siren at SIZE for these K (e.g. 64,256,1024).")
@click.option("--rss-size", type=click.IntRange(16, 65536), default=None, metavar="N", help="Also measure the peak RSS of 'relightzoo relight --size NxN' of the default siren in a fresh process (CPU).")
@click.option("--frames", "frames", is_flag=False, flag_value="all", default=None, metavar="[M1,M2]",
              help="Also time one SIZE x SIZE frame at a new light for every registered model (or these), "
              "each fitted briefly on the demo scene, with and without its frame cache.")
@click.option("--periodic", default="numpy", show_default=True, metavar="K1,K2",
              help="Periodic kernels to measure sine and cosine with: numpy (numpy's vectorised sin and cos, the default), "
              "plain (torch's), compiled (torch.compile of sin and cos in one pass).")
@click.option("--step", "step", default="plain", show_default=True, metavar="K1,K2",
              help="Training step kernels to measure every activation with: plain, compiled (forward, loss and "
              "backward as one torch.compile'd graph).")
@click.option("--sincos", "sincos", default="poly", show_default=True, metavar="K1,K2",
              help="sin and cos to measure sine and cosine with inside a compiled step (--step compiled): poly (a "
              "polynomial with its own range reduction, the default), torch (torch's).")
@click.option("--precision", "precision", default="fp32", show_default=True, metavar="P1,P2",
              help="Training precisions to measure every cell in: fp32, bf16 (bfloat16 autocast, against the "
              "same GEMMs in bfloat16).")
@click.option("--skip-grid", is_flag=True, help="Measure only --envmap-k / --rss-size / --frames, not the encoder x activation grid.")
@click.option("--json", "json_", is_flag=True, help="Print the results as JSON on stdout.")
def bench(
    encoders: str,
    activations: str,
    batch_size: int | None,
    size: int,
    repeats: int,
    warmup: int,
    device: str,
    threads: int | None,
    envmap_k: list[int],
    rss_size: int | None,
    frames: str | None,
    periodic: str,
    step: str,
    sincos: str,
    precision: str,
    skip_grid: bool,
    json_: bool,
) -> None:
    """Benchmark the zoo's siren against its roofline and siren-pytorch.

    \b
    relightzoo bench                                    # default siren, sine/cosine/relu
    relightzoo bench --encoders raw,fourier --activations sine --json
    relightzoo bench --skip-grid --envmap-k 64,256,1024 --rss-size 4096
    relightzoo bench --skip-grid --frames                # every model's 256 x 256 frame time
    """
    import torch

    from ..bench.measure import machine_info
    from ..bench.peer import peer_available, peer_version
    from ..bench.report import cells_table, envmap_table, machine_line, rss_line
    from ..bench.relighting import envmap_timings, render_peak_rss
    from ..bench.suite import BenchSettings, check_names, run_bench
    from ..console import console, make_progress, print_json
    from ..train import DEFAULT_BATCH_SIZE
    from ..util.devices import resolve_device

    settings = BenchSettings(
        encoders=_names(encoders),
        activations=_names(activations),
        batch_size=batch_size or DEFAULT_BATCH_SIZE,
        size=size,
        repeats=repeats,
        warmup=warmup,
        device=device,
        threads=threads,
        periodic=_names(periodic),
        step=_names(step),
        sincos=_names(sincos),
        precision=_names(precision),
    )
    from ..builtins.activations import PERIODIC_KERNELS
    from ..builtins.sincos import SINCOS_KERNELS
    from ..train.compiled_step import STEP_KERNELS

    choices = ((periodic, settings.periodic, PERIODIC_KERNELS, "--periodic"), (step, settings.step, STEP_KERNELS, "--step"),
               (sincos, settings.sincos, SINCOS_KERNELS, "--sincos"), (precision, settings.precision, ("fp32", "bf16"), "--precision"))
    for given, chosen, allowed, hint in choices:
        if not chosen or [k for k in chosen if k not in allowed]:
            raise click.BadParameter(f"{given!r}: choose from {', '.join(allowed)}", param_hint=hint)
    if skip_grid and not (envmap_k or rss_size or frames):
        raise click.UsageError("--skip-grid leaves nothing to measure: add --envmap-k K1,K2, --rss-size N or --frames")
    frame_models = None if frames in (None, "all") else _names(frames)
    if frame_models is not None:
        from ..errors import PluginError
        from ..zoo.factory import registry

        unknown = [registry("model").unknown_message(n) for n in frame_models if n not in registry("model")]
        if unknown:
            raise PluginError("; ".join(unknown))
    check_names(settings.encoders, settings.activations)  # every unknown name, before any timing
    if threads:
        torch.set_num_threads(threads)
    dev = resolve_device(device)

    if skip_grid:
        doc = {
            "benchmark": "relightzoo bench",
            "machine": machine_info(dev),
            "peer": {"package": "siren-pytorch", "installed": peer_available(), "version": peer_version()},
            "settings": {"size": size, "device": str(dev), "threads": torch.get_num_threads()},
            "cells": [],
        }
    else:
        n = len(settings.encoders) * len(settings.activations)  # progress by encoder x activation cell
        with make_progress(transient=True, disable=json_) as bar:
            task = bar.add_task("bench", total=n)

            def on_cell(i: int, total: int, e: str, a: str) -> None:
                bar.update(task, completed=i, description=f"bench {e} x {a}")

            doc = run_bench(settings, on_cell=on_cell)
            bar.update(task, completed=n)
    if envmap_k:
        doc["envmap"] = envmap_timings(envmap_k, size, device=dev)
    if rss_size:
        doc["render_rss"] = render_peak_rss(rss_size)
    if frames:
        from ..bench.frames import frame_timings

        with make_progress(transient=True, disable=json_) as bar:
            task = bar.add_task("frames", total=None)
            doc["frames"] = frame_timings(
                frame_models, size=size, repeats=repeats, warmup=max(1, min(warmup, 2)), device=dev,
                on_model=lambda name: bar.update(task, description=f"fitting {name}"),
            )

    if json_:
        print_json(doc)
        return
    console.print(machine_line(doc), soft_wrap=True)
    if doc["cells"]:
        console.print(cells_table(doc))
        console.print(
            "train/s: training samples/s; MP/s: render megapixels/s at SIZE; MiB: training step's peak memory "
            f"growth ({doc['cells'][0]['memory']['method']}). /roof: ours / the same GEMMs alone (memory: / their "
            "buffers; targets: sine, cosine, relu >= 0.85 of the roofline, green when met); /peer: ours / siren-pytorch. "
            "(K sin/cos): the periodic layer's kernel K (--periodic: numpy, plain or compiled); (compiled step): "
            "forward, loss and backward as one torch.compile'd graph, for ours and the peer alike (--step); "
            "(poly sin/cos) or (torch sin/cos) in a compiled step: the sin and cos it evaluated (--sincos); "
            "(bf16): the step in bfloat16 mixed precision against the GEMMs in bfloat16 (--precision).",
            soft_wrap=True,
        )
    if doc.get("envmap"):
        console.print(envmap_table(doc["envmap"]))
    if doc.get("render_rss"):
        console.print(rss_line(doc["render_rss"]), soft_wrap=True)
    if doc.get("frames"):
        from ..bench.report import frames_table

        console.print(frames_table(doc["frames"]))
        under = doc["frames"]["under_budget"]
        console.print(
            f"under {doc['frames']['budget_ms']:g} ms a frame: {', '.join(under) if under else 'none'}. plain: the same "
            "render with frame caches off (relightzoo.zoo.frame_cache); speed-up = plain / cached, same rounds.",
            soft_wrap=True,
        )
