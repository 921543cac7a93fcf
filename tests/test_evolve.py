"""Regularized evolution: slot order, tournaments, batching and shortcuts against a plain loop."""

import random
from hashlib import blake2b

import pytest

from azc.budget import TrainBudget
from azc.evolve import Hurdle, RegularizedEvolution, Scorer, live_after, live_code
from azc.generator import Generator, baseline_program, linear_program, neural_net_program
from azc.ir import NOP, Instruction, MemoryShape, Program
from azc.mutator import MutationSettings, Mutator
from azc.ops import op_named
from azc.passes import eliminate_dead_code
from azc.printer import format_program

DEMO_OPS = tuple(op_named(name).id for name in (
    "SCALAR_CONST_SET", "VECTOR_INNER_PRODUCT", "SCALAR_DIFF", "SCALAR_PRODUCT",
    "SCALAR_VECTOR_PRODUCT", "VECTOR_SUM"))


class LiveCodeEvaluator:
    """A stand-in engine: fitness is a hash of the program's live code, so dead code is free."""

    def __init__(self):
        self.calls = []

    def fitness_batch(self, programs):
        self.calls.append(len(programs))
        return [self.fitness(p) for p in programs]

    @staticmethod
    def fitness(program):
        text = format_program(eliminate_dead_code(program)).encode()
        return int.from_bytes(blake2b(text, digest_size=4).digest(), "little") / 2**32


def make(seed=5, size=30, tournament=4, batch_size=256, mutations=None, evaluator=None,
         **scorer_options):
    settings = MutationSettings(MemoryShape(4, 3, 1), (DEMO_OPS,) * 3,
                                mutations=mutations or ("alter_param", "randomize_instruction",
                                                        "randomize_component_function"))
    rng = random.Random(seed)
    mutator = Mutator(settings, rng)
    generator = Generator("random", (4, 2, 4), mutator)
    scorer = Scorer(evaluator or LiveCodeEvaluator(), 100, **scorer_options)
    return RegularizedEvolution(scorer, mutator, generator, size, tournament, rng, batch_size)


def plain_generation(population, fitness, mutator, rng, tournament, score):
    """The original's loop, one child at a time, as reference §11 states it."""
    size = len(population)
    for slot in range(size):
        drawn = [int(rng.random() * size) for _ in range(tournament)]
        best = drawn[0]
        for i in drawn[1:]:
            if fitness[i] > fitness[best]:  # strictly greater: the first drawn wins ties
                best = i
        child = mutator.mutate(population[best])
        population[slot], fitness[slot] = child, score(child)


@pytest.mark.parametrize("batch_size", [1, 3, 256])
def test_batched_generations_equal_the_plain_loop(batch_size):
    evolution = make(batch_size=batch_size)
    evolution.initialize()
    plain = make()  # same seed: same initial population and random stream
    plain.initialize()
    assert plain.population == evolution.population
    population, fitness = list(plain.population), list(plain.fitness)
    for _ in range(6):
        evolution.generation()
        plain_generation(population, fitness, plain.mutator, plain.rng, 4,
                         LiveCodeEvaluator.fitness)
        assert evolution.population == population
        assert evolution.fitness == fitness
    assert evolution.rng.getstate() == plain.rng.getstate()
    assert evolution.scorer.individuals == 30 * 7
    if batch_size == 1:
        assert set(evolution.scorer.evaluator.calls[1:]) == {1}  # after initialization


def test_slots_are_replaced_in_index_order_and_parents_chosen_before_removal():
    evolution = make(size=10, tournament=10)
    evolution.initialize()
    before = list(evolution.population)
    order = []
    original_mutate = evolution.mutator.mutate

    def spy(parent, actions=1):
        order.append(parent)
        return original_mutate(parent, actions)

    evolution.mutator.mutate = spy
    evolution.generation()
    # The first child's parent comes from the old population, slot 0 included.
    assert order[0] in before
    assert evolution.generations == 1


def test_tournament_ties_go_to_the_first_drawn():
    evolution = make(size=8, tournament=8, mutations=("identity",))
    evolution.initialize()
    evolution.fitness = [0.5] * 8
    before = list(evolution.population)
    replay = random.Random()
    replay.setstate(evolution.rng.getstate())
    drawn = [int(replay.random() * 8) for _ in range(8)]
    evolution.generation()
    assert evolution.population[0] == before[drawn[0]]


def test_dead_mutations_and_copies_skip_evaluation_with_the_same_fitness():
    evolution = make(size=50, tournament=5)
    evolution.initialize()
    for _ in range(5):
        evolution.generation()
    scorer = evolution.scorer
    assert scorer.cache_hits > 0.3 * scorer.individuals
    for program, fitness in zip(evolution.population, evolution.fitness, strict=True):
        assert fitness == LiveCodeEvaluator.fitness(program)


def test_live_after_marks_the_prediction_path():
    program = Program(
        setup=(),
        predict=(op_instruction("VECTOR_INNER_PRODUCT", 1, 1, 0),
                 op_instruction("SCALAR_DIFF", 3, 0, 0)),
        learn=(op_instruction("VECTOR_SUM", 1, 1, 2),))
    masks = live_after(program)
    s1, s3 = 1 << (3 * 1), 1 << (3 * 3)
    assert masks[1][0] & s1 and not masks[1][1] & s3


def op_instruction(name, out, in1, in2):
    from azc.ir import Instruction

    return Instruction(op_named(name).id, out, in1, in2)


def test_scorer_caches_and_dedupes_queued_programs():
    evaluator = LiveCodeEvaluator()
    scorer = Scorer(evaluator, 100, steps_per_individual=10, steps_per_evaluation=100)
    program = make().generator.initial_program()
    assert scorer.lookup(program) == (None, 0)
    assert scorer.lookup(program) == (None, 0)  # queued already: same ticket
    (fitness,) = scorer.flush()
    assert scorer.lookup(program) == (fitness, None)
    assert evaluator.calls == [1]
    assert scorer.train_steps == 3 * 10 + 100
    assert scorer.hit_rate() == pytest.approx(2 / 3)


def test_scorer_train_budget_gives_zero_without_evaluating():
    budget = TrainBudget(baseline_program("linear", (0, 0, 0)), 2.0)
    evaluator = LiveCodeEvaluator()
    scorer = Scorer(evaluator, 100, budget=budget)
    assert scorer.lookup(neural_net_program()) == (0.0, None)
    assert evaluator.calls == [] and scorer.budget_rejects == 1


def test_cache_key_tells_budget_decisions_apart():
    small = baseline_program("linear", (0, 0, 0))
    padded = small.replace(predict=(Instruction(2, 3, 0, 0),) * 20 + small.predict)  # dead
    assert live_code(small) == live_code(padded)
    budget = TrainBudget(small, 2.0)
    scorer = Scorer(LiveCodeEvaluator(), 100, budget=budget, key=live_code)
    fitness, padded_fitness = scorer.score([small, padded])
    assert fitness > 0.0 and padded_fitness == 0.0
    assert scorer.score([padded, small]) == [0.0, fitness]


def test_live_code_tells_negative_zero_constants_apart():
    plus, minus = (baseline_program("linear", (0, 0, 0)).replace(
        setup=(Instruction(56, 2, data=(x,)),)) for x in (0.0, -0.0))
    assert plus == minus and live_code(plus) != live_code(minus)


class OneChange:
    """A stand-in mutator: every child is `child`, its instruction (c, i) replaced."""

    def __init__(self, child, change):
        self.child, self.last_change = child, change

    def mutate(self, program):
        return self.child


def one_child(parent, child, change, **scorer_options):
    """The evaluations of a one-slot population's next generation."""
    evaluator = LiveCodeEvaluator()
    scorer = Scorer(evaluator, 100, key=live_code, **scorer_options)
    evolution = RegularizedEvolution(scorer, OneChange(child, change), None, 1, 1,
                                     random.Random(1))
    evolution.restore([parent], [0.5])
    evolution.generation()
    return evaluator.calls, evolution.fitness


def test_neutral_mutation_shortcut_tells_negative_zero_apart():
    parent = baseline_program("linear", (0, 0, 0)).replace(
        setup=(Instruction(56, 2, data=(0.0,)),))
    child = parent.replace(setup=(Instruction(56, 2, data=(-0.0,)),))
    assert one_child(parent, child, (0, 0))[0] == [1]


def test_dead_change_shortcut_respects_the_budget_decision():
    small = baseline_program("linear", (0, 0, 0))
    pad = (Instruction(2, 3, 0, 0),) * 3
    parent = small.replace(predict=(Instruction(op_named("MATRIX_MATRIX_PRODUCT").id, 0, 0, 0),)
                           + pad + small.predict)  # over budget through dead code
    child = small.replace(predict=(NOP,) + pad + small.predict)  # within
    calls, fitness = one_child(parent, child, (1, 0), budget=TrainBudget(small, 2.0))
    assert calls == [1] and fitness[0] > 0.0


class Constant:
    def __init__(self, value):
        self.value = value
        self.seen = 0

    def fitness_batch(self, programs):
        self.seen += len(programs)
        return [self.value(p) for p in programs]


def test_hurdle_stops_weak_children_after_the_first_stage():
    stage = Constant(lambda p: len(p.setup) / 10)
    rest = Constant(lambda p: 1.0)
    hurdle = Hurdle(stage, rest, stage_tasks=1, total_tasks=4, percentile=50, window=100,
                    warmup=10)
    scorer = Scorer(None, 100, hurdle=hurdle)
    programs = [Program(setup=(op_instruction("SCALAR_DIFF", 1, 0, 0),) * n) for n in range(20)]
    fitness = scorer.score(programs)
    assert rest.seen == 20  # warm-up: everyone passes
    assert fitness[10] == pytest.approx(0.25 * 1.0 + 0.75 * 1.0)
    fitness = scorer.score([Program(setup=(op_instruction("SCALAR_SUM", 1, 0, 0),) * n)
                            for n in range(20)])
    assert scorer.hurdle_rejects > 0
    assert fitness[1] == 0.1  # failed the hurdle: keeps its first-stage fitness


def test_deferred_batches_place_children_after_their_chunk():
    evolution = make(size=12, tournament=3, batch_size=4)
    evolution.deferred = True
    evolution.initialize()
    plain = make(size=12, tournament=3)
    plain.initialize()
    population, fitness = list(plain.population), list(plain.fitness)
    for _ in range(4):
        evolution.generation()
        # The deviation, stated as a plain loop: chunks of 4 slots see the population as it
        # stood before the chunk.
        for start in range(0, 12, 4):
            frozen_population, frozen_fitness = list(population), list(fitness)
            for slot in range(start, start + 4):
                drawn = [int(plain.rng.random() * 12) for _ in range(3)]
                scores = [frozen_fitness[i] for i in drawn]
                parent = frozen_population[drawn[scores.index(max(scores))]]
                child = plain.mutator.mutate(parent)
                population[slot], fitness[slot] = child, LiveCodeEvaluator.fitness(child)
        assert evolution.population == population and evolution.fitness == fitness


class Prints:
    """A stand-in fingerprint source: programs fingerprint alike when their live code's first
    component holds as many instructions, a deliberately coarse equivalence."""

    def __init__(self):
        self.tasks = ()

    def fingerprints(self, programs):
        import numpy as np

        from azc.engine import Fingerprints
        from azc.evolve import live_code

        sizes = np.array([[len(live_code(p)[1])] for p in programs], dtype=float)
        counts = np.ones((len(programs), 1), dtype=np.int64)
        return Fingerprints(sizes[:, :, None], counts, sizes[:, :, None] * 0, counts)


def test_functional_cache_in_batches_equals_one_at_a_time():
    pytest.importorskip("azc.engine")
    from azc.evolve import FunctionalCache

    programs = [make(seed=s).generator.initial_program() for s in range(12)] * 2
    results = []
    for batch in (1, 5, 24):
        evaluator = LiveCodeEvaluator()
        functional = FunctionalCache(Prints(), 100, size=4, forget_every=3)
        scorer = Scorer(evaluator, 100, functional=functional, key=lambda p: id(p) + batch)
        fitness = []
        for start in range(0, len(programs), batch):
            fitness += scorer.score([p for p in programs[start:start + batch]])
        results.append((fitness, functional.state(), functional.hits))
    assert results[0] == results[1] == results[2]
    assert results[0][2] > 0  # coarse fingerprints: some programs share a fitness


class SeededEvaluator:
    """A stand-in engine whose fitness depends on the program and the seed it draws from."""

    seed = 1234

    def __init__(self):
        self.calls = []

    def fitness_batch(self, programs, seed=None):
        seed = self.seed if seed is None else seed
        self.calls.append((len(programs), seed))
        return [LiveCodeEvaluator.fitness(p) * 0.5 + (seed % 1000) / 2000 for p in programs]


def drawing_program():
    gaussian = op_named("VECTOR_GAUSSIAN_SET")
    return Program(setup=(Instruction(gaussian.id, 1, data=(0.0, 0.1)),),
                   predict=(op_instruction("VECTOR_INNER_PRODUCT", 1, 0, 1),))


def test_a_program_that_draws_is_evaluated_afresh_with_each_individuals_seed():
    from azc.rng import evaluation_seed

    evaluator = SeededEvaluator()
    scorer = Scorer(evaluator, 100)
    drawing, plain = drawing_program(), linear_program()
    first, again, plain_fitness, plain_again = scorer.score([drawing, drawing, plain, plain])
    assert first != again  # not cached: the original draws anew for every evaluation
    assert evaluator.calls == [(1, 1234), (1, evaluation_seed(1234, 1)),
                               (1, evaluation_seed(1234, 2))]
    assert plain_fitness == plain_again and scorer.cache_hits == 1


def test_a_copy_of_a_drawing_parent_does_not_inherit_its_fitness():
    evolution = make(evaluator=SeededEvaluator(), size=20)
    evolution.initialize()
    evolution.population = [drawing_program()] * 20
    evolution.fitness = evolution.scorer.score(evolution.population)
    evolution.liveness = [None] * 20
    before = evolution.scorer.evaluations
    evolution.mutator.mutate = lambda parent, *a: parent  # every child a copy of its parent
    evolution.generation()
    assert evolution.scorer.evaluations - before == 20
    assert len(set(evolution.fitness)) > 1
