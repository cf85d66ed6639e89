"""Ctrl-C on a running suite: seconds from the signal to the command's exit.

    python benchmarks/bench_interrupt.py [-n 8] [--signal INT|TERM] [--route run_suite|suite] [--repeat 3]

Writes a suite of ``-n`` cases whose entry points sleep 120 s, starts it as a user
would (``python flows/run_suite.py SUITE``, or ``python SUITE`` with ``--route suite``)
in a session of its own with Prefect's temporary server, waits until every case's
run record names its entry point's pid, then sends the signal to the command's
process group, as a terminal's Ctrl-C does. Reported per try: the seconds from the
signal to the exit, the exit code (130 expected), how many cases' records say
``interrupted`` with that signal, how many entry points are still alive afterwards
(0 expected), and whether ``report.md`` was written. No test asserts on these times.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

ENTRY = """
import time
from bench_interrupt_config import SleepConfig
config = SleepConfig()
time.sleep(config.seconds)
"""

CONFIG = """
from experiment_infra import BaseExperimentConfig

class SleepConfig(BaseExperimentConfig):
    seconds: float = 120.0
"""

SUITE = """
from bench_interrupt_config import SleepConfig
from experiment_infra import ExperimentCase, run_experiments_cli

cases = [ExperimentCase(f"case{{i}}", SleepConfig()) for i in range({n})]

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="entry.py", experiment_name="interrupt")
"""


def _records(results: Path) -> list[dict]:
    out = []
    for path in sorted(results.glob("interrupt/*/*/run_record.json")):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            pass  # being written
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def one_try(n: int, signum: int, route: str, where: Path) -> dict:
    suite_dir = where / "suite"
    suite_dir.mkdir(parents=True)
    (suite_dir / "bench_interrupt_config.py").write_text(CONFIG)
    (suite_dir / "entry.py").write_text(ENTRY)
    (suite_dir / "suite_interrupt.py").write_text(SUITE.format(n=n))
    results = where / "results"
    env = {**os.environ, "PREFECT_HOME": str(where / "prefect-home"), "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PREFECT_API_URL", None)  # the temporary server, as a new user has it
    if route == "suite":
        argv = [sys.executable, "suite_interrupt.py", "--results-root", str(results)]
    else:
        argv = [sys.executable, str(REPO_ROOT / "flows" / "run_suite.py"), "suite_interrupt.py", "--results-root", str(results)]
    with open(where / "stdout.log", "wb") as out, open(where / "stderr.log", "wb") as err:
        proc = subprocess.Popen(argv, cwd=suite_dir, env=env, stdout=out, stderr=err, start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            records = _records(results)
            if len(records) == n and all(r.get("pid") for r in records):
                break
            if proc.poll() is not None:
                raise SystemExit(f"the run ended before its cases started: {(where / 'stderr.log').read_text()[-2000:]}")
            time.sleep(0.1)
        else:
            proc.kill()
            raise SystemExit("the cases did not all start within 300 s")
        pids = [r["pid"] for r in _records(results)]
        started = time.monotonic()
        os.killpg(proc.pid, signum)  # as a terminal's Ctrl-C: the whole foreground group
        code = proc.wait(timeout=600)
        seconds = time.monotonic() - started
    records = _records(results)
    name = signal.Signals(signum).name
    return {
        "seconds": round(seconds, 2),
        "exit_code": code,
        "interrupted_records": sum(1 for r in records if r.get("interrupted") == name and r.get("ended_at")),
        "cases": n,
        "alive_after": sum(1 for p in pids if _alive(p)),
        "report_md": any(results.glob("interrupt/*/report.md")),
        "resume_line": "resume with:" in (where / "stderr.log").read_text(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=8, help="running cases (default 8)")
    parser.add_argument("--signal", choices=("INT", "TERM"), default="INT")
    parser.add_argument("--route", choices=("run_suite", "suite"), default="run_suite")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    signum = getattr(signal, f"SIG{args.signal}")
    tries = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-interrupt-") as tmp:
            tries.append(one_try(args.n, signum, args.route, Path(tmp)))
            print(json.dumps(tries[-1]), flush=True)
    times = sorted(t["seconds"] for t in tries)
    print(f"SIG{args.signal} to {args.n} running cases ({args.route}): median {times[len(times) // 2]:.2f} s from the signal to the exit")


if __name__ == "__main__":
    main()
