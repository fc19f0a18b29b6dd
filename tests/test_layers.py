"""The package's layers, kept by a test: every import in ``src/tinydistill`` (at module level or inside a function)
goes to the same layer or one below, and no chain of imports comes back to where it started."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: bottom to top; a module belongs to the first entry that is it or a package above it (docs/architecture.md)
LAYERS: list[tuple[str, ...]] = [
    ("tinydistill.errors", "tinydistill.registry", "tinydistill.process", "tinydistill.precision"),
    ("tinydistill.ui", "tinydistill.losses", "tinydistill.mapping", "tinydistill.families"),
    ("tinydistill.config",),
    ("tinydistill.outputs", "tinydistill.checkpoints", "tinydistill.data", "tinydistill.model_folders"),
    (
        "tinydistill.capture",
        "tinydistill.augment.words",
        "tinydistill.augment.vectors",
        "tinydistill.augment.masked_lm",
    ),
    ("tinydistill.augment.texts", "tinydistill.augment.tagged"),
    ("tinydistill.tasks",),
    ("tinydistill.models", "tinydistill.students", "tinydistill.terms", "tinydistill.speed", "tinydistill.cache"),
    ("tinydistill.objectives", "tinydistill.targets", "tinydistill.evaluate", "tinydistill.report"),
    ("tinydistill.ensemble",),
    ("tinydistill.reuse", "tinydistill.trainer", "tinydistill.zoo"),
    ("tinydistill.stages", "tinydistill.augment", "tinydistill.export", "tinydistill.bench", "tinydistill.compare"),
    ("tinydistill.preflight",),
    ("tinydistill.pipeline",),
    ("tinydistill.demo",),
    ("tinydistill.cli", "tinydistill"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every tinydistill module ``path`` imports, wherever the import statement stands."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: a relative import (the package imports by absolute name)"
            base = node.module or ""
            for a in node.names:  # `from pkg import module` imports the module
                found.add(f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base)
    return {m for m in found if m == "tinydistill" or m.startswith("tinydistill.")}


def _is_module(name: str) -> bool:
    path = SRC.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layer(name: str) -> int:
    best = None
    for i, members in enumerate(LAYERS):
        for m in members:
            if (name == m or name.startswith(m + ".")) and (best is None or len(m) > len(best[1])):
                best = (i, m)
    if best is None:
        raise AssertionError(f"{name} is in no layer: add it to LAYERS (and docs/architecture.md)")
    return best[0]


GRAPH = {module_name(p): imports(p) for p in SRC.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_imports_go_down(module):
    up = sorted(m for m in GRAPH[module] if m in GRAPH and layer(m) > layer(module))
    assert not up, f"{module} (layer {layer(module)}) imports {up} from a layer above"


def test_no_import_cycle():
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(GRAPH.get(node, ())):
            if nxt not in GRAPH or nxt == node:
                continue
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt) :] + [nxt]))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long.append(f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines")
    assert not long, long
