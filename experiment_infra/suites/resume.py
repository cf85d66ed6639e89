"""Resuming a standard-mode run directory: what the suite may change (add cases, drop
cases; not change a case's config), and what a resume writes into the manifest (a new
code version, the cases it adds and when)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..provenance.code_versions import first_version
from ..files.atomic import atomic_write_text
from .identity import changed_fields
from ..layout import SuiteRunPaths
from ..records import ManifestAddition, ManifestCase, SuiteManifest, load_resume_manifest, write_record
from ..running.runner import case_config
from .errors import SuiteError

__all__ = ["check_resume", "manifest_case", "record_resume"]

# ``suite`` is a ``suite.Suite``, ``plan`` a ``suite.SuitePlan`` and ``p`` a
# ``suite.PlannedCase`` (typed loosely: suite.py imports this module).


def check_resume(suite: Any, run_dir: str | Path) -> tuple[SuiteRunPaths, SuiteManifest, list[str]]:
    """The run directory and its manifest, and the variants of its manifest the suite no
    longer has. A case the suite adds is run there; a case whose config changed is refused."""
    run = SuiteRunPaths(Path(run_dir).expanduser().resolve())
    manifest = load_resume_manifest(
        run_dir, run.dir, run.manifest, SuiteManifest, suite.experiment_name, SuiteError,
        missing=f"not a run directory (no {run.manifest.name}); "
        f"pass one like results/{suite.experiment_name}/YYYYmmdd_HHMMSS_git7",
    )
    recorded = {c.variant_name: c for c in manifest.cases}
    wanted = {c.variant_name: c for c in suite.cases}
    dropped = [name for name in recorded if name not in wanted]
    for name, case in wanted.items():
        if name not in recorded:
            continue  # added: it runs in this directory
        changed = changed_fields(recorded[name].config, case.config.to_json_dict())
        if changed:
            raise SuiteError(
                f"--resume {run_dir}: case {name!r} changed since the run started: {changed}; "
                "start a new run (or restore the suite)"
            )
    return run, manifest, dropped


def manifest_case(p: Any) -> ManifestCase:
    return ManifestCase(
        variant_name=p.variant_name, config=case_config(p.case, p.paths).to_json_dict(), output_dir=str(p.paths.dir)
    )


def record_resume(plan: Any) -> None:
    """What a resume adds to the manifest: a new code version (an allowed code change, with
    its own patch file) and the cases the suite adds (``additions``: when, which, on which
    code version)."""
    check, manifest = plan.code_check, plan.manifest
    if manifest is None:
        return
    update: dict[str, Any] = {}
    versions = manifest.code_versions or [first_version(manifest.git, manifest.created_at)]
    if check is not None and check.new_version is not None:
        if check.new_version.patch_file:
            atomic_write_text(plan.run.patch_of(check.version), check.new_patch)
        versions = [*versions, check.new_version]
        update["code_versions"] = versions
    if plan.added:  # the history of what was added, naming the code version it was added on
        update["cases"] = [*manifest.cases, *(manifest_case(p) for p in plan.added)]
        addition = ManifestAddition(
            added_at=plan.created_at, variants=[p.variant_name for p in plan.added], code_version=len(versions)
        )
        update["additions"] = [*manifest.additions, addition]
        update["code_versions"] = versions
    if update:
        write_record(plan.run.manifest, manifest.model_copy(update=update))
