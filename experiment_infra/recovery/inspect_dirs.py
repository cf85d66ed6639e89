"""Recovery of an inspect-mode log directory (``results/{experiment}/*.eval``).

There is no manifest: the logs carry what is needed. Each log's metadata names the
suite file that wrote it, whose cases are the expected variants (so a variant with
no log at all shows as ``missing``), and each variant's newest log gives its status.
Loading a suite file runs its code, and a path in a log is data, not the user's word:
only a real recovery loads it (``load_suite``), after its checks; a dry run and
``--json`` execute nothing and list the variants that have logs.
Reruns go through ``run_suite`` for just the variants that need work; new logs are
written beside the old ones, which are never touched.
"""

from __future__ import annotations

from pathlib import Path

from ..records.inspect_logs import read_log_metadata
from ..layout import INSPECT_LOG_SUFFIX, SuiteRunPaths, parse_inspect_log_name
from ..records import GitProvenance, ManifestCase, SuiteManifest
from .select import RecoveryInputError
from ..suites.suite import Suite, SuiteError
from ..suites.suite import load_suite as load_suite_file


def is_inspect_log_dir(path: Path) -> bool:
    try:
        return any(parse_inspect_log_name(p.name) for p in path.iterdir() if p.name.endswith(INSPECT_LOG_SUFFIX))
    except OSError:
        return False


def _newest_logs(log_dir: Path) -> dict[str, Path]:
    newest: dict[str, Path] = {}
    for p in sorted(log_dir.iterdir(), key=lambda p: p.name):
        parsed = parse_inspect_log_name(p.name)
        if parsed and p.is_file() and not p.is_symlink():
            newest[parsed[2]] = p
    return newest


def inspect_manifest(log_dir: Path, *, load_suite: bool = False) -> tuple[SuiteManifest, list[str]]:
    """A manifest rebuilt from the logs (and, with ``load_suite``, their suite file, when it
    still loads: it runs that file's code), plus notes."""
    newest = _newest_logs(log_dir)
    if not newest:
        raise RecoveryInputError(f"{log_dir}: no inspect .eval logs ({{timestamp}}_{{git7}}_{{variant}}_{{id}}.eval)")
    metadata = {variant: read_log_metadata(path) for variant, path in newest.items()}
    suite_files = [m.get("suite_file") for m in metadata.values() if m.get("suite_file")]
    named = str(suite_files[-1]) if suite_files else ""
    notes: list[str] = []
    suite: Suite | None = None
    if suite_files and not load_suite:
        notes.append(
            f"the suite file the logs name ({named}) is not run by a dry run or --json (loading it runs its "
            "code): listed are the variants with logs; a real recovery loads it and adds any variant without a log"
        )
    elif suite_files:
        try:
            loaded = load_suite_file(suite_files[-1])
            suite = loaded if isinstance(loaded, Suite) and loaded.mode == "inspect" else None
        except SuiteError as exc:
            notes.append(f"suite file no longer loads ({exc}); expected variants are those with logs")
    else:
        notes.append("logs name no suite file; expected variants are those with logs, and none can be rerun")
    if suite is not None:
        cases = [ManifestCase(variant_name=c.variant_name, config=c.config.to_json_dict()) for c in suite.cases]
        extra = sorted(set(newest) - {c.variant_name for c in suite.cases})
        if extra:
            notes.append(f"logs of variant(s) no longer in the suite, left alone: {', '.join(extra)}")
    else:
        cases = [ManifestCase(variant_name=v, config=m.get("config") or {}) for v, m in sorted(metadata.items())]
    last = metadata[max(newest, key=lambda v: newest[v].name)]
    sha = str(last.get("git_sha") or "nogit")
    manifest = SuiteManifest(
        experiment_name=log_dir.name,
        mode="inspect",
        # Unloaded (a dry run): the file a real recovery would load; loaded and refused: none.
        suite_file=str(suite.suite_file) if suite is not None and suite.suite_file else "" if load_suite else named,
        entry_point=str(suite.entry_point) if suite is not None else "",
        config_class=str(last.get("config_class") or ""),
        created_at=parse_inspect_log_name(newest[max(newest, key=lambda v: newest[v].name)].name)[0],
        run_dir=str(log_dir),
        git=GitProvenance(sha=sha, short=sha[:7], dirty=bool(last.get("git_dirty"))),
        cases=cases,
    )
    return manifest, notes


def inspect_target(path: Path) -> SuiteRunPaths:
    """Inspect log directories are surveyed like run directories (no files of ours inside)."""
    return SuiteRunPaths(path)
