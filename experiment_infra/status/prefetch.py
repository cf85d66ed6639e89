"""A dry run's cached runs, checked while it starts.

A dry run of a large experiment whose runs are all in the classification cache spends
its time in two places: importing the models and rules (about a tenth of a second of
CPU) and checking each cached run's signature (an lstat per entry the rules read). The
second needs neither: ``prefetch`` reads the cache file, and forked children check the
signature of every run it holds while the parent imports; the survey then takes their
verdicts (``StatusCache.load(..., prefetch=...)``) instead of checking those runs itself.

A cache whose runs mostly changed since it was written (the experiment was copied, or
another tool rewrote its files) is not checked at all: a sample of its runs says so, and
checking every run only to read it anyway cost a dry run as much again as reading every
run without a cache. The survey then reads every run (``Prefetch.stale``).

Free of pydantic (and of the status rules) on purpose: the children are forked before
the parent imports them. Nothing here decides a status: a run is only ever reported
"unchanged since its cached classification", the same check ``StatusCache.probe``
makes, and anything else (a run the cache lacks, one that changed, a cache written
under other rules or judge models) is classified by the survey from its files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .forked import Chunks, chunk_size, processes_for
from ..layout import ExperimentPaths
from ..records.status_cache_file import StatusCacheFile, read_status_cache
from .entries import probe_entry

__all__ = ["Prefetch", "prefetch"]

# Runs checked before any child is started; more than half of them changed: a stale cache.
SAMPLE = 16

# Set in the parent just before the children fork, so they inherit it: the experiment,
# the cache's labels, its contents, and the runs per chunk.
_WORK: tuple[ExperimentPaths, list[str], StatusCacheFile, int] | None = None


def _check_chunk(chunk: int) -> bytes:
    """1 for each label of chunk ``chunk`` whose cache entry still holds, else 0."""
    assert _WORK is not None
    exp, labels, data, size = _WORK
    runs, slots, classes = data["runs"], len(data["judge_models"]), len(data["classes"])
    span = labels[chunk * size:(chunk + 1) * size]
    out = bytearray(len(span))
    for i, (label, run) in enumerate(zip(span, exp.run_dirs_of_labels(span))):
        if run is not None and probe_entry(runs[label], run, slots, classes)[0]:
            out[i] = 1
    return bytes(out)


def _mostly_changed(exp: ExperimentPaths, labels: list[str], data: StatusCacheFile) -> bool:
    """Whether more than half of a sample of the cached runs, spread over the experiment, changed."""
    runs, slots, classes = data["runs"], len(data["judge_models"]), len(data["classes"])
    sample = labels[:: max(1, len(labels) // SAMPLE)][:SAMPLE]
    changed = sum(
        1 for label, run in zip(sample, exp.run_dirs_of_labels(sample))
        if run is None or not probe_entry(runs[label], run, slots, classes)[0]
    )
    return 2 * changed > len(sample)


class Prefetch:
    """Checks under way on the cache file ``path`` (its contents: ``data``); none at all when
    ``stale`` (a sample of the cached runs mostly changed): every run is then taken as changed."""

    def __init__(self, path: Path, data: StatusCacheFile, labels: list[str], chunks: Chunks[bytes] | None,
                 *, stale: bool = False) -> None:
        self.path = path
        self.data = data
        self.stale = stale
        self._labels = labels
        self._chunks: Chunks[bytes] | None = chunks
        self._verified: frozenset[str] | None = None
        self._failed = False
        self._discarded = False
        self.every = frozenset(labels)  # every run the cache holds: what the checks clear if none changed

    def assuming_unchanged(self) -> Prefetch:
        """This prefetch as a survey takes it when it goes ahead of the checks: every cached
        run unchanged, at once, while they go on. Its answer stands once ``confirmed()``;
        otherwise the survey is made again with this prefetch itself."""
        return _Assumed(self)

    def confirmed(self) -> bool:
        """The checks (waited for) found every cached run unchanged, or the survey did not
        use them at all (``discard``): either way an answer made ahead of them stands."""
        return self._discarded or self.verified() == self.every

    def discard(self) -> None:
        """The survey does not use this cache (other rules, other judges, another file): stop."""
        self._discarded = True
        self.close()

    def verified(self) -> frozenset[str]:
        """The labels whose cached entry still holds: this process checks whatever chunks
        are left, then takes the children's verdicts. None at all when the checks failed (a
        child killed, say): they only ever save time, and the survey then checks itself."""
        if self._verified is None:
            flags = b""
            try:
                if self._chunks is not None:
                    flags = b"".join(self._chunks.results())
            except Exception:  # noqa: BLE001 - any reason: the survey reads those runs itself
                flags, self._failed = b"", True
            finally:
                self.close()
            self._verified = frozenset(label for label, ok in zip(self._labels, flags) if ok)
        return self._verified

    def checked(self) -> frozenset[str]:
        """The labels these checks have a verdict on: every cached run, once they ran (or were
        given up on a stale cache); none when they failed. Those not ``verified()`` changed,
        and the survey reads them without checking them a second time."""
        self.verified()
        return frozenset() if self._failed else self.every

    def close(self) -> None:
        """Stop the children whose verdicts were not asked for (an error, a cache not used)."""
        global _WORK
        _WORK = None
        if self._chunks is not None:
            self._chunks.close()
            self._chunks = None


class _Assumed(Prefetch):
    """A Prefetch's view that takes every cached run as unchanged (``assuming_unchanged``)."""

    def __init__(self, real: Prefetch) -> None:  # noqa: D107 - shares the real one's state
        self._real = real
        self.path, self.data, self.every, self.stale = real.path, real.data, real.every, real.stale

    def verified(self) -> frozenset[str]:
        return self._real.every

    def checked(self) -> frozenset[str]:
        return self._real.every

    def close(self) -> None:
        self._real.close()

    def discard(self) -> None:
        self._real.discard()


@contextmanager
def prefetch(directory: str | Path, *, processes: int | None = None) -> Iterator[Prefetch | None]:
    """Start checking the cached runs of the experiment at ``directory``: a Prefetch, or
    None when there is nothing worth starting (no cache, few runs, a process with threads).
    ``processes``: how many check, this one included (default: ``forked.processes_for``).
    Never raises for a bad directory: the survey says what is wrong with it."""
    global _WORK
    early = None
    try:
        exp = ExperimentPaths(Path(os.path.realpath(directory)))
        data = read_status_cache(exp.status_cache)
        if data is not None and processes is None:
            processes = processes_for(len(data["runs"]))
        if data is not None and processes is not None and processes > 1:
            labels = list(data["runs"])
            if _mostly_changed(exp, labels, data):
                early = Prefetch(exp.status_cache, data, labels, None, stale=True)
            else:
                size = chunk_size(len(labels))
                _WORK = (exp, labels, data, size)  # kept until close(): this process checks chunks too
                # One child fewer than processes: this one joins in once it has imported the rules.
                chunks = Chunks(_check_chunk, -(-len(labels) // size), processes - 1)
                early = Prefetch(exp.status_cache, data, labels, chunks)
    except (OSError, ValueError):  # no fork (EAGAIN, ENOMEM), a path the layout refuses: the survey checks itself
        _WORK = None
        early = None
    try:
        yield early
    finally:
        if early is not None:
            early.close()
