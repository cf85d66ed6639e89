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

import os
from pathlib import Path
from typing import Sequence

from experiment_cli.common import BAD_INPUT, Parser, prepare_prefect, report
from experiment_infra.recovery.walk import results_root_dir
from experiment_infra.running.services import ServiceError

REPO_ROOT = Path(__file__).resolve().parents[1]


def build_parser() -> Parser:
    """The command line (also what the documentation's command-line reference shows)."""
    from deployments.nightly import DEFAULT_CRON, DEFAULT_TIMEZONE

    p = Parser(prog="deployments/serve.py", description="Serve the nightly-recovery deployment (no work pool needed).")
    p.add_argument("--results-root", default="results", metavar="R", help="directory the nightly run scans (default: results)")
    p.add_argument("--cron", default=DEFAULT_CRON, metavar="C", help=f"when to run (default: {DEFAULT_CRON!r}, 02:00)")
    p.add_argument("--timezone", default=DEFAULT_TIMEZONE, metavar="TZ", help=f"time zone of the cron (default: {DEFAULT_TIMEZONE})")
    p.add_argument("--dry-run", action="store_true", help="scheduled runs only classify and list; write nothing")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # A process that serves for months meets a busy server now and then: the command lines'
    # generous client retries, set before Prefect reads its settings (deployments.nightly
    # imports it).
    prepare_prefect()
    from deployments.nightly import nightly_deployment

    args = build_parser().parse_args(argv)
    from prefect import serve

    from flows.api_check import check_api

    try:
        # A root that is no directory would fail every night: refused now, before the server is asked.
        root = str(results_root_dir(args.results_root))
        if not check_api():
            raise ServiceError("serving a deployment needs a Prefect server: start one (prefect server start) and set PREFECT_API_URL")
        # The deployment records its entrypoint relative to the working directory: make it
        # flows/nightly.py, whatever directory this was started from.
        os.chdir(REPO_ROOT)
        deployment = nightly_deployment(root, cron=args.cron, timezone=args.timezone, dry_run=args.dry_run)
    except BAD_INPUT as exc:
        return report(exc)
    serve(deployment)
    return 0
