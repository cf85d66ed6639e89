"""compare: runs of one experiment side by side, per metric and condition, against a
baseline, with a paired t-test over matched seeds; and the parameters beside the results
in a run's own report. Two real runs of a small suite (two commits, three seeds), plus
run directories written by the runner's own writers for the cases a suite cannot make
cheaply (many cases, odd inputs)."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from compare_helpers import FakeCase, write_run
from conftest import PYTHON, REPO_ROOT, git
from suite_factory import make_suite

from experiment_cli.compare import main
from experiment_infra.compare import compare_runs, to_csv, to_json, to_markdown
from experiment_infra.layout import SuiteRunPaths
from experiment_infra.reports import build_reports
from experiment_infra.reports.stats import paired_t_test, summarize, t_cdf, t_quantile
from experiment_infra.reports.ui_limits import capped_rows

# --------------------------------------------------------------------- statistics


def test_t_quantiles_match_the_tables() -> None:
    # Student's t, two-sided 95%: the printed tables' values.
    for df, expected in [(1, 12.7062047), (2, 4.3026527), (4, 2.7764451), (9, 2.2621572), (30, 2.0422725)]:
        assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)
    assert t_cdf(0.0, 5) == 0.5


def test_paired_t_test_p_value_by_hand() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [1.5, 2.1, 3.9, 4.3]
    # By hand: differences 0.5 0.1 0.9 0.3, mean 0.45, SD sqrt(0.35/3), t = mean / (SD/2),
    # and with 3 degrees of freedom the CDF has a closed form: 1/2 + (θ + sinθ cosθ)/π, θ = atan(t/√3).
    sd = math.sqrt(0.35 / 3)
    t = 0.45 / (sd / 2)
    theta = math.atan(t / math.sqrt(3))
    p = 2 * (1 - (0.5 + (theta + math.sin(theta) * math.cos(theta)) / math.pi))
    test = paired_t_test(a, b)
    assert test.n == 4 and test.effect == pytest.approx(0.45)
    assert test.p_value == pytest.approx(p, rel=1e-9)
    assert test.p_value == pytest.approx(0.0780, abs=5e-4)
    half = t_quantile(0.975, 3) * sd / 2
    assert (test.low, test.high) == (pytest.approx(0.45 - half), pytest.approx(0.45 + half))
    assert paired_t_test([1.0], [2.0]).p_value is None  # one pair: no test
    assert summarize([2.0, 2.0, 2.0]).sd == 0.0


# ------------------------------------------------------------ two real runs of a suite

ENTRY = '''
from pathlib import Path

from {cfg} import DemoConfig

from experiment_infra.files.atomic import atomic_write_json
from experiment_infra.layout import CasePaths

SHIFT = {shift}
NOISE = {{1: 0.0, 2: 0.1, 3: -0.05}}
cfg = DemoConfig.from_cli()
score = cfg.value + NOISE[cfg.seed] + SHIFT * cfg.seed
atomic_write_json(CasePaths(Path(cfg.output_dir)).metrics, {{"score": score, "size": cfg.value}})
'''

CASES = [
    f'    ExperimentCase("{name}_s{seed}", DemoConfig(label="{name}", value={value}, seed={seed})),'
    for name, value in (("a", 1.0), ("b", 2.0)) for seed in (1, 2, 3)
]


def _entry(suite: Path, shift: float) -> None:
    cfg = next(line.split()[1] for line in suite.read_text().splitlines() if line.startswith("from demo_cfg_"))
    (suite.parent / "entry.py").write_text(ENTRY.format(cfg=cfg, shift=shift))


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, prefect_harness) -> tuple[Path, Path, str, str]:
    """The suite run at one commit, then its entry point changed, committed and run again
    (every seed's score moves by 0.1 x seed): two run directories of experiment 'cmp'."""
    from flows.run_suite import run_suite

    base = tmp_path_factory.mktemp("compare")
    repo = base / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    suite = make_suite(repo / "exp", CASES, name="cmp", write_entry=False)
    shas = []
    for shift in (0.0, 0.1):
        _entry(suite, shift)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", f"shift {shift}")
        shas.append(git(repo, "rev-parse", "HEAD"))
        state = run_suite(suite_path=str(suite), results_root=str(base / "results"), return_state=True)
        assert state.is_completed(), state.message
    first, second = sorted((base / "results" / "cmp").iterdir())
    return first, second, shas[0], shas[1]


def compare_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYTHON, str(REPO_ROOT / "flows" / "compare.py"), *map(str, args)],
                          capture_output=True, text=True, timeout=300)


def test_compare_two_commits_as_the_user_sees_it(two_runs) -> None:
    first, second, sha1, sha2 = two_runs
    done = compare_cli(first.parent)  # the experiment folder
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"| A (baseline) | `{first.name}` | `{sha1[:12]}` | no |" in out
    assert f"| B | `{second.name}` | `{sha2[:12]}` | no |" in out
    assert "Conditions: the config fields that differ between cases (`label`, `value`)" in out
    score = out[out.index("## score"):out.index("## size")]
    assert "| Variant | label | value | A | B | Δ B−A |" in score
    # a: seeds 1, 2, 3 scored 1.0, 1.1, 0.95, then 1.1, 1.3, 1.25: differences 0.1, 0.2, 0.3.
    # Paired t-test by hand: t = 0.2 / (0.1/√3), 2 degrees of freedom: p = 1 - t/√(2+t²).
    t = 0.2 / (0.1 / math.sqrt(3))
    p = 1 - t / math.sqrt(2 + t * t)
    assert f"p={p:.2g}" == "p=0.074"
    row_a = next(line for line in score.splitlines() if line.startswith("| a_s* |"))
    assert row_a.startswith("| a_s* | a | 1.0 | 1.017 ± 0.07638 [0.8269, 1.206] n=3 | 1.217 ± 0.1041 [0.9581, 1.475] n=3 |")
    assert row_a.endswith(" +0.2 [-0.04841, 0.4484] p=0.074 |")
    size = out[out.index("## size"):]
    assert "| a_s* | a | 1.0 | 1 ± 0 [1, 1] n=3 | 1 ± 0 [1, 1] n=3 | +0 [0, 0] p=1 |" in size

    doc = json.loads(compare_cli(first, second, "--json").stdout)
    diff = doc["metrics"]["score"][0]["diffs"]["B"]
    assert doc["baseline"] == "A" and doc["runs"][1]["sha"] == sha2 and doc["runs"][1]["dirty"] is False
    assert diff["test"] == "paired t-test" and diff["pairs"] == 3
    assert diff["p_value"] == pytest.approx(p, rel=1e-9) and diff["effect"] == pytest.approx(0.2)


def test_compare_against_a_chosen_baseline_writes_csv_and_plot(two_runs, tmp_path: Path) -> None:
    first, second, _, sha2 = two_runs
    table, plot = tmp_path / "cmp.csv", tmp_path / "cmp.png"
    assert main([str(first), str(second), "--baseline", second.name, "--metric", "score",
                 "--csv", str(table), "--plot", str(plot)]) == 0
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert {r["metric"] for r in rows} == {"score"}
    # Runs keep their labels by age (A the older); B, the newer, is the baseline here.
    b_row = next(r for r in rows if r["variant"] == "a_s*" and r["run"] == "B")
    assert b_row["baseline"] == "True" and b_row["commit"] == sha2 and b_row["diff"] == ""
    a_row = next(r for r in rows if r["variant"] == "a_s*" and r["run"] == "A")
    assert float(a_row["diff"]) == pytest.approx(-0.2) and a_row["test"] == "paired t-test"
    assert a_row["label"] == "a" and a_row["n"] == "3"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_report_shows_the_parameters_and_the_seeds(two_runs) -> None:
    first = two_runs[0]
    text = build_reports(first).texts[SuiteRunPaths(first).report_md]
    assert "| Variant | Status | Duration | Attempt | label | value | seed | score | size |" in text
    assert "## Over Seeds" in text
    assert "| a_s* | a | 1.0 | 3 | 3 | 1.017 | 0.07638 | [0.8269, 1.206] |" in text


def test_the_cases_artifact_shows_parameters_and_metrics(two_runs) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["cmp-cases"])))
    scores = []
    for art in arts:  # one per run: the first scored seed 2 of a 1.0 + 0.1, the second 0.2 more
        rows = art.data if isinstance(art.data, list) else json.loads(art.data)
        row = next(r for r in rows if r["variant"] == "a_s2")
        assert (row["label"], row["value"], row["seed"], row["size"]) == ("a", "1.0", "2", 1.0)
        assert list(row)[:2] == ["variant", "status"]
        scores.append(round(row["score"], 9))
    assert sorted(scores) == [1.1, 1.3]


def test_the_flow_publishes_the_tables_and_the_plot(two_runs) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from flows.compare import compare

    first, second, _, _ = two_runs
    text = compare(run_dirs=[str(first.parent)])
    assert "## score" in text
    with get_client(sync_client=True) as client:
        arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["compare-cmp", "compare-cmp-table"])))
    by_key = {a.key: a for a in arts}
    assert "## score" in by_key["compare-cmp"].data and "data:image/png;base64," in by_key["compare-cmp"].data
    table = by_key["compare-cmp-table"].data
    rows = table if isinstance(table, list) else json.loads(table)
    assert {(r["metric"], r["variant"]) for r in rows} == {("score", "a_s*"), ("score", "b_s*"), ("size", "a_s*"), ("size", "b_s*")}


# ------------------------------------------------------------------------- bad input


def _runs(root: Path, experiment: str = "demo", n: int = 2, **kw) -> list[Path]:
    return [
        write_run(root, [FakeCase(f"v{d}", {"degree": d}, {"mse": 1.0 / d + i}) for d in (1, 2)],
                  experiment=experiment, when=datetime(2026, 1, 1 + i), sha=f"{i + 1}" * 40, **kw)
        for i in range(n)
    ]


def one_error_line(done: subprocess.CompletedProcess[str], *fragments: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def test_bad_input_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    a, b = _runs(tmp_path / "results")
    (other,) = _runs(tmp_path / "results", experiment="other", n=1)
    one_error_line(compare_cli(a, tmp_path), f"{tmp_path}: not a run directory (no manifest.json, no config/experiment.json)")
    one_error_line(compare_cli(a, other), "'other'", "compare runs of one experiment")
    one_error_line(compare_cli(a, b, "--baseline", "nope"), "--baseline nope: not among the runs compared", a.name)
    one_error_line(compare_cli(a), "needs two or more runs")
    one_error_line(compare_cli(a, tmp_path / "absent"), "no such directory")
    one_error_line(compare_cli(a, b, "--metric", "acc"), "--metric acc: not recorded by", "metrics in common: mse")
    one_error_line(compare_cli(a, b, "--csv", tmp_path / "no" / "x.csv"), "--csv")
    (c,) = [write_run(tmp_path / "r2", [FakeCase("v1", {"degree": 1}, {"acc": 0.5})], when=datetime(2026, 2, 1))]
    (d,) = [write_run(tmp_path / "r2", [FakeCase("v1", {"degree": 1}, {"loss": 0.5})], when=datetime(2026, 2, 2))]
    one_error_line(compare_cli(c, d), "no metric in common")
    assert not (tmp_path / "no").exists()


def test_variants_in_only_some_runs_and_unpaired_seeds_are_said(tmp_path: Path) -> None:
    root = tmp_path / "results"
    write_run(root, [FakeCase(f"d{d}_s{s}", {"degree": d, "seed": s}, {"mse": d + s / 10}) for d in (1, 2) for s in (1, 2)],
              when=datetime(2026, 1, 1))
    write_run(root, [FakeCase(f"d{d}_s{s}", {"degree": d, "seed": s}, {"mse": d + s / 5}) for d in (1, 3) for s in (3, 4)]
              + [FakeCase("d2_s1", {"degree": 2, "seed": 1}, None, exit_code=1)], when=datetime(2026, 1, 2))
    c = compare_runs([root / "demo"])
    text = to_markdown(c)
    assert "- `d3_s*`: in B only" in text
    assert "| d1_s* | 1 | 1.15 ± 0.07071 [0.5147, 1.785] n=2 | 1.7 ± 0.1414 [0.4294, 2.971] n=2 | +0.55 (seeds differ: no paired test) |" in text
    assert "| d2_s* | 2 | 2.15 ± 0.07071 [1.515, 2.785] n=2 | — | — |" in text  # its one case in B failed
    assert "| d3_s* | 3 | (not in run) |" in text
    doc = json.loads(to_json(c))
    assert doc["only_in_some_runs"] == [{"variant": "d3_s*", "runs": ["B"]}]
    assert "metric,variant,degree,run" in to_csv(c).splitlines()[0]


def test_settings_shared_by_every_case_do_not_split_conditions(tmp_path: Path) -> None:
    root = tmp_path / "results"
    for i, n_train in enumerate((30, 50)):
        write_run(root, [FakeCase(f"d{d}", {"degree": d, "n_train": n_train}, {"mse": d + i}) for d in (1, 2)],
                  when=datetime(2026, 1, 1 + i))
    text = to_markdown(compare_runs([root / "demo"]))
    assert "- `n_train`: A 30, B 50" in text
    assert "| d1 | 1 | 1 | 2 | +1 (n/a: 1 pair) |" in text


# ------------------------------------------------------------------- reports at scale


def test_a_2000_case_run_publishes_a_small_report_artifact(tmp_path: Path) -> None:
    cases = [FakeCase(f"lr{i % 100}_s{i // 100}", {"lr": (i % 100) / 1000, "seed": i // 100}, {"acc": (i % 7) / 7},
                      exit_code=0 if i % 50 else 1) for i in range(2000)]
    run = write_run(tmp_path / "results", cases, when=datetime(2026, 1, 1))
    bundle = build_reports(run)
    artifact = bundle.artifact_markdown()
    assert len(artifact.encode()) < 200_000  # was 2.1 MB: the server refuses events over 1.5 MB
    assert "The first 50 of 2000 cases (not completed first); every case is in `report.md`" in artifact
    assert "| lr0_s0 | failed |" in artifact or "[lr0_s0]" in artifact
    full = bundle.texts[SuiteRunPaths(run).report_md]
    assert full.count("\n| [lr") == 2000  # the file keeps every case


def test_capped_rows_name_where_the_rest_is() -> None:
    rows = [{"variant": f"v{i}", "status": "completed"} for i in range(250)]
    capped = capped_rows(rows, "report.md")
    assert len(capped) == 201 and capped[-1] == {"variant": "... 50 more rows: see report.md"}
    assert capped_rows(rows[:3], "report.md") == rows[:3]


# ------------------------------------------------------------------ agent evaluation


def test_agent_evaluations_compare_by_tier_and_subtest(scylla_copy: Path, tmp_path: Path) -> None:
    import shutil

    from experiment_infra.layout import ExperimentPaths

    other = tmp_path / "zz-again"  # the same created_at: after the original by name, so B
    shutil.copytree(scylla_copy, other)
    result = ExperimentPaths(other).subtest("T1", "01").run(1).run_result
    data = json.loads(result.read_text())
    result.write_text(json.dumps({**data, "judge_passed": False, "judge_score": 0.3}))
    done = compare_cli(scylla_copy, other)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Conditions: the config fields that differ between cases (`tier`, `subtest`)" in out
    for metric in ("## score", "## pass_rate", "## cost_usd", "## cost_of_pass"):
        assert metric in out
    score = out[out.index("## score"):out.index("## cost_of_pass")]
    assert "| T1/01/run_01 | T1 | 01 | 0.97 | 0.3 | -0.67 (n/a: 1 pair) |" in score
    cop = out[out.index("## cost_of_pass"):]
    assert "| T1/01/run_01 | T1 | 01 | 0.1274 | inf | — |" in cop
    assert "| T5/01/run_01 | T5 | 01 | 0.06531 | 0.06531 | +0 (a ratio: no test) |" in cop
    doc = json.loads(compare_cli(scylla_copy, other, "--json", "--metric", "cost_of_pass").stdout)
    assert list(doc["metrics"]) == ["cost_of_pass"]
    assert doc["metrics"]["cost_of_pass"][1]["runs"]["B"]["mean"] == "inf"
