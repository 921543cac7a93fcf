"""The experiment driver: search, select, final, as the original's run_search_experiment (§14).

    best = None
    repeat experiments:
        draw task seeds (if randomized); evolve on the search tasks until the train budget is spent
        candidate = population best; select_fitness = fitness on the select tasks
        if select_fitness >= best's: best = candidate
        stop if select_fitness > sufficient_fitness, or after max_experiments
    report best's fitness on the final tasks

One change to the original, on by default (`early_select`): whenever the population's best
search fitness improves past `early_select_above`, that candidate is scored on the select tasks
at once, and the experiment ends as soon as one passes. A reported solution still meets the
same select criterion, and is still scored on the same final tasks.

The driver saves its state between generations only, so a checkpoint is always consistent.
"""

import gc
import logging
import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from azc.budget import TrainBudget
from azc.evolve import FunctionalCache, Hurdle, RegularizedEvolution, Scorer
from azc.evolve_batch import BatchEvolution
from azc.experiment import Experiment
from azc.fec import FEC_SEED
from azc.generator import Generator, baseline_program
from azc.ir import Program
from azc.mutator import Mutator
from azc.taskfile import make_collection
from azc.tasks import randomize_seeds

log = logging.getLogger("azc")


def make_evaluator(tasks, memory, engine: str = "auto", ops=None, **options):
    """The evaluator of the named engine ("auto": the fastest available, else the reference)."""
    try:
        from azc.engine import make_evaluator as native
    except ImportError:
        native = None
    if native is None or engine == "reference":
        from azc.reference import ReferenceEvaluator

        return ReferenceEvaluator(tasks, memory, **options)
    return native(tasks, memory, engine=engine, ops=ops, **options)


def cache_key():
    """Programs with the same live code score alike: key the exact cache by it.

    NOTE: azc.hashing.structural_hash also folds constants and renames addresses, for a few
    more hits, but costs several times more per child than the evaluation it would save.
    """
    from azc.evolve import live_code

    return live_code


@dataclass
class Outcome:
    """What a search found."""

    program: Program | None = None
    search_fitness: float = 0.0
    select_fitness: float = -math.inf
    final_fitness: float | None = None
    experiments: int = 0
    individuals: int = 0
    seconds: float = 0.0
    solved: bool = False
    interrupted: bool = False

    def offer(self, program: Program, search_fitness: float, select_fitness: float):
        """Keep a candidate if its select fitness is at least the best so far (ties: newest)."""
        if select_fitness >= self.select_fitness:
            self.program, self.search_fitness = program, search_fitness
            self.select_fitness = select_fitness

    def close_experiment(self, index: int, program: Program, search_fitness: float,
                         select_fitness: float, individuals: int, seconds: float) -> dict:
        """Count an ended experiment, offer its candidate; the record monitors receive."""
        self.experiments += 1
        self.offer(program, search_fitness, select_fitness)
        return {"experiment": index, "search_fitness": search_fitness,
                "select_fitness": select_fitness, "individuals": individuals,
                "seconds": round(seconds, 3), "best_select_fitness": self.select_fitness}

    def finished(self, table) -> bool:
        """Whether the search is over: solved, or out of experiments (`table`: [experiments])."""
        if table.sufficient_fitness is not None and self.select_fitness > table.sufficient_fitness:
            self.solved = True
            return True
        return bool(table.max_experiments) and self.experiments >= table.max_experiments

    def summary(self) -> dict:
        from azc.printer import format_program

        return {
            "search_fitness": self.search_fitness,
            "select_fitness": self.select_fitness if self.program else None,
            "final_fitness": self.final_fitness, "experiments": self.experiments,
            "individuals": self.individuals, "seconds": round(self.seconds, 3),
            "individuals_per_second": round(self.individuals / max(self.seconds, 1e-9), 1),
            "solved": self.solved, "interrupted": self.interrupted,
            "best_program": format_program(self.program) if self.program else None,
        }


class Monitor:
    """What a search reports while it runs; the run directory and the live view listen."""

    wants_checkpoints = False  # whether `checkpoint` should get the search state

    def progress(self, record: dict): ...

    def improved(self, program: Program, fitness: float, previous: Program | None): ...

    def experiment_done(self, record: dict): ...

    def checkpoint(self, state: dict): ...


@dataclass
class ExperimentState:
    """One experiment in progress: its seeds, its evolution and its best candidate so far."""

    index: int
    task_seed: int
    eval_seed: int
    evolution: RegularizedEvolution
    scorer: Scorer
    make_select: Callable[[], object]  # the select evaluator's maker: islands never need it
    steps_at_start: int = 0
    checked_above: float = -math.inf  # early select: best search fitness already checked
    champion: tuple | None = None  # (program, search fitness) that passed early select
    _select: object = None

    @property
    def select_evaluator(self):
        """The evaluator of the select tasks, made (tasks and all) on first use."""
        if self._select is None:
            self._select = self.make_select()
        return self._select


@dataclass
class Search:
    """A run of experiments with one seed; `run()` returns the Outcome."""

    experiment: Experiment
    seed: int
    monitors: list = field(default_factory=list)
    max_seconds: float = math.inf
    checkpoint_seconds: float = 30.0
    progress_seconds: float = 1.0
    engine: str = "auto"

    def __post_init__(self):
        self.rng = random.Random(self.seed)
        table = self.experiment.table
        self.mutator = Mutator(self.experiment.mutation, self.rng)
        self.generator = Generator(table.evolution.initial_population, self.experiment.sizes,
                                   self.mutator)
        self.budget = None
        if table.train_budget is not None:
            baseline = baseline_program(table.train_budget.baseline, self.experiment.sizes)
            self.budget = TrainBudget(baseline, table.train_budget.factor)
        self.outcome = Outcome()
        self.current: ExperimentState | None = None
        self.stop_requested = False
        self._elapsed_before = 0.0
        self._started = time.monotonic()
        self._individuals_before = 0
        self._last_progress = self._last_checkpoint = 0.0
        self._reported = -1  # individuals at the last progress record
        self._best_search: tuple | None = None  # (program, fitness) shown to monitors
        self._resume_state: dict | None = None

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> Outcome:
        """Run experiments until solved, out of experiments or out of time; then final tasks."""
        table = self.experiment.table.experiments
        with _stop_on_sigint(self), _without_cyclic_gc():
            while not self.outcome.finished(table):
                if self.current is None:
                    self._start_experiment()
                self._evolve()
                interrupted = self.stop_requested or self._out_of_time()
                if interrupted and self.current.champion is None:
                    break
                self._end_experiment()
            self.outcome.seconds = self.seconds()
            self.outcome.individuals = self.individuals()
            if self.stop_requested or (self._out_of_time() and not self.outcome.finished(table)):
                self.outcome.interrupted = True
            self._save_checkpoint()
            if self.current is not None and not self.stop_requested:
                self._report_unfinished_experiment()
            if self.outcome.program is not None and self.experiment.final_tasks:
                self.outcome.final_fitness = self._final_fitness(self.outcome.program)
        return self.outcome

    def _start_experiment(self, state: dict | None = None):
        """Seeds, tasks, evaluators and a new population (or the one of a checkpoint)."""
        exp = self.experiment
        table = exp.table
        index = self.outcome.experiments
        task_seed = state["task_seed"] if state else self.rng.getrandbits(32)
        eval_seed = state["eval_seed"] if state else self.rng.getrandbits(63)
        randomize = table.experiments.randomize_task_seeds
        search_specs = randomize_seeds(exp.search_tasks, task_seed) if randomize \
            else exp.search_tasks
        select_specs = randomize_seeds(exp.select_tasks, task_seed ^ 0x5E1EC7) if randomize \
            else exp.select_tasks
        ops = sorted(set().union(*exp.mutation.ops)
                     | self.generator.hand_written_ops())
        options = dict(max_abs_error=table.evolution.max_abs_error, seed=eval_seed,
                       engine=self.engine, ops=ops)
        search_tasks = make_collection(search_specs)
        evaluator = make_evaluator(search_tasks, exp.memory, combine=table.evolution.combine,
                                   **options)
        memory, select_options = exp.memory, dict(options)

        def select():
            return make_evaluator(make_collection(select_specs), memory, **select_options)

        scorer = self._scorer(search_tasks, evaluator, options)
        if table.evolution.mode == "batch":  # its own stream, from seeds already drawn
            evolution = BatchEvolution(scorer, self.mutator, self.generator,
                                       table.evolution.population_size,
                                       table.evolution.tournament_size,
                                       [self.seed & (2**64 - 1), index, eval_seed],
                                       table.evolution.batch_size)
        else:
            evolution = RegularizedEvolution(scorer, self.mutator, self.generator,
                                             table.evolution.population_size,
                                             table.evolution.tournament_size, self.rng,
                                             table.evolution.batch_size,
                                             table.evolution.deferred)
        self.current = ExperimentState(index, task_seed, eval_seed, evolution, scorer, select)
        log.info("experiment %d: task seed %d", index, task_seed)
        if state is None:
            evolution.initialize()
        self._best_search = None

    def _scorer(self, tasks, evaluator, options) -> Scorer:
        table = self.experiment.table
        full_steps = sum(task.max_train_examples for task in tasks)
        if table.fec is not None:
            per_individual = sum(min(table.fec.train, t.max_train_examples) for t in tasks)
            per_evaluation = full_steps
        else:
            per_individual, per_evaluation = full_steps, 0
        hurdle = None
        if table.hurdle is not None:
            k = table.hurdle.stage_tasks
            hurdle = Hurdle(make_evaluator(tasks[:k], self.experiment.memory, **options),
                            make_evaluator(tasks[k:], self.experiment.memory, **options),
                            k, len(tasks), table.hurdle.percentile, table.hurdle.window)
        functional = None
        if table.fec is not None:
            fec = table.fec
            fingerprinter = make_evaluator(tasks, self.experiment.memory,
                                           **{**options, "seed": FEC_SEED},
                                           num_train=fec.train, num_valid=fec.valid)
            functional = FunctionalCache(fingerprinter, tasks[0].max_train_examples,
                                         fec.cache_size, fec.forget_every)
        return Scorer(evaluator, tasks[0].max_train_examples, budget=self.budget,
                      key=cache_key(), steps_per_individual=per_individual,
                      steps_per_evaluation=per_evaluation, hurdle=hurdle,
                      functional=functional)

    def _evolve(self):
        state = self.current
        limit = self.experiment.table.evolution.max_train_steps
        remaining = limit - (state.scorer.train_steps - state.steps_at_start)
        self._after_generation()  # report the initial population
        if state.champion is None and not self.stop_requested:
            state.evolution.run(remaining, should_stop=self._after_generation)
        if self._reported != self.individuals():  # the last generations, whatever the clock
            self._report(state.evolution.stats())

    def _after_generation(self) -> bool:
        """Between generations: report, maybe checkpoint, maybe check the select tasks."""
        state = self.current
        stats = state.evolution.stats()
        program = state.evolution.population[stats.best_index]
        if self._best_search is None or stats.best_fitness > self._best_search[1]:
            previous = self._best_search[0] if self._best_search else None
            self._best_search = (program, stats.best_fitness)
            for monitor in self.monitors:
                monitor.improved(program, stats.best_fitness, previous)
            self._early_select(program, stats.best_fitness)
        now = time.monotonic()
        if now - self._last_progress >= self.progress_seconds:
            self._last_progress = now
            self._report(stats)
        if now - self._last_checkpoint >= self.checkpoint_seconds:
            self._save_checkpoint()
        return self.stop_requested or state.champion is not None or self._out_of_time()

    def _early_select(self, program: Program, search_fitness: float):
        state, table = self.current, self.experiment.table.experiments
        if (not table.early_select or table.sufficient_fitness is None
                or search_fitness < table.early_select_above
                or search_fitness <= state.checked_above):
            return
        state.checked_above = search_fitness
        select_fitness = float(state.select_evaluator.fitness_batch([program])[0])
        log.info("early select: search %.6f, select %.6f", search_fitness, select_fitness)
        if select_fitness > table.sufficient_fitness:
            state.champion = (program, search_fitness, select_fitness)

    def _end_experiment(self):
        """Score the experiment's candidate on the select tasks; keep it if best so far."""
        state = self.current
        if state.champion is not None:
            program, search_fitness, select_fitness = state.champion
        else:
            program, search_fitness = state.evolution.best()
            select_fitness = float(state.select_evaluator.fitness_batch([program])[0])
        record = self.outcome.close_experiment(state.index, program, search_fitness,
                                               select_fitness, self.individuals(),
                                               self.seconds())
        record.update(cache_hit_rate=round(state.scorer.hit_rate(), 4),
                      evaluations=state.scorer.evaluations,
                      hurdle_rejects=state.scorer.hurdle_rejects)
        log.info("experiment %d done: search %.6f select %.6f", state.index, search_fitness,
                 select_fitness)
        self._individuals_before += state.scorer.individuals
        self.current = None
        for monitor in self.monitors:
            monitor.experiment_done(record)

    def _report_unfinished_experiment(self):
        """At the time limit, score the unfinished experiment's best on the select tasks.

        It is reported if it beats the finished experiments' candidates, so a run that its
        time limit stops still ends with a select and a final fitness. The checkpoint is already
        written: a resumed run goes on with the experiment where it stopped.
        """
        program, search_fitness = self.current.evolution.best()
        select_fitness = float(self.current.select_evaluator.fitness_batch([program])[0])
        self.outcome.offer(program, search_fitness, select_fitness)

    def _final_fitness(self, program: Program) -> float:
        exp = self.experiment
        tasks = make_collection(exp.final_tasks)
        evaluator = make_evaluator(tasks, exp.memory, self.engine,
                                   max_abs_error=exp.table.evolution.max_abs_error,
                                   seed=self.seed)
        return float(evaluator.fitness_batch([program])[0])

    # --- reporting -----------------------------------------------------------------------------

    def seconds(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def individuals(self) -> int:
        current = self.current.scorer.individuals if self.current else 0
        return self._individuals_before + current

    def _out_of_time(self) -> bool:
        return self.seconds() >= self.max_seconds

    def _report(self, stats):
        scorer = self.current.scorer
        seconds = self.seconds()
        self._reported = self.individuals()
        record = {
            "experiment": self.current.index, "individuals": self.individuals(),
            "seconds": round(seconds, 3),
            "individuals_per_second": round(self.individuals() / max(seconds, 1e-9), 1),
            "train_steps": scorer.train_steps - self.current.steps_at_start,
            "mean": stats.mean, "stdev": stats.stdev, "best": stats.best_fitness,
            "cache_hit_rate": round(scorer.hit_rate(), 4),
            "fec_hit_rate": (round(scorer.functional.hits / max(scorer.functional.lookups, 1), 4)
                             if scorer.functional else None),
            "evaluations": scorer.evaluations, "budget_rejects": scorer.budget_rejects,
            "hurdle_rejects": scorer.hurdle_rejects,
        }
        for monitor in self.monitors:
            monitor.progress(record)

    # --- checkpoints ---------------------------------------------------------------------------

    def _save_checkpoint(self):
        self._last_checkpoint = time.monotonic()
        if any(getattr(m, "wants_checkpoints", False) for m in self.monitors):
            state = self.state()
            for monitor in self.monitors:
                monitor.checkpoint(state)

    def state(self) -> dict:
        """Everything needed to continue this search exactly, as JSON-ready values."""
        from azc.printer import format_program

        out = self.outcome
        state = {
            "version": 1, "seed": self.seed, "seconds": self.seconds(),
            "individuals_before": self._individuals_before,
            "rng": _rng_to_json(self.rng.getstate()),
            "outcome": {"experiments": out.experiments, "search_fitness": out.search_fitness,
                        "select_fitness": out.select_fitness if out.program else None,
                        "program": format_program(out.program) if out.program else None},
            "experiment": None,
        }
        current = self.current
        if current is not None:
            scorer, evolution = current.scorer, current.evolution
            state["experiment"] = {
                "index": current.index, "task_seed": current.task_seed,
                "eval_seed": current.eval_seed, "checked_above": _finite(current.checked_above),
                "population": [format_program(p) for p in evolution.population],
                "fitness": list(evolution.fitness), "generations": evolution.generations,
                "scorer": {"individuals": scorer.individuals, "cache_hits": scorer.cache_hits,
                           "evaluations": scorer.evaluations, "train_steps": scorer.train_steps,
                           "budget_rejects": scorer.budget_rejects,
                           "hurdle_rejects": scorer.hurdle_rejects,
                           "recent": list(scorer._recent)},
                "functional": scorer.functional.state() if scorer.functional else None,
            }
            if isinstance(evolution, BatchEvolution):
                state["experiment"]["batch"] = evolution.state()
        return state

    def restore(self, state: dict):
        """Continue from `state()` output (after a restart with the same experiment and seed)."""
        from azc.parse import parse

        self._elapsed_before = state["seconds"]
        self._started = time.monotonic()
        self._individuals_before = state["individuals_before"]
        saved = state["outcome"]
        out = self.outcome
        out.experiments, out.search_fitness = saved["experiments"], saved["search_fitness"]
        if saved["program"] is not None:
            out.program = parse(saved["program"])
            out.select_fitness = saved["select_fitness"]
        current = state["experiment"]
        if current is not None:
            self._start_experiment(current)
            evolution, scorer = self.current.evolution, self.current.scorer
            batch = {"state": current["batch"]} if current.get("batch") else {}
            evolution.restore([parse(text) for text in current["population"]],
                              current["fitness"], **batch)
            evolution.generations = current["generations"]
            if scorer.functional is not None and current.get("functional"):
                scorer.functional.restore(current["functional"])
            for name, value in current["scorer"].items():
                if name == "recent":
                    scorer._recent.extend(value)
                else:
                    setattr(scorer, name, value)
            self.current.checked_above = (-math.inf if current["checked_above"] is None
                                          else current["checked_above"])
        # The rng last: starting the experiment above must not consume draws.
        self.rng.setstate(_rng_from_json(state["rng"]))


def _finite(value: float):
    return value if math.isfinite(value) else None


def _rng_to_json(state) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(value) -> tuple:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


class _without_cyclic_gc:
    """Pause Python's cycle collector while a search runs.

    NOTE: evolution allocates millions of small acyclic tuples, which reference counting frees;
    the collector's full passes over the large fitness caches cost more than they reclaim.
    """

    def __enter__(self):
        self.enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc):
        if self.enabled:
            gc.enable()


class _stop_on_sigint:
    """While a search runs in the main thread, Ctrl-C (SIGINT) or SIGTERM (`kill`, `timeout`,
    job schedulers) asks it to stop at the next generation, checkpointing as a time limit does.

    A second signal interrupts at once.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, search: Search):
        self.search = search
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = [signal.signal(s, self._handle) for s in self.SIGNALS]

    def _handle(self, signum, frame):
        if self.search.stop_requested:
            raise KeyboardInterrupt
        log.warning("interrupted (%s): stopping after this generation",
                    signal.Signals(signum).name)
        self.search.stop_requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            for s, previous in zip(self.SIGNALS, self.previous, strict=True):
                signal.signal(s, previous)
