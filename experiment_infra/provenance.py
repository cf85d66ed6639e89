"""Which code produced a result: git commit, branch and uncommitted changes (GitPython)."""

from __future__ import annotations

import logging
from pathlib import Path

from .layout import NOGIT
from .records import GitProvenance

log = logging.getLogger(__name__)


def git_provenance(path: Path) -> GitProvenance:
    """Git facts for the repository containing ``path``; ``nogit`` outside one.

    Dirty means tracked files differ from HEAD. Untracked files do not count: a
    results directory inside the repository would otherwise make every run dirty.
    """
    try:
        import git
    except ImportError:  # pragma: no cover - GitPython is a hard dependency
        log.warning("GitPython is not installed; results are tagged %s", NOGIT)
        return GitProvenance(sha=NOGIT, short=NOGIT)
    try:
        repo = git.Repo(Path(path).resolve(), search_parent_directories=True)
        sha = repo.head.commit.hexsha
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        log.warning("%s is not inside a git repository; results are tagged %s", path, NOGIT)
        return GitProvenance(sha=NOGIT, short=NOGIT)
    except ValueError:
        # A repository with no commit yet has no HEAD to tag results with.
        log.warning("%s: git repository has no commits; results are tagged %s", path, NOGIT)
        return GitProvenance(sha=NOGIT, short=NOGIT, repo_root=str(repo.working_tree_dir))
    try:
        branch: str | None = repo.active_branch.name
    except TypeError:  # detached HEAD
        branch = None
    return GitProvenance(
        sha=sha,
        short=sha[:7],
        branch=branch,
        dirty=repo.is_dirty(untracked_files=False),
        repo_root=str(repo.working_tree_dir),
    )


def git_diff(repo_root: str | Path) -> str:
    """``git diff HEAD`` of the working tree (what makes a run ``-dirty``)."""
    import git

    return git.Repo(repo_root).git.diff("HEAD")
