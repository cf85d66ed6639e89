"""Which code produced a result: git commit, branch and uncommitted changes (GitPython).

``git_provenance`` answers for a repository; ``code_snapshot`` for an experiment in it:
the untracked files the experiment uses (``used_files``) make it dirty too, and its
patch holds them whole beside ``git diff HEAD``, so the run can be rebuilt from what
it names.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..layout import NOGIT
from ..records import GitProvenance

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


@dataclass(frozen=True)
class CodeSnapshot:
    """The code an experiment runs: git facts and the text of its patch ("" when clean)."""

    git: GitProvenance
    patch: str = ""


def code_snapshot(path: Path, scripts: Sequence[Path] = ()) -> CodeSnapshot:
    """``git_provenance(path)`` for an experiment whose ``scripts`` (suite file, entry
    point) are given: they and the files they import from inside the repository
    (``used_files``) make it dirty when git does not track them, and its patch is
    ``git diff HEAD`` then each such file whole (a new-file diff: ``git apply`` restores
    it). Files the experiment does not use, and files outside the repository, do not count."""
    git_facts = git_provenance(path)
    if git_facts.repo_root is None or git_facts.sha == NOGIT:
        return CodeSnapshot(git_facts)
    import git

    root = Path(git_facts.repo_root).resolve()
    repo = git.Repo(root)
    untracked = _untracked_used(repo, root, [Path(s) for s in scripts])
    parts = [repo.git.diff("HEAD") + "\n"] if git_facts.dirty else []
    for rel in untracked:
        # Exit status 1 means "they differ", which a new file always does.
        parts.append(repo.git.diff("--no-index", "--binary", "--", "/dev/null", rel, with_exceptions=False) + "\n")
    patch = "".join(parts)
    if not patch:
        return CodeSnapshot(git_facts)
    return CodeSnapshot(
        git_facts.model_copy(update={
            "dirty": True, "untracked": untracked, "patch_sha256": hashlib.sha256(patch.encode()).hexdigest(),
        }),
        patch,
    )


def _relative(files: Sequence[Path], root: Path) -> list[str]:
    out = []
    for file in files:
        try:
            out.append(file.resolve().relative_to(root).as_posix())
        except ValueError:
            continue  # outside the repository: not the experiment's code
    return list(dict.fromkeys(out))


def _untracked_used(repo: object, root: Path, scripts: list[Path]) -> list[str]:
    """Repository-relative paths of the used files git does not track, sorted."""
    from .used_files import files_used

    run = repo.git  # type: ignore[attr-defined]
    # Reading every import costs a parse per file; it is only needed when some Python
    # file besides the scripts may be untracked (the scripts are asked about directly).
    # --directory names an untracked directory once instead of walking it (a results
    # directory inside the repository may hold many thousands of files).
    others = {p for p in run.ls_files("-z", "--others", "--exclude-standard", "--directory").split("\0") if p}
    named = _relative(scripts, root)
    maybe = [p for p in others - set(named) if p.endswith((".py", "/"))]
    candidates = _relative(files_used(scripts, root), root) if maybe else named
    if not candidates:
        return []
    tracked = set(run.ls_files("-z", "--", *candidates).split("\0"))
    return sorted(r for r in candidates if r not in tracked)


def git_diff(repo_root: str | Path) -> str:
    """``git diff HEAD`` of the working tree (what makes a run ``-dirty``)."""
    import git

    return git.Repo(repo_root).git.diff("HEAD")
