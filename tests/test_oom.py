"""A case killed by the kernel's OOM killer: classed ``oom`` from what the kernel says
(its ``oom_kill`` count rose during the attempt), and retried by default.

The kill is real: the entry point joins a memory cgroup of 64 MB that the test creates
(cgroup v1's memory controller or cgroup v2's, as root) and allocates far more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from prerequisites import missing
from suite_factory import case_src, make_suite
from test_scheduling import only_run_dir

from experiment_cli.run_suite import main
from experiment_infra import CasePaths, load_record
from experiment_infra.records import RunRecord

LIMIT_BYTES = 64 * 1024 * 1024

OOM_ONCE_ENTRY = '''
import json, os
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
marker = Path(cfg.output_dir) / "oom-once"  # the case's own file: the retry continues in place
if not marker.exists():
    marker.write_text("x")
    Path(os.environ["TEST_OOM_CGROUP_PROCS"]).write_text(str(os.getpid()))
    hog = bytearray(512 * 1024 * 1024)  # zero-filled, so every page is touched: far over the limit
Path(cfg.output_dir, "metrics.json").write_text(json.dumps({{"ok": 1}}))
'''


@pytest.fixture
def memory_cgroup() -> Iterator[Path]:
    """A fresh memory cgroup limited to 64 MB; yields its ``cgroup.procs``."""
    name = f"experiment-infra-test-{uuid.uuid4().hex[:8]}"
    candidates = [
        (Path("/sys/fs/cgroup/memory"), "memory.limit_in_bytes"),  # cgroup v1
        (Path("/sys/fs/cgroup"), "memory.max"),  # cgroup v2, unified at the root
        (Path("/sys/fs/cgroup/unified"), "memory.max"),  # cgroup v2 beside v1 (hybrid)
    ]
    for root, limit in candidates:
        if root.name != "memory" and "memory" not in _read(root / "cgroup.controllers").split():
            continue
        group = root / name
        try:
            group.mkdir()
        except OSError:
            continue
        try:
            (group / limit).write_text(str(LIMIT_BYTES))
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
        except OSError:
            group.rmdir()
            continue
        try:
            yield group / "cgroup.procs"
        finally:
            try:
                group.rmdir()
            except OSError:
                pass
        return
    missing("needs a memory cgroup this user can create (cgroup v1's memory controller or v2's, as root)")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_a_case_the_oom_killer_ends_is_classed_oom_and_retried_by_default(
    prefect_harness, tmp_path: Path, memory_cgroup: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = make_suite(tmp_path / "s", [case_src("hungry")], name="oom", write_entry=False)
    suite.write_text(suite.read_text().replace("retries = 0\n", ""))  # the default: transient failures retried
    cfg = next(p.stem for p in (tmp_path / "s").glob("demo_cfg_*.py"))
    (tmp_path / "s" / "entry.py").write_text(OOM_ONCE_ENTRY.format(cfg=cfg))
    monkeypatch.setenv("TEST_OOM_CGROUP_PROCS", str(memory_cgroup))
    results = tmp_path / "results"

    assert main([str(suite), "--results-root", str(results)]) == 0
    case = CasePaths(only_run_dir(results, "oom") / "hungry")
    record = load_record(case.run_record, RunRecord)
    assert record.attempt == 2 and record.exit_code == 0 and case.metrics.is_file()
    first = load_record(case.attempt_dir(1) / "run_record.json", RunRecord)
    assert first.failure == "oom" and first.exit_code == -9, first
