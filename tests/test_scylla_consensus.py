"""The consensus a rebuild writes is the one ProjectScylla (b1b5ea8d) writes (issue 29):
the reasoning and criteria of the judge closest to the mean (the first on a tie),
``criteria_scores`` ``{}`` never null, and ``is_valid`` from the judges that judged.

The judgments are those of ProjectScylla's own tests (tests/unit/e2e/test_rerun_judges.py),
put in a run of the fixture whose writer is today's (its run_result.json lists is_valid)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from recover_helpers import edit_json, run_paths

from experiment_infra.recovery.regenerate import rebuild_after_judging, regenerate_run

MODELS = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5"]


def judged(exp: Path, *judgments: dict | None) -> dict:
    """Give T1/01/run_01 these judgments (None: that judge never judged), rebuild its
    consensus and run_result.json as after a judge rerun, and return both."""
    p = run_paths(exp)
    edit_json(p.consensus, is_valid=True, criteria_scores=None)  # today's writer
    for slot, judgment in enumerate(judgments, start=1):
        if judgment is None:
            shutil.rmtree(p.judge_slot(slot).dir)
        else:
            p.judge_slot(slot).judgment.write_text(json.dumps(judgment))
    rebuild_after_judging(p, MODELS)
    return {"consensus": json.loads(p.consensus.read_text()), "run_result": json.loads(p.run_result.read_text())}


def test_reasoning_and_criteria_are_the_closest_judges(scylla_copy: Path) -> None:
    # test_regenerate_consensus_representative_reasoning: 0.5 and 0.85, consensus 0.675.
    got = judged(
        scylla_copy,
        {"score": 0.5, "passed": False, "grade": "F", "reasoning": "Agent failed completely", "is_valid": True},
        {"score": 0.85, "passed": True, "grade": "B", "reasoning": "Agent mostly succeeded", "is_valid": True,
         "criteria_scores": {"accuracy": {"score": 0.9, "explanation": "Good"}}},
        None,
    )
    consensus = got["consensus"]
    assert consensus["score"] == pytest.approx(0.675)
    assert consensus["reasoning"] == "Agent mostly succeeded"
    assert consensus["criteria_scores"] == {"accuracy": {"score": 0.9, "explanation": "Good"}}
    assert got["run_result"]["judge_reasoning"] == "Agent mostly succeeded"
    assert got["run_result"]["criteria_scores"] == consensus["criteria_scores"]
    # Judge 3 never judged: the consensus of the judges that did is valid, as ProjectScylla builds it.
    assert consensus["is_valid"] is True


def test_an_invalid_judgment_makes_the_consensus_invalid(scylla_copy: Path) -> None:
    # test_regenerate_consensus_with_invalid_judge: a valid 0.9 and a heuristic fallback.
    got = judged(
        scylla_copy,
        {"score": 0.9, "passed": True, "grade": "A", "reasoning": "Valid judgment", "is_valid": True,
         "criteria_scores": {"accuracy": {"score": 0.95, "explanation": "Great"}}},
        {"score": 0.0, "passed": False, "grade": "F", "reasoning": "Heuristic fallback: agent crashed", "is_valid": False},
        None,
    )
    consensus = got["consensus"]
    assert consensus["score"] == 0.9 and consensus["is_valid"] is False
    assert consensus["reasoning"] == "Valid judgment"
    assert consensus["criteria_scores"]["accuracy"]["score"] == 0.95


def test_null_criteria_are_written_as_an_empty_object(scylla_copy: Path) -> None:
    # test_regenerate_consensus_writes_empty_criteria_scores_when_null.
    got = judged(
        scylla_copy,
        {"score": 0.7, "passed": True, "grade": "C", "reasoning": "Adequate", "is_valid": True, "criteria_scores": None},
        None,
        None,
    )
    assert got["run_result"]["criteria_scores"] == {} and got["consensus"]["criteria_scores"] == {}
    assert got["consensus"]["is_valid"] is True


def test_a_tie_goes_to_the_first_judge(scylla_copy: Path) -> None:
    # Python's min keeps the first of equal keys: 0.25 and 0.75 are both 0.25 from 0.5.
    got = judged(
        scylla_copy,
        {"score": 0.25, "passed": False, "reasoning": "first", "criteria_scores": {"a": {"score": 0.25}}},
        {"score": 0.75, "passed": True, "reasoning": "second", "criteria_scores": {"a": {"score": 0.75}}},
        {"score": 0.5, "passed": True, "reasoning": "exact", "is_valid": False},
    )
    assert got["consensus"]["score"] == 0.5 and got["consensus"]["reasoning"] == "first"
    assert got["consensus"]["criteria_scores"] == {"a": {"score": 0.25}}
    assert got["consensus"]["is_valid"] is False  # judge 3 judged, and its judgment is not valid


def test_the_older_writers_runs_keep_the_first_judges_reasoning(scylla_copy: Path) -> None:
    """The fixture's writer (before 2026-02-09) took the first judge's reasoning; its runs
    regenerate as it wrote them, though another judge is closer to the mean there."""
    from conftest import FIXTURE

    p = run_paths(scylla_copy)  # scores 0.95, 0.96, 1.0: judge 2 is the closest
    p.consensus.unlink()
    p.run_result.unlink()
    regenerate_run(p, MODELS)
    assert json.loads(p.consensus.read_text()) == json.loads(run_paths(FIXTURE).consensus.read_text())
