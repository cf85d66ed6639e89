"""`make server`: a Prefect server that outlives commands, found by every later command
without an exported PREFECT_API_URL, and stopped only once its identity is proven."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import socket
import urllib.request
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT, wait_for
from suite_factory import make_suite

from experiment_infra.processes.process import pid_alive, proc_start

pytestmark = [pytest.mark.server, pytest.mark.slow]
KEPT = [PYTHON, "-m", "experiment_cli.kept_server"]


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return {**env, "PREFECT_HOME": str(home), "PYTHONPATH": str(REPO_ROOT)}


def kept(verb: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KEPT, verb], env=env_for(home), capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)


def flow_run_names(api_url: str) -> list[str]:
    request = urllib.request.Request(
        f"{api_url}/flow_runs/filter", data=b"{}", headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [run["name"] for run in json.loads(response.read())]


def completed_task_runs(api_url: str) -> int:
    body = json.dumps({"task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}).encode()
    request = urllib.request.Request(
        f"{api_url}/task_runs/count", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(json.loads(response.read()))


def test_commands_find_the_kept_server_and_stop_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    started = kept("start", home)
    try:
        assert started.returncode == 0, started.stderr
        assert "Prefect server running: UI http://127.0.0.1:" in started.stdout
        record = json.loads((home / "experiment-infra-server.json").read_text())
        assert pid_alive(record["pid"])
        assert kept("status", home).returncode == 0
        assert "already running" in kept("start", home).stdout  # a second start reuses it

        suite = make_suite(tmp_path / "s", name="kept")
        done = subprocess.run(
            [PYTHON, str(suite), "--results-root", str(tmp_path / "results")],
            env=env_for(home), capture_output=True, text=True, timeout=600, cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "temporary server" not in done.stderr  # it reported to the kept one
        assert any(name.startswith("kept ") for name in flow_run_names(record["api_url"]))
        # Its task-run recorder writes in batches (a transaction per event fell minutes
        # behind on 1,000 cases), flushed every few seconds: the cases show up Completed.
        environ = Path(f"/proc/{record['pid']}/environ").read_bytes().split(b"\0")
        assert b"PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE=100" in environ
        assert not any(v.startswith(b"PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED=") for v in environ)  # automations fire
        wait_for(lambda: completed_task_runs(record["api_url"]) >= 3, 60, "the cases' task runs to be Completed")
    finally:
        stopped = kept("stop", home)
    assert stopped.returncode == 0 and "stopped the Prefect server" in stopped.stdout
    wait_for(lambda: not pid_alive(record["pid"]), 30, "the server to exit")
    assert not (home / "experiment-infra-server.json").exists()
    assert kept("status", home).returncode == 1


def test_stop_never_signals_a_process_it_cannot_prove_is_the_server(tmp_path: Path) -> None:
    home = tmp_path / "prefect-home"
    home.mkdir()
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        # A record naming a live process that is not the server (another start time, another command).
        record = {
            "api_url": "http://127.0.0.1:9/api", "ui_url": "http://127.0.0.1:9", "host": socket.gethostname(),
            "pid": bystander.pid, "pid_start": str(int(proc_start(bystander.pid) or 0) + 1),
            "command": [sys.executable, "-m", "prefect", "server", "start"],
        }
        (home / "experiment-infra-server.json").write_text(json.dumps(record))

        stopped = kept("stop", home)

        assert stopped.returncode == 0 and "not running" in stopped.stdout
        assert bystander.poll() is None  # alive: never signalled
        assert not (home / "experiment-infra-server.json").exists()
    finally:
        bystander.kill()
        bystander.wait()
