"""The layering rule, checked on the source so it cannot rot: the core (``experiment_infra``)
imports nothing from Prefect, the flows, the tasks, the deployments or the command lines,
anywhere (functions included), and its modules import one another without a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

CORE = REPO_ROOT / "experiment_infra"
FORBIDDEN = ("prefect", "prefect_dask", "flows", "tasks", "deployments", "experiment_cli")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module ``path`` imports (relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module":
            for arg in node.args[:1]:  # a name given as text, or an f-string's leading text
                text = arg.value if isinstance(arg, ast.Constant) else (
                    arg.values[0].value if isinstance(arg, ast.JoinedStr) and arg.values
                    and isinstance(arg.values[0], ast.Constant) else None
                )
                if isinstance(text, str):
                    found.append((node.lineno, text))
    return found


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_the_core_imports_nothing_above_it() -> None:
    offences = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for path in _core_files()
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offences == []


def test_the_core_has_no_import_cycle() -> None:
    modules = {_module_name(p): p for p in _core_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for _, target in _imports(path):
            while target and target not in modules:  # `from .x import name` names x.name
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):
                deps.add(target)
        graph[name] = {d for d in deps if not d.startswith(name + ".")}
    # A package's __init__ re-exports its modules; a module importing its own package's
    # __init__ is an ordinary edge. Depth-first search for a back edge.
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert cycles == []
