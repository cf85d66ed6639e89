"""Every entry the status rules read for one agent-evaluation run, and the stat signature
over them that the classification cache is keyed on.

Kept apart from the rules (``status``) and free of pydantic: a dry run checks its cached
runs' signatures in child processes started before it imports the models
(``status_prefetch``), and a check needs nothing but these names and ``os.lstat``.
"""

from __future__ import annotations

import functools
import hashlib
import os
from array import array
from pathlib import Path

from ..layout import AgentRunPaths, judge_slot_name
from ..records.status_cache_file import cached_run_ok

__all__ = ["probe_entry", "run_signature", "run_signature_dir", "signature_parents"]

_RUN = AgentRunPaths(Path("."))  # relative names, taken from layout once


class _Names:
    """Every entry the rules (``status``) read for one run, relative to the run directory.

    The rules read files only through these declarations (and ``_SlotNames``), and the
    cache signature (``run_signature``) enumerates them, in this order: a rule that reads
    a new file declares its name here and is covered by the signature without more ado.
    """

    agent_dir = os.fspath(_RUN.agent_dir)
    command_log = os.fspath(_RUN.command_log)
    output = os.fspath(_RUN.output)
    stderr = os.fspath(_RUN.agent_stderr)
    timing = os.fspath(_RUN.agent_timing)
    agent_result = os.fspath(_RUN.agent_result)
    consensus = os.fspath(_RUN.consensus)
    run_result = os.fspath(_RUN.run_result)
    judge_dir = os.fspath(_RUN.judge_dir)


class _SlotNames:
    """What the rules read inside each judge slot (``judge/judge_NN/``), relative to it."""

    judgment = _RUN.judge_slot(1).judgment.name
    judge_command = _RUN.judge_slot(1).command_log.name
    timing = _RUN.judge_slot(1).timing.name  # ProjectScylla marks a failed judge there


def _declared(names: type) -> tuple[str, ...]:
    """The names a declaration class holds, in declaration order."""
    return tuple(v for k, v in vars(names).items() if not k.startswith("_") and isinstance(v, str))


def _at(directory: str, name: str) -> str:
    return directory + _SEP + name  # os.path.join's generality costs more than the read here


_SEP = os.sep


@functools.lru_cache(maxsize=16)
def _signature_entries(slots: int) -> tuple[str, ...]:
    """Suffixes of the run directory's path: ``""`` (itself), ``"/agent"``, ..."""
    names = list(_declared(_Names))
    for i in range(1, slots + 1):
        slot = _at(_Names.judge_dir, judge_slot_name(i))
        names += [slot, *(_at(slot, n) for n in _declared(_SlotNames))]
    return ("",) + tuple(_SEP + n for n in names)


def run_signature(paths: AgentRunPaths, slots: int) -> tuple[bytes, int]:
    """lstat of every entry the rules read for this run -> (digest, newest m/ctime in ns).

    Any change a rule could see (a file written, replaced, truncated, touched,
    created or removed, a directory listing changed, a symlink swapped in) changes
    the digest; the newest timestamp lets a cache refuse entries too fresh to trust.
    """
    digest, newest, _ = run_signature_dir(os.fspath(paths.dir), slots)
    return digest, newest


def run_signature_dir(run: str, slots: int, known_absent: int = 0) -> tuple[bytes, int, int]:
    """``run_signature`` of the run directory ``run`` (a plain string), and the entries it
    found absent (bit i set: entry i).

    ``known_absent``: entries that were absent when the signature being checked was
    taken; they count as absent without an lstat. That is sound because the parent
    directory of every entry is an entry too, and the run directory is always read:
    creating a file or directory changes its parent's mtime and ctime, so anything
    created since changes the digest all the same. (ProjectScylla's judge slots hold no
    command_log.json, so a cached run of its costs three lstats fewer.)
    """
    lstat = os.lstat
    parts: list[int] = []
    absent = 0
    newest = 0
    known_absent &= ~1  # the run directory itself is always read
    for i, suffix in enumerate(_signature_entries(slots)):
        if known_absent >> i & 1:
            parts.append(-1)
            absent |= 1 << i
            continue
        try:
            st = lstat(run + suffix)
        except OSError:
            parts.append(-1)
            absent |= 1 << i
            continue
        m, c = st.st_mtime_ns, st.st_ctime_ns
        parts += (st.st_mode, st.st_ino, st.st_size, m, c)
        if m > newest:
            newest = m
        if c > newest:
            newest = c
    try:
        raw = array("q", parts).tobytes()
    except OverflowError:  # an inode number above 2**63
        raw = repr(parts).encode()
    return hashlib.blake2b(raw, digest_size=16).digest(), newest, absent


def signature_parents(slots: int) -> list[tuple[str, str]]:
    """(entry, its parent directory) for every entry but the run directory itself: what
    ``known_absent`` relies on (each parent is an entry of the signature too)."""
    entries = _signature_entries(slots)
    return [(e, e.rsplit(_SEP, 1)[0]) for e in entries[1:]]


def probe_entry(entry: object, run: str, slots: int, classes: int) -> tuple[bool, str, int, int]:
    """Whether the cache entry ``entry`` (``records.CachedRun``, naming one of ``classes``
    classes; None when there is none) still holds for the run directory ``run``; with the signature (hex), newest
    timestamp and absent entries a new classification of it would be stored under."""
    usable = cached_run_ok(entry, classes)
    known = entry[2] if usable else 0  # type: ignore[index]
    digest, newest, absent = run_signature_dir(run, slots, known)
    sig = digest.hex()
    if usable and sig == entry[0]:  # type: ignore[index]
        return True, sig, newest, absent
    if known:  # taken with entries assumed absent: take it again, every entry read
        digest, newest, absent = run_signature_dir(run, slots)
        sig = digest.hex()
    return False, sig, newest, absent
