"""The README's promises: its Python example runs as written (fewer steps) without a warning,
and its test line is the one CI runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.usefixtures("one_thread")


SUBMODULES_FIRST = "import relightzoo.recipes, relightzoo.relight, relightzoo.evaluate\n"
"""Importing these before ``import relightzoo as rz`` set ``rz.train``, ``rz.relight`` and
``rz.evaluate`` to the modules of those names, and the example failed with "'module' object
is not callable" (relightzoo/util/callable_module.py)."""


@pytest.mark.parametrize("prelude", ["", SUBMODULES_FIRST], ids=["as-written", "submodules-imported-first"])
def test_the_python_example_runs_without_a_light_warning(tmp_path: Path, prelude: str) -> None:
    """As a user runs it: a fresh interpreter (fewer steps), no warning about the light; and
    the same after importing the submodules named like the API's functions."""
    (code,) = re.findall(r"## Python API\n\n```python\n(.*?)```", README, flags=re.S)
    assert "steps=1000" in code
    code = prelude + code.replace("steps=1000", "steps=2") + "\nassert tuple(image.shape) == (256, 256, 3)\n"
    code += "import types\nassert all(callable(f) for f in (rz.train, rz.relight, rz.evaluate))\n"
    if prelude:
        code += "assert all(isinstance(f, types.ModuleType) for f in (rz.train, rz.relight, rz.evaluate))\n"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    res = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "unit length" not in res.stderr, res.stderr
    assert (tmp_path / "runs" / "api" / "latest.safetensors").exists()


def test_ci_runs_the_readme_test_line_verbatim() -> None:
    (setup,) = re.findall(r"## Set up\n.*?```console\n(.*?)```", README, flags=re.S)
    test_line = setup.strip().splitlines()[1]
    assert "python -m pytest" in test_line
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_line in ci
    for plugin in sorted(p.name for p in (ROOT / "plugins").iterdir() if (p / "pyproject.toml").exists()):
        assert f"-e plugins/{plugin}" in test_line, f"the README's test line does not install plugins/{plugin}"
