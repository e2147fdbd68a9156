"""``relightzoo plugins``: the table, --json, filters, and the third-party plugin in plugins/."""

from __future__ import annotations

import importlib.metadata
import json
import types

import pytest
import torch
from click.testing import CliRunner

from relightzoo import __version__
from relightzoo.cli import main
from relightzoo.zoo import create_activation, create_model, hookimpl
from relightzoo.zoo.manager import build_manager, reset_manager


@pytest.fixture
def fresh_manager():
    """Rebuild the process-wide plugin manager before and after the test."""
    reset_manager()
    yield
    reset_manager()


def _run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["plugins", *args], env=env)


def test_json_lists_every_kind_with_package_and_defaults():
    result = _run("--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    by_name = {(i["kind"], i["name"]): i for i in items}
    for key in [("encoder", "raw"), ("encoder", "scaled-spherical"), ("encoder", "fourier"), ("encoder", "direction"),
                ("activation", "sine"), ("activation", "cosine"), ("activation", "relu"), ("activation", "gelu"),
                ("model", "siren"), ("model", "blend")]:
        assert key in by_name, key
    sine = by_name[("activation", "sine")]
    assert sine == {
        "kind": "activation", "name": "sine", "description": sine["description"],
        "defaults": {"first_omega_0": 30.0, "hidden_omega_0": 30.0}, "package": "relightzoo", "version": __version__,
    }
    assert by_name[("encoder", "scaled-spherical")]["defaults"] == {"phi_divisor": 10.0, "theta_divisor": 100.0}
    assert by_name[("model", "siren")]["uses"] == ["encoder", "activation"]
    assert by_name[("model", "blend")]["uses"] == []


def test_the_gabor_plugin_is_installed_and_listed(installed_plugins):
    installed_plugins("gabor")
    items = json.loads(_run("--json", "--kind", "activation", "ga*").stdout)
    assert [(i["name"], i["package"], i["version"]) for i in items] == [
        ("gabor", "relightzoo-gabor", importlib.metadata.version("relightzoo-gabor")),
        ("gaussian", "relightzoo-gabor", importlib.metadata.version("relightzoo-gabor")),
    ]
    assert items[0]["defaults"] == {"omega_0": 20.0, "sigma_0": 10.0}


def test_the_gabor_plugin_builds_and_trains_a_step(installed_plugins):
    installed_plugins("gabor")
    torch.manual_seed(0)
    model = create_model("siren", activation="gabor", activation_args={"omega_0": "15"}, hidden_features=16)
    assert create_activation("gabor", sigma_0=5).sigma_0 == 5.0
    pixels, lights = torch.rand(32, 2) * 2 - 1, torch.nn.functional.normalize(torch.rand(32, 3), dim=-1)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(20):
        loss = (model(pixels, lights) - 0.5).square().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_table_shows_kind_name_defaults_and_package():
    result = _run("--kind", "encoder")
    assert result.exit_code == 0, result.output
    for text in ("encoder", "fourier", "scaled-spherical", "phi_divisor=10.0", "relightzoo", __version__):
        assert text in result.output  # (the package column may wrap between name and version)
    assert "siren" not in result.output and "activation" not in result.output


def test_pattern_and_kind_filters():
    items = json.loads(_run("--json", "--kind", "activations", "*gelu*").stdout)
    assert {"gelu", "gelu-tanh", "quick-gelu"} <= {i["name"] for i in items}
    assert all("gelu" in i["name"] and i["kind"] == "activation" for i in items)
    names = [i["name"] for i in json.loads(_run("--json", "*relu*").stdout)]
    assert {"leaky-relu", "prelu", "relu", "relu6"} <= set(names) and all("relu" in n for n in names)
    assert names == sorted(names)
    assert json.loads(_run("--json", "nothing-matches-*").stdout) == []
    result = _run("nothing-matches-*")
    assert result.exit_code == 0 and "No plugins match 'nothing-matches-*'." in result.output


def test_an_unknown_kind_is_a_usage_error():
    result = _run("--kind", "loss")
    assert result.exit_code == 2
    assert "'loss' is not one of encoder, activation, model" in result.output


def test_blocked_plugins_are_left_out_and_said(installed_plugins, monkeypatch):
    monkeypatch.setenv("RELIGHTZOO_BLOCK_PLUGINS", "gabor")
    installed_plugins("gabor", blocked=None)
    result = _run("--kind", "activation")
    assert result.exit_code == 0, result.output
    assert "gabor" not in result.output.split("blocked")[0]
    assert "blocked by RELIGHTZOO_BLOCK_PLUGINS: gabor" in " ".join(result.output.split())


def test_a_broken_plugin_is_reported_in_the_listing(fresh_manager):
    class Broken:
        name, value = "shiny", "relightzoo_shiny.plugin"
        dist = types.SimpleNamespace(name="relightzoo-shiny", version="0.0.1")

        def load(self):
            raise ModuleNotFoundError("No module named 'relightzoo_shiny'")

    with pytest.warns(UserWarning, match="plugin 'shiny'"):
        reset_manager(build_manager([Broken()], blocked=[]))
    result = _run("--kind", "model")
    assert result.exit_code == 0, result.output
    assert "failed to load plugin 'shiny': ModuleNotFoundError: No module named 'relightzoo_shiny'" in " ".join(
        result.output.split()
    )
    assert "siren" in result.output


def test_a_plugin_that_calls_sys_exit_at_import_is_reported_and_skipped(fresh_manager):
    class Exits:
        name, value = "quitter", "relightzoo_quitter.plugin"
        dist = types.SimpleNamespace(name="relightzoo-quitter", version="0.1")

        def load(self):
            raise SystemExit(3)  # what `import relightzoo_quitter` does when its module calls sys.exit(3)

    with pytest.warns(UserWarning, match=r"plugin 'quitter' \(package relightzoo-quitter\) failed to load and was skipped: it called sys.exit\(3\)"):
        reset_manager(build_manager([Exits()], blocked=[]))
    result = _run("--kind", "model")
    assert result.exit_code == 0, result.output
    assert "failed to load plugin 'quitter': it called sys.exit(3) while loading" in " ".join(result.output.split())
    assert "siren" in result.output


def test_a_plugin_registered_through_the_hook_is_listed(fresh_manager):
    from relightzoo.builtins.activations import SineBackbone

    class Plugin:
        @hookimpl
        def register_activations(self, register):
            register("slow-sine", SineBackbone, "sine with omega_0 = 5", {"first_omega_0": 5.0, "hidden_omega_0": 5.0})

    class EP:
        name, value = "slow", "relightzoo_slow"
        dist = types.SimpleNamespace(name="relightzoo-slow", version="2.0")

        def load(self):
            return Plugin()

    reset_manager(build_manager([EP()], blocked=[]))
    items = json.loads(_run("--json", "slow-*").stdout)
    assert items == [{"kind": "activation", "name": "slow-sine", "description": "sine with omega_0 = 5",
                      "defaults": {"first_omega_0": 5.0, "hidden_omega_0": 5.0},
                      "package": "relightzoo-slow", "version": "2.0"}]
