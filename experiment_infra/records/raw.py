"""Bounded, link-refusing reads of a file's bytes: what every reader of the project's
JSON files shares (``base.read_record`` for the models, ``status_cache_file`` for the
classification cache). Free of pydantic, so a process that reads no model (a dry run's
child processes) does not import it.
"""

from __future__ import annotations

import errno
import os

__all__ = ["MAX_RECORD_BYTES", "NOFOLLOW_READ_FLAGS", "read_all"]

# Result files are small; anything larger is not one of ours and is not read whole.
MAX_RECORD_BYTES = 32 * 1024 * 1024

# O_NONBLOCK: a FIFO planted where a result file should be must not hang the reader.
NOFOLLOW_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def read_all(fd: int, size: int, *, limit: int = MAX_RECORD_BYTES) -> bytes:
    """Read to EOF (the file may have grown since fstat), never past ``limit``."""
    first = os.read(fd, size + 1)
    if len(first) <= size:  # a short read of a regular file is its end: the usual case
        return first
    chunks = [first]
    total = len(first)
    want = size + 1
    while total <= limit:
        chunk = os.read(fd, max(want, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise OSError(errno.EFBIG, f"grew past {limit} bytes while being read")
    return b"".join(chunks)
