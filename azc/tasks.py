"""Tasks: the datasets an algorithm learns from, and the fitness it earns on them.

A Task holds its examples as float64 arrays; every engine reads the same arrays.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np

from azc.absl_random import Mt19937, gaussian
from azc.errors import ConfigError

RMS, ACCURACY = "rms", "accuracy"


@dataclass(frozen=True, eq=False)
class Task:
    """One task: train and validation examples, how to score, and the epoch orders.

    `epoch_orders[e]` lists the training example indices in the order epoch e visits them;
    epoch 0 is the stored order, later epochs are shuffles fixed when the task is made.
    """

    name: str
    train_features: np.ndarray  # (n_train, F)
    train_labels: np.ndarray  # (n_train,)
    valid_features: np.ndarray  # (n_valid, F)
    valid_labels: np.ndarray  # (n_valid,)
    eval_type: str = RMS
    epoch_orders: np.ndarray = field(default=None)  # (epochs, n_train) int64

    def __post_init__(self):
        if self.epoch_orders is None:
            order = np.arange(len(self.train_labels))[None, :]
            object.__setattr__(self, "epoch_orders", order)

    @property
    def features_size(self) -> int:
        return self.train_features.shape[1]

    @property
    def num_train_epochs(self) -> int:
        return self.epoch_orders.shape[0]

    @property
    def max_train_examples(self) -> int:
        """All training steps the task allows: examples per epoch times epochs."""
        return self.epoch_orders.size


# --- task specifications and generators ---------------------------------------------------------
# Synthetic tasks follow the original's task_util.h (reference §8): Gaussian features, a teacher
# with seeded weights, and epoch shuffles fixed at creation. Features and weights are the
# original's own numbers (absl::Gaussian on mt19937, see azc.absl_random); the epoch shuffles
# are NumPy's, not libstdc++'s std::shuffle.

FEATURE_SIZES = (2, 4, 8, 16, 32)
EVAL_TYPES = (RMS, ACCURACY)
MIN_TRAIN_STEPS = 10  # the original's evaluator refuses tasks with fewer

# The original's first seeds, labelled easy / medium-easier / medium-harder / hard, twice.
DEFAULT_PARAM_SEEDS = (1001, 1012, 1010, 1000, 1006, 1008, 1007, 1003)
DEFAULT_DATA_SEEDS = (11001, 11012, 11010, 11000, 11006, 11008, 11007, 11003)

# Offsets added to a seed before it seeds a generator, so that each use draws its own numbers.
SHUFFLE_OFFSET = 3274582109
LINEAR_DATA_OFFSET, LINEAR_PARAM_OFFSET = 939723201, 997958712
NN_DATA_OFFSET, NN_PARAM_OFFSET = 865546086, 174299604


@dataclass(frozen=True)
class TaskSpec:
    """A family of `num_tasks` tasks of one kind, differing only in their seeds.

    `options` holds kind-specific fields: "increment" (increment tasks), "train_features",
    "train_labels", "valid_features", "valid_labels" (fixed tasks), and whatever the real-data
    kinds of azc.data read (path, classes, held_out_pairs, ...).
    """

    kind: str
    features_size: int
    num_train_examples: int  # per epoch
    num_valid_examples: int
    num_train_epochs: int = 1
    num_tasks: int = 1
    param_seeds: tuple[int, ...] = ()
    data_seeds: tuple[int, ...] = ()
    eval_type: str = RMS
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "param_seeds", tuple(int(s) for s in self.param_seeds))
        object.__setattr__(self, "data_seeds", tuple(int(s) for s in self.data_seeds))


class Examples(NamedTuple):
    """What a generator makes for one task; `name` overrides the default task name."""

    train_features: np.ndarray
    train_labels: np.ndarray
    valid_features: np.ndarray
    valid_labels: np.ndarray
    name: str | None = None


# generator(spec, param_seed, data_seed) -> Examples; azc.data registers the real-data kinds.
GENERATORS: dict[str, Callable[[TaskSpec, int, int], Examples]] = {}


def register(kind: str):
    """Decorator that makes a generator the one for `kind`."""
    def add(generator):
        GENERATORS[kind] = generator
        return generator
    return add


def make_tasks(spec: TaskSpec) -> list[Task]:
    """The spec's tasks, in order, each with its seeds and epoch shuffles."""
    generator = _generator(spec.kind)
    _check(spec)
    param_seeds = task_seeds(spec.param_seeds, DEFAULT_PARAM_SEEDS, spec.num_tasks)
    data_seeds = task_seeds(spec.data_seeds, DEFAULT_DATA_SEEDS, spec.num_tasks)

    tasks = []
    for index, (param_seed, data_seed) in enumerate(zip(param_seeds, data_seeds, strict=True)):
        examples = generator(spec, param_seed, data_seed)
        orders = epoch_orders(len(examples.train_labels), spec.num_train_epochs, data_seed)
        name = examples.name or f"{spec.kind}-{index}"
        tasks.append(Task(name, *(np.asarray(a, dtype=np.float64) for a in examples[:4]),
                          eval_type=spec.eval_type, epoch_orders=orders))
    return tasks


def task_seeds(given: tuple[int, ...], defaults: tuple[int, ...], num_tasks: int) -> list[int]:
    """The seeds of `num_tasks` tasks: the given ones (or defaults), then each previous + 1."""
    seeds = list((given or defaults)[:num_tasks])
    while len(seeds) < num_tasks:
        seeds.append(seeds[-1] + 1)
    return seeds


def epoch_orders(num_train: int, num_epochs: int, data_seed: int) -> np.ndarray:
    """Visiting order per epoch: stored order first, then cumulative shuffles of the index list."""
    rng = np.random.RandomState((data_seed + SHUFFLE_OFFSET) % 2**32)
    order = np.arange(num_train, dtype=np.int64)
    orders = [order.copy()]
    for _ in range(1, num_epochs):
        rng.shuffle(order)
        orders.append(order.copy())
    return np.stack(orders)


def _generator(kind: str):
    if kind not in GENERATORS:
        try:
            import azc.data  # noqa: F401  (registers the real-data kinds)
        except ModuleNotFoundError as error:
            if error.name != "azc.data":
                raise
    if kind not in GENERATORS:
        known = ", ".join(sorted(GENERATORS))
        raise ConfigError(f"unknown task kind {kind!r}; known kinds: {known}")
    return GENERATORS[kind]


def _check(spec: TaskSpec):
    """Refuse specs the evaluator cannot use, with a message that names the field."""
    if spec.features_size not in FEATURE_SIZES:
        raise ConfigError(f"features_size must be one of {FEATURE_SIZES}, "
                          f"not {spec.features_size}")
    for name in ("num_train_examples", "num_valid_examples", "num_train_epochs", "num_tasks"):
        if getattr(spec, name) < 1:
            raise ConfigError(f"{name} must be positive, not {getattr(spec, name)}")
    if spec.num_train_examples * spec.num_train_epochs < MIN_TRAIN_STEPS:
        raise ConfigError(f"a task needs at least {MIN_TRAIN_STEPS} training steps "
                          f"(num_train_examples x num_train_epochs)")
    if spec.eval_type not in EVAL_TYPES:
        raise ConfigError(f"eval_type must be one of {EVAL_TYPES}, not {spec.eval_type!r}")


def _require(condition: bool, spec: TaskSpec, message: str):
    if not condition:
        raise ConfigError(f"{spec.kind} tasks: {message}")


def _gaussian_features(engine: Mt19937, spec: TaskSpec):
    """N(0, 1) features, every training example then every validation example."""
    F = spec.features_size
    train = gaussian(engine, spec.num_train_examples * F).reshape(-1, F)
    valid = gaussian(engine, spec.num_valid_examples * F).reshape(-1, F)
    return train, valid


def _seeded(seed: int, offset: int) -> Mt19937:
    return Mt19937((seed + offset) % 2**32)


@register("linear")
def linear_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """Labels from a linear teacher, y = w . x, with w ~ N(0, 1): no noise, no bias (§8.3)."""
    _require(spec.eval_type == RMS, spec, "eval_type must be rms")
    train, valid = _gaussian_features(_seeded(data_seed, LINEAR_DATA_OFFSET), spec)
    weights = gaussian(_seeded(param_seed, LINEAR_PARAM_OFFSET), spec.features_size)
    return Examples(train, train @ weights, valid, valid @ weights)


@register("nn")
def nn_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """Labels from a 2-layer ReLU teacher, y = u . relu(M x), rows/entries 0 and 2 zeroed (§8.4)."""
    _require(spec.eval_type == RMS, spec, "eval_type must be rms")
    _require(spec.features_size >= 3, spec, "features_size must be at least 3")
    train, valid = _gaussian_features(_seeded(data_seed, NN_DATA_OFFSET), spec)

    # The original draws the hidden layer row by row, then the output layer.
    F = spec.features_size
    param_engine = _seeded(param_seed, NN_PARAM_OFFSET)
    hidden = gaussian(param_engine, F * F).reshape(F, F)
    hidden[[0, 2]] = 0.0
    output = gaussian(param_engine, F)
    output[[0, 2]] = 0.0

    def teacher(x):
        return np.maximum(x @ hidden.T, 0.0) @ output

    return Examples(train, teacher(train), valid, teacher(valid))


def _constant_examples(spec: TaskSpec, value: float) -> Examples:
    F, n_train, n_valid = spec.features_size, spec.num_train_examples, spec.num_valid_examples
    return Examples(np.full((n_train, F), value), np.full(n_train, value),
                    np.full((n_valid, F), value), np.full(n_valid, value))


@register("zeros")
def zeros_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """All features and labels 0 (the original's unit_test_zeros_task)."""
    return _constant_examples(spec, 0.0)


@register("ones")
def ones_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """All features and labels 1 (unit_test_ones_task)."""
    return _constant_examples(spec, 1.0)


@register("increment")
def increment_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """Example k has every feature and its label equal to k * increment (default 1)."""
    increment = float(spec.options.get("increment", 1.0))
    F = spec.features_size

    def ramp(n):
        values = np.arange(n) * increment
        return np.repeat(values[:, None], F, axis=1), values

    return Examples(*ramp(spec.num_train_examples), *ramp(spec.num_valid_examples))


@register("fixed")
def fixed_examples(spec: TaskSpec, param_seed: int, data_seed: int) -> Examples:
    """The first examples of lists given in the options (unit_test_fixed_task)."""
    arrays = {}
    for split, count in (("train", spec.num_train_examples), ("valid", spec.num_valid_examples)):
        features = np.asarray(spec.options.get(f"{split}_features", ()), dtype=np.float64)
        labels = np.asarray(spec.options.get(f"{split}_labels", ()), dtype=np.float64)
        _require(features.ndim == 2 and features.shape[1] == spec.features_size, spec,
                 f"{split}_features must be a list of vectors of length {spec.features_size}")
        _require(len(features) >= count and len(labels) >= count, spec,
                 f"{count} {split} examples asked for, {min(len(features), len(labels))} given")
        arrays[split] = (features[:count], labels[:count])
    return Examples(*arrays["train"], *arrays["valid"])


# --- seed hashing (the original's HashCombine / HashMix, util.h; reference §8.2) ----------------

MASK64 = 2**64 - 1
# Each round: a ^= c >> r0, b ^= a << r1, c ^= b >> r2, after the subtractions.
HASH_ROUNDS = ((43, 9, 8), (38, 23, 5), (35, 49, 11), (12, 18, 22))
PARAM_SEED_SALT, DATA_SEED_SALT = 85652777, 38272328


def hash_combine(seed: int, value: int) -> int:
    """Mix an integer into a 64-bit hash, as the original's Jenkins-style HashCombine.

    NOTE: the original hashes `value` with std::hash, the identity for integers in libstdc++.
    """
    a, b, c = 0x9E3779B9, seed & MASK64, value & MASK64
    for right_a, left_b, right_c in HASH_ROUNDS:
        a = ((a - b - c) & MASK64) ^ (c >> right_a)
        b = ((b - c - a) & MASK64) ^ ((a << left_b) & MASK64)
        c = ((c - a - b) & MASK64) ^ (b >> right_c)
    return c


def hash_mix(*values: int) -> int:
    """A 32-bit seed from integers: HashCombine folded over them from 42, truncated."""
    seed = 42
    for value in values:
        seed = hash_combine(seed, value)
    return seed & 0xFFFFFFFF


def randomize_seeds(specs: list[TaskSpec], seed: int) -> list[TaskSpec]:
    """The specs with fresh param and data seeds drawn from one experiment seed.

    As the original's --randomize_task_seeds: one generator for param seeds and one for data
    seeds, each seed uniform on the open interval (1, 2**32 - 1); given seeds are discarded.
    """
    param_rng = np.random.RandomState(hash_mix(PARAM_SEED_SALT, seed))
    data_rng = np.random.RandomState(hash_mix(DATA_SEED_SALT, seed))

    def draw(rng, count):
        return tuple(int(s) for s in rng.randint(2, 2**32 - 1, size=count, dtype=np.int64))

    return [replace(spec, param_seeds=draw(param_rng, spec.num_tasks),
                    data_seeds=draw(data_rng, spec.num_tasks)) for spec in specs]
