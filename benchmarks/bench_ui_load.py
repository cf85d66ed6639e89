"""A kept server and its UI under a large suite: every case recorded, no 503, the UI answering.

    python benchmarks/bench_ui_load.py [--n 10000] [-p 8] [--entry full|minimal] [--server-settings kept|prefect|temporary]

Starts a Prefect server as a user keeps one (``prefect server start --host 127.0.0.1
--port FREE``, UI on, SQLite, in a new ``PREFECT_HOME`` under a temporary work dir), runs
bench_scale's suite (the spec's shape: a config module, an entry point that reads its
command line and writes one file) with ``python suite.py -p 8`` against it
(``PREFECT_API_URL``), and meanwhile, every 1.5 s, asks what the UI asks: ``GET
/api/health``, ``POST /api/task_runs/count``, ``POST /api/flow_runs/filter`` (limit 10),
the UI's index page ``GET /`` and one of its assets, timing each.

Prefect's client retries a 503 or 429 without a word, so a run that completes says
nothing about them: the statuses are counted on the server's side, from uvicorn's
access log (``PREFECT_SERVER_LOGGING_LEVEL=INFO`` makes ``prefect server start`` log
one ``uvicorn.access`` line per response; the script checks the line for its own
health check appears before it starts the suite, and stops if it does not).

Reported, and checked (exit 1 when a check fails; no test runs this):

- every case directory reads ``completed`` (``classify_case``, as bench_scale's
  ``count_completed``);
- the server holds N ``run_case`` task runs in state Completed for the suite's flow run
  (``/api/task_runs/count``, polled until it stops changing after the suite exits: how
  long the server took to catch up is reported, and each task run's recording lag: its
  ``updated`` against its ``end_time``, how late the UI showed the case finished);
- no 5xx response (503 counted apart) and no 429 in the access log; ERROR lines in its log;
- every probe answered 2xx, with p95 latency under ``--responsive-s`` (default 2 s), and
  the max shown;
- the server's peak RSS and CPU (its process tree, sampled every 0.5 s), and wall time.

``--entry minimal``: the entry point parses ``--output_dir``/``--index`` with argparse
instead of building the pydantic config: 0.05 s of CPU per case against 0.5 s (measured
here), so 10,000 cases on 2 CPUs spend about 4 min on their entry points, not 40.
``--server-settings``: ``kept`` (default) as ``make server`` starts it (Prefect's settings
but the task-run recorder's batch, ``prefect_settings.recorder_batch``); ``prefect``,
Prefect's own; ``temporary``, the temporary server's (the batch, and triggers off).
The server is stopped on exit, on Ctrl-C and on SIGTERM, and dies with this script
if it is killed (PR_SET_PDEATHSIG).

Smoke results, not the issue's 10,000: a 2-CPU machine shared with other work, load
average (``uptime``) 9-26 throughout; probe latency mostly measures that load. No 5xx
and no 429 in any run; every case dir ``completed`` and every task run Completed.

- ``--n 200`` (full entry, Prefect's settings, which ``make server`` had then; load 16.2 before, 14.7 after): suite 131.8 s;
  515 responses; server peak RSS 274 MB, CPU 29.2 s in the run (146 ms/case); probes
  p95 / max: health 0.56 / 6.02 s, task_runs/count 1.15 / 2.05, flow_runs/filter
  1.57 / 1.98, UI / 0.68 / 1.44, asset 0.85 / 1.39; recording lag (from its database)
  p50 9.0 s, max 37.5 s.
- ``--n 1000 --entry minimal`` (Prefect's settings, as ``make server`` then; load 14.2 -> 15.9):
  suite 149.5 s (6.7 cases/s); the server held all 1000 Completed only 195 s after the
  suite exited: recording lag p50 170 s, max 204 s (its task-run recorder, a transaction
  per event, fell behind: the API, so the UI, had finished cases Completed minutes late); 1251
  responses; peak RSS 289 MB, CPU 105 s (105 ms/case); probes p95 / max: health
  0.42 / 2.58, count 1.20 / 3.56, filter 1.89 / 3.80, UI / 0.86 / 2.00, asset 0.92 / 8.67.
- the same with ``--server-settings temporary`` (load 9.6 -> 25.8): suite 151.3 s, all 1000
  Completed as the suite exited, recording lag p50 2.4 s, max 9.1 s; 354 responses; peak
  RSS 291 MB, CPU 28 s (28 ms/case); probes p95 / max: health 0.92 / 1.15, count
  2.30 / 9.55, filter 3.18 / 9.20, UI / 1.72 / 2.32, asset 1.57 / 5.92 (p95 over 2 s:
  the responsiveness check failed, at a load of 26).
- ``--n 10000 --entry minimal`` (kept settings, as ``make server`` now starts it; beside a
  fresh clone's ``make example``, load 4 before, 7-12 during): suite 722.5 s (13.8 cases/s),
  10000/10000 case dirs completed and 10000 task runs Completed as the suite exited;
  recording lag p50 1.4 s, p95 10.1 s, max 16.7 s; 2148 responses, no 5xx, no 429 (two 422
  from ``/api/csrf-token``: Prefect's client asking a server with CSRF protection off), no
  ERROR line; server peak RSS 355 MB, 22.6 ms of CPU per case; probes p95 / max: health
  0.70 / 4.24, count 1.78 / 5.81, filter 2.12 / 15.31, UI / 1.34 / 4.66, asset 1.16 / 5.67
  (all 2xx; filter's p95 just over the 2 s bound at that load).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from bench_scale import REPO_ROOT, count_completed, write_suite

sys.path.insert(0, str(REPO_ROOT))

from experiment_cli.prefect_settings import recorder_batch  # noqa: E402
from experiment_cli.temporary_server import TRIGGERS_SETTING  # noqa: E402
from experiment_infra.processes.process import dying_with_parent  # noqa: E402

MINIMAL_ENTRY = """
import argparse
from pathlib import Path

# The spec's shape without pydantic: read the command line, write one file.
parser = argparse.ArgumentParser()
parser.add_argument("--output_dir", required=True)
parser.add_argument("--index", type=int, default=0)
args, _ = parser.parse_known_args()
Path(args.output_dir).mkdir(parents=True, exist_ok=True)
(Path(args.output_dir) / "done.txt").write_text(str(args.index))
"""

START_SECONDS = 300.0  # a new home migrates its database first (15-60 s on a loaded machine)
STOP_GRACE_SECONDS = 15.0
PROBE_EVERY = 1.5
PROBE_TIMEOUT = 60.0
# One line per response, in uvicorn's format until Prefect's logging setup takes its loggers
# over during the server's start (``INFO:     ADDR - "GET /x HTTP/1.1" 200 OK``), then in
# Prefect's (``... | INFO    | uvicorn.access - ADDR - "GET /x HTTP/1.1" 200``).
ACCESS = re.compile(r'\d+\.\d+\.\d+\.\d+:\d+ - "(\S+) (\S+) HTTP/[\d.]+" (\d{3})')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PROBE_TIMEOUT)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def api(port: int, path: str, body: dict) -> object:
    status, data = request(port, "POST", f"/api{path}", body)
    if status // 100 != 2:
        raise RuntimeError(f"POST /api{path}: HTTP {status}: {data[:300]!r}")
    return json.loads(data)


class Server:
    """``prefect server start`` in a session of its own, logging every response."""

    def __init__(self, home: Path, settings: str) -> None:
        self.port, self.log = free_port(), home / "server.log"
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update(PREFECT_HOME=str(home), PREFECT_SERVER_LOGGING_LEVEL="INFO", PYTHONUNBUFFERED="1")
        if settings != "prefect":  # what `make server` starts it with (kept), or the temporary server's
            env.update(recorder_batch())
        if settings == "temporary":
            env[TRIGGERS_SETTING] = "false"
        argv = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)]
        home.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(dying_with_parent(argv), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self.peak_rss, self.cpu = 0, 0.0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.5):
            try:
                top = psutil.Process(self.proc.pid)
                procs = [top, *top.children(recursive=True)]
            except psutil.Error:
                continue
            rss, cpu = 0, 0.0
            for p in procs:
                try:
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system
                except psutil.Error:
                    pass
            self.peak_rss, self.cpu = max(self.peak_rss, rss), max(self.cpu, cpu)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"error: the Prefect server did not start (see {self.log})")
            try:
                if request(self.port, "GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        # Counting statuses needs the access log: the health check just made must show in it.
        for _ in range(40):
            if any(m.group(2) == "/api/health" for m in ACCESS.finditer(self.log.read_text(errors="replace"))):
                return
            time.sleep(0.25)
        sys.exit(f"error: the server logs no uvicorn.access lines; its statuses cannot be counted (see {self.log})")

    def statuses(self) -> tuple[Counter[int], Counter[str], int]:
        """Responses by status, 5xx and 429 responses by method and path, ERROR lines (a 422 from
        ``/api/csrf-token`` is the client asking a server with CSRF protection off: normal)."""
        by_status: Counter[int] = Counter()
        bad: Counter[str] = Counter()
        errors = 0
        with open(self.log, errors="replace") as log:
            for line in log:
                m = ACCESS.search(line)
                if m:
                    code = int(m.group(3))
                    by_status[code] += 1
                    if code >= 500 or code == 429:
                        bad[f"{code} {m.group(1)} {m.group(2).split('?')[0]}"] += 1
                elif ("| ERROR" in line or "| CRITICAL" in line) and "telemetry" not in line:
                    errors += 1  # telemetry: a machine without internet access, not load
        return by_status, bad, errors

    def stop(self) -> None:
        self._stop.set()
        if self.proc.poll() is None:
            # Our own child, not yet reaped: its pid (and its session's group) is still ours.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Probes:
    """What the UI asks, every PROBE_EVERY seconds, timed; statuses other than 2xx kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        status, index = request(port, "GET", "/")
        asset = re.search(rb'src="(/assets/[^"]+\.js)"', index)
        if status != 200 or asset is None:
            sys.exit(f"error: the server's UI did not answer (GET / -> {status}); is the UI enabled?")
        self.checks = {
            "health": ("GET", "/api/health", None),
            "task_runs/count": ("POST", "/api/task_runs/count", {}),
            "flow_runs/filter": ("POST", "/api/flow_runs/filter", {"limit": 10, "sort": "START_TIME_DESC"}),
            "UI /": ("GET", "/", None),
            "UI asset": ("GET", asset.group(1).decode(), None),
        }
        self.latency: dict[str, list[float]] = {k: [] for k in self.checks}
        self.failures: Counter[str] = Counter()
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            for name, (method, path, body) in self.checks.items():
                t0 = time.monotonic()
                try:
                    status = request(self.port, method, path, body)[0]
                except (OSError, http.client.HTTPException) as exc:
                    status = type(exc).__name__
                self.latency[name].append(time.monotonic() - t0)
                if not (isinstance(status, int) and status // 100 == 2):
                    self.failures[f"{name} {status}"] += 1
            self.rounds += 1
            self._stop.wait(max(0.0, PROBE_EVERY - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(PROBE_TIMEOUT * len(self.checks))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def recorded(port: int, n: int) -> tuple[dict, int, int, int, float]:
    """The suite's flow run, its Completed ``run_case`` task runs at once and once the count
    reaches N or stops changing for 30 s, all its task runs, and the seconds it took (the
    server's task-run recorder works through its backlog of events after the flow ends)."""
    started, last, still_since, first, said = time.monotonic(), -1, time.monotonic(), None, time.monotonic()
    while True:
        runs = api(port, "/flow_runs/filter", {"flows": {"name": {"any_": ["run_suite"]}}, "sort": "START_TIME_DESC", "limit": 1})
        if not runs:
            sys.exit("error: the server holds no run_suite flow run")
        flow_run = runs[0]
        mine = {"flow_runs": {"id": {"any_": [flow_run["id"]]}}}
        done = api(port, "/task_runs/count", {**mine, "task_runs": {
            "name": {"like_": "case"}, "state": {"type": {"any_": ["COMPLETED"]}, "name": {"any_": ["Completed"]}}}})
        first = done if first is None else first
        if done != last:
            last, still_since = done, time.monotonic()
        if time.monotonic() - said > 60:
            said = time.monotonic()
            print(f"the server has {done}/{n} task runs Completed so far", file=sys.stderr, flush=True)
        if done >= n or time.monotonic() - still_since > 30:
            total = api(port, "/task_runs/count", mine)
            return flow_run, int(first), int(done), int(total), time.monotonic() - started
        time.sleep(1.0)


def recording_lag(port: int, flow_run_id: str) -> list[float]:
    """Seconds between each Completed task run's end and the server's last write of it (its
    ``updated``): how late the UI showed the case finished."""
    from datetime import datetime

    lags, offset = [], 0
    while True:
        page = api(port, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run_id]}}, "task_runs": {
            "state": {"type": {"any_": ["COMPLETED"]}}}, "sort": "ID_DESC", "limit": 200, "offset": offset})
        for tr in page:
            if tr.get("end_time") and tr.get("updated"):
                lags.append((datetime.fromisoformat(tr["updated"]) - datetime.fromisoformat(tr["end_time"])).total_seconds())
        if len(page) < 200:
            return lags
        offset += len(page)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(args: argparse.Namespace, work: Path, received: list[int]) -> bool:
    suite = write_suite(work / "suite", args.n)
    if args.entry == "minimal":
        (suite.parent / "entry.py").write_text(MINIMAL_ENTRY)
    home = work / "prefect-home"
    load_before = load()
    server = Server(home, args.server_settings)
    runner: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.monotonic()
        server.wait_ready()
        ready_s = time.monotonic() - t0
        probes = Probes(server.port)
        env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_API_URL": server.api_url,
               "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(suite.parent), *filter(None, [os.environ.get("PYTHONPATH")])])}
        cpu_before = server.cpu
        started = time.monotonic()
        argv = [sys.executable, str(suite), "-p", str(args.p), "--results-root", str(work / "results")]
        with open(work / "suite.log", "wb") as out:
            # In this script's process group: a Ctrl-C reaches the suite too, which stops as it does for a user.
            runner = subprocess.Popen(argv, env=env, cwd=suite.parent, stdout=out, stderr=subprocess.STDOUT)
        code = runner.wait()
        wall = time.monotonic() - started
        flow_run, first_api, done_api, total_api, catch_up = recorded(server.port, args.n)
        cpu_run = server.cpu - cpu_before
        lags = recording_lag(server.port, flow_run["id"])
        probes.stop()
        done, dirs = count_completed(work / "results")
        by_status, bad, errors = server.statuses()
    finally:
        if runner is not None and runner.poll() is None:
            if received and received[-1] != signal.SIGINT:
                runner.send_signal(signal.SIGINT)  # the terminal's Ctrl-C reached it already; SIGTERM did not
            try:
                runner.wait(60)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
        server.stop()

    last_line = (work / "suite.log").read_text(errors="replace").strip().splitlines()[-1:] or [""]
    n, ok = args.n, True
    fives = sum(c for s, c in by_status.items() if s >= 500)
    lines = [f"{n} cases (entry {args.entry}), -p {args.p}, {os.cpu_count()} CPU(s), load {load_before} before, "
             f"{load()} after; kept server `prefect server start` (UI on, SQLite, {args.server_settings} settings), "
             f"ready in {ready_s:.0f} s; work dir {work}"]
    lines.append(f"suite: exit {code}, wall {wall:.1f} s ({n / wall:.1f} cases/s); case dirs completed {done}/{dirs}; last line: {last_line[0][:120]}")
    lines.append(f"server: flow run {flow_run['name']!r} {flow_run['state_type']}; run_case task runs Completed {done_api}/{n}"
                 f" ({total_api} task runs in all) {catch_up:.0f} s after the suite exited, {first_api} as it exited")
    lines.append(f"server recording lag (a task run's end to its last write, what the UI shows late): p50 "
                 f"{percentile(lags, 0.5):.1f} s, p95 {percentile(lags, 0.95):.1f} s, max {max(lags, default=float('nan')):.1f} s")
    lines.append(f"server responses: {sum(by_status.values())} ("
                 + ", ".join(f"{s}: {c}" for s, c in sorted(by_status.items()))
                 + f"); 5xx {fives} (503: {by_status[503]}), 429 {by_status[429]}; ERROR lines in its log {errors}")
    if bad:
        lines.append("  5xx/429 by request: " + ", ".join(f"{k} x{c}" for k, c in bad.most_common(5)))
    lines.append(f"server process: peak RSS {server.peak_rss / 2**20:.0f} MB, CPU {cpu_run:.1f} s during the run"
                 f" ({cpu_run * 1000 / n:.1f} ms/case), {server.cpu:.1f} s in all")
    lines.append(f"probes ({probes.rounds} rounds, every {PROBE_EVERY} s; p95 / max s): " + ", ".join(
        f"{k} {percentile(v, 0.95):.2f} / {max(v, default=float('nan')):.2f}" for k, v in probes.latency.items()))
    slow = [k for k, v in probes.latency.items() if percentile(v, 0.95) > args.responsive_s]
    lines.append("probe failures: " + (", ".join(f"{k} x{c}" for k, c in probes.failures.items()) or "none"))
    checks = {
        "suite exit 0": code == 0,
        f"{n} case dirs completed": done == n == dirs,
        f"{n} task runs Completed on the server": done_api == n,
        "no 5xx or 429": fives == 0 and by_status[429] == 0,
        f"probes all 2xx, p95 under {args.responsive_s:g} s": not probes.failures and not slow,
    }
    ok = all(checks.values())
    lines.append("checks: " + "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()))
    print("\n".join(lines))
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", "-n", type=int, default=10000, help="number of cases (default 10000)")
    parser.add_argument("-p", type=int, default=8, help="concurrent cases (default 8)")
    parser.add_argument("--entry", choices=["full", "minimal"], default="full",
                        help="full: bench_scale's entry point (builds the config); minimal: argparse only")
    parser.add_argument("--server-settings", choices=["kept", "prefect", "temporary"], default="kept",
                        help="kept (default): as `make server` starts it; prefect: Prefect's own; temporary: the temporary server's")
    parser.add_argument("--responsive-s", type=float, default=2.0, help="p95 probe latency counted as responsive")
    args = parser.parse_args()
    received: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGINT, lambda s, f: on_signal(signal.SIGINT, f))
    work = Path(tempfile.mkdtemp(prefix="bench-ui-load-"))
    try:
        ok = run(args, work, received)
    except KeyboardInterrupt:
        sys.exit(f"interrupted; the server is stopped; work dir {work}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
