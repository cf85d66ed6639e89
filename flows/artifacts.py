"""What every flow run shows in the Prefect UI besides its states: a findable name, tags
to filter on, and a markdown artifact saying where its files are and which code made them.

The table artifacts stay with each flow (their columns are the flow's own); these are
the parts all of them share.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar
from uuid import UUID

import httpx

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext

from experiment_infra.layout import DIRTY_SUFFIX, NOGIT
from experiment_infra.processes.process import drop_stdout
from experiment_infra.provenance.git import git_provenance
from experiment_infra.records import AgentEvalManifest, GitProvenance, SuiteManifest, read_record
from experiment_infra.reports.ui_limits import cap_markdown

# The code running a flow (this checkout), as opposed to the code that produced the results.
TOOL_ROOT = Path(__file__).resolve().parents[1]

T = TypeVar("T")


def ui_only(what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call ``fn`` for something only the UI shows (an artifact, a tag, a name).

    The Prefect client already retries 429/502/503 with backoff; if the server is still
    unreachable after that, the call is given up with one warning line: the files a
    flow wrote are its result, and a lost UI call must not turn them into a failure.
    """
    try:
        return fn(*args, **kwargs)
    except (httpx.HTTPError, OSError) as exc:
        first = (str(exc).splitlines() or [""])[0]
        message = f"could not publish {what} to the Prefect server ({type(exc).__name__}: {first}); the files are unaffected"
        try:
            get_run_logger().warning("%s", message)
        except Exception:  # outside a run: the terminal still hears of it
            logging.getLogger("prefect").warning("%s", message)
        return None


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes only."""
    slug = re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")
    return slug[:100] or "run"


def label_flow_run(name: str | None = None, tags: Iterable[str] = ()) -> None:
    """Rename the current flow run and add tags (no-op outside a flow run)."""
    ctx = FlowRunContext.get()
    if ctx is None or ctx.flow_run is None:
        return
    merged = sorted({*ctx.flow_run.tags, *(t for t in tags if t)})
    update: dict[str, object] = {"tags": merged}
    if name:
        update["name"] = name
    with get_client(sync_client=True) as client:
        client.update_flow_run(ctx.flow_run.id, **update)  # type: ignore[arg-type]


def tag_flow_run(flow_run_id: UUID | None, tags: Iterable[str]) -> None:
    """Add tags to a finished (sub)flow run.

    Not ``with prefect.tags(...)`` around the call: that tags every task run inside it
    too, and a tagged task run costs two server round trips (a concurrency slot).
    """
    if flow_run_id is None:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        client.update_flow_run(flow_run_id, tags=sorted({*run.tags, *tags}))


def git_line(label: str, git: GitProvenance | None) -> str:
    if git is None:
        return f"- {label}: not recorded"
    if git.short == NOGIT:
        return f"- {label}: not in a git repository ({NOGIT})"
    branch = f" on `{git.branch}`" if git.branch else ""
    return f"- {label}: `{git.sha}`{branch}" + (f" ({DIRTY_SUFFIX.lstrip('-')})" if git.dirty else " (clean)")


def recorded_git(directory: Path) -> GitProvenance | None:
    """The git provenance an experiment or run directory recorded when it was made (None: not recorded)."""
    from experiment_infra.layout import ExperimentPaths, SuiteRunPaths

    for path, model in ((SuiteRunPaths(directory).manifest, SuiteManifest), (ExperimentPaths(directory).manifest, AgentEvalManifest)):
        read = read_record(path, model)
        if read.record is not None:
            return read.record.git  # type: ignore[union-attr]
    return None


def experiment_tag(directory: Path) -> str:
    """The tag every flow run about this directory carries (run_suite, recover, report,
    nightly's nested recoveries), so one filter finds them all: the experiment's name
    as its suite declared it, else ProjectScylla's experiment id, else the directory's name."""
    from experiment_infra.layout import ExperimentPaths, SuiteRunPaths
    from experiment_infra.records import ExperimentConfig

    directory = Path(directory)
    for path, model in ((SuiteRunPaths(directory).manifest, SuiteManifest), (ExperimentPaths(directory).manifest, AgentEvalManifest)):
        read = read_record(path, model)
        if read.record is not None:
            return read.record.experiment_name  # type: ignore[union-attr]
    config = read_record(ExperimentPaths(directory).config, ExperimentConfig).record
    if config is not None:
        return config.experiment_id
    return directory.resolve().name


def publish_run_markdown(key: str, title: str, directory: Path | str, lines: Iterable[str] = (), *, results_git: GitProvenance | None = None) -> None:
    """The markdown artifact: directory, the results' git provenance, this code's git provenance, extra lines."""
    body = [
        f"# {title}",
        "",
        f"- directory: `{directory}`",
        git_line("results made by git", results_git if results_git is not None else recorded_git(Path(directory))),
        git_line("this run's code (git)", git_provenance(TOOL_ROOT)),
        *lines,
    ]
    text = cap_markdown("\n".join(body), f"the files in {directory}")  # the server refuses an event over 1.5 MB
    create_markdown_artifact(text, key=key, description=f"{title}: {directory}")


def show(text: str) -> None:
    """Print ``text`` for the terminal and put it in the run's log in the UI, once each.

    A reader that went away (``recover ... | head``) does not stop the run: the rest of
    the terminal output is dropped, quietly, and the UI log still gets every line.
    """
    try:
        print(text, flush=True)
    except BrokenPipeError:
        drop_stdout()
    run_logger = get_run_logger()
    # "prefect.extra" sends to the API only (no console handler): the terminal has the print.
    logging.LoggerAdapter(logging.getLogger("prefect.extra"), dict(run_logger.extra)).info("%s", text)
