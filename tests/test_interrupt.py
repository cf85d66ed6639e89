"""Ctrl-C, SIGTERM and the UI's Cancel stop a run: real signals to real commands.

Each test starts a command whose cases sleep, waits until every running case's run
record names its entry point (the observable start), then signals the command's
process group as a terminal's Ctrl-C does. What a user must then see: exit 130, every
running case recorded ``interrupted`` (read back as ``failed`` with that reason), no
case process left, the reports written, the flow run ``Cancelled`` on the server, one
flow run name on the console and in the UI, and the ``--resume`` command to type next.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from conftest import PYTHON, REPO_ROOT, wait_for
from faults_helpers import Marked, alive, wait_gone

from experiment_infra.layout import SuiteRunPaths
from experiment_infra.records import RunRecord, read_record
from experiment_infra.status.rules import CaseStatus, classify_case

pytestmark = pytest.mark.slow

CONFIG = """
from experiment_infra import BaseExperimentConfig


class NapConfig(BaseExperimentConfig):
    seconds: float = 300.0
    ignore_term: bool = False   # hold on through SIGTERM (the waiter's SIGKILL ends it)
"""

ENTRY = """
import signal
import time
from pathlib import Path

from {cfg} import NapConfig

config = NapConfig()
if config.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
(Path(config.output_dir) / "napping").touch()  # from here on, SIGTERM is what the config says
time.sleep(config.seconds)
"""

SUITE = """
from {cfg} import NapConfig

from experiment_infra import ExperimentCase, run_experiments_cli

cases = [{cases}]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="entry.py", experiment_name="naps")
"""


def _suite(where: Path, variants: list[str], **fields: Any) -> Path:
    where.mkdir(parents=True)
    cfg = f"nap_cfg_{uuid.uuid4().hex[:10]}"
    (where / f"{cfg}.py").write_text(CONFIG)
    (where / "entry.py").write_text(textwrap.dedent(ENTRY.format(cfg=cfg)))
    args = ", ".join(f"{k}={v!r}" for k, v in fields.items())
    cases = ", ".join(f"ExperimentCase({v!r}, NapConfig({args}))" for v in variants)
    (where / "suite_naps.py").write_text(SUITE.format(cfg=cfg, cases=cases))
    return where / "suite_naps.py"


def _run_dir(results: Path) -> SuiteRunPaths:
    (run_dir,) = (results / "naps").iterdir()
    return SuiteRunPaths(run_dir)


def _record(run: SuiteRunPaths, variant: str) -> RunRecord | None:
    return read_record(run.case(variant).run_record, RunRecord).record


def _running(results: Path, variants: list[str]) -> SuiteRunPaths | None:
    """The run directory once every one of ``variants`` runs its entry point (its pid recorded)."""
    if not (results / "naps").is_dir() or not any((results / "naps").iterdir()):
        return None
    run = _run_dir(results)
    records = [_record(run, v) for v in variants]
    napping = all((run.case(v).dir / "napping").exists() for v in variants)
    return run if napping and all(r is not None and r.pid is not None for r in records) else None


def _flow_run(name: str) -> Any:
    """The flow run of that name, read back from the session's server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))
    assert len(runs) == 1, f"flow runs named {name!r}: {[r.name for r in runs]}"
    return runs[0]


def _start(marked: Marked, argv: list[str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    # A session of its own, so a signal to its group is what a terminal's Ctrl-C does.
    return marked.popen(*argv, log=log, cwd=cwd, start_new_session=True)


def _check_stopped(run: SuiteRunPaths, variants: list[str], why: str, pids: list[int]) -> None:
    for v in variants:
        record = _record(run, v)
        assert record is not None and record.ended_at is not None, v
        assert record.interrupted == why, (v, record)
        now = classify_case(run.case(v))
        assert now.status is CaseStatus.FAILED and why.lower() in now.reason.lower(), (v, now)
    assert wait_gone(pids, 15) == [], "case processes still alive after the command exited"


@pytest.mark.parametrize("route, signum", [("run_suite", signal.SIGINT), ("suite", signal.SIGTERM)])
def test_a_signal_stops_every_case_records_it_and_prints_the_resume_command(
    tmp_path: Path, prefect_harness, route: str, signum: int
) -> None:
    suite = _suite(tmp_path / "suite", ["a", "b", "c"])
    results = tmp_path / "results"
    marked = Marked(tmp_path / "prefect-home")
    flags = ["-p", "2", "--results-root", str(results)]  # c waits for a free slot: it must never start
    argv = [str(REPO_ROOT / "flows" / "run_suite.py"), "suite_naps.py", *flags] if route == "run_suite" else ["suite_naps.py", *flags]
    log = tmp_path / "command.log"
    proc = _start(marked, argv, log, suite.parent)
    try:
        run = wait_for(lambda: _running(results, ["a", "b"]), 180, "cases a and b to start")
        pids = [_record(run, v).pid for v in ("a", "b")]  # type: ignore[union-attr]
        os.killpg(proc.pid, signum)
        code = proc.wait(timeout=120)
    finally:
        marked.end_all()
    out = log.read_text()
    name = signal.Signals(signum).name
    assert code == 130, out
    _check_stopped(run, ["a", "b"], name, pids)
    assert not run.case("c").run_record.exists(), "a case started after the signal"
    assert run.report_md.is_file(), "the reports of what finished were not written"

    flow_run = _flow_run(f"naps {run.dir.name}")
    assert flow_run.state.is_cancelled(), flow_run.state
    assert f"Beginning flow run 'naps {run.dir.name}'" in out  # one name, on the console and the server
    # The route the user took, their flags, and the run directory to continue.
    script = [str(REPO_ROOT / "flows" / "run_suite.py"), "suite_naps.py"] if route == "run_suite" else ["suite_naps.py"]
    expected = " ".join(["python", *script, *flags, "--resume", str(run.dir)])
    assert f"resume with: {expected}" in out, out


def test_a_second_ctrl_c_exits_at_once_and_the_waiters_still_record_the_ends(tmp_path: Path, prefect_harness) -> None:
    suite = _suite(tmp_path / "suite", ["a", "b"], ignore_term=True)  # they outlast SIGTERM: the waiter's grace
    results = tmp_path / "results"
    marked = Marked(tmp_path / "prefect-home")
    log = tmp_path / "command.log"
    proc = _start(marked, [str(REPO_ROOT / "flows" / "run_suite.py"), "suite_naps.py", "--results-root", str(results)], log, suite.parent)
    try:
        run = wait_for(lambda: _running(results, ["a", "b"]), 180, "the cases to start")
        pids = [_record(run, v).pid for v in ("a", "b")]  # type: ignore[union-attr]
        os.killpg(proc.pid, signal.SIGINT)
        wait_for(lambda: "SIGINT: stopping" in log.read_text(), 60, "the first Ctrl-C to be taken")
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
        # The command is gone while the entry points still hold out in their grace period.
        still = [v for v in ("a", "b") if _record(run, v).ended_at is None]  # type: ignore[union-attr]
        assert code == 130, log.read_text()
        assert still, "the second Ctrl-C waited for the cases"
        wait_for(lambda: all(_record(run, v).ended_at for v in ("a", "b")), 60, "the waiters to record the ends")  # type: ignore[union-attr]
        _check_stopped(run, ["a", "b"], "SIGINT", pids)
    finally:
        marked.end_all()


def test_cancelling_the_flow_run_from_the_api_stops_the_cases(tmp_path: Path, prefect_harness) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    suite = _suite(tmp_path / "suite", ["a", "b"])
    results = tmp_path / "results"
    marked = Marked(tmp_path / "prefect-home")
    log = tmp_path / "command.log"
    proc = _start(marked, [str(REPO_ROOT / "flows" / "run_suite.py"), "suite_naps.py", "--results-root", str(results)], log, suite.parent)
    try:
        run = wait_for(lambda: _running(results, ["a", "b"]), 180, "the cases to start")
        pids = [_record(run, v).pid for v in ("a", "b")]  # type: ignore[union-attr]
        flow_run = _flow_run(f"naps {run.dir.name}")
        with get_client(sync_client=True) as client:  # what the UI's Cancel button does
            client.set_flow_run_state(flow_run.id, Cancelling(), force=True)
        code = proc.wait(timeout=120)
    finally:
        marked.end_all()
    assert code == 130, log.read_text()
    _check_stopped(run, ["a", "b"], "cancelled", pids)
    assert _flow_run(f"naps {run.dir.name}").state.is_cancelled()


def _on_temporary_server(tmp_path: Path, suite: Path, results: Path, log: Path) -> subprocess.Popen[bytes]:
    """``run_suite`` with no PREFECT_API_URL: it starts Prefect's temporary server itself."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1")
    with open(log, "wb") as out:
        return subprocess.Popen(
            [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), "suite_naps.py", "--results-root", str(results)],
            cwd=suite.parent, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )


def test_ctrl_c_with_the_temporary_server_stops_and_never_hangs(tmp_path: Path) -> None:
    """No PREFECT_API_URL: the command starts its temporary server, which the terminal's
    Ctrl-C must not reach (it used to die first and leave the command hanging)."""
    suite = _suite(tmp_path / "suite", ["a", "b"])
    results = tmp_path / "results"
    log = tmp_path / "command.log"
    proc = _on_temporary_server(tmp_path, suite, results, log)
    try:
        run = wait_for(lambda: _running(results, ["a", "b"]), 300, "the cases to start")
        pids = [_record(run, v).pid for v in ("a", "b")]  # type: ignore[union-attr]
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 130, text
    _check_stopped(run, ["a", "b"], "SIGINT", pids)
    assert run.report_md.is_file()
    assert "Finished in state Cancelled" in text and "Unable to connect" not in text, text
    assert "resume with: " in text
    assert not [p for p in pids if alive(p)]


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.isdigit() and stat.rsplit(")", 1)[1].split()[1] == str(pid):
            out.append(int(entry))
    return out


def test_a_temporary_server_that_dies_first_ends_the_command_and_the_cases_record_it(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "suite", ["a", "b"])
    results = tmp_path / "results"
    log = tmp_path / "command.log"
    proc = _on_temporary_server(tmp_path, suite, results, log)
    try:
        run = wait_for(lambda: _running(results, ["a", "b"]), 300, "the cases to start")
        pids = [_record(run, v).pid for v in ("a", "b")]  # type: ignore[union-attr]
        # The server this command started: its child running uvicorn.
        (server,) = [p for p in _children(proc.pid) if b"uvicorn" in Path(f"/proc/{p}/cmdline").read_bytes()]
        os.kill(server, signal.SIGKILL)
        code = proc.wait(timeout=120)  # it used to retry calls nobody answers for minutes
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert code == 1, text
    assert "temporary server exited" in text
    _check_stopped(run, ["a", "b"], "SIGTERM", pids)


HOLD_AGENT = textwrap.dedent(
    """
    # An agent CLI that writes its pid and then works forever (until it is stopped).
    import os, sys, time
    from pathlib import Path

    if sys.argv[1:2] == ["--version"]:
        print("0.1.0 (hold)")
        sys.exit(0)
    Path(os.environ["HOLD_DIR"], "agent.pid").write_text(str(os.getpid()))
    while True:
        time.sleep(0.1)
    """
)


def test_ctrl_c_stops_a_recoverys_agent_rerun_and_records_it(tmp_path: Path, git_repo: Path, prefect_harness) -> None:
    from agent_eval_helpers import make_suite as make_agent_suite

    from experiment_infra.agent_eval import Condition, plan_experiment, start_experiment
    from experiment_infra.records import CommandLog, load_record
    from experiment_infra.status.rules import RunStatus, classify_run

    wrapper = tmp_path / "hold_agent.py"
    wrapper.write_text(HOLD_AGENT)
    held = tmp_path / "held"
    held.mkdir()
    agent = [PYTHON, str(wrapper), "--model", "{model}", "{prompt_file}"]
    suite = make_agent_suite(tmp_path, git_repo, conditions=[Condition("T0", "00", "fake-opus")], judge_models=["fake-opus"],
                             agent_command=agent)
    plan = plan_experiment(suite, results_root=tmp_path / "results")
    start_experiment(plan, 1)  # the experiment directory, no run yet: the recovery runs the agent
    run = plan.exp.run("T0", "00", 1)
    marked = Marked(tmp_path / "prefect-home", HOLD_DIR=str(held))
    log = tmp_path / "recover.log"
    proc = _start(marked, [str(REPO_ROOT / "flows" / "recover.py"), str(plan.exp.dir)], log, REPO_ROOT)
    try:
        pid = int(wait_for(lambda: (held / "agent.pid").exists() and (held / "agent.pid").read_text(), 180, "the agent to start"))
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        marked.end_all()
    out = log.read_text()
    assert code == 130, out
    assert wait_gone([pid], 15) == []
    (entry,) = load_record(run.command_log, CommandLog).commands
    assert entry.exit_code == -signal.SIGTERM and "interrupted (SIGINT)" in (entry.reason or ""), entry
    now = classify_run(run, ["fake-opus"])
    assert now.status is RunStatus.FAILED and "SIGINT" in now.reason, now
    assert f"resume with: python {REPO_ROOT / 'flows' / 'recover.py'} {plan.exp.dir}" in out, out


def test_a_stop_file_stops_a_case_on_another_host_and_keeps_new_ones_from_starting(tmp_path: Path) -> None:
    """Cases on Dask or Slurm workers get no signal from the command: the run's stop file
    (written by the stopped flow on the shared filesystem) stops them the same way."""
    import threading

    from experiment_infra.processes.interrupt import RunInterrupted
    from experiment_infra.running.runner import run_case
    from experiment_infra.suites.suite import load_suite

    suite_path = _suite(tmp_path / "suite", ["a", "b"])
    suite = load_suite(suite_path)
    run = SuiteRunPaths(tmp_path / "run")
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(run_case(suite.cases[0], run.case("a"), suite.entry_point)))
    worker.start()
    wait_for(lambda: (run.case("a").dir / "napping").exists() and _record(run, "a") and _record(run, "a").pid, 180, "case a to run")
    pid = _record(run, "a").pid  # type: ignore[union-attr]

    run.stop_file.write_text("SIGINT\n")  # what the stopped flow writes
    worker.join(timeout=120)

    assert not worker.is_alive() and outcome[0].status is CaseStatus.FAILED
    _check_stopped(run, ["a"], "SIGINT", [pid])
    with pytest.raises(RunInterrupted):
        run_case(suite.cases[1], run.case("b"), suite.entry_point)
    assert not run.case("b").run_record.exists()  # never started
