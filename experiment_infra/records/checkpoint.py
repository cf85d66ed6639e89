"""ProjectScylla's ``checkpoint.json``: its record of each run's state, which its
``manage_experiment.py run`` resumes from (``scylla/e2e/checkpoint.py`` at b1b5ea8d).

Only the keys a recovery reads or brings up to date are modelled; every other key is kept
as it is. ``completed_runs`` (v2.0, still written as a derived view) maps tier -> subtest ->
run number (a string in JSON) -> ``passed`` / ``failed`` / ``agent_complete``; v3.x adds
``run_states`` (tier -> subtest -> run -> a RunState name), ``subtest_states`` and
``tier_states``.
"""

from __future__ import annotations

from pydantic import field_validator

from .base import _Open

__all__ = ["ScyllaCheckpoint"]

Nested = dict[str, dict[str, dict[str, str]]]


class ScyllaCheckpoint(_Open):
    version: str = "2.0"
    experiment_id: str = ""
    completed_runs: Nested = {}
    run_states: Nested = {}
    subtest_states: dict[str, dict[str, str]] = {}
    tier_states: dict[str, str] = {}

    @field_validator("completed_runs", "run_states", mode="before")
    @classmethod
    def _run_keys_as_text(cls, v: object) -> object:
        # Run numbers are JSON object keys (text); ProjectScylla converts them to int on load.
        if isinstance(v, dict):
            return {t: {s: {str(k): r for k, r in (runs or {}).items()} if isinstance(runs, dict) else runs
                        for s, runs in (subs or {}).items()} if isinstance(subs, dict) else subs
                    for t, subs in v.items()}
        return v

    def subtests(self, tier: str) -> set[str]:
        """Every subtest of ``tier`` the checkpoint names (run or subtest states)."""
        names: set[str] = set()
        for table in (self.completed_runs, self.run_states, self.subtest_states):
            names.update(table.get(tier, {}))
        return names
