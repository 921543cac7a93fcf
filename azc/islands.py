"""The island model: W populations evolving at once, exchanging migrants (AutoML-Zero §4).

The driver keeps the original's experiments (azc.search): per experiment it draws the task
and evaluation seeds, and every island searches the same tasks with its own random stream
(split from the run's seed by numpy's SeedSequence). The experiment's train budget is shared:
the islands together spend `max_train_steps` (deterministic islands 1/W each; asynchronous ones
draw on the common budget as they go, so that none waits for the others at the end, and
overshoot it by a few generations at most). Select, early select, the sufficient-fitness stop
and the final tasks apply to the best program across islands.

    per experiment:
        begin every island (its own population)
        repeat until the islands spent the budget, or a candidate passed early select:
            island: generations until its next migration point (every `migrate_every`
                    individuals, checked between generations) or ~1 s, then report
            at a migration point the island sends half its population (drawn at random) and
            receives as many, drawn from the latest emigrants of the other islands; they
            replace its oldest individuals and join as its youngest (azc.island)
        candidate = the best island's best program -> select tasks, as azc.search does

By default migration is asynchronous: an island takes whatever the others sent last. With
`[islands] deterministic = true` all islands wait for each other at every migration point
and decisions (early select, the end of an experiment) are taken only there, so a seed gives
one result whether the islands run in processes or as Ray actors.

Islands run behind a transport: worker processes (azc.process_islands) or Ray actors
(azc.ray_islands). Messages are JSON text. An island whose process dies is restarted from its
last checkpoint (asked for every `checkpoint_seconds`), and the progress log records it.
"""

import json
import logging
import math
import os
import random
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from azc.errors import AzcError
from azc.experiment import Experiment
from azc.generator import Generator
from azc.ir import Program
from azc.island import ProgramCodec
from azc.printer import format_program
from azc.search import Outcome, _stop_on_sigint, make_evaluator
from azc.taskfile import make_collection
from azc.tasks import randomize_seeds

log = logging.getLogger("azc")

REPORT_SECONDS = 1.0  # an island answers at least this often, for progress and stops
MAX_RESTARTS = 3  # an island dying more often than this in a row, without a report, ends the run
PREPARE_SECONDS = 5.0  # the select evaluator is made this long before an experiment's end


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def island_seeds(seed: int, count: int) -> list[int]:
    """Island i's seed: the i-th child of the run seed's SeedSequence (independent of count)."""
    root = np.random.SeedSequence(seed)
    return [int(child.generate_state(1)[0]) for child in root.spawn(count)]


@dataclass
class IslandOutcome(Outcome):
    islands: int = 0
    restarts: int = 0

    def summary(self) -> dict:
        return {**super().summary(), "islands": self.islands, "restarts": self.restarts}


@dataclass
class _IslandView:
    """What the driver knows of one island in the current experiment."""

    until: int  # its next migration point, in individuals of this experiment
    pending: bool = False
    waiting: bool = False  # deterministic mode: at a migration point, waiting for the others
    done: bool = False  # spent its share of train steps (its last, asynchronously)
    report: dict = field(default_factory=dict)
    best: str | None = None  # text of its best program
    emigrants: list = field(default_factory=list)
    last_state: float = -math.inf  # when its last checkpoint arrived


@dataclass
class _Current:
    index: int
    task_seed: int
    eval_seed: int
    make_select: object  # makes the select evaluator (prepare_select, or when first needed)
    views: list
    checked_above: float = -math.inf
    champion: tuple | None = None
    migrations: int = 0
    started: float = field(default_factory=time.monotonic)
    _select: object = None
    _preparing: threading.Thread | None = None
    _failure: BaseException | None = None

    def prepare_select(self):
        """Make the select evaluator and compile its code in a thread, while the islands evolve
        (the driver starts it a few seconds before the experiment's end).

        NOTE: made when first needed, at the end of the experiment, it kept every island
        waiting: ~1.6 s of compiling in the first experiment (its code differs from the search
        tasks'), ~0.1 s of making tasks in the others. The compiler runs without the GIL.
        """
        def make():
            try:
                evaluator = self.make_select()
                evaluator.fitness_batch([Program((), (), ())])  # compiles; draws no randomness
                self._select = evaluator
            except BaseException as error:  # raised where the evaluator is needed
                self._failure = error

        self._preparing = threading.Thread(target=make, name="azc-select", daemon=True)
        self._preparing.start()

    def preparing_or_ready(self) -> bool:
        return self._preparing is not None or self._select is not None

    def prepared(self):
        """Wait for prepare_select's thread (before any other evaluator compiles)."""
        if self._preparing is not None:
            self._preparing.join()
            self._preparing = None
            if self._failure is not None:
                raise self._failure

    def select_fitness(self, program) -> float:
        self.prepared()
        if self._select is None:
            self._select = self.make_select()
        return float(self._select.fitness_batch([program])[0])


@dataclass
class IslandSearch:
    """A run of experiments on `islands` islands; `run()` returns an IslandOutcome."""

    experiment: Experiment
    seed: int
    islands: int = 2
    monitors: list = field(default_factory=list)
    max_seconds: float = math.inf
    checkpoint_seconds: float = 30.0
    progress_seconds: float = REPORT_SECONDS
    engine: str = "auto"
    transport: object = None  # ProcessIslands unless given (azc.ray_islands.RayIslands)
    folder: str | None = None  # relative data paths' folder [default: the experiment file's]

    def __post_init__(self):
        self.rng = random.Random(self.seed)  # the experiments' seeds, as azc.search draws them
        self.migration_rng = random.Random(island_seeds(self.seed, self.islands + 1)[-1])
        self.settings = self.experiment.table.islands
        self.generator = Generator(self.experiment.table.evolution.initial_population,
                                   self.experiment.sizes, None)
        self.codec = ProgramCodec()
        self.outcome = IslandOutcome(islands=self.islands)
        self.current: _Current | None = None
        self.stop_requested = False
        self._started = time.monotonic()
        self._elapsed_before = 0.0
        self._individuals_before = 0
        self._best_search: tuple | None = None  # (text, fitness) shown to monitors
        self._states: dict[int, dict] = {}  # island -> its latest checkpoint
        self._failures: dict[int, int] = {}  # island -> deaths since its last report
        self._resume: dict | None = None

    def setup(self) -> dict:
        """What every island's worker needs to build its island (JSON-ready)."""
        exp = self.experiment
        folder = self.folder if self.folder is not None else Path(exp.path or ".").parent
        return {"experiment": exp.text, "path": exp.path, "folder": os.path.abspath(folder),
                "engine": self.engine, "seeds": island_seeds(self.seed, self.islands)}

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> IslandOutcome:
        """Experiments until solved, out of experiments or out of time; then final tasks."""
        table = self.experiment.table.experiments
        if self.transport is None:
            from azc.process_islands import ProcessIslands

            self.transport = ProcessIslands(self.islands, self.setup())
        with _stop_on_sigint(self):
            try:
                for island in range(self.islands):
                    self.transport.start(island)
                while not self.outcome.finished(table):
                    if self.current is None:
                        self._start_experiment(self._resume)
                        self._resume = None
                    self._evolve()
                    interrupted = self.stop_requested or self._out_of_time()
                    if interrupted and self.current.champion is None:
                        break
                    self._end_experiment()
                out = self.outcome
                out.seconds, out.individuals = self.seconds(), self.individuals()
                if self.stop_requested or (self._out_of_time() and not out.finished(table)):
                    out.interrupted = True
                self._final_checkpoint()
                if self.current is not None and not self.stop_requested:
                    self._report_unfinished_experiment()
            finally:
                self.transport.close()
                if self.current is not None:
                    self.current.prepared()
        if self.outcome.program is not None and self.experiment.final_tasks:
            self.outcome.final_fitness = self._final_fitness(self.outcome.program)
        return self.outcome

    def _start_experiment(self, saved: dict | None = None):
        """Seeds and the select tasks here; a population (new or a checkpoint's) per island."""
        index = self.outcome.experiments
        task_seed = saved["task_seed"] if saved else self.rng.getrandbits(32)
        eval_seed = saved["eval_seed"] if saved else self.rng.getrandbits(63)

        until = saved["until"] if saved else [self._migrate_every()] * self.islands
        views = [_IslandView(until=until[i]) for i in range(self.islands)]
        select = partial(self.select_evaluator, task_seed, eval_seed)
        self.current = _Current(index, task_seed, eval_seed, select, views)
        if saved:
            self.current.checked_above = (-math.inf if saved["checked_above"] is None
                                          else saved["checked_above"])
            self.current.migrations = saved["migrations"]
            # The islands' checkpointed counts, so the run's total goes on from where it was
            # before the first report after a resume.
            for island, view in enumerate(views):
                view.report = {"individuals": _island_individuals(self._states.get(island),
                                                                  index) or 0}
        self._best_search = None
        log.info("experiment %d: task seed %d, %d islands", index, task_seed, self.islands)
        for island in range(self.islands):
            self._begin(island)
        while any(view.pending for view in views):
            self._receive(begin_only=True)

    def select_evaluator(self, task_seed: int, eval_seed: int):
        """An experiment's select tasks, evaluated as azc.search.Search (and so each island)
        evaluates them."""
        exp, table = self.experiment, self.experiment.table
        specs = exp.select_tasks
        if table.experiments.randomize_task_seeds:
            specs = randomize_seeds(specs, task_seed ^ 0x5E1EC7)
        ops = sorted(set().union(*exp.mutation.ops) | self.generator.hand_written_ops())
        return make_evaluator(make_collection(specs), exp.memory,
                              max_abs_error=table.evolution.max_abs_error, seed=eval_seed,
                              engine=self.engine, ops=ops)

    def _migrate_every(self) -> int:
        return self.settings.migrate_every if self.islands > 1 else 2**62

    def _begin(self, island: int):
        current = self.current
        message = {"command": "begin", "experiment": current.index,
                   "task_seed": current.task_seed, "eval_seed": current.eval_seed,
                   "state": self._states.get(island)}
        self._send(island, message)

    def _send(self, island: int, message: dict):
        self.current.views[island].pending = True
        self.transport.send(island, json.dumps(message))

    def _evolve(self):
        """Keep every island evolving until the experiment ends (see the module docstring)."""
        current = self.current
        for island, view in enumerate(current.views):
            if not view.done:
                self._command(island)
        while any(view.pending for view in current.views):
            self._receive()
            ending = self._unspent() < self._rate() * PREPARE_SECONDS
            if ending and not current.preparing_or_ready():
                current.prepare_select()
            if self.settings.deterministic:
                self._barrier()
            elif not self._stopping():
                self._early_select()

    def _stopping(self) -> bool:
        return (self.stop_requested or self._out_of_time()
                or self.current.champion is not None)

    def _limit(self, island: int) -> int:
        """The train steps of this experiment after which the island stops and answers done.

        Deterministic islands each spend a fixed 1/W of the budget. Asynchronous ones draw on
        one budget: each gets its own steps plus an equal part of what the islands have not
        spent, so they finish together rather than the quickest waiting for the slowest.
        """
        budget = self.experiment.table.evolution.max_train_steps
        if self.settings.deterministic:
            return -(-budget // self.islands)
        views = self.current.views
        active = sum(not view.done for view in views)
        return self._spent(island) + -(-self._unspent() // max(active, 1))

    def _spent(self, island: int) -> int:
        return self.current.views[island].report.get("train_steps", 0)

    def _unspent(self) -> int:
        budget = self.experiment.table.evolution.max_train_steps
        return budget - sum(self._spent(island) for island in range(self.islands))

    def _seconds(self) -> float:
        """How long an island evolves before it answers: `progress_seconds`, but a tenth of it
        for asynchronous islands near the end of the budget, so that the limits they get rest
        on fresh counts (an island's limit counts the others' steps as last reported)."""
        if self.settings.deterministic:
            return self.progress_seconds
        if self._unspent() < 2 * self._rate() * self.progress_seconds:
            return self.progress_seconds / 10
        return self.progress_seconds

    def _rate(self) -> float:
        """Train steps per second the islands spend together in this experiment."""
        spent = sum(self._spent(island) for island in range(self.islands))
        return spent / max(time.monotonic() - self.current.started, 1e-9)

    def _command(self, island: int, immigrants=()):
        view = self.current.views[island]
        checkpoint = time.monotonic() - view.last_state >= self.checkpoint_seconds
        self._send(island, {"command": "evolve", "until": view.until,
                            "max_train_steps": self._limit(island),
                            "seconds": self._seconds(), "immigrants": list(immigrants),
                            "checkpoint": checkpoint,
                            "migrate_every": self._migrate_every() if self.islands > 1 else 0})

    def _receive(self, begin_only: bool = False):
        """Take the islands' answers; restart dead islands; send each its next command."""
        for island, answer in self.transport.wait(timeout=0.5):
            view = self.current.views[island]
            view.pending = False
            if answer is None:
                self._restart(island)
                continue
            answer = json.loads(answer)
            if "error" in answer:
                raise RuntimeError(f"island {island} failed:\n{answer['error']}")
            self._absorb(island, answer)
            if begin_only:
                continue
            if answer.get("done") and (self.settings.deterministic or self._unspent() <= 0):
                view.done = True
            elif answer.get("at_migration"):
                view.emigrants = answer.get("emigrants", [])
                view.until += self._migrate_every()
                if self.settings.deterministic:
                    view.waiting = True
                elif not self._stopping():
                    self._command(island, self._immigrants(island))
            elif not self._stopping():
                self._command(island)

    def _absorb(self, island: int, answer: dict):
        """Record an island's report: progress, a better best program, a checkpoint."""
        view = self.current.views[island]
        view.report = answer
        self._failures[island] = 0
        if "best_program" in answer:
            view.best = answer["best_program"]
        if "state" in answer:
            view.last_state = time.monotonic()
            self._states[island] = {**answer["state"], "island": island}
            self._checkpoint(island)
        if self._best_search is None or answer["best"] > self._best_search[1]:
            previous = self.codec.parse(self._best_search[0]) if self._best_search else None
            self._best_search = (view.best, answer["best"])
            for monitor in self.monitors:
                monitor.improved(self.codec.parse(view.best), answer["best"], previous)
        self._report(island, answer)

    def _immigrants(self, island: int, sources=None) -> list:
        """As many as the island sends, drawn from the other islands' latest emigrants."""
        views = self.current.views
        pool = [migrant for other, view in enumerate(views)
                if other != island and (sources is None or other in sources)
                for migrant in view.emigrants]
        wanted = len(views[island].emigrants)
        if not pool or not wanted:
            return []
        self.current.migrations += 1
        return self.migration_rng.sample(pool, min(wanted, len(pool)))

    def _barrier(self):
        """Deterministic mode: once every island still evolving waits, migrate and go on."""
        views = self.current.views
        if any(view.pending for view in views):
            return
        if not self.stop_requested and not self._out_of_time():
            self._early_select()
        if self._stopping():
            return
        waiting = {i for i, view in enumerate(views) if view.waiting and not view.done}
        batches = {island: self._immigrants(island, waiting) for island in sorted(waiting)}
        for island, immigrants in batches.items():
            views[island].waiting = False
            self._command(island, immigrants)

    def _early_select(self):
        """The best island's best program on the select tasks, as azc.search does it."""
        current, table = self.current, self.experiment.table.experiments
        island, view = self._best_island()
        if view is None:
            return
        fitness = view.report["best"]
        if (not table.early_select or table.sufficient_fitness is None
                or fitness < table.early_select_above or fitness <= current.checked_above):
            return
        current.checked_above = fitness
        program = self.codec.parse(view.best)
        select_fitness = current.select_fitness(program)
        log.info("early select (island %d): search %.6f, select %.6f", island, fitness,
                 select_fitness)
        if select_fitness > table.sufficient_fitness:
            current.champion = (program, fitness, select_fitness)

    def _best_island(self):
        """(index, view) of the island with the best program (the first, on ties)."""
        best = (None, None)
        for island, view in enumerate(self.current.views):
            if view.best is not None and (best[1] is None
                                          or view.report["best"] > best[1].report["best"]):
                best = (island, view)
        return best

    def _end_experiment(self):
        """The candidate (the best across islands) on the select tasks; keep it if best."""
        current = self.current
        if current.champion is not None:
            program, search_fitness, select_fitness = current.champion
        else:
            _, view = self._best_island()
            program, search_fitness = self.codec.parse(view.best), view.report["best"]
            select_fitness = current.select_fitness(program)
        record = self.outcome.close_experiment(current.index, program, search_fitness,
                                               select_fitness, self.individuals(),
                                               self.seconds())
        record["migrations"] = current.migrations
        log.info("experiment %d done: search %.6f select %.6f", current.index, search_fitness,
                 select_fitness)
        self._individuals_before = self.individuals()
        self.current = None
        self._states.clear()
        for monitor in self.monitors:
            monitor.experiment_done(record)

    def _report_unfinished_experiment(self):
        """At the time limit, the best across islands of the unfinished experiment, scored on
        the select tasks, is reported if it beats the finished experiments' candidates (the
        checkpoint, already written, resumes the experiment where it stopped)."""
        _, view = self._best_island()
        if view is None:
            return
        program, search_fitness = self.codec.parse(view.best), view.report["best"]
        select_fitness = self.current.select_fitness(program)
        self.outcome.offer(program, search_fitness, select_fitness)

    def _final_fitness(self, program) -> float:
        exp = self.experiment
        evaluator = make_evaluator(make_collection(exp.final_tasks), exp.memory, self.engine,
                                   max_abs_error=exp.table.evolution.max_abs_error,
                                   seed=self.seed)
        return float(evaluator.fitness_batch([program])[0])

    # --- faults --------------------------------------------------------------------------------

    def _restart(self, island: int):
        """A dead island: a new worker, restored from the island's last checkpoint."""
        self._failures[island] = self._failures.get(island, 0) + 1
        if self._failures[island] > MAX_RESTARTS:
            raise RuntimeError(f"island {island} died {MAX_RESTARTS + 1} times in a row "
                               "without a report: giving up")
        state = self._states.get(island)
        saved = (state or {}).get("experiment") or {}
        resumed = (saved.get("scorer", {}).get("individuals", 0)
                   if saved.get("index") == self.current.index else 0)
        self.outcome.restarts += 1
        log.warning("island %d died; restarting it from its checkpoint (%d individuals)",
                    island, resumed)
        record = {"event": "island_restarted", "island": island,
                  "experiment": self.current.index, "individuals": self.individuals(),
                  "seconds": round(self.seconds(), 3), "resumed_individuals": resumed}
        for monitor in self.monitors:
            monitor.progress(record)
        view = self.current.views[island]
        view.waiting = view.done = False
        view.emigrants = []
        # NOTE: the individuals evaluated since the checkpoint were spent; keeping them in
        # the run's total means the count never goes backwards.
        self._individuals_before += max(view.report.get("individuals", 0) - resumed, 0)
        view.report = {**view.report, "individuals": resumed}
        self.transport.start(island)
        self._begin(island)

    # --- reporting -----------------------------------------------------------------------------

    def seconds(self) -> float:
        return self._elapsed_before + time.monotonic() - self._started

    def individuals(self) -> int:
        views = self.current.views if self.current else []
        return self._individuals_before + sum(v.report.get("individuals", 0) for v in views)

    def _out_of_time(self) -> bool:
        return self.seconds() >= self.max_seconds

    def _report(self, island: int, answer: dict):
        seconds, individuals = self.seconds(), self.individuals()
        views = self.current.views
        record = {
            "experiment": self.current.index, "island": island, "individuals": individuals,
            "seconds": round(seconds, 3),
            "individuals_per_second": round(individuals / max(seconds, 1e-9), 1),
            "island_individuals": answer["individuals"],
            "train_steps": sum(v.report.get("train_steps", 0) for v in views),
            "migrations": self.current.migrations,
            **{key: answer[key] for key in ("mean", "stdev", "best", "cache_hit_rate",
                                            "fec_hit_rate", "evaluations", "budget_rejects",
                                            "hurdle_rejects")},
        }
        for monitor in self.monitors:
            monitor.progress(record)

    # --- checkpoints ---------------------------------------------------------------------------

    def _wants_checkpoints(self) -> bool:
        return any(getattr(m, "wants_checkpoints", False) for m in self.monitors)

    def _checkpoint(self, island: int | None = None):
        """Write an island's latest state (if given), then the driver's state."""
        if not self._wants_checkpoints():
            return
        for monitor in self.monitors:
            if island is not None and hasattr(monitor, "island_checkpoint"):
                monitor.island_checkpoint(island, self._states[island])
        state = self.state()
        for monitor in self.monitors:
            monitor.checkpoint(state)

    def _final_checkpoint(self):
        """At the end: every island's state (if an experiment is cut short), then the driver's."""
        if not self._wants_checkpoints():
            return
        if self.current is not None:
            for island in range(self.islands):
                self._send(island, {"command": "state"})
            while any(view.pending for view in self.current.views):
                for island, answer in self.transport.wait(timeout=0.5):
                    self.current.views[island].pending = False
                    if answer is not None and "state" in json.loads(answer):
                        self._states[island] = {**json.loads(answer)["state"],
                                                "island": island}
                        for monitor in self.monitors:
                            if hasattr(monitor, "island_checkpoint"):
                                monitor.island_checkpoint(island, self._states[island])
        self._checkpoint()

    def state(self) -> dict:
        """The driver's state, JSON-ready; each island's own is in its checkpoint."""
        out, current = self.outcome, self.current
        state = {
            "version": 1, "islands": self.islands, "seed": self.seed,
            "seconds": self.seconds(), "individuals_before": self._individuals_before,
            "rng": _rng_json(self.rng), "migration_rng": _rng_json(self.migration_rng),
            "restarts": out.restarts,
            "outcome": {"experiments": out.experiments, "search_fitness": out.search_fitness,
                        "select_fitness": out.select_fitness if out.program else None,
                        "program": format_program(out.program) if out.program else None},
            "experiment": None,
        }
        if current is not None:
            state["experiment"] = {
                "index": current.index, "task_seed": current.task_seed,
                "eval_seed": current.eval_seed, "migrations": current.migrations,
                "checked_above": (current.checked_above if math.isfinite(current.checked_above)
                                  else None),
                "until": [view.until for view in current.views],
                "island_individuals": [_island_individuals(self._states.get(island),
                                                           current.index)
                                       for island in range(self.islands)],
            }
        return state

    def restore(self, state: dict, island_states: dict[int, dict],
                reported: dict[int, int] | None = None, run: str | Path = "."):
        """Continue from `state()` and the islands' checkpoints (same experiment and seed).

        `reported`: island -> individuals the progress log records for it in the current
        experiment, which tells a lost island checkpoint in checkpoints that lack the counts.
        """
        from azc.parse import parse

        self._elapsed_before = state["seconds"]
        self._started = time.monotonic()
        self._individuals_before = state["individuals_before"]
        self.rng.setstate(_rng_state(state["rng"]))
        self.migration_rng.setstate(_rng_state(state["migration_rng"]))
        out, saved = self.outcome, state["outcome"]
        out.restarts = state.get("restarts", 0)
        out.experiments, out.search_fitness = saved["experiments"], saved["search_fitness"]
        if saved["program"] is not None:
            out.program = parse(saved["program"])
            out.select_fitness = saved["select_fitness"]
        self._resume = state["experiment"]
        self._states = dict(island_states) if self._resume else {}
        if self._resume:
            self._check_island_states(reported or {}, Path(run))

    def _check_island_states(self, reported: dict[int, int], run: Path):
        """Refuse to resume when an island's checkpoint the driver counted on is gone."""
        index = self._resume["index"]
        counted = self._resume.get("island_individuals")
        # NOTE: an island checkpoints with its first answer of an experiment, before its first
        # report: one the progress log records has a checkpoint of the experiment.
        where = "the run's checkpoint counts"
        if counted is None:
            counted = [reported.get(island) for island in range(self.islands)]
            where = "progress.jsonl records"
        for island in range(self.islands):
            found = _island_individuals(self._states.get(island), index)
            if counted[island] is not None and found is None:
                path = run / "islands" / f"island-{island}.json"
                raise AzcError(f"{path}: missing or of an earlier experiment, though {where} "
                               f"{counted[island]:,} individuals of island {island} in "
                               f"experiment {index}: its population is lost. Restore the "
                               "file, or start a new run")


def island_search(experiment: Experiment, seed: int, *, workers: int | None = None,
                  ray: str | None = None, state: dict | None = None,
                  run: str | Path | None = None, **options) -> IslandSearch:
    """The search of `azc evolve --workers N` / `--ray ADDRESS`, resumed from `run` if `state`.

    Islands: the checkpoint's number, else `workers`, else the cores here (the cluster's CPUs
    with Ray). One island per worker process or actor. A resumed run's islands take relative
    data paths from the folder of the experiment file the run started from, as its driver does.
    """
    transport = None
    if ray is not None:
        from azc.ray_islands import connect

        cpus = connect(ray)
        workers = workers or cpus
    islands = state["islands"] if state else (workers or default_workers())
    if state is not None and run is not None:
        from azc.rundir import experiment_folder, read_json

        options["folder"] = str(experiment_folder(read_json(Path(run, "run.json"))))
    search = IslandSearch(experiment, seed, islands=islands, **options)
    if ray is not None:
        from azc.ray_islands import RayIslands

        transport = RayIslands(islands, search.setup())
    search.transport = transport
    if state is not None:
        states, reported = {}, {}
        if run is not None:
            from azc.rundir import read_progress

            states = read_island_states(run)
            index = (state.get("experiment") or {}).get("index")
            reported = {r["island"]: r.get("island_individuals", 0)
                        for r in read_progress(run) if r.get("experiment") == index
                        and "island" in r and "event" not in r}
        search.restore(state, states, reported, run if run is not None else ".")
    return search


def _rng_json(rng: random.Random) -> list:
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def _rng_state(value: list) -> tuple:
    version, internal, gauss = value
    return (version, tuple(internal), gauss)


def _island_individuals(state: dict | None, index: int) -> int | None:
    """Individuals in an island's checkpoint of experiment `index`; None if it holds none."""
    saved = (state or {}).get("experiment") or {}
    if saved.get("index") != index:
        return None
    return saved.get("scorer", {}).get("individuals", 0)


def read_island_states(run: str | Path) -> dict[int, dict]:
    """The islands' checkpoints in a run directory (islands/island-N.json), by island."""
    states = {}
    for path in sorted(Path(run, "islands").glob("island-*.json")):
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise AzcError(f"{path}: damaged ({error}); the run cannot be resumed from it. "
                           "Restore the file, or start a new run") from None
        except OSError as error:
            raise AzcError(f"{path}: cannot read: {error.strerror}") from None
        island = state.get("island") if isinstance(state, dict) else None
        if not isinstance(island, int) or isinstance(island, bool):
            raise AzcError(f"{path}: not an island checkpoint (no island number); the run "
                           "cannot be resumed from it. Restore the file, or start a new run")
        states[island] = state
    return states
