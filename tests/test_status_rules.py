"""Each status rule is written once, in ``experiment_infra/status/rules.py``, and its users call it.

Checked on the source (like tests/test_layers.py), so a second copy cannot creep back:
"the agent finished" is ``status.agent_finished``, and whether a judge slot's judgment is
usable (not a heuristic fallback) is decided by ``status`` alone.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

from experiment_infra.status.rules import AGENT_RERUN_STATUSES, RunStatus, agent_finished

STATUS = REPO_ROOT / "experiment_infra" / "status" / "rules.py"
PACKAGES = ("experiment_infra", "flows", "tasks", "experiment_cli", "deployments")


def _sources() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py") if p != STATUS)


def _run_status_members(node: ast.AST) -> set[str]:
    return {
        n.attr for n in ast.walk(node)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "RunStatus"
    }


def test_agent_finished_is_completed_or_results_and_nothing_else() -> None:
    assert {s for s in RunStatus if agent_finished(s)} == {RunStatus.COMPLETED, RunStatus.RESULTS}
    assert AGENT_RERUN_STATUSES == {s for s in RunStatus if not agent_finished(s)}


def test_agent_finished_is_decided_only_in_status() -> None:
    # The hand-written rule: a tuple or set holding both COMPLETED and RESULTS.
    offences = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Tuple, ast.Set, ast.List)) and {"COMPLETED", "RESULTS"} <= _run_status_members(node):
                offences.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}")
    assert offences == [], "use experiment_infra.status.rules.agent_finished"


def test_judgment_validity_is_decided_only_in_status() -> None:
    # Nothing else reads judgment.json into a Judgment, nor looks at its fallback flags.
    offences = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in (
                "read_record", "load_record"
            ) and any(isinstance(a, ast.Name) and a.id == "Judgment" for a in node.args[1:2]):
                offences.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} reads a Judgment")
            if isinstance(node, ast.Attribute) and node.attr == "is_fallback":
                offences.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} uses is_fallback")
            if isinstance(node, ast.FunctionDef) and node.name == "is_fallback":
                offences.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} defines is_fallback")
    assert offences == [], "use experiment_infra.status.rules.judge_verdict"
