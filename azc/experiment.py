"""Experiment files: everything a search needs, in TOML, validated before any work starts.

An experiment mirrors the original's SearchExperimentSpec plus the run_search_experiment flags
(reference §14, §15). Tables:

    [evolution]       population_size, tournament_size, initial_population, mutations,
                      mutate_prob, max_train_steps, max_abs_error, combine, batch_size,
                      deferred, mode ("exact", or "batch": azc.evolve_batch)
    [memory]          scalars, vectors, matrices
    [setup] [predict] [learn]   ops (op names, see `azc ops`), size (initial), min_size,
                      max_size (0 = none). As in the original (reference §9.1) an empty ops
                      list means the component is never mutated: its `size` instructions stay
                      no-ops (they do nothing), so setup ops = [] with size 2 is legal
    [fec]             train, valid, cache_size           (omit the table: no FEC)
    [train_budget]    baseline, factor                   (omit the table: no budget)
    [hurdle]          stage_tasks, percentile, window    (omit the table: no hurdle)
    [experiments]     max_experiments (0 = unlimited), sufficient_fitness, randomize_task_seeds,
                      early_select
    [islands]         migrate_every, deterministic       (azc evolve --workers/--ray: azc.islands)
    [[search_tasks]] [[select_tasks]] [[final_tasks]]   task tables, as in task files

Every problem is a ConfigError naming the file, the key and its line.
"""

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from azc.config import FieldError, TomlFile, at_least, between, each, from_table, read_toml, setting
from azc.errors import ConfigError
from azc.fitness import COMBINE_MODES
from azc.generator import INITIAL_POPULATIONS, baseline_program, linear_program, neural_net_program
from azc.ir import COMPONENTS, MAX_ADDRESSES, MemoryShape
from azc.mutator import MUTATIONS, MutationSettings, check_settings
from azc.ops import BY_NAME, op_named
from azc.taskfile import task_specs_from_table
from azc.tasks import TaskSpec

# NOTE: the paper's populations hold 100 to 1,000 programs; a million is gigabytes, so more
# is taken for a typo and refused, not run out of memory.
MAX_POPULATION = 1_000_000

HAND_WRITTEN = {"linear": linear_program(), "neural_net": neural_net_program(),
                "damaged_neural_net": neural_net_program(damaged=True)}


def _known_op(name):
    try:
        op_named(name)
    except KeyError:
        close = difflib.get_close_matches(name.upper(), BY_NAME, n=1)
        return f"unknown op {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    return None


def _known_mutation(name):
    return None if name in MUTATIONS else (f"unknown mutation {name!r}; known: "
                                           + ", ".join(MUTATIONS))


@dataclass(frozen=True)
class Evolution:
    population_size: int = setting(1000, between(2, MAX_POPULATION), "individuals kept alive")
    tournament_size: int = setting(10, at_least(1), "draws per tournament")
    initial_population: Literal[INITIAL_POPULATIONS] = setting("noop")
    mutations: list[str] = setting(["alter_param", "randomize_instruction",
                                    "randomize_component_function"], each(_known_mutation))
    mutate_prob: float = setting(0.9, between(0.0, 1.0))
    max_train_steps: int = setting(80_000_000_000, at_least(1), "train steps per experiment")
    max_abs_error: float = setting(100.0, at_least(0.0))
    combine: Literal[COMBINE_MODES] = setting("mean")
    batch_size: int = setting(256, at_least(1), "children evaluated per native call at most")
    deferred: bool = setting(False, help="place each batch's children together: larger "
                                         "batches, children compete up to batch_size slots late")
    mode: Literal["exact", "batch"] = setting("exact", help="batch: whole chunks of batch_size "
                                              "children on arrays (azc.evolve_batch), deferred")

    def __post_init__(self):
        # NOTE: the original draws with replacement, so a larger tournament would run, but it
        # would pick the population's best nearly always: surely a typo.
        if self.tournament_size > self.population_size:
            raise FieldError("tournament_size", f"{self.tournament_size} is more than "
                             f"population_size {self.population_size}")


@dataclass(frozen=True)
class Memory:
    scalars: int = setting(4, between(2, MAX_ADDRESSES))
    vectors: int = setting(3, between(1, MAX_ADDRESSES))
    matrices: int = setting(1, between(0, MAX_ADDRESSES))


# NOTE: evolved components hold tens of instructions; a population of 1,000 programs with
# components of 10,000 already needs gigabytes, so a typo in a size is refused, not run.
MAX_SIZE = 1000


@dataclass(frozen=True)
class Component:
    ops: list[str] = setting([], each(_known_op), "allowed ops; empty: never mutated, and its "
                                                  "`size` initial instructions stay no-ops")
    size: int = setting(0, between(0, MAX_SIZE), "initial size")
    min_size: int = setting(0, between(0, MAX_SIZE))
    max_size: int = setting(0, between(0, MAX_SIZE), "0: no limit")

    def __post_init__(self):
        if self.max_size and self.min_size > self.max_size:
            raise ValueError(f"min_size {self.min_size} is above max_size {self.max_size}")


@dataclass(frozen=True)
class Fec:
    train: int = setting(10, between(1, 100), "fingerprint train examples per task")
    valid: int = setting(10, between(1, 100), "fingerprint validation examples per task")
    cache_size: int = setting(100_000, at_least(1))
    forget_every: int = setting(100, at_least(0), "hits before an entry is dropped; 0: never")


@dataclass(frozen=True)
class Budget:
    baseline: Literal["linear", "neural_net"] = setting("neural_net")
    factor: float = setting(2.0, at_least(0.0))


@dataclass(frozen=True)
class HurdleTable:
    stage_tasks: int = setting(1, at_least(1), "search tasks in the first stage")
    percentile: float = setting(75.0, between(0.0, 100.0))
    window: int = setting(1000, at_least(1), "recent first-stage fitnesses kept")


@dataclass(frozen=True)
class Experiments:
    max_experiments: int = setting(1, at_least(0), "0: until sufficient fitness")
    sufficient_fitness: float | None = setting(None, between(0.0, 1.0),
                                               "stop once a select fitness exceeds it")
    randomize_task_seeds: bool = setting(False)
    early_select: bool = setting(True, help="check improving candidates on the select tasks "
                                            "during an experiment, stop once one passes")
    early_select_above: float = setting(0.99, between(0.0, 1.0),
                                        "search fitness an improving candidate needs first")


@dataclass(frozen=True)
class IslandsTable:
    migrate_every: int = setting(100_000, at_least(1), "individuals each island evolves between "
                                                      "migrations (rounded up to generations)")
    deterministic: bool = setting(False, help="migrate in lockstep: one seed, one result, "
                                              "however the islands run")


@dataclass(frozen=True)
class ExperimentTable:
    name: str = setting("experiment")
    evolution: Evolution = field(default_factory=Evolution)
    memory: Memory = field(default_factory=Memory)
    setup: Component = field(default_factory=Component)
    predict: Component = field(default_factory=Component)
    learn: Component = field(default_factory=Component)
    fec: Fec | None = setting(None)
    train_budget: Budget | None = setting(None)
    hurdle: HurdleTable | None = setting(None)
    experiments: Experiments = field(default_factory=Experiments)
    islands: IslandsTable = field(default_factory=IslandsTable)
    search_tasks: list[dict] = setting([], help="task tables")
    select_tasks: list[dict] = setting([])
    final_tasks: list[dict] = setting([])


@dataclass(frozen=True)
class Experiment:
    """A validated experiment: its settings, mutation rules and task specs."""

    table: ExperimentTable
    mutation: MutationSettings
    search_tasks: list[TaskSpec]
    select_tasks: list[TaskSpec]
    final_tasks: list[TaskSpec]
    text: str = ""  # the file as written, kept in run directories
    path: str = ""

    @property
    def sizes(self) -> tuple[int, int, int]:
        return tuple(getattr(self.table, c).size for c in COMPONENTS)

    @property
    def memory(self) -> MemoryShape:
        return self.mutation.memory

    @property
    def final_tasks_unseen(self) -> bool:
        """Whether the final tasks differ from every experiment's select tasks (without
        [[final_tasks]] they are the select tasks, which chose the winner)."""
        return (self.final_tasks != self.select_tasks
                or self.table.experiments.randomize_task_seeds)


def load_experiment(path: str | Path) -> Experiment:
    """Read and validate an experiment file."""
    document = read_toml(path)
    return experiment_from(document, Path(path).parent)


def experiment_from(document: TomlFile, base: Path = Path(".")) -> Experiment:
    """Validate a parsed experiment file: types, values, then cross-table rules."""
    table = from_table(ExperimentTable, document.data, document)
    error = document.error

    def specs(key):
        tables = document.data.get(key, [])
        return task_specs_from_table(tables, document, (key,), base) if tables else []

    search = specs("search_tasks")
    if not search:
        raise error((), "missing [[search_tasks]]: an experiment needs tasks to search on")
    select = specs("select_tasks") or search
    final = specs("final_tasks") or select
    memory = MemoryShape(table.memory.scalars, table.memory.vectors, table.memory.matrices)

    for kind_specs, key in ((search, "search_tasks"), (select, "select_tasks"),
                            (final, "final_tasks")):
        sizes = {spec.features_size for spec in kind_specs}
        if len(sizes) > 1:
            raise error((key,), f"all tasks of an experiment need one feature size, got {sizes}")
    features = search[0].features_size
    for kind_specs, key in ((select, "select_tasks"), (final, "final_tasks")):
        if kind_specs[0].features_size != features:
            raise error((key,), f"features {kind_specs[0].features_size}: select and final tasks "
                                f"need the search tasks' features ({features})")

    mutation = MutationSettings(
        memory=memory,
        ops=tuple(tuple(op_named(n).id for n in getattr(table, c).ops) for c in COMPONENTS),
        mutations=tuple(table.evolution.mutations),
        mutate_prob=table.evolution.mutate_prob,
        min_sizes=tuple(getattr(table, c).min_size for c in COMPONENTS),
        max_sizes=tuple(getattr(table, c).max_size for c in COMPONENTS))
    try:
        check_settings(mutation)
    except ConfigError as problem:
        raise error(("memory",), str(problem)) from None
    if not any(mutation.ops):
        raise error(("setup",), "no component has ops: evolution could change nothing")

    if table.evolution.mode == "batch":
        from azc.mutate_batch import batch_problem

        problem = batch_problem(mutation)
        if problem:
            raise error((COMPONENTS[problem[0]],), problem[1])
        if table.hurdle is not None:
            raise error(("hurdle",), "mode = \"batch\" has no hurdles; use mode = \"exact\"")

    start = table.evolution.initial_population
    if start in HAND_WRITTEN and not memory.covers(HAND_WRITTEN[start].memory_shape()):
        raise error(("evolution", "initial_population"),
                    f"{start} programs need memory {HAND_WRITTEN[start].memory_shape()}, "
                    f"more than the {memory} given")
    if table.fec is not None:
        for spec in search:
            if table.fec.train > spec.num_train_examples * spec.num_train_epochs:
                raise error(("fec", "train"), "more fingerprint examples than a search task has")
            if table.fec.valid > spec.num_valid_examples:
                raise error(("fec", "valid"), "more fingerprint examples than a search task has")
    num_search = sum(spec.num_tasks for spec in search)
    if table.hurdle is not None and table.hurdle.stage_tasks >= num_search:
        raise error(("hurdle", "stage_tasks"),
                    f"the first stage must leave tasks for the second: {num_search} search tasks")
    if table.train_budget is not None:
        baseline_program(table.train_budget.baseline, (0, 0, 0))
    return Experiment(table, mutation, search, select, final, document.text, document.path)


def replace_settings(experiment: Experiment, **evolution) -> Experiment:
    """The experiment with some [evolution] settings changed (for tests and benchmarks)."""
    table = dataclasses.replace(experiment.table,
                                evolution=dataclasses.replace(experiment.table.evolution,
                                                              **evolution))
    return dataclasses.replace(experiment, table=table)
