"""The native engines against the NumPy reference executor: same fitness, bit for bit."""

import random

import numpy as np
import pytest

from azc.engine import make_evaluator, pack, program_arrays
from azc.engine_pack import RecordCache
from azc.errors import AzcError
from azc.ir import Instruction, MemoryShape, Program
from azc.ops import OPS, draw_data
from azc.reference import ReferenceEvaluator
from azc.tasks import ACCURACY, RMS, Task, TaskSpec, make_tasks

MEMORY = MemoryShape(4, 3, 2)
LINEAR = Program(setup=(Instruction(56, 2, data=(0.01,)),),
                 predict=(Instruction(27, 1, 1, 0),),
                 learn=(Instruction(2, 3, 0, 1), Instruction(3, 3, 2, 3),
                        Instruction(18, 2, 3, 0), Instruction(23, 1, 1, 2)))


def random_task(rand: np.random.RandomState, F, eval_type, train=12, valid=6, epochs=1, scale=1.0):
    orders = np.stack([rand.permutation(train) for _ in range(epochs)])
    labels = rand.randint(0, 2, train + valid) * 1.0 if eval_type == ACCURACY else (
        rand.normal(size=train + valid) * scale)
    features = rand.normal(size=(train + valid, F)) * scale
    return Task(f"random-{eval_type}", features[:train], labels[:train], features[train:],
                labels[train:], eval_type, orders)


def random_instruction(rand: random.Random, memory: MemoryShape, ops) -> Instruction:
    op = OPS[rand.choice(ops)]
    if op.out is None:
        return Instruction(0)
    addresses = [rand.randrange(memory.size(kind)) for kind in (op.out,) + op.ins]
    addresses += [0] * (3 - len(addresses))
    if op.out == "s" and rand.random() < 0.4:  # make the prediction depend on the program
        addresses[0] = 1
    data = draw_data(op, rand)
    if op.data in ("const", "uniform", "gaussian") and rand.random() < 0.2:
        data = tuple(rand.choice((0.0, 1e300, -3.0, 2.0)) for _ in data)
    return Instruction(op.id, *addresses, data=data)


def random_program(rand: random.Random, memory=MEMORY, ops=None, sizes=(3, 4, 5)) -> Program:
    ops = ops or [op.id for op in OPS]
    return Program(*(tuple(random_instruction(rand, memory, ops)
                           for _ in range(rand.randint(0, size))) for size in sizes))


def assert_same(native, reference, programs):
    got = native.fitness_batch(programs)
    distinct = set()
    for program, fitness in zip(programs, got, strict=True):
        expected = reference.evaluate(program)
        assert fitness == pytest.approx(expected.fitness, rel=1e-12, abs=1e-300), program
        assert native.evaluate(program) == expected, program
        distinct.add(expected.task_fitness)
    assert len(distinct) >= len(programs) // 10, "too few programs behave differently"


def test_linear_program_matches_reference_exactly():
    tasks = make_tasks(TaskSpec("linear", 4, 100, 100, num_tasks=10))
    native = make_evaluator(tasks, MemoryShape(4, 3, 1), ops=[56, 27, 2, 3, 18, 23])
    expected = ReferenceEvaluator(tasks, MemoryShape(4, 3, 1)).evaluate(LINEAR)
    assert native.evaluate(LINEAR) == expected


@pytest.mark.parametrize("F", [2, 4, 8, 16, 32])
def test_random_programs_of_all_ops_match_reference(F):
    rand, data = random.Random(F), np.random.RandomState(F)
    # Mixed groups: one-epoch RMS tasks, two-epoch classifiers, and large-valued RMS tasks.
    tasks = [random_task(data, F, RMS), random_task(data, F, RMS, scale=30.0),
             random_task(data, F, ACCURACY, epochs=2), random_task(data, F, ACCURACY, epochs=2)]
    native = make_evaluator(tasks, MEMORY, seed=7)
    reference = ReferenceEvaluator(tasks, MEMORY, seed=7)
    assert_same(native, reference, [random_program(rand) for _ in range(40 if F < 32 else 12)])


def test_aliasing_products_and_transpose():
    rand, data = random.Random(1), np.random.RandomState(1)
    tasks = [random_task(data, 4, RMS, scale=0.3) for _ in range(3)]
    setup = (Instruction(64, 0, data=(0.0, 0.5)), Instruction(63, 1, data=(0.0, 0.5)),
             Instruction(64, 1, data=(0.1, 0.3)))
    cases = [Instruction(37, 0, 0), Instruction(31, 1, 0, 1), Instruction(43, 0, 0, 0),
             Instruction(43, 1, 0, 1), Instruction(43, 0, 1, 0), Instruction(28, 0, 1, 1)]
    programs = [Program(setup, (case, Instruction(27, 1, 1, 0)), (case,)) for case in cases]
    programs += [random_program(rand, ops=[31, 37, 43, 28, 27, 21, 64]) for _ in range(10)]
    assert_same(make_evaluator(tasks, MEMORY), ReferenceEvaluator(tasks, MEMORY), programs)


def test_division_by_zero_and_nan_stop_early():
    tasks = make_tasks(TaskSpec("linear", 4, 20, 10, num_tasks=3))
    zero = Program(predict=(Instruction(4, 1, 2, 3),))  # 0 / 0 = NaN
    inf = Program(setup=(Instruction(56, 2, data=(1.0,)),), predict=(Instruction(4, 1, 2, 3),))
    native = make_evaluator(tasks, MEMORY)
    assert list(native.fitness_batch([zero, inf])) == [0.0, 0.0]


def test_fingerprints_match_reference_recording():
    from azc.reference import run_task
    rand, data = random.Random(3), np.random.RandomState(3)
    tasks = [random_task(data, 4, RMS), random_task(data, 4, ACCURACY)]
    programs = [random_program(rand) for _ in range(20)] + [LINEAR]
    native = make_evaluator(tasks, MEMORY, num_train=10, num_valid=5, seed=235732282)
    prints = native.fingerprints(programs)
    assert prints.train_errors.shape == (len(programs), 2, 10)
    for p, program in enumerate(programs):
        for t, task in enumerate(tasks):
            run = run_task(program, task, memory=MEMORY, num_train=10, num_valid=5,
                           seed=235732282, task_index=t, record=True)
            assert prints.train_counts[p, t] == len(run.train_errors)
            assert prints.valid_counts[p, t] == len(run.valid_errors)
            assert list(prints.train_errors[p, t, :len(run.train_errors)]) == run.train_errors
            assert list(prints.valid_errors[p, t, :len(run.valid_errors)]) == run.valid_errors


def test_pack_rejects_out_of_range_programs():
    bad = [Program(predict=(Instruction(1, 9, 0, 0),)),
           Program(setup=(Instruction(57, 1, data=(1.5, 0.0)),)),
           Program(setup=(Instruction(58, 0, data=(0.5, -0.3, 0.0)),))]
    for program in bad:
        with pytest.raises(AzcError, match="program 0"):
            pack(*program_arrays([program]), MEMORY, 4)
    with pytest.raises(AzcError, match="unknown op"):
        pack(np.array([[70, 0, 0, 0]]), np.zeros((1, 3)), np.array([[1, 0, 0]]), MEMORY, 4)


def test_record_cache_packs_as_pack_does():
    rand = random.Random(5)
    ops = [op.id for op in OPS]
    cache = RecordCache(MEMORY, 4, ops)
    programs = [random_program(rand) for _ in range(20)]
    for _ in range(3):  # children share component tuples and instructions with parents
        programs += [p.replace(learn=p.learn[1:], setup=[  # new data, known addressing
            i._replace(data=tuple(x * 0.5 for x in i.data)) for i in p.setup])
            for p in programs[-20:]]
        packed = cache.pack(programs[-25:])
        expected = pack(*program_arrays(programs[-25:]), MEMORY, 4, ops)
        assert np.array_equal(packed.records, expected.records)
        assert np.array_equal(packed.offsets, expected.offsets)


def test_record_cache_holds_two_generations_and_still_packs_as_pack_does(monkeypatch):
    # It holds every component it remembers alive: unbounded, 100,000 compiled random
    # programs grew the process by ~5 KB each.
    monkeypatch.setattr(RecordCache, "LIMIT", 30)
    rand = random.Random(6)
    ops = [op.id for op in OPS]
    cache = RecordCache(MEMORY, 4, ops)
    parents = [random_program(rand) for _ in range(8)]
    for _ in range(40):
        batch = parents[:4] + [random_program(rand) for _ in range(6)]  # old and new components
        packed = cache.pack(batch)
        expected = pack(*program_arrays(batch), MEMORY, 4, ops)
        assert np.array_equal(packed.records, expected.records)
        assert np.array_equal(packed.offsets, expected.offsets)
        assert len(cache.components) + len(cache.previous) <= 2 * (30 + 3 * len(batch))
        assert cache.used <= 4 * 30 * 16
    assert all(id(c) in cache.components or id(c) in cache.previous
               for p in parents[:4] for c in (p.setup, p.predict, p.learn))


def test_record_cache_tells_negative_zero_from_zero():
    plus, minus = (Program(setup=(Instruction(56, 2, data=(x,)),)) for x in (0.0, -0.0))
    records = RecordCache(MEMORY, 4).pack([plus, minus]).records
    assert records[0, 6] == np.float64(0.0).view(np.int64)
    assert records[1, 6] == np.float64(-0.0).view(np.int64)
    data = program_arrays([plus, minus])[1]
    assert list(np.signbit(data[:, 0])) == [False, True]


def test_record_cache_names_the_program_at_fault():
    good, bad = LINEAR, Program(predict=(Instruction(1, 9, 0, 0),))
    with pytest.raises(AzcError, match="program 1"):
        RecordCache(MEMORY, 4).pack([good, bad])


@pytest.mark.parametrize("F", [2, 8, 32])
def test_tier2_matches_reference(F, caplog):
    rand, data = random.Random(10 + F), np.random.RandomState(F)
    tasks = [random_task(data, F, RMS), random_task(data, F, ACCURACY, epochs=2),
             random_task(data, F, RMS, scale=0.2)]
    native = make_evaluator(tasks, MEMORY, seed=3, engine="jit")
    reference = ReferenceEvaluator(tasks, MEMORY, seed=3)
    programs = [random_program(rand) for _ in range(30 if F < 32 else 10)] + [LINEAR]
    with caplog.at_level("WARNING", logger="azc"):
        assert_same(native, reference, programs)
    assert "tier-2 compilation failed" not in caplog.text


def test_evaluator_without_op_list_grows_to_new_ops():
    tasks = make_tasks(TaskSpec("linear", 4, 20, 10, num_tasks=2))
    native = make_evaluator(tasks, MEMORY)
    reference = ReferenceEvaluator(tasks, MEMORY)
    assert native.evaluate(LINEAR) == reference.evaluate(LINEAR)
    assert native.ops == (2, 3, 18, 23, 27, 56)
    other = Program(predict=(Instruction(13, 1, 2), Instruction(21, 2, 0)))
    assert native.evaluate(other) == reference.evaluate(other)
    assert len(native.ops) == 64


def test_lane_blocks_of_any_width_agree():
    rand, data = random.Random(21), np.random.RandomState(21)
    tasks = [random_task(data, 8, RMS, epochs=2) for _ in range(7)]
    reference = ReferenceEvaluator(tasks, MEMORY)
    programs = [random_program(rand) for _ in range(15)]
    for lanes in (1, 3):
        assert_same(make_evaluator(tasks, MEMORY, lanes=lanes), reference, programs)


def test_dead_code_pruning_keeps_draws_and_partial_writes():
    tasks = make_tasks(TaskSpec("linear", 4, 20, 10, num_tasks=3))
    programs = [
        # the dead draw into s3 shifts the stream s2 is drawn from: it must stay
        Program(setup=(Instruction(59, 3, data=(0.0, 1.0)), Instruction(62, 2, data=(0.0, 1.0))),
                predict=(Instruction(1, 1, 2, 2),)),
        # a partial write reads the rest of its vector: v1 must keep its earlier value
        Program(setup=(Instruction(19, 1, 2), Instruction(56, 2, data=(0.5,))),
                predict=(Instruction(57, 1, data=(0.3, 2.0)), Instruction(27, 1, 1, 0))),
        # learn feeds predict through memory; an overwritten value is dead
        Program(predict=(Instruction(27, 1, 1, 0), Instruction(1, 3, 3, 3)),
                learn=(Instruction(2, 3, 0, 1), Instruction(18, 2, 3, 0),
                       Instruction(56, 3, data=(0.25,)), Instruction(23, 1, 1, 2))),
        # Predict overwrites v0: Learn must see the features again
        Program(setup=(Instruction(63, 1, data=(0.0, 0.1)),),
                predict=(Instruction(27, 1, 1, 0), Instruction(19, 0, 1)),
                learn=(Instruction(2, 3, 0, 1), Instruction(18, 2, 3, 0),
                       Instruction(23, 1, 1, 2))),
    ]
    native = make_evaluator(tasks, MEMORY)
    reference = ReferenceEvaluator(tasks, MEMORY)
    for program in programs:
        assert native.evaluate(program) == reference.evaluate(program)


def test_median_combination_and_memory_without_reserved_addresses():
    rand, data = random.Random(8), np.random.RandomState(8)
    tasks = [random_task(data, 4, RMS, scale=s) for s in (0.1, 1.0, 3.0, 0.5)]
    programs = [random_program(rand) for _ in range(10)] + [LINEAR]
    native = make_evaluator(tasks, MEMORY, combine="median")
    reference = ReferenceEvaluator(tasks, MEMORY, combine="median")
    assert list(native.fitness_batch(programs)) == list(reference.fitness_batch(programs))
    with pytest.raises(AzcError, match="reserved"):
        make_evaluator(tasks, MemoryShape(1, 1, 0)).evaluate(Program())


def test_auto_compiles_only_big_evaluations(monkeypatch):
    from azc import engine
    monkeypatch.setattr(engine, "COMPILE_SECONDS", 1e-3)
    data = np.random.RandomState(2)
    small = [random_task(data, 4, RMS) for _ in range(2)]
    big = [random_task(data, 4, RMS, train=100_000, valid=10) for _ in range(2)]
    chain = tuple(Instruction(23, 2, 2, 0) for _ in range(20))  # all live: v2 += v0
    program = Program(predict=(Instruction(27, 1, 1, 0),),
                      learn=chain + (Instruction(23, 1, 1, 2),))
    for tasks, compiles in ((small, False), (big, True)):
        native = make_evaluator(tasks, MEMORY)
        kernel = native._binding(MEMORY)[0]
        assert native._use_jit(kernel, native.pack([program], MEMORY)) == compiles


def test_fitness_from_compact_arrays():
    tasks = make_tasks(TaskSpec("linear", 4, 20, 10, num_tasks=3))
    rand = random.Random(4)
    programs = [random_program(rand) for _ in range(10)] + [LINEAR]
    native = make_evaluator(tasks, MEMORY)
    expected = ReferenceEvaluator(tasks, MEMORY).fitness_batch(programs)
    assert list(native.fitness_arrays(*program_arrays(programs), MEMORY)) == list(expected)


@pytest.mark.parametrize("tier", ["interp", "jit"])
def test_a_batch_draws_from_the_seed_it_is_given_and_the_evaluator_keeps_its_own(tier):
    rand, data = random.Random(77), np.random.RandomState(77)
    tasks = [random_task(data, 4, RMS), random_task(data, 4, ACCURACY, epochs=2)]
    native = make_evaluator(tasks, MEMORY, seed=3, engine=tier)
    drawing = [p for p in (random_program(rand, ops=[op.id for op in OPS if op.random] + [27, 1])
                           for _ in range(60)) if any(OPS[i.op].random for c in p.components()
                                                      for i in c)][:12]
    own = native.fitness_batch(drawing)
    for seed in (5, 2**63 + 11):
        expected = ReferenceEvaluator(tasks, MEMORY, seed=seed).fitness_batch(drawing)
        assert list(native.fitness_batch(drawing, seed=seed)) == list(expected)
    assert list(native.fitness_batch(drawing)) == list(own)  # its own streams are back
    assert not np.array_equal(native.fitness_batch(drawing, seed=5), own)
