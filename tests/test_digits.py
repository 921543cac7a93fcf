"""The digits experiment and its baselines: the original's run_baseline.sh settings on digits."""

import dataclasses
import re
from pathlib import Path

import pytest

from azc.experiment import load_experiment, replace_settings
from azc.ir import MemoryShape
from azc.ops import op_named
from azc.parse import parse_file
from azc.runner import run_many
from azc.search import Search
from azc.taskfile import make_collection

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "examples" / "experiments" / "digits.toml"
BASELINES = sorted((ROOT / "examples" / "baselines").glob("*.az"))
HELD_OUT = {(0, 5), (0, 9), (1, 8), (2, 9), (3, 5), (3, 6), (3, 8), (4, 6), (8, 9)}

# Reference §15.6, run_baseline.sh: the ops of each component.
OPS = {
    "setup": ["SCALAR_CONST_SET", "SCALAR_GAUSSIAN_SET", "SCALAR_UNIFORM_SET",
              "VECTOR_GAUSSIAN_SET", "VECTOR_UNIFORM_SET", "MATRIX_GAUSSIAN_SET",
              "MATRIX_UNIFORM_SET"],
    "predict": ["SCALAR_SUM", "MATRIX_VECTOR_PRODUCT", "VECTOR_MAX", "VECTOR_INNER_PRODUCT",
                "VECTOR_SUM"],
    "learn": ["SCALAR_SUM", "SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_VECTOR_PRODUCT",
              "VECTOR_SUM", "VECTOR_HEAVYSIDE", "VECTOR_PRODUCT", "VECTOR_OUTER_PRODUCT",
              "MATRIX_SUM"],
}


@pytest.fixture(scope="module")
def experiment():
    return load_experiment(EXPERIMENT)


def pairs(specs) -> set:
    found = set()
    for task in make_collection(specs):
        positive, negative = re.search(r"(\d)v(\d)", task.name).groups()
        found.add((int(positive), int(negative)))
    return found


def test_search_never_sees_the_held_out_pairs_that_select_and_final_use(experiment):
    search = pairs(experiment.search_tasks)
    assert len(search) > 5 and not search & HELD_OUT
    assert pairs(experiment.select_tasks) <= HELD_OUT
    assert pairs(experiment.final_tasks) == HELD_OUT  # 100 tasks reach all nine
    for specs, count in ((experiment.search_tasks, 10), (experiment.select_tasks, 10),
                         (experiment.final_tasks, 100)):
        tasks = make_collection(specs)
        assert len(tasks) == count
        assert {(t.eval_type, t.features_size) for t in tasks} == {("accuracy", 16)}


def test_the_settings_are_run_baseline_sh(experiment):
    table = experiment.table
    assert experiment.memory == MemoryShape(5, 9, 2)
    for component, names in OPS.items():
        assert getattr(table, component).ops == names
        assert (getattr(table, component).size, getattr(table, component).min_size) == (1, 1)
    assert [table.setup.max_size, table.predict.max_size, table.learn.max_size] == [7, 11, 23]
    assert (table.evolution.population_size, table.evolution.tournament_size) == (100, 10)
    assert table.evolution.initial_population == "noop" and table.fec is None
    assert sorted(table.evolution.mutations) == sorted(
        ["alter_param", "randomize_component_function", "insert_instruction",
         "remove_instruction"])
    assert (table.train_budget.baseline, table.train_budget.factor) == ("neural_net", 2.0)


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.stem)
def test_baselines_fit_the_memory_and_record_their_tuned_rate(path):
    program = parse_file(path, MemoryShape(5, 9, 2))
    text = path.read_text()
    recorded = re.search(r"# bench/tune_baselines.py: lr (\S+),", text)
    assert recorded, "the tuning result is recorded in the header"
    rate = re.search(r"^\s*(s\d+) = (\S+)\s*# learning rate$", text, re.MULTILINE)
    assert float(rate[2]) == float(recorded[1])
    setup = [i for i in program.setup if i.op == op_named("SCALAR_CONST_SET").id]
    assert [i.data[0] for i in setup] == [float(recorded[1])]


def test_baselines_learn_the_held_out_pairs(experiment):
    # The first 20 final tasks: every held-out pair but one, some twice.
    specs = [dataclasses.replace(experiment.final_tasks[0], num_tasks=20)]
    results = run_many(BASELINES, specs, memory=experiment.memory)
    for path, result in zip(BASELINES, results, strict=True):
        assert result.evaluation.fitness > 0.93, path.name
        assert min(result.evaluation.task_fitness) > 0.75, path.name


def test_a_short_search_on_digits(experiment):
    short = replace_settings(experiment, max_train_steps=15_000_000)
    short = dataclasses.replace(short, final_tasks=[
        dataclasses.replace(short.final_tasks[0], num_tasks=5)])
    outcome = Search(short, seed=2).run()
    assert outcome.experiments == 1 and outcome.individuals >= 6000
    # No-op programs guess one class: 0.5 on balanced tasks. In 6600 individuals, seeds 2-4
    # reached 0.93, 0.83 and 0.95 (a linear classifier found from scratch).
    assert outcome.search_fitness > 0.75
    assert 0.0 <= outcome.final_fitness <= 1.0
