"""``run_experiments_cli``: what a suite file calls under ``if __name__ == "__main__":``.

    run_experiments_cli(cases, entry_point="run_x.py", experiment_name="x")   # the spec's shape
    run_experiments_cli(suite)                                                 # a suite object

Two situations, one call:

- While ``load_suite`` runs the file (the command line, a deployment, the Prefect UI),
  the call only declares: it hands the suite back to the loader and stops the file.
- Run as ``python suite.py [flags]``, it hands the process over to the command line
  (``python -m experiment_cli.suite_file SUITE [flags]``, through ``exec``, so the
  flags, output and exit code are exactly those of ``python flows/run_suite.py SUITE``).
  Called inside another program instead (``runpy``, a test), it runs that command
  line as a child process and raises ``SystemExit`` with its exit code, so the
  caller's process is never replaced. The core never imports the command lines or
  Prefect; the command line then loads the file as above.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn, Sequence

from .suite import SuiteDeclared, SuiteError, declared_suite, loading_suite

# The command line that runs a suite file given by path (see experiment_cli/suite_file.py).
SUITE_FILE_COMMAND = ("-m", "experiment_cli.suite_file")


def _calling_file() -> Path | None:
    frame = inspect.currentframe()
    caller = frame.f_back.f_back if frame is not None and frame.f_back is not None else None
    name = caller.f_globals.get("__file__") if caller is not None else None
    if not name:
        name = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(name).resolve() if name else None


def run_experiments_cli(
    cases: Sequence[Any] | Any,
    entry_point: str | Path | None = None,
    experiment_name: str | None = None,
    *,
    argv: Sequence[str] | None = None,
    **options: Any,
) -> NoReturn:
    """Run the calling suite file (``--dry-run``, ``-p N``, ``--resume RUN_DIR``, ...), then exit.

    ``options``: ``mode`` ("standard" or "inspect"), ``retries``, ``retry_delay_seconds``,
    ``timeout_seconds``, ``task_tags``, ``fresh_attempt_dir``; any not passed are read from
    the file's module-level names of the same name.
    """
    path = _calling_file()
    if loading_suite():
        if path is None:
            raise SuiteError("run_experiments_cli must be called from a suite file (no __file__ here)")
        namespace = sys.modules.get("__main__")  # the suite file's module while it is loaded
        raise SuiteDeclared(declared_suite(path, namespace, cases, entry_point, experiment_name, options))
    if path is None:
        print("error: run_experiments_cli must be called from a suite file (no __file__ here)", file=sys.stderr)
        raise SystemExit(2)
    args = list(sys.argv[1:] if argv is None else argv)
    # -P: the current directory must not shadow the installed command line.
    command = [sys.executable, "-P", *SUITE_FILE_COMMAND, str(path), *args]
    sys.stdout.flush()
    sys.stderr.flush()
    if _is_the_script(path):
        os.execv(sys.executable, command)
    raise SystemExit(_wait_for(subprocess.Popen(command)))


def _is_the_script(path: Path) -> bool:
    """Whether this process was started as ``python path ...`` (so it may be replaced)."""
    argv, orig = sys.argv, getattr(sys, "orig_argv", [])
    try:
        return bool(argv) and orig[-len(argv):] == argv and Path(argv[0]).resolve() == path
    except OSError:
        return False


def _wait_for(child: subprocess.Popen[bytes]) -> int:
    # Ctrl-C reaches the child too (same process group); let it shut its flow down.
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue
