"""Data-parallel training: ``torchrun --nproc-per-node 2 -m relightzoo train`` on the CPU
(gloo, 127.0.0.1) continues a single-process run and follows its loss curve.

Why the curves match, and the tolerance: the two ranks draw the same seeded index stream
and each gathers its half of every batch, so together they see exactly the single process's
batch of the same --batch-size. DDP averages the ranks' gradients of their half-batch means,
which is the gradient of the full-batch mean; only the order of float32 additions differs
(relative error about n_terms * 2**-24 per sum, below 1e-6 for these sizes). Adam passes such
a perturbation on at most in proportion, so over 15 steps the logged losses agree to about
1e-7 relative (measured); the test allows RTOL = 1e-4. A wrong split (both ranks on the
same samples, a rank-local batch, gradients summed rather than averaged) changes which
samples or how far each step goes: the loss then differs by sampling noise, percents, as the
half-batch control run below shows.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.train import read_config
from relightzoo.train.distributed import World, world_from_env
from relightzoo.errors import ClusterError

RTOL = 1e-4
ARGS = [
    "--model", "siren", "--model-arg", "hidden_features=32", "--model-arg", "hidden_layers=2",
    "--batch-size", "256", "--lr", "1e-3", "--schedule", "none", "--log-every", "1", "--checkpoint-every", "5", "--no-eval",
]

pytestmark = pytest.mark.usefixtures("one_thread")


def _losses(run: Path) -> np.ndarray:
    return np.array([json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()])


def _train(data: Path, out: Path, *args: str) -> None:
    res = CliRunner().invoke(main, ["train", str(data), *ARGS, "--out", str(out), *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_olat_folder(tmp_path_factory.mktemp("data") / "tiny", n_lights=16, height=12, width=12)


def test_two_gloo_ranks_resume_a_single_process_run_and_follow_its_loss_curve(data: Path, tmp_path: Path) -> None:
    full, part, half = tmp_path / "full", tmp_path / "part", tmp_path / "half"
    _train(data, full, "--steps", "30")  # the reference: one process, batch 256
    _train(data, half, "--steps", "30", "--batch-size", "128")  # control: what a wrong split looks like
    _train(data, part, "--steps", "15")  # one process to step 15, then two ranks from there
    root = str(Path(__file__).parents[1])
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
        GLOO_SOCKET_IFNAME="lo",
        OMP_NUM_THREADS="1",
    )
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "relightzoo", "train", "--resume", str(part), "--steps", "30", "--no-eval",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (proc.stdout + proc.stderr).count("trained 30 steps") == 1  # rank 0 alone prints
    config = read_config(part / "latest.safetensors")
    assert config["step"] == 30 and config["training"]["world_size"] == 2
    assert config["training"]["batch_size"] == 256  # the global batch
    ref, got, control = _losses(full), _losses(part), _losses(half)
    assert len(got) == 30  # one metrics line a step, written once (by rank 0)
    np.testing.assert_array_equal(got[:15], ref[:15])  # the single-process part, untouched
    np.testing.assert_allclose(got[15:], ref[15:], rtol=RTOL, atol=0)
    assert np.abs(control[15:] / ref[15:] - 1).max() > 100 * RTOL  # the tolerance tells a wrong split apart


def test_world_comes_from_the_launchers_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = world_from_env()
    assert (world.rank, world.size, world.local_rank, world.distributed, world.is_main) == (3, 4, 1, True, False)
    assert world.shard(4096) == slice(3072, 4096)
    with pytest.raises(ClusterError, match="multiple of 4"):
        world.shard(4098)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ClusterError, match="inconsistent"):
        world_from_env()
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("LOCAL_RANK")
    assert world_from_env() == World()


def test_an_uneven_global_batch_is_an_error_before_waiting_for_other_ranks(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    res = CliRunner().invoke(main, ["train", str(data), *ARGS, "--batch-size", "255", "--steps", "2", "--out", str(tmp_path / "x")])
    assert res.exit_code == 1
    assert "does not split evenly over 2 processes" in res.output
