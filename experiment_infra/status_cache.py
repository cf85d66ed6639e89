"""Classifications remembered by the stat signature of the files they were read from.

Classifying a run reads and validates about ten JSON files; checking that none of them
changed since the last classification is one ``lstat`` each, about what an existence
check costs. A real recovery saves the cache (``.recover-cache.json``) after its final
survey; later surveys (dry runs included, which only read it) reuse every entry whose
signature still matches and classify the rest from their files.

Never trusted beyond what it can prove: an entry is used only if the signature of
every entry the rules consult (mode, inode, size, mtime and ctime, directories too) is
identical; entries whose files changed within ``RACY_SECONDS`` of classification are
not stored (a second write in the same timestamp tick could otherwise go unseen); a
cache written for other judge models or another version of the rules is ignored.
"""

from __future__ import annotations

import time
from pathlib import Path

from .layout import AgentRunPaths
from .records import CachedRun, StatusCacheFile, read_record, write_record
from .status import (
    STATUS_RULES_VERSION,
    JudgeClassification,
    JudgeStatus,
    RunClassification,
    RunStatus,
    classify_run,
    run_signature,
)

RACY_SECONDS = 2.0


class StatusCache:
    def __init__(self, path: Path, judge_models: list[str], runs: dict[str, CachedRun] | None = None,
                 *, now_ns: int | None = None) -> None:
        self.path = path
        self.judge_models = list(judge_models)
        self.runs: dict[str, CachedRun] = dict(runs or {})
        self.now_ns = now_ns
        self.hits = 0
        self.misses = 0
        self.changed = False

    @classmethod
    def load(cls, path: Path, judge_models: list[str], *, now_ns: int | None = None) -> StatusCache:
        """The cache at ``path``; empty when missing, unreadable or written under other rules."""
        read = read_record(path, StatusCacheFile)
        record = read.record
        if record is None or record.version != STATUS_RULES_VERSION or record.judge_models != list(judge_models):
            return cls(path, judge_models, now_ns=now_ns)
        return cls(path, judge_models, record.runs, now_ns=now_ns)

    def classify(self, label: str, paths: AgentRunPaths) -> RunClassification:
        """``classify_run`` of ``paths``, from the cache when its files did not change."""
        models = self.judge_models
        sig_bytes, newest = run_signature(paths, len(models))
        sig = sig_bytes.hex()
        hit = self.runs.get(label)
        if hit is not None and hit.sig == sig and len(hit.judges) == len(models):
            self.hits += 1
            judges = tuple(
                JudgeClassification(i, m, JudgeStatus(s), r) for i, (m, (s, r)) in enumerate(zip(models, hit.judges), 1)
            )
            return RunClassification(RunStatus(hit.status), hit.reason, judges)
        self.misses += 1
        c = classify_run(paths, models)
        now = self.now_ns if self.now_ns is not None else time.time_ns()
        if newest < now - int(RACY_SECONDS * 1e9):
            self.runs[label] = CachedRun(
                sig=sig, status=c.status.value, reason=c.reason, judges=[(j.status.value, j.reason) for j in c.judges]
            )
            self.changed = True
        elif self.runs.pop(label, None) is not None:
            self.changed = True
        return c

    def save(self) -> None:
        """Write the cache (only real recoveries call this; a dry run writes nothing)."""
        if not self.changed:
            return
        record = StatusCacheFile(version=STATUS_RULES_VERSION, judge_models=self.judge_models, runs=self.runs)
        write_record(self.path, record, fsync=False)  # a lost or torn cache is only a slower next survey
        self.changed = False
