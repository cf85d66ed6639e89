#!/usr/bin/env python3
"""Build ``task_repo.bundle`` (the demo's task repository) from ``task_files/``.

The commit has a fixed author, committer and date, so the same files always give
the same sha (``TASK_COMMIT`` in the suite file). A git bundle is a single file that
``git clone`` reads like a remote: the demo runs offline with no repository to host.

    python experiments/agent_eval_demo/make_task_repo.py   # prints the commit sha
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILES = HERE / "task_files"
BUNDLE = HERE / "task_repo.bundle"
FIXED = {
    "GIT_AUTHOR_NAME": "Demo Task",
    "GIT_AUTHOR_EMAIL": "demo@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_NAME": "Demo Task",
    "GIT_COMMITTER_EMAIL": "demo@example.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
}


def build(bundle: Path = BUNDLE) -> str:
    env = {**os.environ, **FIXED, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

    def git(*args: str, cwd: Path) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()

    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        shutil.copytree(FILES, repo)
        git("init", "-q", "-b", "main", cwd=repo)
        git("add", "-A", cwd=repo)
        git("commit", "-q", "--no-gpg-sign", "-m", "Hello World task", cwd=repo)
        sha = git("rev-parse", "HEAD", cwd=repo)
        git("bundle", "create", "-q", str(bundle), "main", cwd=repo)
    return sha


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else BUNDLE))
