"""The temporary server a command starts before it imports Prefect (experiment_cli/temporary_server.py):
the runs land in the Prefect home's database as on Prefect's own temporary server, nothing
is left running after the command, not even after a SIGKILL, and a user's server wins."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
from pathlib import Path

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
