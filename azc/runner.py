"""`azc run`: evaluate algorithms on a task collection and report their fitness.

    program = parse_file(ALGO.az, memory)        # addresses must fit the memory
    tasks   = make_collection(specs)             # from flags or a task file
    fitness = evaluator(engine, tasks).evaluate(program)

Several programs share one collection, made once, and an evaluator per memory shape. The
evaluator comes from make_evaluator, the one place that maps an engine name to an engine,
so native engines plug in without touching the command.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from azc.errors import ConfigError
from azc.fitness import Evaluation
from azc.ir import MAX_ADDRESSES, MemoryShape, Program
from azc.parse import parse_file
from azc.reference import ReferenceEvaluator
from azc.taskfile import FLAG_NAMES, load_task_file, make_collection, task_specs_from_flags
from azc.tasks import Task, TaskSpec

log = logging.getLogger("azc")

ENGINES = ("auto", "interp", "jit", "reference")


def parse_memory(text: str) -> MemoryShape:
    """A memory shape written as scalars/vectors/matrices, e.g. "4/3/1"."""
    parts = text.split("/")
    if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
        raise ConfigError(f"--memory: expected scalars/vectors/matrices such as 4/3/1, "
                          f"got {text!r}")
    shape = MemoryShape(*(int(part) for part in parts))
    if shape.scalars < 2 or shape.vectors < 1:
        raise ConfigError(f"--memory: s0, s1 and v0 are reserved, so at least 2/1/0, got {text}")
    if max(shape.scalars, shape.vectors, shape.matrices) > MAX_ADDRESSES:
        raise ConfigError(f"--memory: at most {MAX_ADDRESSES} of each kind, got {text}")
    return shape


def parse_classes(text: str | None) -> list[int] | None:
    """A class pair written "0,1" (positive first or not: the smaller id is positive)."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--classes: expected two class ids such as 0,1, got {text!r}") from None


def parse_column(text: str | None) -> int | str | None:
    """A label column: an index if it is an integer, else a header name."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        return text


def make_evaluator(engine: str, tasks: list[Task], memory: MemoryShape, *, seed: int = 0,
                   max_abs_error: float = 100.0):
    """An evaluator with `evaluate(program) -> Evaluation` for the named engine.

    The engines live behind azc.engine.make_evaluator; without that module (a build without
    native engines) "auto" falls back to the reference executor.
    """
    if engine not in ENGINES:
        raise ConfigError(f"--engine: unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    try:
        from azc.engine import make_evaluator as make_engine
    except ModuleNotFoundError as missing:
        if missing.name != "azc.engine":
            raise
        if engine not in ("auto", "reference"):
            raise ConfigError(f"--engine: the {engine} engine is not available in this build; "
                              "use --engine reference") from None
        log.info("no native engine available: using the reference executor")
        return ReferenceEvaluator(tasks, memory, seed=seed, max_abs_error=max_abs_error)
    return make_engine(tasks, memory, engine=engine, seed=seed, max_abs_error=max_abs_error)


@dataclass
class RunResult:
    """What `azc run` measured: fitness overall and per task, and how long it took."""

    program: Program
    memory: MemoryShape
    tasks: list[Task]
    evaluation: Evaluation
    engine: str
    seconds: float  # evaluating
    task_seconds: float  # making the tasks

    def to_json(self) -> dict:
        return {
            "fitness": self.evaluation.fitness,
            "task_fitness": list(self.evaluation.task_fitness),
            "tasks": [task.name for task in self.tasks],
            "eval_types": [task.eval_type for task in self.tasks],
            "memory": str(self.memory),
            "engine": self.engine,
            "seconds": self.seconds,
            "task_seconds": self.task_seconds,
        }


def task_specs(tasks_file: str | Path | None, flags: dict) -> list[TaskSpec]:
    """Specs from a task file, or else from task flags (None = not given); not both."""
    given = {name: value for name, value in flags.items() if value is not None}
    if tasks_file is not None:
        if given:
            name = next(iter(given))
            flag = FLAG_NAMES.get(name, name.replace("_", "-"))
            raise ConfigError(f"--tasks-file and task flags (such as --{flag}) exclude each "
                              "other: put the settings in the file")
        return load_task_file(tasks_file)
    if given.get("kind") == "fixed":
        raise ConfigError("--kind fixed: fixed tasks list their examples, which flags cannot "
                          "hold; write them in a task file and pass --tasks-file")
    if "path" in given and "kind" not in given:
        given["kind"] = _kind_of(Path(given["path"]))
    return task_specs_from_flags(**given)


def _kind_of(path: Path) -> str:
    """The kind a --data path implies: by extension, or by the files a folder holds."""
    if path.is_dir():
        if (path / "data_batch_1").exists():
            return "cifar10"
        if any(path.glob("train-images*idx3*")):
            return "mnist"
    kinds = {".csv": "csv", ".npz": "npz"}
    if path.suffix.lower() not in kinds:
        raise ConfigError(f"--data: cannot tell the task kind from {path.name!r}; give --kind "
                          "(csv, npz, cifar10 or mnist)")
    return kinds[path.suffix.lower()]


def run(program_path: str | Path, specs: list[TaskSpec], *, memory: MemoryShape | None = None,
        seed: int = 0, max_abs_error: float = 100.0, engine: str = "auto") -> RunResult:
    """Parse the program, make the tasks, evaluate; every user mistake is an AzcError."""
    return run_many([program_path], specs, memory=memory, seed=seed,
                    max_abs_error=max_abs_error, engine=engine)[0]


def run_many(program_paths: list[str | Path], specs: list[TaskSpec], *,
             memory: MemoryShape | None = None, seed: int = 0, max_abs_error: float = 100.0,
             engine: str = "auto") -> list[RunResult]:
    """`run` for several programs on one task collection, made once: one result per program."""
    if not max_abs_error > 0:
        raise ConfigError(f"--max-abs-error: must be positive, got {max_abs_error}")
    programs = [parse_file(path, memory) for path in program_paths]

    # Tasks are made (and data files read) before the engine compiles anything.
    start = time.perf_counter()
    tasks = make_collection(specs)
    task_seconds = time.perf_counter() - start

    results, evaluators = [], {}
    for path, program in zip(program_paths, programs, strict=True):
        shape = memory or program.memory_shape()
        if shape not in evaluators:  # programs of one memory shape share an evaluator
            evaluators[shape] = make_evaluator(engine, tasks, shape, seed=seed,
                                               max_abs_error=max_abs_error)
        evaluator = evaluators[shape]
        start = time.perf_counter()
        evaluation = evaluator.evaluate(program)
        seconds = time.perf_counter() - start
        name = _engine_used(evaluator, engine)
        log.info("%s: fitness %.6f in %.3f s", path, evaluation.fitness, seconds)
        results.append(RunResult(program, shape, tasks, evaluation, name, seconds, task_seconds))
    return results


def _engine_used(evaluator, engine: str) -> str:
    """The engine that ran: what "auto" chose, "reference" when native code fell back."""
    if isinstance(evaluator, ReferenceEvaluator) or getattr(evaluator, "_fallback", None):
        return "reference"
    used = sorted(getattr(evaluator, "used", ()))
    return "+".join(used) if used else engine


def experiment_tasks(path: str | Path, tasks_file: str | Path | None = None,
                     flags: dict | None = None) -> tuple[list[TaskSpec], MemoryShape, float]:
    """An experiment file's final tasks, memory and max_abs_error: what its search reports on.

    The experiment replaces a task file and task flags, which may not be given with it.
    """
    from azc.experiment import load_experiment

    given = [name for name, value in (flags or {}).items() if value is not None]
    if tasks_file is not None or given:
        other = "--tasks-file" if tasks_file is not None else \
            "--" + FLAG_NAMES.get(given[0], given[0].replace("_", "-"))
        raise ConfigError(f"--experiment and {other} exclude each other: the experiment's "
                          "final tasks are the collection")
    experiment = load_experiment(path)
    return (experiment.final_tasks, experiment.memory,
            experiment.table.evolution.max_abs_error)
