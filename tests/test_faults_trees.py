"""Hostile and malformed experiment trees (hypothesis): classification never crashes, never
reads through a symlink out of the experiment, and always answers with a documented
status and a reason.

Each example starts from a skeleton of the ProjectScylla fixture (the files the status
rules read) or a synthetic standard-mode run directory, and damages it at random:
missing, truncated, empty, non-UTF-8 and wrongly typed JSON, multi-MB files, FIFOs,
directories where files belong, unexpected entries, and symlinks pointing outside the
experiment, to files and to directories (run, agent, judge, judge slot, subtest, tier),
at a decoy whose files would classify as complete. An audit hook watches every open
and directory listing during classification: none may resolve outside the experiment.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from conftest import FIXTURE
from faults_helpers import tally
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from experiment_infra.layout import CasePaths, ExperimentPaths, SuiteRunPaths
from experiment_infra.records import (
    AgentEvalManifest,
    ConditionRecord,
    GitProvenance,
    ManifestCase,
    RunRecord,
    SuiteManifest,
    write_record,
)
from experiment_infra.recovery.survey import Selection, survey
from experiment_infra.recovery.render import render_json, render_text
from experiment_infra.status.rules import CaseStatus, JudgeStatus, RunStatus, classify_case, classify_run

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RUNS = [("T0", "00"), ("T1", "01"), ("T2", "01"), ("T3", "01"), ("T4", "01"), ("T5", "01"), ("T6", "01")]
MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]
REQUIRED = [  # a damaged copy of any of these must never leave the run "completed"
    "agent/command_log.json", "agent/result.json", "judge/result.json", "run_result.json",
]
OUTPUT = "agent/output.txt"  # free text: only an absent, empty or non-regular one is damage
# Damage to the run itself, its agent or judge directory, or its subtest or tier directory.
RUN_LEVEL_DIRS = {"dir:.", "dir:agent", "dir:judge", "dir:..", "dir:../.."}
JUDGE_FILES = [f"judge/judge_0{n}/{name}" for n in (1, 2, 3) for name in ("judgment.json", "timing.json")]
# agent/timing.json: older ProjectScylla wrote none; command_log.json and run_result.json hold the duration.
OPTIONAL = ["agent/stderr.log", "agent/stdout.log", "agent/timing.json", "judge/timing.json", "judge/judge_01/command_log.json"]
FILES = REQUIRED + [OUTPUT] + JUDGE_FILES + OPTIONAL
DIRS = [".", "agent", "judge", "judge/judge_01", "judge/judge_02", "..", "../.."]  # run, ..., subtest, tier
HUGE = 5 * 1024 * 1024

# ------------------------------------------------------------------ read watcher

_WATCH: dict[str, Any] = {"root": None, "busy": False, "bad": []}


def _check(path: Any, flags: int | None, event: str) -> None:
    if isinstance(path, int) or path is None:
        return
    p = os.path.abspath(os.fsdecode(os.fspath(path)))
    root = _WATCH["root"]
    if not (p == root or p.startswith(root + os.sep)):
        return  # not a path into the experiment (an import, a temp file, ...)
    parent = os.path.realpath(os.path.dirname(p))
    inside = parent == root or parent.startswith(root + os.sep)
    if not inside:
        _WATCH["bad"].append(f"{event} {p}: a parent directory is a symlink leading to {parent}")
    elif os.path.islink(p) and (event != "open" or not (flags or 0) & os.O_NOFOLLOW):
        target = os.path.realpath(p)
        if not (target == root or target.startswith(root + os.sep)):
            _WATCH["bad"].append(f"{event} {p}: follows a symlink to {target}")


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _WATCH["root"] is None or _WATCH["busy"]:
        return
    if event not in ("open", "os.listdir", "os.scandir"):
        return
    _WATCH["busy"] = True
    try:
        _check(args[0], args[2] if event == "open" else None, event)
    finally:
        _WATCH["busy"] = False


sys.addaudithook(_audit)  # cannot be removed; idle unless a test sets _WATCH["root"]


@contextmanager
def watching(root: Path) -> Iterator[list[str]]:
    _WATCH.update(root=os.path.realpath(root), bad=[])
    try:
        yield _WATCH["bad"]
    finally:
        _WATCH["root"] = None


# ---------------------------------------------------------------------- trees


def _skeleton_files(run: Path) -> list[Path]:
    keep = [run / "run_result.json"]
    keep += [p for p in (run / "agent").iterdir() if p.suffix in (".json", ".txt", ".log") and p.is_file()]
    keep += [p for p in (run / "judge").rglob("*.json")]
    return keep


@pytest.fixture(scope="module")
def skeleton(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture without workspaces and reports: every file the status rules read."""
    dest = tmp_path_factory.mktemp("skeleton") / "exp"
    shutil.copytree(FIXTURE / "config", dest / "config")
    for tier, subtest in RUNS:
        src = FIXTURE / tier / subtest / "run_01"
        for f in _skeleton_files(src):
            target = dest / f.relative_to(FIXTURE)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def _decoy(skeleton: Path, outside: Path) -> None:
    """Complete runs outside the experiment, laid out so any link target exists there."""
    for tier, subtest in RUNS:
        shutil.copytree(skeleton / tier / subtest, outside / tier / subtest, dirs_exist_ok=True)


def _manifest(exp: Path) -> None:
    write_record(
        ExperimentPaths(exp).manifest,
        AgentEvalManifest(
            experiment_name="x", experiment_id="test-001", created_at="t", git=GitProvenance(sha="0" * 40, short="0000000"),
            task_repo="r", task_commit="c", conditions=[ConditionRecord(tier=t, subtest=s, model="m") for t, s in RUNS],
            runs_per_subtest=1, judge_models=MODELS, agent_command=["a"], judge_command=["j"],
            agent_timeout_seconds=1, judge_timeout_seconds=1,
        ),
    )


def _remove(p: Path) -> None:
    if p.is_symlink() or p.is_file() or (p.exists() and not p.is_dir()):
        p.unlink()
    elif p.is_dir():
        shutil.rmtree(p)


FILE_OPS = [
    "delete", "truncate", "empty", "whitespace", "non_utf8", "array", "string", "null", "number", "wrong_field",
    "huge_valid", "huge_garbage", "link_out", "link_out_dir", "link_inside", "dangling", "dir_instead", "fifo",
]
DIR_OPS = ["delete", "link_out", "empty", "file_instead", "junk", "dangling"]


def damage_file(p: Path, op: str, cut: float, exp: Path, outside: Path) -> bool:
    """Apply ``op`` to ``p``; True if the file no longer holds its valid original."""
    if p.is_symlink() or (p.exists() and not p.is_file()):
        _remove(p)  # an earlier op left a link, directory or FIFO: never write through it
    original = p.read_bytes() if p.is_file() else None
    mirror = outside / p.relative_to(exp)
    if op == "delete":
        _remove(p)
    elif op == "truncate":
        if original is None:
            return False
        p.write_bytes(original[: int(len(original.rstrip()) * cut)])
    elif op == "empty":
        p.write_bytes(b"")
    elif op == "whitespace":
        p.write_bytes(b" \n\t\n")
    elif op == "non_utf8":
        p.write_bytes(b"\xff\xfe\x00" + (original or b"{}")[:100])
    elif op in ("array", "string", "null", "number"):
        p.write_text({"array": "[]", "string": '"completed"', "null": "null", "number": "0"}[op])
    elif op == "wrong_field":
        try:
            data = json.loads(original or b"")
        except ValueError:
            return False
        if not isinstance(data, dict) or not data:
            return False
        data = {k: {"nested": [v]} for k, v in data.items()}  # every field the wrong type
        p.write_text(json.dumps(data))
    elif op == "huge_valid":
        try:
            data = json.loads(original or b"")
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        data["padding"] = "x" * HUGE
        p.write_text(json.dumps(data))
        return False  # still a valid file, only big
    elif op == "huge_garbage":
        with open(p, "wb") as fh:
            fh.write(b"{" + b"\x00garbage" * (HUGE // 8))
    elif op in ("link_out", "link_out_dir"):
        _remove(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(mirror if op == "link_out" else mirror.parent)
    elif op == "link_inside":
        _remove(p)
        p.symlink_to(exp / "config" / "experiment.json")
    elif op == "dangling":
        _remove(p)
        p.symlink_to(outside / "does-not-exist")
    elif op == "dir_instead":
        _remove(p)
        (p / "inner.json").parent.mkdir(parents=True)
        (p / "inner.json").write_text("{}")
    elif op == "fifo":
        _remove(p)
        os.mkfifo(p)
    return True


def damage_dir(d: Path, op: str, exp: Path, outside: Path) -> bool:
    mirror = outside / d.relative_to(exp)
    if op == "delete":
        _remove(d)
    elif op == "link_out":
        _remove(d)
        d.symlink_to(mirror, target_is_directory=True)
    elif op == "empty":
        _remove(d)
        d.mkdir(parents=True)
    elif op == "file_instead":
        _remove(d)
        d.write_text('{"status": "completed"}')
    elif op == "junk":
        if not d.is_dir() or d.is_symlink():
            return False
        (d / "unexpected_dir" / "run_01").mkdir(parents=True, exist_ok=True)
        (d / "notes.txt").write_text("hello")
        (d / ".result.json.a1b2c3.tmp").write_text('{"half": ')
        return False  # extra entries change nothing the rules read
    elif op == "dangling":
        _remove(d)
        d.symlink_to(outside / "nowhere", target_is_directory=True)
    return True


damage = st.one_of(
    st.tuples(st.just("file"), st.sampled_from(range(len(RUNS))), st.sampled_from(FILES), st.sampled_from(FILE_OPS),
              st.floats(0.0, 0.999)),
    st.tuples(st.just("dir"), st.sampled_from(range(len(RUNS))), st.sampled_from(DIRS), st.sampled_from(DIR_OPS),
              st.just(0.0)),
)


def _norm(rel: str) -> str:
    return os.path.normpath(rel)


def run_of(exp: Path, i: int) -> Path:
    tier, subtest = RUNS[i]
    return exp / tier / subtest / "run_01"


def _has_text(p: Path) -> bool:
    return not p.is_symlink() and p.is_file() and bool(p.read_bytes().strip())


def _check_survey(exp: Path) -> Any:
    s = survey(exp, Selection())
    for r in s.runs:
        assert r.status in RunStatus and isinstance(r.reason, str) and r.reason.strip(), r
        assert len(r.judges) == len(MODELS)
        for j in r.judges:
            assert j.status in JudgeStatus and j.reason.strip(), j
    doc = json.loads(render_json(s))
    for entry in doc["runs"]:
        assert entry["status"] in {x.value for x in RunStatus} and entry["reason"].strip()
        assert all(j["status"] in {x.value for x in JudgeStatus} and j["reason"].strip() for j in entry["judges"])
    assert render_text(s, verbose=True)
    return s


@SETTINGS
@given(ops=st.lists(damage, min_size=1, max_size=6), with_manifest=st.booleans(), extra_top=st.booleans())
def test_damaged_experiment_trees_classify_safely(skeleton: Path, ops: list[tuple], with_manifest: bool, extra_top: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        exp, outside = Path(tmp) / "exp", Path(tmp) / "outside"
        shutil.copytree(skeleton, exp)
        _decoy(skeleton, outside)
        if with_manifest:
            _manifest(exp)
        if extra_top:
            (exp / "T9" / "00" / "run_01").mkdir(parents=True)
            (exp / ".hidden" / "x").mkdir(parents=True)
            (exp / "T1" / "zz_unlisted").symlink_to(outside / "T1" / "01", target_is_directory=True)
        touched: dict[int, set[str]] = {}
        for kind, i, rel, op, cut in ops:
            tier, subtest = RUNS[i]
            run = exp / tier / subtest / "run_01"
            if kind == "file":
                p = run / rel
                if not p.parent.is_dir() or p.parent.is_symlink():
                    continue
                if damage_file(p, op, cut, exp, outside):
                    touched.setdefault(i, set()).add(rel)
            else:
                d = Path(os.path.normpath(run / rel))
                if not (d.exists() or d.is_symlink()) or not d.parent.is_dir() or d.parent.is_symlink():
                    continue
                if damage_dir(d, op, exp, outside):
                    touched.setdefault(i, set()).add(f"dir:{_norm(rel)}")
        tally("tree", faults=len(ops))

        with watching(exp) as bad:
            s = _check_survey(exp)
            direct = {f"{t}/{u}": classify_run(ExperimentPaths(exp).run(t, u, 1), MODELS) for t, u in RUNS}
        assert not bad, bad
        tally(runs=len(s.runs) + len(direct))

        runs = {r.label: r for r in s.runs}
        for i, (tier, subtest) in enumerate(RUNS):
            label = f"{tier}/{subtest}/run_01"
            hurt = touched.get(i, set())
            # Damage to a neighbour, or to the same tier's other subtests, changes nothing here.
            shared_tier = {j for j, (t, _) in enumerate(RUNS) if t == tier}
            tier_hit = any(f"dir:{_norm('../..')}" in touched.get(j, set()) for j in shared_tier)
            r = runs.get(label)
            if not hurt and not tier_hit:
                assert r is not None and r.status is RunStatus.COMPLETED, (label, r)
                assert all(j.status is JudgeStatus.COMPLETE for j in r.judges), (label, r.judges)
                continue
            if r is None:
                continue  # its tier or subtest directory is gone: not expected from disk
            c = direct[f"{tier}/{subtest}"]
            assert (c.status, c.reason) == (r.status, r.reason)
            required_hit = any(h in REQUIRED or h in RUN_LEVEL_DIRS for h in hurt) or (
                OUTPUT in hurt and not _has_text(run_of(exp, i) / OUTPUT)
            )
            if required_hit or tier_hit:
                assert r.status is not RunStatus.COMPLETED, (label, hurt, r)
            for n in (1, 2, 3):
                if f"judge/judge_0{n}/judgment.json" in hurt or f"dir:judge/judge_0{n}" in hurt or "dir:judge" in hurt:
                    assert r.judges[n - 1].status is not JudgeStatus.COMPLETE, (label, hurt, r.judges)


# ------------------------------------------------------------- standard mode


RECORD_OPS = ["delete", "truncate", "empty", "non_utf8", "array", "wrong_field", "huge_garbage", "link_out",
              "link_out_dir", "dir_instead", "fifo", "case_link_out", "case_file", "case_missing", "unfinished",
              "extra_key", "keep"]


def _complete_record(variant: str) -> RunRecord:
    return RunRecord(variant_name=variant, command=["python", "e.py"], cwd="/", host="h", pid=1,
                     started_at="2026-01-01T00:00:00+00:00", ended_at="2026-01-01T00:00:01+00:00",
                     exit_code=0, duration_seconds=1.0)


@SETTINGS
@given(ops=st.lists(st.tuples(st.sampled_from(RECORD_OPS), st.floats(0.0, 0.999)), min_size=1, max_size=6))
def test_damaged_standard_run_directories_classify_safely(ops: list[tuple[str, float]]) -> None:
    with tempfile.TemporaryDirectory(prefix="hostile-std-") as tmp:
        run = SuiteRunPaths(Path(tmp) / "results" / "demo" / "20260101_000000_abcdef0")
        outside = Path(tmp) / "outside"
        variants = [f"v{i}" for i in range(len(ops))]
        run.dir.mkdir(parents=True)
        write_record(run.manifest, SuiteManifest(
            experiment_name="demo", mode="standard", suite_file="s.py", entry_point="e.py", config_class="C",
            created_at="t", git=GitProvenance(sha="0" * 40, short="abcdef0"),
            cases=[ManifestCase(variant_name=v, config={}) for v in variants],
        ))
        for v in variants:  # the decoy: complete cases outside the run directory
            write_record(CasePaths(outside / v).run_record, _complete_record(v))
        damaged: dict[str, str] = {}
        for v, (op, cut) in zip(variants, ops):
            case = run.case(v)
            write_record(case.run_record, _complete_record(v))
            p = case.run_record
            if op == "case_link_out":
                shutil.rmtree(case.dir)
                case.dir.symlink_to(outside / v, target_is_directory=True)
            elif op == "case_file":
                shutil.rmtree(case.dir)
                case.dir.write_text("{}")
            elif op == "case_missing":
                shutil.rmtree(case.dir)
            elif op == "unfinished":
                write_record(p, _complete_record(v).model_copy(update={"ended_at": None, "exit_code": None}))
            elif op == "extra_key":
                data = json.loads(p.read_text())
                data["surprise"] = 1
                p.write_text(json.dumps(data))  # a closed model: a key it does not know is an error
            elif op == "keep":
                continue
            elif op in ("link_out", "link_out_dir"):
                p.unlink()
                p.symlink_to(outside / v / p.name if op == "link_out" else outside / v)
            else:
                damage_file(p, op, cut, run.dir, outside)
            damaged[v] = op
        tally("tree", faults=len(damaged))

        with watching(run.dir) as bad:
            s = survey(run.dir, Selection())
            direct = {v: classify_case(run.case(v)) for v in variants}
            doc = json.loads(render_json(s))
        assert not bad, bad
        tally(runs=len(variants) * 2)
        assert [c.variant for c in s.cases] == variants
        for c, entry in zip(s.cases, doc["cases"]):
            assert c.status in CaseStatus and c.reason.strip() and (c.status, c.reason) == (direct[c.variant].status, direct[c.variant].reason)
            assert entry["status"] == c.status.value and entry["reason"] == c.reason
            if c.variant in damaged:
                assert c.status is not CaseStatus.COMPLETED, (c.variant, damaged[c.variant], c)
            else:
                assert c.status is CaseStatus.COMPLETED, c


# --------------------------------------------------------- named placements


LINKED = {
    "tier": "T1", "subtest": "T1/01", "run": "T1/01/run_01", "agent": "T1/01/run_01/agent",
    "judge": "T1/01/run_01/judge", "judge slot": "T1/01/run_01/judge/judge_02",
}


@pytest.mark.parametrize("with_manifest", [False, True], ids=["foreign", "with-manifest"])
@pytest.mark.parametrize("where", list(LINKED), ids=list(LINKED))
def test_a_symlinked_directory_to_a_complete_run_is_never_followed(skeleton: Path, tmp_path: Path, where: str, with_manifest: bool) -> None:
    exp, outside = tmp_path / "exp", tmp_path / "outside"
    shutil.copytree(skeleton, exp)
    _decoy(skeleton, outside)
    if with_manifest:
        _manifest(exp)
    rel = LINKED[where]
    shutil.rmtree(exp / rel)
    (exp / rel).symlink_to(outside / rel, target_is_directory=True)
    tally("tree", faults=1)
    with watching(exp) as bad:
        s = _check_survey(exp)
    assert not bad, bad
    runs = {r.label: r for r in s.runs}
    r = runs.get("T1/01/run_01")
    tally(runs=len(s.runs))
    if r is None:
        # A foreign experiment's subtests are the real directories on disk: a linked one is not one.
        assert where in ("tier", "subtest") and not with_manifest
        assert [m.tier for m in s.missing_tiers] == ["T1"]
        return
    if where == "judge slot":
        assert r.judges[1].status is not JudgeStatus.COMPLETE and "symlink" in r.judges[1].reason
    elif where == "judge":
        assert all(j.status is not JudgeStatus.COMPLETE for j in r.judges)
    else:
        assert r.status is not RunStatus.COMPLETED and "symlink" in r.reason, r


@pytest.mark.parametrize("where", ["tier", "subtest"])
def test_a_rerun_never_writes_through_a_symlinked_tier_or_subtest(skeleton: Path, tmp_path: Path, where: str) -> None:
    """Such a run is classified missing (above); rerunning it must not write into the link's target."""
    from experiment_infra.agent_eval import AgentEvalError, load_spec, run_agent, set_aside_run
    from faults_helpers import compare_kept, file_hashes

    exp, outside = tmp_path / "exp", tmp_path / "outside"
    shutil.copytree(skeleton, exp)
    _decoy(skeleton, outside)
    _manifest(exp)
    (exp / "prompt.md").write_text("task\n")
    rel = LINKED[where]
    shutil.rmtree(exp / rel)
    (exp / rel).symlink_to(outside / rel, target_is_directory=True)
    before_outside, before_exp = file_hashes(outside), file_hashes(exp)
    tally("tree", faults=1)
    paths = ExperimentPaths(exp)
    spec = load_spec(paths)
    with pytest.raises(AgentEvalError, match=f"{where} directory .* is a symlink") as err:
        set_aside_run(paths, "T1", "01", 1)
    assert "\n" not in str(err.value)
    with pytest.raises(AgentEvalError, match="symlink"):
        run_agent(paths, spec, "T1", "01", 1)
    assert compare_kept(before_outside, file_hashes(outside)) == []
    assert file_hashes(outside) == before_outside and file_hashes(exp) == before_exp


def test_json_command_line_on_a_hostile_tree(skeleton: Path, tmp_path: Path) -> None:
    """``flows/recover.py DIR --json`` as a user runs it, on a tree damaged several ways at once."""
    from recover_helpers import recover_cli

    exp, outside = tmp_path / "exp", tmp_path / "outside"
    shutil.copytree(skeleton, exp)
    _decoy(skeleton, outside)
    _manifest(exp)
    damage_dir(exp / "T1" / "01", "link_out", exp, outside)
    damage_dir(exp / "T2" / "01" / "run_01" / "judge", "link_out", exp, outside)
    damage_file(exp / "T3" / "01" / "run_01" / "run_result.json", "non_utf8", 0.0, exp, outside)
    damage_file(exp / "T4" / "01" / "run_01" / "agent" / "command_log.json", "huge_garbage", 0.0, exp, outside)
    damage_file(exp / "T5" / "01" / "run_01" / "judge" / "judge_01" / "judgment.json", "fifo", 0.0, exp, outside)
    tally("tree", faults=5)
    done = recover_cli(str(exp), "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    runs = {f"{r['tier']}/{r['subtest']}": r for r in doc["runs"]}
    assert runs["T1/01"]["status"] == "missing" and "symlink" in runs["T1/01"]["reason"]
    assert runs["T2/01"]["status"] == "results" and "symlink" in runs["T2/01"]["reason"]
    assert runs["T3/01"]["status"] == "results" and "not UTF-8" in runs["T3/01"]["reason"]
    assert runs["T4/01"]["status"] == "partial" and "command_log.json" in runs["T4/01"]["reason"]
    assert runs["T5/01"]["judges"][0]["status"] != "complete"
    assert runs["T0/00"]["status"] == "completed"
    for r in doc["runs"]:
        assert r["status"] in {x.value for x in RunStatus} and r["reason"].strip()
    tally(runs=len(doc["runs"]))
