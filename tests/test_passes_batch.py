"""The batch optimizer against canonicalize, its oracle: canonical arrays equal to canonicalize's
programs bit for bit, and hashes equal exactly when those programs are, on random programs over
every op and several memories, demo programs, and children made by the batch mutator."""

import math
import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azc.generator import linear_program, neural_net_program
from azc.ir import Instruction, MemoryShape, Program
from azc.mutate_batch import BatchMutator, programs_to_arrays
from azc.mutator import MUTATIONS, MutationSettings
from azc.ops import OPS, S, op_named
from azc.passes_batch import (
    canonical_arrays,
    program_arrays,
    program_hashes,
    structural_hashes,
    to_programs,
)
from azc.passes_fused import FOLDS, canonicalize
from tests.strategies import programs as program_strategy
from tests.strategies import usable_ops
from tests.test_hashing import renamed
from tests.test_passes import DEMO_OPS

# Constants that make folds exact, overflow, divide by zero and keep signed zeros apart.
VALUES = (0.0, -0.0, 0.5, -0.25, 1.0, -1.0, 2.0, 3.0, 1e308, -1e308, 5e-324, 0.1)
MEMORIES = (MemoryShape(4, 3, 1), MemoryShape(2, 2, 1), MemoryShape(8, 6, 4),
            MemoryShape(6, 5, 3), MemoryShape(22, 21, 21))


def bits(program: Program) -> tuple:
    """The program with its constants as bit patterns: == takes -0.0 for 0.0."""
    return tuple(tuple((i.op, i.out, i.in1, i.in2, tuple(struct.pack("<d", x) for x in i.data))
                       for i in c) for c in program.components())


def random_instruction(rng: random.Random, memory: MemoryShape, ops) -> Instruction:
    op = rng.choice(ops)
    if op.out is None:
        return Instruction(0)
    ins = [rng.randrange(memory.size(kind)) for kind in op.ins] + [0, 0]
    data = [rng.choice(VALUES) for _ in range(op.data_size)]
    if op.data in ("vindex", "mindex"):  # index fractions lie in [0, 1)
        data[:-1] = [rng.choice((0.0, 0.25, 0.5)) for _ in data[:-1]]
    out = rng.randrange(memory.size(op.out))
    if op.out == S and rng.random() < 0.4:  # writing the prediction keeps programs alive
        out = 1
    return Instruction(op.id, out, ins[0], ins[1], tuple(data))


def random_programs(rng, count, memory, ops=None, sizes=(8, 4, 8)) -> list[Program]:
    ops = ops or usable_ops(memory)
    return [Program(*(tuple(random_instruction(rng, memory, ops)
                            for _ in range(rng.randrange(top + 1))) for top in sizes))
            for _ in range(count)]


def batch(programs, capacities=None):
    capacities = capacities or tuple(max((len(p.components()[c]) for p in programs), default=0)
                                     for c in range(3))
    return (*programs_to_arrays(programs, capacities), capacities)


def assert_canonical(programs, capacities=None):
    """The batch's canonical programs are canonicalize's, and its hashes the reference's."""
    arrays = batch(programs, capacities)
    got = to_programs(*canonical_arrays(*arrays))
    for program, canonical in zip(programs, got, strict=True):
        assert bits(canonical) == bits(canonicalize(program)), program
    assert (structural_hashes(*arrays) == program_hashes(programs)).all()


def assert_hash_equivalence(programs):
    """Equal hashes exactly for equal canonical forms, over every pair of the programs."""
    hashes = structural_hashes(*batch(programs)).tolist()
    forms = [bits(canonicalize(p)) for p in programs]
    by_form, by_hash = {}, {}
    for h, form in zip(hashes, forms, strict=True):
        assert by_form.setdefault(form, h) == h  # equal forms, equal hashes
        assert by_hash.setdefault(h, form) == form  # equal hashes, equal forms


@pytest.mark.parametrize("memory", MEMORIES, ids=str)
def test_canonical_arrays_are_canonicalize_over_all_ops(memory):
    assert_canonical(random_programs(random.Random(str(memory)), 1500, memory))


def test_canonical_arrays_are_canonicalize_on_demo_programs_and_models():
    rng = random.Random(3)
    demo = [op for op in DEMO_OPS if op.id]
    programs = random_programs(rng, 2000, MemoryShape(4, 3, 1), demo, sizes=(10, 2, 8))
    assert_canonical(programs + [linear_program(), neural_net_program(), Program()])


@pytest.mark.parametrize("memory", [MemoryShape(30, 25, 22), MemoryShape(22, 22, 22)], ids=str)
def test_rows_too_wide_for_the_masks_go_through_canonicalize(memory):
    """Locations past bit 63: addresses above 21, and v21 or m21 among addresses up to 21."""
    rng = random.Random(5)
    assert_canonical(random_programs(rng, 300, memory)
                     + random_programs(rng, 300, MemoryShape(4, 3, 1)))


def test_folds_of_infinities_and_nans_are_canonicalize_folds():
    """Constant sets of inf and NaN (no mutation draws them, but a program may hold them):
    min, max and heaviside of them can be finite, and std::min's NaN rule shows."""
    rng = random.Random(23)
    folding = [OPS[i] for i in FOLDS] + [op_named("SCALAR_CONST_SET")] * 4
    odd = [math.inf, -math.inf, math.nan, 0.0, -0.0, 1.0]
    programs = []
    for program in random_programs(rng, 1500, MemoryShape(3, 1, 1), folding, sizes=(6, 3, 3)):
        setup = tuple(Instruction(56, i.out, data=(rng.choice(odd),)) if i.op == 56 else i
                      for i in program.setup)
        programs.append(program.replace(setup=setup))
    assert_canonical(programs)


def test_padding_slots_change_nothing():
    rng = random.Random(7)
    programs = random_programs(rng, 300, MemoryShape(4, 3, 1))
    tight = structural_hashes(*batch(programs))
    loose = structural_hashes(*batch(programs, (12, 7, 10)))
    assert (tight == loose).all()


def test_empty_batches_components_and_capacities():
    assert structural_hashes(np.zeros((0, 5, 4), np.int64), np.zeros((0, 5, 3)),
                             np.zeros((0, 3), np.int64), (2, 1, 2)).shape == (0,)
    programs = [Program(), linear_program().replace(setup=())]
    assert_canonical(programs, (0, 3, 6))
    assert_canonical([Program()], (0, 0, 0))


@settings(max_examples=25, deadline=None)
@given(st.lists(program_strategy(max_size=8, memory=MemoryShape(4, 3, 1)), min_size=1,
                max_size=60))
def test_canonical_arrays_are_canonicalize_on_awkward_constants(programs):
    assert_canonical(programs)


def with_dead_code(program: Program, rng: random.Random) -> Program:
    """No-ops anywhere, and a write to s0 ending each component (the executor overwrites s0
    before every Predict and Learn, so it is never read)."""
    components = []
    for component in program.components():
        component = list(component)
        for _ in range(rng.randrange(3)):
            component.insert(rng.randrange(len(component) + 1), Instruction(0))
        component.append(Instruction(56, 0, data=(rng.choice(VALUES),)))
        components.append(tuple(component))
    return Program(*components)


def test_rewrites_that_keep_the_canonical_form_keep_the_hash():
    """Renamed addresses, commuted operands, dead code, and the canonical form itself."""
    rng = random.Random(9)
    memory = MemoryShape(6, 5, 3)  # the memory tests.test_hashing.renamed permutes
    originals = random_programs(rng, 600, memory)
    variants = ([renamed(p, rng) for p in originals]
                + [with_dead_code(p, rng) for p in originals]
                + [canonicalize(p) for p in originals])
    programs = originals + variants
    hashes = structural_hashes(*batch(programs)).reshape(4, -1)
    assert (hashes == hashes[0]).all()
    assert_hash_equivalence(programs + random_programs(rng, 600, memory))


def test_hashes_tell_apart_exactly_what_canonicalize_tells_apart():
    rng = random.Random(13)
    memory = MemoryShape(3, 2, 1)  # a small memory: many programs share a canonical form
    programs = random_programs(rng, 3000, memory, sizes=(3, 2, 3))
    assert len({bits(canonicalize(p)) for p in programs}) < len(programs)
    assert_hash_equivalence(programs)


def mutated_children(memory, ops, count, seed, rounds=3):
    """Parents and children of several rounds of the batch mutator (children share most of
    their parents' instructions), as Programs."""
    rng = random.Random(seed)
    parents = random_programs(rng, count, memory, ops, sizes=(8, 4, 8))
    ids = tuple(op.id for op in ops)
    mutation = MutationSettings(memory, (ids, ids, ids), tuple(MUTATIONS), 1.0,
                                (0, 1, 0), (9, 5, 9))
    capacities = (9, 5, 9)
    mutator = BatchMutator(mutation, capacities, np.random.default_rng(seed))
    codes, data, sizes = programs_to_arrays(parents, capacities)
    rows = [(codes.copy(), data.copy(), sizes.copy())]
    for _ in range(rounds):
        mutator.mutate(codes, data, sizes)
        rows.append((codes.copy(), data.copy(), sizes.copy()))
    return [np.concatenate(x) for x in zip(*rows, strict=True)], capacities


@pytest.mark.parametrize("ops", ["all", "demo"])
def test_children_of_the_batch_mutator_hash_as_canonicalize_says(ops):
    memory = MemoryShape(4, 3, 1)
    chosen = [op for op in usable_ops(memory) if op.out] if ops == "all" else [
        op for op in DEMO_OPS if op.id]
    (codes, data, sizes), capacities = mutated_children(memory, chosen, 500, seed=17)
    from azc.mutate_batch import arrays_to_program

    programs = [arrays_to_program(c, d, capacities, n)
                for c, d, n in zip(codes, data, sizes, strict=True)]
    got = to_programs(*canonical_arrays(codes, data, sizes, capacities))
    for program, canonical in zip(programs, got, strict=True):
        assert bits(canonical) == bits(canonicalize(program)), program
    assert (structural_hashes(codes, data, sizes, capacities) == program_hashes(programs)).all()
    assert_hash_equivalence(programs)


def test_program_arrays_round_trip():
    rng = random.Random(19)
    programs = random_programs(rng, 200, MemoryShape(4, 3, 1))
    assert [bits(p) for p in to_programs(*program_arrays(programs))] == [
        bits(p) for p in programs]


def test_hashes_are_pinned():
    """The hash must not change between runs, machines or processes: it keys caches."""
    hashes = structural_hashes(*batch([linear_program(), neural_net_program(), Program()]))
    assert hashes.tolist() == [6366287189199668315, 7307113152582927410, 11568531725670601284]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_canonical_arrays_are_canonicalize_many(seed):
    rng = random.Random(seed)
    for memory in MEMORIES:
        assert_canonical(random_programs(rng, 5000, memory))
    (codes, data, sizes), capacities = mutated_children(
        MemoryShape(4, 3, 1), [op for op in usable_ops(MemoryShape(4, 3, 1)) if op.out], 2000,
        seed)
    from azc.mutate_batch import arrays_to_program

    programs = [arrays_to_program(c, d, capacities, n)
                for c, d, n in zip(codes, data, sizes, strict=True)]
    assert_hash_equivalence(programs)
    assert (structural_hashes(codes, data, sizes, capacities) == program_hashes(programs)).all()
