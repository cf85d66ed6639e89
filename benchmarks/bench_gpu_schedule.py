"""How close ``--gpus`` keeps every device busy: makespan against the ideal schedule.

    python benchmarks/bench_gpu_schedule.py [-n 16] [--devices 4] [--seed 1] 2>/dev/null

Runs a real suite (``python flows/run_suite.py``) of N cases, each asking for one GPU
and sleeping a random duration, on D stand-in devices (``--gpus 0,1,...``; no GPU
needed). The makespan is read from the cases' own start and end times; the ideal is
the lower bound no schedule can beat for those durations: max(total / D, longest).
Reported (run by hand; no test asserts on time): makespan, ideal, their ratio, the same
against the best in-order greedy schedule (what any scheduler that cannot know the
durations gets with free start-ups), and
whether any device ever ran two cases at once (it must not).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

ENTRY = """
import json, os, sys, time
from pathlib import Path
args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
start = time.time()
time.sleep(float(args["seconds"]))
out = Path(args["output_dir"])
(out / "span.json").write_text(json.dumps({"device": os.environ["CUDA_VISIBLE_DEVICES"], "start": start, "end": time.time()}))
"""

SUITE = """
from experiment_infra import BaseExperimentConfig, ExperimentCase

class SleepConfig(BaseExperimentConfig):
    seconds: float = 0.0

experiment_name = "gpu_schedule"
entry_point = "entry.py"
gpus = 1
cases = [ExperimentCase(f"case{{i:03d}}", SleepConfig(seconds=s)) for i, s in enumerate({durations!r})]
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=16, help="cases (default 16)")
    parser.add_argument("--devices", type=int, default=4, help="stand-in devices (default 4)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    durations = [round(rng.uniform(1.0, 4.0), 2) for _ in range(args.n)]
    with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
        where = Path(tmp)
        (where / "entry.py").write_text(ENTRY)
        (where / "suite_gpu.py").write_text(SUITE.format(durations=durations))
        env = {**os.environ, "PREFECT_HOME": str(where / "prefect-home")}
        devices = ",".join(str(i) for i in range(args.devices))
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "flows" / "run_suite.py"), str(where / "suite_gpu.py"),
             "--results-root", str(where / "results"), "--gpus", devices],
            env=env, capture_output=True, text=True,
        )
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return done.returncode
        spans = [json.loads(p.read_text()) for p in (where / "results").glob("gpu_schedule/*/case*/span.json")]
    makespan = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    ideal = max(sum(durations) / args.devices, max(durations))
    # What a scheduler that cannot know durations gets at best: each case, in order, on the
    # device that frees first, with no start-up cost.
    free_at = [0.0] * args.devices
    for d in durations:
        free_at[free_at.index(min(free_at))] += d
    greedy = max(free_at)
    overlaps = 0
    for device in {s["device"] for s in spans}:
        held = sorted((s["start"], s["end"]) for s in spans if s["device"] == device)
        overlaps += sum(1 for (_, end), (start, _) in zip(held, held[1:]) if start < end)
    print(f"{args.n} cases on {args.devices} devices, durations {min(durations):.2f}-{max(durations):.2f} s")
    print(f"makespan {makespan:.2f} s, ideal {ideal:.2f} s: ratio {makespan / ideal:.3f}")
    print(f"in-order greedy schedule with no start-up cost {greedy:.2f} s: ratio {makespan / greedy:.3f}")
    print(f"devices used: {len({s['device'] for s in spans})}; overlapping cases on a device: {overlaps}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
