#!/usr/bin/env python3
"""A stand-in for Claude Code's CLI: same flags, same ``--output-format json`` reply.

It "solves" the demo task for real (writes ``hello.py`` in its working directory) and
prints the JSON object Claude Code prints. For tests it misbehaves on request, by a
word in the model name or ``FAKE_AGENT_MODE``:

    hang     sleep until killed            fail     stderr message, exit 1
    garbage  print non-JSON, exit 0        slow     sleep FAKE_AGENT_SLEEP s (default 3) first
    FAKE_AGENT_FLAKY_FILE=path: fail once (creating the file), then behave.
    FAKE_AGENT_REQUIRE_ENV=A,B: fail unless these variables are set (checks env passing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

VERSION = "0.1.0 (Fake Claude Code)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake_agent")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--print", "-p", dest="print_mode", action="store_true")
    parser.add_argument("--output-format", default="text", choices=["text", "json", "stream-json"])
    parser.add_argument("--dangerously-skip-permissions", action="store_true")
    parser.add_argument("--prompt", default=None, help="prompt text or a path to a prompt file")
    parser.add_argument("--version", action="store_true")
    parser.add_argument("prompt_arg", nargs="?", default=None)
    args, _unknown = parser.parse_known_args(argv)  # extra CLI args (e.g. --max-turns 5) are accepted
    return args


def read_prompt(value: str | None) -> str:
    if value is None:
        return sys.stdin.read() if not sys.stdin.isatty() else ""
    path = Path(value)
    return path.read_text(encoding="utf-8") if path.is_file() else value


def mode_for(model: str) -> str:
    forced = os.environ.get("FAKE_AGENT_MODE", "")
    if forced:
        return forced
    return next((m for m in ("hang", "fail", "garbage", "slow") if m in model), "ok")


def reply(model: str, prompt: str, text: str, started: float) -> dict:
    input_tokens = 20 + len(prompt) // 40
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "duration_api_ms": 0,
        "num_turns": 3,
        "result": text,
        "session_id": str(uuid.uuid4()),
        "total_cost_usd": round(0.0001 * input_tokens + 0.0005, 6),
        "usage": {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 5000,
            "output_tokens": 120,
            "service_tier": "standard",
        },
        "modelUsage": {model: {"inputTokens": input_tokens, "outputTokens": 120, "costUSD": 0.001}},
        "permission_denials": [],
        "uuid": str(uuid.uuid4()),
    }


def main(argv: list[str]) -> int:
    started = time.monotonic()
    args = parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    prompt = read_prompt(args.prompt if args.prompt is not None else args.prompt_arg)
    mode = mode_for(args.model)
    flaky = os.environ.get("FAKE_AGENT_FLAKY_FILE")
    if flaky and not Path(flaky).exists():
        Path(flaky).write_text("failed once\n")
        print("Error: overloaded_error (fake, transient)", file=sys.stderr)
        return 1
    missing = [n for n in os.environ.get("FAKE_AGENT_REQUIRE_ENV", "").split(",") if n and not os.environ.get(n)]
    if missing:
        print(f"Error: {', '.join(missing)} not set", file=sys.stderr)
        return 1
    if mode == "hang":
        # A child too, so a timeout must kill the whole process group; pids for tests to check.
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        Path("hang.pids").write_text(f"{os.getpid()} {child.pid}\n")
        while True:
            time.sleep(3600)
    if mode == "fail":
        print("Error: API rate limit exceeded (fake)", file=sys.stderr)
        return 1
    if mode == "slow":
        time.sleep(float(os.environ.get("FAKE_AGENT_SLEEP", "3")))
    if mode == "garbage":
        print("this is not the JSON you are looking for")
        return 0
    if not prompt.strip():
        print("Error: no prompt given", file=sys.stderr)
        return 2
    Path("hello.py").write_text('print("Hello, World!")\n', encoding="utf-8")
    text = f"Task completed successfully!\n\nI've created `hello.py` in {Path.cwd()}; it prints `Hello, World!`."
    if args.output_format == "text":
        print(text)
    else:
        print(json.dumps(reply(args.model, prompt, text, started), separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
