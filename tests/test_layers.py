"""The layering rule, checked on the source so it cannot rot: the core (``experiment_infra``)
imports nothing from Prefect, the flows, the tasks, the deployments or the command lines,
anywhere (functions included); its modules import one another without a cycle; it is one
package per stage, each saying in its docstring what it owns and which of the core's
packages it may import (the docstring is the one statement of that rule, checked here);
and no module is over 500 lines."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from conftest import REPO_ROOT

CORE = REPO_ROOT / "experiment_infra"
FORBIDDEN = ("prefect", "prefect_dask", "flows", "tasks", "deployments", "experiment_cli")
# The top level: the public API and the leaves every package may import.
TOP_LEVEL = {"__init__.py", "errors.py", "lazy.py", "clock.py"}
MAX_LINES = 500
LAYERED = ("experiment_infra", "flows", "tasks", "experiment_cli", "deployments")


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


def _packages() -> list[Path]:
    return sorted(p for p in CORE.iterdir() if p.is_dir() and p.name != "__pycache__")


def _may_import(package: Path) -> set[str] | None:
    """The packages ``package``'s docstring allows it to import (None: no such line)."""
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    match = re.fullmatch(r"May import: (.*)", doc.strip().splitlines()[-1]) if doc.strip() else None
    if match is None:
        return None
    if match[1].startswith("nothing"):
        return set()
    return {name.strip() for name in match[1].split(",")}


def test_the_core_imports_nothing_above_it() -> None:
    offences = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {name}"
        for path in _core_files()
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offences == []


def test_the_top_level_is_the_public_api_and_stage_packages() -> None:
    assert {p.name for p in CORE.glob("*.py")} <= TOP_LEVEL, "a new module belongs in the package of its stage"
    assert [p.name for p in _packages() if not (p / "__init__.py").exists()] == []


def test_every_package_says_what_it_owns_and_may_import() -> None:
    names = {p.name for p in _packages()}
    problems = []
    for package in _packages():
        doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
        allowed = _may_import(package)
        if len(doc.split()) < 20:
            problems.append(f"{package.name}: no docstring saying what it owns")
        if allowed is None:
            problems.append(f"{package.name}: its docstring does not end with a 'May import: ...' line")
        elif allowed - names or package.name in allowed:
            problems.append(f"{package.name}: May import names {sorted(allowed - names or {package.name})}")
    assert problems == []


def test_packages_import_only_what_their_docstring_allows() -> None:
    names = {p.name for p in _packages()}
    offences = []
    for package in _packages():
        allowed = _may_import(package) or set()
        for path in sorted(package.rglob("*.py")):
            for line, target in _imports(path):
                parts = target.split(".")
                if len(parts) > 1 and parts[0] == "experiment_infra" and parts[1] in names - {package.name} - allowed:
                    offences.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {target}")
    assert offences == [], "import only what the package's 'May import' line names, or change that line"


def test_the_leaves_import_no_package() -> None:
    names = {p.name for p in _packages()}
    offences = [
        f"{path.name}:{line} imports {target}"
        for path in (CORE / name for name in TOP_LEVEL - {"__init__.py"})
        for line, target in _imports(path)
        if target.split(".")[:1] == ["experiment_infra"] and len(target.split(".")) > 1 and target.split(".")[1] in names
    ]
    assert offences == []


def test_no_module_is_over_500_lines() -> None:
    long = [
        f"{path.relative_to(REPO_ROOT)}: {n} lines"
        for top in LAYERED
        for path in sorted((REPO_ROOT / top).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert long == [], "split it: a module is named for the one thing it holds"


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
