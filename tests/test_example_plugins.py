"""The example third-party packages in plugins/ pass the conformance kit, loaded through the
entry points their pyproject.toml declares (from the source tree, so the suite does not
depend on what is installed; CI installs them through the README's test line)."""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import pytest

from relightzoo.testing import CHECKS, assert_plugin_passes

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = sorted(p for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").is_file())

pytestmark = pytest.mark.usefixtures("one_thread")


def _declared(package: Path) -> tuple[str, str, dict[str, str]]:
    """(distribution name, version, {entry point: module}) from a plugin's pyproject.toml."""
    text = (package / "pyproject.toml").read_text()
    name = re.search(r'^name\s*=\s*"([^"]+)"', text, flags=re.M).group(1)
    version = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.M).group(1)
    section = re.search(r"^\[project\.entry-points\.relightzoo\]\n(.*?)(?:^\[|\Z)", text, flags=re.M | re.S).group(1)
    eps = dict(re.findall(r'^(\S+)\s*=\s*"([^"]+)"', section, flags=re.M))
    return name, version, eps


@pytest.fixture
def example_package(register_plugin, monkeypatch):
    """Register every entry point of one plugins/ package, as its installation would."""

    def load(package: Path):
        monkeypatch.syspath_prepend(str(package))  # the kit's reloading process inherits sys.path
        dist, version, eps = _declared(package)
        registered = []
        for ep, module in eps.items():
            zoo = register_plugin(importlib.import_module(module.split(":")[0]), ep, package=dist, version=version)
            registered += [source for source in zoo.sources if source.name == ep][0].registered
        return registered

    return load


def test_there_is_an_example_model_plugin_beside_the_activation_plugin(example_package):
    kinds = {kind for package in PACKAGES for kind, _ in example_package(package)}
    assert {"activation", "model"} <= kinds


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.name)
def test_every_example_plugin_passes_the_kit(example_package, package):
    registered = example_package(package)
    assert registered, f"{package.name} registers nothing"
    for kind, name in registered:
        assert [r.check for r in assert_plugin_passes(kind, name)] == list(CHECKS[kind])


def test_the_lambertian_model_recovers_normals_and_albedo(example_package):
    """On an analytic Lambertian scene (no ambient term) the fit is exact: the normals and the
    renders of held-out lights match the scene's own."""
    import torch

    from relightzoo.data.synthetic import lambertian_scene, scene_normals_albedo
    from relightzoo.lights import hemisphere_pattern
    from relightzoo.zoo import create_model

    example_package(ROOT / "plugins" / "relightzoo-lambert")
    lights = hemisphere_pattern("fibonacci", 40)
    images = torch.as_tensor(lambertian_scene(lights, 10, 12, 0, ambient=0.0))
    model = create_model("lambertian")
    train = torch.arange(0, 40, 2)
    model.attach_training_data(images[train], torch.as_tensor(lights, dtype=torch.float32)[train])
    held_out = torch.arange(1, 40, 2)
    pred = model.render(torch.as_tensor(lights, dtype=torch.float32)[held_out], 10, 12)
    assert float((pred - images[held_out].float()).abs().max()) < 1e-3
    normals, _ = scene_normals_albedo(10, 12, 0)
    assert float((model.normals.double() - torch.as_tensor(normals)).abs().max()) < 1e-3
    assert sys.modules["relightzoo_lambert.plugin"].LambertianModel is type(model)
