"""Shared by the fault suite (tests/test_faults_*.py): a standard-mode suite whose entry
point misbehaves on request, process bookkeeping, and the figures the suite reports.

Every process a fault test starts (directly or through a flow) carries ``FAULT_MARK``
in its environment, so a test can find exactly its own leftovers in ``/proc`` and end
them by pid; nothing else on the machine is ever signalled.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

from conftest import PYTHON, REPO_ROOT, shared_server_env

# ------------------------------------------------------------------------ figures

FIGURES: Counter[str] = Counter()
FIGURE_NAMES = {
    "faults": "faults injected",
    "runs": "runs/cases classified",
    "files": "files compared",
    "lost": "files lost or changed",
}


FAULT_KINDS = ("kill", "hang", "torn", "tree", "name", "race", "disk")


def tally(kind: str | None = None, **counts: int) -> None:
    """Add to the suite's figures (printed at the end of the pytest run); ``kind`` says
    which sort of fault ``faults`` counts (see FAULT_KINDS)."""
    unknown = set(counts) - set(FIGURE_NAMES)
    assert not unknown, unknown
    assert kind is None or kind in FAULT_KINDS, kind
    FIGURES.update(counts)
    if kind is not None and counts.get("faults"):
        FIGURES[f"faults:{kind}"] += counts["faults"]


def summary_line() -> str:
    kinds = ", ".join(f"{k} {FIGURES[f'faults:{k}']}" for k in FAULT_KINDS if FIGURES[f"faults:{k}"])
    main = ", ".join(f"{FIGURES[k]} {label}" + (f" ({kinds})" if k == "faults" and kinds else "") for k, label in FIGURE_NAMES.items())
    return "fault suite: " + main


def write_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.write_sep("-", "fault figures")
    terminalreporter.write_line(summary_line())
    out = os.environ.get("FAULT_FIGURES_JSON")
    if out:
        Path(out).write_text(json.dumps(dict(FIGURES), indent=2) + "\n")


# ----------------------------------------------------------------------- processes


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_gone(pids: Iterable[int], timeout: float = 10.0) -> list[int]:
    """The pids still alive after ``timeout`` (empty when all are gone)."""
    pids = list(pids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


class Marked:
    """An environment for the processes of one test, and a way to find and end them."""

    def __init__(self, home: Path, **extra: str) -> None:
        self.token = uuid.uuid4().hex
        home.mkdir(parents=True, exist_ok=True)
        # The session's server: the commands under test report to it, as to a real one.
        self.env = shared_server_env(
            PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1",
            FAULT_MARK=self.token, **extra,
        )

    def pids(self) -> list[int]:
        needle = f"FAULT_MARK={self.token}".encode()
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0") and alive(int(entry)):
                found.append(int(entry))
        return found

    def end_all(self) -> list[int]:
        """SIGKILL every process of this test still running; returns their pids."""
        pids = self.pids()
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_gone(pids, 10)
        return pids

    def popen(self, *args: str | Path, log: Path, cwd: Path = REPO_ROOT, **kw: Any) -> subprocess.Popen[bytes]:
        """Start ``python ARGS`` in the background, its output going to ``log`` (never a pipe
        nobody reads, which would block it)."""
        with open(log, "wb") as out:
            return subprocess.Popen(
                [PYTHON, *map(str, args)], cwd=cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, **kw,
            )

    def run(self, *args: str | Path, cwd: Path = REPO_ROOT, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, *map(str, args)], cwd=cwd, env=self.env, text=True, capture_output=True, timeout=timeout
        )


# --------------------------------------------------------------------------- files


def file_hashes(root: Path, skip: Callable[[Path], bool] = lambda p: False) -> dict[str, str]:
    """Every regular file under ``root`` -> sha256 (links by target)."""
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if skip(p):
                continue
            rel = p.relative_to(root).as_posix()
            out[rel] = "link:" + os.readlink(p) if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def compare_kept(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files of ``before`` that are gone or changed in ``after``; tallies the comparison."""
    lost = sorted(k for k, v in before.items() if after.get(k) != v)
    tally(files=len(before), lost=len(lost))
    return lost


# ------------------------------------------------------------- a misbehaving suite

FAULT_CONFIG = '''
from experiment_infra import BaseExperimentConfig


class FaultConfig(BaseExperimentConfig):
    label: str = "x"
    hold_file: str = ""      # first try only: wait while this file exists (at most 120 s)
    hang: bool = False       # never exit, and ignore SIGTERM
    stubborn_child: bool = False  # start a child that ignores SIGTERM and keeps stdout open
    orphan_child: bool = False    # exit 0 at once, leaving that child behind
    payload_mb: int = 0      # write a file this big (disk-full tests)
    fail_first: bool = False  # exit 3 on the first try
    text: str = ""
    items: list[str] = []
    mapping: dict[str, str] = {}
'''

FAULT_ENTRY = '''
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from {cfg} import FaultConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths

cfg = FaultConfig.from_cli()
case = CasePaths(Path(cfg.output_dir))
# The fake's own bookkeeping across tries lives outside the case directory (a retry
# moves everything in it aside): beside it, in the run directory.
counters = case.dir.parent / {counters!r} / case.dir.name
counters.mkdir(parents=True, exist_ok=True)
with open(counters / "pids.txt", "a") as fh:
    fh.write(f"{{os.getpid()}}\\n")
tries_file = counters / "tries.txt"
tries = int(tries_file.read_text()) + 1 if tries_file.exists() else 1
tries_file.write_text(str(tries))
(case.dir / "received.json").write_text(json.dumps({{"argv": sys.argv[1:], "config": cfg.model_dump(mode="json")}}))
print(f"started {{cfg.label}} try {{tries}}", flush=True)
if cfg.stubborn_child or cfg.orphan_child:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child up', flush=True); time.sleep(3600)"
    child = subprocess.Popen([sys.executable, "-c", code])  # inherits stdout: the pipe stays open
    (case.dir / "child.pid").write_text(str(child.pid))
if cfg.orphan_child:
    os._exit(0)
if cfg.fail_first and tries == 1:
    print(f"first try of {{cfg.label}} fails", file=sys.stderr)
    sys.exit(3)
if cfg.hang:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(3600)
if cfg.hold_file and tries == 1:
    deadline = time.monotonic() + 120
    while Path(cfg.hold_file).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
if cfg.payload_mb:
    with open(case.dir / "payload.bin", "wb") as fh:
        for _ in range(cfg.payload_mb):
            fh.write(b"x" * (1 << 20))
atomic_write_json(case.metrics, {{"tries": tries, "value": len(cfg.label)}})
print(f"done {{cfg.label}}", flush=True)
'''

FAULT_SUITE = '''
from {cfg} import FaultConfig

from experiment_infra import ExperimentCase

experiment_name = {name!r}
entry_point = "entry.py"
retries = 0
retry_delay_seconds = 0
{extra}
cases = [
{cases}
]
'''


def fault_case(label: str, **fields: object) -> str:
    args = ", ".join([f"label={label!r}", *(f"{k}={v!r}" for k, v in fields.items())])
    return f"    ExperimentCase({label!r}, FaultConfig({args})),"


def write_fault_suite(where: Path, cases: list[str], *, name: str = "faults", extra: str = "") -> Path:
    """A suite directory (config module, entry point, suite file); returns the suite file."""
    where.mkdir(parents=True, exist_ok=True)
    cfg = f"fault_cfg_{uuid.uuid4().hex[:10]}"
    (where / f"{cfg}.py").write_text(FAULT_CONFIG, encoding="utf-8")
    (where / "entry.py").write_text(textwrap.dedent(FAULT_ENTRY.format(cfg=cfg, counters=COUNTERS_DIR)), encoding="utf-8")
    suite = where / "suite_faults.py"
    suite.write_text(FAULT_SUITE.format(cfg=cfg, name=name, extra=extra, cases="\n".join(cases)), encoding="utf-8")
    return suite


def load_fault_suite(suite_file: Path) -> Any:
    from experiment_infra.suites.suite import load_suite

    return load_suite(suite_file)


def run_suite_cmd(suite: Path, *flags: str) -> list[str]:
    return [str(REPO_ROOT / "flows" / "run_suite.py"), str(suite), *flags]


# Where the fake entry point counts its tries and pids, per case: in the run directory,
# outside the case directory, whose whole content a retry moves aside.
COUNTERS_DIR = ".fake-entry-counters"


def counters_of(case_dir: Path) -> Path:
    """The fake entry point's bookkeeping of one case (``pids.txt``, ``tries.txt``), kept across tries."""
    return case_dir.parent / COUNTERS_DIR / case_dir.name


def recorded_pids(case_dir: Path) -> list[int]:
    """The pid of each try of the fake entry point in ``case_dir``, first try first."""
    path = counters_of(case_dir) / "pids.txt"
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
