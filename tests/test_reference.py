"""The reference executor against the original's pinned values (reference §6.4, §6.7)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings

from azc.errors import ConfigError
from azc.fitness import flip_and_squash
from azc.ir import Instruction, MemoryShape, Program
from azc.ops import f32, op_named
from azc.reference import Memory, ReferenceEvaluator, execute, run_task
from azc.rng import Stream
from azc.tasks import ACCURACY, Task, TaskSpec, make_tasks
from tests.strategies import DEFAULT_MEMORY, programs


def ins(name, out=0, in1=0, in2=0, data=()):
    """An instruction from the op's enum name, for readable hand-written programs."""
    return Instruction(op_named(name).id, out, in1, in2, tuple(data))


def const(out, value):
    return ins("SCALAR_CONST_SET", out, data=(value,))


# The original's LINEAR_ALGORITHM and NEURAL_NET_ALGORITHM (reference §5).
LINEAR = Program(
    setup=(const(2, 0.01),),
    predict=(ins("VECTOR_INNER_PRODUCT", 1, 1, 0),),
    learn=(ins("SCALAR_DIFF", 3, 0, 1), ins("SCALAR_PRODUCT", 3, 2, 3),
           ins("SCALAR_VECTOR_PRODUCT", 2, 3, 0), ins("VECTOR_SUM", 1, 1, 2)),
)
NEURAL_NET = Program(
    setup=(ins("VECTOR_GAUSSIAN_SET", 2, data=(0.0, f32(0.1))),  # random-set data is float32
           ins("MATRIX_GAUSSIAN_SET", 0, data=(0.0, f32(0.1))), const(3, 0.01)),
    predict=(ins("MATRIX_VECTOR_PRODUCT", 3, 0, 0), ins("VECTOR_SUM", 3, 3, 1),
             ins("VECTOR_MAX", 4, 3, 5), ins("VECTOR_INNER_PRODUCT", 1, 4, 2),
             ins("SCALAR_SUM", 1, 1, 2)),
    learn=(ins("SCALAR_DIFF", 4, 0, 1), ins("SCALAR_PRODUCT", 4, 3, 4), ins("SCALAR_SUM", 2, 2, 4),
           ins("SCALAR_VECTOR_PRODUCT", 6, 4, 4), ins("VECTOR_SUM", 2, 2, 6),
           ins("SCALAR_VECTOR_PRODUCT", 7, 4, 2), ins("VECTOR_HEAVYSIDE", 8, 3),
           ins("VECTOR_PRODUCT", 7, 8, 7), ins("VECTOR_SUM", 1, 1, 7),
           ins("VECTOR_OUTER_PRODUCT", 1, 7, 0), ins("MATRIX_SUM", 0, 0, 1)),
)
EMPTY = Program()


def task(kind, F=4, train=1000, valid=100, **fields):
    return make_tasks(TaskSpec(kind, F, train, valid, **fields))[0]


# --- single ops, through the executor ---------------------------------------------------------

MATRIX = np.array([[0.1, 2.5, -0.5, -2.2], [10.3, -0.06, 0.7, -2.1],
                   [22, 5, -5, -22], [0.4, 19.05, -0.05, -0.22]])


def apply(instruction, vector=None, matrix=None, scalars=()):
    """Run one instruction on a fresh F=4 memory holding v1, m1 and s1, s2, ...; the memory."""
    memory = Memory(MemoryShape(4, 3, 2), 4)
    if vector is not None:
        memory.vectors[1] = vector
    if matrix is not None:
        memory.matrices[1] = matrix
    memory.scalars[1:1 + len(scalars)] = scalars
    with np.errstate(all="ignore"):
        execute(instruction, memory, Stream())
    return memory


def test_vector_st_dev_and_norm():
    vector = [2.2, -0.5, 0.0, 0.01]
    assert apply(ins("VECTOR_ST_DEV", 2, 1), vector).scalars[2] == pytest.approx(
        1.04391989635, abs=1e-11)
    assert apply(ins("VECTOR_NORM", 2, 1), vector).scalars[2] == pytest.approx(
        2.25612499654, abs=1e-11)


def test_matrix_statistics():
    assert apply(ins("MATRIX_MEAN", 2, 1), matrix=MATRIX).scalars[2] == pytest.approx(1.745)
    assert apply(ins("MATRIX_ST_DEV", 2, 1), matrix=MATRIX).scalars[2] == pytest.approx(
        9.5352523563878488, abs=1e-13)
    np.testing.assert_allclose(apply(ins("MATRIX_ROW_MEAN", 2, 1), matrix=MATRIX).vectors[2],
                               [-0.025, 2.21, 0.0, 4.795], atol=1e-12)
    np.testing.assert_allclose(apply(ins("MATRIX_ROW_ST_DEV", 2, 1), matrix=MATRIX).vectors[2],
                               [1.68430252627, 4.78166289067, 15.9530561335, 8.23324510749],
                               atol=1e-10)


def test_matrix_const_set_writes_row_2_column_1():
    # Fractions (i + 0.5) / F address entry i, as the original's tests encode them.
    memory = apply(ins("MATRIX_CONST_SET", 1, data=(2.5 / 4, 1.5 / 4, -3.0)), matrix=MATRIX)
    expected = MATRIX.copy()
    expected[2, 1] = -3.0
    np.testing.assert_array_equal(memory.matrices[1], expected)


def test_heaviside_scalar_counts_zero_vector_does_not_and_nan_gives_zero():
    assert apply(ins("SCALAR_HEAVYSIDE", 2, 1), scalars=[0.0]).scalars[2] == 1.0
    assert apply(ins("SCALAR_HEAVYSIDE", 2, 1), scalars=[math.nan]).scalars[2] == 0.0
    memory = apply(ins("VECTOR_HEAVYSIDE", 2, 1), [0.0, -1.0, 2.0, math.nan])
    np.testing.assert_array_equal(memory.vectors[2], [0.0, 0.0, 1.0, 0.0])


def test_min_max_nan_rules():
    def scalar(name, a, b):
        return apply(ins(name, 3, 1, 2), scalars=[a, b]).scalars[3]

    # std::min / std::max: a NaN first operand wins, a NaN second operand loses.
    assert math.isnan(scalar("SCALAR_MIN", math.nan, 1.0))
    assert scalar("SCALAR_MIN", 1.0, math.nan) == 1.0
    assert math.isnan(scalar("SCALAR_MAX", math.nan, 1.0))
    assert scalar("SCALAR_MAX", 1.0, math.nan) == 1.0

    # The matrix ops are "a < b ? a : b": a NaN on either side gives b.
    nan_first = np.full((4, 4), math.nan)
    ones = np.ones((4, 4))
    for name in ("MATRIX_MIN", "MATRIX_MAX"):
        memory = Memory(MemoryShape(2, 1, 3), 4)
        memory.matrices[1], memory.matrices[2] = nan_first, ones
        execute(ins(name, 0, 1, 2), memory, Stream())
        np.testing.assert_array_equal(memory.matrices[0], ones)
        execute(ins(name, 0, 2, 1), memory, Stream())
        assert np.isnan(memory.matrices[0]).all()


# --- memory persistence and what each component sees (§6.7) ----------------------------------

UNLIMITED = math.inf  # lets programs with huge errors run every example


def test_predict_runs_in_training_and_validation_with_persistent_memory():
    program = Program(predict=(ins("VECTOR_MEAN", 2, 0), ins("SCALAR_SUM", 1, 1, 2)))
    run = run_task(program, task("increment"), max_abs_error=UNLIMITED)
    assert run.memory.scalars[1] == 504450


def test_labels_are_visible_in_learn():
    program = Program(learn=(ins("SCALAR_SUM", 1, 1, 0),))
    run = run_task(program, task("increment"), max_abs_error=UNLIMITED)
    assert run.memory.scalars[1] == 499500


def test_labels_are_hidden_from_predict():
    program = Program(predict=(ins("SCALAR_SUM", 1, 1, 0),))
    run = run_task(program, task("increment"), max_abs_error=UNLIMITED)
    assert run.memory.scalars[1] == 0


def test_recorded_errors_of_a_no_op_program():
    run = run_task(EMPTY, task("increment", train=11, valid=9), record=True)
    assert run.train_errors == list(range(11))
    assert run.valid_errors == list(range(9))


def test_zero_predictor_on_the_increment_task():
    run = run_task(EMPTY, task("increment", options={"increment": 0.1}))
    rmse = math.sqrt(sum((0.1 * k) ** 2 for k in range(100)) / 100)
    assert run.fitness == pytest.approx(flip_and_squash(rmse), abs=1e-14)
    # NOTE: the original's 5.7301812 is 5.7301832 here (its test compares in float32 precision).
    assert run.fitness == pytest.approx(flip_and_squash(5.7301812), abs=1e-7)


def test_validation_loss_is_divided_by_the_stored_count():
    run = run_task(EMPTY, task("increment", options={"increment": 0.1}), num_valid=10)
    assert run.fitness == pytest.approx(
        flip_and_squash(math.sqrt(sum((0.1 * k) ** 2 for k in range(10)) / 100)), abs=1e-14)


# --- fitness anchors of the original's executor tests (§6.4) -----------------------------------

def test_constant_prediction_on_the_ones_task():
    program = Program(predict=(const(1, 0.9),))
    assert run_task(program, task("ones")).fitness == pytest.approx(flip_and_squash(0.1))


def test_empty_program_on_the_zeros_task_is_perfect():
    assert run_task(EMPTY, task("zeros")).fitness == 1.0


def logit_program(value):
    """Predict s1 = value, with infinities made by dividing by zero."""
    if math.isinf(value):
        return Program(predict=(const(2, math.copysign(1.0, value)),
                                ins("SCALAR_DIVISION", 1, 2, 3)))
    return Program(predict=(const(1, value),))


@pytest.mark.parametrize("logit, fitness", [(-3.0, 0.0), (3.0, 1.0),
                                             (math.inf, 1.0), (-math.inf, 0.0)])
def test_logits_on_an_accuracy_task(logit, fitness):
    ones = task("ones", eval_type=ACCURACY)
    assert run_task(logit_program(logit), ones).fitness == fitness


def test_accuracy_training_overwrites_s1_with_its_sigmoid():
    program = Program(predict=(const(1, 3.0),), learn=(ins("SCALAR_ABS", 2, 1),))
    run = run_task(program, task("ones", eval_type=ACCURACY))
    assert run.memory.scalars[2] == 1.0 / (1.0 + math.exp(-3.0))
    assert run.memory.scalars[1] == 3.0  # validation leaves the logit in place


DIVIDE_INTO_S1 = ins("SCALAR_DIVISION", 1, 2, 3)  # s1 = 0 / 0


@pytest.mark.parametrize("component", ["setup", "predict", "learn"])
def test_division_by_zero_into_the_prediction_gives_zero(component):
    program = Program(**{component: (DIVIDE_INTO_S1,)})
    assert run_task(program, task("zeros")).fitness == 0.0


def test_one_large_training_error_gives_zero():
    labels = [0.0] * 10
    labels[4] = 1000.0
    fixed = task("fixed", F=2, train=10, valid=2, options={
        "train_features": [[0.0, 0.0]] * 10, "train_labels": labels,
        "valid_features": [[0.0, 0.0]] * 2, "valid_labels": [0.0, 0.0]})
    run = run_task(EMPTY, fixed, record=True)
    assert run.fitness == 0.0
    assert run.train_errors == [0.0] * 4  # truncated before the failing example
    assert run.valid_errors == []
    assert run_task(EMPTY, fixed, max_abs_error=1000.0).fitness == 1.0


def test_one_large_validation_error_gives_zero_for_that_validation():
    fixed = task("fixed", F=2, train=10, valid=3, options={
        "train_features": [[0.0, 0.0]] * 10, "train_labels": [0.0] * 10,
        "valid_features": [[0.0, 0.0]] * 3, "valid_labels": [0.0, 1000.0, 0.0]})
    run = run_task(EMPTY, fixed, record=True)
    assert run.fitness == 0.0
    assert run.train_errors == [0.0] * 10
    assert run.valid_errors == [0.0]  # truncated before the failing example


def test_a_nan_logit_in_validation_predicts_class_0():
    # log(9.5 - steps) is finite for the 10 training steps and NaN once Learn has run 10 times.
    program = Program(setup=(const(4, 1.0), const(5, 9.5)),
                      predict=(ins("SCALAR_DIFF", 6, 5, 3), ins("SCALAR_LOG", 1, 6)),
                      learn=(ins("SCALAR_SUM", 3, 3, 4),))
    zeros = task("zeros", train=10, valid=5, eval_type=ACCURACY)
    ones = task("ones", train=10, valid=5, eval_type=ACCURACY)
    assert run_task(program, zeros).fitness == 1.0
    assert math.isnan(run_task(program, zeros).memory.scalars[1])
    assert run_task(program, ones).fitness == 0.0


# --- epochs -------------------------------------------------------------------------------------

def explodes_after(steps):
    """Predicts 0 for `steps` training steps, then 1000: Learn counts steps in s3."""
    return Program(
        setup=(const(4, 1.0), const(5, steps - 0.5), const(6, 1000.0)),
        predict=(ins("SCALAR_DIFF", 7, 3, 5), ins("SCALAR_HEAVYSIDE", 7, 7),
                 ins("SCALAR_PRODUCT", 1, 7, 6)),
        learn=(ins("SCALAR_SUM", 3, 3, 4),))


def test_early_stop_in_a_later_epoch_keeps_the_best_epoch():
    ones = task("ones", train=10, valid=5, num_train_epochs=3)
    run = run_task(explodes_after(15), ones, record=True)
    assert run.fitness == flip_and_squash(1.0)  # epoch 1 predicted 0 for labels 1
    assert run.train_errors == [1.0] * 10  # only the first epoch is recorded
    assert run.valid_errors == [1.0] * 5


def test_early_stop_in_the_first_epoch_gives_zero():
    run = run_task(explodes_after(5), task("ones", train=10, valid=5, num_train_epochs=3))
    assert run.fitness == 0.0


def test_fitness_is_the_best_epoch():
    linear = task("linear", train=20, valid=50, num_train_epochs=5)
    per_epoch = [run_task(LINEAR, linear, num_train=20 * e).fitness for e in range(1, 6)]
    assert run_task(LINEAR, linear).fitness == max(per_epoch)
    assert per_epoch[-1] > per_epoch[0]


def test_num_train_is_clipped_and_zero_means_no_fitness():
    ones = task("ones", train=10, valid=5)
    assert run_task(EMPTY, ones, num_train=10**9, record=True).train_errors == [1.0] * 10
    assert run_task(EMPTY, ones, num_train=0).fitness == 0.0


# --- randomness and memory ----------------------------------------------------------------------

def test_random_ops_draw_from_the_stream_of_seed_and_task_index():
    program = Program(setup=(ins("SCALAR_GAUSSIAN_SET", 2, data=(0.0, 1.0)),
                             ins("SCALAR_UNIFORM_SET", 3, data=(-2.5, -2.0))))
    run = run_task(program, task("zeros"), seed=7, task_index=3)
    stream = Stream(7, 3)
    assert run.memory.scalars[2] == stream.gaussian(0.0, 1.0)
    assert run.memory.scalars[3] == stream.uniform(-2.5, -2.0)


def test_memory_defaults_to_the_program_and_must_cover_it():
    run = run_task(NEURAL_NET, task("nn"))
    assert (len(run.memory.scalars), len(run.memory.vectors), len(run.memory.matrices)) == (
        5, 9, 2)
    run = run_task(LINEAR, task("linear"), memory=MemoryShape(20, 20, 20))
    assert run.memory.vectors.shape == (20, 4)
    with pytest.raises(ConfigError, match="needs memory"):
        run_task(NEURAL_NET, task("nn"), memory=MemoryShape(4, 3, 1))


# --- hand-written algorithms on their tasks (§6.7, statistical) --------------------------------

def test_linear_regressor_learns_a_linear_task():
    linear = task("linear", param_seeds=(100,), data_seeds=(1000,))
    assert run_task(LINEAR, linear).fitness > 0.999


def test_neural_net_learns_a_teacher_network():
    nn = task("nn", param_seeds=(1000,), data_seeds=(10000,))
    assert run_task(NEURAL_NET, nn, seed=10000).fitness > 0.8


# --- the evaluator ------------------------------------------------------------------------------

def test_evaluator_combines_tasks_and_numbers_them():
    tasks = make_tasks(TaskSpec("linear", 4, 100, 20, num_tasks=3))
    evaluation = ReferenceEvaluator(tasks, seed=5).evaluate(NEURAL_NET)
    expected = [run_task(NEURAL_NET, t, seed=5, task_index=i).fitness
                for i, t in enumerate(tasks)]
    assert evaluation.task_fitness == tuple(expected)
    assert evaluation.fitness == pytest.approx(np.mean(expected))
    median = ReferenceEvaluator(tasks, seed=5, combine="median").evaluate(NEURAL_NET)
    assert median.fitness == sorted(expected)[1]


def test_fitness_batch():
    evaluator = ReferenceEvaluator([task("linear", train=100, valid=10)])
    batch = evaluator.fitness_batch([LINEAR, EMPTY])
    assert batch.dtype == np.float64
    assert list(batch) == [evaluator.evaluate(LINEAR).fitness, evaluator.evaluate(EMPTY).fitness]


def test_bad_counts_and_tasks_without_validation_are_refused():
    with pytest.raises(ValueError):
        run_task(EMPTY, task("zeros"), num_train=-1)
    with pytest.raises(ValueError):
        run_task(EMPTY, task("zeros"), num_valid=-1)
    empty = Task("empty", np.zeros((10, 2)), np.zeros(10), np.zeros((0, 2)), np.zeros(0))
    with pytest.raises(ConfigError, match="no validation examples"):
        run_task(EMPTY, empty)


def test_evaluator_refuses_tasks_with_fewer_than_ten_training_steps():
    tiny = Task("tiny", np.zeros((9, 2)), np.zeros(9), np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ConfigError, match="at least 10"):
        ReferenceEvaluator([tiny])
    with pytest.raises(ValueError):
        ReferenceEvaluator([task("zeros")], combine="max")


def test_hand_written_programs_match_the_generator():
    from azc.generator import linear_program, neural_net_program

    assert linear_program() == LINEAR
    assert neural_net_program() == NEURAL_NET


# --- any program ----------------------------------------------------------------------------------

SMALL_RMS = task("linear", train=10, valid=6)
SMALL_ACCURACY = task("ones", train=10, valid=6, eval_type=ACCURACY)


@settings(max_examples=150, deadline=None)
@given(programs())
def test_any_program_runs_quietly_and_deterministically(program):
    for small in (SMALL_RMS, SMALL_ACCURACY):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # NumPy must not warn: the executor silences IEEE
            run = run_task(program, small, memory=DEFAULT_MEMORY, seed=3, record=True)
        again = run_task(program, small, memory=DEFAULT_MEMORY, seed=3, record=True)

        assert 0.0 <= run.fitness <= 1.0
        assert run.fitness == again.fitness
        assert run.train_errors == again.train_errors and run.valid_errors == again.valid_errors
        for bank in ("scalars", "vectors", "matrices"):
            np.testing.assert_array_equal(getattr(run.memory, bank), getattr(again.memory, bank))


@settings(max_examples=150, deadline=None)
@given(programs())
def test_recorded_validation_errors_give_the_fitness(program):
    # With one epoch and a full validation, the fitness is a function of the recorded errors.
    for small in (SMALL_RMS, SMALL_ACCURACY):
        run = run_task(program, small, memory=DEFAULT_MEMORY, record=True)
        assert len(run.train_errors) <= 10
        if len(run.valid_errors) < 6:
            assert run.fitness == 0.0
        elif small.eval_type == ACCURACY:
            assert run.fitness == 1.0 - sum(run.valid_errors) / 6
        else:
            loss = 0.0
            for error in run.valid_errors:
                loss += error * error
            assert run.fitness == flip_and_squash(math.sqrt(loss / 6))
