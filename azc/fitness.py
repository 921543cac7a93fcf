"""Fitness: how validation errors become a number in [0, 1], and how tasks combine.

Shared by the reference executor and the native engines so that every engine scores alike.
Follows the original's executor.h (FlipAndSquash, accuracy) and evaluator.cc (CombineFitnesses).
"""

import math
from dataclasses import dataclass

MIN_FITNESS, MAX_FITNESS = 0.0, 1.0
COMBINE_MODES = ("mean", "median")


@dataclass(frozen=True)
class Evaluation:
    """One program's fitness over a task collection, and its fitness on each task."""

    fitness: float
    task_fitness: tuple[float, ...]


def flip_and_squash(x: float) -> float:
    """Map an RMS error in [0, inf) to a fitness in (0, 1]: 1 - (2/pi) atan(x); NaN/Inf give 0."""
    if not math.isfinite(x):
        return MIN_FITNESS
    return 1.0 - (2.0 / math.pi) * math.atan(x)


def rms_fitness(loss: float, num_valid: int) -> float:
    """Fitness from a sum of squared errors; `num_valid` is the task's stored validation count."""
    return flip_and_squash(math.sqrt(loss / num_valid))


def accuracy_fitness(num_wrong: float, num_valid: int) -> float:
    """Fitness of a classifier: 1 - error rate over the task's stored validation count."""
    return 1.0 - num_wrong / num_valid


def combine_fitnesses(values, mode: str = "mean") -> float:
    """One fitness from per-task fitnesses: their mean, or their upper median.

    The median is the element at index n // 2 of the sorted values, with no averaging for even n,
    as the original's partial sort does.
    """
    values = [float(v) for v in values]
    if not values:
        raise ValueError("no fitnesses to combine")
    if mode == "mean":
        combined = sum(values) / len(values)
    elif mode == "median":
        combined = sorted(values)[len(values) // 2]
    else:
        raise ValueError(f"unknown combine mode {mode!r}; use one of {COMBINE_MODES}")
    assert MIN_FITNESS <= combined <= MAX_FITNESS, f"combined fitness {combined} out of [0, 1]"
    return combined
