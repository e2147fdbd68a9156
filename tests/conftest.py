"""Shared test fixtures: small synthetic OLAT datasets on disk, and test plugins.

``make_olat_folder`` renders the analytic Lambertian scene of
:mod:`relightzoo.data.synthetic` under a hemisphere light pattern and writes it in the
dataset folder format, so tests load real files through the real loader. Import it with
``from conftest import make_olat_folder``, or use the ``tiny_dataset`` / ``olat_folder``
fixtures. Modules that train tiny networks mark themselves with
``pytestmark = pytest.mark.usefixtures("one_thread")``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import pytest
import torch
from hypothesis import settings

from relightzoo.data.folder import write_dataset
from relightzoo.data.synthetic import lambertian_scene
from relightzoo.lights import hemisphere_pattern

# Profiles of the property-based fuzz tests (tests/test_fuzz_readers.py): ``ci`` runs 1000
# generated cases per target, the same ones every run (derandomize) and with no example
# database, so CI is reproducible; the default runs 100 and keeps hypothesis's database
# (.hypothesis/) so a failure found once is replayed first. ``.ci/run`` sets
# HYPOTHESIS_PROFILE=ci. The deadline is a hang detector, generous for a loaded machine.
settings.register_profile("ci", max_examples=1000, deadline=5000, derandomize=True, database=None)
settings.register_profile("dev", max_examples=100, deadline=5000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_configure(config: pytest.Config) -> None:
    """Installed third-party plugins stay out of the suite (simonw/llm's pattern): the zoo
    holds the built-ins plus what the ``register_plugin`` and ``installed_plugins``
    fixtures add, so an extra installed plugin cannot change what a test sees."""
    from relightzoo.zoo.manager import TESTING_FLAG

    setattr(sys, TESTING_FLAG, True)


def make_olat_folder(
    path: str | Path,
    n_lights: int = 64,
    height: int = 16,
    width: int = 16,
    pattern: str = "fibonacci",
    bit_depth: int = 8,
    seed: int = 0,
) -> Path:
    """Write a synthetic OLAT dataset (images + lights.txt) to ``path`` and return it.

    ``pattern`` is ``fibonacci`` (exactly ``n_lights``) or ``latlong`` (the nearest 2:1 grid).
    """
    lights = hemisphere_pattern(pattern, n_lights)
    images = lambertian_scene(lights, height, width, seed)
    return write_dataset(Path(path), images, lights, bit_depth=bit_depth)


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """A 16 x 16 dataset with 64 Fibonacci lights, 8-bit PNGs."""
    return make_olat_folder(tmp_path / "tiny", n_lights=64, height=16, width=16)


@pytest.fixture
def olat_folder(tmp_path: Path) -> Callable[..., Path]:
    """A factory: ``olat_folder(name="data", **kwargs)`` writes a dataset under ``tmp_path``."""

    def make(name: str = "data", **kwargs) -> Path:
        return make_olat_folder(tmp_path / name, **kwargs)

    return make


@pytest.fixture(scope="session")
def view_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 20 x 12 (non-square) dataset of 40 lights and two checkpoints trained a few steps on
    it: ``low-rank`` (rank 3, a per-pixel basis) and a small ``siren`` (a high rate, so that its
    images already change with the light); for the viewer tests."""
    from click.testing import CliRunner

    from relightzoo.cli import main

    root = tmp_path_factory.mktemp("view")
    data = make_olat_folder(root / "data", n_lights=40, height=12, width=20)
    runs = {"data": data}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, args in (("low-rank", ["--model", "low-rank", "--model-arg", "rank=3", "--steps", "8"]),
                           ("siren", ["--model", "siren", "--encoder", "direction", "--model-arg", "hidden_features=16", "--model-arg", "hidden_layers=1",
                                      "--steps", "20", "--lr", "1e-2"])):
            res = CliRunner().invoke(main, ["train", str(data), "--out", str(root / name), "--no-eval", *args])
            assert res.exit_code == 0, res.output
            runs[name] = root / name / "latest.safetensors"
    finally:
        torch.set_num_threads(before)
    return runs


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests with one torch thread, restoring the count afterwards.

    Tiny networks gain nothing from intra-op threads; on a shared 2-core machine their
    contention slows each step many times over.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def register_plugin():
    """Register test plugins in the process-wide zoo for one test, beside the built-ins.

    ``register_plugin(module, name="toy", package="relightzoo-toy", version="0.0")`` adds a
    module or object holding ``@hookimpl`` functions, the way an installed entry point
    would be added, and returns the manager. The zoo is rebuilt afterwards, so no test
    plugin outlives its test.
    """
    from relightzoo.zoo.manager import build_manager, reset_manager

    zoo = build_manager([], blocked=[])
    reset_manager(zoo)

    def add(plugin, name: str = "toy", package: str | None = None, version: str = "0.0"):
        zoo.add_plugin(plugin, name, package=package or f"relightzoo-{name}", version=version)
        return zoo

    yield add
    reset_manager()


@pytest.fixture
def installed_plugins():
    """Load installed entry points by name for one test, through importlib.metadata exactly
    as an installation would: ``installed_plugins("gabor")`` returns the manager."""
    import importlib.metadata

    from relightzoo.zoo.manager import ENTRY_POINT_GROUP, build_manager, reset_manager

    def load(*names: str, blocked=()):
        """``blocked=None`` reads RELIGHTZOO_BLOCK_PLUGINS, as an installation does."""
        found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name in names]
        missing = set(names) - {ep.name for ep in found}
        assert not missing, f"entry points {sorted(missing)} are not installed (see the README's test line)"
        zoo = build_manager(found, blocked=None if blocked is None else list(blocked))
        reset_manager(zoo)
        return zoo

    yield load
    from relightzoo.zoo.manager import reset_manager as _reset

    _reset()


from relightzoo.testing.reload import render_in_fresh_process  # noqa: E402  (the tests import it from here)


def train_small_with_cli(data: Path, out: Path, model: str, model_args: dict, *, steps: int) -> Path:
    """Train ``model`` (direction encoder, uniform:16, batch 64, no evaluation) with
    ``relightzoo train`` and ``--model-arg`` for each of ``model_args``; the checkpoint's path."""
    from click.testing import CliRunner

    from relightzoo.cli import main

    args = ["train", str(data), "--model", model, "--encoder", "direction", "--lights", "uniform:16",
            "--steps", str(steps), "--batch-size", "64", "--out", str(out), "--no-eval"]
    for key, value in model_args.items():
        args += ["--model-arg", f"{key}={value}"]
    res = CliRunner().invoke(main, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out / "latest.safetensors"
