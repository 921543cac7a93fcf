"""Task collections from TOML tables or command-line flags, checked before any task is made.

A task file holds one `[[tasks]]` table per TaskSpec; a collection is all their tasks in order:

    [[tasks]]
    kind = "linear"          # linear, nn, zeros, ones, increment, fixed, digits, cifar10, mnist,
    features = 4             #   csv, npz
    train = 1000             # examples per epoch (csv/npz: or a fraction of the rows, e.g. 0.8)
    valid = 100
    num_tasks = 10

    [[tasks]]
    kind = "digits"
    classes = [0, 1]         # positive (label 1) and negative class; omit to draw per data seed
    data_seeds = [0]

Experiment files reuse the same table schema through task_specs_from_table.
"""

import itertools
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal

from azc import tasks
from azc.config import KeyPath, TomlFile, at_least, each, from_table, read_toml, setting
from azc.errors import ConfigError

SYNTHETIC_DEFAULTS = {"features": 4, "train": 1000, "valid": 100}
TABLE_DEFAULT_FRACTIONS = {"train": 0.8, "valid": 0.2}
NUM_TASKS = 10
MAX_EXAMPLES = 1_000_000  # train or valid, per task
MAX_TRAIN_STEPS = 100_000_000  # train x epochs, per task
MAX_VALUES = 200_000_000  # features of a task list: 1.6 GB

# Which options each kind reads; any other kind may not set them.
KIND_OPTIONS = {
    "path": ("cifar10", "mnist", "csv", "npz"),
    "classes": ("digits", "cifar10", "mnist"),
    "held_out_pairs": ("digits", "cifar10", "mnist"),
    "label_column": ("csv", "npz"),
    "header": ("csv",),
    "standardize": ("csv", "npz"),
    "increment": ("increment",),
}


def _class_pair(pair):
    if len(pair) != 2 or len(set(pair)) != 2 or not all(0 <= c <= 9 for c in pair):
        return f"must be two different class ids in 0..9, got {pair}"
    return None


def _positive_count_or_fraction(value):
    return None if value > 0 else f"must be a positive count or a fraction in (0, 1), got {value}"


@dataclass(frozen=True)
class TaskTable:
    """One [[tasks]] table: the fields of a TaskSpec under short names, plus kind options."""

    kind: str = setting("linear", help="task kind")
    features: int | None = setting(None, help="feature size F (kind default if omitted)")
    train: int | float | None = setting(None, _positive_count_or_fraction,
                                        "training examples per epoch")
    valid: int | float | None = setting(None, _positive_count_or_fraction,
                                        "validation examples")
    epochs: int = setting(1, at_least(1), "training epochs")
    num_tasks: int = setting(NUM_TASKS, at_least(1), "how many tasks (one per seed pair)")
    param_seeds: list[int] = setting([], each(at_least(0)), "seeds of the task parameters")
    data_seeds: list[int] = setting([], each(at_least(0)), "seeds of the examples")
    eval: Literal["rms", "accuracy"] | None = setting(None, help="rms or accuracy")
    path: str | None = setting(None, help="data file (csv, npz) or folder (cifar10, mnist)")
    classes: list[int] | None = setting(None, _class_pair, help="positive and negative class")
    held_out_pairs: list[list[int]] = setting([], each(_class_pair), "pairs never drawn")
    label_column: int | str | None = setting(None, help="label column, default the last")
    header: bool | None = setting(None, help="whether a CSV has a header row (default: guess)")
    standardize: bool = setting(True, help="standardize features on the train split")
    increment: float | None = setting(None, help="step of increment tasks")
    options: dict = setting({}, help="further kind options, passed on as they are")


def _known_kinds() -> list[str]:
    import azc.data  # noqa: F401  (registers the real-data kinds)

    return sorted(tasks.GENERATORS)


def _spec_from(table: TaskTable, given: set[str], source: TomlFile, where: KeyPath,
               base: Path) -> tasks.TaskSpec:
    """Check one validated table against its kind, fill kind defaults, and build the TaskSpec."""
    from azc import data

    def fail(key, message):
        return source.error(where + (key,), message)

    kind = table.kind
    if kind not in _known_kinds():
        raise fail("kind", f"unknown task kind {kind!r}; known kinds: {', '.join(_known_kinds())}")
    for key, kinds in KIND_OPTIONS.items():
        if key in given and kind not in kinds:
            raise fail(key, f"only {', '.join(kinds)} tasks take {key!r}, not {kind} tasks")
    projected, tabular = kind in data.PROJECTED_KINDS, kind in data.TABLE_KINDS

    options = dict(table.options)
    for key in KIND_OPTIONS:
        value = getattr(table, key)
        if key in given or (key == "standardize" and tabular):
            options[key] = value
    if "path" in options:
        path = Path(options["path"]).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.exists():
            raise fail("path", f"{path}: no such file or folder")
        options["path"] = str(path)
    elif kind in KIND_OPTIONS["path"]:
        raise fail("path", f"{kind} tasks need the data "
                   + ("file" if tabular else "folder"))
    if projected and "classes" not in options:
        held = {tuple(sorted(pair)) for pair in options.get("held_out_pairs", ())}
        if len(held & set(itertools.combinations(range(data.NUM_CLASSES), 2))) == \
                math.comb(data.NUM_CLASSES, 2):
            raise fail("held_out_pairs", "holds out every pair of classes: none is left to "
                       "draw tasks from")

    eval_type = table.eval or (tasks.ACCURACY if projected else tasks.RMS)
    if projected and eval_type != tasks.ACCURACY:
        raise fail("eval", f"{kind} tasks are classification: eval must be 'accuracy'")
    if kind in ("linear", "nn") and eval_type != tasks.RMS:
        raise fail("eval", f"{kind} tasks are regression: eval must be 'rms'")

    defaults = (data.PROJECTED_DEFAULTS[kind] if projected
                else TABLE_DEFAULT_FRACTIONS if tabular else SYNTHETIC_DEFAULTS)
    features = defaults.get("features") if table.features is None else table.features
    train = table.train if table.train is not None else defaults["train"]
    valid = table.valid if table.valid is not None else defaults["valid"]
    for key, value in (("train", train), ("valid", valid)):
        if isinstance(value, float) and not (tabular and value < 1):
            raise fail(key, "must be a whole number of examples"
                       + (" or a fraction below 1" if tabular else "") + f", got {value}")
    if tabular:
        rows_features, labels = data.read_table(kind, options)
        if not len(labels):
            raise fail("path", f"{options['path']}: has no data rows")
        if features is None and rows_features.shape[1] not in tasks.FEATURE_SIZES:
            raise fail("path", f"{options['path']}: has {rows_features.shape[1]} feature "
                       f"columns, but F must be one of "
                       f"{', '.join(map(str, tasks.FEATURE_SIZES))}")
        features = rows_features.shape[1] if features is None else features
        train, valid = data.split_counts(len(labels), train, valid)
        # One of the two given: the other takes the remaining rows.
        if table.train is None and table.valid is not None:
            train = len(labels) - valid
        elif table.valid is None and table.train is not None:
            valid = len(labels) - train
        for key, count, other, taken in (("train", train, "valid", valid),
                                         ("valid", valid, "train", train)):
            if count < 1:
                if getattr(table, key) is None:  # what the user gave left none
                    raise fail(other, f"{taken} {other} examples leave no {key} examples: the "
                               f"file has {len(labels)} rows")
                raise fail(key, f"gives {count} of the file's {len(labels)} rows; a task "
                           f"needs at least one {key} example")
    if features not in tasks.FEATURE_SIZES:
        raise fail("features", f"must be one of {', '.join(map(str, tasks.FEATURE_SIZES))}, "
                   f"got {features}")
    if train * table.epochs < tasks.MIN_TRAIN_STEPS:
        raise fail("train", f"train x epochs must be at least {tasks.MIN_TRAIN_STEPS}, "
                   f"got {train} x {table.epochs}")
    # NOTE: tasks live in memory whole, with an order per epoch: past these, a typo (1e12)
    # would end in an allocation failure rather than a message.
    for key, count in (("train", train), ("valid", valid)):
        if count > MAX_EXAMPLES:
            raise fail(key, f"at most {MAX_EXAMPLES:,} examples per task, got {count:,}")
    if train * table.epochs > MAX_TRAIN_STEPS:
        raise fail("epochs", f"train x epochs must be at most {MAX_TRAIN_STEPS:,}, got "
                   f"{train:,} x {table.epochs:,}")
    values = table.num_tasks * (train + valid) * features
    if values > MAX_VALUES:
        raise fail("num_tasks", f"{table.num_tasks:,} tasks of {train + valid:,} examples of "
                   f"{features} features are {values:,} numbers; azc holds at most "
                   f"{MAX_VALUES:,} per task list")

    return tasks.TaskSpec(kind, features, train, valid, table.epochs, table.num_tasks,
                          tuple(table.param_seeds), tuple(table.data_seeds), eval_type, options)


def task_specs_from_table(tables, source: TomlFile | str | None = None, where: KeyPath = ("tasks",),
                          base: Path | str = ".") -> list[tasks.TaskSpec]:
    """TaskSpecs from one table or a list of them (an array of tables `where` in `source`).

    Relative paths are taken from `base` (a task file's folder). Every problem is a ConfigError
    naming the source, the key and its line.
    """
    if not isinstance(source, TomlFile):
        source = _FlagSource(source or "settings")
    single = isinstance(tables, dict)
    tables = [tables] if single else tables
    if not isinstance(tables, list) or not tables:
        raise source.error(where, "expected at least one [[tasks]] table")

    specs = []
    for index, table in enumerate(tables):
        at = where if single else where + (index,)
        if not isinstance(table, dict):
            raise source.error(at, "expected a table")
        specs.append(_spec_from(from_table(TaskTable, table, source, at), set(table), source,
                                at, Path(base)))
        # NOTE: an evaluator runs one program on all its tasks, so they share one F.
        if specs[-1].features_size != specs[0].features_size:
            raise source.error(at + ("features",), f"the tasks of one collection share one "
                               f"feature size: {specs[-1].features_size} here, "
                               f"{specs[0].features_size} in the first table")
    return specs


def load_task_file(path: str | Path) -> list[tasks.TaskSpec]:
    """The TaskSpecs of a task file: its [[tasks]] tables, in order."""
    document = read_toml(path)
    unknown = set(document.data) - {"tasks"}
    if unknown:
        key = sorted(unknown)[0]
        raise document.error((key,), "unknown key; a task file holds [[tasks]] tables")
    if "tasks" not in document.data:
        raise document.error((), "no [[tasks]] table")
    return task_specs_from_table(document.data["tasks"], document, ("tasks",),
                                 Path(path).parent)


# --- from the command line -----------------------------------------------------------------------

FLAG_NAMES = {"num_tasks": "tasks", "param_seeds": "param-seed", "data_seeds": "data-seed",
              "path": "data", "label_column": "label-column"}


class _FlagSource(TomlFile):
    """Names problems by their command-line flag instead of a file line."""

    def __init__(self, name: str):
        super().__init__(name, "", {})

    def error(self, path: KeyPath, message: str) -> ConfigError:
        keys = [part for part in path if isinstance(part, str)]
        if not keys:
            return ConfigError(message)
        flag = FLAG_NAMES.get(keys[-1], keys[-1].replace("_", "-"))
        return ConfigError(f"--{flag}: {message}")


def task_specs_from_flags(**flags) -> list[tasks.TaskSpec]:
    """One TaskSpec from TaskTable fields given as flags; None means not given."""
    table = {name: value for name, value in flags.items() if value is not None}
    names = {field.name for field in fields(TaskTable)}
    assert set(table) <= names, f"not task fields: {set(table) - names}"
    return task_specs_from_table(table, _FlagSource("command line"), ())


def make_collection(specs: list[tasks.TaskSpec]) -> list[tasks.Task]:
    """All tasks of the specs, in order: a task's index in this list seeds its random stream."""
    return [task for spec in specs for task in tasks.make_tasks(spec)]
