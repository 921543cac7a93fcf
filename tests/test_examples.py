"""The example programs: they parse, print canonically, are the original's hand-written
algorithms, and reach the fitness their header comments promise (on the reference executor)."""

import statistics
from pathlib import Path

import pytest

from azc.generator import linear_program, neural_net_program
from azc.ir import MemoryShape
from azc.parse import parse, parse_file
from azc.printer import format_program
from azc.reference import run_task
from azc.tasks import ACCURACY, TaskSpec, make_tasks

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def example(name: str):
    return parse_file(EXAMPLES / f"{name}.az")


def fitnesses(name: str, spec: TaskSpec) -> list[float]:
    program = example(name)
    return [run_task(program, task).fitness for task in make_tasks(spec)]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.az")), ids=lambda p: p.name)
def test_example_prints_to_a_fixed_point(path):
    program = parse_file(path)
    assert parse(format_program(program)) == program
    assert path.read_text().startswith("# "), "every example starts with a header comment"


def test_examples_are_the_originals_algorithms():
    assert example("linear_regression") == linear_program()
    assert example("neural_net") == neural_net_program()
    assert example("neural_net_damaged") == neural_net_program(damaged=True)
    assert example("logistic_regression") == linear_program(learning_rate=0.1)


def test_examples_fit_their_memories():
    small, nn = MemoryShape(4, 3, 1), MemoryShape(5, 9, 2)
    for name in ("linear_regression", "linear_regression_padded", "logistic_regression"):
        assert small.covers(example(name).memory_shape())
    for name in ("neural_net", "neural_net_damaged"):
        assert nn.covers(example(name).memory_shape())


LINEAR = TaskSpec("linear", 4, 1000, 100, num_tasks=4)
TEACHER = TaskSpec("nn", 4, 1000, 100, num_tasks=8)


def test_linear_regression_fitness():
    assert min(fitnesses("linear_regression", LINEAR)) > 0.999


def test_padding_changes_nothing():
    padded = example("linear_regression_padded")
    assert len(padded) >= len(example("linear_regression")) + 10
    assert fitnesses("linear_regression_padded", LINEAR) == fitnesses("linear_regression", LINEAR)


def test_neural_net_fitness():
    trained = fitnesses("neural_net", TEACHER)
    damaged = fitnesses("neural_net_damaged", TEACHER)
    assert statistics.mean(trained) > 0.8
    assert statistics.mean(damaged) < 0.6
    assert all(t > d for t, d in zip(trained, damaged, strict=True))


def test_logistic_regression_fitness():
    digits = TaskSpec("digits", 16, 230, 115, num_tasks=3, eval_type=ACCURACY,
                      options={"classes": [0, 1]})
    assert min(fitnesses("logistic_regression", digits)) > 0.95


def test_dead_code_removal_unburies_the_linear_regressor():
    from azc.passes import eliminate_dead_code

    padded = example("linear_regression_padded")
    assert eliminate_dead_code(padded) == example("linear_regression")
