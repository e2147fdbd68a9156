"""``relightzoo ablate --ray``: a 4-cell grid as Ray tasks on a local two-CPU Ray instance,
cell for cell the serial run's numbers; resume through a second driver that joins the
running instance by its address; a missing Ray is a one-line error."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.cli import main

SMALL = [
    "--model-arg", "hidden_features=16", "--model-arg", "hidden_layers=2",
    "--steps", "12", "--batch-size", "64", "--lr", "1e-3",
]
GRID = ["--encoders", "raw,direction", "--activations", "sine,relu", *SMALL]
CELLS = [
    "siren_raw_sine_xu5-0.77_s0",
    "siren_raw_relu_xu5-0.77_s0",
    "siren_direction_sine_xu5-0.77_s0",
    "siren_direction_relu_xu5-0.77_s0",
]
TIMING = {"train_s", "eval_s", "wall_s"}
"""Record fields that are wall times; every other field must match the serial run exactly."""

pytestmark = pytest.mark.usefixtures("one_thread")


def _ablate(*args) -> object:
    return CliRunner().invoke(main, ["ablate", *map(str, args)], catch_exceptions=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=16, height=10, width=10)


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with two CPUs (two one-CPU cells at a time), for this module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def serial(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("serial") / "grid"
    res = _ablate(data, *GRID, "--out", out, "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def _same_cells(doc: dict, serial: dict, *, resumed: tuple[str, ...] = ()) -> None:
    """Every record as the serial run's, but for wall times (and the training loss of a cell
    resumed after its last step, which today's resume reads back from the checkpoint)."""
    assert [c["name"] for c in doc["cells"]] == CELLS == [c["name"] for c in serial["cells"]]
    for a, b in zip(doc["cells"] + doc["blend"], serial["cells"] + serial["blend"]):
        assert a["status"] == "done" and a["threads"] == b["threads"] == 1
        for group in ("all", "in_cap"):
            assert a["eval"][group] == b["eval"][group], (a["name"], group)  # PSNR, SSIM, counts: bit for bit
        skip = TIMING | {"eval"} | ({"loss", "loss_psnr"} if a["name"] in resumed else set())
        assert {k: v for k, v in a.items() if k not in skip} == {k: v for k, v in b.items() if k not in skip}


@pytest.fixture(scope="module")
def ray_run(local_ray: str, data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("ray") / "grid"
    res = _ablate(data, *GRID, "--out", out, "--ray")
    assert res.exit_code == 0, res.output
    return out, " ".join(res.output.split())


def test_ray_grid_matches_the_serial_run_cell_for_cell(ray_run: tuple[Path, str], serial: dict) -> None:
    out, text = ray_run
    assert "2 at a time on cpu (Ray tasks)" in text  # two CPUs, one per cell
    for name in CELLS:
        assert f"done {name}:" in text
    _same_cells(json.loads((out / "results.json").read_text()), serial)
    for name in CELLS:
        assert len((out / "cells" / name / "metrics.jsonl").read_text().splitlines()) == 12


def test_a_second_driver_joins_by_address_and_resumes(
    local_ray: str, ray_run: tuple[Path, str], serial: dict, data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resume"
    shutil.copytree(ray_run[0], out)
    kept = {name: (out / "cells" / name / "result.json").stat().st_mtime_ns for name in CELLS[:2]}
    shutil.rmtree(out / "cells" / CELLS[3])  # never started
    (out / "cells" / CELLS[2] / "result.json").unlink()  # trained, stopped before its result
    root = str(Path(__file__).parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
    cmd = [sys.executable, "-m", "relightzoo", "ablate", str(data), *GRID, "--out", str(out), f"--ray={local_ray}", "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # nothing but the JSON on stdout
    for name, stamp in kept.items():  # finished cells are read back, not rerun
        assert (out / "cells" / name / "result.json").stat().st_mtime_ns == stamp
    _same_cells(doc, serial, resumed=(CELLS[2],))


def test_missing_ray_is_a_one_line_error(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    res = CliRunner().invoke(main, ["ablate", str(data), *GRID, "--out", str(tmp_path / "x"), "--ray"])
    assert res.exit_code == 1
    assert res.output.strip() == 'Error: --ray needs Ray, which is not installed: pip install "relightzoo[ray]"'
