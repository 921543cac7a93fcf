"""The fused optimizer against the pass pipeline it restates: the same canonical program, object
for object equal, on random programs over every op; its plain-float folds against the op table."""

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.generator import linear_program, neural_net_program
from azc.ir import Instruction, MemoryShape, Program
from azc.ops import OPS
from azc.passes import PIPELINE
from azc.passes_fused import FOLDS, canonicalize
from tests.strategies import instructions
from tests.test_hashing import random_program
from tests.test_passes import DEMO_OPS, program


def bits(program: Program) -> tuple:
    """The program with every constant as its bit pattern: == takes -0.0 for 0.0."""
    return tuple(tuple((i.op, i.out, i.in1, i.in2, tuple(struct.pack("<d", x) for x in i.data))
                       for i in c) for c in program.components())


def assert_same(original: Program):
    assert bits(canonicalize(original)) == bits(PIPELINE.run(original))


def random_programs(memory, ops=None, size=10):
    component = st.lists(instructions(memory, ops), max_size=size).map(tuple)
    return st.builds(Program, component, component, component)


@settings(max_examples=400, deadline=None)
@given(random_programs(MemoryShape(4, 3, 1)))
def test_fused_equals_the_pipeline_over_all_ops(original):
    assert_same(original)


@pytest.mark.slow
@settings(max_examples=20000, deadline=None)
@given(random_programs(MemoryShape(4, 3, 1)))
def test_fused_equals_the_pipeline_over_all_ops_many(original):
    assert_same(original)


@settings(max_examples=200, deadline=None)
@given(random_programs(MemoryShape(3, 2, 1), DEMO_OPS, size=12))
def test_fused_equals_the_pipeline_over_the_demo_ops(original):
    assert_same(original)


@settings(max_examples=100, deadline=None)
@given(random_programs(MemoryShape(12, 9, 5)))
def test_fused_equals_the_pipeline_in_a_large_memory(original):
    assert_same(original)


def test_fused_equals_the_pipeline_on_many_generated_programs():
    rng = random.Random(11)
    for _ in range(5000):
        assert_same(random_program(rng, (rng.randrange(8), rng.randrange(1, 6), rng.randrange(8))))


def test_fused_equals_the_pipeline_on_the_hand_written_models_and_edge_cases():
    for original in (linear_program(), neural_net_program(), Program()):
        assert_same(original)
    # Folding chains that need several rounds of dead-code removal, a dead draw kept for the
    # stream, and a dead uniform draw with an empty interval (it draws nothing, so it goes).
    assert_same(program("""
        def setup():
            s3 = 2.0
            s4 = s3 * s3
            s2 = uniform(0.0, 1.0)
            s5 = uniform(1.0, 1.0)
        def predict():
            s2 = uniform(-1.0, 1.0)
            s1 = s4 + s2
        def learn():
            s6 = s6 + s0
        """))


SPECIAL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 5e-324, -5e-324, 1e308, -1e308, math.inf,
                           -math.inf, math.nan, 0.5, 3.0])
FLOATS = st.one_of(SPECIAL, st.floats())


@settings(max_examples=1000, deadline=None)
@given(st.sampled_from(sorted(FOLDS)), FLOATS, FLOATS)
def test_plain_folds_give_the_op_tables_bits(op_id, a, b):
    """Where the table's result is finite the fold gives its bits; otherwise no fold at all."""
    import numpy as np

    with np.errstate(all="ignore"):
        expected = float(OPS[op_id].fn(a, b, None, (), 0, None))
    actual = FOLDS[op_id](a, b)
    if math.isfinite(expected):
        assert actual is not None
        assert struct.pack("<d", actual) == struct.pack("<d", expected)
    else:
        assert actual is None or not math.isfinite(actual)


def test_cached_records_tell_nothing_wrong_about_signed_zeros():
    """Equal instructions share a record: -0.0 and 0.0 constants must keep their own bits."""
    plus = Instruction(56, 2, data=(0.0,))
    minus = Instruction(56, 2, data=(-0.0,))
    read = Instruction(op=1, out=1, in1=2, in2=2)
    for first, second in ((plus, minus), (minus, plus)):
        p = Program(setup=(first,), predict=(Instruction(op=12, out=3, in1=2), read))
        q = Program(setup=(second,), predict=(Instruction(op=12, out=3, in1=2), read))
        canonicalize(p)
        assert bits(canonicalize(q)) == bits(PIPELINE.run(q))
