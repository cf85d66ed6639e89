"""A recovery of a standard-mode run shows each failed case's failure class per attempt
(``signal, exit``), read from its run records, in its table and its ``--json`` document.

The failures are real: an entry point killed by a signal (retried: a transient class),
then failing with a plain exit; another that only exits non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

from conftest import git
from recover_helpers import recover_cli
from suite_factory import case_src, make_suite

from experiment_cli.run_suite import main as run_main
from experiment_infra.layout import SuiteRunPaths

# First try of "killed": SIGTERM to itself, as a preempting scheduler would; every later
# try of it, and every try of "bug": exit 3. "ok" completes.
ENTRY = '''
import json, os, signal, sys
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
if cfg.label == "ok":
    Path(cfg.output_dir, "metrics.json").write_text(json.dumps({{"ok": 1}}))
    sys.exit(0)
marker = Path(cfg.output_dir).parent / ("tried-" + cfg.label)
if cfg.label == "killed" and not marker.exists():
    marker.write_text("x")
    os.kill(os.getpid(), signal.SIGTERM)
print("boom", file=sys.stderr)
sys.exit(3)
'''


def failed_run(git_repo: Path, tmp_path: Path) -> SuiteRunPaths:
    where = git_repo / "exp"
    suite = make_suite(where, [case_src("ok"), case_src("killed"), case_src("bug")], name="classes", retries=1,
                       write_entry=False)
    cfg = next(p.stem for p in where.glob("demo_cfg_*.py"))
    (where / "entry.py").write_text(ENTRY.format(cfg=cfg))
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "suite")
    assert run_main([str(suite), "--results-root", str(tmp_path / "results")]) == 1
    (run_dir,) = (tmp_path / "results" / "classes").iterdir()
    return SuiteRunPaths(run_dir)


def test_recovery_shows_each_attempts_failure_class(prefect_harness, git_repo: Path, tmp_path: Path) -> None:
    run = failed_run(git_repo, tmp_path)

    dry = recover_cli(str(run.dir), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    header = next(line for line in dry.stdout.splitlines() if line.startswith("variant"))
    assert header.split()[:3] == ["variant", "status", "failures"]
    rows = {line.split()[0]: line for line in dry.stdout.splitlines() if line.startswith(("killed", "bug", "ok"))}
    assert set(rows) == {"killed", "bug"}  # the completed case needs nothing
    assert rows["killed"].split()[1:4] == ["failed", "signal,", "exit"]  # retried after the signal, then a bug
    assert rows["bug"].split()[1:3] == ["failed", "exit"]  # a plain exit is not retried

    doc = json.loads(recover_cli(str(run.dir), "--json").stdout)
    cases = {c["variant"]: c for c in doc["cases"]}
    assert (cases["killed"]["failure"], cases["killed"]["failures"]) == ("exit", ["signal", "exit"])
    assert (cases["bug"]["failure"], cases["bug"]["failures"]) == ("exit", ["exit"])
    assert (cases["ok"]["failure"], cases["ok"]["failures"]) == (None, [])

    # --status still filters; the classes come along.
    only_failed = json.loads(recover_cli(str(run.dir), "--json", "--status", "failed").stdout)
    assert {c["variant"]: c["failures"] for c in only_failed["cases"]} == {"killed": ["signal", "exit"], "bug": ["exit"]}
    verbose = recover_cli(str(run.dir), "--dry-run", "--status", "completed", "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    (ok,) = [line for line in verbose.stdout.splitlines() if line.startswith("ok ")]
    assert ok.split()[1:3] == ["completed", "-"]
