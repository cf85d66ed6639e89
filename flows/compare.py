"""Prefect flow: compare runs of one experiment and show the tables and plot in the UI.

    python flows/compare.py RUN_DIR RUN_DIR... | EXPERIMENT_FOLDER [--baseline RUN] [--metric M]
                            [--json] [--csv FILE] [--plot FILE] [--publish]

The command prints the comparison without Prefect (experiment_cli/compare.py); with
``--publish``, or called as a flow (``flows.compare.compare(run_dirs, baseline, metrics)``),
it also publishes a markdown artifact (the tables, capped for a large comparison, and
the plot inlined) and a table artifact (one row per metric and condition).
"""

from __future__ import annotations

if __name__ == "__main__":
    # As a script, sys.path[0] is flows/ (its modules would shadow top-level names).
    import sys
    from pathlib import Path

    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from experiment_cli.common import run_main
    from experiment_cli.compare import main

    run_main(lambda: main(sys.argv[1:]))

import base64
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from experiment_infra.compare import Comparison, compare_runs, to_markdown
from experiment_infra.compare.plot import comparison_plot
from experiment_infra.compare.render import diff_text
from experiment_infra.reports.seeds_md import summary_text
from flows.artifacts import artifact_key, label_flow_run, ui_only
from experiment_infra.reports.ui_limits import MAX_INLINE_IMAGE_BYTES, cap_markdown, capped_rows


ARTIFACT_CONDITIONS = 50  # rows of each metric's table in the markdown artifact


def table_rows(c: Comparison) -> list[dict[str, Any]]:
    """One row per metric and condition: each run's value and each run's difference."""
    rows = []
    for t in c.tables:
        for row in t.rows:
            out: dict[str, Any] = {"metric": t.metric, "variant": row.label, **row.params}
            for r, s, present in zip(c.runs, row.cells, row.present):
                out[r.label] = summary_text(s) if present else "(not in run)"
            for r, d in zip(c.runs, row.diffs):
                if not r.baseline:
                    out[f"diff {r.label}"] = diff_text(d)
            rows.append(out)
    return rows


def _markdown(c: Comparison) -> str:
    text = to_markdown(c, limit=ARTIFACT_CONDITIONS)
    png = comparison_plot(c)
    if len(png) <= MAX_INLINE_IMAGE_BYTES:
        return cap_markdown(text, "the command's output") + f"\n## Plot\n\n![comparison](data:image/png;base64,{base64.b64encode(png).decode('ascii')})\n"
    return cap_markdown(text, "the command's output") + "\n*The plot is too large to show here: write it with `--plot FILE`.*\n"


@flow(name="compare", log_prints=False)
def compare(run_dirs: list[str], baseline: str | None = None, metrics: list[str] | None = None) -> str:
    """Compare the runs ``run_dirs`` names (two or more run directories, or one experiment
    folder) and publish the result; returns the markdown."""
    c = compare_runs([Path(p) for p in run_dirs], baseline, metrics or ())
    ui_only("the flow run's tags", label_flow_run, name=f"compare {c.experiment} ({len(c.runs)} runs)", tags=[c.experiment, "compare"])
    key = artifact_key("compare", c.experiment)
    ui_only("the comparison artifact", create_markdown_artifact, _markdown(c), key=key,
            description=f"{c.experiment}: {len(c.runs)} runs against {c.runs[c.baseline].name}")
    ui_only("the comparison table artifact", create_table_artifact, capped_rows(table_rows(c), "the command's --csv FILE"),
            key=f"{key}-table", description=f"{c.experiment}: per metric and condition")
    return to_markdown(c)
