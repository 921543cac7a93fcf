"""Regularized evolution on arrays: a chunk of children per step, vectorized with NumPy.

The population is three arrays (azc.mutate_batch's layout: one row of instruction slots and
component sizes per individual) and a fitness vector, packed for the native engine by
azc.pack_batch; programs become Program objects only when asked for (the
best, checkpoints). One generation:

    for each chunk of slots [s, s + batch_size) in 0 .. P-1, in order:
        parents  = tournament winners, one per slot (T draws with replacement each, the first
                   drawn of the maxima wins), all drawn on the population before the chunk
        children = mutate(parents)                   # azc.mutate_batch, §9's distribution
        fitness  = parent's if a child equals its parent and draws no random numbers,
                   else score(children)
        population[chunk], fitness[chunk] = children, fitness

This is the "deferred" deviation of azc.evolve (documented in examples/experiments/demo.toml):
a child competes only from the next chunk on, up to batch_size slots late, where the original
lets it compete at once. Everything else is the original's (reference §11-13):

- scoring: a changed child is fingerprinted by its errors over a short run with the FEC seed
  (reference §12), hashed with the train budget; the LRU cache of azc.evolve.FunctionalCache
  (size, forget_every) answers known fingerprints, and the first child of each new fingerprint
  is evaluated. Without [fec] every changed child is evaluated.
- the train budget (§13) gives over-budget children the minimum fitness unevaluated.
- train steps are counted by the Scorer's rules: `steps_per_individual` for every child,
  `steps_per_evaluation` for each one evaluated, so max_train_steps means the same work.
- a program that draws random numbers (live or not) is evaluated afresh with its own
  individual's seed (azc.rng.evaluation_seed), as azc.evolve's Scorer does: a copy of its
  parent does not inherit the parent's fitness, so a lucky draw is not kept for nothing.
- random numbers come from a NumPy Generator seeded once per experiment; a seed fixes the run.

Hurdles are not supported, nor insert_instruction into a mutable component without a
max_size (its slots are fixed); the experiment file's validation refuses both in batch mode.
"""

import logging
import math
import time

import numpy as np

from azc.engine import NativeBuildError
from azc.engine_pack import Packed
from azc.errors import ConfigError
from azc.evolve import PopulationStats, Scorer
from azc.fitness import MIN_FITNESS
from azc.mutate_batch import (
    BatchMutator,
    arrays_to_program,
    arrays_to_programs,
    capacities,
    programs_to_arrays,
)
from azc.ops import OPS
from azc.pack_batch import RecordTable, hash_rows, recorded_errors, subset
from azc.rng import evaluation_seed

log = logging.getLogger("azc")

_COSTS = np.array([op.cost for op in OPS], dtype=np.int64)
_DRAWS = np.array([op.random for op in OPS])


class _Population:
    """The population as a read-only sequence of Programs, made on access."""

    def __init__(self, evolution: "BatchEvolution"):
        self.evolution = evolution

    def __len__(self):
        return len(self.evolution.codes)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.evolution.program(index)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class BatchEvolution:
    """The population as arrays, its fitnesses, and the chunked loop that renews them.

    Same interface as azc.evolve.RegularizedEvolution (initialize, restore, generation, run,
    stats, best, population, fitness), plus `state()` for the random stream of checkpoints.
    """

    def __init__(self, scorer: Scorer, mutator, generator, population_size: int,
                 tournament_size: int, seed, batch_size: int = 1000):
        if scorer.hurdle is not None:
            raise ConfigError("batch evolution does not support hurdles; use mode = \"exact\"")
        self.scorer = scorer
        self.mutator = mutator  # the scalar mutator, for the initial population only
        self.generator = generator
        self.settings = mutator.settings
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.batch_mutator: BatchMutator | None = None
        self.codes = np.zeros((0, 0, 4), dtype=np.int64)
        self.data = np.zeros((0, 0, 3))
        self.sizes = np.zeros((0, 3), dtype=np.int64)
        self.scores = np.zeros(0)
        self.capacities = (0, 0, 0)
        self.generations = 0
        self._tables: dict = {}  # per evaluator shape: its RecordTable
        self._budget_limit = None
        if scorer.budget is not None:
            from azc.budget import program_cost

            self._budget_limit = scorer.budget.factor * program_cost(scorer.budget.baseline,
                                                                     scorer.num_train)

    # --- the population as programs ------------------------------------------------------------

    @property
    def population(self) -> _Population:
        return _Population(self)

    @property
    def fitness(self) -> list[float]:
        return self.scores.tolist()

    def program(self, slot: int):
        """The individual in `slot` as a Program."""
        return arrays_to_program(self.codes[slot], self.data[slot], self.capacities,
                                 self.sizes[slot])

    def programs_at(self, slots) -> list:
        """The individuals in these slots as Programs."""
        slots = np.asarray(slots, dtype=np.int64)
        return arrays_to_programs(self.codes[slots], self.data[slots], self.capacities,
                                  self.sizes[slots])

    def immigrate(self, programs, fitness):
        """Drop the first len(programs) individuals (the oldest between generations) and
        append `programs` as the youngest, converting only them."""
        count = len(programs)
        if any(len(component) > slots for program in programs
               for component, slots in zip(program.components(), self.capacities,
                                           strict=True)):  # rare: grow every row's slots
            self.restore(self.programs_at(range(count, len(self.codes))) + list(programs),
                         self.scores[count:].tolist() + list(fitness))
            return
        codes, data, sizes = programs_to_arrays(programs, self.capacities)
        self.codes = np.concatenate([self.codes[count:], codes])
        self.data = np.concatenate([self.data[count:], data])
        self.sizes = np.concatenate([self.sizes[count:], sizes])
        self.scores = np.concatenate([self.scores[count:], np.asarray(fitness, np.float64)])

    def _set_programs(self, programs):
        self.capacities = capacities(self.settings, programs)
        self.codes, self.data, self.sizes = programs_to_arrays(programs, self.capacities)
        self.batch_mutator = BatchMutator(self.settings, self.capacities, self.rng)
        log.debug("batch evolution: %d individuals in slots %s, chunks of %d", len(programs),
                  self.capacities, self.batch_size)

    # --- the loop (see the module docstring) ---------------------------------------------------

    def initialize(self):
        """Fill every slot with an initial program (passed through a 0-action mutation)."""
        programs = [self.mutator.mutate(self.generator.initial_program(), 0)
                    for _ in range(self.population_size)]
        self._set_programs(programs)
        self.scores = self._score(self.codes, self.data, self.sizes)

    def restore(self, population, fitness, state: dict | None = None):
        """Continue from a saved population (a checkpoint) and, if given, its random stream."""
        self._set_programs(list(population))
        self.scores = np.array(fitness, dtype=np.float64)
        if state is not None:
            self.rng.bit_generator.state = state["rng"]

    def state(self) -> dict:
        """What a checkpoint needs beyond the population: the random stream, JSON-ready."""
        return {"rng": self.rng.bit_generator.state}

    def generation(self):
        """One pass over the slots in index order, a chunk of children at a time."""
        size, tournament = self.population_size, self.tournament_size
        for start in range(0, size, self.batch_size):
            slots = slice(start, min(size, start + self.batch_size))
            count = slots.stop - slots.start

            # argmax keeps the first of equal maxima: the first drawn wins ties.
            drawn = self.rng.integers(0, size, (count, tournament))
            winners = drawn[np.arange(count), np.argmax(self.scores[drawn], axis=1)]

            # copies of the parents' rows, mutated in place
            codes, data, sizes = self.codes[winners], self.data[winners], self.sizes[winners]
            changed = self.batch_mutator.mutate(codes, data, sizes)
            rescore = changed | self._draws(codes, sizes)
            scores = self.scores[winners]
            same = count - int(rescore.sum())
            self.scorer.individuals += same  # a child equal to its parent: known, as in evolve
            self.scorer.cache_hits += same
            self.scorer.train_steps += self.scorer.steps_per_individual * same
            if same < count:
                scores[rescore] = self._score(codes[rescore], data[rescore], sizes[rescore])

            self.codes[slots], self.data[slots], self.sizes[slots] = codes, data, sizes
            self.scores[slots] = scores
        self.generations += 1

    def run(self, max_train_steps: int, max_seconds: float = math.inf, should_stop=None):
        """Generations until the train steps or time run out, or `should_stop()` says so.

        NOTE: like the original, limits are checked between generations only.
        """
        start_steps, start = self.scorer.train_steps, time.monotonic()
        while (self.scorer.train_steps - start_steps < max_train_steps
               and time.monotonic() - start < max_seconds):
            self.generation()
            if should_stop is not None and should_stop():
                return

    def stats(self) -> PopulationStats:
        """Mean, population st.dev and the first best, as RegularizedEvolution.stats."""
        scores = self.scores
        mean = float(scores.mean())
        variance = float((scores * scores).mean()) - mean * mean
        best = int(np.argmax(scores))
        return PopulationStats(mean, math.sqrt(max(variance, 0.0)), best, float(scores[best]))

    def best(self):
        """(program, fitness) of the first best individual."""
        stats = self.stats()
        return self.program(stats.best_index), stats.best_fitness

    # --- scoring -------------------------------------------------------------------------------

    def _score(self, codes: np.ndarray, data: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Fitness of new individuals: train budget, then the FEC, then evaluation."""
        scorer, count = self.scorer, len(codes)
        # Per row: the seed of its evaluation if it draws random numbers, else None.
        seeds = [evaluation_seed(scorer.seed, scorer.individuals + 1 + i) if draws else None
                 for i, draws in enumerate(self._draws(codes, sizes).tolist())]
        scorer.individuals += count
        scorer.train_steps += scorer.steps_per_individual * count
        scores = np.full(count, MIN_FITNESS)
        allowed = np.ones(count, bool)
        if self._budget_limit is not None:
            allowed = self._within_budget(codes, sizes)
            scorer.budget_rejects += count - int(allowed.sum())
        rows = np.flatnonzero(allowed)
        if not rows.size:
            return scores
        codes, data, sizes = codes[rows], data[rows], sizes[rows]
        seeds = [seeds[i] for i in rows.tolist()]

        packed = self._pack(scorer.evaluator, codes, data)
        functional = scorer.functional
        if functional is None:
            scores[rows] = self._evaluate(codes, data, sizes, packed, seeds)
            return scores
        keys = self._fingerprint_keys(codes, data, sizes, packed)

        def evaluate(fresh):
            sub = None if packed is None else subset(packed, fresh)
            return self._evaluate(codes[fresh], data[fresh], sizes[fresh], sub,
                                  [seeds[i] for i in fresh.tolist()])

        scores[rows] = functional.score(keys, evaluate)
        return scores

    def _in_component(self, sizes: np.ndarray) -> list[np.ndarray]:
        """Per component, which slots of each row hold one of its instructions (not padding)."""
        slot = np.arange(sum(self.capacities))
        starts = np.cumsum((0,) + self.capacities[:2])
        return [(slot >= start) & (slot < start + sizes[:, c, None])
                for c, start in enumerate(starts)]

    def _within_budget(self, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Whether each program's compute cost is within the train budget (reference §13)."""
        costs = _COSTS[codes[:, :, 0]]
        # No-ops cost too, but a component's padding is no instruction.
        setup, predict, learn = (np.where(inside, costs, 0).sum(axis=1)
                                 for inside in self._in_component(sizes))
        return setup + self.scorer.num_train * (predict + learn) <= self._budget_limit

    def _draws(self, codes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Whether each program has an instruction that draws random numbers (live or not)."""
        draws = _DRAWS[codes[:, :, 0]]
        if not draws.any():  # most experiments have no random op at all
            return np.zeros(len(codes), bool)
        return (draws & np.logical_or.reduce(self._in_component(sizes))).any(axis=1)

    def _evaluate(self, codes, data, sizes, packed: Packed | None, seeds: list) -> np.ndarray:
        """Fitness of each row: plain ones in one native call, drawing ones (a seed, not None)
        one by one, each from its own seed."""
        scorer = self.scorer
        scorer.evaluations += len(codes)
        scorer.train_steps += scorer.steps_per_evaluation * len(codes)
        evaluator = scorer.evaluator
        drawing = [i for i, seed in enumerate(seeds) if seed is not None]
        if not drawing:
            return self._evaluate_plain(evaluator, codes, data, sizes, packed)
        result = np.empty(len(codes))
        plain = np.array([i for i, seed in enumerate(seeds) if seed is None], dtype=np.int64)
        if plain.size:
            result[plain] = self._evaluate_plain(
                evaluator, codes[plain], data[plain], sizes[plain],
                None if packed is None else subset(packed, plain))
        for i, program in zip(drawing, self._programs(codes[drawing], data[drawing],
                                                        sizes[drawing]), strict=True):
            result[i] = evaluator.fitness_batch([program], seed=seeds[i])[0]
        return result

    def _evaluate_plain(self, evaluator, codes, data, sizes, packed: Packed | None):
        if packed is not None and getattr(evaluator, "_fallback", None) is None:
            try:
                return evaluator.combined(evaluator.task_fitness_packed(packed, evaluator.memory))
            except NativeBuildError:  # logged by the engine, which now has its fallback
                pass
        return np.asarray(evaluator.fitness_batch(self._programs(codes, data, sizes)),
                          np.float64)

    def _fingerprint_keys(self, codes, data, sizes, packed: Packed | None):
        """One 64-bit key per program: its short-run errors hashed with the budget (§12).

        `packed` holds the programs packed for the evaluator; the fingerprinter reads the same
        records when built for the same shape (as Search builds it).
        """
        functional = self.scorer.functional
        fingerprinter, evaluator = functional.evaluator, self.scorer.evaluator
        if packed is None or _shape(fingerprinter) != _shape(evaluator):
            packed = self._pack(fingerprinter, codes, data)
        if packed is not None and getattr(fingerprinter, "_fallback", None) is None:
            try:
                train, valid = recorded_errors(fingerprinter, packed)
            except NativeBuildError:  # NOTE: keys change kind, so the cache starts afresh
                packed = None
        if packed is None or getattr(fingerprinter, "_fallback", None) is not None:
            return functional.keys(self._programs(codes, data, sizes))
        words = np.concatenate([train, valid], axis=1).view(np.uint64)
        return hash_rows(words, functional.budget)

    def _pack(self, evaluator, codes, data) -> Packed | None:
        """The native records of these programs, or None for evaluators without them."""
        if not hasattr(evaluator, "task_fitness_packed") or evaluator.memory is None:
            return None
        shape = _shape(evaluator)
        table = self._tables.get(shape)
        if table is None:
            table = self._tables[shape] = RecordTable(
                evaluator.memory, evaluator.F, evaluator.ops if evaluator.fixed_ops else None)
        return table.pack(codes, data, self.capacities)

    def _programs(self, codes, data, sizes) -> list:
        return arrays_to_programs(codes, data, self.capacities, sizes)


def _shape(evaluator) -> tuple:
    return (getattr(evaluator, "memory", None), getattr(evaluator, "F", None),
            getattr(evaluator, "ops", None), getattr(evaluator, "fixed_ops", None))
