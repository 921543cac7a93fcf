"""Regularized evolution, exactly as the original's regularized_evolution.cc runs it (§11).

    initialize: for each slot i: population[i] = initial program; fitness[i] = score(it)
    generation: for i in 0 .. P-1, in order:
                    parent = tournament(T)           # T draws with replacement, first max wins
                    child = mutate(parent)           # identical copy with prob 1 - mutate_prob
                    population[i], fitness[i] = child, score(child)
    run:        repeat generations while train steps < budget and time < limit

Slot i always holds the oldest individual, so this is "replace the oldest" with selection
before removal: the oldest can still be a parent, and a child competes as soon as it is placed.

Two shortcuts skip evaluating children whose fitness is already known, exactly: a child that
is its parent (not mutated) has the parent's fitness, and so has a child whose one replaced
instruction was dead in the parent and is dead in the child (it writes nothing live there and
draws no random numbers), since the two programs then run the same live instructions.

Children are scored in batches, one native call per batch, without changing those semantics:
a child whose fitness is not in a cache is placed with fitness None and queued; a tournament
that draws a queued slot first scores the queue. Since the draws themselves never depend on
fitness, every run is identical to scoring each child at once, whatever the batch size.
"""

import logging
import math
import random
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from hashlib import blake2b

import numpy as np

from azc.budget import TrainBudget
from azc.fitness import MIN_FITNESS
from azc.generator import Generator
from azc.ir import Program, instruction_key
from azc.lru import LRUTable
from azc.mutator import Mutator
from azc.passes import effects_of, live_outs  # the optimizer's liveness facts
from azc.rng import evaluation_seed

log = logging.getLogger("azc")


@dataclass(frozen=True)
class Hurdle:
    """A cheap first stage: children below a rolling percentile skip the remaining tasks.

    Off by default (the original has none; the paper's hurdles use the 75th percentile).
    A child failing the hurdle keeps its first-stage fitness.
    """

    stage_evaluator: object  # scores the first `stage_tasks` search tasks
    rest_evaluator: object  # scores the other tasks
    stage_tasks: int
    total_tasks: int
    percentile: float = 75.0
    window: int = 1000
    warmup: int = 100


class FunctionalCache:
    """The original's functional equivalence check (reference §12), on batches.

    A program's fingerprint is its errors over a short run (`evaluator` is built with the
    fingerprint's train and validation counts and the fixed FEC seed) plus the train budget;
    programs with equal fingerprints share a fitness from an LRU cache that forgets an entry
    after `forget_every` hits (azc.lru.LRUTable, native: one call per batch). Lookups and
    inserts happen in the batch's order, with each insert's fitness filled in after the batch's
    evaluation, so a batch behaves exactly as the same programs one at a time.
    """

    def __init__(self, evaluator, budget: int, size: int = 100_000, forget_every: int = 100):
        self.evaluator = evaluator
        self.budget = budget
        self.table = LRUTable(size, forget_every)
        self.lookups = self.hits = 0

    def keys(self, programs) -> list[int]:
        """One 64-bit fingerprint per program, stable across processes."""
        budget = self.budget.to_bytes(8, "little")
        if not programs:
            return []
        if hasattr(self.evaluator, "fingerprints"):
            found = self.evaluator.fingerprints(programs)
            train = (found.train_errors + 0.0).tobytes()  # -0.0 becomes 0.0, NaN padding stays
            valid = (found.valid_errors + 0.0).tobytes()
            t, v = len(train) // len(programs), len(valid) // len(programs)
            return [_digest(train[p * t:p * t + t] + valid[p * v:p * v + v] + budget)
                    for p in range(len(programs))]
        from azc.fec import reference_errors  # NOTE: the reference evaluator records per task

        ev = self.evaluator
        keys = []
        for program in programs:
            parts = []
            for index, task in enumerate(ev.tasks):
                train, valid = reference_errors(program, task, index, memory=ev.memory,
                                                num_train=ev.num_train, num_valid=ev.num_valid,
                                                max_abs_error=ev.max_abs_error)
                parts += [len(train).to_bytes(4, "little"), (train + 0.0).tobytes(),
                          len(valid).to_bytes(4, "little"), (valid + 0.0).tobytes()]
            keys.append(_digest(*parts, budget))
        return keys

    def score(self, keys, evaluate) -> np.ndarray:
        """Fitness per fingerprint of a batch, as one-by-one lookups in order would find it.

        The first row of a new fingerprint is evaluated (`evaluate(rows)`: their fitness,
        rows an index array) and later rows with its fingerprint share its fitness; every row
        but those first ones counts as a hit.
        """
        keys = np.asarray(keys, dtype=np.uint64)
        fitness, source, hits = self.table.find(keys)
        self.lookups += len(keys)
        self.hits += hits
        fresh = np.flatnonzero(source == np.arange(len(keys)))
        if fresh.size:
            found = np.asarray(evaluate(fresh), dtype=np.float64)
            self.table.fill(keys, fresh, found)
            by_row = np.empty(len(keys))
            by_row[fresh] = found
            shared = source >= 0
            fitness[shared] = by_row[source[shared]]
        return fitness

    def state(self) -> list:
        """[key, fitness, hits] per entry, least recently used first (for checkpoints)."""
        entries = self.table.entries()
        return [list(entry) for entry in zip(entries["key"].tolist(), entries["value"].tolist(),
                                             entries["hits"].tolist(), strict=True)]

    def restore(self, entries: list):
        for key, fitness, hits in entries:
            self.table.put(key, fitness, hits)


def _digest(*parts: bytes) -> int:
    """The 64-bit BLAKE2b of the parts, concatenated."""
    h = blake2b(parts[0] if len(parts) == 1 else b"".join(parts), digest_size=8)
    return int.from_bytes(h.digest(), "little")


class Scorer:
    """Search fitness of programs: train budget, fitness cache, hurdles, batched evaluation.

    `key(program)` names a program for the cache; programs with equal keys must score alike
    (the structural hash, or the program itself). Train steps are counted as the original
    counts them: `steps_per_individual` for every individual (its FEC fingerprint, or a full
    evaluation when FEC is off) plus `steps_per_evaluation` for each one actually evaluated.
    """

    def __init__(self, evaluator, num_train: int, *, budget: TrainBudget | None = None,
                 key=None, cache_size: int = 100_000, steps_per_individual: int = 0,
                 steps_per_evaluation: int = 0, hurdle: Hurdle | None = None,
                 functional: FunctionalCache | None = None):
        self.evaluator = evaluator
        self.num_train = num_train
        self.budget = budget
        self.key = key or (lambda program: program)
        self.cache: OrderedDict = OrderedDict()
        self.cache_size = cache_size
        self.steps_per_individual = steps_per_individual
        self.steps_per_evaluation = steps_per_evaluation
        self.hurdle = hurdle
        self.functional = functional
        self._recent = deque(maxlen=hurdle.window if hurdle else 1)
        self._batch: list[Program] = []
        self._keys: list = []  # per queued program: its cache key, or None if it draws
        self._seeds: list = []  # per queued program: its evaluation's seed, or None
        self.seed = getattr(evaluator, "seed", 0)
        self._tickets: dict = {}
        self.individuals = self.cache_hits = self.evaluations = self.budget_rejects = 0
        self.hurdle_rejects = 0
        self.train_steps = 0

    def lookup(self, program: Program) -> tuple[float | None, int | None]:
        """(fitness, None) if known without evaluating, else (None, ticket) for `flush`."""
        self.individuals += 1
        self.train_steps += self.steps_per_individual
        if draws_random(program):
            return self._queue_drawing(program)
        key = self.key(program)
        if self.budget is not None:  # dead code counts toward the budget, not toward the key
            key = (key, self.budget.allows(program, self.num_train))
        fitness = self.cache.get(key)
        if fitness is not None:
            self.cache.move_to_end(key)
            self.cache_hits += 1
            return fitness, None
        ticket = self._tickets.get(key)
        if ticket is not None:  # the same program is already queued
            self.cache_hits += 1
            return None, ticket
        if self.budget is not None and not key[1]:
            self.budget_rejects += 1
            self._remember(key, MIN_FITNESS)
            return MIN_FITNESS, None
        ticket = self._tickets[key] = len(self._batch)
        self._batch.append(program)
        self._keys.append(key)
        self._seeds.append(None)
        return None, ticket

    def _queue_drawing(self, program: Program) -> tuple[float | None, int | None]:
        """A program that draws random numbers is evaluated afresh, with this individual's own
        seed, as the original draws from its running stream: no cache by program text (the
        FEC, if on, still recognizes it, as the original's does)."""
        if self.budget is not None and not self.budget.allows(program, self.num_train):
            self.budget_rejects += 1
            return MIN_FITNESS, None
        ticket = len(self._batch)
        self._batch.append(program)
        self._keys.append(None)
        self._seeds.append(evaluation_seed(self.seed, self.individuals))
        return None, ticket

    def flush(self) -> list[float]:
        """Evaluate the queued programs; their fitnesses, indexed by ticket."""
        if not self._batch:
            return []
        if self.functional is None:
            fitnesses = [float(f) for f in self._evaluate(self._batch, self._seeds)]
        else:
            fitnesses = self._evaluate_functional(self._batch, self._seeds)
        for key, fitness in zip(self._keys, fitnesses, strict=True):
            if key is not None:
                self._remember(key, fitness)
        self._batch, self._keys, self._seeds, self._tickets = [], [], [], {}
        return fitnesses

    def _evaluate_functional(self, programs, seeds) -> list[float]:
        """Fingerprint the batch; evaluate only programs whose fingerprint is not cached."""
        def evaluate(rows):
            return self._evaluate([programs[i] for i in rows], [seeds[i] for i in rows])

        return self.functional.score(self.functional.keys(programs), evaluate).tolist()

    def score(self, programs) -> list[float]:
        """Fitness of each program, in order (for initialization and tests)."""
        found = [self.lookup(program) for program in programs]
        batch = self.flush()
        return [batch[ticket] if fitness is None else fitness for fitness, ticket in found]

    def _remember(self, key, fitness: float):
        self.cache[key] = fitness
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)

    def _evaluate(self, programs, seeds) -> list[float]:
        self.evaluations += len(programs)
        if self.hurdle is None:
            self.train_steps += self.steps_per_evaluation * len(programs)
            return _fitness(self.evaluator, programs, seeds)
        return self._evaluate_with_hurdle(programs, seeds)

    def _evaluate_with_hurdle(self, programs, seeds) -> list[float]:
        hurdle = self.hurdle
        stage = _fitness(hurdle.stage_evaluator, programs, seeds)
        share = hurdle.stage_tasks / hurdle.total_tasks
        self.train_steps += round(self.steps_per_evaluation * share) * len(programs)
        threshold = -math.inf
        if len(self._recent) >= min(hurdle.warmup, hurdle.window):
            threshold = float(np.percentile(self._recent, hurdle.percentile))
        self._recent.extend(stage)

        passed = [i for i, f in enumerate(stage) if f >= threshold]
        self.hurdle_rejects += len(programs) - len(passed)
        if passed:
            rest = _fitness(hurdle.rest_evaluator, [programs[i] for i in passed],
                            [seeds[i] for i in passed])
            self.train_steps += round(self.steps_per_evaluation * (1 - share)) * len(passed)
            # Mean combination: the tasks' mean is the stages' weighted mean.
            for i, f in zip(passed, rest, strict=True):
                stage[i] = share * stage[i] + (1 - share) * float(f)
        return stage

    def known(self):
        """Count an individual whose fitness evolution knew without asking (see module doc)."""
        self.individuals += 1
        self.cache_hits += 1
        self.train_steps += self.steps_per_individual

    def hit_rate(self) -> float:
        return self.cache_hits / self.individuals if self.individuals else 0.0


def _fitness(evaluator, programs, seeds) -> list[float]:
    """Fitness of each program: those without a seed in one batch, the others one by one."""
    plain = [i for i, seed in enumerate(seeds) if seed is None]
    result = [0.0] * len(programs)
    if plain:
        found = evaluator.fitness_batch([programs[i] for i in plain])
        for i, fitness in zip(plain, found, strict=True):
            result[i] = float(fitness)
    for i, seed in enumerate(seeds):
        if seed is not None:
            result[i] = float(evaluator.fitness_batch([programs[i]], seed=seed)[0])
    return result


_COMPONENT_EFFECTS: dict = {}  # id(component) -> (component, its effects, whether it draws)


def _component_effects(component: tuple) -> list:
    """The effects of a component's instructions, memoized by identity: children share the
    component tuples their mutation did not touch."""
    return _component_entry(component)[1]


def _component_entry(component: tuple) -> tuple:
    entry = _COMPONENT_EFFECTS.get(id(component))
    if entry is not None and entry[0] is component:
        return entry
    if len(_COMPONENT_EFFECTS) > 1 << 14:
        _COMPONENT_EFFECTS.clear()
    effects = effects_of(component)
    entry = (component, effects, any(fact[2] for fact in effects))
    _COMPONENT_EFFECTS[id(component)] = entry  # keeps `component` alive
    return entry


def draws_random(program: Program) -> bool:
    """Whether the program has an instruction that draws random numbers (live or not)."""
    return any(_component_entry(component)[2] for component in program.components())


def live_after(program: Program) -> tuple[list[int], ...]:
    """Per component, the memory bits live after each instruction (azc.passes liveness)."""
    effects = tuple(_component_effects(component) for component in program.components())
    masks = []
    for component, live in zip(effects, live_outs(effects), strict=True):
        after = [0] * len(component)
        for i in range(len(component) - 1, -1, -1):
            after[i] = live
            written, read, _ = component[i]
            if written & live:
                live = live & ~written | read
        masks.append(after)
    return tuple(masks)


def live_code(program: Program) -> tuple[tuple, ...]:
    """A cache key: the program's live instructions, per component (reversed order).

    Programs with equal live code compute the same predictions, so they score alike. An
    instruction that draws random numbers stays even when dead: it moves the random stream.
    Instructions are compared bit for bit (constants -0.0 and 0.0 differ).
    NOTE: one pass per component: memoizing slices per component was slower, since most
    children bring a new component whose liveness is then asked with several live-outs.
    """
    components = program.components()
    effects = tuple(_component_effects(component) for component in components)
    key = []
    for component, facts, live in zip(components, effects, live_outs(effects), strict=True):
        kept = []
        for i in range(len(component) - 1, -1, -1):
            written, read, draws = facts[i]
            if written & live:
                live = live & ~written | read
                kept.append(instruction_key(component[i]))
            elif draws:
                kept.append(instruction_key(component[i]))
        key.append(tuple(kept))
    return tuple(key)


def _dead(instruction, live: int) -> bool:
    written, _, draws = effects_of((instruction,))[0]
    return not draws and not written & live


@dataclass(frozen=True)
class PopulationStats:
    """Mean, population st.dev and the best (first index of the maximum) fitness."""

    mean: float
    stdev: float
    best_index: int
    best_fitness: float


class RegularizedEvolution:
    """The population, its fitnesses and the loop that renews them."""

    def __init__(self, scorer: Scorer, mutator: Mutator, generator: Generator,
                 population_size: int, tournament_size: int, rng: random.Random,
                 batch_size: int = 256, deferred: bool = False):
        self.scorer = scorer
        self.mutator = mutator
        self.generator = generator
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.rng = rng
        self.batch_size = batch_size
        self.deferred = deferred
        self.population: list[Program] = []
        self.fitness: list[float | None] = []
        self.liveness: list = []  # per slot: live_after(program), or None until needed
        self.generations = 0

    def initialize(self):
        """Fill every slot with an initial program (passed through a 0-action mutation)."""
        programs = [self.mutator.mutate(self.generator.initial_program(), 0)
                    for _ in range(self.population_size)]
        self.population = programs
        self.fitness = self.scorer.score(programs)
        self.liveness = [None] * len(programs)

    def restore(self, population: list[Program], fitness: list[float]):
        """Continue from a saved population (a checkpoint)."""
        self.population, self.fitness = list(population), list(fitness)
        self.liveness = [None] * len(population)

    def programs_at(self, slots) -> list[Program]:
        """The individuals in these slots."""
        return [self.population[i] for i in slots]

    def immigrate(self, programs: list[Program], fitness: list[float]):
        """Drop the first len(programs) individuals (the oldest between generations) and
        append `programs` as the youngest."""
        count = len(programs)
        self.population = self.population[count:] + list(programs)
        self.fitness = self.fitness[count:] + list(fitness)
        self.liveness = self.liveness[count:] + [None] * count

    def generation(self):
        """One pass over the slots in index order, each replaced by a tournament winner's child."""
        population, fitness, liveness = self.population, self.fitness, self.liveness
        rand, size, draws = self.rng.random, self.population_size, range(self.tournament_size)
        mutator, scorer = self.mutator, self.scorer
        mutate, lookup, known = mutator.mutate, scorer.lookup, scorer.known
        budget, num_train = scorer.budget, scorer.num_train
        deferred, batch_size = self.deferred, self.batch_size
        queued: list[tuple[int, int]] = []  # (slot, ticket) of children awaiting evaluation
        held: list[tuple] = []  # deferred mode: (slot, child, score, ticket, live) to place

        score_of = fitness.__getitem__
        for slot in range(size):
            # max() keeps the first of equal maxima: the first drawn wins ties.
            drawn = [int(rand() * size) for _ in draws]
            try:
                winner = max(drawn, key=score_of)
            except TypeError:  # a drawn child is still queued (None): evaluate the queue
                self._settle(queued)
                winner = max(drawn, key=score_of)
            if fitness[winner] is None:  # a tournament of one drew a queued child
                self._settle(queued)
            parent = population[winner]

            child = mutate(parent)
            score = ticket = live = None
            if draws_random(child):
                pass  # fresh draws each evaluation: never its parent's fitness
            elif child is parent:
                score, live = fitness[winner], liveness[winner]
                known()
            elif mutator.last_change is not None:
                # One instruction replaced: by itself, or dead before and after, so nothing
                # live changed (and the train budget decides alike).
                live = liveness[winner]
                if live is None:
                    live = liveness[winner] = live_after(parent)
                c, i = mutator.last_change
                mask = live[c][i]
                old, new = parent.components()[c][i], child.components()[c][i]
                if instruction_key(old) == instruction_key(new) or (
                        _dead(old, mask) and _dead(new, mask) and (budget is None or (
                            budget.allows(child, num_train)
                            == budget.allows(parent, num_train)))):
                    score = fitness[winner]
                    known()
                else:
                    live = None
            if score is None:
                score, ticket = lookup(child)

            if deferred:
                held.append((slot, child, score, ticket, live))
                if len(held) >= batch_size:
                    self._place(held)
                continue
            population[slot] = child
            fitness[slot] = score
            liveness[slot] = live
            if ticket is not None:
                queued.append((slot, ticket))
                if len(queued) >= batch_size:
                    self._settle(queued)
        self._settle(queued)
        self._place(held)
        self.generations += 1

    def _settle(self, queued: list[tuple[int, int]]):
        results = self.scorer.flush()
        for slot, ticket in queued:
            self.fitness[slot] = results[ticket]
        queued.clear()

    def _place(self, held: list[tuple]):
        """Deferred mode: evaluate a chunk's children together, then put them in their slots."""
        results = self.scorer.flush()
        for slot, child, score, ticket, live in held:
            self.population[slot] = child
            self.fitness[slot] = results[ticket] if ticket is not None else score
            self.liveness[slot] = live
        held.clear()

    def run(self, max_train_steps: int, max_seconds: float = math.inf, should_stop=None):
        """Generations until the train steps or time run out, or `should_stop()` says so.

        NOTE: like the original, limits are checked between generations only, so the train
        steps overshoot by up to one generation.
        """
        start_steps, start = self.scorer.train_steps, time.monotonic()
        while (self.scorer.train_steps - start_steps < max_train_steps
               and time.monotonic() - start < max_seconds):
            self.generation()
            if should_stop is not None and should_stop():
                return

    def stats(self) -> PopulationStats:
        fitness = self.fitness
        n = len(fitness)
        mean = sum(fitness) / n
        variance = sum(f * f for f in fitness) / n - mean * mean
        best = max(fitness)
        return PopulationStats(mean, math.sqrt(max(variance, 0.0)), fitness.index(best), best)

    def best(self) -> tuple[Program, float]:
        stats = self.stats()
        return self.population[stats.best_index], stats.best_fitness
