"""Shared test set-up: an isolated PREFECT_HOME, one real Prefect server per session,
a git identity for CI machines that have none, and copies of the ProjectScylla fixture."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

# Before anything imports Prefect: runs must never touch ~/.prefect.
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="prefect-home-")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
for var, value in {
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}.items():
    os.environ.setdefault(var, value)

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(os.environ.get("SCYLLA_FIXTURE", REPO_ROOT.parent / "shared" / "fixtures" / "scylla-dryrun"))
PYTHON = sys.executable


# The session's server, for the commands tests start as subprocesses: one server
# start per session instead of one per command (15-20 s each on this machine).
SHARED_API_ENV = "TESTS_SHARED_PREFECT_API_URL"


@pytest.fixture(scope="session", autouse=True)
def prefect_harness():
    """One temporary Prefect server (SQLite) for the whole session, shared with subprocesses."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=600):
        os.environ[SHARED_API_ENV] = str(PREFECT_API_URL.value())
        yield
        os.environ.pop(SHARED_API_ENV, None)


def shared_server_env(**extra: str) -> dict[str, str]:
    """The environment of a command a test runs: the session's Prefect server, plus ``extra``."""
    return {**os.environ, "PREFECT_API_URL": os.environ[SHARED_API_ENV], **extra}


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory):
    """A real `prefect server start` process with its own PREFECT_HOME (tests marked `server`)."""
    from server_helpers import start_server, stop_server

    server = start_server(tmp_path_factory.mktemp("prefect-server-home"))
    yield server
    stop_server(server)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def copy_tree_writable(src: Path, dest: Path) -> Path:
    """copytree, then make everything writable (the shared fixture is read-only)."""
    shutil.copytree(src, dest, symlinks=True)
    for root, dirs, files in os.walk(dest):
        for name in dirs + files:
            p = Path(root) / name
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
    Path(dest).chmod(Path(dest).stat().st_mode | stat.S_IWUSR)
    return dest


@pytest.fixture
def scylla_copy(tmp_path: Path) -> Path:
    """A writable copy of ../shared/fixtures/scylla-dryrun (never touch the original)."""
    if not FIXTURE.is_dir():
        pytest.fail(f"fixture not found at {FIXTURE}; set SCYLLA_FIXTURE or clone next to shared/")
    return copy_tree_writable(FIXTURE, tmp_path / "scylla-dryrun")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """An empty git repository with one commit, in a temporary directory."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("test repo\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    return repo


def pytest_terminal_summary(terminalreporter) -> None:
    """The fault suite's figures (tests/faults_helpers.py), when any of its tests ran."""
    helpers = sys.modules.get("faults_helpers")
    if helpers is not None:
        helpers.write_summary(terminalreporter)
