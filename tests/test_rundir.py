"""Run directories: determinism, checkpoints, resume after SIGKILL at random moments, the CLI."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from azc.cli import app
from azc.experiment import load_experiment
from azc.parse import parse, parse_file
from azc.rundir import evolve, read_progress
from tests.test_experiment import EXPERIMENTS, TINY

RESULT_KEYS = ("search_fitness", "select_fitness", "final_fitness", "experiments",
               "individuals", "best_program", "solved", "seed")


def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def same_result(a: dict, b: dict):
    assert {k: a[k] for k in RESULT_KEYS} == {k: b[k] for k in RESULT_KEYS}


def test_same_seed_same_result_and_the_run_directory(tmp_path):
    path = tiny(tmp_path)
    first = evolve(path, seed=11, out=tmp_path / "a", engine="reference", checkpoint_seconds=0)
    second = evolve(path, seed=11, engine="reference")
    same_result(first, second)
    assert first["experiments"] == 2 and first["best_program"]
    parse(first["best_program"])

    run = tmp_path / "a"
    assert json.loads((run / "run.json").read_text())["seed"] == 11
    assert (run / "experiment.toml").read_text() == TINY
    assert json.loads((run / "result.json").read_text())["seed"] == 11
    assert parse_file(run / "best.az") == parse(first["best_program"])
    records = read_progress(run)
    assert records and {"individuals", "seconds", "individuals_per_second", "mean", "stdev",
                        "best", "cache_hit_rate"} <= set(records[0])
    state = json.loads((run / "checkpoint.json").read_text())
    assert state["seed"] == 11 and state["outcome"]["experiments"] == 2


def test_a_run_directory_is_not_overwritten(tmp_path):
    path = tiny(tmp_path)
    evolve(path, seed=1, out=tmp_path / "a", engine="reference")
    with pytest.raises(Exception, match="already holds a run"):
        evolve(path, seed=1, out=tmp_path / "a", engine="reference")


def test_resume_continues_exactly(tmp_path):
    path = tiny(tmp_path)
    whole = evolve(path, seed=5, engine="reference")
    part = evolve(path, seed=5, out=tmp_path / "r", engine="reference", max_seconds=0.5,
                  checkpoint_seconds=0)
    assert part["interrupted"]
    resumed = evolve(None, resume=tmp_path / "r", engine="reference", checkpoint_seconds=0)
    same_result(whole, resumed)


def _azc(*args):
    command = [sys.executable, "-m", "azc.cli", "evolve", *map(str, args), "--workers", "1"]
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _readable(run):
    json.loads((run / "run.json").read_text())
    (run / "experiment.toml").read_text()
    if (run / "checkpoint.json").exists():
        state = json.loads((run / "checkpoint.json").read_text())
        if state["experiment"]:
            [parse(text) for text in state["experiment"]["population"]]
    if (run / "best.az").exists():
        parse_file(run / "best.az")
    read_progress(run)


def test_sigkill_at_random_moments_then_resume(tmp_path):
    path = tiny(tmp_path)
    whole = evolve(path, seed=9, engine="reference")
    run = tmp_path / "k"
    moments = random.Random(4).sample([0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4], 3)
    process = _azc(path, "--seed", 9, "--out", run, "--engine", "reference",
                   "--checkpoint-every", 0, "--json")
    for moment in moments:
        time.sleep(moment)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait()
        if not (run / "run.json").exists():  # killed before the run began: start it again
            process = _azc(path, "--seed", 9, "--out", run, "--engine", "reference",
                           "--checkpoint-every", 0, "--json")
            continue
        _readable(run)
        process = _azc("--resume", run, "--engine", "reference", "--checkpoint-every", 0,
                       "--json")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()
    same_result(whole, json.loads(stdout.decode().strip().splitlines()[-1]))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])  # Ctrl-C, kill or timeout
def test_ctrl_c_leaves_a_checkpoint_and_the_best_program(tmp_path, signum):
    path = tiny(tmp_path)
    run = tmp_path / "c"
    process = _azc(path, "--seed", 3, "--out", run, "--engine", "reference",
                   "--checkpoint-every", 0)
    while not (run / "checkpoint.json").exists() and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signum)
    process.communicate(timeout=120)
    _readable(run)
    assert (run / "checkpoint.json").exists() and (run / "best.az").exists()
    assert process.returncode in (0, 130)


def test_cli_evolve_json_and_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tiny(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["evolve", str(path), "--seed", "2", "--json", "--engine",
                                 "reference", "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    for key in ("search_fitness", "select_fitness", "final_fitness", "individuals", "seconds",
                "individuals_per_second", "best_program"):
        assert key in summary
    assert (tmp_path / summary["run_directory"] / "result.json").exists()
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace("tournament_size = 4", "tournament_size = -1"))
    result = runner.invoke(app, ["evolve", str(bad)])
    assert result.exit_code == 2 and "tournament_size" in result.output


def test_cli_plain_output_and_diff(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tiny(tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["evolve", str(path), "--seed", "2", "--engine", "reference",
                                 "--no-save", "--workers", "1"])
    assert result.exit_code == 0 and "final fitness" in result.output
    a, b = tmp_path / "a.az", tmp_path / "b.az"
    a.write_text("def setup():\n    s2 = 0.5\n\ndef predict():\n    s1 = dot(v1, v0)\n\n"
                 "def learn():\n    s3 = s0 - s1\n")
    b.write_text("def setup():\n    s2 = 0.25\n\ndef predict():\n    s1 = dot(v1, v0)\n\n"
                 "def learn():\n    s3 = s0 - s1\n")
    result = runner.invoke(app, ["diff", str(a), str(b)])
    assert result.exit_code == 1  # as diff(1): the programs differ
    assert "-    s2 = 0.5" in result.output and "+    s2 = 0.25" in result.output
    result = runner.invoke(app, ["diff", str(a), str(a)])
    assert "no differences" in result.output and result.exit_code == 0


def test_resume_with_fec_continues_exactly(tmp_path):
    path = tmp_path / "fec.toml"
    path.write_text(TINY.replace("[experiments]", "[fec]\ntrain = 5\nvalid = 3\n"
                                 "forget_every = 4\n\n[experiments]"))
    whole = evolve(path, seed=8, engine="reference")
    part = evolve(path, seed=8, out=tmp_path / "r", engine="reference", max_seconds=0.6,
                  checkpoint_seconds=0)
    assert part["interrupted"]
    state = json.loads((tmp_path / "r" / "checkpoint.json").read_text())
    assert state["experiment"] is None or state["experiment"]["functional"]
    resumed = evolve(None, resume=tmp_path / "r", engine="reference")
    same_result(whole, resumed)


LINEAR_TUNING = TINY.replace('initial_population = "random"', 'initial_population = "linear"') \
    .replace('mutations = ["alter_param"]', "").replace(
        "max_train_steps = 30_000", 'max_train_steps = 400_000\nmutations = ["alter_param"]') \
    .replace('ops = ["VECTOR_INNER_PRODUCT"]', "ops = []") \
    .replace('ops = ["SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM"]',
             "ops = []") \
    .replace("train = 12", "train = 100").replace("train = 20", "train = 100") \
    .replace("valid = 6", "valid = 20") \
    .replace("max_experiments = 2", "max_experiments = 1")


def test_evolution_tunes_the_linear_model_to_high_fitness(tmp_path):
    """A small real search: from the linear model with learning rate 0.01 (fitness about
    0.68 on these tasks), altering Setup's constants must find a rate that fits."""
    path = tmp_path / "tune.toml"
    path.write_text(LINEAR_TUNING)
    summary = evolve(path, seed=1)
    assert summary["search_fitness"] > 0.99, summary
    assert summary["final_fitness"] > 0.99


def test_early_select_stops_the_experiment_once_a_candidate_passes(tmp_path):
    path = tmp_path / "tune.toml"
    text = LINEAR_TUNING.replace("max_experiments = 1", "max_experiments = 0\n"
                                 "sufficient_fitness = 0.99")
    path.write_text(text)
    early = evolve(path, seed=1)
    assert early["solved"] and early["select_fitness"] > 0.99 and early["experiments"] == 1
    late = tmp_path / "late.toml"
    late.write_text(text.replace("sufficient_fitness = 0.99",
                                 "sufficient_fitness = 0.99\nearly_select = false"))
    full = evolve(late, seed=1)
    assert full["solved"] and full["individuals"] > early["individuals"]


def test_hurdles_run_in_a_search(tmp_path):
    path = tmp_path / "hurdle.toml"
    path.write_text(TINY.replace("[experiments]", "[hurdle]\nstage_tasks = 1\npercentile = 50\n"
                                 "window = 50\n\n[experiments]"))
    run = tmp_path / "h"
    summary = evolve(path, seed=2, out=run, engine="reference")
    assert summary["best_program"]
    assert any(record.get("hurdle_rejects") for record in read_progress(run))


def interrupted_run(tmp_path, **options):
    """A run directory cut short by its time limit, as `azc evolve --max-time` leaves it."""
    path = tmp_path / "long.toml"
    path.write_text(TINY.replace("max_train_steps = 30_000", "max_train_steps = 10_000_000"))
    run = tmp_path / "r"
    summary = evolve(path, seed=5, out=run, engine="reference", checkpoint_seconds=0,
                     max_seconds=0.5, **options)
    assert summary["interrupted"]
    return run


@pytest.mark.parametrize("name, text", [("checkpoint.json", "garbage"),
                                        ("checkpoint.json", None), ("run.json", "{oops"),
                                        ("checkpoint.json", "[]")])
def test_resume_of_a_damaged_file_names_it(tmp_path, name, text):
    run = interrupted_run(tmp_path)
    file = run / name
    file.write_text(file.read_text()[:40] if text is None else text)
    result = CliRunner().invoke(app, ["evolve", "--resume", str(run), "--engine", "reference",
                                      "--max-time", "1"])
    assert result.exit_code == 2, result.output
    assert name in result.output and "Traceback" not in result.output


def test_resume_refuses_a_lost_checkpoint(tmp_path):
    run = interrupted_run(tmp_path)
    (run / "checkpoint.json").unlink()
    result = CliRunner().invoke(app, ["evolve", "--resume", str(run), "--engine", "reference",
                                      "--max-time", "1"])
    assert result.exit_code == 2, result.output
    assert "checkpoint.json: missing" in result.output


def test_out_must_be_a_writable_directory(tmp_path):
    path = tiny(tmp_path)
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file", tmp_path / "file" / "new"):  # a file; not creatable
        result = CliRunner().invoke(app, ["evolve", str(path), "--out", str(out),
                                          "--engine", "reference"])
        assert result.exit_code == 2, result.output
        assert "--out" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("options, flag", [
    (["--engine", "bogus", "--workers", "2"], "--engine"), (["--max-time", "0"], "--max-time"),
    (["--max-time", "nan"], "--max-time"), (["--max-time", "-5"], "--max-time"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"), (["--seed", "-1"], "--seed"),
    (["--no-save", "--out", "x"], "--no-save")])
def test_evolve_refuses_bad_options_before_starting(tmp_path, monkeypatch, options, flag):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["evolve", str(tiny(tmp_path)), *options])
    assert result.exit_code == 2, result.output
    assert flag in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists() and not (tmp_path / "x").exists()


def test_a_stop_at_the_time_limit_is_not_an_interruption(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(TINY.replace("max_train_steps = 30_000", "max_train_steps = 10_000_000"))
    run = tmp_path / "r"
    result = CliRunner().invoke(app, ["evolve", str(path), "--out", str(run), "--max-time",
                                      "0.5", "--engine", "reference", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "stopped at the time limit after 0 experiments," in result.output
    shown = CliRunner().invoke(app, ["show", str(run)])
    assert "stopped" in shown.output and "time limit" in shown.output


def test_resume_options_that_cannot_apply_are_refused(tmp_path):
    run = interrupted_run(tmp_path)
    for options in (["--seed", "1"], ["--out", str(tmp_path / "o")], ["--no-save"]):
        result = CliRunner().invoke(app, ["evolve", "--resume", str(run), *options])
        assert result.exit_code == 2 and options[0] in result.output, result.output


def test_a_resume_past_its_time_limit_says_so(tmp_path, caplog):
    run = interrupted_run(tmp_path)
    with caplog.at_level("WARNING", logger="azc"):
        summary = evolve(None, resume=run, engine="reference", max_seconds=0.1)
    assert summary["time_limit"] and "whole run's time counts" in caplog.text


def test_a_run_killed_before_its_first_checkpoint_starts_again_and_says_so(tmp_path, caplog):
    path = tiny(tmp_path)
    run = tmp_path / "r"
    from azc.experiment import load_experiment
    from azc.rundir import RunDir

    RunDir(run).create(load_experiment(path), 11)
    with caplog.at_level("WARNING", logger="azc"):
        resumed = evolve(None, resume=run, engine="reference")
    assert "no checkpoint yet" in caplog.text
    same_result(resumed, evolve(path, seed=11, engine="reference"))


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_its_time_limit_stops_still_reports_select_and_final_fitness(tmp_path, workers):
    # the time limit used to end a run inside its first experiment with no candidate at all
    path = tmp_path / "long.toml"
    path.write_text(TINY.replace("max_train_steps = 30_000", "max_train_steps = 10_000_000"))
    summary = evolve(path, seed=3, out=tmp_path / "r", engine="reference", max_seconds=1.0,
                     workers=workers)
    assert summary["interrupted"] and summary["experiments"] == 0
    assert summary["best_program"] is not None
    assert summary["select_fitness"] is not None and summary["final_fitness"] is not None
    assert parse(summary["best_program"]) == parse_file(tmp_path / "r" / "best.az")


def test_resuming_a_finished_copied_run_names_the_copy_and_says_it_is_done(tmp_path, caplog):
    # it used to reprint the stored result silently, naming the directory it was first run in
    first = evolve(tiny(tmp_path), seed=4, out=tmp_path / "r", engine="reference")
    assert not first["interrupted"]
    shutil.copytree(tmp_path / "r", tmp_path / "copy")
    with caplog.at_level("WARNING", logger="azc"):
        again = evolve(None, resume=tmp_path / "copy", engine="reference")
    assert again["run_directory"] == str(tmp_path / "copy")
    assert "already finished" in caplog.text
    assert again["best_program"] == first["best_program"]


def test_final_fitness_says_when_it_was_measured_on_the_select_tasks(tmp_path):
    path = tiny(tmp_path)  # no [[final_tasks]]: the final tasks are the select tasks
    result = CliRunner().invoke(app, ["evolve", str(path), "--seed", "2", "--engine", "reference",
                                      "--workers", "1", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "final fitness (the select tasks)" in result.output
    shown = CliRunner().invoke(app, ["show", str(tmp_path / "r")], terminal_width=200)
    assert "final (the select tasks)" in shown.output
    assert load_experiment(EXPERIMENTS / "demo.toml").final_tasks_unseen


def test_each_experiment_ends_with_a_progress_record_of_its_last_generation(tmp_path):
    from azc.search import Search
    from tests.test_islands import Records

    class LastRecords(Records):
        def experiment_done(self, record):  # with the progress record just before it
            self.done.append((record, self.records[-1]))

    records = LastRecords()
    search = Search(load_experiment(tiny(tmp_path)), 3, engine="reference", monitors=[records],
                    progress_seconds=1e9)  # the clock alone would report only the first
    outcome = search.run()
    assert len(records.done) == outcome.experiments == 2
    for done, last in records.done:
        assert last["experiment"] == done["experiment"]
        assert last["best"] == done["search_fitness"]
        assert last["individuals"] == done["individuals"]
