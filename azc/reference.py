"""The NumPy reference executor: the oracle every faster engine is tested against.

It runs one program on one task as the original's executor.h does (reference §6), written
for clarity rather than speed. Every instruction goes through its op's `fn` from the op table,
so this module knows nothing about individual ops.
"""

from dataclasses import dataclass

import numpy as np

from azc.errors import ConfigError
from azc.fitness import MIN_FITNESS, Evaluation, accuracy_fitness, combine_fitnesses, rms_fitness
from azc.ir import FEATURES, LABEL, PREDICTION, Instruction, MemoryShape, Program
from azc.ops import OPS, M, S, V, libm
from azc.rng import Stream
from azc.tasks import ACCURACY, MIN_TRAIN_STEPS, Task


class Memory:
    """The three typed banks, zeroed: scalars (NS,), vectors (NV, F), matrices (NM, F, F)."""

    def __init__(self, shape: MemoryShape, F: int):
        self.F = F
        self.scalars = np.zeros(shape.scalars)
        self.vectors = np.zeros((shape.vectors, F))
        self.matrices = np.zeros((shape.matrices, F, F))
        self.banks = {S: self.scalars, V: self.vectors, M: self.matrices}

    def read(self, kind: str, address: int):
        """The value at an address: np.float64 for scalars, a view of the bank otherwise."""
        return self.banks[kind][address]

    def write(self, kind: str, address: int, value):
        """Copy a value into an address."""
        self.banks[kind][address] = value


@dataclass
class TaskRun:
    """What one program did on one task: its fitness, recorded errors and final memory.

    The error lists are None unless recording was asked for (see `run_task`).
    """

    fitness: float
    train_errors: list[float] | None
    valid_errors: list[float] | None
    memory: Memory


def execute(instruction: Instruction, memory: Memory, rng: Stream):
    """Run one instruction: read its inputs, apply its op's fn, write the result."""
    op = OPS[instruction.op]
    if op.out is None:
        return

    addresses = (instruction.in1, instruction.in2)[:op.arity]
    inputs = [memory.read(kind, address) for kind, address in zip(op.ins, addresses, strict=True)]
    a, b = inputs + [None] * (2 - len(inputs))
    old = memory.read(op.out, instruction.out)

    memory.write(op.out, instruction.out, op.fn(a, b, old, instruction.data, memory.F, rng))


def run_component(component: tuple[Instruction, ...], memory: Memory, rng: Stream):
    """Run a component function's instructions in order."""
    for instruction in component:
        execute(instruction, memory, rng)


_exp = libm("exp")


def sigmoid(x):
    """1 / (1 + e^-x) with the C library's exp, which the native engines call too."""
    return 1.0 / (1.0 + _exp(-x))


def run_task(program: Program, task: Task, *, memory: MemoryShape | None = None,
             num_train: int | None = None, num_valid: int | None = None,
             max_abs_error: float = 100.0, seed: int = 0, task_index: int = 0,
             record: bool = False) -> TaskRun:
    """Run one program on one task and return its fitness (reference §6).

        memory = zeros; rng = Stream(seed, task_index); run Setup
        for each epoch (a chunk of the first num_train steps of task.epoch_orders):
            for each training example (x, y):
                v0, s0 = x, 0; run Predict
                if the task is ACCURACY: s1 = sigmoid(s1), in memory
                if |y - s1| is NaN or > max_abs_error:      # early stop
                    return 0 if this is the first epoch, else stop training
                v0, s0 = x, y; run Learn
            best = max(best, validate())   # Predict only on the first num_valid examples
        return best

    Memory is zeroed once and persists across examples, epochs and validation. With `record`,
    the first epoch's |y - s1| and the first validation's errors (RMS: |y - s1|, ACCURACY: 0/1)
    are kept, each truncated before an early stop, as the original's functional-equivalence
    fingerprint does (reference §12).
    """
    shape = memory if memory is not None else program.memory_shape()
    if not shape.covers(program.memory_shape()):
        raise ConfigError(f"the program needs memory {program.memory_shape()}, "
                          f"more than the {shape} given")
    if (num_train is not None and num_train < 0) or (num_valid is not None and num_valid < 0):
        raise ValueError(f"negative example counts: num_train={num_train}, num_valid={num_valid}")
    if len(task.valid_labels) == 0:
        raise ConfigError(f"task {task.name!r} has no validation examples to score on")
    mem = Memory(shape, task.features_size)
    rng = Stream(seed, task_index)

    # The train budget is a prefix of the epochs' visiting orders, cut into epochs.
    max_train, stored_valid = task.max_train_examples, len(task.valid_labels)
    num_train = max_train if num_train is None else min(num_train, max_train)
    num_valid = stored_valid if num_valid is None else min(num_valid, stored_valid)
    steps = task.epoch_orders.reshape(-1)[:num_train]
    epoch_size = task.epoch_orders.shape[1]
    train_errors = [] if record else None
    valid_errors = [] if record else None

    best = MIN_FITNESS
    with np.errstate(all="ignore"):
        run_component(program.setup, mem, rng)
        for start in range(0, len(steps), epoch_size):
            first = start == 0
            order = steps[start:start + epoch_size]
            trained = _train(program, task, order, mem, rng, max_abs_error,
                             train_errors if first else None)
            if not trained:
                if first:
                    return TaskRun(MIN_FITNESS, train_errors, valid_errors, mem)
                break
            fitness = _validate(program, task, num_valid, mem, rng, max_abs_error,
                                valid_errors if first else None)
            best = max(best, fitness)
    return TaskRun(best, train_errors, valid_errors, mem)


def _train(program, task, order, memory, rng, max_abs_error, errors) -> bool:
    """One epoch of Predict + Learn over `order`; False on an early stop."""
    for i in order:
        features, label = task.train_features[i], task.train_labels[i]

        memory.write(V, FEATURES, features)
        memory.write(S, LABEL, 0.0)
        run_component(program.predict, memory, rng)

        # Classifiers learn from the squashed prediction: Learn sees sigmoid(s1) in s1.
        if task.eval_type == ACCURACY:
            memory.write(S, PREDICTION, sigmoid(memory.read(S, PREDICTION)))
        error = abs(label - memory.read(S, PREDICTION))
        if not error <= max_abs_error:  # NaN fails every comparison
            return False
        if errors is not None:
            errors.append(float(error))

        memory.write(V, FEATURES, features)
        memory.write(S, LABEL, label)
        run_component(program.learn, memory, rng)
    return True


def _validate(program, task, num_valid, memory, rng, max_abs_error, errors) -> float:
    """Predict on the first `num_valid` validation examples; the fitness of this epoch."""
    loss = 0.0
    for i in range(num_valid):
        features, label = task.valid_features[i], task.valid_labels[i]
        memory.write(V, FEATURES, features)
        memory.write(S, LABEL, 0.0)
        run_component(program.predict, memory, rng)

        prediction = memory.read(S, PREDICTION)
        if task.eval_type == ACCURACY:
            # NOTE: a NaN logit makes p NaN, which counts as predicting class 0.
            p = sigmoid(prediction)
            error = 0.0 if (label > 0.5) == (p > 0.5) else 1.0
            loss += error
        else:
            error = label - prediction
            loss += error * error
        if not abs(error) <= max_abs_error:
            return MIN_FITNESS
        if errors is not None:
            errors.append(float(abs(error)))

    # NOTE: the loss is averaged over all stored validation examples, not the ones run (§6.4).
    stored = len(task.valid_labels)
    if task.eval_type == ACCURACY:
        return accuracy_fitness(loss, stored)
    return rms_fitness(float(loss), stored)


class ReferenceEvaluator:
    """Fitness of programs over a task collection, one reference run per (program, task)."""

    def __init__(self, tasks: list[Task], memory: MemoryShape | None = None, *,
                 max_abs_error: float = 100.0, num_train: int | None = None,
                 num_valid: int | None = None, seed: int = 0, combine: str = "mean"):
        self.tasks = list(tasks)
        if not self.tasks:
            raise ConfigError("an evaluator needs at least one task")
        for task in self.tasks:
            if task.max_train_examples < MIN_TRAIN_STEPS:
                raise ConfigError(f"task {task.name!r} has {task.max_train_examples} training "
                                  f"steps; at least {MIN_TRAIN_STEPS} are needed")
        combine_fitnesses([MIN_FITNESS], combine)  # fails early on an unknown mode
        self.memory = memory
        self.max_abs_error = max_abs_error
        self.num_train = num_train
        self.num_valid = num_valid
        self.seed = seed
        self.combine = combine

    def evaluate(self, program: Program, seed: int | None = None) -> Evaluation:
        """The program's combined fitness and its fitness on each task; random ops draw from
        the streams of `seed` instead of the evaluator's own, if given."""
        seed = self.seed if seed is None else seed
        task_fitness = tuple(
            run_task(program, task, memory=self.memory, num_train=self.num_train,
                     num_valid=self.num_valid, max_abs_error=self.max_abs_error,
                     seed=seed, task_index=index).fitness
            for index, task in enumerate(self.tasks))
        return Evaluation(combine_fitnesses(task_fitness, self.combine), task_fitness)

    def fitness_batch(self, programs, seed: int | None = None) -> np.ndarray:
        """Combined fitness of each program, as a float64 array."""
        return np.array([self.evaluate(program, seed).fitness for program in programs],
                        dtype=np.float64)
