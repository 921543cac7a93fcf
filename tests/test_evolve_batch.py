"""Batch evolution: the vectorized mutator against the scalar one, and the loop against the engine.

Distribution tests draw many children both ways and compare with two-sample tests (chi-square
for categories, Kolmogorov-Smirnov for values) at p < 1e-4: seeds are fixed, so a test fails
only on a real difference, such as a field altered with probability 1/2 instead of 1/3 or a
flip rate of 0.2 instead of 0.1 (each moves a statistic by far more than its noise).
"""

import dataclasses
import json
import random
from collections import Counter

import numpy as np
import pytest
from scipy import stats

from azc.config import read_toml
from azc.engine_pack import pack
from azc.errors import AzcError, ConfigError
from azc.experiment import Budget, experiment_from, load_experiment, replace_settings
from azc.ir import NOP, Instruction, MemoryShape
from azc.mutate_batch import BatchMutator, arrays_to_program, programs_to_arrays
from azc.mutator import MutationSettings, Mutator, address_ranges
from azc.ops import OPS, op_named
from azc.pack_batch import RecordTable, hash_rows, recorded_errors, subset
from azc.search import Search
from tests.test_experiment import EXPERIMENTS

P_MIN = 1e-4
MEMORY = MemoryShape(5, 4, 2)
NAMES = ("SCALAR_SUM", "SCALAR_VECTOR_PRODUCT", "VECTOR_ABS", "MATRIX_VECTOR_PRODUCT",
         "SCALAR_CONST_SET", "VECTOR_CONST_SET", "MATRIX_CONST_SET", "SCALAR_UNIFORM_SET",
         "VECTOR_GAUSSIAN_SET")
ALL_ACTIONS = ("alter_param", "randomize_instruction", "randomize_component_function",
               "identity", "randomize_algorithm")
RESIZING = ("alter_param", "insert_instruction", "remove_instruction", "trade_instruction")


def settings(mutations=ALL_ACTIONS, prob=0.9, min_sizes=(0, 0, 0), max_sizes=(0, 0, 0)):
    ops = tuple(op_named(n).id for n in NAMES)
    return MutationSettings(MEMORY, (ops[4:], ops[:3], ops), mutations=mutations,
                            mutate_prob=prob, min_sizes=min_sizes, max_sizes=max_sizes)


def both(mutations=ALL_ACTIONS, prob=0.9, capacities=(3, 2, 4), seed=1, **sizes):
    s = settings(mutations, prob, **sizes)
    return (Mutator(s, random.Random(seed)),
            BatchMutator(s, capacities, np.random.default_rng(seed)))


def same_distribution(a, b):
    """Chi-square two-sample test of two lists of hashable outcomes."""
    ca, cb = Counter(a), Counter(b)
    keys = sorted(set(ca) | set(cb), key=repr)
    table = np.array([[ca[k] for k in keys], [cb[k] for k in keys]])
    if len(keys) < 2:
        return
    p = stats.chi2_contingency(table)[1]
    assert p > P_MIN, (p, dict(ca), dict(cb))


def same_values(a, b):
    assert stats.ks_2samp(a, b).pvalue > P_MIN


def batch_instructions(codes, data):
    return [Instruction(*c, tuple(d[:OPS[c[0]].data_size]))
            for c, d in zip(codes.tolist(), data.tolist(), strict=True)]


# --- the mutator ---------------------------------------------------------------------------------


@pytest.mark.parametrize("component", [0, 1, 2])
def test_random_instructions_match_the_scalar_mutator(component):
    scalar, batch = both()
    n = 12_000
    ours = batch_instructions(*batch.random_instructions(np.full(n, component)))
    theirs = [scalar.random_instruction(component) for _ in range(n)]
    same_distribution([i[:4] for i in ours], [i[:4] for i in theirs])
    for op in {i.op for i in theirs if OPS[i.op].data}:
        for field in range(OPS[op].data_size):
            same_values([i.data[field] for i in ours if i.op == op],
                        [i.data[field] for i in theirs if i.op == op])


PARENTS = [Instruction(op_named(name).id, out, in1, in2, data) for name, out, in1, in2, data in (
    ("SCALAR_SUM", 2, 3, 4, ()), ("SCALAR_VECTOR_PRODUCT", 1, 2, 3, ()),
    ("VECTOR_ABS", 2, 1, 0, ()), ("SCALAR_CONST_SET", 3, 0, 0, (0.5,)),
    ("SCALAR_CONST_SET", 3, 0, 0, (0.0,)), ("VECTOR_CONST_SET", 1, 0, 0, (0.25, -0.75)),
    ("MATRIX_CONST_SET", 1, 0, 0, (0.125, 0.625, 0.375)),
    ("SCALAR_UNIFORM_SET", 2, 0, 0, (-0.25, 0.5)), ("VECTOR_GAUSSIAN_SET", 3, 0, 0, (0.125, 0.25)),
)] + [NOP]


@pytest.mark.parametrize("parent", PARENTS, ids=lambda i: OPS[i.op].name)
def test_alter_matches_the_scalar_mutator(parent):
    scalar, batch = both()
    n = 8000
    codes = np.tile(np.array(parent[:4], np.int64), (n, 1))
    data = np.zeros((n, 3))
    data[:, :len(parent.data)] = parent.data
    ours = batch_instructions(*batch.alter(codes, data))
    theirs = [scalar.alter(parent) for _ in range(n)]

    def outcome(child):  # which field changed, to what address, and a flip
        fields = tuple(k for k in range(4) if child[k] != parent[k])
        flips = tuple(new == -old != 0 for new, old in zip(child.data, parent.data, strict=True))
        moved = tuple(k for k, (new, old) in enumerate(zip(child.data, parent.data, strict=True))
                      if new != old)
        return fields, tuple(child[k] for k in fields), flips, moved

    same_distribution([outcome(c) for c in ours], [outcome(c) for c in theirs])
    for field in range(len(parent.data)):  # the new values, flips and log-normal scales alike
        same_values([c.data[field] for c in ours], [c.data[field] for c in theirs])
    if OPS[parent.op].data == "uniform":
        assert all(c.data[0] <= c.data[1] for c in ours)


@pytest.mark.parametrize("mutations", [ALL_ACTIONS, RESIZING], ids=["fixed", "resizing"])
def test_mutate_matches_the_scalar_mutator(mutations):
    limits = dict(min_sizes=(2, 1, 3), max_sizes=(5, 3, 6))
    capacities = (4, 2, 5)
    scalar, batch = both(mutations, capacities=capacities, **limits)
    # sizes at, inside and below the limits: (4, 2, 3) cannot grow setup and predict
    parent = scalar.mutate(_random_program(scalar, (4, 2, 3)), 1)
    codes, data, sizes = programs_to_arrays([parent], capacities)
    n = 12_000
    children, children_data = np.repeat(codes, n, 0), np.repeat(data, n, 0)
    children_sizes = np.repeat(sizes, n, 0)
    changed = batch.mutate(children, children_data, children_sizes)
    ours = [arrays_to_program(*row, capacities, size) for *row, size in zip(
        children, children_data, children_sizes, strict=True)]
    theirs = [scalar.mutate(parent) for _ in range(n)]
    assert [p != parent for p in ours] == changed.tolist()
    assert all(p.memory_shape() for p in ours)

    def signature(child):  # per component: its size, and which of the parent's slots differ
        return tuple((len(c), tuple(k for k, (a, b) in enumerate(zip(c, p, strict=False))
                                            if a != b))
                     for c, p in zip(child.components(), parent.components(), strict=True))

    same_distribution([signature(c) for c in ours], [signature(c) for c in theirs])
    ops = [i.op for c in ours for i in c.instructions()]
    same_distribution(ops, [i.op for c in theirs for i in c.instructions()])


def test_mutate_prob_and_identity():
    scalar, batch = both(("identity",), prob=0.5)
    codes, data, sizes = programs_to_arrays([_random_program(scalar, (3, 2, 4))] * 100,
                                            (3, 2, 4))
    new_codes, new_data = codes.copy(), data.copy()
    changed = batch.mutate(new_codes, new_data, sizes)
    assert not changed.any() and (new_codes == codes).all() and (new_data == data).all()


def _random_program(mutator, lengths):
    from azc.ir import Program

    return Program(*(mutator.random_component(c, n) for c, n in enumerate(lengths)))


@pytest.mark.parametrize("mutations", [ALL_ACTIONS, RESIZING], ids=["fixed", "resizing"])
def test_children_are_valid_programs_for_the_settings(mutations):
    limits = dict(min_sizes=(1, 1, 2), max_sizes=(5, 3, 6))
    capacities = (4, 2, 5)
    scalar, batch = both(mutations, capacities=capacities, **limits)
    codes, data, sizes = programs_to_arrays(
        [_random_program(scalar, (3, 2, 4)) for _ in range(400)], capacities)
    ranges = address_ranges(MEMORY)
    allowed = settings().ops
    for _ in range(30):  # generations of children of children
        batch.mutate(codes, data, sizes)
        assert (sizes >= [1, 1, 2]).all() and (sizes <= [4, 2, 5]).all()
        for *row, size in zip(codes, data, sizes, strict=True):
            program = arrays_to_program(*row, capacities, size)
            assert tuple(len(c) for c in program.components()) == tuple(size)
            for c, component in enumerate(program.components()):
                for i in component:
                    op = OPS[i.op]
                    assert i.op in allowed[c]
                    assert i.out in ranges[op.out][0]
                    for kind, address in zip(op.ins, (i.in1, i.in2), strict=False):
                        assert address in ranges[kind][1]
                    if op.data in ("vindex", "mindex"):
                        assert all(0 <= x < 1 for x in i.data[:op.data_size - 1])
        component_of = np.repeat([0, 1, 2], capacities)
        within = np.arange(11) - np.repeat([0, 4, 6], capacities)  # slot in its component
        padding = within[None, :] >= sizes[:, component_of]
        assert (codes[padding] == 0).all() and (data[padding] == 0).all()
        for k in range(data.shape[1]):  # unused data fields stay zero
            fields = np.array([OPS[o].data_size for o in codes[:, k, 0]])
            assert (data[:, k][np.arange(3) >= fields[:, None]] == 0).all()


def test_insertion_without_a_max_size_is_refused():
    with pytest.raises(ConfigError, match=r"\[setup\] max_size"):
        BatchMutator(settings(("alter_param", "insert_instruction")), (3, 2, 4),
                     np.random.default_rng(0))


@pytest.mark.parametrize("memory", [MEMORY, MemoryShape(70, 4, 2)], ids=["table", "fallback"])
def test_record_table_packs_as_engine_pack_does(memory):
    scalar, batch = both()
    lengths = (3, 2, 4)
    programs = [_random_program(scalar, lengths) for _ in range(300)]
    programs[0] = programs[0].replace(setup=(NOP, NOP, NOP))  # an empty component
    codes, data, _ = programs_to_arrays(programs, lengths)
    data[1, 0, 0] = -0.0
    ops = sorted(set().union(*settings().ops))
    table = RecordTable(memory, 4, ops)
    assert (table.table is None) == (memory.scalars == 70)
    ours = table.pack(codes, data, lengths)
    theirs = pack(codes.reshape(-1, 4), data.reshape(-1, 3), np.tile(lengths, (300, 1)),
                  memory, 4, ops)
    np.testing.assert_array_equal(ours.records, theirs.records)
    np.testing.assert_array_equal(ours.offsets, theirs.offsets)
    chosen = np.array([5, 0, 299, 5])
    part = subset(ours, chosen)
    again = pack(codes[chosen].reshape(-1, 4), data[chosen].reshape(-1, 3),
                 np.tile(lengths, (4, 1)), memory, 4, ops)
    np.testing.assert_array_equal(part.records, again.records)
    np.testing.assert_array_equal(part.offsets, again.offsets)


def test_record_table_leaves_bad_programs_to_engine_pack():
    table = RecordTable(MEMORY, 4, sorted(set().union(*settings().ops)))
    codes = np.array([[[op_named("SCALAR_SUM").id, 9, 0, 0]]])
    with pytest.raises(AzcError, match="outside memory"):
        table.pack(codes, np.zeros((1, 1, 3)), (1, 0, 0))
    codes = np.array([[[op_named("VECTOR_CONST_SET").id, 1, 0, 0]]])
    with pytest.raises(AzcError, match="position"):
        table.pack(codes, np.array([[[1.0, 0.5, 0.0]]]), (1, 0, 0))


def test_hash_rows_tells_rows_apart_and_is_fixed():
    words = np.arange(12, dtype=np.uint64).reshape(3, 4)
    keys = hash_rows(words, 100)
    assert len(set(keys.tolist())) == 3
    assert hash_rows(words, 101).tolist() != keys.tolist()
    swapped = words[:, ::-1].copy()
    assert not set(hash_rows(swapped, 100).tolist()) & set(keys.tolist())
    assert keys.tolist() == hash_rows(words.copy(), 100).tolist()  # no hidden state


# --- the loop, on the demo's shape ---------------------------------------------------------------


def demo(mode="batch", fec=True, population=200, batch=100):
    experiment = load_experiment(EXPERIMENTS / "demo.toml")
    experiment = replace_settings(experiment, mode=mode, batch_size=batch,
                                  population_size=population)
    if not fec:
        experiment = dataclasses.replace(
            experiment, table=dataclasses.replace(experiment.table, fec=None))
    return experiment


def started(experiment, seed=3):
    search = Search(experiment, seed)
    search._start_experiment()
    return search, search.current.evolution


def test_recorded_fitness_is_the_programs_fitness():
    search, evolution = started(demo(fec=False))
    for _ in range(4):
        evolution.generation()
    evaluator = search.current.scorer.evaluator
    programs = list(evolution.population)
    assert evaluator.fitness_batch(programs).tolist() == evolution.fitness
    assert search.current.scorer.individuals == 5 * 200


def test_fingerprints_from_arrays_equal_the_engines():
    search, evolution = started(demo())
    evolution.generation()
    fingerprinter = search.current.scorer.functional.evaluator
    programs = list(evolution.population)[:50]
    packed = evolution._pack(fingerprinter, evolution.codes[:50], evolution.data[:50])
    train, valid = recorded_errors(fingerprinter, packed)
    found = fingerprinter.fingerprints(programs)
    np.testing.assert_array_equal(train, (found.train_errors + 0.0).reshape(50, -1))
    np.testing.assert_array_equal(valid, (found.valid_errors + 0.0).reshape(50, -1))


def test_fec_and_budget_accounting():
    search, evolution = started(demo())
    scorer = search.current.scorer
    for _ in range(3):
        evolution.generation()
    functional = scorer.functional
    assert scorer.individuals == 4 * 200
    assert functional.lookups + scorer.cache_hits == scorer.individuals
    assert scorer.evaluations == functional.lookups - functional.hits
    assert scorer.train_steps == (scorer.individuals * scorer.steps_per_individual
                                  + scorer.evaluations * scorer.steps_per_evaluation)


def test_train_budget_decides_as_the_scalar_rule():
    experiment = demo()
    experiment = dataclasses.replace(experiment, table=dataclasses.replace(
        experiment.table, train_budget=Budget(baseline="linear", factor=1.16)))  # half pass
    search, evolution = started(experiment)
    evolution.generation()
    scorer = search.current.scorer
    allowed = evolution._within_budget(evolution.codes, evolution.sizes)
    assert allowed.tolist() == [scorer.budget.allows(p, scorer.num_train)
                                for p in evolution.population]
    assert 0 < allowed.sum() < len(allowed)
    assert (np.array(evolution.fitness)[~allowed] == 0.0).all()
    assert scorer.budget_rejects > 0


def test_reference_engine_scores_as_the_native_one():
    experiment = demo(population=20, batch=7)
    experiment = dataclasses.replace(experiment, search_tasks=[
        dataclasses.replace(spec, num_tasks=2) for spec in experiment.search_tasks])
    runs = []
    for engine in ("reference", "auto"):
        search = Search(experiment, 3, engine=engine)
        search._start_experiment()
        evolution = search.current.evolution
        evolution.generation()
        runs.append((evolution.codes.copy(), evolution.fitness))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_allclose(runs[0][1], runs[1][1], rtol=1e-12)


def test_a_native_build_failure_falls_back_to_the_reference(monkeypatch):
    import azc.engine

    def broken(shape):
        raise RuntimeError("no LLVM today")

    monkeypatch.setattr(azc.engine, "kernel_for", broken)
    experiment = demo(population=20, batch=7)
    experiment = dataclasses.replace(experiment, search_tasks=[
        dataclasses.replace(spec, num_tasks=2) for spec in experiment.search_tasks])
    search, evolution = started(experiment)
    evolution.generation()
    scorer = search.current.scorer
    assert scorer.evaluator._fallback is not None  # the engine did fail
    assert scorer.functional.evaluator._fallback is not None
    reference = Search(experiment, 3, engine="reference")
    reference._start_experiment()
    evaluator = reference.current.scorer.evaluator
    assert evaluator.fitness_batch(list(evolution.population)).tolist() == pytest.approx(
        evolution.fitness, rel=1e-12)


def test_same_seed_same_run_and_checkpoints_resume_exactly():
    experiment = demo()
    first, evolution = started(experiment)
    second, other = started(experiment)
    for _ in range(2):
        evolution.generation()
        other.generation()
    np.testing.assert_array_equal(evolution.codes, other.codes)
    assert evolution.fitness == other.fitness

    state = json.loads(json.dumps(first.state()))
    resumed = Search(experiment, 3)
    resumed.restore(state)
    again = resumed.current.evolution
    for _ in range(2):
        evolution.generation()
        again.generation()
    np.testing.assert_array_equal(evolution.codes, again.codes)
    np.testing.assert_array_equal(evolution.data, again.data)
    assert evolution.fitness == again.fitness
    assert resumed.current.scorer.train_steps == first.current.scorer.train_steps

    _, elsewhere = started(experiment, seed=4)
    elsewhere.generation()
    assert elsewhere.fitness != evolution.fitness


def test_a_short_demo_run_improves():
    search, evolution = started(demo(population=1000, batch=500))
    start = evolution.stats()
    for _ in range(40):  # 40,000 children: the population moves off the constant predictors
        evolution.generation()
    end = evolution.stats()
    assert end.best_fitness > start.best_fitness + 0.02
    assert end.mean > start.mean + 0.05


def test_resizing_runs_score_as_their_programs():
    """The nonlinear preset (insert, remove, trade; train budget; fixed predict and learn)."""
    experiment = replace_settings(load_experiment(EXPERIMENTS / "nonlinear.toml"),
                                  mode="batch", batch_size=20, population_size=50)
    search, evolution = started(experiment)
    scorer = search.current.scorer
    evaluator = scorer.evaluator
    seeds = {}  # a drawing program evaluated one by one: the seeds it drew from
    evaluate = evaluator.fitness_batch

    def spy(programs, seed=None):
        if seed is not None:
            seeds.setdefault(programs[0], []).append(seed)
        return evaluate(programs, seed)

    evaluator.fitness_batch = spy
    for _ in range(3):
        evolution.generation()
    programs = list(evolution.population)
    assert max(len(p.setup) for p in programs) > 2  # it grew
    assert all(1 <= len(p.setup) <= 6 and len(p.learn) == 11 for p in programs)
    assert any(p in seeds for p in programs)
    for program, fitness in zip(programs, evolution.fitness, strict=True):
        if not scorer.budget.allows(program, 1000):
            assert fitness == 0.0
        else:  # every slot was refilled by the last generation, so evaluated under the spy
            assert fitness in [evaluate([program], seed)[0]
                               for seed in seeds.get(program, [None])]


def test_batch_mode_refuses_what_it_cannot_do(tmp_path):
    demo_text = "\n".join(line for line in (EXPERIMENTS / "demo.toml").read_text().splitlines()
                          if not line.startswith("mode ="))
    path = tmp_path / "nonlinear.toml"
    path.write_text(demo_text.replace("[evolution]", "[evolution]\nmode = \"batch\"", 1)
                    .replace('"randomize_component_function"]', '"insert_instruction"]'))
    with pytest.raises(ConfigError, match=r"nonlinear.toml:\d+: setup: .*\[setup\] max_size"):
        experiment_from(read_toml(path))
    path.write_text(demo_text.replace("[evolution]", "[evolution]\nmode = \"fast\"", 1))
    with pytest.raises(ConfigError, match=r"evolution.mode"):
        experiment_from(read_toml(path))
    path.write_text(demo_text.replace("[evolution]", "[evolution]\nmode = \"batch\"", 1)
                    + "\n[hurdle]\nstage_tasks = 2\n")
    with pytest.raises(ConfigError, match=r"nonlinear.toml:\d+: hurdle: .*no hurdles"):
        experiment_from(read_toml(path))


@pytest.mark.slow
def test_batch_mode_solves_the_demo():
    """Some seed of 1-5 solves the demo within two minutes (seeds 1, 2, 4, 5 did, in 1-75 s)."""
    experiment = replace_settings(load_experiment(EXPERIMENTS / "demo.toml"), mode="batch",
                                  batch_size=500)
    for seed in range(1, 6):
        outcome = Search(experiment, seed=seed, max_seconds=120).run()
        if outcome.solved:
            break
    assert outcome.solved and outcome.final_fitness > 0.9999


def test_a_copy_of_a_drawing_parent_is_evaluated_afresh_with_its_own_seed():
    from azc.generator import neural_net_program
    from azc.rng import evaluation_seed

    experiment = load_experiment(EXPERIMENTS / "nonlinear.toml")
    experiment = replace_settings(experiment, mode="batch", batch_size=10, population_size=20)
    search, evolution = started(experiment)
    scorer = search.current.scorer
    parent = neural_net_program()  # its setup draws the weights
    evolution.restore([parent] * 20, [0.5] * 20)
    evolution.batch_mutator.mutate = lambda codes, data, sizes: np.zeros(len(codes), bool)
    first, evaluations = scorer.individuals, scorer.evaluations

    evolution.generation()
    assert scorer.evaluations - evaluations == 20
    assert len(set(evolution.fitness)) > 1
    expected = [scorer.evaluator.fitness_batch([parent], seed=evaluation_seed(scorer.seed, k))[0]
                for k in range(first + 1, first + 21)]
    assert evolution.fitness == expected


@pytest.mark.parametrize("mode", ["batch", "exact"])
def test_immigrants_replace_the_oldest_as_a_restore_would(mode):
    from azc.generator import linear_program, pad

    search, evolution = started(demo(mode=mode, population=50, batch=10))
    evolution.generation()
    before = list(evolution.population)
    fitness = list(evolution.fitness)
    arrived = list(evolution.programs_at([3, 7, 11]))[::-1]
    evolution.immigrate(arrived, [0.1, 0.2, 0.3])
    assert list(evolution.population) == before[3:] + arrived
    assert evolution.fitness == fitness[3:] + [0.1, 0.2, 0.3]
    longer = pad(linear_program(), (13, 2, 8))  # outgrows setup's slots
    evolution.immigrate([longer], [0.4])
    assert list(evolution.population) == before[4:] + arrived + [longer]
    assert evolution.fitness == fitness[4:] + [0.1, 0.2, 0.3, 0.4]
    evolution.generation()  # and evolution goes on from there
    assert len(evolution.population) == 50
