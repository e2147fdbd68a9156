"""The house rule of docs/architecture.md: a module imports only from its own layer and the
layers below it, and no modules import each other in a circle.

Every module of the package is parsed (``ast``, so imports inside functions count too) and
each ``relightzoo`` import is resolved to the module it names. The layers are listed here
in the order of docs/architecture.md's table, bottom first; a module belongs to the first
entry whose name is it or a package above it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "relightzoo"

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("relightzoo", "relightzoo.errors", "relightzoo._compat", "relightzoo.console", "relightzoo.jsonfile")),
    ("util", ("relightzoo.util",)),
    ("lights, metrics, pictures", ("relightzoo.lights", "relightzoo.metrics", "relightzoo.sheets", "relightzoo.plots")),
    ("data", ("relightzoo.data",)),
    ("zoo", ("relightzoo.zoo",)),
    ("builtins", ("relightzoo.builtins",)),
    ("train, recipes", ("relightzoo.train", "relightzoo.recipes")),
    ("evaluate, render", ("relightzoo.evaluate", "relightzoo.relight", "relightzoo.envmap", "relightzoo.animation")),
    ("ablate, bench, web, export, testing", ("relightzoo.ablate", "relightzoo.bench", "relightzoo.web", "relightzoo.export", "relightzoo.testing")),
    ("cli", ("relightzoo.cli", "relightzoo.__main__")),
]


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module`` (the longest matching name wins)."""
    best, best_len = None, -1
    for i, (_, names) in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = i, len(name)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS and to docs/architecture.md")
    return best


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _exists(module: str, root: Path) -> bool:
    base = root / module.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(module: str, source: str, *, is_package: bool, root: Path = ROOT) -> set[str]:
    """The ``relightzoo`` modules ``source`` imports anywhere in its body (``from X import y``
    names the module ``X.y`` when that is a module, else ``X``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "relightzoo")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "relightzoo":
                continue
            subs = [f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}", root)]
            found.update(subs)
            if len(subs) < len(node.names):
                found.add(target)
    found.discard(module)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    graph = {}
    for path in sorted((root / "relightzoo").rglob("*.py")):
        name = module_name(path, root)
        graph[name] = imports_of(name, path.read_text(encoding="utf-8"), is_package=path.name == "__init__.py", root=root)
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                bad.append(f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph()


def test_no_module_imports_from_a_higher_layer(graph) -> None:
    assert upward_imports(graph) == []


def test_no_modules_import_each_other_in_a_circle(graph) -> None:
    assert cycles(graph) == []


def test_the_zoo_names_its_builtins_without_importing_them(graph) -> None:
    zoo = {m for m in graph if m.startswith("relightzoo.zoo")}
    assert not {t for m in zoo for t in graph[m] if t.startswith("relightzoo.builtins")}
    for module in (m for m in graph if m.startswith("relightzoo.builtins.")):
        assert "relightzoo.zoo" not in graph[module], f"{module} imports the package relightzoo.zoo, not its leaf modules"


def test_the_checks_see_an_upward_import_and_a_circle_inside_a_function() -> None:
    source = "def f():\n    from ..cli import main\n    return main\n"
    found = imports_of("relightzoo.data.folder", source, is_package=False)
    assert found == {"relightzoo.cli"}
    assert upward_imports({"relightzoo.data.folder": found}) == ["relightzoo.data.folder (data) imports relightzoo.cli (cli)"]
    circle = {"relightzoo.zoo.manager": {"relightzoo.builtins.siren"}, "relightzoo.builtins.siren": {"relightzoo.zoo.manager"}}
    assert cycles(circle) == [["relightzoo.builtins.siren", "relightzoo.zoo.manager"]]


def test_every_module_has_a_layer_named_in_the_architecture_page(graph) -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for module in graph:
        layer_of(module)
    for _, names in LAYERS:
        for name in names:
            if name not in ("relightzoo", "relightzoo.__main__"):
                assert name.replace(".", "/") in page, f"docs/architecture.md does not name {name}"
