"""Which files inside a repository an experiment uses: its suite file, its entry point
and every module they import from inside the repository, found by reading their
``import`` statements (``ast``; nothing is executed, so a dry run and the nightly walk
can ask too).

A module is looked for where Python would find it when the experiment runs: beside the
importing script (the suite file's and the entry point's directories are first on
``sys.path``), at the repository root, and for a relative import in its package. Only
files inside the repository are returned: an installed package is not the experiment's
code. Imports that cannot be resolved statically (``importlib.import_module(name)``)
are not followed.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterable

__all__ = ["files_and_imports", "files_used"]


def _module_file(base: Path, dotted: str) -> list[Path]:
    """``base/a/b.py`` or ``base/a/b/__init__.py`` for ``a.b``, with the ``__init__.py``
    of every package on the way (they run too); empty when it is not under ``base``."""
    parts = dotted.split(".") if dotted else []
    found: list[Path] = []
    here = base
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        package = here / part
        init = package / "__init__.py"
        if init.is_file():
            found.append(init)
        elif last and (here / f"{part}.py").is_file():
            found.append(here / f"{part}.py")
            return found
        elif not package.is_dir():  # not here (a namespace package is a plain directory)
            return []
        here = package
    return found


def _imports(tree: ast.AST, file: Path) -> Iterable[tuple[Path | None, str]]:
    """``(base, dotted name)`` pairs: base None means "on sys.path", else the package directory."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield None, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = file.parent
                for _ in range(node.level - 1):
                    base = base.parent
                prefix = node.module or ""
                if prefix:
                    yield base, prefix
                for alias in node.names:  # `from . import x`: x may be a module
                    yield base, f"{prefix}.{alias.name}" if prefix else alias.name
            else:
                module = node.module or ""
                yield None, module
                for alias in node.names:  # `from pkg import mod`
                    if alias.name != "*":
                        yield None, f"{module}.{alias.name}"


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def files_used(scripts: Iterable[Path], repo_root: Path) -> list[Path]:
    """The ``scripts`` (a suite file, an entry point) and every file inside ``repo_root``
    they import, directly or not, resolved and sorted. A file that does not parse is
    listed but not followed (running it will say what is wrong)."""
    return files_and_imports(scripts, repo_root)[0]


def files_and_imports(scripts: Iterable[Path], repo_root: Path) -> tuple[list[Path], set[str]]:
    """``files_used``, and the top-level names of every absolute import in those files
    (``numpy`` for ``import numpy.linalg``): where installed packages come in."""
    root = Path(repo_root).resolve()
    starts = [Path(s).resolve() for s in scripts]
    search = list(dict.fromkeys([*(s.parent for s in starts), root]))
    seen: set[Path] = set()
    top_level: set[str] = set()
    todo = [s for s in starts if _inside(s, root)]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (SyntaxError, ValueError, OSError):
            continue
        for base, dotted in _imports(tree, file):
            if base is None and dotted:
                top_level.add(dotted.split(".")[0])
            for where in [base] if base is not None else search:
                hits = [h.resolve() for h in _module_file(where, dotted)]
                todo += [h for h in hits if _inside(h, root) and h not in seen]
                if hits:
                    break  # the first place on the path wins, as for Python
    return sorted(seen), top_level
