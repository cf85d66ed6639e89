"""Suites: load a suite file by path, and plan a run of it (new, resumed or dry).

A suite file declares what a run needs in the experiment-infrastructure spec's shape,
``run_experiments_cli(cases, entry_point=..., experiment_name=...)`` under
``if __name__ == "__main__":``, or with module-level names (``cases``, ``entry_point``,
``experiment_name`` and optionally ``mode``, ``retries``, ``retry_delay_seconds``,
``timeout_seconds``, ``task_tags``, ``fresh_attempt_dir``), or a module-level ``suite`` object. ``load_suite``
runs the file as ``__main__`` with ``run_experiments_cli`` only declaring (it hands its
arguments back instead of running), so the command line, a deployment and the
Prefect UI all start the same flow from nothing but the path.

Planning writes nothing: ``plan_suite`` works out the run directory, each case's
directory and exact command line (that is the dry run); ``start_run`` then creates
the directory and writes the manifest (and the patch of a dirty tree).
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import re
import sys
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Sequence, get_args

from ..files.atomic import atomic_write_text
from .case import ExperimentCase, validate_cases
from ..provenance.code_versions import CodeCheck, check_code, code_label, experiment_code, first_version
from .config import ConfigError, configs_ignore_argv
from .identity import case_identity, code_fingerprint
from .import_paths import suite_import_dirs
from ..running.resources import ResourcePool, check_gpu_request, check_max_failures, resolve_gpus
from ..processes.failures import DEFAULT_RETRIES
from ..layout import CasePaths, SuiteRunPaths, UnsafeNameError, check_name
from ..provenance.git import CodeSnapshot
from .plan_text import format_plan
from ..records import CaseIdentity, GitProvenance, SuiteManifest, utc_now_iso, write_record
from .reuse import ReuseDecision, WantedCase, plan_reuse
from ..running.runner import case_command, case_config
from ..status.rules import CaseClassification, CaseStatus, classify_case
from .errors import SuiteError, load_failure
from .resume import check_resume, manifest_case, record_resume

log = logging.getLogger(__name__)

SuiteMode = Literal["standard", "inspect"]
SUITE_MODES: tuple[str, ...] = get_args(SuiteMode)
DEFAULT_RETRY_DELAY_SECONDS = 10.0
SUITE_OPTIONS = (
    "mode", "retries", "retry_delay_seconds", "timeout_seconds", "task_tags", "fresh_attempt_dir",
    "gpus", "cpus", "retry_on", "retry_on_exit_codes", "max_failures", "reuse",
)
_load_counter = itertools.count()


@dataclass(frozen=True)
class Suite:
    """What a run needs from a suite file. Validated on construction.

    A suite file may define ``suite = Suite(...)`` instead of the module-level names;
    pass ``suite_file=Path(__file__)`` so a relative entry point is found next to it.

    ``task_tags`` go on every case's task run, for Prefect tag concurrency limits shared
    across flows (``prefect concurrency-limit create gpu 2``). Untagged by default: the
    flow run carries the experiment's tags, and a tagged task run costs two server round
    trips (take and release a slot), which was most of the per-case overhead.

    ``fresh_attempt_dir``: a retried or resumed case starts in an empty directory (all an
    earlier attempt wrote moves to ``.attempts/attempt_N``), for entry points that cannot
    cope with old files. By default it continues in place with what it wrote before.

    ``reuse``: always run as with ``--reuse`` (a case whose identity matches a completed case
    of an earlier run of the experiment is not run; its files are linked in).
    """

    experiment_name: str
    entry_point: Path
    cases: tuple[ExperimentCase, ...]
    mode: SuiteMode = "standard"
    retries: int = DEFAULT_RETRIES
    retry_delay_seconds: float = DEFAULT_RETRY_DELAY_SECONDS
    timeout_seconds: float | None = None
    task_tags: tuple[str, ...] = ()
    fresh_attempt_dir: bool = False
    gpus: float | None = None
    cpus: int = 1
    retry_on: str | None = None
    retry_on_exit_codes: tuple[int, ...] = ()
    max_failures: int | float | None = None
    reuse: bool = False
    suite_file: Path | None = None

    def __post_init__(self) -> None:
        source = self.suite_file.name if self.suite_file else "suite"
        try:
            check_name("experiment", self.experiment_name)
        except UnsafeNameError as exc:
            raise SuiteError(f"{source}: experiment_name: {exc}") from None
        object.__setattr__(self, "cases", tuple(validate_cases(self.cases, source=source)))
        if self.mode not in SUITE_MODES:
            raise SuiteError(f"{source}: mode {self.mode!r} is not one of {', '.join(SUITE_MODES)}")
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise SuiteError(f"{source}: retries must be an integer >= 0, got {self.retries!r}")
        if not isinstance(self.retry_delay_seconds, (int, float)) or self.retry_delay_seconds < 0:
            raise SuiteError(f"{source}: retry_delay_seconds must be >= 0, got {self.retry_delay_seconds!r}")
        if self.timeout_seconds is not None and not (
            isinstance(self.timeout_seconds, (int, float)) and self.timeout_seconds > 0
        ):
            raise SuiteError(f"{source}: timeout_seconds must be > 0 or None, got {self.timeout_seconds!r}")
        for flag in ("fresh_attempt_dir", "reuse"):
            if not isinstance(getattr(self, flag), bool):
                raise SuiteError(f"{source}: {flag} must be True or False, got {getattr(self, flag)!r}")
        tags = self.task_tags
        if isinstance(tags, str) or not isinstance(tags, (list, tuple)) or not all(isinstance(t, str) and t for t in tags):
            raise SuiteError(f"{source}: task_tags must be a list of non-empty strings, got {tags!r}")
        object.__setattr__(self, "task_tags", tuple(tags))
        self._check_scheduling(source)
        base = self.suite_file.parent if self.suite_file else None
        object.__setattr__(self, "entry_point", resolve_entry_point(self.entry_point, base, source))

    def _check_scheduling(self, source: str) -> None:
        if self.gpus is not None:
            check_gpu_request(self.gpus, f"{source}: gpus")
        if isinstance(self.cpus, bool) or not isinstance(self.cpus, int) or self.cpus < 1:
            raise SuiteError(f"{source}: cpus must be a whole number >= 1, got {self.cpus!r}")
        if self.retry_on is not None:
            try:
                re.compile(self.retry_on)
            except (re.error, TypeError) as exc:
                raise SuiteError(f"{source}: retry_on must be a regular expression ({exc}), got {self.retry_on!r}") from None
        codes = self.retry_on_exit_codes
        if isinstance(codes, int) or not all(isinstance(c, int) and not isinstance(c, bool) for c in codes):
            raise SuiteError(f"{source}: retry_on_exit_codes must be a list of integers, got {codes!r}")
        object.__setattr__(self, "retry_on_exit_codes", tuple(codes))
        check_max_failures(self.max_failures, f"{source}: max_failures")

    def requests(self, case: ExperimentCase, default_gpus: float = 0.0) -> tuple[float, int]:
        """What ``case`` asks for while it runs: (gpus, cpus), its own settings over the suite's,
        and ``default_gpus`` where neither says (1 once ``--gpus`` names devices)."""
        gpus = case.gpus if case.gpus is not None else self.gpus
        return (float(gpus) if gpus is not None else default_gpus), (case.cpus if case.cpus is not None else self.cpus)

    def asks_for_gpus(self, cases: Sequence[ExperimentCase] | None = None) -> bool:
        """Whether any of ``cases`` (default: every case) asks for a GPU of its own accord."""
        return any(self.requests(c)[0] > 0 for c in (self.cases if cases is None else cases))

    @property
    def config_class(self) -> str:
        names = dict.fromkeys(f"{type(c.config).__module__}.{type(c.config).__qualname__}" for c in self.cases)
        return ", ".join(names)


def resolve_entry_point(entry_point: str | Path, suite_dir: Path | None, source: str = "suite") -> Path:
    """The entry point file: relative to the suite file's directory first, then the cwd."""
    if not isinstance(entry_point, (str, Path)) or not str(entry_point):
        raise SuiteError(f"{source}: entry_point must be a path to a Python file, got {entry_point!r}")
    given = Path(entry_point).expanduser()
    candidates = [given] if given.is_absolute() else [d / given for d in (suite_dir, Path.cwd()) if d is not None]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    looked = " and ".join(str(c) for c in candidates)
    raise SuiteError(f"{source}: entry point {str(entry_point)!r} not found (looked for {looked})")


# ------------------------------------------------------------------------ loading


class SuiteDeclared(BaseException):
    """Raised by ``run_experiments_cli`` while a suite file is being loaded: it carries
    the suite the call declared and stops the file there, as the real call would exit.
    A BaseException, so a suite's own ``except Exception`` cannot swallow it."""

    def __init__(self, suite: Any) -> None:
        super().__init__("suite declared")
        self.suite = suite


# True while load_suite runs a suite file: run_experiments_cli then declares, not runs.
_LOADING: ContextVar[bool] = ContextVar("experiment_infra_loading_suite", default=False)


def loading_suite() -> bool:
    return _LOADING.get()


def _run_as_main(path: Path) -> tuple[Any, Any]:
    """Run ``path`` as Python runs a script (``__name__ == "__main__"``) and return
    ``(module, declared)``: ``declared`` is what its ``run_experiments_cli`` call declared, or None.

    One mechanism for every shape: a spec-style file whose cases exist only for its
    ``__main__`` call, module-level names, or a ``suite`` object. Its directory is first
    on ``sys.path`` while it runs, so ``import my_config`` next to it works. Classes it
    defines are filed under a private module name afterwards (not the real
    ``__main__``), so pydantic and pickling find them. Its project root is on ``sys.path``
too (``import_paths``).
    """
    name = f"_experiment_suite_{path.stem}_{next(_load_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SuiteError(f"{path}: cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        code = spec.loader.get_code(name)  # type: ignore[attr-defined]
    except SyntaxError as exc:
        raise SuiteError(load_failure(path, exc)) from None
    module.__name__ = "__main__"
    sys.modules[name] = module
    real_main = sys.modules.get("__main__")
    sys.modules["__main__"] = module  # what the file's classes look their module up in while it runs
    added = [d for d in suite_import_dirs(path) if d not in sys.path]
    sys.path[0:0] = added  # the suite's directory, then its project root (the spec's layout)
    token = _LOADING.set(True)
    declared = None
    try:
        with configs_ignore_argv():
            exec(code, vars(module))  # noqa: S102 (the user's own suite file, as `python SUITE.py` would)
    except SuiteDeclared as call:
        declared = call.suite
    except SystemExit as exc:
        sys.modules.pop(name, None)
        raise SuiteError(f"{path.name}: it exited (code {exc.code}) while being loaded") from None
    except Exception as exc:  # a refusal of the core (a bad case, name or option), or any other
        sys.modules.pop(name, None)
        raise SuiteError(load_failure(path, exc)) from None
    finally:
        _LOADING.reset(token)
        if real_main is not None:
            sys.modules["__main__"] = real_main
        for d in added:
            if d in sys.path:
                sys.path.remove(d)
    module.__name__ = name
    for value in list(vars(module).values()):
        if isinstance(value, type) and value.__module__ == "__main__":
            value.__module__ = name
    return module, declared


def _options_of(namespace: Any) -> dict[str, Any]:
    return {k: getattr(namespace, k) for k in SUITE_OPTIONS if hasattr(namespace, k)}


def declared_suite(
    path: Path, namespace: Any, cases: Any, entry_point: Any, experiment_name: Any, options: dict[str, Any]
) -> Any:
    """The suite a ``run_experiments_cli(...)`` call in ``path`` declares.

    ``cases`` may be a suite object (``Suite`` or an agent-evaluation suite), else a list of
    cases with ``entry_point`` and ``experiment_name``. Options the call does not pass
    (``retries``, ``timeout_seconds``, ...) are taken from the file's module-level names.
    """
    unknown = sorted(set(options) - set(SUITE_OPTIONS))
    if unknown:
        raise SuiteError(f"{path.name}: run_experiments_cli: unknown option(s) {', '.join(unknown)}; valid: {', '.join(SUITE_OPTIONS)}")
    if isinstance(cases, Suite):
        return cases if cases.suite_file else replace(cases, suite_file=path)
    if not isinstance(cases, (list, tuple)):
        if entry_point is None and experiment_name is None and not options:
            return cases  # an agent-evaluation suite object
        raise SuiteError(f"{path.name}: run_experiments_cli: cases must be a list of ExperimentCase, got {type(cases).__name__}")
    missing = [n for n, v in (("entry_point", entry_point), ("experiment_name", experiment_name)) if v is None]
    if missing:
        raise SuiteError(
            f"{path.name}: run_experiments_cli(cases, ...) needs {' and '.join(missing)}; "
            "call it as run_experiments_cli(cases, entry_point=..., experiment_name=...)"
        )
    try:
        return Suite(
            experiment_name=experiment_name, entry_point=entry_point, cases=tuple(cases), suite_file=path,
            **{**_options_of(namespace), **options},
        )
    except (ConfigError, UnsafeNameError) as exc:
        message = str(exc)  # validate_cases already names the file
        raise SuiteError(message if message.startswith(f"{path.name}: ") else f"{path.name}: {message}") from None


def load_suite(path: str | Path) -> Suite | Any:
    """Load a suite file by path: the suite its ``run_experiments_cli`` call declares, else
    its module-level ``suite`` object, else its module-level ``cases``, ``entry_point`` and
    ``experiment_name``. A suite object that is not a ``Suite`` (an agent-evaluation
    suite) is returned as it is."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SuiteError(f"suite file {str(path)!r} not found")
    if path.suffix != ".py":
        raise SuiteError(f"suite file {str(path)!r} is not a .py file")
    path = path.resolve()
    module, declared = _run_as_main(path)
    if declared is not None:
        return declared
    if hasattr(module, "suite"):
        obj = module.suite
        if isinstance(obj, Suite):
            return obj if obj.suite_file else replace(obj, suite_file=path)
        return obj
    missing = [n for n in ("cases", "entry_point", "experiment_name") if not hasattr(module, n)]
    if missing:
        raise SuiteError(
            f"{path.name}: declares no suite: call run_experiments_cli(cases, entry_point=..., experiment_name=...) "
            f"under `if __name__ == \"__main__\":`, or define {', '.join(missing)} at module level (or a `suite` object)"
        )
    return declared_suite(path, module, module.cases, module.entry_point, module.experiment_name, {})


# ----------------------------------------------------------------------- planning


@dataclass(frozen=True)
class PlannedCase:
    case: ExperimentCase
    paths: CasePaths
    command: tuple[str, ...]
    on_disk: CaseClassification  # what the disk said when the run was planned
    code: CodeSnapshot | None = None  # what its attempts run on (named in each run record)
    fresh_attempt_dir: bool = False
    identity: CaseIdentity | None = None  # stored in each run record, for --reuse
    reuse: ReuseDecision | None = None  # with --reuse: run it, or reuse an earlier case (and why)
    added: bool = False  # a resume adds it to the run directory

    @property
    def variant_name(self) -> str:
        return self.case.variant_name

    @property
    def done(self) -> bool:
        return self.on_disk.status is CaseStatus.COMPLETED

    @property
    def will_run(self) -> bool:
        """Neither completed earlier (a resume skips it) nor reused from an earlier run."""
        return not self.done and not (self.reuse is not None and self.reuse.reused)


@dataclass(frozen=True)
class SuitePlan:
    suite: Suite
    run: SuiteRunPaths
    git: GitProvenance
    cases: tuple[PlannedCase, ...]
    resumed: bool = False
    created_at: str = field(default_factory=utc_now_iso)
    code: CodeSnapshot | None = None  # the code this run's attempts run on
    code_check: CodeCheck | None = None  # a resume's: the code version it adds, if any
    manifest: SuiteManifest | None = None  # a resume's: the manifest as found
    not_in_suite: tuple[str, ...] = ()  # a resume's: cases of the run the suite no longer has (left on disk)
    reusing: bool = False  # --reuse (or the suite's reuse option)

    @property
    def added(self) -> list[PlannedCase]:
        return [p for p in self.cases if p.added]

    def warnings(self) -> list[str]:
        """What the command says before it runs: untracked files the experiment uses."""
        untracked = self.code.git.untracked if self.code is not None else []
        if not untracked:
            return []
        return [
            f"warning: {len(untracked)} file(s) the experiment uses are not committed: {', '.join(untracked)}; "
            f"the run is tagged {code_label(self.code.git)} and its patch holds them whole (commit them to reproduce it by commit)"
        ]


def plan_suite(
    suite: Suite,
    results_root: str | Path = "results",
    resume: str | Path | None = None,
    *,
    now: datetime | None = None,
    python: str = sys.executable,
    allow_code_change: bool = False,
    reuse: bool = False,
    identities: bool = False,
) -> SuitePlan:
    """Everything a run will do, worked out without writing anything.

    A resume on code other than the run's last is refused (``CodeChanged``) unless
    ``allow_code_change``; then the plan carries the new code version ``start_run`` records.
    ``reuse`` (or the suite's option): each case not yet completed is decided against the
    experiment's earlier runs (``reuse.plan_reuse``). ``identities``: work out each case's
    identity (what a real run records; reading the installed distributions costs time a
    plain dry run need not spend).
    """
    code = experiment_code(suite.suite_file, suite.entry_point)
    reusing = reuse or suite.reuse
    fingerprint = None
    if identities or reusing:
        fingerprint = code_fingerprint(suite.entry_point, Path(code.git.repo_root) if code.git.repo_root else None)
    manifest = check = None
    dropped: list[str] = []
    if resume is not None:
        run, manifest, dropped = check_resume(suite, resume)
        git = manifest.git
        check = check_code(run, manifest, code, allow=allow_code_change, what=f"--resume {resume}")
        if check.new_version is not None:
            log.warning("resuming %s on new code %s (code version %d)", run.dir, code_label(code.git), check.version)
    else:
        git = code.git
        when = now or datetime.now()
        run = SuiteRunPaths.new(Path(results_root).expanduser().resolve(), suite.experiment_name, when, git.short, git.dirty)
        if git.dirty:
            git = git.model_copy(update={"patch_file": run.patch.name})
    planned = []
    recorded = {c.variant_name for c in manifest.cases} if manifest is not None else set()
    for case in suite.cases:
        paths = run.case(case.variant_name)
        command = case_command(case, paths, suite.entry_point, python)  # ConfigError names the case
        added = manifest is not None and case.variant_name not in recorded
        on_disk = classify_case(paths) if resume is not None else CaseClassification(CaseStatus.MISSING, "new run")
        identity = case_identity(case_config(case, paths).to_json_dict(), fingerprint) if fingerprint else None
        planned.append(PlannedCase(case, paths, tuple(command), on_disk, code, suite.fresh_attempt_dir, identity, added=added))
    if reusing:
        decisions = plan_reuse(
            suite.experiment_name, run.dir.parent,
            [WantedCase(p.variant_name, case_config(p.case, p.paths).to_json_dict(), p.identity)
             for p in planned if not p.done and p.identity is not None],
            exclude=run.dir,
        )
        planned = [replace(p, reuse=decisions.get(p.variant_name)) for p in planned]
    return SuitePlan(
        suite, run, git, tuple(planned), resumed=resume is not None, code=code, code_check=check, manifest=manifest,
        not_in_suite=tuple(dropped), reusing=reusing,
    )


def resource_pool(
    suite: Suite, gpus: str | None, parallelism: int | None, plan: SuitePlan | None = None,
) -> ResourcePool:
    """The devices and cpu slots a run of ``suite`` hands out, every case's request checked.

    ``gpus``: the ``--gpus`` flag (``all``, a count, device ids); without it a suite whose
    cases ask for GPUs gets every device the machine shows. With neither, the run hands
    out no devices and cases see what they always saw. ``parallelism`` (``-p``) is also
    the cpus the running cases may hold at once. A request no device set can meet is a
    ``ResourceError`` naming the case, before anything runs. ``plan``: only its cases that
    will run are asked about (a resumed run's completed cases and reused ones run nothing).
    """
    cases = suite.cases if plan is None else [p.case for p in plan.cases if p.will_run]
    spec = gpus if gpus is not None else ("all" if suite.asks_for_gpus(cases) else None)
    pool = ResourcePool(devices=resolve_gpus(spec), cpu_slots=parallelism, default_gpus=1.0 if gpus is not None else 0.0)
    for case in cases:
        pool.check(*suite.requests(case, pool.default_gpus), f"case {case.variant_name!r}")
    return pool


def manifest_for(plan: SuitePlan) -> SuiteManifest:
    suite = plan.suite
    return SuiteManifest(
        experiment_name=suite.experiment_name,
        mode=suite.mode,
        suite_file=str(suite.suite_file or ""),
        entry_point=str(suite.entry_point),
        config_class=suite.config_class,
        created_at=plan.created_at,
        run_dir=str(plan.run.dir),
        git=plan.git,
        code_versions=[first_version(plan.git, plan.created_at)],
        cases=[manifest_case(p) for p in plan.cases],
    )


def start_run(plan: SuitePlan) -> None:
    """Create a new run directory with its manifest (and ``git.patch`` when dirty).

    A resumed run keeps its manifest, but for what the resume adds (``record_resume``).
    """
    if plan.resumed:
        record_resume(plan)
        return
    try:
        plan.run.dir.mkdir(parents=True, exist_ok=False)
    except FileExistsError:
        raise SuiteError(f"run directory {plan.run.dir} already exists; not reusing it (use --resume)") from None
    if plan.git.dirty and plan.code is not None and plan.code.patch:
        atomic_write_text(plan.run.patch, plan.code.patch)
    write_record(plan.run.manifest, manifest_for(plan))
