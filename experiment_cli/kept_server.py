"""A local Prefect server that outlives the commands, and that every later command finds.

    python -m experiment_cli.kept_server start     # make server: prints the UI's address
    python -m experiment_cli.kept_server status
    python -m experiment_cli.kept_server stop      # make server-stop

Without a server every command starts a temporary one (12-18 s before the first case,
every time) and its runs leave the UI's view when it ends. ``start`` runs ``prefect
server start`` in a session of its own, on 127.0.0.1, with its log in the Prefect home,
and writes what identifies it (host, pid, start time, command line, URL) to
``$PREFECT_HOME/experiment-infra-server.json``. A command with no ``PREFECT_API_URL`` of
its own reads that file and reports to the server it names, if that process is the one
the file names (same host, pid, start time and command) and answers ``/api/health``;
otherwise it starts its temporary server as before. Nothing is exported by hand.

``stop`` signals the server only once its identity is proven, then removes the file.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlsplit

from experiment_infra.files.atomic import atomic_write_text
from experiment_infra.processes.process import pid_alive, proc_start, running_command

from .prefect_settings import API_URL, recorder_batch

__all__ = ["find", "main", "record_path"]

RECORD_NAME = "experiment-infra-server.json"
LOG_NAME = "experiment-infra-server.log"
DEFAULT_PORT = 4200  # Prefect's own default: the address its documentation and users expect
START_SECONDS = 300.0  # a first start on a new Prefect home migrates its database (15-20 s here)
STOP_GRACE_SECONDS = 10.0


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()


def record_path() -> Path:
    return prefect_home() / RECORD_NAME


def _read_record() -> dict[str, Any] | None:
    try:
        data = json.loads(record_path().read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _proven(record: dict[str, Any]) -> bool:
    """The process the record names is the server it started: same host, pid, start time, argv."""
    pid = record.get("pid")
    return (
        isinstance(pid, int)
        and record.get("host") == socket.gethostname()
        and pid_alive(pid)
        and proc_start(pid) == record.get("pid_start")
        and running_command(pid) == record.get("command")
    )


def _healthy(api_url: str, timeout: float) -> bool:
    parts = urlsplit(api_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)
    try:
        conn.request("GET", f"{parts.path.rstrip('/')}/health")
        return conn.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def find(timeout: float = 2.0) -> str | None:
    """The API URL of the kept server, when one runs and answers; None otherwise."""
    record = _read_record()
    if record is None or not _proven(record):
        return None
    url = record.get("api_url")
    return url if isinstance(url, str) and _healthy(url, timeout) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", DEFAULT_PORT))
            return DEFAULT_PORT
        except OSError:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


def start() -> int:
    url = find()
    if url is not None:
        print(f"Prefect server already running: UI {url.removesuffix('/api')} (stop it with: make server-stop)")
        return 0
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != API_URL}
    # Triggers stay on (automations made in its UI must fire); the recorder writes in batches.
    env.update(recorder_batch())
    log_path = home / LOG_NAME
    with open(log_path, "ab") as log:
        # A session of its own: the terminal's Ctrl-C and the end of this command leave it running.
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True)
    api_url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + START_SECONDS
    while not _healthy(api_url, 5.0):
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:
                proc.terminate()
            print(f"error: the Prefect server did not start (see {log_path})", file=sys.stderr)
            return 2
        time.sleep(0.5)
    record = {
        "api_url": api_url, "ui_url": f"http://127.0.0.1:{port}", "host": socket.gethostname(), "pid": proc.pid,
        "pid_start": proc_start(proc.pid), "command": running_command(proc.pid), "log": str(log_path),
    }
    atomic_write_text(record_path(), json.dumps(record, indent=2) + "\n")
    print(f"Prefect server running: UI http://127.0.0.1:{port}")
    print("Every command on this machine (same PREFECT_HOME) now reports to it; stop it with: make server-stop")
    return 0


def stop() -> int:
    record = _read_record()
    if record is None:
        print("no kept Prefect server is recorded")
        return 0
    if not _proven(record):
        # Not provably ours (it ended, or the pid now belongs to another process): touch nothing.
        record_path().unlink(missing_ok=True)
        print("the kept Prefect server is not running (its record is removed)")
        return 0
    # Its own session (start): the group is the server and the web server it runs, nothing else.
    pid = int(record["pid"])
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid) and _proven(record):
        os.killpg(pid, signal.SIGKILL)
    record_path().unlink(missing_ok=True)
    print(f"stopped the Prefect server at {record.get('ui_url')}")
    return 0


def status() -> int:
    url = find()
    if url is None:
        print("no kept Prefect server is running (start one with: make server)")
        return 1
    print(f"Prefect server running: UI {url.removesuffix('/api')}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    verbs = {"start": start, "stop": stop, "status": status}
    if len(args) != 1 or args[0] not in verbs:
        print("error: usage: python -m experiment_cli.kept_server start|status|stop", file=sys.stderr)
        return 2
    return verbs[args[0]]()


if __name__ == "__main__":
    sys.exit(main())
