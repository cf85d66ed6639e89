"""The suite run's cases table shows each attempt's failure class, oldest first, for every
case that had a failed attempt: the summary printed at the end, the UI's cases table
artifact (read back through the Prefect client) and report.md, in recovery's words.

The failures are real: the entry point is killed by a SIGTERM another process sends it
(as a preempting scheduler would), which is retried, then completes or exits non-zero.
"""

from __future__ import annotations

import json
from pathlib import Path

from recover_helpers import recover_cli
from suite_factory import case_src, make_suite

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from experiment_cli.run_suite import main
from experiment_infra.layout import SuiteRunPaths
from flows.artifacts import artifact_key

# "ok" completes; every other case is killed by SIGTERM from another process on its first
# try; then "twice" exits 3 (a plain exit: not retried) and the others complete.
ENTRY = '''
import json, os, subprocess, sys, time
from pathlib import Path
from {cfg} import DemoConfig
cfg = DemoConfig.from_cli()
tries_file = Path(cfg.output_dir).parent / (".tries-" + cfg.label)  # outside what a retry sets aside
tries = int(tries_file.read_text()) + 1 if tries_file.exists() else 1
tries_file.write_text(str(tries))
if cfg.label != "ok" and tries == 1:
    subprocess.run([sys.executable, "-c", "import os, signal; os.kill(%d, signal.SIGTERM)" % os.getpid()])
    time.sleep(600)  # the signal ends it before this does
if cfg.label == "twice":
    print("boom", file=sys.stderr)
    sys.exit(3)
Path(cfg.output_dir, "metrics.json").write_text(json.dumps({{"ok": 1}}))
'''


def run_suite(tmp_path: Path, name: str, labels: list[str], capsys) -> tuple[int, str, SuiteRunPaths]:
    where = tmp_path / "s"
    suite = make_suite(where, [case_src(label) for label in labels], name=name, retries=2, write_entry=False)
    cfg = next(p.stem for p in where.glob("demo_cfg_*.py"))
    (where / "entry.py").write_text(ENTRY.format(cfg=cfg))
    capsys.readouterr()
    code = main([str(suite), "--results-root", str(tmp_path / "results")])
    out = capsys.readouterr().out
    (run_dir,) = (tmp_path / "results" / name).iterdir()
    return code, out, SuiteRunPaths(run_dir)


def summary_table(out: str) -> tuple[list[str], dict[str, list[str]]]:
    """The printed summary's header and rows (words), by variant."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[:2] == ["variant", "status"])
    rows = {}
    for line in lines[at + 1:]:
        if not line.startswith("  "):
            break
        rows[line.split()[0]] = line.split()
    return lines[at].split(), rows


def artifact(key: str) -> object:
    with get_client(sync_client=True) as client:
        (found,) = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])))
    return found.data


def cases_artifact(name: str) -> dict[str, dict]:
    data = artifact(f"{artifact_key(name)}-cases")
    rows = data if isinstance(data, list) else json.loads(data)
    return {r["variant"]: r for r in rows}


def report_rows(run: SuiteRunPaths) -> tuple[list[str], dict[str, list[str]]]:
    """report.md's cases table (the first table): header cells and each case's cells."""
    lines = [line for line in run.report_md.read_text().splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    head = cells[0]
    rows = {}
    for row in cells[2:]:
        if len(row) != len(head):
            break
        rows[row[0].split("]")[0].lstrip("[")] = row  # the variant links to its config
    return head, rows


def test_a_case_killed_once_then_completed_shows_the_signal(prefect_harness, tmp_path: Path, capsys) -> None:
    code, out, run = run_suite(tmp_path, "attempt_once", ["preempted", "ok"], capsys)

    assert code == 0, out
    head, rows = summary_table(out)
    assert head == ["variant", "status", "seconds", "exit", "failures", "reason"], out
    assert rows["preempted"][:2] == ["preempted", "completed"] and rows["preempted"][4:] == ["signal,", "-"], out
    assert rows["ok"][1] == "completed" and rows["ok"][4:] == ["-"], out

    cases = cases_artifact("attempt_once")
    assert (cases["preempted"]["status"], cases["preempted"]["failures"], cases["preempted"]["attempt"]) == (
        "completed", "signal, -", 2)
    assert cases["ok"]["failures"] == "-"

    head, rows = report_rows(run)
    assert rows["preempted"][head.index("Failures")] == "signal, -"
    assert rows["ok"][head.index("Failures")] == "—"  # the report's word for none

    # Recovery says the same, in the same words.
    survey = recover_cli(str(run.dir), "--dry-run", "--verbose")
    assert survey.returncode == 0, survey.stderr
    (line,) = [line for line in survey.stdout.splitlines() if line.startswith("preempted ")]
    assert line.split()[1:4] == ["completed", "signal,", "-"], survey.stdout


def test_a_case_killed_then_failing_shows_both_classes_in_order(prefect_harness, tmp_path: Path, capsys) -> None:
    code, out, run = run_suite(tmp_path, "attempt_twice", ["twice", "ok"], capsys)

    assert code == 1, out
    head, rows = summary_table(out)
    assert head[4] == "failures", out
    assert rows["twice"][1] == "failed" and rows["twice"][4:6] == ["signal,", "exit"], out
    reason = " ".join(rows["twice"][6:])
    assert reason.startswith("attempt 2: exit code 3") and "[" not in reason, out  # the classes: in their column

    cases = cases_artifact("attempt_twice")
    assert (cases["twice"]["status"], cases["twice"]["failures"]) == ("failed", "signal, exit")
    assert list(cases)[0] == "twice"  # what failed leads the table
    run_md = artifact(f"{artifact_key('attempt_twice')}-run")
    (line,) = [line for line in run_md.splitlines() if "**twice**" in line]  # a list, no column: the classes follow
    assert line.strip().startswith("- **twice** failed: attempt 2: exit code 3") and line.endswith(" [signal, exit]")

    head, rows = report_rows(run)
    assert rows["twice"][head.index("Failures")] == "signal, exit"


def test_without_a_failed_attempt_there_is_no_failures_column(prefect_harness, tmp_path: Path, capsys) -> None:
    code, out, run = run_suite(tmp_path, "attempt_none", ["ok"], capsys)

    assert code == 0, out
    head, _ = summary_table(out)
    assert "failures" not in head, out
    assert "failures" not in cases_artifact("attempt_none")["ok"]
    assert "Failures" not in report_rows(run)[0]
