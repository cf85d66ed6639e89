"""What a test does when this machine lacks something it needs (a Slurm cluster, a tmpfs
mount, chromium, an optional extra): on CI, which installs all of them (``.ci/run``), that
is a failure, so a broken set-up cannot pass as a row of skips; elsewhere, a skip that says
what is missing and how to get it."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """True where the ``CI`` environment variable says so (``CI=true``, as CI services set it)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Stop the test because ``reason`` is missing: a failure under CI, a skip elsewhere."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the test, it does not skip it)", pytrace=False)
    pytest.skip(reason)


def require_module(name: str, reason: str) -> None:
    """Import ``name`` or stop the test, as ``missing`` does (``pytest.importorskip`` that fails on CI)."""
    try:
        __import__(name)
    except ImportError as exc:
        missing(f"{reason} ({exc})")


__all__ = ["in_ci", "missing", "require_module"]
