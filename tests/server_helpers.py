"""A real ``prefect server start`` process for the tests marked ``server``, and how to talk to it.

The server gets a free loopback port and its own PREFECT_HOME (its SQLite database
lives there). Flows under test run in subprocesses with PREFECT_API_URL pointing at
it: this test process stays on the session harness of conftest.py, so it reads the
server back through a client built for that URL (``client_for``), never through
the process-wide settings.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from conftest import PYTHON, REPO_ROOT

START_TIMEOUT_SECONDS = 240.0  # ~10-20 s here; a loaded 2-core machine can be far slower
RUN_TIMEOUT_SECONDS = 600.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PrefectServer:
    url: str  # the API URL: http://127.0.0.1:PORT/api (the UI is at PORT/)
    home: Path
    log: Path
    proc: subprocess.Popen[bytes]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a subprocess that reports to this server."""
        return {**os.environ, "PREFECT_API_URL": self.url, **extra}

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return response.status == 200 and json.loads(response.read() or b"null") is not None
        except (OSError, ValueError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def start_server(home: Path, timeout: float = START_TIMEOUT_SECONDS) -> PrefectServer:
    """``prefect server start`` on a free loopback port; returns once /api/health answers."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = home / "server.log"
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # The UI is served (the browser test reads it); on a port other than 4200 its
        # pages must be told where the API is, or they call port 4200.
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    }
    env.pop("PREFECT_API_URL", None)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(PYTHON).with_name("prefect")), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    server = PrefectServer(f"http://127.0.0.1:{port}/api", home, log, proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prefect server exited with {proc.returncode}:\n{server.log_tail()}")
        if server.healthy():
            return server
        time.sleep(1.0)
    stop_server(server)
    raise RuntimeError(f"prefect server did not answer within {timeout:.0f} s:\n{server.log_tail()}")


def stop_server(server: PrefectServer) -> None:
    """SIGTERM the server's process group (uvicorn and its services), SIGKILL if it lingers."""
    import signal

    if server.proc.poll() is not None:
        return
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.proc.wait(timeout=30)


@contextmanager
def client_for(server: PrefectServer) -> Iterator[Any]:
    """A synchronous Prefect client of ``server`` (this process's own settings untouched)."""
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(server.url) as client:
        yield client


def run_py(server: PrefectServer | None, *args: str | Path, env: dict[str, str] | None = None,
           timeout: float = RUN_TIMEOUT_SECONDS, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` as a user runs it, reporting to ``server`` (None: no PREFECT_API_URL)."""
    base = server.env() if server is not None else {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    return subprocess.run(
        [PYTHON, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})},
    )


def show(proc: subprocess.CompletedProcess[str]) -> str:
    """A failed command's output, for assertion messages."""
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"


__all__ = ["PrefectServer", "client_for", "free_port", "run_py", "show", "start_server", "stop_server"]


def finish(proc: subprocess.Popen[str]) -> subprocess.CompletedProcess[str]:
    """Wait for a command started with pipes; what it printed, as ``subprocess.run`` gives it."""
    out, err = proc.communicate(timeout=600)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def attempt_record(case: Any, attempt: int) -> Any:
    """Attempt ``attempt``'s run record of ``case`` (CasePaths): the case's own, or the one set aside in .attempts/."""
    from experiment_infra.records import RunRecord, load_record

    now = load_record(case.run_record, RunRecord)
    return now if now.attempt == attempt else load_record(case.attempt_dir(attempt) / case.run_record.name, RunRecord)
