"""The README's commands work exactly as written, from a fresh clone.

The rule: every fenced ```bash block of README.md runs, in README order, as one
``bash -euo pipefail`` script, unless the line just before its fence is an HTML comment
starting with ``<!-- not run:`` followed by the reason (a command that would start this test
again, a server that outlives it); of those, each ``make`` line must name targets that
``make -n`` knows. Python and other blocks are code to read, never run.

It runs in a fresh copy of the repository (the files git tracks plus the untracked ones it
does not ignore, committed to a new git repository, as a clone is) whose ``.venv`` is this
test's own virtual environment (``source .venv/bin/activate`` activates it for real), with
``PYTHONPATH`` at the copy's root (what ``make setup``'s ``.pth`` file does for a clone) and
the session's Prefect server. The daily loop (dry run, run, resume, report, compare) must be among the
blocks that run, and what it leaves on disk is checked: two run directories of the example
suite, every case completed, the first one's report written, the comparison naming both.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, git, shared_server_env
from prerequisites import missing

FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: \S.*-->$")
DAILY_LOOP = ("suite_sweep.py --dry-run", "suite_sweep.py -p", "--resume", "flows/report.py", "flows/compare.py")


def bash_blocks(readme: str) -> list[tuple[str, bool]]:
    """Each bash block's text, and whether it runs (no ``<!-- not run: ... -->`` before it)."""
    blocks: list[tuple[str, bool]] = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        opened = FENCE.match(lines[i])
        if not opened or not opened.group(1):
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == "```")
        if opened.group(1) == "bash":
            before = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
            if before.startswith("<!-- not run"):
                assert NOT_RUN.match(before), f"README line {i}: a `not run` comment must give its reason: {before}"
            blocks.append(("\n".join(lines[i + 1 : end]), not before.startswith("<!-- not run")))
        i = end + 1
    return blocks


def fresh_clone(dest: Path) -> Path:
    """The repository's files as a clone would have them, committed; ``.venv`` this venv."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        src = REPO_ROOT / name
        if src.is_file() and not src.is_symlink():  # a file deleted but not yet committed is not in a clone
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "clone")
    if sys.prefix == sys.base_prefix:
        missing("the README's commands need the project's virtual environment (make setup); this Python is not in one")
    (dest / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    return dest


def test_the_readme_blocks_run_as_written_from_a_fresh_clone(tmp_path: Path) -> None:
    blocks = bash_blocks((REPO_ROOT / "README.md").read_text())
    script = "\n".join(text for text, runs in blocks if runs)
    for command in DAILY_LOOP:
        assert command in script, f"the README's daily loop must run in this test: no block that runs has {command!r}"

    clone = fresh_clone(tmp_path / "clone")
    env = shared_server_env(PYTHONPATH=str(clone))
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"README commands failed (exit {done.returncode}):\n{script}\n---\n{output[-4000:]}"
    assert "dry run: would create" in output

    runs = sorted(p for p in (clone / "results" / "sweep").iterdir() if p.is_dir())
    assert len(runs) == 2, f"two runs (the dry run and the resume add no run directory): {runs}"
    for run in runs:
        manifest = json.loads((run / "manifest.json").read_text())
        for case in manifest["cases"]:
            record = json.loads((run / case["variant_name"] / "run_record.json").read_text())
            assert record["exit_code"] == 0, f"{case['variant_name']}: {record}"
            assert (run / case["variant_name"] / "metrics.json").is_file()
    # The blocks left out still name real targets: `make -n` (print, run nothing) knows each.
    for text, runs_here in blocks:
        for line in text.splitlines():
            if not runs_here and line.startswith("make "):
                targets = line.split("#")[0].split()[1:]
                known = subprocess.run(["make", "-n", *targets], cwd=clone, capture_output=True, text=True)
                assert known.returncode == 0, f"README: {line!r}: {known.stderr}"
    assert (runs[0] / "report.md").is_file() and (runs[0] / "metrics.png").is_file()
    assert runs[0].name in output and runs[1].name in done.stdout, "compare names both runs"


def test_a_block_marked_not_run_is_left_out() -> None:
    readme = "x\n<!-- not run: starts a server -->\n```bash\nprefect server start\n```\n\n```bash\nmake example\n```\n```python\nx = 1\n```\n"
    assert bash_blocks(readme) == [("prefect server start", False), ("make example", True)]
    with pytest.raises(AssertionError, match="must give its reason"):
        bash_blocks("<!-- not run -->\n```bash\nls\n```\n")
