"""Experiment files: the shipped presets load, and bad files fail before any work, with lines."""

from pathlib import Path

import pytest

from azc.errors import ConfigError
from azc.experiment import load_experiment
from azc.ops import op_named

EXPERIMENTS = Path(__file__).resolve().parent.parent / "examples" / "experiments"

TINY = """\
name = "tiny"

[evolution]
population_size = 20
tournament_size = 4
initial_population = "random"
max_train_steps = 30_000

[memory]
scalars = 4
vectors = 3
matrices = 1

[setup]
ops = ["SCALAR_CONST_SET"]
size = 3

[predict]
ops = ["VECTOR_INNER_PRODUCT"]
size = 1

[learn]
ops = ["SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM"]
size = 4

[experiments]
max_experiments = 2

[[search_tasks]]
kind = "linear"
features = 4
train = 12
valid = 6
num_tasks = 2

[[select_tasks]]
kind = "linear"
features = 4
train = 20
valid = 6
num_tasks = 2
"""


def write(tmp_path, text, name="experiment.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def rejected(tmp_path, text) -> str:
    with pytest.raises(ConfigError) as info:
        load_experiment(write(tmp_path, text))
    return str(info.value)


def test_demo_matches_run_demo_sh():
    demo = load_experiment(EXPERIMENTS / "demo.toml")
    table = demo.table
    assert (table.evolution.population_size, table.evolution.tournament_size) == (1000, 10)
    assert table.evolution.mutate_prob == pytest.approx(0.9)
    assert table.evolution.max_train_steps == 200_000_000
    assert str(demo.memory) == "4/3/1" and demo.sizes == (10, 2, 8)
    ops = {op_named(n).id for n in ("SCALAR_CONST_SET", "VECTOR_INNER_PRODUCT", "SCALAR_DIFF",
                                    "SCALAR_PRODUCT", "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM")}
    assert all(set(c) == ops for c in demo.mutation.ops)
    assert (table.fec.train, table.fec.valid) == (10, 10)
    search, select, final = demo.search_tasks[0], demo.select_tasks[0], demo.final_tasks[0]
    assert (search.num_tasks, search.features_size, search.num_train_examples,
            search.num_valid_examples) == (10, 4, 100, 100)
    assert (select.num_tasks, select.num_train_examples) == (100, 1000)
    assert (final.data_seeds, final.param_seeds) == ((1000000,), (2000000,))
    assert table.experiments.max_experiments == 0
    assert table.experiments.sufficient_fitness == 0.9999
    assert table.experiments.randomize_task_seeds


def test_integration_presets_load():
    linear = load_experiment(EXPERIMENTS / "linear.toml")
    assert linear.sizes == (5, 1, 4)
    nonlinear = load_experiment(EXPERIMENTS / "nonlinear.toml")
    assert nonlinear.mutation.ops[1] == () and nonlinear.mutation.max_sizes == (7, 4, 10)
    assert nonlinear.table.train_budget.baseline == "neural_net"


def test_tiny_experiment_loads(tmp_path):
    experiment = load_experiment(write(tmp_path, TINY))
    assert experiment.final_tasks == experiment.select_tasks  # defaults to the select tasks


@pytest.mark.parametrize("change, key, line", [
    (("[evolution]\n", "[evolution]\npopulaton_size = 3\n"), "evolution.populaton_size", 4),
    (("tournament_size = 4", 'tournament_size = "four"'), "evolution.tournament_size", 5),
    (('ops = ["SCALAR_CONST_SET"]', 'ops = ["SCALAR_CONST_SETT"]'), "setup.ops", 15),
    (("size = 3\n", "size = 3\nmin_size = 5\nmax_size = 2\n"), "setup", 14),
    (("[experiments]", "[hurdle]\nstage_tasks = 2\n\n[experiments]"), "hurdle.stage_tasks", 27),
    (("tournament_size = 4", "tournament_size = 40"), "evolution.tournament_size", 5),
    (("size = 3\n", "size = 100000\n"), "setup.size", 16),  # a typo, not gigabytes of programs
    (("population_size = 20", "population_size = 1000000000"), "evolution.population_size", 4),
    # an optional table's own error: was "fec: expected a table, got a table {...}"
    (("[experiments]", "[fec]\ntrain = 0\n\n[experiments]"), "fec.train: must be between", 27),
])
def test_bad_experiments_name_the_key_and_line(tmp_path, change, key, line):
    message = rejected(tmp_path, TINY.replace(*change, 1))
    assert key in message and f":{line}:" in message, message


def test_memory_too_small_for_the_ops_is_rejected(tmp_path):
    message = rejected(tmp_path, TINY.replace("matrices = 1", "matrices = 0").replace(
        'ops = ["SCALAR_CONST_SET"]', 'ops = ["MATRIX_SUM"]'))
    assert "MATRIX_SUM" in message and "memory" in message


def test_hand_written_start_needs_its_memory(tmp_path):
    message = rejected(tmp_path, TINY.replace('"random"', '"neural_net"'))
    assert "initial_population" in message and "5/9/2" in message


def test_missing_search_tasks_and_bad_task_tables(tmp_path):
    head = TINY[: TINY.index("[[search_tasks]]")]
    assert "search_tasks" in rejected(tmp_path, head)
    message = rejected(tmp_path, TINY.replace('kind = "linear"', 'kind = "linearr"', 1))
    assert "search_tasks[0].kind" in message


def test_linear_preset_matches_run_integration_test_linear_sh():
    # Reference §15.3: every field the original's script sets, as azc reads it.
    linear = load_experiment(EXPERIMENTS / "linear.toml")
    table = linear.table
    assert (table.evolution.population_size, table.evolution.tournament_size) == (1000, 10)
    assert table.evolution.initial_population == "random"
    assert table.evolution.mutations == ["alter_param", "randomize_instruction",
                                         "randomize_component_function"]
    assert table.evolution.mutate_prob == pytest.approx(0.9)
    assert table.evolution.max_train_steps == 100_000_000
    assert str(linear.memory) == "4/3/1" and linear.sizes == (5, 1, 4)
    names = [[op_named(n).id for n in ops] for ops in (
        ["SCALAR_CONST_SET"], ["VECTOR_INNER_PRODUCT"],
        ["SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM"])]
    assert [list(c) for c in linear.mutation.ops] == names
    assert linear.mutation.max_sizes == (0, 0, 0)
    assert (table.fec.train, table.fec.valid) == (10, 10) and table.train_budget is None
    search, select, final = linear.search_tasks[0], linear.select_tasks[0], linear.final_tasks[0]
    assert (search.kind, search.num_tasks, search.features_size, search.num_train_examples,
            search.num_valid_examples, search.data_seeds) == ("linear", 10, 4, 100, 100, ())
    assert (select.num_tasks, select.num_train_examples, select.num_valid_examples) == (
        100, 10_000, 100)
    assert final == select and table.experiments.max_experiments == 1


def test_linear_preset_search_tasks_reward_the_linear_regressor():
    # The preset's search tasks can be solved: SGD linear regression with a fitting learning
    # rate scores ~1, predicting 0 scores far less, on the reference and the default engine.
    from azc.generator import linear_program, noop_program, pad
    from azc.reference import ReferenceEvaluator
    from azc.search import make_evaluator
    from azc.taskfile import make_collection

    linear = load_experiment(EXPERIMENTS / "linear.toml")
    tasks = make_collection(linear.search_tasks)
    programs = [pad(linear_program(rate), linear.sizes) for rate in (0.1, 0.2)]
    programs.append(noop_program(linear.sizes))
    reference = ReferenceEvaluator(tasks, linear.memory).fitness_batch(programs)
    default = make_evaluator(tasks, linear.memory).fitness_batch(programs)
    assert list(default) == pytest.approx(list(reference), abs=1e-12)
    assert min(reference[:2]) > 0.9995 and reference[2] < 0.5


def test_a_component_without_ops_keeps_its_size_in_no_ops(tmp_path):
    import random

    from azc.generator import Generator
    from azc.mutator import Mutator
    from azc.printer import format_program

    exp = load_experiment(write(tmp_path, TINY.replace('ops = ["SCALAR_CONST_SET"]', "ops = []")))
    generator = Generator("random", exp.sizes, Mutator(exp.mutation, random.Random(0)))
    setup = format_program(generator.initial_program()).split("def predict")[0]
    assert setup.count("noop()") == 3


def test_final_tasks_with_other_features_are_named_with_their_line(tmp_path):
    final = '\n[[final_tasks]]\nkind = "linear"\nfeatures = 8\nnum_tasks = 2\n'
    message = rejected(tmp_path, TINY + final)
    assert "final_tasks" in message and "features 8" in message and "(4)" in message, message
    assert f":{TINY.count(chr(10)) + 2}:" in message, message
