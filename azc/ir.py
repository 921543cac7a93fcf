"""The IR: a program is three component functions, each a tuple of instructions.

Instructions are immutable and hashable, so a child program shares every instruction its
mutation did not touch with its parent. Unused operand fields are 0 and `data` holds exactly
the op's constant data fields (see ops.DATA_SIZES), so equal programs are equal tuples.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from azc.ops import OPS, M, S, V

COMPONENTS = ("setup", "predict", "learn")

# Reserved addresses (the original's memory layout): s0 holds the label during Learn and 0 during
# Predict, s1 the prediction, v0 the features.
LABEL, PREDICTION, FEATURES = 0, 1, 0


class Instruction(NamedTuple):
    """One instruction: op id, the address it writes, the addresses it reads, its data."""

    op: int
    out: int = 0
    in1: int = 0
    in2: int = 0
    data: tuple[float, ...] = ()

    @property
    def spec(self):
        return OPS[self.op]

    def reads(self) -> tuple[tuple[str, int], ...]:
        """(kind, address) pairs read by this instruction."""
        # an op reads as many of (in1, in2) as it has input kinds
        return tuple(zip(self.spec.ins, (self.in1, self.in2)[: self.spec.arity], strict=True))

    def writes(self) -> tuple[str, int] | None:
        """(kind, address) written, or None for the no-op."""
        kind = self.spec.out
        return None if kind is None else (kind, self.out)


NOP = Instruction(0)


def instruction_key(instruction: Instruction):
    """A dict key telling instructions apart bit for bit: `==` takes constant -0.0 for 0.0."""
    data = instruction.data
    if data and 0.0 in data:
        return instruction, tuple(math.copysign(1.0, x) for x in data)
    return instruction


MAX_ADDRESSES = 64  # per kind, in programs and experiments; the original compiles in 20


@dataclass(frozen=True)
class MemoryShape:
    """How many scalar, vector and matrix addresses a memory has."""

    scalars: int = 4
    vectors: int = 3
    matrices: int = 1

    def size(self, kind: str) -> int:
        return {S: self.scalars, V: self.vectors, M: self.matrices}[kind]

    def covers(self, other: "MemoryShape") -> bool:
        return (self.scalars >= other.scalars and self.vectors >= other.vectors
                and self.matrices >= other.matrices)

    def __str__(self):
        return f"{self.scalars}/{self.vectors}/{self.matrices}"


@dataclass(frozen=True)
class Program:
    """An algorithm: Setup runs once, then Predict and Learn for every training example."""

    setup: tuple[Instruction, ...] = ()
    predict: tuple[Instruction, ...] = ()
    learn: tuple[Instruction, ...] = ()

    def components(self) -> tuple[tuple[Instruction, ...], ...]:
        return (self.setup, self.predict, self.learn)

    def instructions(self):
        for component in self.components():
            yield from component

    def __len__(self):
        return len(self.setup) + len(self.predict) + len(self.learn)

    def memory_shape(self) -> MemoryShape:
        """The smallest memory this program runs in; the reserved s0, s1 and v0 always count."""
        top = {S: PREDICTION, V: FEATURES, M: -1}
        for instruction in self.instructions():
            written = instruction.writes()
            for kind, address in instruction.reads() + ((written,) if written else ()):
                top[kind] = max(top[kind], address)
        return MemoryShape(top[S] + 1, top[V] + 1, top[M] + 1)

    def replace(self, **components) -> "Program":
        return Program(**{name: tuple(components.get(name, getattr(self, name)))
                          for name in COMPONENTS})


def to_arrays(component: tuple[Instruction, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The compact form native engines consume: int32 (n, 4) op/out/in1/in2, float64 (n, 3)."""
    codes = np.zeros((len(component), 4), dtype=np.int32)
    data = np.zeros((len(component), 3), dtype=np.float64)
    for i, instruction in enumerate(component):
        codes[i] = (instruction.op, instruction.out, instruction.in1, instruction.in2)
        data[i, : len(instruction.data)] = instruction.data
    return codes, data
