"""Agent-evaluation suites written in ProjectScylla's layout (Prefect-free).

Recovery contract: ``load_spec``, ``run_agent``, ``run_judge`` and ``finish_run``
operate on one experiment directory and one run or judge slot at a time; they never
write over an earlier attempt (``set_aside_run`` / ``set_aside_slot`` move it first).

May import: files, layout, processes, provenance, records, recovery, reports, status
"""

from .agent import agent_argv, run_agent, set_aside_run, stop_judge_leftovers, stop_leftovers
from .commands import DEFAULT_AGENT_COMMAND, DEFAULT_JUDGE_COMMAND, REDACTED
from .experiment import create_experiment, load_spec
from .judge import finish_run, judge_argv, parse_judgment, run_judge, set_aside_slot
from .plan import ExperimentPlan, PlannedRun, format_plan, plan_experiment, start_experiment
from .spec import AgentEvalError, AgentEvalSpec, AgentEvalSuite, Condition, TaskSpec
from .workspace import WorkspaceError, ensure_clone, resolve_commit

__all__ = [
    "DEFAULT_AGENT_COMMAND",
    "DEFAULT_JUDGE_COMMAND",
    "REDACTED",
    "AgentEvalError",
    "AgentEvalSpec",
    "AgentEvalSuite",
    "Condition",
    "ExperimentPlan",
    "PlannedRun",
    "TaskSpec",
    "WorkspaceError",
    "agent_argv",
    "stop_judge_leftovers",
    "stop_leftovers",
    "create_experiment",
    "ensure_clone",
    "finish_run",
    "format_plan",
    "judge_argv",
    "load_spec",
    "parse_judgment",
    "plan_experiment",
    "resolve_commit",
    "run_agent",
    "run_judge",
    "set_aside_run",
    "set_aside_slot",
    "start_experiment",
]
