"""Task repositories and run workspaces (GitPython).

Each experiment clones the task repository once into ``repo/``; every run gets a
``git worktree`` of that clone at the task commit (``run_NN/workspace``), so runs
never see each other's changes and a judge can diff exactly what the agent did.
"""

from __future__ import annotations

import fcntl
import shlex
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import git

from ..files.atomic import atomic_write_text
from ..layout import AgentRunPaths, ExperimentPaths, SubtestPaths
from .spec import AgentEvalError, is_url

MAX_DIFF_CHARS = 60_000
MAX_NEW_FILE_CHARS = 8_000


class WorkspaceError(AgentEvalError):
    """A task repository or commit that cannot give a run its workspace."""


def _git_message(exc: git.GitCommandError) -> str:
    text = (exc.stderr or str(exc)).strip().replace("\n", " ")
    return text.removeprefix("stderr: ").strip("' ")[:300]


def resolve_commit(repo: str | Path, commit: str) -> str:
    """The full sha of ``commit`` in a local repository or bundle; URLs are checked after cloning."""
    if is_url(str(repo)):
        return commit
    path = Path(repo).expanduser()
    if not path.exists():
        raise WorkspaceError(f"task.repo: {path} does not exist; give a git repository path, bundle or URL")
    if path.is_file():
        return _bundle_commit(path, commit)
    try:
        return git.Repo(path).commit(commit).hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise WorkspaceError(f"task.repo: {path} is not a git repository") from None
    except (git.BadName, ValueError, git.GitCommandError):
        raise WorkspaceError(f"task.commit: {commit!r} is not a commit of {path}; give a sha, tag or branch it has") from None


def _bundle_commit(bundle: Path, commit: str) -> str:
    try:
        heads = git.Git().bundle("list-heads", str(bundle)).splitlines()
    except git.GitCommandError as exc:
        raise WorkspaceError(f"task.repo: {bundle} is not a git bundle ({_git_message(exc)})") from None
    for line in heads:
        sha, _, ref = line.partition(" ")
        if commit in (ref, ref.rsplit("/", 1)[-1]) or (len(commit) >= 7 and sha.startswith(commit)):
            return sha
    raise WorkspaceError(f"task.commit: {commit!r} is not a head of bundle {bundle} (heads: {', '.join(heads)})")


@contextmanager
def _locked(exp: ExperimentPaths) -> Iterator[None]:
    # flock per open file: serialises threads of one process as well as processes.
    exp.dir.mkdir(parents=True, exist_ok=True)
    with open(exp.worktree_lock, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _open_clone(exp: ExperimentPaths, task_repo: str) -> git.Repo:
    if exp.repo.exists():
        try:
            return git.Repo(exp.repo)
        except git.InvalidGitRepositoryError:
            raise WorkspaceError(
                f"{exp.repo}: exists but is not a git repository; move it aside so the task repository can be cloned"
            ) from None
    try:
        return git.Repo.clone_from(str(task_repo), exp.repo)
    except git.GitCommandError as exc:
        raise WorkspaceError(f"task.repo: cannot clone {task_repo} ({_git_message(exc)})") from None


def ensure_clone(exp: ExperimentPaths, task_repo: str, commit: str) -> str:
    """Clone the task repository into ``repo/`` (once); return the commit's full sha."""
    with _locked(exp):
        repo = _open_clone(exp, task_repo)
        try:
            return repo.commit(commit).hexsha
        except (git.BadName, ValueError, git.GitCommandError):
            raise WorkspaceError(f"task.commit: {commit!r} is not a commit of {task_repo}") from None


def _moved_workspaces(paths: AgentRunPaths) -> list[Path]:
    failed = SubtestPaths(paths.dir.parent).failed_dir
    if not failed.is_dir():
        return []
    found = (AgentRunPaths(d).workspace for d in failed.iterdir() if d.is_dir())
    return [w for w in found if w.is_dir() and w.joinpath(".git").is_file()]


def create_workspace(exp: ExperimentPaths, paths: AgentRunPaths, task_repo: str, commit: str) -> Path:
    """``git worktree add --detach run_NN/workspace <commit>``, recorded in ``worktree_create.sh``."""
    sha = ensure_clone(exp, task_repo, commit)
    workspace = paths.workspace.resolve()
    with _locked(exp):
        repo = git.Repo(exp.repo)
        moved = _moved_workspaces(paths)
        try:
            if moved:
                # Earlier attempts moved aside keep working worktrees at their new place,
                # and their old path is free for this one.
                repo.git.worktree("repair", *[str(p.resolve()) for p in moved])
            # -f: a run directory deleted by hand leaves its worktree registered but
            # missing, which git refuses to reuse; a path that exists is still refused.
            repo.git.worktree("add", "-f", "--detach", str(workspace), sha)
        except git.GitCommandError as exc:
            raise WorkspaceError(f"{workspace}: git worktree add failed ({_git_message(exc)})") from None
    atomic_write_text(
        paths.worktree_script,
        "#!/bin/bash\n"
        f"# Worktree: {paths.dir.parent.parent.name}_{paths.dir.parent.name}_{paths.dir.name} @ {workspace}\n"
        f"git -C {shlex.quote(str(exp.repo.resolve()))} worktree add --detach {shlex.quote(str(workspace))} {sha}\n",
    )
    return workspace


def workspace_changes(workspace: Path, commit: str, harness_files: set[str]) -> tuple[list[str], str]:
    """What the agent changed: ``["`path` (created)", ...]`` and a diff (new files shown whole).

    ``harness_files`` (e.g. the CLAUDE.md this project wrote) are not the agent's work.
    """
    try:
        repo = git.Repo(workspace)
        status = repo.git.status("--porcelain", "--untracked-files=all", "--no-renames")
        diff = repo.git.diff(commit, "--", ".", *[f":(exclude){f}" for f in sorted(harness_files)])
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandError) as exc:
        return [], f"(workspace is not a git worktree: {exc})"
    kinds = {"??": "created", "A": "created", "D": "deleted"}
    changes: list[str] = []
    new_files: list[str] = []
    for line in status.splitlines():
        code, name = line[:2], line[3:]
        if name in harness_files:
            continue
        kind = kinds.get(code.strip(), kinds.get(code, "modified"))
        changes.append(f"`{name}` ({kind})")
        if code == "??":
            new_files.append(name)
    parts = [diff] if diff else []
    for name in new_files:
        try:
            text = (workspace / name).read_bytes()[:MAX_NEW_FILE_CHARS].decode("utf-8", "replace")
        except OSError:
            continue
        parts.append(f"--- /dev/null\n+++ b/{name}\n" + "".join(f"+{ln}\n" for ln in text.splitlines()))
    patch = "\n".join(parts)
    if len(patch) > MAX_DIFF_CHARS:
        patch = patch[:MAX_DIFF_CHARS] + f"\n... (diff truncated at {MAX_DIFF_CHARS} characters)"
    return changes, patch
