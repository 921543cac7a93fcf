"""The optimizer passes: each alone on small hand-written programs, then all of them together
against the reference executor on random programs (same fitness, same recorded errors)."""

import logging
import random
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azc.generator import linear_program, neural_net_program
from azc.ir import NOP, MemoryShape, Program
from azc.ops import OPS
from azc.parse import parse
from azc.passes import (
    PIPELINE,
    Pass,
    PassManager,
    eliminate_dead_code,
    fold_constants,
    optimize,
    order_instructions,
    order_operands,
    rename_addresses,
)
from azc.printer import format_program
from azc.reference import run_task
from azc.tasks import ACCURACY, RMS, Task
from tests.strategies import instructions


def program(text: str) -> Program:
    return parse(textwrap.dedent(text))


def same(actual: Program, expected_text: str):
    assert format_program(actual) == format_program(program(expected_text))


# --- dead-code removal -------------------------------------------------------------------------


def test_dead_code_keeps_the_linear_regressor_and_drops_no_ops():
    linear = linear_program()
    padded = Program(*(c + (NOP, NOP) for c in linear.components()))
    assert eliminate_dead_code(padded) == linear
    assert eliminate_dead_code(linear) is linear


def test_dead_code_removes_overwritten_and_unread_writes():
    p = program("""
        def setup():
            s2 = 0.5
            s0 = 3.0
            v0[0.0] = 1.0
        def predict():
            s3 = s2 * s2
            s3 = s2 + s2
            s1 = s3 * s2
        def learn():
            s2 = s0 - s1
            s2 = s2 * s2
        """)
    same(eliminate_dead_code(p), """
        def setup():
            s2 = 0.5
        def predict():
            s3 = s2 + s2
            s1 = s3 * s2
        def learn():
            s2 = s0 - s1
            s2 = s2 * s2
        """)


def test_values_carried_from_learn_into_the_next_predict_are_live():
    p = program("""
        def setup():
            pass
        def predict():
            s1 = dot(v0, v1)
        def learn():
            v2 = s0 * v0
            v1 = v1 + v2
            v2 = abs(v0)
        """)
    same(eliminate_dead_code(p), """
        def setup():
            pass
        def predict():
            s1 = dot(v0, v1)
        def learn():
            v2 = s0 * v0
            v1 = v1 + v2
        """)


def test_s0_and_v0_writes_are_dead_unless_read_before_the_executor_overwrites_them():
    p = program("""
        def setup():
            s0 = 1.0
        def predict():
            s0 = 2.0
            s1 = s0 * s0
            v0 = abs(v0)
        def learn():
            s0 = 3.0
            v0 = bcast(s0)
        """)
    same(eliminate_dead_code(p), """
        def setup():
            pass
        def predict():
            s0 = 2.0
            s1 = s0 * s0
        def learn():
            pass
        """)


def test_dead_cycles_go_even_though_they_read_themselves():
    p = program("""
        def setup():
            s3 = 1.0
        def predict():
            s2 = s2 + s3
            s1 = s0 + s0
        def learn():
            s3 = s3 * s2
        """)
    same(eliminate_dead_code(p), """
        def setup():
            pass
        def predict():
            s1 = s0 + s0
        def learn():
            pass
        """)


def test_partial_writes_read_their_output():
    p = program("""
        def setup():
            v1 = bcast(s2)
            v1[0.0] = 1.0
            v1[0.5] = 2.0
            m0 = bcast_rows(v1)
            m0[0.25, 0.5] = 3.0
        def predict():
            s1 = norm(m0)
        def learn():
            pass
        """)
    assert eliminate_dead_code(p) is p


def test_the_prediction_written_in_learn_reaches_the_next_predict():
    p = program("""
        def setup():
            pass
        def predict():
            s1 = s1 + s0
        def learn():
            s1 = s0 * s0
        """)
    assert eliminate_dead_code(p) is p


def test_a_dead_draw_stays_when_a_live_draw_follows_it_in_the_stream():
    p = program("""
        def setup():
            s2 = uniform(0.0, 1.0)
            s3 = uniform(1.0, 0.5)
            v1 = gaussian(0.0, 1.0)
            s2 = gaussian(0.0, 0.5)
        def predict():
            s1 = dot(v1, v0)
            v2 = uniform(-1.0, 1.0)
        def learn():
            pass
        """)
    # s2's first draw precedes v1's live draws; the empty uniform draws nothing; the last
    # setup draw and the predict draw come after every live draw.
    same(eliminate_dead_code(p), """
        def setup():
            s2 = uniform(0.0, 1.0)
            v1 = gaussian(0.0, 1.0)
        def predict():
            s1 = dot(v1, v0)
        def learn():
            pass
        """)


def test_dead_draws_in_the_loop_stay_when_any_loop_draw_is_live():
    p = program("""
        def setup():
            s3 = gaussian(0.0, 1.0)
        def predict():
            s2 = uniform(0.0, 1.0)
            s1 = s2 + s0
        def learn():
            v1 = uniform(0.0, 1.0)
        """)
    assert eliminate_dead_code(p) is p


# --- constant folding --------------------------------------------------------------------------


def test_folding_runs_exact_scalar_arithmetic_in_setup_and_on_zeros():
    p = program("""
        def setup():
            s2 = 0.25
            s3 = s2 * s2
            s3 = s3 + s1
            s4 = sin(s2)
        def predict():
            s5 = s0 - s6
            s1 = dot(v0, v1)
            s1 = s1 * s3
            s1 = s1 + s4
            s1 = s1 + s5
        def learn():
            s2 = s0 - s1
            v1 = s2 * v0
        """)
    same(fold_constants(p), """
        def setup():
            s2 = 0.25
            s3 = 0.0625
            s3 = 0.0625
            s4 = sin(s2)
        def predict():
            s5 = 0.0
            s1 = dot(v0, v1)
            s1 = s1 * s3
            s1 = s1 + s4
            s1 = s1 + s5
        def learn():
            s2 = s0 - s1
            v1 = s2 * v0
        """)


def test_folding_leaves_non_finite_results_and_unknown_values_alone():
    p = program("""
        def setup():
            s2 = 1 / s3
        def predict():
            s1 = s2 + s3
        def learn():
            s3 = s0 * s0
        """)
    assert fold_constants(p) is p


def test_scalars_only_setup_writes_are_constants_in_the_loop_but_s1_is_not():
    p = program("""
        def setup():
            s2 = 0.5
            s1 = 2.0
        def predict():
            s3 = s2 + s2
            s3 = s1 * s3
            s1 = s3 * s3
        def learn():
            s2 = s2 * s0
        """)
    assert fold_constants(p) is p  # learn writes s2
    q = p.replace(learn=())
    same(fold_constants(q), """
        def setup():
            s2 = 0.5
            s1 = 2.0
        def predict():
            s3 = 1.0
            s3 = s1 * s3
            s1 = s3 * s3
        def learn():
            pass
        """)


# --- canonical form ----------------------------------------------------------------------------


def test_independent_instructions_take_a_canonical_order_and_dependent_ones_keep_theirs():
    one = program("""
        def setup():
            s3 = 0.5
            s2 = 0.25
            v1 = uniform(0.0, 1.0)
            v2 = gaussian(0.0, 1.0)
        def predict():
            s1 = dot(v1, v0)
            v3 = s2 * v0
            s1 = s1 + s3
        def learn():
            v1[0.5] = 2.0
            s4 = s0 - s1
            v1 = s4 * v0
        """)
    other = program("""
        def setup():
            s2 = 0.25
            v1 = uniform(0.0, 1.0)
            s3 = 0.5
            v2 = gaussian(0.0, 1.0)
        def predict():
            v3 = s2 * v0
            s1 = dot(v1, v0)
            s1 = s1 + s3
        def learn():
            s4 = s0 - s1
            v1[0.5] = 2.0
            v1 = s4 * v0
        """)
    expected = order_instructions(one)
    assert order_instructions(other) == expected
    assert order_instructions(expected) is expected
    # Draws keep their order (the stream's), a value is read after it is written, and a write
    # waits for every earlier read and write of its address.
    assert [i.op for i in expected.setup if i.spec.random] == [i.op for i in one.setup[2:]]
    assert expected.predict[-1] == one.predict[-1]
    assert expected.learn[-1] == one.learn[-1]


def test_operands_order_by_first_write_with_reserved_addresses_first():
    p = program("""
        def setup():
            s3 = 0.5
            s2 = 0.25
        def predict():
            s1 = s2 + s3
            s1 = s1 * s0
            s1 = dot(v1, v0)
        def learn():
            pass
        """)
    same(order_operands(p), """
        def setup():
            s3 = 0.5
            s2 = 0.25
        def predict():
            s1 = s3 + s2
            s1 = s0 * s1
            s1 = dot(v0, v1)
        def learn():
            pass
        """)


def test_renaming_follows_first_use_and_merges_addresses_that_only_hold_zero():
    p = program("""
        def setup():
            s3 = 0.5
        def predict():
            v2 = s3 * v0
            s1 = dot(v2, v1)
            s1 = s1 + s4
            m0 = outer(v0, v2)
        def learn():
            s1 = s2 + s1
        """)
    same(rename_addresses(p), """
        def setup():
            s2 = 0.5
        def predict():
            v1 = s2 * v0
            s1 = dot(v1, v2)
            s1 = s1 + s3
            m0 = outer(v0, v1)
        def learn():
            s1 = s3 + s1
        """)


def test_pipeline_records_each_pass_and_dumps_after_a_named_one(caplog):
    records = []
    dumping = PassManager(PIPELINE.passes, dump_after=frozenset({"rename_addresses"}))
    with caplog.at_level(logging.DEBUG, logger="azc"):
        result = dumping.run(neural_net_program(), records)
    assert [r.name for r in records] == [p.name for p in PIPELINE.passes]
    assert [r.changed for r in records] == [False, False, True, True, True]
    assert all(r.seconds >= 0 for r in records)
    assert "program after rename_addresses" in caplog.text
    assert format_program(result) in caplog.text


def test_optimize_is_idempotent_on_the_hand_written_models():
    for p in (linear_program(), neural_net_program()):
        once = optimize(p)
        assert optimize(once) == once
        assert len(once) == len(p)


# --- equivalence on the reference executor -----------------------------------------------------

F = 4
MEMORY = MemoryShape(4, 3, 1)
DEMO_OPS = [op for op in OPS if op.name in ("NO_OP", "SCALAR_CONST_SET", "VECTOR_INNER_PRODUCT",
                                            "SCALAR_DIFF", "SCALAR_PRODUCT",
                                            "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM")]


def make_task(eval_type: str, epochs: int, seed: int) -> Task:
    rng = np.random.RandomState(seed)
    if eval_type == RMS:
        labels = rng.randn(10)
    else:
        labels = (rng.rand(10) > 0.5).astype(float)
    orders = np.array([rng.permutation(6) for _ in range(epochs)])
    return Task(f"{eval_type}-{epochs}", rng.randn(6, F), labels[:6], rng.randn(4, F), labels[6:],
                eval_type, orders)


TASKS = [make_task(RMS, 1, 1), make_task(ACCURACY, 2, 2), make_task(RMS, 3, 3)]


def components(ops):
    return st.lists(instructions(MEMORY, ops), max_size=8).map(tuple)


def random_programs(ops=None):
    return st.builds(Program, components(ops), components(ops), components(ops))


def assert_same_runs(original: Program):
    optimized = optimize(original)
    assert len(optimized) <= len(original)
    assert optimized.memory_shape().scalars <= MEMORY.scalars
    for index, task in enumerate(TASKS):
        expected = run_task(original, task, memory=MEMORY, seed=5, task_index=index, record=True)
        actual = run_task(optimized, task, memory=MEMORY, seed=5, task_index=index, record=True)
        assert actual.fitness == expected.fitness
        assert actual.train_errors == expected.train_errors
        assert actual.valid_errors == expected.valid_errors


EQUIVALENCE = settings(max_examples=400, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow])


@EQUIVALENCE
@given(random_programs())
def test_optimized_programs_run_like_the_original_over_all_ops(original):
    assert_same_runs(original)


@EQUIVALENCE
@given(random_programs(DEMO_OPS))
def test_optimized_programs_run_like_the_original_over_the_demo_ops(original):
    assert_same_runs(original)


@pytest.mark.slow
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(random_programs(), random_programs(DEMO_OPS)))
def test_optimized_programs_run_like_the_original_many(original):
    assert_same_runs(original)


@settings(max_examples=300, deadline=None)
@given(random_programs())
def test_optimize_is_idempotent(original):
    once = optimize(original)
    assert optimize(once) == once


def test_the_native_engine_scores_optimized_programs_like_the_originals():
    """Folding and dead-code removal must be exact on compiled code too, not only in NumPy."""
    engine = pytest.importorskip("azc.engine")
    from tests.test_hashing import random_program

    def task(eval_type, epochs, seed, n=12):
        rng = np.random.RandomState(seed)
        labels = rng.randn(n + 4) if eval_type == RMS else (rng.rand(n + 4) > 0.5) * 1.0
        orders = np.array([rng.permutation(n) for _ in range(epochs)])
        return Task("t", rng.randn(n, F), labels[:n], rng.randn(4, F), labels[n:], eval_type,
                    orders)

    tasks = [task(RMS, 1, 1), task(ACCURACY, 2, 2), task(RMS, 3, 3)]
    evaluator = engine.make_evaluator(tasks, MemoryShape(6, 5, 3), engine="interp", seed=3)
    rng = random.Random(3)
    originals = [random_program(rng, (rng.randrange(6), rng.randrange(1, 6), rng.randrange(6)))
                 for _ in range(2000)]
    expected = evaluator.fitness_batch(originals)
    actual = evaluator.fitness_batch([optimize(p) for p in originals])
    assert (expected > 0).sum() > 1000
    np.testing.assert_array_equal(actual, expected)


def test_pass_manager_reruns_from_the_named_pass_after_a_change():
    calls = []

    def shrink(p):
        calls.append("shrink")
        return p.replace(setup=p.setup[1:]) if p.setup else p

    def note(p):
        calls.append("note")
        return p

    manager = PassManager((Pass("note", note), Pass("shrink", shrink, repeat_from="note")),
                          max_rounds=10)
    records = []
    result = manager.run(Program(setup=(NOP, NOP)), records)
    assert result.setup == ()
    assert calls == ["note", "shrink"] * 3
    assert [r.changed for r in records] == [False, True, False, True, False, False]

    capped = PassManager(manager.passes, max_rounds=1)
    assert len(capped.run(Program(setup=(NOP,) * 5)).setup) == 3


def test_dumps_can_be_asked_for_through_the_environment(monkeypatch):
    monkeypatch.setenv("AZC_DUMP_AFTER", "order_operands,rename_addresses")
    assert PassManager(PIPELINE.passes).dump_after == {"order_operands", "rename_addresses"}
