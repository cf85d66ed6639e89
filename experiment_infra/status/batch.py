"""Classify every run of an experiment at once, in forked child processes when that pays.

A survey of ten thousand runs is a few hundred thousand small syscalls and JSON
parses: CPU-bound Python, which threads cannot share (the GIL), so a large batch is
split in chunks over one process per CPU, the caller's included (``forked.Chunks``).
Children only read; each sends back its runs' classifications (or "cache hit") as
plain tuples, and the caller alone touches the cache. Inside a Prefect flow (threads)
the batch runs in the calling process.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .forked import Chunks, chunk_size, processes_for
from ..layout import AgentRunPaths
from .rules import RunClassification, from_plain, run_verdict
from .cache import StatusCache

__all__ = ["classify_runs", "worker_count"]

# What a child sends back per run: None for a cache hit, else the classification as
# plain values plus the signature it was read under (for the parent to cache).
_Plain = tuple[str, str, tuple[tuple[str, str], ...], str, int, int] | None

# Set just before the children fork, so they inherit it instead of receiving it pickled.
_BATCH: tuple[Sequence[tuple[str, str]], list[str], StatusCache | None] | None = None


def worker_count(runs: int, workers: int | None = None) -> int:
    """Processes (the caller included) that classify a batch of ``runs``."""
    return max(1, workers) if workers is not None else processes_for(runs)


def _classify_span(start: int, end: int) -> list[_Plain]:
    """Classify runs ``start:end`` of the batch (in a child, or in the parent)."""
    assert _BATCH is not None
    items, models, cache = _BATCH
    slots = len(models)
    out: list[_Plain] = []
    checked: dict[str, str | None] = {}  # subtest directory -> linked parent (runs share it)
    for label, run in items[start:end]:
        sig, newest, absent = "", 0, 0
        if cache is not None and cache.worth_probing(label):
            matched, sig, newest, absent = cache.probe(label, run)
            if matched:
                out.append(None)
                continue
        out.append((*run_verdict(run, slots, checked), sig, newest, absent))
    return out


def classify_runs(items: Sequence[tuple[str, str]], judge_models: list[str], cache: StatusCache | None,
                  *, workers: int | None = None) -> list[RunClassification]:
    """``classify_run`` of every ``(label, run directory)``, in order.

    With a ``cache``, unchanged runs come from it and the others are stored in it
    (``cache.save()`` is the caller's). ``workers``: processes to use, the caller's
    included (default: one per CPU for a large batch in a single-threaded process, else 1).
    """
    global _BATCH
    models = list(judge_models)
    n = len(items)
    count = worker_count(n if cache is None else cache.pending(items), workers)
    _BATCH = (items, models, cache)
    try:
        if count == 1:
            plain = _classify_span(0, n)
        else:
            size = chunk_size(n)
            with Chunks(lambda k: _classify_span(k * size, min(n, (k + 1) * size)), -(-n // size), count - 1) as chunks:
                plain = [p for chunk in chunks.results() for p in chunk]
    finally:
        _BATCH = None
    memo: dict[tuple, RunClassification] = {}
    out: list[RunClassification] = []
    for (label, run), p in zip(items, plain, strict=True):
        if p is None:  # the cache entry matched
            assert cache is not None
            hit = cache.cached(label)
            out.append(hit if hit is not None else cache.classify(label, AgentRunPaths(Path(run))))
            continue
        # Runs classified alike share one RunClassification (and so one judges tuple).
        key = p[:3]
        c = memo.get(key)
        if c is None:
            c = memo[key] = from_plain(*key, models)
        if cache is not None:
            cache.store(label, key, p[3], p[4], p[5])
        out.append(c)
    return out
