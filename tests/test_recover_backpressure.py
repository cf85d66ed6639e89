"""Back-pressure: a recovery whose Prefect server answers 429/503 retries with backoff and
finishes, and its exit code comes from the files it surveys afterwards, never from an
HTTP call the server lost.

The server is the session's temporary one, behind a loopback proxy (tests/flaky_proxy.py)
that answers 429 or 503 to chosen requests; the recovery is ``python flows/recover.py``
as a user runs it, with PREFECT_API_URL pointing at the proxy.
"""

from __future__ import annotations

import re
from pathlib import Path

from flaky_proxy import FlakyProxy, both, every_nth, first_attempts
from recover_helpers import recover_cli, run_paths
from server_helpers import show

from experiment_infra.recovery.survey import Selection, survey_experiment
from experiment_infra.layout import ExperimentPaths

ALL_RUNS = [("T0", "00", 1)] + [(f"T{i}", "01", 1) for i in range(1, 7)]


def damage(exp_dir: Path) -> None:
    """Every run finished, its three result files gone: a pure regeneration to do."""
    for run in ALL_RUNS:
        p = run_paths(exp_dir, *run)
        for f in (p.agent_result, p.consensus, p.run_result):
            f.unlink()


def assert_every_file_back(exp_dir: Path) -> None:
    for run in ALL_RUNS:
        p = run_paths(exp_dir, *run)
        assert all(f.is_file() for f in (p.agent_result, p.consensus, p.run_result)), run
    counts = survey_experiment(ExperimentPaths(exp_dir), Selection(), cache=None).run_counts()
    assert counts["completed"] == len(ALL_RUNS), counts


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def recover_flow_runs(exp_dir: Path) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    name = f"recover {exp_dir.parent.name}/{exp_dir.name}"
    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


def outcome_call(method: str, path: str) -> bool:
    return (method == "POST" and (path.endswith("/set_state") or path.endswith("/artifacts/"))) or (
        method == "PATCH" and "/flow_runs/" in path
    )


def test_recovery_rides_out_429_and_503_and_finishes(prefect_harness, scylla_copy: Path) -> None:
    damage(scylla_copy)
    # The flow run's creation is refused 6 times (429, Retry-After: 1): one more than
    # Prefect's default 5 retries, so only the recover command's own defaults get it
    # through. Then the first 4 of the calls the flow run's outcome rests on (its state
    # changes, its tags, its artifacts) are answered 503 without Retry-After: the client
    # backs off exponentially (2 s, 4 s, ...) and sends them again.
    rule = both(first_attempts("POST", "/flow_runs/", 6, 429, 1.0), every_nth(1, 4, 503, match=outcome_call))
    with FlakyProxy(api_url(), rule, lifetime=280) as proxy:
        proc = recover_cli(str(scylla_copy), "--status", "results", env={"PREFECT_API_URL": proxy.url})
    assert proc.returncode == 0, show(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, show(proc)
    assert "7 of 7 planned run(s) done" in proc.stdout
    assert_every_file_back(scylla_copy)

    creations = [s.status for s in proxy.seen if s.method == "POST" and s.path.split("?")[0].endswith("/flow_runs/")]
    assert creations[:7] == [429] * 6 + [201]
    rejected = proxy.rejected()
    assert sum(s.status == 503 for s in rejected) == 4
    for r in rejected:  # every refused request was sent again later, and answered
        assert any(s.method == r.method and s.path == r.path and not s.rejected and s.status < 500 and s.at > r.at
                   for s in proxy.seen), r
    (run,) = recover_flow_runs(scylla_copy)
    assert run.state.is_completed(), run.state


def test_a_ui_call_lost_for_good_does_not_fail_the_recovery(prefect_harness, scylla_copy: Path) -> None:
    damage(scylla_copy)
    # The server never takes an artifact, not on any of the client's retries: the
    # recovery's files are still its result. The client's retries stay on (so the real
    # server's own brief 503s, SQLite busy on a loaded machine, are ridden out); the
    # refusals say Retry-After: 0, so the retries of a lost call are spent at once.
    def artifacts_refused(method: str, path: str, body: bytes):
        return (503, 0.0) if method == "POST" and path.split("?")[0].rstrip("/").endswith("/artifacts") else None

    with FlakyProxy(api_url(), artifacts_refused, lifetime=280) as proxy:
        proc = recover_cli(str(scylla_copy), "--status", "results", env={"PREFECT_API_URL": proxy.url})
    assert proc.returncode == 0, show(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, show(proc)
    assert "could not publish the summary table artifact to the Prefect server" in proc.stderr
    assert len([s for s in proxy.rejected() if "/artifacts" in s.path]) >= 3  # table, markdown, report
    assert_every_file_back(scylla_copy)
    (run,) = recover_flow_runs(scylla_copy)
    assert run.state.is_completed(), run.state


def test_exit_code_comes_from_the_files_when_the_final_state_is_lost(prefect_harness, scylla_copy: Path) -> None:
    damage(scylla_copy)
    final = re.compile(rb'"type":\s*"COMPLETED"')

    def completion_refused(method: str, path: str, body: bytes):
        if method == "POST" and re.search(r"/flow_runs/[^/]+/set_state", path) and final.search(body):
            return 503, 0.0  # on every retry too: the final state is lost for good
        return None

    with FlakyProxy(api_url(), completion_refused, lifetime=280) as proxy:
        proc = recover_cli(str(scylla_copy), "--status", "results", env={"PREFECT_API_URL": proxy.url})
    assert proxy.rejected(), "the final state was never sent"
    assert proc.returncode == 0, show(proc)
    assert "the files say: 7 of 7 planned run(s) done" in proc.stdout
    assert "the Prefect server lost this flow run" in proc.stderr and "the outcome above is read from the files" in proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr, show(proc)
    assert_every_file_back(scylla_copy)
