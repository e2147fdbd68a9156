"""Ablation cells as Ray tasks: ``relightzoo ablate ... --ray [ADDRESS]``.

:class:`RayCells` is a :class:`~relightzoo.ablate.runner.CellPool` whose workers are Ray
tasks, so :func:`~relightzoo.ablate.runner.run_grid` schedules, resumes and reports a grid
on a cluster exactly as it does with its local process pool: each task runs
:func:`~relightzoo.ablate.runner.run_in_worker` (the same function the process pool runs,
itself :func:`~relightzoo.ablate.runner.run_cell`), writes the cell's folder under the
results folder and hands its record back. Each task asks Ray for ``cpus`` CPUs (its torch
threads) and ``gpus`` GPUs. A cell run this way gives the same numbers as a local run with
the same thread count, because it is the same code on the same inputs.

Ray is an optional dependency (``pip install "relightzoo[ray]"``). Without an address a
local Ray instance is started (or the one this process already joined is used); with one
(``auto``, ``HOST:PORT``, ``ray://HOST:10001``) the running cluster is joined. Every node
must see the dataset folder and the results folder at the same paths (a shared
filesystem), and have relightzoo installed.
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Any, Callable

from ..errors import ClusterError

__all__ = ["LOCAL", "RayCells", "import_ray", "INSTALL_HINT"]

LOCAL = "local"
"""The ``--ray`` value (the flag given without an address) that starts a local Ray instance."""

INSTALL_HINT = 'pip install "relightzoo[ray]"'


def import_ray():
    """The ``ray`` module, or a :class:`ClusterError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _run_task(fn: Callable[..., dict[str, Any]], threads: int, *args: Any) -> dict[str, Any]:
    """The Ray task: run ``fn(*args)`` with as many torch threads as CPUs the task asked for."""
    import torch

    torch.set_num_threads(threads)
    return fn(*args)


class RayCells:
    """Runs ablation cells as Ray tasks of ``cpus`` CPUs and ``gpus`` GPUs each.

    ``address`` is None or :data:`LOCAL` for a local instance, else the address of a running
    cluster. ``device`` is the cells' device as the user gave it: ``auto`` becomes ``cuda``
    when the cluster has GPUs (each cell then asks for one unless ``gpus`` says otherwise).
    """

    def __init__(self, address: str | None = None, *, cpus: float = 1, gpus: float | None = None, device: str = "auto") -> None:
        ray = self._ray = import_ray()
        if not cpus > 0:
            raise ClusterError(f"--ray-cpus must be more than 0, got {cpus}")
        if not ray.is_initialized():
            local = address in (None, LOCAL)
            try:
                ray.init(
                    address=None if local else address,
                    include_dashboard=False,
                    log_to_driver=False,  # cells print nothing; keep --json output clean
                    logging_level="WARNING",
                )
            except Exception as exc:  # noqa: BLE001 - Ray raises many kinds; all mean "no cluster"
                where = "a local Ray instance" if local else f"the Ray cluster at {address}"
                raise ClusterError(f"cannot start or join {where}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        resources = ray.cluster_resources()
        self.cluster_cpus = float(resources.get("CPU", 0))
        self.cluster_gpus = float(resources.get("GPU", 0))
        if device == "auto":
            device = "cuda" if self.cluster_gpus > 0 else "cpu"
        if gpus is None:
            gpus = 1 if device.startswith("cuda") else 0
        if device.startswith("cuda") and not gpus > 0:
            raise ClusterError(f"cells on {device} need a GPU each: give --ray-gpus (e.g. 1 or 0.5)")
        if cpus > self.cluster_cpus or gpus > self.cluster_gpus:
            raise ClusterError(
                f"a cell asks Ray for {cpus:g} CPU(s) and {gpus:g} GPU(s), but the cluster has "
                f"{self.cluster_cpus:g} CPU(s) and {self.cluster_gpus:g} GPU(s); lower --ray-cpus / --ray-gpus"
            )
        self.device = device
        self.cpus, self.gpus = float(cpus), float(gpus)
        self.threads = max(1, int(cpus))
        self._task = ray.remote(_run_task).options(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=0)
        self._refs: list[Any] = []

    @property
    def slots(self) -> int:
        """How many cells the cluster runs at once: its CPUs (and GPUs) over one cell's request."""
        n = math.floor(self.cluster_cpus / self.cpus + 1e-9)
        if self.gpus > 0:
            n = min(n, math.floor(self.cluster_gpus / self.gpus + 1e-9))
        return max(1, n)

    def submit(self, fn: Callable[..., dict[str, Any]], /, *args: Any) -> Future:
        """Start ``fn(*args)`` as a Ray task; the future holds its return value."""
        ref = self._task.remote(fn, self.threads, *args)
        self._refs.append(ref)
        return ref.future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Wait for the submitted tasks; with ``cancel_futures``, first interrupt them (a
        running cell gets a KeyboardInterrupt, saves its latest checkpoint and stops).
        The Ray connection stays open for the next batch of cells."""
        refs, self._refs = self._refs, []
        if cancel_futures:
            for ref in refs:
                self._ray.cancel(ref)
        if wait and refs:
            self._ray.wait(refs, num_returns=len(refs))
