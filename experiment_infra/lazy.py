"""Public names of a package imported on first use (PEP 562), one owner of the pattern.

A package's ``__init__`` maps each public name to the module that defines it and hands
the mapping here; ``from package import Name`` then imports that one module, so a
process that needs a little of the package (a dry run, the case waiter) does not pay
for all of it.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing itself is not imported: see experiment_infra/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(package: str, where: dict[str, str], namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for the package ``package`` whose names live in the
    modules ``where`` gives (relative to it); ``namespace`` is its ``globals()``."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module("." + module, package), name)
        namespace[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(where))

    return __getattr__, __dir__
