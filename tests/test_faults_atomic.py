"""Atomic writes under SIGKILL, and readers that never take a torn file for a valid one.

A writer process rewrites config.json, manifest.json, a run record, agent/result.json,
judge/result.json (consensus) and run_result.json in a loop with multi-MB payloads and
is SIGKILLed at random moments, many times over: every file is always either its old
or its new version, complete (its embedded digest matches), and the temp files killed
writers leave behind are never read as results. Then every cut point of real fixture
files is written by hand: no truncated file is ever read as valid, or makes a run,
judge slot or case count as complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import FIXTURE, PYTHON, REPO_ROOT
from faults_helpers import alive, tally
from recover_helpers import recover_cli

from experiment_infra.layout import TEMP_SUFFIX, CasePaths, ExperimentPaths, SuiteRunPaths, parse_temp_name, temp_host, temp_prefix
from experiment_infra.records import (
    AgentResult,
    AgentTiming,
    CommandLog,
    Consensus,
    ExperimentConfig,
    GitProvenance,
    Judgment,
    ManifestCase,
    RunRecord,
    RunResult,
    SuiteManifest,
    read_record,
    write_record,
)
from experiment_infra.recovery.survey import RecoveryInputError, Selection, survey
from experiment_infra.status.rules import CaseStatus, JudgeStatus, RunStatus, classify_case, classify_run
from experiment_infra.files.sweep import sweep_stale_temps

MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]
KILLS = 80

# Forks one writer per request, so each SIGKILL costs a fork, not an interpreter start.
WRITER = textwrap.dedent(
    '''
    import hashlib, json, os, random, sys
    from pathlib import Path
    from experiment_infra.files.atomic import atomic_write_json
    from experiment_infra.records import (AgentResult, Consensus, GitProvenance, ManifestCase, RunRecord,
                                          RunResult, SuiteManifest, read_record, write_record)

    case_dir, run_dir, run_dir_std = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    agent_tpl = read_record(run_dir / "agent" / "result.json", AgentResult).record
    result_tpl = read_record(run_dir / "run_result.json", RunResult).record
    consensus_tpl = read_record(run_dir / "judge" / "result.json", Consensus).record

    def blob(gen, size):
        text = f"gen {gen} " + "".join(random.choice("abcdefghij\\n\\"\\\\é") for _ in range(64)) * (size // 64)
        return text, hashlib.sha256(text.encode()).hexdigest()

    def write_all(gen):
        size = random.choice([256 * 1024, 1024 * 1024, 3 * 1024 * 1024])
        text, digest = blob(gen, size)
        targets = [
            lambda: atomic_write_json(case_dir / "config.json", {"label": text, "digest": digest}),
            lambda: write_record(run_dir_std / "manifest.json", SuiteManifest(
                experiment_name="demo", mode="standard", suite_file="s.py", entry_point="e.py", config_class="C",
                created_at="t", git=GitProvenance(sha="0" * 40, short="abcdef0"), run_dir=digest,
                cases=[ManifestCase(variant_name="v", config={"label": text})])),
            lambda: write_record(case_dir / "run_record.json", RunRecord(
                variant_name="v", command=["python", text], cwd="/", host="h", started_at="t", reason=digest,
                ended_at=None if gen % 2 else "t2", exit_code=None if gen % 2 else 0)),
            lambda: write_record(run_dir / "agent" / "result.json",
                                 agent_tpl.model_copy(update={"stdout": text, "digest": digest})),
            lambda: write_record(run_dir / "judge" / "result.json",
                                 consensus_tpl.model_copy(update={"reasoning": text, "digest": digest}), fsync=False),
            lambda: write_record(run_dir / "run_result.json",
                                 result_tpl.model_copy(update={"judge_reasoning": text, "digest": digest})),
        ]
        random.shuffle(targets)
        for write in targets:
            write()

    gen = 0
    for line in sys.stdin:
        if line.strip() == "go":
            pid = os.fork()
            if pid == 0:
                random.seed(os.getpid())
                gen = random.randrange(10**6)  # either version of the run record may be the last one written
                while True:
                    gen += 1
                    write_all(gen)
            print(pid, flush=True)
        elif line.startswith("reap"):
            _, status = os.waitpid(int(line.split()[1]), 0)
            print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else -1, flush=True)
    '''
)


def _digest_ok(text: str, digest: str) -> bool:
    return hashlib.sha256(text.encode()).hexdigest() == digest


def _check_files(case: CasePaths, run_std: SuiteRunPaths, run_dir: Path) -> None:
    """Every target is a complete old or new version: parsed, and its digest matches."""
    config = json.loads(case.config.read_text())
    assert _digest_ok(config["label"], config["digest"])
    manifest = read_record(run_std.manifest, SuiteManifest)
    assert manifest.record is not None, manifest.problem
    assert _digest_ok(manifest.record.cases[0].config["label"], manifest.record.run_dir or "")
    record = read_record(case.run_record, RunRecord)
    assert record.record is not None, record.problem
    assert _digest_ok(record.record.command[1], record.record.reason or "")
    for rel, model, field in (
        ("agent/result.json", AgentResult, "stdout"),
        ("judge/result.json", Consensus, "reasoning"),
        ("run_result.json", RunResult, "judge_reasoning"),
    ):
        read = read_record(run_dir / rel, model)
        assert read.record is not None, (rel, read.problem)
        extra = read.record.model_extra or {}
        if "digest" in extra:  # the fixture's original until the first write lands
            assert _digest_ok(getattr(read.record, field), extra["digest"]), rel


def _temp_files(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob(".*.tmp")]


@pytest.mark.slow
def test_writers_killed_at_random_moments_never_leave_a_torn_file(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    shutil.copytree(FIXTURE / "config", exp / "config")
    src = FIXTURE / "T0" / "00" / "run_01"
    run_dir = exp / "T0" / "00" / "run_01"
    for rel in ("agent", "judge"):
        shutil.copytree(src / rel, run_dir / rel)
    shutil.copyfile(src / "run_result.json", run_dir / "run_result.json")
    for p in [exp, *exp.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    run_std = SuiteRunPaths(tmp_path / "results" / "demo" / "20260101_000000_abcdef0")
    case = run_std.case("v")
    case.dir.mkdir(parents=True)

    server = subprocess.Popen(
        [PYTHON, "-c", WRITER, str(case.dir), str(run_dir), str(run_std.dir)],
        cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert server.stdin is not None and server.stdout is not None
    rng = random.Random(7)
    statuses: set[str] = set()
    try:
        # The first writer runs long enough to write every file once.
        for round_ in range(KILLS):
            server.stdin.write("go\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            time.sleep(1.5 if round_ == 0 else rng.uniform(0.0, 0.25))
            os.kill(pid, signal.SIGKILL)
            server.stdin.write(f"reap {pid}\n")
            server.stdin.flush()
            assert int(server.stdout.readline()) == signal.SIGKILL
            _check_files(case, run_std, run_dir)
            c = classify_case(case)
            assert c.status in (CaseStatus.COMPLETED, CaseStatus.PARTIAL) and "unusable" not in c.reason, c
            statuses.add(c.status.value)
            r = classify_run(ExperimentPaths(exp).run("T0", "00", 1), MODELS)
            assert r.status is RunStatus.COMPLETED, r
            tally("kill", faults=1, runs=2, files=6)
    finally:
        server.kill()
        server.wait()

    leftovers = _temp_files(tmp_path)
    # Kills landed inside writes (else this test proved nothing), and what they left is
    # only ever a dot-named temp file that no reader takes for a result, named after its
    # writer (this host, a pid now gone).
    assert leftovers, "no kill landed inside a write"
    assert all(p.name.startswith(".") and p.name.endswith(".tmp") for p in leftovers)
    owners = [parse_temp_name(p.name) for p in leftovers]
    assert all(o is not None and o.host == temp_host(socket.gethostname()) and not alive(o.pid) for o in owners), leftovers
    assert statuses == {"completed", "partial"}  # both versions of the run record were seen
    before = classify_run(ExperimentPaths(exp).run("T0", "00", 1), MODELS)
    # The sweep removes exactly those leftovers, and nothing a reader sees changes.
    assert sorted(sweep_stale_temps(tmp_path)) == sorted(leftovers)
    assert _temp_files(tmp_path) == []
    _check_files(case, run_std, run_dir)
    assert classify_run(ExperimentPaths(exp).run("T0", "00", 1), MODELS) == before
    s = survey(exp, Selection(tiers=frozenset({"T0"})))
    assert [r.status for r in s.runs] == [RunStatus.COMPLETED]


def _temp_of(target: Path, host: str, pid: int) -> Path:
    temp = target.parent / f"{temp_prefix(target, host, pid)}x1y2z3{TEMP_SUFFIX}"
    temp.write_bytes(target.read_bytes()[:50])
    return temp


def test_a_real_recovery_sweeps_the_temps_of_dead_writers_only(small_exp: Path, tmp_path: Path) -> None:
    """Before it writes, a recovery removes what writers on this host killed mid-write left
    (their pid is gone) where it writes (the experiment's own files, the runs it works on);
    a live writer's temp, another host's, an unknown-writer temp and those inside kept
    attempts stay."""
    host = socket.gethostname()
    gone = subprocess.run([PYTHON, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead_pid = int(gone.stdout)
    assert not alive(dead_pid)
    live = subprocess.Popen([PYTHON, "-c", "import time; time.sleep(600)"])
    try:
        exp = ExperimentPaths(small_exp)
        run = exp.run("T1", "01", 1)
        stale = [_temp_of(run.run_result, host, dead_pid), _temp_of(run.judge_slot(2).judgment, host, dead_pid),
                 _temp_of(exp.config, host, dead_pid)]
        kept = [_temp_of(run.agent_result, host, live.pid), _temp_of(run.consensus, "elsewhere.example.org", dead_pid)]
        old_style = run.dir / f".{run.run_result.name}.k3j2h1.tmp"
        old_style.write_text("{")
        aside = exp.subtest("T0", "00").failed_dir / "run_01_attempt_1"
        aside.mkdir(parents=True)
        (aside / "run_result.json").write_text("{}")
        kept += [old_style, _temp_of(aside / "run_result.json", host, dead_pid)]
        run.run_result.unlink()  # the recovery regenerates it: this run is written to
        tally("torn", faults=len(stale) + len(kept))

        done = recover_cli(str(small_exp), "--tier", "T0", "--tier", "T1")
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert [p for p in stale if p.exists()] == []
        assert [p for p in kept if not p.exists()] == []
        assert [r.status for r in survey(small_exp, Selection(tiers=frozenset({"T0", "T1"}))).runs] == [RunStatus.COMPLETED] * 2
        tally(runs=2)
    finally:
        live.kill()
        live.wait()


# ------------------------------------------------------------- torn by hand


def _cuts(raw: bytes) -> range:
    """Every strict prefix that loses content (trailing whitespace is not content)."""
    return range(0, len(raw.rstrip()))


RUN_FILES = {
    "agent/command_log.json": (CommandLog, "run"),
    # The agent's duration is also in command_log.json and run_result.json (older ProjectScylla
    # wrote no timing.json): a torn one leaves a finished run completed, never rerun.
    "agent/timing.json": (AgentTiming, "duration"),
    "agent/result.json": (AgentResult, "run"),
    "judge/result.json": (Consensus, "run"),
    "run_result.json": (RunResult, "run"),
    "judge/judge_02/judgment.json": (Judgment, "judge"),
}


@pytest.fixture
def small_exp(tmp_path: Path) -> Path:
    """Two runs of the fixture (no workspaces): enough for the rules, quick to classify."""
    exp = tmp_path / "exp"
    shutil.copytree(FIXTURE / "config", exp / "config")
    for tier, subtest in (("T0", "00"), ("T1", "01")):
        src = FIXTURE / tier / subtest / "run_01"
        dest = exp / tier / subtest / "run_01"
        for rel in ("agent", "judge"):
            shutil.copytree(src / rel, dest / rel)
        shutil.copyfile(src / "run_result.json", dest / "run_result.json")
    for p in [exp, *exp.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return exp


@pytest.mark.parametrize("rel", list(RUN_FILES))
def test_every_truncation_of_a_fixture_file_is_never_valid(small_exp: Path, rel: str) -> None:
    model, kind = RUN_FILES[rel]
    paths = ExperimentPaths(small_exp).run("T1", "01", 1)
    target = paths.dir / rel
    raw = target.read_bytes()
    assert read_record(target, model).record is not None  # the original is valid
    for cut in _cuts(raw):
        target.write_bytes(raw[:cut])
        read = read_record(target, model)
        assert read.record is None and read.problem and read.problem.startswith("invalid"), (cut, read.problem)
        c = classify_run(paths, MODELS)
        if kind == "run":
            assert c.status is not RunStatus.COMPLETED, (cut, c)
        elif kind == "duration":
            assert c.status is RunStatus.COMPLETED and all(j.status is JudgeStatus.COMPLETE for j in c.judges), (cut, c)
        else:
            assert c.status is RunStatus.COMPLETED and c.judges[1].status is JudgeStatus.FAILED, (cut, c)
        assert c.reason.strip() and all(j.reason.strip() for j in c.judges)
    tally("torn", faults=len(_cuts(raw)), runs=len(_cuts(raw)))
    target.write_bytes(raw)
    assert classify_run(paths, MODELS).status is RunStatus.COMPLETED


def test_every_truncation_of_the_experiment_config_is_refused_in_one_line(small_exp: Path) -> None:
    config = ExperimentPaths(small_exp).config
    raw = config.read_bytes()
    assert read_record(config, ExperimentConfig).record is not None
    for cut in _cuts(raw):
        config.write_bytes(raw[:cut])
        with pytest.raises(RecoveryInputError) as err:
            survey(small_exp, Selection())
        assert "\n" not in str(err.value) and "experiment.json" in str(err.value)
    tally("torn", faults=len(_cuts(raw)))


def _standard_run(tmp_path: Path) -> tuple[SuiteRunPaths, CasePaths]:
    run = SuiteRunPaths(tmp_path / "results" / "demo" / "20260101_000000_abcdef0")
    case = run.case("v")
    case.dir.mkdir(parents=True)
    write_record(run.manifest, SuiteManifest(
        experiment_name="demo", mode="standard", suite_file="s.py", entry_point="e.py", config_class="C",
        created_at="2026-01-01T00:00:00+00:00", git=GitProvenance(sha="0" * 40, short="abcdef0"),
        cases=[ManifestCase(variant_name="v", config={"lr": 0.1, "names": ["a", "b"]})],
    ))
    write_record(case.run_record, RunRecord(
        variant_name="v", command=["python", "entry.py", "--lr=0.1"], cwd="/work", attempt=1, host="h", pid=12,
        started_at="2026-01-01T00:00:00+00:00", ended_at="2026-01-01T00:00:05+00:00", exit_code=0,
        duration_seconds=5.0,
    ))
    return run, case


def test_every_truncation_of_a_run_record_or_manifest_is_never_valid(tmp_path: Path) -> None:
    run, case = _standard_run(tmp_path)
    assert classify_case(case).status is CaseStatus.COMPLETED
    raw = case.run_record.read_bytes()
    for cut in _cuts(raw):
        case.run_record.write_bytes(raw[:cut])
        c = classify_case(case)
        assert c.status is CaseStatus.PARTIAL and "unusable" in c.reason, (cut, c)
    case.run_record.write_bytes(raw)
    manifest = run.manifest.read_bytes()
    for cut in _cuts(manifest):
        run.manifest.write_bytes(manifest[:cut])
        with pytest.raises(RecoveryInputError) as err:
            survey(run.dir, Selection())
        assert "\n" not in str(err.value) and "manifest.json" in str(err.value)
    tally("torn", faults=len(_cuts(raw)) + len(_cuts(manifest)), runs=len(_cuts(raw)))


def test_temp_files_beside_results_are_never_read_as_results(small_exp: Path, tmp_path: Path) -> None:
    """What a killed writer leaves (``.{name}.XXXX.tmp``) changes no status, even when it is
    the only copy of a result: the result then counts as missing, not as present."""
    paths = ExperimentPaths(small_exp).run("T1", "01", 1)
    for rel in ("agent/result.json", "run_result.json", "judge/result.json"):
        target = paths.dir / rel
        (target.parent / f".{target.name}.k3j2h1.tmp").write_bytes(target.read_bytes()[:100])
    assert classify_run(paths, MODELS).status is RunStatus.COMPLETED
    paths.run_result.rename(paths.dir / f".{paths.run_result.name}.full.tmp")  # a complete copy, but a temp name
    c = classify_run(paths, MODELS)
    assert c.status is RunStatus.RESULTS and "run_result.json missing" in c.reason
    run, case = _standard_run(tmp_path)
    case.run_record.rename(case.dir / f".{case.run_record.name}.x.tmp")
    assert classify_case(case).status is CaseStatus.MISSING
    tally("torn", faults=5, runs=2)


def test_reads_remembered_within_a_rebuild_see_its_own_writes(tmp_path: Path) -> None:
    from experiment_infra.records import AgentTiming, read_once, read_record, write_record

    path = tmp_path / "timing.json"
    write_record(path, AgentTiming(agent_duration_seconds=1.0, measured_at="2026-01-01T00:00:00"))
    with read_once():
        first = read_record(path, AgentTiming).record
        assert read_record(path, AgentTiming).record is first  # read once
        write_record(path, AgentTiming(agent_duration_seconds=2.0, measured_at="2026-01-01T00:00:01"))
        assert read_record(path, AgentTiming).record.agent_duration_seconds == 2.0  # the write is seen
    path.write_text("{}")  # outside the block every read goes to the file
    assert read_record(path, AgentTiming).record is None
