"""Serve the ``nightly-recovery`` deployment from this process: no work pool, no worker.

    python deployments/serve.py [--results-root R] [--cron C] [--timezone TZ] [--dry-run]

Registers the deployment with the Prefect server at ``PREFECT_API_URL`` (cron
``0 2 * * *`` in UTC unless told otherwise, plus an inactive dry-run schedule) and
runs its scheduled and UI-triggered runs here until interrupted (Ctrl-C). Parameters
stay editable in the UI. The work-pool route is ``deployments/prefect.yaml``.
"""

from __future__ import annotations

if __name__ == "__main__":
    # As a script, sys.path[0] is deployments/: put the repository root there instead.
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from deployments.serve import main

    sys.exit(main(sys.argv[1:]))

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn, Sequence

from deployments.nightly import DEFAULT_CRON, DEFAULT_TIMEZONE, nightly_deployment
from experiment_infra.services import ServiceError

REPO_ROOT = Path(__file__).resolve().parents[1]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)


def main(argv: Sequence[str] | None = None) -> int:
    p = _Parser(prog="deployments/serve.py", description="Serve the nightly-recovery deployment (no work pool needed).")
    p.add_argument("--results-root", default="results", metavar="R", help="directory the nightly run scans (default: results)")
    p.add_argument("--cron", default=DEFAULT_CRON, metavar="C", help=f"when to run (default: {DEFAULT_CRON!r}, 02:00)")
    p.add_argument("--timezone", default=DEFAULT_TIMEZONE, metavar="TZ", help=f"time zone of the cron (default: {DEFAULT_TIMEZONE})")
    p.add_argument("--dry-run", action="store_true", help="scheduled runs only classify and list; write nothing")
    args = p.parse_args(argv)

    from prefect import serve

    from flows.api_check import check_api

    try:
        if not check_api():
            raise ServiceError("serving a deployment needs a Prefect server: start one (prefect server start) and set PREFECT_API_URL")
        root = str(Path(args.results_root).expanduser().resolve())
        # The deployment records its entrypoint relative to the working directory: make it
        # flows/nightly.py, whatever directory this was started from.
        os.chdir(REPO_ROOT)
        deployment = nightly_deployment(root, cron=args.cron, timezone=args.timezone, dry_run=args.dry_run)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve(deployment)
    return 0
