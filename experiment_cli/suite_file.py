"""``python SUITE.py [flags]``: a suite file's ``run_experiments_cli`` hands its process here.

    python -P -m experiment_cli.suite_file SUITE.py [--dry-run] [-p N] [--resume RUN_DIR] ...

The same flags, output and exit codes as ``python flows/run_suite.py SUITE.py``, with
the suite file's name as the program name.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from .common import fail, run_main
from .run_suite import build_parser, run_parsed


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        fail("usage: python -m experiment_cli.suite_file SUITE.py [flags]")
    suite_path = Path(args[0])
    parsed = build_parser(with_suite=False, prog=suite_path.name).parse_args(args[1:])
    return run_parsed(parsed, suite_path, typed=args)  # `python SUITE.py flags`: the route the user took


if __name__ == "__main__":
    run_main(main)
