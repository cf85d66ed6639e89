"""After a recovery, ProjectScylla's ``checkpoint.json`` says what the files say.

ProjectScylla's ``manage_experiment.py run`` resumes from its checkpoint: it only moves a
run's state forward from the files (``_reconcile_checkpoint_with_disk``), then sends every
run not ``worktree_cleaned`` (or ``promoted_to_completed``) back through its pipeline, from
scratch when ``failed`` or ``rate_limited`` (``_reset_non_completed_runs``). A checkpoint
left as it was before a recovery would have it redo or reset what the recovery did.

Written in ProjectScylla's own format (``scylla/e2e/checkpoint.py`` at b1b5ea8d, version
3.1): a 2.0 checkpoint is first brought to 3.1 as its own loader migrates it, then each run
the recovery surveyed gets the state its files show. Every other key is kept as it was.
"""

from __future__ import annotations

from typing import Any

from ..files.atomic import atomic_write_json
from ..layout import ExperimentPaths
from ..records import RunResult, ScyllaCheckpoint, read_record, utc_now_iso
from ..status.rules import RunStatus
from ..status.limits import is_rate_limited
from .survey import RunWork

__all__ = ["sync_checkpoint"]

FINISHED = "worktree_cleaned"  # the state ProjectScylla never sends back through its pipeline
CHECKPOINT_VERSION = "3.1"
_V3_0_NAMES = {"workspace_configured": "config_committed", "agent_ready": "replay_generated",
               "judge_ready": "judge_prompt_built", "run_complete": "report_written"}


def sync_checkpoint(exp: ExperimentPaths, runs: tuple[RunWork, ...] | list[RunWork]) -> bool:
    """Bring ``checkpoint.json`` up to date for ``runs`` (as surveyed after the recovery);
    False, changing nothing, when there is no usable checkpoint (an experiment this project
    wrote, or one whose checkpoint it cannot read: ProjectScylla then starts afresh anyway)."""
    read = read_record(exp.checkpoint, ScyllaCheckpoint)
    if read.record is None or read.record.version not in ("2.0", "3.0", CHECKPOINT_VERSION):
        return False
    data = read.record.model_dump(mode="json")
    before = repr(data)
    if data["version"] == "2.0":
        _migrate_2_0(data)
    elif data["version"] == "3.0":  # its 10-state names, as its loader renames them
        for subtests in data["run_states"].values():
            for runs in subtests.values():
                for n, state in runs.items():
                    runs[n] = _V3_0_NAMES.get(state, state)
    data["version"] = CHECKPOINT_VERSION
    for work in runs:
        state, outcome = _state_of(exp, work)
        data["run_states"].setdefault(work.tier, {}).setdefault(work.subtest, {})[str(work.run)] = state
        done = data["completed_runs"].setdefault(work.tier, {}).setdefault(work.subtest, {})
        if outcome is None:
            done.pop(str(work.run), None)
        else:
            done[str(work.run)] = outcome
    if repr(data) == before:
        return False
    data["last_updated_at"] = utc_now_iso()
    atomic_write_json(exp.checkpoint, data)
    return True


def _state_of(exp: ExperimentPaths, work: RunWork) -> tuple[str, str | None]:
    """ProjectScylla's run state and ``completed_runs`` entry for what the files say."""
    if work.status is RunStatus.COMPLETED:
        result = read_record(exp.run_found(work.tier, work.subtest, work.run).run_result, RunResult).record
        passed = result is not None and result.judge_passed
        return FINISHED, "passed" if passed else "failed"
    if work.status is RunStatus.RESULTS:
        return "agent_complete", "agent_complete"
    if work.status is RunStatus.FAILED:
        return ("rate_limited" if is_rate_limited(work.reason) else "failed"), None
    return "pending", None  # partial, missing: its pipeline starts over


def _migrate_2_0(data: dict[str, Any]) -> None:
    """What ProjectScylla's loader does to a 2.0 checkpoint (``_migrate_v2_to_v3`` then
    ``_migrate_v3_to_v3_1``): run states from ``completed_runs``."""
    run_states: dict[str, dict[str, dict[str, str]]] = {}
    for tier, subtests in data["completed_runs"].items():
        for subtest, runs in subtests.items():
            run_states.setdefault(tier, {})[subtest] = {
                str(n): "agent_complete" if outcome == "agent_complete" else "report_written" for n, outcome in runs.items()
            }
            data["subtest_states"].setdefault(tier, {})[subtest] = "runs_in_progress"
        data["tier_states"][tier] = "subtests_running"
    data["run_states"] = run_states
    data["experiment_state"] = "tiers_running"
    data.setdefault("last_heartbeat", data.get("last_updated_at", ""))
