"""The temporary server a command starts before it imports Prefect (experiment_cli/temporary_server.py):
the runs land in the Prefect home's database as on Prefect's own temporary server, nothing
is left running after the command, not even after a SIGKILL, and a user's server wins."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, wait_for

STARTING = re.compile(r"Starting Prefect's temporary server on http://127\.0\.0\.1:(\d+) \(it stops with this command\)")


def fresh_env(home: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PREFECT_HOME": str(home), **extra}
    env.pop("PREFECT_API_URL", None)  # no server configured: the command starts one
    return env


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_a_report_on_a_fresh_home_runs_on_the_temporary_server_and_leaves_nothing_running(
    scylla_copy: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    done = subprocess.run(
        [PYTHON, "flows/report.py", str(scylla_copy)], cwd=REPO_ROOT, env=fresh_env(home),
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    started = STARTING.search(done.stderr)
    assert started, done.stderr[-3000:]
    assert not listening(int(started.group(1)))  # stopped with the command
    assert "View at http" not in done.stderr  # no link to a UI that is not served
    # The flow run is in the home's database, where `prefect server start` shows it later.
    with sqlite3.connect(home / "prefect.db") as db:
        rows = db.execute("SELECT flow_run.name, flow_run.state_type FROM flow_run").fetchall()
    assert rows == [(f"report {scylla_copy.parent.name}/{scylla_copy.name}", "COMPLETED")]


def test_a_killed_command_takes_its_temporary_server_with_it(scylla_copy: Path, tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [PYTHON, "flows/report.py", str(scylla_copy)], cwd=REPO_ROOT, env=fresh_env(tmp_path / "home"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # the first thing it says
        started = STARTING.search(line)
        assert started, line
        port = int(started.group(1))
        assert listening(port)  # the server holds the socket from the start
        proc.send_signal(signal.SIGKILL)  # no exit handler runs
        proc.wait(timeout=30)
        wait_for(lambda: not listening(port), 30, "the temporary server to die with its command")
    finally:
        proc.kill()
        proc.wait()


def test_a_configured_server_is_used_and_none_is_started(scylla_copy: Path, tmp_path: Path) -> None:
    """PREFECT_API_URL set: that server, checked before anything runs; no temporary one."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    done = subprocess.run(
        [PYTHON, "flows/report.py", str(scylla_copy)], cwd=REPO_ROOT,
        env={**fresh_env(tmp_path / "home"), "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"},
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert [line for line in done.stderr.splitlines() if line.startswith("error:")] == [
        f"error: PREFECT_API_URL=http://127.0.0.1:{port}/api does not answer ([Errno 111] Connection refused); "
        "start it (prefect server start) or unset PREFECT_API_URL to run on a temporary local server"
    ]
    assert not STARTING.search(done.stderr)


def test_every_case_of_a_suite_run_on_the_temporary_server_is_in_its_database_with_its_state_and_logs(
    tmp_path: Path,
) -> None:
    """The temporary server writes task runs in batches (SERVER_DEFAULTS): after the command,
    every case is still a task run in its final state, with its output and its end in the log,
    and the run's artifacts are there, as `prefect server start` on that home shows them."""
    from suite_factory import case_src, make_suite

    names = [f"c{i}" for i in range(6)]
    suite = make_suite(tmp_path / "exp", [case_src(n, fail_times=9 if n == "c5" else 0) for n in names], name="batched")
    home = tmp_path / "home"
    done = subprocess.run(
        [PYTHON, str(REPO_ROOT / "flows" / "run_suite.py"), suite.name, "--results-root", str(tmp_path / "results")],
        cwd=suite.parent, env={**fresh_env(home), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 1, done.stderr[-3000:]  # c5 failed
    assert STARTING.search(done.stderr), done.stderr[-3000:]
    with sqlite3.connect(home / "prefect.db") as db:
        states = dict(db.execute("SELECT name, state_type FROM task_run WHERE name LIKE 'c%'").fetchall())
        logs = db.execute(
            "SELECT task_run.name, log.message FROM log JOIN task_run ON log.task_run_id = task_run.id"
        ).fetchall()
        artifacts = {key for (key,) in db.execute("SELECT key FROM artifact WHERE key IS NOT NULL")}
    assert states == {**{n: "COMPLETED" for n in names[:5]}, "c5": "FAILED"}
    for name in names:
        said = [message for who, message in logs if who == name]
        assert f"hello from {name} try 1" in said, said
        assert any(m.startswith("Finished in state") for m in said), said
    assert {"batched-progress", "batched-cases"} <= artifacts, artifacts


def _copy_db(source: str, home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(source)) as src, contextlib.closing(sqlite3.connect(home / "prefect.db")) as dst:
        src.backup(dst)  # a consistent copy of a live WAL database
    return home


def test_the_temporary_server_evaluates_triggers_only_where_an_automation_could_fire(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Automation triggers cost the temporary server CPU on every event: they are off for a
    new home or a database with no automation, on as soon as the database holds one, and
    the user's own setting (or another database) is left alone."""
    from prefect.automations import Automation, DoNothing, EventTrigger
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL

    from experiment_cli import temporary_server

    for name in [k for k in os.environ if k.startswith(("PREFECT_SERVER_", "PREFECT_API_DATABASE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(tmp_path / "no-profiles.toml"))
    off = {"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false", "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100"}

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "new-home"))
    assert temporary_server.server_settings() == off

    source = str(PREFECT_API_DATABASE_CONNECTION_URL.value()).split(":///", 1)[1]  # the session's server
    automation = Automation(name="tell me", trigger=EventTrigger(expect={"prefect.flow-run.Failed"}), actions=[DoNothing()])
    automation_id = automation.create().id
    try:
        with_one = _copy_db(source, tmp_path / "with-one")
    finally:
        Automation.read(id=automation_id).delete()
    monkeypatch.setenv("PREFECT_HOME", str(with_one))
    assert temporary_server.server_settings() == {"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE": "100"}

    with contextlib.closing(sqlite3.connect(with_one / "prefect.db")) as db, db:
        db.execute("DELETE FROM automation")
    assert temporary_server.server_settings() == off  # none left: nothing could fire

    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED", "true")
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE", "1")
    assert temporary_server.server_settings() == {}  # the user's settings win
    monkeypatch.delenv("PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql+asyncpg://db.example/prefect")
    assert temporary_server.server_settings() == {}  # not a database it can read: triggers stay on
