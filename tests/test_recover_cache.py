"""The classification cache never hides a change: a survey that reuses it says exactly
what a survey that reads every file says, for every way a run can be damaged."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from recover_helpers import RUN, recover_cli, run_paths, tree_hash
from test_recover_classify import AGENT_CASES, JUDGE_CASES

from experiment_infra.layout import ExperimentPaths, run_label
from experiment_infra.recovery.survey import Selection, survey_experiment
from experiment_infra.status.cache import RACY_SECONDS, StatusCache
from experiment_infra.status.prefetch import prefetch
from experiment_infra.status.rules import STATUS_RULES_VERSION

FUTURE = 3600 * 10**9  # pretend the files are an hour old, so fresh copies are cacheable


def warm(exp_dir: Path) -> StatusCache:
    """Classify every run into a saved cache, as a real recovery's final survey does."""
    exp = ExperimentPaths(exp_dir)
    cache = StatusCache(exp.status_cache, survey_experiment(exp, Selection(), cache=None).config.judge_models,
                        now_ns=time.time_ns() + FUTURE)
    survey_experiment(exp, Selection(), cache=cache)
    cache.save()
    time.sleep(0.05)  # past the filesystem's timestamp tick, as any later change is in real life
    return cache


def view(exp_dir: Path, cache: object, workers: int | None = None) -> list[tuple]:
    s = survey_experiment(ExperimentPaths(exp_dir), Selection(), cache=cache, workers=workers)  # type: ignore[arg-type]
    return [(r.label, r.status, r.reason, r.judges, r.action) for r in s.runs]


MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]


@pytest.mark.parametrize("case", sorted(AGENT_CASES) + sorted(JUDGE_CASES))
def test_cached_survey_equals_a_fresh_one_after_damage(scylla_copy: Path, case: str) -> None:
    warm(scylla_copy)
    damage = (AGENT_CASES.get(case) or JUDGE_CASES[case])[0]
    damage(run_paths(scylla_copy))
    cache = StatusCache.load(ExperimentPaths(scylla_copy).status_cache, MODELS)
    assert len(cache.runs) == 7
    fresh = view(scylla_copy, None)
    assert view(scylla_copy, cache) == fresh
    assert cache.misses == 1 and cache.hits == 6  # only the damaged run was read again
    # Worker processes (what a large survey uses) see exactly what one process sees,
    # reading every file or through the cache, and hand the parent the same cache counts.
    assert view(scylla_copy, None, workers=2) == fresh
    forked = StatusCache.load(ExperimentPaths(scylla_copy).status_cache, MODELS)
    assert view(scylla_copy, forked, workers=3) == fresh
    assert (forked.misses, forked.hits) == (1, 6)
    # A dry run's early checks (children forked before the rules are imported) clear
    # exactly the runs that did not change, and the survey that takes them says the same.
    with prefetch(scylla_copy, processes=3) as early:
        assert early is not None
        ahead = StatusCache.load(ExperimentPaths(scylla_copy).status_cache, MODELS, read_only=True, prefetch=early)
        assert ahead.verified == {r for r, *_ in fresh} - {run_label(*RUN)}
        assert view(scylla_copy, ahead) == fresh
        assert (ahead.misses, ahead.hits) == (1, 6)


@pytest.mark.parametrize("spoil", ["judges", "status", "sig", "class"])
def test_a_malformed_cache_entry_is_read_again_from_the_files(scylla_copy: Path, spoil: str) -> None:
    exp = ExperimentPaths(scylla_copy)
    warm(scylla_copy)
    data = json.loads(exp.status_cache.read_text())
    entry = data["runs"]["T0/00/run_01"]
    status, _, judges = data["classes"][entry[1]]
    spoiled = [status, "from the cache", judges]  # a class of its own, named by this run only
    if spoil == "judges":
        spoiled[2] = judges[:1]
    elif spoil == "status":
        spoiled[0] = "finished"  # not a status these rules have
    elif spoil == "sig":
        entry[0] = 42
    data["classes"].append(spoiled)
    entry[1] = len(data["classes"]) + 5 if spoil == "class" else len(data["classes"]) - 1
    exp.status_cache.write_text(json.dumps(data))
    cache = StatusCache.load(exp.status_cache, MODELS)
    assert view(scylla_copy, cache) == view(scylla_copy, None)
    assert cache.misses == 1 and cache.hits == 6


def test_cache_is_used_by_the_dry_run_and_never_written_by_it(scylla_copy: Path) -> None:
    exp = ExperimentPaths(scylla_copy)
    survey_experiment(exp, Selection())  # loads (nothing) and classifies, saves nothing
    assert not exp.status_cache.exists()
    warm(scylla_copy)
    before = exp.status_cache.read_bytes()
    hits = survey_experiment(exp, Selection())
    assert hits.cache is not None and hits.cache.hits == 7
    snapshot = tree_hash(scylla_copy)
    assert recover_cli(str(scylla_copy), "--dry-run").returncode == 0
    assert exp.status_cache.read_bytes() == before and tree_hash(scylla_copy) == snapshot


def test_a_read_only_survey_uses_the_cache_and_stores_nothing(scylla_copy: Path) -> None:
    """A dry run's survey: entries that match are used, the rest classified from the files
    without being stored (nor signed), and its cache refuses to be saved."""
    exp = ExperimentPaths(scylla_copy)
    for read_only, stored in ((False, 7), (True, 0)):  # files an hour old: a writable cache stores every run
        cache = StatusCache(exp.status_cache, MODELS, now_ns=time.time_ns() + FUTURE, read_only=read_only)
        survey_experiment(exp, Selection(), cache=cache)
        assert (len(cache.runs), cache.misses, cache.changed) == (stored, 7, bool(stored))
    warm(scylla_copy)
    damaged = run_paths(scylla_copy)
    damaged.run_result.unlink()
    s = survey_experiment(exp, Selection(), read_only=True)
    assert s.cache is not None and (s.cache.hits, s.cache.misses) == (6, 1) and not s.cache.changed
    assert [(r.label, r.status, r.reason) for r in s.runs] == [(r.label, r.status, r.reason) for r in
                                                               survey_experiment(exp, Selection(), cache=None).runs]
    with pytest.raises(RuntimeError, match="read-only"):
        s.cache.save()


def test_fresh_files_are_not_cached(scylla_copy: Path) -> None:
    exp = ExperimentPaths(scylla_copy)
    cache = StatusCache(exp.status_cache, ["a", "b", "c"])  # real clock: the copy was made just now
    survey_experiment(exp, Selection(), cache=cache)
    assert RACY_SECONDS > 0 and cache.runs == {} and not cache.changed


@pytest.mark.parametrize("spoil", ["models", "garbage", "version"])
def test_cache_for_other_rules_or_models_is_ignored(scylla_copy: Path, spoil: str) -> None:
    exp = ExperimentPaths(scylla_copy)
    warm(scylla_copy)
    if spoil == "garbage":
        exp.status_cache.write_text("{not json")
    elif spoil == "version":
        exp.status_cache.write_text(exp.status_cache.read_text().replace(f'"version": {STATUS_RULES_VERSION}', '"version": 0'))
    models = ["x", "y", "z"] if spoil == "models" else ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]
    assert StatusCache.load(exp.status_cache, models).runs == {}


# ------------------------------------------- the signature follows the rules' declarations


@pytest.fixture
def declare(monkeypatch: pytest.MonkeyPatch):
    """Declare one more file the status rules read (as a new rule would), then undo it."""
    from experiment_infra.status import entries as status_entries

    def add(where: type, name: str, rel: str) -> None:
        monkeypatch.setattr(where, name, rel, raising=False)
        status_entries._signature_entries.cache_clear()

    yield status_entries, add
    monkeypatch.undo()
    status_entries._signature_entries.cache_clear()


@pytest.mark.parametrize("level", ["run", "slot"])
def test_a_newly_declared_file_is_in_the_cache_signature(scylla_copy: Path, declare, level: str) -> None:
    entries, add = declare
    paths = run_paths(scylla_copy)
    if level == "run":
        add(entries._Names, "notes", "agent/notes.txt")
        target = paths.agent_dir / "notes.txt"
    else:
        add(entries._SlotNames, "notes", "notes.txt")
        target = paths.judge_slot(2).dir / "notes.txt"
    target.write_text("first")
    before = entries.run_signature(paths, 3)
    with target.open("a") as f:  # content only: no directory listing changes
        f.write(" and more")
    assert entries.run_signature(paths, 3)[0] != before[0]


def test_the_rules_read_files_only_through_declared_names() -> None:
    import ast

    from conftest import REPO_ROOT

    source = (REPO_ROOT / "experiment_infra" / "status" / "rules.py").read_text()
    literal_paths = [
        node.lineno for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_at"
        and any(isinstance(a, (ast.Constant, ast.JoinedStr)) for a in node.args)
    ]
    assert literal_paths == [], "declare the name in _Names or _SlotNames, so the cache signature covers it"


def test_entries_taken_as_absent_always_have_a_parent_in_the_signature() -> None:
    # What lets a cached check skip the lstat of an entry that was absent: whatever is
    # created later changes its parent directory, which the signature always reads.
    from experiment_infra.status import entries as status_entries

    for slots in (1, 3):
        entries = set(status_entries._signature_entries(slots))
        assert [e for e, parent in status_entries.signature_parents(slots) if parent not in entries] == []


def test_a_file_created_where_the_cache_saw_none_is_read(scylla_copy: Path) -> None:
    from experiment_infra.records import JudgeCommand, write_record

    warm(scylla_copy)
    exp = ExperimentPaths(scylla_copy)
    entry = json.loads(exp.status_cache.read_text())["runs"]["T1/01/run_01"]
    assert entry[2]  # ProjectScylla's slots hold no command_log.json: taken as absent next time
    slot = run_paths(scylla_copy).judge_slot(2)
    write_record(slot.command_log, JudgeCommand(model="m", command=["judge"], cwd="/", started_at="t",
                                                ended_at="t", exit_code=1, reason="rate limited"))
    cache = StatusCache.load(exp.status_cache, MODELS)
    rows = view(scylla_copy, cache)
    assert rows == view(scylla_copy, None) and cache.misses == 1
    (run,) = [r for r in rows if r[0] == "T1/01/run_01"]
    assert [j.status.value for j in run[3]][1] == "failed"


@pytest.mark.parametrize("case", ["unchanged", "damaged", "other judges"])
def test_a_dry_run_made_ahead_of_its_checks_says_what_a_fresh_survey_says(scylla_copy: Path, case: str) -> None:
    from experiment_infra.recovery.render import render_json
    from experiment_infra.recovery.survey import survey_ahead

    warm(scylla_copy)
    if case == "damaged":
        run_paths(scylla_copy).run_result.unlink()
    elif case == "other judges":  # the cache was made for another panel: never used
        cache_file = ExperimentPaths(scylla_copy).status_cache
        cache_file.write_text(cache_file.read_text().replace(MODELS[0], "another-judge"))
    fresh = render_json(survey_experiment(ExperimentPaths(scylla_copy), Selection(), cache=None))
    with prefetch(scylla_copy, processes=2) as early:
        assert early is not None
        assert survey_ahead(scylla_copy, Selection(), early, render_json) == fresh
        assert early.confirmed() is (case != "damaged")


def _no_second_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a survey fail if it checks a run's signature itself."""
    import experiment_infra.status.cache as status_cache

    def checked_again(*args: object) -> None:
        raise AssertionError("the survey checked a run the early checks had already checked")

    monkeypatch.setattr(status_cache, "probe_entry", checked_again)


def test_early_checks_are_not_made_twice(scylla_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm(scylla_copy)
    run_paths(scylla_copy).run_result.unlink()
    fresh = view(scylla_copy, None)
    with prefetch(scylla_copy, processes=2) as early:
        assert early is not None and not early.stale
        cache = StatusCache.load(ExperimentPaths(scylla_copy).status_cache, MODELS, read_only=True, prefetch=early)
        _no_second_check(monkeypatch)  # the changed run is read, not checked again
        assert view(scylla_copy, cache) == fresh
        assert (cache.misses, cache.hits) == (1, 6)


def test_a_cache_the_experiment_outgrew_is_not_checked_run_by_run(scylla_copy: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A copied experiment (new files everywhere) holds a cache none of whose runs still
    matches: a sample says so, and a dry run reads every run as if there were no cache."""
    import shutil

    from experiment_infra.recovery.render import render_json
    from experiment_infra.recovery.survey import survey_ahead

    warm(scylla_copy)
    copy = tmp_path / "copy"
    shutil.copytree(scylla_copy, copy)
    fresh = view(copy, None)
    with prefetch(copy, processes=2) as early:
        assert early is not None and early.stale
        _no_second_check(monkeypatch)
        cache = StatusCache.load(ExperimentPaths(copy).status_cache, MODELS, read_only=True, prefetch=early)
        assert view(copy, cache) == fresh
        assert (cache.misses, cache.hits) == (7, 0)
        assert survey_ahead(copy, Selection(), early, render_json) == render_json(
            survey_experiment(ExperimentPaths(copy), Selection(), cache=None))
