"""The documentation site builds with ``mkdocs build --strict``, as ``make docs-build`` runs it:
a broken link, a missing page or a page left out of the navigation fails ``make test`` (and so
CI), and the command-line reference lists every flag the commands' parsers accept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from prerequisites import require_module

REPO_ROOT = Path(__file__).resolve().parents[1]


def build(config_dir: Path, site: Path) -> subprocess.CompletedProcess[str]:
    require_module("mkdocs", "mkdocs is not installed (the dev extra: make setup)")
    require_module("material", "mkdocs-material is not installed (the dev extra: make setup)")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config_dir / "mkdocs.yml"), "-d", str(site)],
        cwd=config_dir, env=env, capture_output=True, text=True, timeout=300,
    )


def test_site_builds_strictly_with_every_flag_in_the_cli_reference(tmp_path: Path) -> None:
    done = build(REPO_ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    cli = (tmp_path / "site" / "cli" / "index.html").read_text()
    sys.path.insert(0, str(REPO_ROOT / "docs" / "hooks"))
    try:
        import cli_reference
    finally:
        sys.path.pop(0)
    parsers = cli_reference._parsers()
    assert {command for command, _, _ in parsers} >= {
        "python flows/run_suite.py", "python flows/recover.py", "python flows/report.py", "python flows/nightly.py",
    }
    for command, parser, _ in parsers:
        assert command in cli, f"{command} is missing from the command-line reference"
        for action in parser._actions:
            for flag in action.option_strings:
                assert f"<code>{flag}</code>" in cli, f"{command} {flag} is missing from the command-line reference"
    # The screenshots the UI page shows are published with it.
    assert (tmp_path / "site" / "ui-cases-table.png").is_file()


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(REPO_ROOT / "docs", copy / "docs")
    shutil.copy(REPO_ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    page = copy / "docs" / "results.md"
    page.write_text(page.read_text() + "\nSee [the old page](no-such-page.md).\n")
    done = build(copy, tmp_path / "site")
    assert done.returncode != 0
    assert "no-such-page.md" in done.stderr


def test_the_readme_links_name_files_that_exist() -> None:
    import re

    readme = (REPO_ROOT / "README.md").read_text()
    targets = [t for t in re.findall(r"\]\(([^)\s]+)\)", readme) if not t.startswith(("http://", "https://", "#"))]
    assert targets, "the README links into the docs"
    for target in targets:
        assert (REPO_ROOT / target.split("#")[0]).exists(), f"README links to {target}, which does not exist"
