"""Printer: canonical text, exact round-trips through the parser, fixed points."""

import math
import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.ir import Instruction, MemoryShape, Program
from azc.ops import OPS, draw_data, f32
from azc.parse import parse
from azc.printer import format_instruction, format_number, format_program
from tests.strategies import SINGLES, instructions, programs


def bits(program: Program) -> tuple:
    """A program with every float as its bit pattern, so -0.0 differs from 0.0."""
    sizes = tuple(map(len, program.components()))
    return sizes + tuple((i.op, i.out, i.in1, i.in2, tuple(struct.pack("<d", x) for x in i.data))
                         for i in program.instructions())


@given(programs(max_size=10, memory=MemoryShape(6, 5, 3)))
@settings(max_examples=300)
def test_parse_inverts_format(program):
    text = format_program(program)
    assert bits(parse(text)) == bits(program)


@given(programs(max_size=6, memory=MemoryShape(2, 1, 0)))
def test_round_trip_without_matrices(program):
    assert bits(parse(format_program(program), memory=MemoryShape(2, 1, 0))) == bits(program)


@given(programs(max_size=10))
def test_format_is_a_fixed_point(program):
    text = format_program(program)
    assert format_program(parse(text)) == text


@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_every_op_round_trips(op):
    rng = random.Random(op.id)
    for _ in range(20):
        data = draw_data(op, rng)
        instruction = Instruction(op.id, 1 if op.out else 0, 2 if op.arity else 0,
                                  3 if op.arity > 1 else 0, data)
        program = Program(predict=(instruction,))
        assert bits(parse(format_program(program))) == bits(program)


def test_canonical_layout():
    program = Program(setup=(Instruction(56, 2, data=(0.01,)),),
                      learn=(Instruction(2, 3, 0, 1), Instruction(0)))
    assert format_program(program) == (
        "def setup():\n    s2 = 0.01\n\n"
        "def predict():\n    pass\n\n"
        "def learn():\n    s3 = s0 - s1\n    noop()\n")


def test_empty_program():
    assert format_program(Program()) == (
        "def setup():\n    pass\n\ndef predict():\n    pass\n\ndef learn():\n    pass\n")


@pytest.mark.parametrize("instruction, text", [
    (Instruction(18, 2, 4, 0), "v2 = s4 * v0"),
    (Instruction(27, 1, 0, 1), "s1 = dot(v0, v1)"),
    (Instruction(28, 1, 7, 0), "m1 = outer(v7, v0)"),
    (Instruction(31, 3, 0, 0), "v3 = m0 @ v0"),
    (Instruction(63, 1, data=(0.0, f32(0.1))), "v1 = gaussian(0.0, 0.1)"),
    (Instruction(57, 1, data=(0.625, -0.5)), "v1[0.625] = -0.5"),
    (Instruction(58, 1, data=(0.5, 0.25, 2.0)), "m1[0.5, 0.25] = 2.0"),
    (Instruction(6, 2, 3), "s2 = 1 / s3"),
    (Instruction(35, 1, 0), "v1 = norm(m0, axis=0)"),
    (Instruction(0), "noop()"),
])
def test_format_instruction(instruction, text):
    assert format_instruction(instruction) == text


@pytest.mark.parametrize("value, single, text", [
    (0.01, False, "0.01"), (f32(0.01), True, "0.01"), (f32(0.1), False, repr(f32(0.1))),
    (-0.0, True, "-0.0"), (-0.0, False, "-0.0"), (1e-45, True, "1e-45"), (5e-324, False, "5e-324"),
    (2.0, True, "2.0"), (3.4028234663852886e38, True, "3.4028235e+38"),
])
def test_format_number(value, single, text):
    assert format_number(value, single) == text


@given(SINGLES)
def test_single_numbers_round_trip_as_float32(value):
    text = format_number(value, single=True)
    assert f32(float(text)) == value
    assert math.copysign(1, f32(float(text))) == math.copysign(1, value)
    assert len(text) <= len(repr(value))


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_double_numbers_round_trip(value):
    assert float(format_number(value)) == value


@given(instructions(MemoryShape(5, 5, 5)))
def test_instruction_line_parses_back(instruction):
    text = f"def learn():\n    {format_instruction(instruction)}\n"
    assert bits(parse(text)) == bits(Program(learn=(instruction,)))


def test_wrong_data_size_is_a_clear_error():
    with pytest.raises(ValueError, match="VECTOR_CONST_SET takes 2 data fields"):
        format_instruction(Instruction(57, 1))
