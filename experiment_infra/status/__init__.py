"""Classification, every status rule in one place: what the files on disk say about a case,
a run or a judge slot (``rules``), the entries the rules read and their stat signature
(``entries``), a case's failure class per attempt (``attempts``), rate limits (``limits``),
inspect-mode cases (``inspect``), which runs an experiment expects (``expected``), and a
whole experiment classified at once: cached by signature (``cache``), prefetched while a
dry run starts (``prefetch``), in forked children when that pays (``batch``, ``forked``).
Reads, never writes, except its cache. ``from experiment_infra.status import CaseStatus``
keeps working: the names of ``rules`` are re-exported, imported on first use.

May import: layout, processes, records
"""

from __future__ import annotations

from ..lazy import lazy_exports

# Public name -> the module of this package that defines it (imported on first use, so
# importing a module of this package does not import ``rules``).
_WHERE = {
    "CaseStatus": "rules",
    "RunStatus": "rules",
    "JudgeStatus": "rules",
    "AGENT_FINISHED_STATUSES": "rules",
    "AGENT_RERUN_STATUSES": "rules",
    "agent_finished": "rules",
    "JUDGE_RERUN_STATUSES": "rules",
    "CaseClassification": "rules",
    "JudgeClassification": "rules",
    "RunClassification": "rules",
    "PlainClassification": "rules",
    "from_plain": "rules",
    "classify_case": "rules",
    "never_finished": "rules",
    "why_it_ended": "rules",
    "classify_agent": "rules",
    "is_fallback": "rules",
    "judge_verdict": "rules",
    "classify_judge": "rules",
    "classify_run": "rules",
    "classify_run_dir": "rules",
    "run_verdict": "rules",
    "STATUS_RULES_VERSION": "rules",
    "attempt_failures": "attempts",
    "failures_text": "attempts",
}

__all__ = list(_WHERE)

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
