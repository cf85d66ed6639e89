"""The per-experiment lock: real processes contend for it; stale locks are taken over once."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import PYTHON, REPO_ROOT

from experiment_infra.layout import ExperimentPaths, lock_takeover_marker
from experiment_infra.files.lock import LockHeld, acquire_lock, check_lock
from experiment_infra.records import LockInfo, read_record

HOLD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from experiment_infra.files.lock import acquire_lock
    with acquire_lock(Path(sys.argv[1]), what="exp", command=["holder"]):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)

# A contender: says "ready", waits for "go" on stdin (the barrier: every contender is
# started and waiting before any tries), tries once and says how it went; a winner holds the
# lock until told to release it, after every other contender has answered.
RACE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from experiment_infra.files.lock import LockHeld, acquire_lock
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        sys.exit("no go")
    try:
        held = acquire_lock(Path(sys.argv[1]), what="exp")
    except LockHeld as exc:
        print("refused", exc, flush=True)
    else:
        print("won", held.info.token, flush=True)
        sys.stdin.readline()  # "release"
        held.release()
    """
)


def dead_pid() -> int:
    proc = subprocess.Popen([PYTHON, "-c", "pass"])
    proc.wait()
    return proc.pid


def stale_lock(path: Path, **changes: object) -> LockInfo:
    info = LockInfo(pid=dead_pid(), host=socket.gethostname(), started_at="2026-01-01T00:00:00+00:00", token="old", command=["gone"])
    info = info.model_copy(update=changes)
    path.write_text(info.model_dump_json())
    return info


def test_second_holder_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    lock = ExperimentPaths(tmp_path).lock
    holder = subprocess.Popen(
        [PYTHON, "-c", HOLD, str(lock), "30"], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeld) as err:
            acquire_lock(lock, what="exp")
        message = str(err.value)
        assert f"pid {holder.pid} on {socket.gethostname()}" in message and "started 20" in message and "(holder)" in message
        with pytest.raises(LockHeld):
            check_lock(lock, what="exp")
        assert read_record(lock, LockInfo).record.pid == holder.pid  # untouched
    finally:
        holder.kill()
        holder.wait()
    # The holder was killed: its lock is now stale and is taken over.
    with acquire_lock(lock, what="exp") as held:
        assert held.took_over_from is not None and held.took_over_from.pid == holder.pid
        assert read_record(lock, LockInfo).record.token == held.info.token
    assert not lock.exists()


def test_release_removes_only_its_own_lock(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    held = acquire_lock(lock, what="exp")
    info = json.loads(lock.read_text())
    assert (info["pid"], info["host"]) == (os.getpid(), socket.gethostname())
    assert not list(tmp_path.glob("*.tmp")) and not lock_takeover_marker(lock).exists()
    with pytest.raises(LockHeld):
        acquire_lock(lock, what="exp")  # the same process twice is still two recoveries
    stale_lock(lock)  # someone replaced it behind our back (simulated)
    held.release()
    assert lock.exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    old = stale_lock(lock)
    check_lock(lock, what="exp")  # a dead holder does not block
    with acquire_lock(lock, what="exp") as held:
        assert held.took_over_from == old
    assert not lock.exists() and sorted(p.name for p in tmp_path.iterdir()) == []


def test_reused_pid_is_not_mistaken_for_the_holder(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    stale_lock(lock, pid=os.getpid(), pid_start="1")  # our pid, but not our process start time
    with acquire_lock(lock, what="exp") as held:
        assert held.took_over_from is not None


def test_lock_on_another_host_is_never_taken(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    stale_lock(lock, host="elsewhere.invalid")
    with pytest.raises(LockHeld, match="elsewhere.invalid.*cannot be checked from here.*delete"):
        acquire_lock(lock, what="exp")
    assert read_record(lock, LockInfo).record.token == "old"


def test_unreadable_lock_waits_then_is_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    lock.write_text("")
    with pytest.raises(LockHeld, match="try again"):
        acquire_lock(lock, what="exp")
    old = time.time() - 3600
    os.utime(lock, (old, old))
    with acquire_lock(lock, what="exp") as held:
        assert held.took_over_unreadable


def test_concurrent_takeover_of_a_stale_lock_has_one_winner(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    stale_lock(lock)
    procs = [
        subprocess.Popen([PYTHON, "-c", RACE, str(lock)], cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    try:
        assert [p.stdout.readline().strip() for p in procs] == ["ready"] * 6  # type: ignore[union-attr]
        for p in procs:  # every one is waiting: let them all go
            p.stdin.write("go\n")  # type: ignore[union-attr]
            p.stdin.flush()  # type: ignore[union-attr]
        outputs = [p.stdout.readline().strip() for p in procs]  # type: ignore[union-attr]
        for p in procs:  # every contender has tried: only now does the winner let go
            p.communicate("release\n", timeout=120)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert all(p.returncode == 0 for p in procs), outputs
    winners = [o for o in outputs if o.startswith("won")]
    assert len(winners) == 1, outputs
    assert all(o.startswith("refused") for o in outputs if not o.startswith("won")), outputs
    assert not lock.exists() and not list(tmp_path.iterdir())


def test_stale_takeover_marker_is_cleared(tmp_path: Path) -> None:
    lock = tmp_path / ".recover.lock"
    stale_lock(lock)
    marker = lock_takeover_marker(lock)
    stale_lock(marker)  # a process killed in the middle of a takeover
    with acquire_lock(lock, what="exp") as held:
        assert held.took_over_from is not None
    assert not marker.exists()
