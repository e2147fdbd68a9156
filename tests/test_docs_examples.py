"""Every worked example in docs/plugins.md runs as printed: each is extracted into a module,
registered with the zoo, and passes the conformance kit; the two image models also train,
evaluate, relight (another size, a GIF, an environment map) and reload through the CLI."""

from __future__ import annotations

import importlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import make_olat_folder
from relightzoo.cli import main
from relightzoo.testing import CHECKS, assert_plugin_passes
from relightzoo.zoo import CoordinateModel, capabilities, create_model

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "plugins.md").read_text()
EXAMPLES = dict(re.findall(r"<!-- example: (\w+)\.py -->\n```python\n(.*?)```", DOC, flags=re.S))

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory):
    """The examples written out as modules on sys.path (so the kit's reloading process,
    which inherits sys.path, imports them too)."""
    folder = tmp_path_factory.mktemp("docs_examples")
    for name, code in EXAMPLES.items():
        (folder / f"{name}.py").write_text(code)
    sys.path.insert(0, str(folder))
    yield {name: importlib.import_module(name) for name in EXAMPLES}
    sys.path.remove(str(folder))


def _register(register_plugin, examples, name):
    zoo = register_plugin(examples[name], name, package=f"docs-{name.replace('_', '-')}")
    return [source for source in zoo.sources if source.name == name][0].registered


def test_the_page_has_a_worked_example_of_every_kind(examples, register_plugin):
    kinds = {}
    for name in EXAMPLES:
        for kind, plugin in _register(register_plugin, examples, name):
            model = create_model(plugin) if kind == "model" else None
            kinds[name] = (kind, model)
    assert kinds["docs_elevation"][0] == "encoder" and kinds["docs_sinc"][0] == "activation"
    assert isinstance(kinds["docs_tiny_field"][1], CoordinateModel)
    closed = capabilities(kinds["docs_linear_light"][1])
    assert not closed.trainable and closed.needs_images and closed.relight_envmap is not None
    trained = capabilities(kinds["docs_neural_texture"][1])
    assert trained.trainable and trained.draws_own_batches and trained.train_defaults["steps"] == 500
    assert DOC.rstrip().splitlines()[0] == "# Writing a relightzoo plugin" and "## 11. Run the kit" in DOC


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_every_example_passes_the_kit(examples, register_plugin, name):
    registered = _register(register_plugin, examples, name)
    assert registered
    for kind, plugin in registered:
        results = assert_plugin_passes(kind, plugin)
        assert [r.check for r in results] == list(CHECKS[kind])


@pytest.mark.parametrize("name,model,steps", [("docs_linear_light", "linear-light", []),
                                              ("docs_neural_texture", "neural-texture", ["--steps", "150"])])
def test_the_image_model_examples_train_evaluate_relight_and_reload(examples, register_plugin, tmp_path, name, model, steps):
    from relightzoo.envmap import write_hdr
    from relightzoo.train import load_checkpoint

    _register(register_plugin, examples, name)
    data = make_olat_folder(tmp_path / "data", n_lights=24, height=12, width=12)

    def cli(*args):
        res = CliRunner().invoke(main, [str(a) for a in args])
        assert res.exit_code == 0, res.output
        return res

    run = tmp_path / "run"
    cli("train", data, "--model", model, "--lights", "uniform:12", *steps, "--out", run, "--no-eval")
    ckpt = run / "latest.safetensors"
    results = json.loads(cli("eval", ckpt, "--json").stdout)["results"]
    # Both fit the smooth synthetic scene far better than blending the nearest captures
    # (about 29.7 and 28.1 dB against 22.3 dB).
    assert results["model"]["all"]["psnr"] > results["blend"]["all"]["psnr"] + 3.0
    cli("relight", ckpt, "--light", "0.3,0.2,0.9327", "--size", "20x10", "--out", tmp_path / "one.png")
    cli("relight", ckpt, "--orbit-polar", "40", "--degrees", "--frames", "3", "--out", tmp_path / "orbit.gif")
    write_hdr(tmp_path / "sky.hdr", np.full((8, 16, 3), 0.5, dtype=np.float32))
    cli("relight", ckpt, "--envmap", tmp_path / "sky.hdr", "--envmap-k", "8", "--out", tmp_path / "sky.png")
    loaded, config = load_checkpoint(ckpt)
    assert config["spec"]["model"]["name"] == model and type(loaded).__name__ in ("LinearLight", "NeuralTexture")
