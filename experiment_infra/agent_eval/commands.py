"""Agent and judge command lines: argv templates, environment redaction, replay scripts.

A template is an argv list whose elements may hold ``{model}``, ``{prompt_file}``,
``{workspace}``, ``{run_dir}``, ``{tier}``, ``{subtest}`` and ``{run_number}``; an
element that is exactly ``{extra_args}`` is replaced by the condition's extra
arguments (none by default, which gives ProjectScylla's exact command line).
Nothing here goes through a shell: the argv list is what runs.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import string
import subprocess
from typing import Mapping, Sequence

from ..processes.process import kill_group

EXTRA_ARGS = "{extra_args}"
PLACEHOLDERS = frozenset({"model", "prompt_file", "workspace", "run_dir", "tier", "subtest", "run_number"})

# Claude Code, as in ProjectScylla's agent/command_log.json.
DEFAULT_AGENT_COMMAND: tuple[str, ...] = (
    "claude", "--model", "{model}", "--print", "--output-format", "json",
    "--dangerously-skip-permissions", EXTRA_ARGS, "{prompt_file}",
)
# The judge replies in text with a fenced ```json block (ProjectScylla's response.txt).
DEFAULT_JUDGE_COMMAND: tuple[str, ...] = (
    "claude", "--model", "{model}", "--print", "--dangerously-skip-permissions", "{prompt_file}",
)

AGENT_COMMAND_ENV = "EXPERIMENT_AGENT_COMMAND"
JUDGE_COMMAND_ENV = "EXPERIMENT_JUDGE_COMMAND"

REDACTED = "<redacted>"
_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.IGNORECASE)
# What ProjectScylla records of the environment, plus whatever the condition sets.
RECORDED_ENV = ("PATH", "HOME", "USER", "SHELL", "LANG")


def check_template(template: Sequence[str], kind: str) -> None:
    if isinstance(template, str) or not template or not all(isinstance(a, str) for a in template):
        raise ValueError(f"{kind} must be a non-empty list of strings (an argv template), got {template!r}")
    for element in template:
        if element == EXTRA_ARGS:
            continue
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(element) if f is not None}
        except ValueError as exc:
            raise ValueError(f"{kind}: element {element!r} is not a valid template ({exc}); double literal braces") from None
        unknown = sorted(n for n in names if n not in PLACEHOLDERS)
        if unknown:
            known = ", ".join("{" + p + "}" for p in sorted(PLACEHOLDERS | {"extra_args"}))
            raise ValueError(f"{kind}: unknown placeholder {{{unknown[0]}}} in {element!r} (known: {known})")


def render(template: Sequence[str], *, extra_args: Sequence[str] = (), **values: object) -> list[str]:
    argv: list[str] = []
    for element in template:
        if element == EXTRA_ARGS:
            argv.extend(extra_args)
        else:
            argv.append(element.format_map({k: str(v) for k, v in values.items()}))
    return argv


def command_from_env(variable: str) -> tuple[str, ...] | None:
    """An argv template given as a shell-quoted string in ``variable`` (None when unset)."""
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return None
    try:
        argv = tuple(shlex.split(raw))
    except ValueError as exc:
        raise ValueError(f"{variable}: cannot split {raw!r} ({exc})") from None
    check_template(argv, variable)
    return argv


# -------------------------------------------------------------------- environment


def is_secret(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if is_secret(k) else v) for k, v in env.items()}


def recorded_env(condition_env: Mapping[str, str]) -> dict[str, str]:
    """The environment written to command_log.json: a few basics and the condition's, redacted."""
    base = {k: os.environ[k] for k in RECORDED_ENV if k in os.environ}
    return redact_env({**base, **condition_env})


def process_env(condition_env: Mapping[str, str]) -> dict[str, str]:
    """The environment a command runs with. A redacted value (from a manifest) is taken
    from the current environment, so secrets never need to be stored anywhere."""
    env = dict(os.environ)
    for name, value in condition_env.items():
        if value == REDACTED:
            if name in os.environ:
                env[name] = os.environ[name]
        else:
            env[name] = value
    return env


# ----------------------------------------------------------------------- scripts


def _env_lines(condition_env: Mapping[str, str]) -> list[str]:
    lines = ["# Environment variables (secrets redacted)", "# Uncomment and fill in as needed:"]
    for name, value in condition_env.items():
        if is_secret(name) or value == REDACTED:
            lines.append(f"# export {name}='your-{name.lower().replace('_', '-')}-here'")
        else:
            lines.append(f"export {name}={shlex.quote(value)}")
    if not any(is_secret(n) for n in condition_env):
        lines.append("# export ANTHROPIC_API_KEY='your-anthropic-api-key-here'")
    return lines


def agent_replay_script(argv: Sequence[str], cwd: str, condition_env: Mapping[str, str], generated_at: str) -> str:
    """``agent/replay.sh``: reruns the agent command by hand (ProjectScylla's shape)."""
    return "\n".join(
        [
            "#!/bin/bash",
            f"# Generated: {generated_at}",
            "# Total commands: 1",
            "#",
            "# This script executes commands for the test run.",
            "#",
            "set -e  # Exit on first error",
            "set -x  # Print commands as they execute",
            "",
            *_env_lines(condition_env),
            "",
            "# Commands",
            "",
            f"# Command 1/1 at {generated_at}",
            f"cd {shlex.quote(cwd)}",
            shlex.join(argv),
            "",
        ]
    )


def judge_replay_script(argv: Sequence[str], cwd: str) -> str:
    """``judge/judge_NN/replay.sh``: reruns one judge; prints its reply (the recorded one is kept)."""
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            "# Replay judge evaluation",
            "# Generated by experiment-infra",
            "",
            "set -euo pipefail",
            "",
            "# Re-run the judge with the same prompt and model (shared judge_prompt.md at run level)",
            f"cd {shlex.quote(cwd)}",
            shlex.join(argv),
            "",
        ]
    )


def _program(argv: Sequence[str]) -> tuple[str, ...]:
    """The program part of an argv: everything before the first flag."""
    head: list[str] = []
    for element in argv:
        if element.startswith("-"):
            break
        head.append(element)
    return tuple(head[:2]) if head else tuple(argv[:1])


VERSION_TIMEOUT_SECONDS = 15.0


@functools.lru_cache(maxsize=32)
def _version_of(program: tuple[str, ...]) -> str:
    # Its own process group, killed whole on timeout: a CLI that hangs on --version (and
    # any child it started, which may hold the pipe open) must not outlive the question.
    try:
        proc = subprocess.Popen(
            [*program, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True, start_new_session=True,
        )
    except (OSError, ValueError):
        return "unknown"
    try:
        out, _ = proc.communicate(timeout=VERSION_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        kill_group(proc, grace=1.0)
        if proc.stdout is not None:
            proc.stdout.close()  # not read: a process that left the group could hold it open forever
        return "unknown"
    except BaseException:
        kill_group(proc, grace=1.0)
        raise
    first = out.strip().splitlines()[:1]
    return first[0] if proc.returncode == 0 and first else "unknown"


def cli_version(argv: Sequence[str]) -> str:
    """What ``<program> --version`` prints (``unknown`` if it cannot say), cached per program."""
    return _version_of(_program(argv))


def model_md(kind: str, model: str, version: str, timestamp: str, argv: Sequence[str] | None = None) -> str:
    """``MODEL.md`` of an agent run (kind ``Agent``) or a judge slot (kind ``Judge``)."""
    lines = [
        f"# {kind} Model Information",
        "",
        f"**Model**: {model}",
        f"**Claude Code Version**: {version}",
        f"**Timestamp**: {timestamp}",
    ]
    if argv is not None:
        output = argv[argv.index("--output-format") + 1] if "--output-format" in argv[:-1] else "text"
        lines += ["", "## Configuration", "", f"- Model ID: {model}", f"- Output Format: {output}"]
        if "--dangerously-skip-permissions" in argv:
            lines.append("- Permissions: dangerously-skip-permissions (for testing)")
        lines += ["", "## Environment", "", "- Generated by experiment-infra"]
    return "\n".join(lines) + "\n"
