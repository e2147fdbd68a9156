"""The plugin registry, argument parsing and the pluggy manager (entry points, blocking)."""

from __future__ import annotations

import types
import warnings

import pluggy
import pytest
from torch import nn

from relightzoo import __version__
from relightzoo.errors import PluginError
from relightzoo.zoo import (
    Backbone,
    build_from_spec,
    create_activation,
    create_encoder,
    create_model,
    get_plugin,
    hookimpl,
    list_plugins,
    model_spec,
)
from relightzoo.zoo.args import coerce, parse_kv, parse_value
from relightzoo.zoo.manager import PluginWarning, build_manager
from relightzoo.zoo.registry import PluginConflict, Registry


class Toy(Backbone):
    """A toy backbone for registry tests."""

    def __init__(self, omega: float = 1.5, depth: int = 2, flag: bool = False, mode: str = "a") -> None:
        self.omega, self.depth, self.flag, self.mode = omega, depth, flag, mode

    def layer(self, in_features: int, out_features: int, *, first: bool) -> nn.Module:
        return nn.Linear(in_features, out_features)


def other_toy(scale: float = 2.0) -> Toy:
    return Toy(omega=scale)


@pytest.fixture
def reg() -> Registry:
    r = Registry("activation")
    for name in ("layer10", "layer2", "layer1", "sine", "cosine"):
        r.register(name, Toy, f"toy {name}", package="pkg-a", version="1.0")
    return r


# -- registry -------------------------------------------------------------------------------


def test_defaults_come_from_the_factory_signature_and_description_from_docstring():
    r = Registry("activation")
    info = r.register("toy", Toy, package="pkg", version="2")
    assert info.defaults == {"omega": 1.5, "depth": 2, "flag": False, "mode": "a"}
    assert info.description == "A toy backbone for registry tests."
    assert info.provider == "pkg 2"
    explicit = r.register("toy2", Toy, "explicit", {"omega": 3.0})
    assert explicit.defaults == {"omega": 3.0}


def test_list_uses_wildcards_and_natural_order(reg):
    assert [i.name for i in reg.list("layer*")] == ["layer1", "layer2", "layer10"]
    assert [i.name for i in reg.list("*sine")] == ["cosine", "sine"]
    assert [i.name for i in reg.list(["layer1*", "sine"])] == ["layer1", "layer10", "sine"]
    assert reg.list("nothing*") == []


def test_unknown_name_suggests_the_nearest(reg):
    with pytest.raises(PluginError, match=r"unknown activation 'sien'; did you mean 'sine'") as exc:
        reg.get("sien")
    assert "relightzoo plugins --kind activation" in str(exc.value)
    with pytest.raises(PluginError, match=r"unknown activation 'qqqq' \(run"):
        reg.get("qqqq")


def test_names_ignore_case_and_underscores(reg):
    reg.register("leaky-relu", Toy, "x")
    assert reg.get("Leaky_ReLU").name == "leaky-relu"
    assert "SINE" in reg


def test_create_with_overrides_coerces_to_the_default_type(reg):
    obj = reg.create("sine", omega="30", depth=4.0, flag="true", mode=7)
    assert (obj.omega, obj.depth, obj.flag, obj.mode) == (30.0, 4, True, "7")
    assert isinstance(obj.omega, float) and isinstance(obj.depth, int)
    assert obj.zoo_spec == {"name": "sine", "args": {"omega": 30.0, "depth": 4, "flag": True, "mode": "7"}}


def test_none_overrides_keep_the_default(reg):
    assert reg.create("sine", omega=None).omega == 1.5


def test_wrong_argument_name_lists_the_valid_ones(reg):
    with pytest.raises(PluginError) as exc:
        reg.create("sine", omeg=3)
    assert str(exc.value) == (
        "activation 'sine' has no argument 'omeg' (did you mean 'omega'?); its arguments are: omega, depth, flag, mode"
    )


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("omega", "abc", "activation 'sine' argument 'omega' expects a number (like 1.5), got 'abc'"),
        ("depth", 2.5, "activation 'sine' argument 'depth' expects an integer (like 2), got 2.5"),
        ("flag", "maybe", "activation 'sine' argument 'flag' expects a boolean (like False), got 'maybe'"),
        ("depth", True, "activation 'sine' argument 'depth' expects an integer (like 2), got True"),
    ],
)
def test_wrong_argument_type_is_one_line(reg, key, value, expected):
    with pytest.raises(PluginError) as exc:
        reg.create("sine", **{key: value})
    assert str(exc.value) == expected


def test_two_packages_registering_one_name_names_both(reg):
    with pytest.raises(PluginConflict) as exc:
        reg.register("sine", other_toy, "another sine", package="pkg-b", version="0.3")
    msg = str(exc.value)
    assert "activation 'sine' is provided by two packages, pkg-a 1.0 and pkg-b 0.3" in msg
    assert "RELIGHTZOO_BLOCK_PLUGINS" in msg
    assert isinstance(exc.value, PluginError)
    # the identical registration again is harmless; a different factory from the same package is not
    assert reg.register("sine", Toy, "toy sine", package="pkg-a", version="1.0").factory is Toy
    with pytest.raises(PluginError, match="registered twice by package pkg-a"):
        reg.register("sine", other_toy, package="pkg-a", version="1.0")


def test_invalid_names_and_factories_are_rejected():
    r = Registry("encoder")
    with pytest.raises(PluginError, match="plugin name 'has space' .* is not valid"):
        r.register("has space", Toy)
    with pytest.raises(PluginError, match="is not callable"):
        r.register("ok", 42)


def test_objects_and_classes_pass_through(reg):
    toy = Toy(omega=9.0)
    assert reg.create(toy) is toy
    assert reg.create(Toy, omega=4.0).omega == 4.0
    with pytest.raises(PluginError, match="arguments omega were given with a ready-made activation object"):
        reg.create(toy, omega=1.0)
    with pytest.raises(PluginError, match="expected a activation name or a Backbone object, got int 3"):
        reg.create(3)


def test_a_factory_returning_the_wrong_kind_is_reported():
    r = Registry("activation")
    r.register("bad", lambda: nn.ReLU(), "returns a module")
    with pytest.raises(PluginError, match="activation plugin 'bad' built a ReLU, not a Backbone"):
        r.create("bad")


def test_model_uses_come_from_the_factory_signature():
    r = Registry("model")

    def needs_both(*, encoder, activation, width: int = 3):
        raise AssertionError("not called")

    def needs_none(k: int = 1):
        raise AssertionError("not called")

    assert r.register("a", needs_both, "x").uses == ("encoder", "activation")
    assert r.register("a", needs_both, "x").defaults == {"width": 3}
    assert r.register("b", needs_none, "x").uses == ()


# -- argument strings ---------------------------------------------------------------------


def test_parse_value_types():
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("1e-3") == 0.001
    assert parse_value("True") is True and parse_value("off") is False
    assert parse_value("none") is None
    assert parse_value("[1, 2.5]") == [1, 2.5]
    assert parse_value('"12"') == "12"
    assert parse_value("gelu") == "gelu"


def test_parse_kv_and_its_errors():
    assert parse_kv(["hidden-layers=4", "omega=30", "name=x=y"]) == {"hidden_layers": 4, "omega": 30, "name": "x=y"}
    assert parse_kv(None) == {}
    with pytest.raises(PluginError, match=r"--encoder-arg 'scale' is not of the form KEY=VALUE"):
        parse_kv(["scale"], option="--encoder-arg")
    with pytest.raises(PluginError, match=r"--model-arg '=3': '' is not a valid argument name"):
        parse_kv(["=3"], option="--model-arg")
    with pytest.raises(PluginError, match=r"--model-arg 'k' is given twice"):
        parse_kv(["k=1", "k=2"], option="--model-arg")
    with pytest.raises(PluginError, match=r"cannot parse '\[1, 2' as JSON"):
        parse_kv(["k=[1, 2"])


def test_coerce_lists_and_none_defaults():
    assert coerce("[1, 2]", [0], where="x") == [1, 2]
    assert coerce("7", None, where="x") == 7
    with pytest.raises(PluginError, match="x expects a list"):
        coerce("3", [0], where="x")


# -- the manager and entry points -----------------------------------------------------------


class FakeEntryPoint:
    """Stands in for an importlib.metadata.EntryPoint."""

    def __init__(self, name, plugin=None, error=None, package="relightzoo-fake", version="9.9"):
        self.name, self.value = name, f"{package.replace('-', '_')}.plugin"
        self.dist = types.SimpleNamespace(name=package, version=version)
        self._plugin, self._error, self.loaded = plugin, error, False

    def load(self):
        self.loaded = True
        if self._error is not None:
            raise self._error
        return self._plugin


def _plugin_module(kind_hook: str, name: str):
    class Plugin:
        pass

    def hook(register):
        register(name, Toy, f"fake {name}")

    setattr(Plugin, kind_hook, staticmethod(hookimpl(hook)))
    return Plugin()


def test_hookimpl_is_pluggys_marker_for_relightzoo():
    assert isinstance(hookimpl, pluggy.HookimplMarker)
    assert hookimpl.project_name == "relightzoo"


def test_entry_point_plugins_register_with_their_package():
    good = FakeEntryPoint("good", _plugin_module("register_activations", "toy-act"), package="relightzoo-good", version="1.2")
    zoo = build_manager([good], blocked=[])
    info = zoo.registries["activation"].get("toy-act")
    assert (info.package, info.version) == ("relightzoo-good", "1.2")
    assert zoo.registries["model"].get("siren").package == "relightzoo"
    assert zoo.failed == {}


def test_a_broken_plugin_is_reported_and_skipped():
    broken = FakeEntryPoint("broken", error=ImportError("No module named 'missing_dep'"))
    good = FakeEntryPoint("good", _plugin_module("register_encoders", "toy-enc"))
    with pytest.warns(PluginWarning) as record:
        zoo = build_manager([broken, good], blocked=[])
    message = str(record[0].message)
    assert "plugin 'broken' (package relightzoo-fake) failed to load and was skipped" in message
    assert "ImportError: No module named 'missing_dep'" in message
    assert "toy-enc" in zoo.registries["encoder"]
    assert "broken" in zoo.failed and "sine" in zoo.registries["activation"]


def test_a_plugin_whose_hook_raises_is_rolled_back():
    class Half:
        @hookimpl
        def register_encoders(self, register):
            register("half-done", Toy, "registered before the crash")
            raise RuntimeError("boom")

    with pytest.warns(PluginWarning, match=r"plugin 'half' .* RuntimeError: boom"):
        zoo = build_manager([FakeEntryPoint("half", Half())], blocked=[])
    assert "half-done" not in zoo.registries["encoder"]
    assert not zoo.pm.has_plugin("half")


def test_a_misspelt_hook_is_reported():
    class Typo:
        @hookimpl
        def register_encoder(self, register):  # missing 's'
            raise AssertionError("never called")

    with pytest.warns(PluginWarning, match=r"plugin 'typo'.*register_encoder"):
        build_manager([FakeEntryPoint("typo", Typo())], blocked=[])


def test_the_block_variable_skips_named_plugins(monkeypatch):
    blocked = FakeEntryPoint("noisy", _plugin_module("register_models", "noisy-model"), package="relightzoo-noisy")
    by_package = FakeEntryPoint("other", _plugin_module("register_models", "other-model"), package="relightzoo-other")
    kept = FakeEntryPoint("kept", _plugin_module("register_models", "kept-model"), package="relightzoo-kept")
    monkeypatch.setenv("RELIGHTZOO_BLOCK_PLUGINS", "noisy, relightzoo_other")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        zoo = build_manager([blocked, by_package, kept])
    assert not blocked.loaded and not by_package.loaded and kept.loaded
    assert sorted(zoo.blocked) == ["noisy", "other"]
    assert "kept-model" in zoo.registries["model"] and "noisy-model" not in zoo.registries["model"]


def test_a_second_claim_to_a_name_is_skipped_naming_both_packages():
    a = FakeEntryPoint("a", _plugin_module("register_activations", "twin"), package="relightzoo-a", version="1")
    b = FakeEntryPoint("b", _plugin_module("register_activations", "twin"), package="relightzoo-b", version="2")
    with pytest.warns(PluginWarning) as record:
        zoo = build_manager([a, b], blocked=[])
    assert [str(w.message) for w in record] == [
        "plugin 'b' (package relightzoo-b 2) registers the activation name 'twin', which relightzoo-a 1 already "
        "provides: kept relightzoo-a 1's, skipped relightzoo-b's; rename it in relightzoo-b or set RELIGHTZOO_BLOCK_PLUGINS=b"
    ]
    assert zoo.registries["activation"].get("twin").package == "relightzoo-a"


# -- the public functions -----------------------------------------------------------------


def test_list_plugins_by_kind_and_pattern():
    kinds = [i.kind for i in list_plugins()]
    assert kinds == sorted(kinds, key=["encoder", "activation", "model"].index)
    assert {i.name for i in list_plugins("encoders")} >= {"raw", "scaled-spherical", "fourier", "direction"}
    elu = [i.name for i in list_plugins("activation", "*elu*")]
    assert {"celu", "elu", "gelu"} <= set(elu) and all("elu" in n for n in elu)
    with pytest.raises(PluginError, match="unknown plugin kind 'loss'; use one of encoder, activation, model"):
        list_plugins("loss")
    assert get_plugin("model", "siren").uses == ("encoder", "activation")
    assert get_plugin("model", "blend").uses == ()


def test_create_functions_report_unknown_names_with_suggestions():
    with pytest.raises(PluginError, match="unknown encoder 'fourrier'; did you mean 'fourier'"):
        create_encoder("fourrier")
    with pytest.raises(PluginError, match="unknown activation 'sin'; did you mean 'sine'"):
        create_activation("sin")
    with pytest.raises(PluginError, match="unknown model 'sirne'; did you mean 'siren'"):
        create_model("sirne")


def test_model_spec_matches_what_create_model_builds():
    args = dict(encoder="fourier", activation="cosine", encoder_args={"pixel_features": "8"}, hidden_features=16)
    spec = model_spec("siren", **args)
    model = create_model("siren", **args)
    assert model_spec(model) == spec
    assert spec["encoder"] == {"name": "fourier", "args": {**get_plugin("encoder", "fourier").defaults, "pixel_features": 8}}
    here = f"relightzoo {__version__}"
    assert spec["plugins"] == {"siren": here, "fourier": here, "cosine": here}


def test_build_from_spec_names_a_missing_plugin_and_its_package():
    spec = model_spec("siren", encoder="raw", activation="sine")
    spec["encoder"] = {"name": "hashgrid", "args": {}}
    spec["plugins"]["hashgrid"] = "relightzoo-hashgrid 0.2.0"
    with pytest.raises(PluginError) as exc:
        build_from_spec(spec)
    assert str(exc.value) == (
        "this model needs the encoder 'hashgrid' from the package relightzoo-hashgrid 0.2.0, "
        "which is not installed (pip install relightzoo-hashgrid)"
    )
    with pytest.raises(PluginError, match="model spec is malformed"):
        build_from_spec({"model": "siren"})


# -- the suite and installed plugins ------------------------------------------------------------


def test_installed_entry_points_are_not_loaded_under_test(monkeypatch):
    """tests/conftest.py sets TESTING_FLAG, so an installed third-party plugin cannot change
    what the suite sees; without the flag the same entry point is loaded."""
    import importlib.metadata
    import sys

    from relightzoo.zoo.manager import TESTING_FLAG

    stray = FakeEntryPoint("stray", _plugin_module("register_models", "stray-model"), package="relightzoo-stray")
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [stray] if kw.get("group") == "relightzoo" else [])
    assert getattr(sys, TESTING_FLAG) is True
    assert "stray-model" not in build_manager(blocked=[]).registries["model"] and not stray.loaded
    monkeypatch.setattr(sys, TESTING_FLAG, False)
    assert "stray-model" in build_manager(blocked=[]).registries["model"] and stray.loaded


def test_the_suite_does_not_hard_code_the_package_version():
    from pathlib import Path

    offenders = [p.name for p in sorted(Path(__file__).parent.glob("test_*.py")) if f'"{__version__}"' in p.read_text()]
    assert offenders == []
