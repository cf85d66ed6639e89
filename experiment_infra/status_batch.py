"""Classify every run of an experiment at once, in worker processes when that pays.

A survey of ten thousand runs is a few hundred thousand small syscalls and JSON
parses: CPU-bound Python, which threads cannot share (the GIL), so a large batch is
split over forked worker processes, one per CPU. Workers only read; they send back
each run's classification (or "cache hit") as plain tuples and the parent process
alone touches the cache. Forking is done only from a single-threaded process (a
command line's dry run, a report), never inside a Prefect flow, whose threads a fork
could leave holding locks; there the batch runs in the calling process.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

from .layout import AgentRunPaths
from .process import usable_cpus
from .status import RunClassification, classify_run_dir, from_plain, to_plain
from .status_cache import StatusCache

__all__ = ["PARALLEL_MIN_RUNS", "classify_runs"]

# Below this many runs a batch takes well under a second in one process, less than
# starting workers and shipping their results back would save.
PARALLEL_MIN_RUNS = 2000
_CHUNKS_PER_WORKER = 4  # small enough chunks that one slow directory does not idle a CPU

# What a worker sends back per run: None for a cache hit, else the classification as
# plain values plus the signature it was read under (for the parent to cache).
_Plain = tuple[str, str, tuple[tuple[str, str], ...], str, int, int] | None

# Set in the parent just before the workers fork, so they inherit it instead of
# receiving it pickled.
_BATCH: tuple[Sequence[tuple[str, str]], list[str], StatusCache | None] | None = None



def _worker_count(runs: int, workers: int | None) -> int:
    if workers is not None:
        return max(1, workers)
    if runs < PARALLEL_MIN_RUNS or threading.active_count() > 1 or not hasattr(os, "fork"):
        return 1
    return min(usable_cpus(), 8)


def _classify_span(span: tuple[int, int]) -> list[_Plain]:
    """Classify runs ``span[0]:span[1]`` of the batch (in a worker, or in the parent)."""
    assert _BATCH is not None
    items, models, cache = _BATCH
    out: list[_Plain] = []
    checked: dict[str, str | None] = {}  # subtest directory -> linked parent (runs share it)
    for label, run in items[span[0]:span[1]]:
        sig, newest, absent = "", 0, 0
        if cache is not None and cache.worth_probing(label):
            matched, sig, newest, absent = cache.probe(label, run)
            if matched:
                out.append(None)
                continue
        c = classify_run_dir(run, models, checked)
        out.append((*to_plain(c), sig, newest, absent))
    return out


def _built(plain: tuple[str, str, tuple[tuple[str, str], ...], str, int, int], models: list[str],
           memo: dict[tuple, RunClassification]) -> RunClassification:
    key = plain[:3]
    c = memo.get(key)
    if c is None:
        c = memo[key] = from_plain(*key, models)
    return c


def classify_runs(items: Sequence[tuple[str, str]], judge_models: list[str], cache: StatusCache | None,
                  *, workers: int | None = None) -> list[RunClassification]:
    """``classify_run`` of every ``(label, run directory)``, in order.

    With a ``cache``, unchanged runs come from it and the others are stored in it
    (``cache.save()`` is the caller's). ``workers``: processes to use (default: one
    per CPU for a large batch in a single-threaded process, else 1).
    """
    global _BATCH
    models = list(judge_models)
    n = len(items)
    count = _worker_count(n, workers)
    _BATCH = (items, models, cache)
    try:
        if count == 1:
            plain = _classify_span((0, n))
        else:
            from concurrent.futures import ProcessPoolExecutor  # only a large batch pays for these
            from multiprocessing import get_context

            step = max(1, -(-n // (count * _CHUNKS_PER_WORKER)))
            spans = [(start, min(n, start + step)) for start in range(0, n, step)]
            with ProcessPoolExecutor(count, mp_context=get_context("fork")) as pool:
                plain = [p for chunk in pool.map(_classify_span, spans) for p in chunk]
    finally:
        _BATCH = None
    memo: dict[tuple, RunClassification] = {}
    out: list[RunClassification] = []
    for (label, run), p in zip(items, plain):
        if p is None:  # the worker found the cache entry matching
            assert cache is not None
            hit = cache.cached(label)
            if hit is not None:
                out.append(hit)
                continue
            out.append(cache.classify(label, AgentRunPaths(Path(run))))
            continue
        c = _built(p, models, memo)
        if cache is not None:
            cache.store(label, c, p[3], p[4], p[5])
        out.append(c)
    return out
