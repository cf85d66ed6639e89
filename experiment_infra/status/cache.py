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
from collections.abc import Sequence
from pathlib import Path

from ..layout import AgentRunPaths
from ..records import (
    STATUS_CACHE_FORMAT,
    CachedClass,
    CachedRun,
    StatusCacheFile,
    cached_class_ok,
    cached_run_ok,
    read_status_cache,
    write_status_cache,
)
from .rules import STATUS_RULES_VERSION, PlainClassification, RunClassification, classify_run_dir, from_plain, run_verdict
from .entries import probe_entry
from .prefetch import Prefetch

__all__ = ["RACY_SECONDS", "StatusCache"]

RACY_SECONDS = 2.0


class StatusCache:
    def __init__(self, path: Path, judge_models: list[str], runs: dict[str, CachedRun] | None = None,
                 classes: list[CachedClass] | None = None, *, now_ns: int | None = None,
                 read_only: bool = False) -> None:
        self.path = path
        # A survey that never saves (a dry run) stores nothing, so it takes no signature of
        # a run the cache has no entry for: on a tree without a cache that is every run, at
        # twenty lstats each.
        self.read_only = read_only
        self.judge_models = list(judge_models)
        self.runs: dict[str, CachedRun] = dict(runs or {})
        self.classes: list[CachedClass] = list(classes or [])
        self.now_ns = now_ns
        self.hits = 0
        self.misses = 0
        self.changed = False
        # Each class is checked and built once, then shared by every run that names it.
        self._built: dict[int, RunClassification | None] = {}
        self._index: dict[tuple, int] = {}  # a classification's key -> its class index (storing)
        # Runs whose entries a prefetch found still holding, moments ago (no second check),
        # and every run it checked: the others of those changed (read without a check).
        self.verified: frozenset[str] = frozenset()
        self.checked: frozenset[str] = frozenset()

    @classmethod
    def load(cls, path: Path, judge_models: list[str], *, now_ns: int | None = None,
             read_only: bool = False, prefetch: Prefetch | None = None) -> StatusCache:
        """The cache at ``path``; empty when missing, unreadable or written under other rules.

        ``prefetch``: the checks a dry run started on this cache file before it imported
        the models (``status_prefetch``); its copy of the file is used, and its verdicts
        (by a read-only cache only: a verified run carries no timestamps to store it under)."""
        if prefetch is not None and (prefetch.path != path or not read_only):
            prefetch.discard()  # its children would only compete with this survey's
            prefetch = None
        data = prefetch.data if prefetch is not None else read_status_cache(path)
        if data is None or data["version"] != STATUS_RULES_VERSION or data["judge_models"] != list(judge_models):
            if prefetch is not None:
                prefetch.discard()
            return cls(path, judge_models, now_ns=now_ns, read_only=read_only)
        cache = cls(path, judge_models, data["runs"], data["classes"], now_ns=now_ns, read_only=read_only)
        if prefetch is not None:
            cache.verified, cache.checked = prefetch.verified(), prefetch.checked()
        return cache

    def pending(self, items: Sequence[tuple[str, str]]) -> int:
        """How many of ``(label, run directory)`` still need a check (the prefetch verified the rest)."""
        if not self.verified:
            return len(items)
        return sum(1 for label, _ in items if label not in self.verified)

    def worth_probing(self, label: str) -> bool:
        """Whether ``probe`` can pay for ``label``: an entry may match (not one a prefetch
        found changed), or a new one will be stored."""
        if label in self.checked and label not in self.verified:
            return False
        return not self.read_only or label in self.runs

    def cached(self, label: str) -> RunClassification | None:
        """The classification stored for ``label`` (after ``probe`` matched); None if its class is unusable."""
        index = self.runs[label][1]
        if index not in self._built:
            self._built[index] = self._build(self.classes[index])
        built = self._built[index]
        if built is not None:
            self.hits += 1
        return built

    def _build(self, entry: CachedClass) -> RunClassification | None:
        if not cached_class_ok(entry, len(self.judge_models)):
            return None
        try:
            return from_plain(*entry, self.judge_models)
        except ValueError:  # a status name these rules do not have
            return None

    def probe(self, label: str, run: str) -> tuple[bool, str, int, int]:
        """Whether the entry of ``label`` still holds for the run directory ``run``; with the
        signature (hex), newest timestamp and absent entries a new classification is stored under."""
        if label in self.verified:
            return True, self.runs[label][0], 0, 0
        return probe_entry(self.runs.get(label), run, len(self.judge_models), len(self.classes))

    def store(self, label: str, c: PlainClassification, sig: str, newest_ns: int, absent: int = 0) -> None:
        """Remember ``c`` (a ``PlainClassification``) for ``label``, unless its files are too fresh
        to trust their signature."""
        self.misses += 1
        if self.read_only:
            return
        now = self.now_ns if self.now_ns is not None else time.time_ns()
        if newest_ns < now - int(RACY_SECONDS * 1e9):
            self.runs[label] = [sig, self._class_of(c), absent]
            self.changed = True
        elif self.runs.pop(label, None) is not None:
            self.changed = True

    def _class_of(self, c: PlainClassification) -> int:
        status, reason, judges = c
        entry = [status, reason, [list(j) for j in judges]]
        key = (status, reason, *judges)
        if not self._index:  # first store: index the classes loaded from the file
            for i, old in enumerate(self.classes):
                if cached_class_ok(old, len(self.judge_models)):
                    self._index.setdefault((old[0], old[1], *(tuple(j) for j in old[2])), i)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self.classes)
            self.classes.append(entry)
        return index

    def classify(self, label: str, paths: AgentRunPaths) -> RunClassification:
        """``classify_run`` of ``paths``, from the cache when its files did not change."""
        run = os.fspath(paths.dir)
        if not self.worth_probing(label):
            self.misses += 1
            return classify_run_dir(run, self.judge_models)
        matched, sig, newest, absent = self.probe(label, run)
        hit = self.cached(label) if matched else None
        if hit is not None:
            return hit
        plain = run_verdict(run, len(self.judge_models))
        self.store(label, plain, sig, newest, absent)
        return from_plain(*plain, self.judge_models)

    def save(self) -> None:
        """Write the cache (only real recoveries call this; a dry run writes nothing).

        Classes no run names any more are dropped, so the file does not grow with every
        recovery."""
        if self.read_only:
            raise RuntimeError(f"{self.path}: this cache was loaded read-only (a dry run's) and is never saved")
        if not self.changed:
            return
        runs = {label: e for label, e in self.runs.items() if cached_run_ok(e, len(self.classes))}
        used = sorted({e[1] for e in runs.values()})
        renumber = {old: new for new, old in enumerate(used)}
        write_status_cache(self.path, StatusCacheFile(
            format=STATUS_CACHE_FORMAT, version=STATUS_RULES_VERSION, judge_models=self.judge_models,
            classes=[self.classes[i] for i in used],
            runs={label: [e[0], renumber[e[1]], e[2]] for label, e in runs.items()},
        ))
        self.changed = False
