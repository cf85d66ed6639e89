"""One line for a suite file that cannot be loaded, the same on every route.

``python flows/run_suite.py SUITE.py`` loads the file itself (``suite.load_suite``);
``python SUITE.py`` runs the file's top level in the user's own interpreter first, where
a bad case, a misspelled ``copy_with`` field or a failing import would be Python's
traceback and exit 1. ``watch_suite_script`` (called when ``experiment_infra`` is
imported) gives that process the loader's answer instead: ``error: <load_failure>``
and exit 2. It acts only in a script whose code calls ``run_experiments_cli``.

A syntax error in the suite file itself (or in a module it imports before
``experiment_infra``) stops ``python SUITE.py`` before any of this code runs: there
Python's own message and exit code stand.
"""

from __future__ import annotations

import os
import sys
import types

from ..errors import EXIT_BAD_INPUT, ExperimentError

# Neither pathlib nor typing at import: every process that imports the package runs
# ``watch_suite_script``, the case waiter beside every case included.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


class SuiteError(ExperimentError, ValueError):
    """A suite file, run directory or run option that cannot be used (one-line message)."""


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _shown(filename: str) -> str:
    try:
        return os.path.realpath(filename)
    except (OSError, ValueError):
        return filename


def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    paths = sysconfig.get_paths()
    found = {_PACKAGE_DIR, *(os.path.realpath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths)}
    return tuple(found)


def _user_frame(tb: types.TracebackType | None) -> tuple[str, int] | None:
    """The last frame of ``tb`` in the user's own files (not this package, not a library)."""
    import traceback

    libraries = _library_dirs()
    found = None
    for frame in traceback.extract_tb(tb):
        if frame.filename.startswith("<"):
            continue
        name = _shown(frame.filename)
        if not name.startswith(libraries):
            found = (name, frame.lineno or 0)
    return found


def load_failure(path: Path, exc: BaseException) -> str:
    """What is wrong with the suite file ``path``, given what running it raised (no ``error:``).

    A syntax error: ``FILE:LINE: message``; a refusal of the core (a bad case, name or
    field): ``SUITE.py: message``; any other exception: ``FILE:LINE: Type: message`` at
    its last frame in the user's files."""
    if isinstance(exc, SyntaxError):
        where = f"{_shown(exc.filename)}:{exc.lineno}" if exc.filename else str(path)
        return f"{where}: {type(exc).__name__}: {exc.msg}"
    message = _one_line(str(exc))
    if isinstance(exc, ExperimentError):
        return message if message.startswith(f"{path.name}: ") else f"{path.name}: {message}"
    frame = _user_frame(exc.__traceback__)
    where = f"{frame[0]}:{frame[1]}" if frame else str(path)
    return f"{where}: {type(exc).__name__}: {message}" if message else f"{where}: {type(exc).__name__}"


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _suite_script() -> Path | None:
    """The suite file this process runs as its script (``python SUITE.py``), else None."""
    main = sys.modules.get("__main__")
    namespace = vars(main) if main is not None else None
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_globals is namespace and frame.f_code.co_name == "<module>"):
        frame = frame.f_back
    if frame is None or "run_experiments_cli" not in _names(frame.f_code):
        return None
    name = namespace.get("__file__") if namespace else None
    if not (name and sys.argv and sys.argv[0]):
        return None
    path, script = os.path.realpath(name), os.path.realpath(sys.argv[0])
    if path != script:
        return None
    from pathlib import Path

    return Path(path)


def watch_suite_script() -> None:
    """In ``python SUITE.py``, report an exception of the file's top level as the loader would."""
    path = _suite_script()
    if path is None:
        return
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: Any) -> None:
        if not issubclass(kind, Exception):
            previous(kind, exc, tb)
            return
        print(f"error: {load_failure(path, exc)}", file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        # An excepthook cannot choose the exit code: end here, as the loader's command does.
        os._exit(EXIT_BAD_INPUT)

    sys.excepthook = hook
