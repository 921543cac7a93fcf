"""Mutator, generator and train budget: the rules of reference §5, §9 and §13."""

import random
from collections import Counter

import pytest

from azc.budget import TrainBudget, component_cost, program_cost
from azc.errors import ConfigError
from azc.generator import Generator, baseline_program, linear_program, neural_net_program, pad
from azc.ir import NOP, Instruction, MemoryShape, Program
from azc.mutator import MUTATIONS, MutationSettings, Mutator
from azc.ops import OPS, S, V, op_named

DEMO_OPS = tuple(op_named(name).id for name in (
    "SCALAR_CONST_SET", "VECTOR_INNER_PRODUCT", "SCALAR_DIFF", "SCALAR_PRODUCT",
    "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM"))
ALL_OPS = tuple(range(65))


def mutator(mutations=("alter_param",), ops=(ALL_OPS,) * 3, memory=None,
            seed=1, **kwargs):
    memory = memory or MemoryShape(5, 4, 2)
    settings = MutationSettings(memory=memory, ops=ops, mutations=tuple(mutations),
                                mutate_prob=kwargs.pop("mutate_prob", 1.0), **kwargs)
    return Mutator(settings, random.Random(seed))


def random_program(m, sizes=(4, 3, 5)):
    return Program(*(m.random_component(c, size) for c, size in enumerate(sizes)))


def test_random_instructions_respect_address_ranges():
    memory = MemoryShape(4, 3, 2)
    m = mutator(memory=memory)
    seen_out = {S: set(), V: set()}
    for _ in range(5000):
        instruction = m.random_instruction(0)
        op = OPS[instruction.op]
        assert len(instruction.data) == op.data_size
        if op.out is None:
            assert instruction == NOP
            continue
        if op.out in seen_out:
            seen_out[op.out].add(instruction.out)
        assert instruction.out < memory.size(op.out)
        for kind, address in instruction.reads():
            assert 0 <= address < memory.size(kind)
    # s0 (label) and v0 (features) are never written; every other address is.
    assert seen_out[S] == {1, 2, 3} and seen_out[V] == {1, 2}


def test_ops_are_drawn_from_the_component_list():
    m = mutator(ops=((56,), (27, 23), ()))
    assert {m.random_instruction(1).op for _ in range(200)} == {27, 23}
    assert m.mutable == (0, 1)


def test_memory_too_small_for_an_op_is_rejected():
    with pytest.raises(ConfigError, match="MATRIX_SUM"):
        mutator(ops=((39,), (), ()), memory=MemoryShape(4, 3, 0))
    with pytest.raises(ConfigError, match="SCALAR_CONST_SET"):
        mutator(ops=((56,), (), ()), memory=MemoryShape(1, 3, 1))
    with pytest.raises(ConfigError, match="unknown mutation"):
        mutator(mutations=("flip",))


def test_alter_param_changes_one_field_and_keeps_no_ops():
    m = mutator()
    for _ in range(2000):
        parent = random_program(m)
        child = m.mutate(parent)
        changed = [(a, b) for a, b in zip(parent.instructions(), child.instructions(), strict=True)
                   if a != b]
        assert len(child) == len(parent)
        assert len(changed) <= 1
        for old, new in changed:
            assert old.op == new.op
            fields = [f for f in ("out", "in1", "in2", "data")
                      if getattr(old, f) != getattr(new, f)]
            assert len(fields) == 1
    noop = Program((NOP,) * 3, (NOP,), (NOP,) * 2)
    assert m.mutate(noop) == noop


def test_alter_param_probabilities():
    m = mutator()
    instruction = Instruction(op_named("SCALAR_SUM").id, 1, 2, 3)
    fields = Counter()
    for _ in range(6000):
        new = m.alter(instruction)
        for name in ("out", "in1", "in2"):
            if getattr(new, name) != getattr(instruction, name):
                fields[name] += 1
    # Each of in1, in2, out is redrawn 1/3 of the time; a redraw may repeat the old address.
    for name in ("in1", "in2"):
        assert 2000 * 4 / 5 * 0.85 < fields[name] < 2000 * 4 / 5 * 1.15
    assert 2000 * 3 / 4 * 0.85 < fields["out"] < 2000 * 3 / 4 * 1.15

    uniform = Instruction(op_named("SCALAR_UNIFORM_SET").id, 1, 0, 0, (0.5, -0.5))
    altered = [m.alter(uniform) for _ in range(400)]
    data_changed = [a for a in altered if a.data != uniform.data]
    assert 150 < len(data_changed) < 250
    assert all(a.data[0] <= a.data[1] for a in data_changed)  # re-sorted after an alter


def test_randomize_component_keeps_sizes_and_only_mutable_components():
    m = mutator(mutations=("randomize_component_function",), ops=((), (27,), (2, 3)))
    parent = Program((NOP,) * 2, (NOP,) * 3, (NOP,) * 4)
    for _ in range(50):
        child = m.mutate(parent)
        assert child.setup == parent.setup
        assert (len(child.predict), len(child.learn)) == (3, 4)
    m = mutator(mutations=("randomize_algorithm",), ops=((), (27,), (2, 3)))
    child = m.mutate(parent)
    assert child.setup == parent.setup
    assert all(i.op == 27 for i in child.predict) and all(i.op in (2, 3) for i in child.learn)


def test_insert_stops_one_below_max_and_remove_at_min():
    m = mutator(mutations=("insert_instruction",), ops=((56,), (), ()),
                min_sizes=(1, 0, 0), max_sizes=(5, 0, 0))
    program = Program((NOP,), (), ())
    for _ in range(50):
        program = m.mutate(program)
    assert len(program.setup) == 4  # max - 1
    m = mutator(mutations=("remove_instruction",), ops=((56,), (), ()),
                min_sizes=(1, 0, 0), max_sizes=(5, 0, 0))
    for _ in range(50):
        program = m.mutate(program)
    assert len(program.setup) == 1


def test_unlimited_sizes_and_trade_keeps_size():
    m = mutator(mutations=("insert_instruction",), ops=((56,), (), ()))
    program = Program((), (), ())
    for _ in range(30):
        program = m.mutate(program)
    assert len(program.setup) == 30
    m = mutator(mutations=("trade_instruction",), ops=((56,), (), ()))
    for _ in range(30):
        assert len(m.mutate(program).setup) == 30


def test_identity_and_mutate_prob():
    m = mutator(mutations=("identity",))
    program = random_program(m)
    assert m.mutate(program) == program
    m = mutator(mutations=("randomize_algorithm",), mutate_prob=0.9)
    program = random_program(m)
    copies = sum(m.mutate(program) is program for _ in range(4000))
    assert 300 < copies < 500  # ~10% identical copies


def test_mutation_types_are_drawn_uniformly_from_the_list():
    assert len(MUTATIONS) == 8
    m = mutator(mutations=("insert_instruction", "insert_instruction", "remove_instruction"),
                ops=((56,), (), ()))
    grew = 0
    for _ in range(3000):
        grew += len(m.mutate(Program((NOP,) * 3, (), ())).setup) == 4
    assert 1800 < grew < 2200  # 2/3 inserts


def test_generator_populations():
    m = mutator(ops=(DEMO_OPS,) * 3, memory=MemoryShape(4, 3, 1))
    noop = Generator("noop", (10, 2, 8), m).initial_program()
    assert noop == Program((NOP,) * 10, (NOP,) * 2, (NOP,) * 8)
    random_one = Generator("random", (10, 2, 8), m)
    a, b = random_one.initial_program(), random_one.initial_program()
    assert a != b and tuple(map(len, a.components())) == (10, 2, 8)
    assert all(i.op in DEMO_OPS for i in a.instructions())
    linear = Generator("linear", (3, 2, 4), m).initial_program()
    assert linear == pad(linear_program(), (3, 2, 4))
    assert tuple(map(len, linear.components())) == (3, 2, 4)
    assert tuple(map(len, neural_net_program().components())) == (3, 5, 11)
    damaged = neural_net_program(damaged=True)
    assert damaged.setup == neural_net_program().setup[2:]
    assert neural_net_program().memory_shape() == MemoryShape(5, 9, 2)


def test_train_budget_reference_values():
    # Reference §13: unpadded component costs.
    nn = neural_net_program()
    assert tuple(map(component_cost, nn.components())) == (358864510, 26984126, 54920587)
    assert tuple(map(component_cost, linear_program().components())) == (
        3691108, 4294617, 17926908)
    # Reference §6.7: factor 2.
    nn_budget = TrainBudget(baseline_program("neural_net", (0, 0, 0)), 2.0)
    linear_budget = TrainBudget(baseline_program("linear", (0, 0, 0)), 2.0)
    for examples in (10, 100, 1000):
        assert nn_budget.train_examples(nn, examples) == examples
        assert nn_budget.train_examples(linear_program(), examples) == examples
        assert linear_budget.train_examples(nn, examples) == 0
    assert program_cost(nn, 2) == 358864510 + 2 * (26984126 + 54920587)


class _NearOne(random.Random):
    """A generator whose random() is within 2**-25 of 1: rounds to 1.0 as a float32."""

    def random(self):
        return 1 - 2.0**-30


@pytest.mark.parametrize("name", ["VECTOR_CONST_SET", "MATRIX_CONST_SET"])
def test_a_position_drawn_next_to_one_still_indexes_inside_the_vector(name):
    from azc.ops import alter_data, draw_data, index

    op = op_named(name)
    drawn = draw_data(op, _NearOne(0))
    altered = [alter_data(op, drawn, _NearOne(seed)) for seed in range(20)]
    for data in [drawn, *altered]:
        positions = data[:1] if op.data == "vindex" else data[:2]
        for fraction in positions:
            assert 0 <= fraction < 1
            assert index(fraction, 32) == 31
