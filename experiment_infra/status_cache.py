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
cache written for other judge models or another version of the rules is ignored, and
so is any entry that does not have the shape ``records.CachedRun`` describes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .layout import AgentRunPaths
from .records import CachedRun, StatusCacheFile, cached_run_ok, read_status_cache, write_status_cache
from .status import (
    STATUS_RULES_VERSION,
    JudgeClassification,
    JudgeStatus,
    RunClassification,
    RunStatus,
    classify_run_dir,
    run_signature_dir,
)

__all__ = ["RACY_SECONDS", "StatusCache"]

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
        # Runs of one experiment mostly share their classification (same reasons, same
        # panel), so equal entries become one shared frozen object, built once.
        self._built: dict[tuple, RunClassification] = {}

    @classmethod
    def load(cls, path: Path, judge_models: list[str], *, now_ns: int | None = None) -> StatusCache:
        """The cache at ``path``; empty when missing, unreadable or written under other rules."""
        data = read_status_cache(path)
        if data is None or data["version"] != STATUS_RULES_VERSION or data["judge_models"] != list(judge_models):
            return cls(path, judge_models, now_ns=now_ns)
        return cls(path, judge_models, data["runs"], now_ns=now_ns)

    def matches(self, label: str, sig: str) -> bool:
        """An entry for ``label`` exists, has the cache's shape and was made from files with signature ``sig``."""
        entry = self.runs.get(label)
        return entry is not None and cached_run_ok(entry, len(self.judge_models)) and entry["sig"] == sig

    def cached(self, label: str) -> RunClassification | None:
        """The classification stored for ``label`` (after ``matches``); None if it names unknown statuses."""
        entry = self.runs[label]
        key = (entry["status"], entry["reason"], *map(tuple, entry["judges"]))
        built = self._built.get(key)
        if built is None:
            try:
                judges = tuple(
                    JudgeClassification(i, m, JudgeStatus(s), r)
                    for i, (m, (s, r)) in enumerate(zip(self.judge_models, entry["judges"]), 1)
                )
                built = RunClassification(RunStatus(entry["status"]), entry["reason"], judges)
            except ValueError:  # a status name these rules do not have
                return None
            self._built[key] = built
        self.hits += 1
        return built

    def probe(self, label: str, run: str) -> tuple[bool, str, int, tuple[int, ...]]:
        """Whether the entry of ``label`` still holds for the run directory ``run``; with the
        signature (hex), newest timestamp and absent entries a new classification is stored under."""
        slots = len(self.judge_models)
        entry = self.runs.get(label)
        known = entry.get("absent") if isinstance(entry, dict) else None
        known = tuple(i for i in known if isinstance(i, int)) if isinstance(known, list) else ()
        digest, newest, absent = run_signature_dir(run, slots, known)
        if self.matches(label, digest.hex()):
            return True, digest.hex(), newest, absent
        if known:  # taken with entries assumed absent: take it again, every entry read
            digest, newest, absent = run_signature_dir(run, slots)
        return False, digest.hex(), newest, absent

    def store(self, label: str, c: RunClassification, sig: str, newest_ns: int, absent: tuple[int, ...] = ()) -> None:
        """Remember ``c`` for ``label``, unless its files are too fresh to trust their signature."""
        self.misses += 1
        now = self.now_ns if self.now_ns is not None else time.time_ns()
        if newest_ns < now - int(RACY_SECONDS * 1e9):
            self.runs[label] = CachedRun(
                sig=sig, status=c.status.value, reason=c.reason,
                judges=[[j.status.value, j.reason] for j in c.judges], absent=list(absent),
            )
            self.changed = True
        elif self.runs.pop(label, None) is not None:
            self.changed = True

    def classify(self, label: str, paths: AgentRunPaths) -> RunClassification:
        """``classify_run`` of ``paths``, from the cache when its files did not change."""
        run = os.fspath(paths.dir)
        matched, sig, newest, absent = self.probe(label, run)
        hit = self.cached(label) if matched else None
        if hit is not None:
            return hit
        c = classify_run_dir(run, self.judge_models)
        self.store(label, c, sig, newest, absent)
        return c

    def save(self) -> None:
        """Write the cache (only real recoveries call this; a dry run writes nothing)."""
        if not self.changed:
            return
        write_status_cache(self.path, StatusCacheFile(
            version=STATUS_RULES_VERSION, judge_models=self.judge_models, runs=self.runs))
        self.changed = False
