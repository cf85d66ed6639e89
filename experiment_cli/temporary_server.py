"""Prefect's temporary server, started by a command line before Prefect is imported.

With no ``PREFECT_API_URL``, Prefect starts a temporary local server at the first API
call of a flow run: after ``import prefect`` and the import of the server's own module
in this process (seconds of CPU on a small machine), so a command pays both and then
the server's 15-20 s start-up (its database migrations, on a new Prefect home) one
after the other. Started here instead, the server starts while this process imports
Prefect and does its own pre-flow work, and this process never imports the server.

It is the server Prefect would start, started the way Prefect starts it (uvicorn on
``prefect.server.api.server:create_app``, UI off, ``PREFECT__SERVER_EPHEMERAL``), on
the same Prefect home, so its runs are in the same database the UI shows later. The
differences: the socket is bound here first (a free port the kernel chose, handed to
uvicorn as a file descriptor: no race for a port), the server dies with this process
(``process.dying_with_parent``: a killed command leaves no server behind), and this
process points its ``PREFECT_API_URL`` at it, so Prefect uses it as it would any
server. It is stopped when this process exits, after Prefect's own exit handlers
(which flush the last logs and events to it) have run. And it is lighter per case
(``server_settings``): its task-run recorder writes task runs in batches, not one
database transaction per event, and it evaluates no automation triggers when its
database holds no automation.

Only when Prefect would start a temporary server itself: no ``PREFECT_API_URL`` in
the environment or the active profile, temporary servers allowed, and no Prefect
settings file (``prefect.toml``, ``pyproject.toml``'s ``[tool.prefect]``, ``.env``) in
the working directory that could say otherwise (read only by Prefect itself; then
Prefect decides, as before).
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import importlib.util
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from experiment_infra.errors import EXIT_FAILED
from experiment_infra.processes.interrupt import INTERRUPTED_EXIT_CODE, STOP_GRACE_SECONDS, request_stop, stop_requested, wait_stopped
from experiment_infra.processes.process import dying_with_parent

from .prefect_settings import (
    API_URL, STARTUP_SETTING, configured, prefect_home, profile_settings, recorder_batch, startup_failure,
)

__all__ = ["TemporaryServer", "automations_possible", "current", "server_settings", "start"]

ALLOW_SETTING = "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE"
UI_URL = "PREFECT_UI_URL"
DEFAULT_STARTUP_SECONDS = 20.0  # Prefect's own default for STARTUP_SETTING
SERVER_STOP_GRACE_SECONDS = 5.0  # as Prefect's: terminate, then kill
_FALSE = {"0", "false", "no", "off"}

# Settings of the temporary server only (a kept server is the user's), each unless the
# environment or the profile sets it; benchmarks/bench_scale.py has the figures.
# Prefect's reactive triggers match every event against the automations (another 15 ms
# of CPU per case); off only when the database holds none: nothing could fire.
TRIGGERS_SETTING = "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED"
_DATABASE_SETTINGS = ("PREFECT_SERVER_DATABASE_", "PREFECT_API_DATABASE_")


class TemporaryServer:
    """A temporary Prefect server this process started (at most one per process)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc, self.port = proc, port
        self.started = time.monotonic()
        self.ready = False
        self.stopping = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _healthy(self, timeout: float) -> bool:
        # The socket listens from the start: a request waits in its backlog until the
        # server serves, so one request with a long timeout sees the server come up.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", "/api/health")
            return conn.getresponse().status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def wait_ready(self, timeout: float) -> None:
        """Until the server answers ``/health``; ServiceError naming the fix when it does
        not within ``timeout`` seconds of its start (as Prefect counts), or exits."""
        deadline = self.started + timeout
        while not self.ready:
            left = deadline - time.monotonic()
            code = self.proc.poll()
            if left <= 0 or code is not None:
                self.stop()
                raise startup_failure(f"{timeout:g}", "" if code is None else f" (it exited with code {code})")
            if self._healthy(min(left, 5.0)):
                self.ready = True
            else:
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))

    def watch(self) -> None:
        """From now on, a server that exits before this command stops it (killed, out of
        memory) ends the command instead of leaving it hanging on calls nobody answers:
        the cases are stopped and record their ends (``interrupt``), then it exits."""
        threading.Thread(target=self._watch, name="watch-temporary-server", daemon=True).start()

    def _watch(self) -> None:
        code = self.proc.wait()
        if self.stopping:
            return
        asked = stop_requested()
        print(
            f"error: Prefect's temporary server exited (code {code}) before this command; stopping the running cases "
            "(each records its end) and exiting; the run directory holds every case's record "
            "(rebuild its reports with flows/report.py, continue it with --resume)",
            file=sys.stderr, flush=True,
        )
        request_stop(asked or "SIGTERM", signal.SIGTERM)
        wait_stopped(STOP_GRACE_SECONDS + 5.0)
        sys.stderr.flush()
        os._exit(INTERRUPTED_EXIT_CODE if asked else EXIT_FAILED)

    def stop(self) -> None:
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=SERVER_STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


_current: TemporaryServer | None = None


def current() -> TemporaryServer | None:
    """The temporary server this process started, if any."""
    return _current


def startup_seconds() -> float:
    """The start-up limit Prefect would apply (the environment's; ``prepare_prefect`` has
    put the generous default there unless the user's profile sets one, which then holds)."""
    value = configured(STARTUP_SETTING)
    try:
        return float(value) if value else DEFAULT_STARTUP_SECONDS
    except ValueError:
        return DEFAULT_STARTUP_SECONDS


def _settings_files_here() -> bool:
    """A settings file Prefect reads from the working directory (it may set the API URL)."""
    cwd = Path.cwd()
    if (cwd / "prefect.toml").is_file() or (cwd / ".env").is_file():
        return True
    try:
        return "tool.prefect" in (cwd / "pyproject.toml").read_text(errors="replace")
    except OSError:
        return False


def automations_possible(home: Path) -> bool:
    """Whether the temporary server's database may hold an automation: False only for
    Prefect's default SQLite file in ``home`` when it is absent (a new home) or has an
    empty automation table; True for another database or anything unreadable."""
    if any(k.startswith(_DATABASE_SETTINGS) for k in [*os.environ, *profile_settings()]):
        return True  # another database (or one set up differently): not ours to read
    db = home / "prefect.db"
    if not db.exists():
        return False
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=5)) as conn:
            return conn.execute("SELECT 1 FROM automation LIMIT 1").fetchone() is not None
    except sqlite3.Error:
        return True


def server_settings() -> dict[str, str]:
    """The settings the temporary server gets beside Prefect's, each unless the
    environment or the profile sets it: the recorder's batch, as every server this
    project starts, and no triggers where no automation could fire."""
    out = recorder_batch()  # a kept server gets it too
    if configured(TRIGGERS_SETTING) is None and not automations_possible(prefect_home()):
        out[TRIGGERS_SETTING] = "false"
    return out


def wanted() -> bool:
    """Whether Prefect would start a temporary server for this process's flow runs."""
    if configured(API_URL):
        return False
    allowed = configured(ALLOW_SETTING) or "true"
    return allowed.strip().lower() not in _FALSE and not _settings_files_here()


def start() -> TemporaryServer | None:
    """Start the temporary server now, before Prefect is imported, and point this process
    at it; None when Prefect would not start one, or Prefect is not installed (then
    Prefect does what it always does)."""
    global _current
    if _current is not None:
        return _current
    if "prefect" in sys.modules or not wanted():
        return None  # imported already: its settings are read, PREFECT_API_URL would not be seen
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    app_dir = str(Path(list(spec.submodule_search_locations)[0]).parent)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        argv = [
            sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
            "--fd", str(sock.fileno()), "--log-level", "error", "--lifespan", "on",
        ]
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        env.update(server_settings())
        # Its own session: a terminal's Ctrl-C reaches this command, which stops its cases and
        # still reports to the server; the server dies with this process all the same.
        proc = subprocess.Popen(dying_with_parent(argv), pass_fds=(sock.fileno(),), env=env, start_new_session=True)
    except OSError:
        return None  # Prefect will start its own, as before
    finally:
        sock.close()  # the server holds its own copy
    _current = TemporaryServer(proc, port)
    # Registered before Prefect is imported, so it runs after Prefect's exit handlers.
    atexit.register(_current.stop)
    os.environ[API_URL] = _current.api_url
    # No UI is served (as on Prefect's own temporary server), so no "View at" links to it.
    if configured(UI_URL) is None:
        os.environ[UI_URL] = ""
    print(f"Starting Prefect's temporary server on http://127.0.0.1:{port} (it stops with this command)", file=sys.stderr)
    return _current
