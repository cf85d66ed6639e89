"""MkDocs hook: the command-line reference, generated from the argparse parsers themselves.

A page that holds the line ``<!-- cli-reference -->`` gets, in its place, one section per
command: its usage line, its description and a table of every argument and flag (names,
value, default, help), read from the same ``build_parser()`` the command parses with, so
the documentation cannot drift from the flags. Every ``experiment_cli`` module with a
``build_parser`` is included, so a new command appears without editing this file; the
ones listed in ``KNOWN`` come first, under the name a user types.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path
from typing import Any, Callable

MARKER = "<!-- cli-reference -->"
ROOT = Path(__file__).resolve().parents[2]

# (module, how a user runs it, keyword arguments for build_parser, a note under the heading)
KNOWN: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "experiment_cli.run_suite", "python flows/run_suite.py", {"prog": "flows/run_suite.py"},
        "`python SUITE.py [flags]` (a suite file run directly) takes the same flags, without `SUITE`.",
    ),
    ("experiment_cli.recover", "python flows/recover.py", {}, ""),
    ("experiment_cli.report", "python flows/report.py", {}, ""),
    ("experiment_cli.compare", "python flows/compare.py", {}, ""),
    ("experiment_cli.nightly", "python flows/nightly.py", {}, ""),
    ("deployments.serve", "python deployments/serve.py", {}, ""),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;").replace("\n", " ")


def _default(action: argparse.Action) -> str:
    if action.default in (None, False, [], argparse.SUPPRESS) or action.nargs == 0:
        return ""
    return f"`{action.default}`"


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices:
        return " \\| ".join(f"`{c}`" for c in action.choices)
    metavar = action.metavar or (action.dest.upper() if action.option_strings else action.dest)
    return f"`{metavar}`"


def _table(parser: argparse.ArgumentParser) -> str:
    rows = ["| argument | value | default | meaning |", "|---|---|---|---|"]
    for action in parser._actions:  # argparse keeps no public list of its arguments
        names = ", ".join(f"`{o}`" for o in action.option_strings) or f"`{action.metavar or action.dest}` (positional)"
        repeat = " (repeatable)" if isinstance(action, argparse._AppendAction) and "repeatable" not in (action.help or "") else ""
        help_text = (action.help or "") % {"default": action.default} if action.help and "%(" in action.help else (action.help or "")
        rows.append(f"| {names} | {_value(action) if action.option_strings else ''} | {_default(action)} | {_cell(help_text)}{repeat} |")
    exclusive = [
        " / ".join(f"`{a.option_strings[0]}`" for a in group._group_actions if a.option_strings)
        for group in parser._mutually_exclusive_groups
    ]
    notes = "".join(f"\nExclusive: {e}.\n" for e in exclusive if e)
    return "\n".join(rows) + "\n" + notes


def _section(command: str, parser: argparse.ArgumentParser, note: str) -> str:
    usage = parser.format_usage().removeprefix("usage: ").strip()
    parts = [f"## `{command}`", "", "```text", usage, "```", ""]
    if parser.description:
        parts += [parser.description, ""]
    if note:
        parts += [note, ""]
    parts.append(_table(parser))
    return "\n".join(parts)


def _parsers() -> list[tuple[str, argparse.ArgumentParser, str]]:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    found: list[tuple[str, argparse.ArgumentParser, str]] = []
    seen = set()
    for module, command, kwargs, note in KNOWN:
        build: Callable[..., argparse.ArgumentParser] = importlib.import_module(module).build_parser
        found.append((command, build(**kwargs), note))
        seen.add(module)
    import experiment_cli

    for info in pkgutil.iter_modules(experiment_cli.__path__, "experiment_cli."):
        if info.name in seen:
            continue
        build = getattr(importlib.import_module(info.name), "build_parser", None)
        if callable(build) and build.__module__ == info.name:  # not one a module merely imports
            parser = build()
            found.append((f"python {parser.prog}", parser, ""))
    return found


def reference() -> str:
    return "\n".join(_section(command, parser, note) for command, parser, note in _parsers())


def on_page_markdown(markdown: str, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, reference())
