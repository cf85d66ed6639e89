"""Run directories in the runner's own format, written with its own writers (manifest,
run records, metrics.json), for the compare tests and benchmark: many runs of many cases
in a fraction of a second, where running a real suite costs a process per case."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import GitProvenance, ManifestCase, RunRecord, SuiteManifest, write_record


@dataclass
class FakeCase:
    variant: str
    config: dict[str, Any]
    metrics: Mapping[str, Any] | None = field(default_factory=dict)  # None: no metrics.json
    exit_code: int | None = 0  # None: started, never ended (partial)


def write_run(
    results_root: Path, cases: Iterable[FakeCase], *, experiment: str = "demo", when: datetime,
    sha: str = "a" * 40, dirty: bool = False, branch: str | None = "main",
) -> Path:
    """A standard-mode run directory as ``run_suite`` leaves it; returns its path."""
    run = SuiteRunPaths.new(results_root, experiment, when, sha[:7], dirty)
    run.dir.mkdir(parents=True)
    cases = list(cases)
    manifest = SuiteManifest(
        experiment_name=experiment, mode="standard", suite_file="suite.py", entry_point="entry.py",
        config_class="DemoConfig", created_at=when.isoformat(timespec="seconds"), run_dir=str(run.dir),
        git=GitProvenance(sha=sha, short=sha[:7], branch=branch, dirty=dirty),
        cases=[
            ManifestCase(variant_name=c.variant, config={**c.config, "output_dir": str(run.case(c.variant).dir)},
                         output_dir=str(run.case(c.variant).dir))
            for c in cases
        ],
    )
    write_record(run.manifest, manifest, fsync=False)
    stamp = when.isoformat(timespec="seconds")
    for c in cases:
        paths = run.case(c.variant)
        paths.dir.mkdir()
        atomic_write_json(paths.config, {**c.config, "output_dir": str(paths.dir)}, fsync=False)
        ended = c.exit_code is not None
        write_record(paths.run_record, RunRecord(
            variant_name=c.variant, command=["python", "entry.py"], cwd=str(results_root), host="here", pid=1,
            started_at=stamp, ended_at=stamp if ended else None, exit_code=c.exit_code, duration_seconds=1.0 if ended else None,
        ), fsync=False)
        if c.metrics is not None:
            atomic_write_json(paths.metrics, dict(c.metrics), fsync=False)
    return run.dir
