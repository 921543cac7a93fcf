"""azc show: a run's summary from its files, for finished, interrupted and running runs."""

import json
import os
import shutil
import time

import pytest
from typer.testing import CliRunner

from azc.cli import app
from azc.parse import parse
from azc.report import read_progress_log, summarize
from azc.rundir import RunDir, evolve
from tests.test_experiment import TINY
from tests.test_plot import make_run


def azc(*args):
    return CliRunner().invoke(app, [str(arg) for arg in args])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("show") / "run"
    make_run(folder, seed=7)
    return folder


@pytest.fixture
def run(finished, tmp_path):
    return shutil.copytree(finished, tmp_path / "run")


def test_a_finished_run_as_json_matches_its_result(finished):
    result = azc("show", finished, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    saved = json.loads((finished / "result.json").read_text())
    assert summary["status"] == "finished" and summary["seed"] == 7
    assert summary["experiment"] == "tiny" and summary["experiment_file"].endswith("tiny.toml")
    for key in ("search_fitness", "select_fitness", "final_fitness", "experiments",
                "individuals", "seconds", "individuals_per_second", "best_program"):
        assert summary[key] == saved[key], key
    parse(summary["best_program"])
    rates = summary["cache_hit_rates"]
    assert [r["experiment"] for r in rates] == [0, 1]
    assert all(0.0 <= r["cache_hit_rate"] <= 1.0 for r in rates)
    assert summary["warnings"] == []


def test_the_rich_view_names_status_fitness_and_program(finished):
    result = azc("show", finished)
    assert result.exit_code == 0, result.output
    saved = json.loads((finished / "result.json").read_text())
    for text in ("finished", "seed", "7", "best program", "def predict():",
                 f"{saved['final_fitness']:.6f}", f"{saved['individuals']:,} individuals",
                 "cache hits"):
        assert text in result.output, text


def test_stopped_by_the_time_limit(tmp_path):
    (tmp_path / "tiny.toml").write_text(TINY)
    evolve(tmp_path / "tiny.toml", seed=3, out=tmp_path / "run", engine="reference",
           max_seconds=0.01)
    summary = summarize(tmp_path / "run")
    assert summary["status"] == "stopped" and "--resume" in summary["status_detail"]
    assert "time limit" in summary["status_detail"]
    # Stopped inside the first experiment: its best so far is still scored and reported.
    assert summary["experiments"] == 0 and summary["search_fitness"] is not None
    assert summary["select_fitness"] is not None and summary["final_fitness"] is not None
    assert summary["best_program"] and summary["current"]["experiment"] == 0


def test_without_a_result_running_or_killed(run):
    (run / "result.json").unlink()
    RunDir(run).claim()
    later = time.time() + 3600
    assert summarize(run, now=later)["status"] == "running"  # its owner, this process, lives
    (run / "owner.json").unlink()  # as a run on another machine: told by its silence
    summary = summarize(run)
    assert summary["status"] == "running"
    checkpoint = json.loads((run / "checkpoint.json").read_text())["outcome"]
    assert summary["select_fitness"] == checkpoint["select_fitness"]
    last = read_progress_log(run).reports[-1]
    assert summary["current"] == {"experiment": 1, "best": last["best"], "mean": last["mean"],
                                  "island": None}
    assert summary["individuals"] == last["individuals"]

    later = time.time() + 3600
    summary = summarize(run, now=later)
    assert summary["status"] == "interrupted" and "killed?" in summary["status_detail"]
    for name in os.listdir(run):
        os.utime(run / name, (later - 3600 * 2, later - 3600 * 2))
    assert "killed?" in azc("show", run).output


def test_a_run_whose_process_ended_without_a_result_is_interrupted_at_once(run):
    # a Ctrl-C while islands started left no result, and show said "running" for 5 minutes
    import subprocess
    import sys

    (run / "result.json").unlink()
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    RunDir(run).claim()
    owner = json.loads((run / "owner.json").read_text())
    (run / "owner.json").write_text(json.dumps({**owner, "pid": int(ended.stdout)}))
    summary = summarize(run)
    assert summary["status"] == "interrupted", summary["status_detail"]
    assert "ended without a result" in summary["status_detail"]


def test_a_damaged_log_is_a_warning_not_a_failure(run):
    with open(run / "progress.jsonl", "a") as log:
        log.write("garbage\n")
    result = azc("show", run, "--json")
    assert result.exit_code == 0
    warnings = json.loads(result.output)["warnings"]
    assert len(warnings) == 1 and "damaged progress log" in warnings[0]
    assert "warning:" in azc("show", run).output


def test_not_a_run(run, tmp_path):
    for path, message in ((tmp_path / "nowhere", "no such directory"),
                          (tmp_path, "not a run directory (no run.json"),
                          (run / "best.az", "not a run directory (a file")):
        result = azc("show", path)
        assert result.exit_code == 2 and message in result.output
    (run / "run.json").write_text("{not json")
    result = azc("show", run)
    assert result.exit_code == 2 and "run.json: damaged run file" in result.output
    assert "Traceback" not in result.output


def test_a_resumed_run_cuts_the_killed_runs_partial_line(run):
    log = run / "progress.jsonl"
    whole = read_progress_log(run).reports
    with open(log, "a") as file:
        file.write('{"experiment": 1, "indi')
    assert read_progress_log(run).partial_last_line

    # What a resumed run does first: report progress through its RunDir.
    rundir = RunDir(run)
    rundir.progress({**whole[-1], "individuals": whole[-1]["individuals"] + 1})
    rundir.finish({})
    resumed = read_progress_log(run)
    assert not resumed.partial_last_line and len(resumed.reports) == len(whole) + 1


def test_a_stopped_run_with_a_damaged_checkpoint_is_not_offered_for_resume(tmp_path):
    # show used to say "continue it with azc evolve --resume", which then refused the run
    (tmp_path / "tiny.toml").write_text(TINY)
    evolve(tmp_path / "tiny.toml", seed=3, out=tmp_path / "run", engine="reference",
           max_seconds=0.01)
    checkpoint = tmp_path / "run" / "checkpoint.json"
    checkpoint.write_text(checkpoint.read_text()[:40])
    summary = summarize(tmp_path / "run")
    assert any("cannot be resumed" in warning for warning in summary["warnings"])
    assert "--resume" not in summary["status_detail"]
