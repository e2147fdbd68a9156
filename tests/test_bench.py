"""relightzoo bench: the roofline's GEMMs, the siren-pytorch peer, peak memory, and the command
(structure, positive finite ratios, JSON, the peer reported, unknown names) at tiny sizes."""

from __future__ import annotations

import json
import math

import pytest
import torch
from click.testing import CliRunner

from relightzoo.bench.measure import PeakMemory, memory_method
from relightzoo.bench.peer import build_peer
from relightzoo.bench.roofline import Roofline, dense_layers, gemm_shapes
from relightzoo.cli import main
from relightzoo.zoo import create_model


def test_gemm_shapes_of_the_default_siren():
    model = create_model("siren")  # scaled-spherical (4 features) -> 3 x 256 -> RGB
    layers = dense_layers(model)
    assert layers == [(4, 256), (256, 256), (256, 256), (256, 3)]
    fwd = gemm_shapes(model, 100, backward=False)
    assert [(s.m, s.k, s.n) for s in fwd] == [(100, 4, 256), (100, 256, 256), (100, 256, 256), (100, 256, 3)]
    train = gemm_shapes(model, 100)
    assert sum(s.role == "weight-grad" for s in train) == 4
    assert sum(s.role == "input-grad" for s in train) == 3  # the first layer's input needs no gradient
    per_sample = 2 * sum(i * o for i, o in layers)
    assert sum(s.flops for s in train) == 100 * per_sample * 3 - 100 * 2 * 4 * 256


def test_roofline_chains_the_layers_like_the_network():
    layers = [(3, 5), (5, 2)]
    roof = Roofline(layers, 7, backward=True)
    roof()
    w1, w2 = roof.weights
    torch.testing.assert_close(roof.acts[1], roof.x @ w1.t() @ w2.t())
    assert roof.nbytes == 4 * (7 * 5 + 7 * 2 + 2 * 7 * 5 + 5 * 3 + 2 * 5)
    render = Roofline(layers, 7, backward=False)
    render()
    assert render.nbytes == 2 * 7 * 5 * 4


@pytest.mark.parametrize("activation", ["sine", "cosine", "relu"])
def test_the_peer_is_the_same_network(activation):
    pytest.importorskip("siren_pytorch", reason="the peer benchmark needs siren-pytorch (pip install -e .[dev] or .[bench])")
    torch.manual_seed(0)
    ours = create_model("siren", activation=activation, hidden_layers=2, hidden_features=16)
    peer = build_peer("scaled-spherical", activation, hidden_layers=2, hidden_features=16)
    assert dense_layers(peer) == dense_layers(ours)
    assert peer.note.startswith("siren-pytorch ")
    with torch.no_grad():  # copy our weights into the peer: both compute the same function
        for (_, a), (_, b) in zip(
            ((n, p) for n, p in ours.net.named_parameters()), ((n, p) for n, p in peer.net.named_parameters())
        ):
            b.copy_(a)
    pixels, lights = torch.rand(32, 2) * 2 - 1, torch.nn.functional.normalize(torch.rand(32, 3) + 0.1, dim=1)
    torch.testing.assert_close(peer(pixels, lights), ours(pixels, lights), atol=1e-4, rtol=1e-4)


def test_peak_memory_sees_an_allocation():
    device = torch.device("cpu")
    assert memory_method(device) == "vmhwm"  # Linux: the resident high-water mark can be reset
    with PeakMemory(device) as pm:
        t = torch.ones(16 << 20)  # 64 MiB, touched
        del t
    assert 60 << 20 <= pm.bytes < 200 << 20
    with PeakMemory(device) as small:
        torch.ones(1024)
    assert small.bytes < pm.bytes / 4


def _finite_positive(x):
    return x is not None and math.isfinite(x) and x > 0


def test_bench_json_structure_ratios_and_peer():
    pytest.importorskip("siren_pytorch", reason="the peer benchmark needs siren-pytorch (pip install -e .[dev] or .[bench])")
    res = CliRunner().invoke(main, [
        "bench", "--activations", "sine,relu", "--batch-size", "64", "--size", "16", "--repeats", "2", "--warmup", "1",
        "--device", "cpu", "--json",
    ])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    m = doc["machine"]
    assert m["cores"] >= 1 and m["threads"] >= 1 and m["torch"] == torch.__version__ and m["cpu"]
    assert doc["peer"]["installed"] is True and doc["settings"]["batch_size"] == 64
    assert [(c["encoder"], c["activation"]) for c in doc["cells"]] == [("scaled-spherical", "sine"), ("scaled-spherical", "relu")]
    for c in doc["cells"]:
        assert c["peer"].startswith("siren-pytorch")
        for section in ("train", "render"):
            assert _finite_positive(c[section]["vs_roofline"]) and _finite_positive(c[section]["vs_peer"])
        assert set(c["train"]["samples_per_s"]) == {"ours", "roofline", "peer"}
        assert len(c["train"]["ms_all"]["ours"]) == 2
        mem = c["memory"]
        assert mem["method"] == "vmhwm"
        for key in ("train_vs_roofline", "train_vs_peer", "render_vs_roofline"):
            assert _finite_positive(mem[key]), key
    assert doc["cells"][0]["train"]["target_vs_roofline"] == 0.85 and doc["cells"][1]["train"]["target_vs_roofline"] == 0.85
    for c in doc["cells"]:
        tr, rd = c["train"], c["render"]
        # every ratio is ours over the reference, from the very rates reported beside it
        assert tr["vs_roofline"] == pytest.approx(tr["samples_per_s"]["ours"] / tr["samples_per_s"]["roofline"])
        assert tr["vs_peer"] == pytest.approx(tr["samples_per_s"]["ours"] / tr["samples_per_s"]["peer"])
        assert rd["vs_roofline"] == pytest.approx(rd["megapixels_per_s"]["ours"] / rd["megapixels_per_s"]["roofline"])
        assert tr["samples_per_s"]["ours"] == pytest.approx(64 / (tr["ms_per_step"]["ours"] / 1000))
        # the target is compared, and the verdict follows the numbers
        assert tr["meets_target"] is (tr["vs_roofline"] >= tr["target_vs_roofline"])
    assert [c["kernel"] for c in doc["cells"]] == ["numpy", "plain"]  # the default periodic kernel; relu has none
    assert [c["step"] for c in doc["cells"]] == ["plain", "plain"] and not any(c["step_fell_back"] for c in doc["cells"])


def test_bench_table_and_envmap_timings():
    pytest.importorskip("siren_pytorch", reason="the peer benchmark needs siren-pytorch (pip install -e .[dev] or .[bench])")
    res = CliRunner().invoke(main, [
        "bench", "--encoders", "raw", "--activations", "cosine", "--batch-size", "32", "--size", "8", "--repeats", "2",
        "--warmup", "0", "--device", "cpu", "--envmap-k", "2,6",
    ])
    assert res.exit_code == 0, res.output
    assert "siren-pytorch 0.1" in res.output and "torch " + torch.__version__ in res.output
    assert "raw" in res.output and "environment-map relighting" in res.output
    res = CliRunner().invoke(main, ["bench", "--skip-grid", "--envmap-k", "3", "--size", "8", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["cells"] == [] and [r["k"] for r in doc["envmap"]] == [3]
    assert 1 <= doc["envmap"][0]["k_used"] <= 3 and doc["envmap"][0]["seconds"] > 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--encoders", "raww,fourier", "--activations", "sinee,relu"],
         "Error: unknown encoder 'raww'; did you mean 'raw'"),
        (["--activations", "sinee,coss"], "unknown activation 'coss'"),
        (["--encoders", ","], "Error: no encoders to benchmark"),
        (["--size", "0"], "Invalid value for '--size': 0 is not in the range 1<=x<=65536"),
        (["--envmap-k", "64,x"], "in '64,x': 'x' is not a valid integer"),
        (["--skip-grid"], "--skip-grid leaves nothing to measure"),
    ],
)
def test_bench_bad_input(args, message):
    res = CliRunner().invoke(main, ["bench", *args, "--device", "cpu"])
    assert res.exit_code in (1, 2), res.output
    assert message in res.output
    if "raww" in " ".join(args):
        assert "unknown activation 'sinee'" in res.output  # every unknown name at once


def test_bench_measures_bf16_against_a_bf16_roofline():
    roof = Roofline([(3, 5), (5, 2)], 7, backward=True, dtype=torch.bfloat16)
    roof()
    assert roof.acts[1].dtype == torch.bfloat16 and roof.nbytes == 2 * (7 * 5 + 7 * 2 + 2 * 7 * 5 + 5 * 3 + 2 * 5)
    res = CliRunner().invoke(main, [
        "bench", "--activations", "relu", "--batch-size", "64", "--size", "16", "--repeats", "2", "--warmup", "1",
        "--device", "cpu", "--precision", "fp32,bf16", "--json",
    ])
    assert res.exit_code == 0, res.output
    cells = json.loads(res.stdout)["cells"]
    assert [c["precision"] for c in cells] == ["fp32", "bf16"]
    for c in cells:
        tr = c["train"]
        assert _finite_positive(tr["vs_roofline"])
        assert tr["vs_roofline"] == pytest.approx(tr["samples_per_s"]["ours"] / tr["samples_per_s"]["roofline"])
    res = CliRunner().invoke(main, ["bench", "--precision", "fp16", "--device", "cpu"])
    assert res.exit_code == 2 and "'fp16': choose from fp32, bf16" in res.output
