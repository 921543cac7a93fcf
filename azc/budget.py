"""The train budget: programs much costlier than a baseline are not trained at all.

Follows the original's train_budget.cc and compute_cost.cc (reference §13). A program's cost
for B training examples is C(setup) + B * (C(predict) + C(learn)), where C sums the op table's
per-op costs. If that exceeds `factor` times the baseline's cost, the program trains on 0
examples, which gives it fitness 0. This replaces the paper's wall-clock timeout with a
deterministic rule.
"""

from dataclasses import dataclass

from azc.ir import Program
from azc.ops import OPS

_COSTS = tuple(op.cost for op in OPS)


def component_cost(component) -> int:
    """Sum of the op costs of a component's instructions (no-ops cost too)."""
    return sum(_COSTS[instruction.op] for instruction in component)


def program_cost(program: Program, num_train: int) -> int:
    """Compute cost of Setup once plus Predict and Learn for each training example."""
    setup, predict, learn = (component_cost(c) for c in program.components())
    return setup + num_train * (predict + learn)


@dataclass(frozen=True)
class TrainBudget:
    """The baseline program and the factor by which a program may exceed its cost."""

    baseline: Program
    factor: float = 2.0

    def train_examples(self, program: Program, num_train: int) -> int:
        """`num_train` if the program is within budget for that many examples, else 0."""
        limit = self.factor * program_cost(self.baseline, num_train)
        return num_train if program_cost(program, num_train) <= limit else 0

    def allows(self, program: Program, num_train: int) -> bool:
        return self.train_examples(program, num_train) == num_train
