#!/usr/bin/env python3
"""A stand-in judge model behind Claude Code's CLI flags.

It checks the workspace it runs in for real (does ``python hello.py`` print
``Hello, World!``?) and replies like ProjectScylla's judges: a sentence, then the
verdict in a fenced ```json block. A model name ending in ``-0.7`` caps the score at
0.7; ``garbage``, ``fail``, ``hang`` or ``limit`` (a usage limit) in the model name (or ``FAKE_JUDGE_MODE``)
makes it reply with no JSON, exit 2, never return, or answer as Claude Code does at its usage limit.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

VERSION = "0.1.0 (Fake Claude Code)"
_SCORE_SUFFIX = re.compile(r"-(0(?:\.\d+)?|1(?:\.0+)?)$")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake_judge")
    parser.add_argument("--model", default="fake-judge")
    parser.add_argument("--print", "-p", dest="print_mode", action="store_true")
    parser.add_argument("--output-format", default="text", choices=["text", "json"])
    parser.add_argument("--dangerously-skip-permissions", action="store_true")
    parser.add_argument("--prompt", default=None)
    parser.add_argument("--version", action="store_true")
    parser.add_argument("prompt_arg", nargs="?", default=None)
    args, _unknown = parser.parse_known_args(argv)
    return args


def grade(score: float) -> str:
    if score >= 1.0:
        return "S"
    return next((g for floor, g in ((0.8, "A"), (0.6, "B"), (0.4, "C"), (0.2, "D")) if score >= floor), "F")


def check_workspace() -> tuple[dict, float]:
    script = Path("hello.py")
    exists = script.is_file()
    output, code = "", None
    if exists:
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=30)
        output, code = done.stdout.strip(), done.returncode
    f1 = 1.0 if exists else 0.0
    f2 = 1.0 if output == "Hello, World!" and code == 0 else 0.0
    items = {
        "F1": {"achieved": f1, "max": 1.0, "reason": "hello.py exists" if exists else "hello.py is missing"},
        "F2": {"achieved": f2, "max": 1.0, "reason": f"python hello.py printed {output!r}, exit {code}"},
    }
    achieved = f1 + f2
    return {"functional": {"achieved": achieved, "max": 2.0, "score": achieved / 2.0, "items": items}}, achieved / 2.0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.version:
        print(VERSION)
        return 0
    mode = os.environ.get("FAKE_JUDGE_MODE") or next((m for m in ("garbage", "fail", "hang", "limit") if m in args.model), "ok")
    if mode == "hang":
        while True:
            time.sleep(3600)
    if mode == "fail":
        print("Error: judge model unavailable (fake)", file=sys.stderr)
        return 2
    if mode == "limit":  # as Claude Code answers when its usage limit is reached
        print(json.dumps({"type": "result", "subtype": "success", "is_error": True, "num_turns": 1,
                          "result": "You've hit your limit \u00b7 resets 6am (America/Los_Angeles)", "total_cost_usd": 0}))
        return 1
    prompt_source = args.prompt if args.prompt is not None else args.prompt_arg
    if not prompt_source or not Path(prompt_source).is_file():
        print("Error: judge prompt file not found", file=sys.stderr)
        return 2
    if mode == "garbage":
        text = "I looked at the work and it seems fine overall, probably a pass? Hard to say."
    else:
        categories, functional = check_workspace()
        cap = _SCORE_SUFFIX.search(args.model)
        score = round(min(functional, float(cap.group(1)) if cap else 0.95), 4)
        verdict = {
            "score": score,
            "passed": score >= 0.6,
            "grade": grade(score),
            "reasoning": f"{args.model}: hello.py checked in the workspace; functional score {functional:.2f}.",
            "categories": categories,
        }
        text = (
            "Now I have all the information needed to evaluate the agent's work. "
            "Let me compile the evaluation:\n\n```json\n" + json.dumps(verdict, indent=2) + "\n```\n"
        )
    if args.output_format == "json":
        print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "num_turns": 1, "result": text}))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
