"""A case's identity: what makes two cases the same computation (``--reuse``).

The identity is the case's full config (without ``output_dir``, which only says where
it writes) and a fingerprint of the code it runs: its entry point and the modules it
imports from inside the repository, by content (``used_files``), the Python version, and
the installed distributions it imports (``name==version``). A commit that touches none of
these leaves the identity unchanged; editing the entry point or a helper it imports, or
upgrading a library it imports, changes it. Imports are read statically (nothing runs),
so a dry run can compute it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ..records import CaseIdentity, CodeFingerprint
from ..provenance.used_files import files_and_imports

__all__ = ["case_identity", "changed_fields", "code_fingerprint", "config_sha256", "identity_change"]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k != "output_dir"}


def config_sha256(config: dict[str, Any]) -> str:
    """Hash of a config's JSON form without ``output_dir``."""
    return _sha256(json.dumps(_comparable(config), sort_keys=True, allow_nan=True).encode())


def changed_fields(recorded: dict[str, Any], now: dict[str, Any]) -> str:
    """``"field old -> new"`` for each field that differs (output_dir aside), "" when none do."""
    changes = []
    for name in dict.fromkeys([*recorded, *now]):
        if name == "output_dir":
            continue
        before, after = (json.dumps(d[name], sort_keys=True) if name in d else "(absent)" for d in (recorded, now))
        if before != after:
            changes.append(f"{name} {before} -> {after}")
    return ", ".join(changes)


@functools.lru_cache(maxsize=1)
def _distributions_of_modules() -> dict[str, list[str]]:
    # Scans every installed distribution's metadata once per process.
    return importlib.metadata.packages_distributions()


def _distributions(names: set[str]) -> dict[str, str]:
    """``{distribution: version}`` of the installed distributions that provide ``names``
    (standard-library modules and the repository's own have none)."""
    by_module = _distributions_of_modules()
    found: dict[str, str] = {}
    for name in sorted(names - set(sys.stdlib_module_names)):
        for dist in by_module.get(name, []):
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                continue
    return dict(sorted(found.items()))


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def code_fingerprint(entry_point: Path, repo_root: Path | None) -> CodeFingerprint:
    """The code an entry point runs, by content (see the module's docstring).

    Outside a repository only the entry point and the modules beside it count."""
    entry = Path(entry_point).resolve()
    root = Path(repo_root).resolve() if repo_root is not None else entry.parent
    used, imported = files_and_imports([entry], root)
    files = {}
    for file in used:
        try:
            files[_relative(file, root)] = _sha256(file.read_bytes())
        except OSError:
            files[_relative(file, root)] = "unreadable"
    fields = {
        "entry_point": _relative(entry, root),
        "files": files,
        "python": platform.python_version(),
        "distributions": _distributions(imported),
    }
    return CodeFingerprint(**fields, sha256=_sha256(json.dumps(fields, sort_keys=True).encode()))


def case_identity(config: dict[str, Any], code: CodeFingerprint) -> CaseIdentity:
    return CaseIdentity(config_sha256=config_sha256(config), code=code)


def identity_change(
    before: CaseIdentity, before_config: dict[str, Any] | None, now: CaseIdentity, now_config: dict[str, Any]
) -> str:
    """Why ``now`` is not ``before``, for a person: ``entry point changed: fit.py``,
    ``config: degree 3 -> 5``; "" when they are the same."""
    reasons = []
    if before.code.sha256 != now.code.sha256:
        reasons.append(_code_change(before.code, now.code))
    if before.config_sha256 != now.config_sha256:
        diff = changed_fields(before_config, now_config) if before_config is not None else ""
        reasons.append(f"config: {diff}" if diff else "config changed")
    return "; ".join(reasons)


def _code_change(before: CodeFingerprint, now: CodeFingerprint) -> str:
    if before.entry_point != now.entry_point:
        return f"entry point is now {now.entry_point} (was {before.entry_point})"
    if before.files.get(now.entry_point) != now.files.get(now.entry_point):
        return f"entry point changed: {Path(now.entry_point).name}"
    changed = sorted(f for f in {*before.files, *now.files} if before.files.get(f) != now.files.get(f))
    if changed:
        return f"module changed: {', '.join(changed)}"
    if before.python != now.python:
        return f"python {before.python} -> {now.python}"
    dists = sorted(d for d in {*before.distributions, *now.distributions}
                   if before.distributions.get(d) != now.distributions.get(d))
    if dists:
        return "packages: " + ", ".join(
            f"{d} {before.distributions.get(d, '(none)')} -> {now.distributions.get(d, '(none)')}" for d in dists
        )
    return "code changed"
