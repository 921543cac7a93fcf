"""`azc run` through typer's runner: fitness reports, and clean errors with exit status 2."""

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from azc.cli import app
from azc.errors import ConfigError
from azc.ir import MemoryShape
from azc.runner import make_evaluator, parse_memory, run
from azc.taskfile import task_specs_from_flags

EXAMPLES = Path(__file__).parent.parent / "examples"

# Gradient descent on a linear model: the original's LINEAR_ALGORITHM. On accuracy tasks Learn
# sees sigmoid(s1), which makes the same program logistic regression.
LINEAR = """\
def setup():
    s2 = 0.01

def predict():
    s1 = dot(v1, v0)

def learn():
    s3 = s0 - s1
    s3 = s2 * s3
    v2 = s3 * v0
    v1 = v1 + v2
"""

runner = CliRunner()


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "linear.az"
    path.write_text(LINEAR)
    return path


def azc(*args):
    return runner.invoke(app, ["run", *map(str, args)])


def run_json(*args, engine="reference") -> dict:
    result = azc(*args, "--json", "--engine", engine)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_default_collection_is_ten_linear_tasks(program):
    report = run_json(program)
    assert len(report["task_fitness"]) == 10 and report["tasks"][0] == "linear-0"
    assert report["eval_types"] == ["rms"] * 10
    assert report["fitness"] > 0.999 and report["seconds"] > 0
    assert report["memory"] == "4/3/0"  # the program's own shape


def test_json_fitness_matches_the_library(program):
    specs = task_specs_from_flags(num_tasks=2, train=100)
    expected = run(program, specs, engine="reference").evaluation
    report = run_json(program, "--tasks", 2, "--train", 100)
    assert report["fitness"] == expected.fitness
    assert report["task_fitness"] == list(expected.task_fitness)


def test_readable_summary(program):
    result = azc(program, "--tasks", 2, "--train", 50)
    assert result.exit_code == 0
    assert "linear-1" in result.stdout and "fitness" in result.stdout


def test_seeds_and_epochs_change_the_tasks(program):
    a = run_json(program, "--tasks", 1, "--train", 20, "--data-seed", 1, "--param-seed", 2)
    b = run_json(program, "--tasks", 1, "--train", 20, "--data-seed", 1, "--param-seed", 3)
    c = run_json(program, "--tasks", 1, "--train", 20, "--data-seed", 1, "--param-seed", 2,
                 "--epochs", 5)
    assert a["fitness"] != b["fitness"] and c["fitness"] > a["fitness"]


def test_logistic_regression_on_digits_0_vs_1():
    """The acceptance check of the real-data path: > 0.95 accuracy at F = 16."""
    report = run_json(EXAMPLES / "logistic_regression.az", "--kind", "digits", "--classes", "0,1",
                      "--features", 16)
    assert report["eval_types"] == ["accuracy"] * 10
    assert report["fitness"] > 0.95


def test_csv_data(program, tmp_path):
    lines = [f"{i % 7 - 3},{i % 5 - 2},{(i % 7 - 3) - 2 * (i % 5 - 2)}" for i in range(70)]
    data = tmp_path / "d.csv"
    data.write_text("a,b,y\n" + "\n".join(lines) + "\n")
    report = run_json(program, "--data", data, "--features", 2, "--tasks", 2, "--epochs", 20,
                      "--valid", 0.25)
    assert report["tasks"] == ["d.csv seed 11001", "d.csv seed 11012"]
    # The model has no bias, and standardizing on a random train split leaves a small intercept.
    assert report["fitness"] > 0.8


def test_data_folder_implies_the_kind(program, tmp_path):
    from tests.test_data import write_cifar

    write_cifar(tmp_path)
    report = run_json(program, "--data", tmp_path, "--classes", "3,4", "--train", 20, "--valid",
                      10, "--tasks", 2)
    assert report["tasks"] == ["cifar10 3v4 seed 11001", "cifar10 3v4 seed 11012"]


def test_tasks_file(program, tmp_path):
    tasks = tmp_path / "t.toml"
    tasks.write_text('[[tasks]]\nkind = "linear"\nnum_tasks = 3\ntrain = 100\n')
    assert len(run_json(program, "--tasks-file", tasks)["task_fitness"]) == 3


def test_default_engine_agrees_with_the_reference(program):
    reference = run_json(program, "--tasks", 3, "--epochs", 2)
    default = run_json(program, "--tasks", 3, "--epochs", 2, engine="auto")
    assert default["task_fitness"] == pytest.approx(reference["task_fitness"], abs=1e-9)


def test_example_runs_with_no_other_argument():
    result = runner.invoke(app, ["run", str(EXAMPLES / "linear_regression.az")])
    assert result.exit_code == 0, result.output
    assert "linear-9" in result.stdout and "fitness 0.9999" in result.stdout


def errors_of(*args) -> str:
    result = azc(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(
        result.exception, SystemExit)
    return result.output


def test_parse_error(tmp_path):
    bad = tmp_path / "bad.az"
    bad.write_text("def predict():\n    s1 = sqrt(s0)\n")
    assert "bad.az:2:10" in errors_of(bad) and "sqrt" in errors_of(bad)


@pytest.mark.parametrize("args, message", [
    (["--features", 3], "--features: must be one of"),
    (["--features", "three"], "Invalid value"),
    (["--kind", "lineer"], "unknown task kind 'lineer'"),
    (["--kind", "digits", "--classes", "0,x"], "--classes: expected two class ids"),
    (["--kind", "digits", "--eval", "rms"], "eval must be 'accuracy'"),
    (["--engine", "warp"], "--engine: unknown engine 'warp'"),
    (["--memory", "4/2"], "--memory: expected scalars/vectors/matrices"),
    (["--memory", "4/2/0"], "beyond the memory"),
    (["--max-abs-error", 0], "--max-abs-error: must be positive"),
    (["--data", "nothing.csv"], "nothing.csv: no such file"),
    (["--data", "nothing.txt"], "--data: cannot tell the task kind"),
    (["--tasks-file", "none.toml"], "none.toml: no such file"),
    (["--tasks-file", "none.toml", "--tasks", 3], "exclude each other"),
    (["--kind", "fixed"], "write them in a task file and pass --tasks-file"),
    (["--train", "1e12"], "--train: at most 1,000,000 examples per task"),
    (["--epochs", 10**6], "--epochs: train x epochs must be at most 100,000,000"),
    (["--train", 10**6, "--tasks", 100], "--tasks: 100 tasks of 1,000,100 examples"),
    (["--memory", "4/100000/1"], "--memory: at most 64 of each kind"),
])
def test_bad_flags(program, args, message):
    assert message in " ".join(errors_of(program, *args).split())


def test_missing_program(tmp_path):
    assert "nope.az: no such file" in errors_of(tmp_path / "nope.az")


def test_bad_task_file_points_at_the_line(program, tmp_path):
    tasks = tmp_path / "t.toml"
    tasks.write_text('[[tasks]]\nkind = "linear"\nfeatures = 6\n')
    assert "t.toml:3: tasks[0].features" in errors_of(program, "--tasks-file", tasks)


def test_engine_factory():
    tasks = []
    with pytest.raises(ConfigError, match="unknown engine"):
        make_evaluator("fast", tasks, MemoryShape())
    assert parse_memory("5/9/2") == MemoryShape(5, 9, 2)
    with pytest.raises(ConfigError, match="reserved"):
        parse_memory("1/1/0")


def test_several_programs_side_by_side(program, tmp_path):
    other = tmp_path / "other.az"
    other.write_text(LINEAR.replace("s2 = 0.01", "s2 = 0.0"))  # never learns
    result = azc(program, other, "--tasks", 3, "--engine", "reference")
    assert result.exit_code == 0, result.output
    assert "2 programs on 3 tasks" in result.stdout
    header = next(line for line in result.stdout.splitlines() if "linear.az" in line)
    assert "other.az" in header

    both = run_json(program, other, "--tasks", 3)["programs"]
    assert [Path(p["program"]).name for p in both] == ["linear.az", "other.az"]
    alone = run_json(other, "--tasks", 3)
    assert both[1]["task_fitness"] == alone["task_fitness"]
    assert both[0]["fitness"] > both[1]["fitness"]


def test_experiment_final_tasks(program, tmp_path):
    from tests.test_experiment import TINY

    experiment = tmp_path / "tiny.toml"
    experiment.write_text(TINY + '\n[[final_tasks]]\nkind = "linear"\nnum_tasks = 4\n'
                          'train = 50\ndata_seeds = [77]\n')
    report = run_json(program, "--experiment", experiment)
    assert len(report["tasks"]) == 4 and report["memory"] == "4/3/1"
    assert "--experiment and --tasks-file exclude" in errors_of(
        program, "--experiment", experiment, "--tasks-file", experiment)
    assert "--experiment and --tasks exclude" in errors_of(
        program, "--experiment", experiment, "--tasks", 3)


def test_features_zero_is_refused_not_the_default(program):
    assert "--features: must be one of" in errors_of(program, "--features", 0)


def _all_pairs_held_out(tmp_path):
    pairs = ", ".join(f"[{i}, {j}]" for i in range(10) for j in range(i + 1, 10))
    path = tmp_path / "held.toml"
    path.write_text(f'[[tasks]]\nkind = "digits"\nheld_out_pairs = [{pairs}]\n')
    return path


@pytest.mark.parametrize("make, args, message", [
    (lambda d: (d / "f3.csv").write_text("a,b,c,y\n" + "1,2,3,0\n4,5,6,1\n" * 20),
     ["--kind", "csv", "--data", "f3.csv"], "f3.csv: has 3 feature columns, but F must be"),
    (lambda d: (d / "h.csv").write_text("a,b,y\n"),
     ["--kind", "csv", "--data", "h.csv"], "h.csv: has no data rows"),
    (lambda d: (d / "fake.npz").write_text("hello"),
     ["--kind", "npz", "--data", "fake.npz"], "fake.npz: not a valid .npz file"),
    (lambda d: __import__("numpy").savez(d / "obj.npz", x=__import__("numpy").array(
        [{}], dtype=object)), ["--kind", "npz", "--data", "obj.npz"], "holds object arrays"),
    (lambda d: None, ["--kind", "cifar10"], "--data: cifar10 tasks need the data folder"),
    (_all_pairs_held_out, ["--tasks-file", "held.toml"],
     "held.toml:3: tasks[0].held_out_pairs: holds out every pair"),
])
def test_file_problems_say_what_is_wrong(program, tmp_path, monkeypatch, make, args, message):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    errors = " ".join(errors_of(program, *args).split())
    assert message in errors and "allow_pickle" not in errors and "'path'" not in errors


def test_same_file_names_get_their_folders_and_piped_lines_stay_whole(tmp_path):
    for folder in ("A", "B"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.az").write_text(LINEAR)
    result = azc(tmp_path / "A" / "x.az", tmp_path / "B" / "x.az", "--tasks", 2,
                 "--engine", "reference")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "A/x.az" in line)
    assert "B/x.az" in header

    long = tmp_path / ("a_program_with_a_name_much_longer_than_eighty_columns_" * 2 + ".az")
    long.write_text(LINEAR)
    result = azc(long, "--tasks", 2, "--engine", "reference")
    assert f"{long.name} on 2 tasks" in result.stdout.splitlines()


def test_the_engine_auto_chose_is_named(program):
    result = azc(program, "--tasks", 2)
    assert result.exit_code == 0, result.output
    assert "engine auto" not in result.stdout
    assert "engine interp" in result.stdout or "engine jit" in result.stdout
    assert run_json(program, "--tasks", 2, engine="jit")["engine"] == "jit"
