"""The mutator: how a child program differs from its parent.

Follows the original's mutator.cc and randomizer.cc (reference §9). One mutation action is drawn
uniformly from the configured list (duplicates weigh more); most actions first pick a component
uniformly among the mutable ones, those whose allowed-op list is non-empty:

    alter_param                   one instruction gets one address or its data changed
    randomize_instruction         one instruction is replaced by a random one
    randomize_component_function  every instruction of one component is replaced
    identity                      nothing
    insert_instruction            a random instruction at a random place (while size < max - 1)
    remove_instruction            a random instruction goes (while size > min)
    trade_instruction             insert then remove: the size stays
    randomize_algorithm           every instruction of every mutable component is replaced

Random numbers come from a `random.Random` because single scalar draws from it are much cheaper
than from NumPy; the whole search draws from one such stream so that a seed fixes the run.
"""

import logging
import random
from dataclasses import dataclass

from azc.errors import ConfigError
from azc.ir import COMPONENTS, NOP, Instruction, MemoryShape, Program
from azc.ops import OPS, M, S, V, alter_data, draw_data

log = logging.getLogger("azc")

MUTATIONS = (
    "alter_param", "randomize_instruction", "randomize_component_function", "identity",
    "insert_instruction", "remove_instruction", "trade_instruction", "randomize_algorithm",
)


@dataclass(frozen=True)
class MutationSettings:
    """What the mutator may do: action list, probability, allowed ops and sizes per component.

    `ops[c]` lists op ids allowed in component c (setup, predict, learn); an empty list means
    the component is never mutated. `max_sizes[c]` of 0 means no size limit, as in the original.
    """

    memory: MemoryShape
    ops: tuple[tuple[int, ...], ...]
    mutations: tuple[str, ...] = ("alter_param", "randomize_instruction",
                                  "randomize_component_function")
    mutate_prob: float = 0.9
    min_sizes: tuple[int, ...] = (0, 0, 0)
    max_sizes: tuple[int, ...] = (0, 0, 0)


def address_ranges(memory: MemoryShape) -> dict[str, tuple[range, range]]:
    """Per operand kind, (addresses an instruction may write, addresses it may read).

    NOTE: s0 (the label) and v0 (the features) are never written by random instructions;
    m0 has no reserved role and may be (reference §3).
    """
    return {
        S: (range(1, memory.scalars), range(0, memory.scalars)),
        V: (range(1, memory.vectors), range(0, memory.vectors)),
        M: (range(0, memory.matrices), range(0, memory.matrices)),
    }


def check_settings(settings: MutationSettings) -> None:
    """Raise ConfigError if the memory cannot hold what the allowed ops need, or a name is bad."""
    for name in settings.mutations:
        if name not in MUTATIONS:
            raise ConfigError(f"unknown mutation {name!r}; known: {', '.join(MUTATIONS)}")
    if not settings.mutations:
        raise ConfigError("at least one mutation type is needed")
    ranges = address_ranges(settings.memory)
    for component, op_ids in zip(COMPONENTS, settings.ops, strict=True):
        for op_id in op_ids:
            op = OPS[op_id]
            kinds = ((op.out, 0),) if op.out else ()
            kinds += tuple((kind, 1) for kind in op.ins)
            for kind, which in kinds:
                if not ranges[kind][which]:
                    role = "write" if which == 0 else "read"
                    raise ConfigError(
                        f"{component} op {op.name} needs a {kind} address to {role}, but the "
                        f"memory {settings.memory} has none it may {role}")


class Mutator:
    """Draws random instructions and applies mutation actions to programs."""

    def __init__(self, settings: MutationSettings, rng: random.Random):
        check_settings(settings)
        self.settings = settings
        self.rng = rng
        self.ops = tuple(tuple(OPS[i] for i in ids) for ids in settings.ops)
        self.mutable = tuple(c for c in range(3) if self.ops[c])
        ranges = address_ranges(settings.memory)
        # (first, count) per kind for outputs and inputs: one float draw per address.
        self._out = {kind: (r[0].start, len(r[0])) for kind, r in ranges.items()}
        self._in = {kind: len(r[1]) for kind, r in ranges.items()}
        self._actions = tuple(getattr(self, "_" + name) for name in settings.mutations)
        self._makers = {op.id: self._maker(op) for ops in self.ops for op in ops}
        self._component_makers = tuple(tuple(self._makers[op.id] for op in ops)
                                       for ops in self.ops)
        # (component, index) of the one instruction the last mutate() replaced; None if the
        # child is the parent itself or changed otherwise.
        self.last_change: tuple[int, int] | None = None

    # --- random instructions (reference §9.4) ---------------------------------------------------

    def random_out(self, kind: str) -> int:
        first, count = self._out[kind]
        return first + int(self.rng.random() * count)

    def random_in(self, kind: str) -> int:
        return int(self.rng.random() * self._in[kind])

    def random_instruction(self, component: int) -> Instruction:
        """A random op from the component's allowed list, then random operands and data."""
        makers = self._component_makers[component]
        return makers[int(self.rng.random() * len(makers))]()

    def randomize(self, op) -> Instruction:
        """A new instruction of `op`: set ops draw out then data; others in1, (in2,) out."""
        return (self._makers.get(op.id) or self._maker(op))()

    def random_component(self, component: int, size: int) -> tuple[Instruction, ...]:
        makers, rand = self._component_makers[component], self.rng.random
        count = len(makers)
        return tuple([makers[int(rand() * count)]() for _ in range(size)])

    def _maker(self, op):
        """A function drawing a new instruction of `op`, in the original's draw order.

        NOTE: the per-child budget is a few microseconds, so each op gets a closure with its
        address ranges bound, and builds its instruction with tuple.__new__.
        """
        rand, rng, new, op_id = self.rng.random, self.rng, tuple.__new__, op.id
        if op.out is None:
            return lambda: NOP
        first, count = self._out[op.out]
        if op.data is not None:
            return lambda: new(Instruction, (op_id, first + int(rand() * count), 0, 0,
                                             draw_data(op, rng)))
        n1 = self._in[op.ins[0]]
        if op.arity == 1:
            def unary():
                in1 = int(rand() * n1)
                return new(Instruction, (op_id, first + int(rand() * count), in1, 0, ()))
            return unary
        n2 = self._in[op.ins[1]]

        def binary():
            in1 = int(rand() * n1)
            in2 = int(rand() * n2)
            return new(Instruction, (op_id, first + int(rand() * count), in1, in2, ()))
        return binary

    # --- mutation (reference §9.2) --------------------------------------------------------------

    def mutate(self, program: Program, actions: int = 1) -> Program:
        """With probability mutate_prob, the program after `actions` mutation actions.

        Otherwise the parent itself, unchanged (the original's identical copy).
        """
        prob = self.settings.mutate_prob
        self.last_change = None
        if prob < 1.0 and not self.rng.random() < prob:
            return program
        components = list(program.components())
        for _ in range(actions):
            if not self.mutable:
                break
            action = self._actions[int(self.rng.random() * len(self._actions))]
            change = action(components)
        if actions == 1 and self.mutable:
            self.last_change = change
        return Program(*components)

    def _component(self) -> int:
        return self.mutable[int(self.rng.random() * len(self.mutable))]

    def _alter_param(self, components):
        c = self._component()
        code = components[c]
        if code:
            i = int(self.rng.random() * len(code))
            components[c] = code[:i] + (self.alter(code[i]),) + code[i + 1:]
            return c, i

    def _randomize_instruction(self, components):
        c = self._component()
        code = components[c]
        if code:
            i = int(self.rng.random() * len(code))
            components[c] = code[:i] + (self.random_instruction(c),) + code[i + 1:]
            return c, i

    def _randomize_component_function(self, components):
        c = self._component()
        components[c] = self.random_component(c, len(components[c]))

    def _identity(self, components):
        pass

    def _insert_instruction(self, components):
        c = self._component()
        code = components[c]
        top = self.settings.max_sizes[c]
        # NOTE: the original refuses at size >= max - 1, so sizes stop one below the max.
        if top and len(code) >= top - 1:
            return
        i = int(self.rng.random() * (len(code) + 1))
        components[c] = code[:i] + (self.random_instruction(c),) + code[i:]

    def _remove_instruction(self, components):
        c = self._component()
        code = components[c]
        if len(code) <= self.settings.min_sizes[c]:
            return
        i = int(self.rng.random() * len(code))
        components[c] = code[:i] + code[i + 1:]

    def _trade_instruction(self, components):
        c = self._component()
        code = components[c]
        i = int(self.rng.random() * (len(code) + 1))
        code = code[:i] + (self.random_instruction(c),) + code[i:]
        j = int(self.rng.random() * len(code))
        components[c] = code[:j] + code[j + 1:]

    def _randomize_algorithm(self, components):
        for c in self.mutable:
            components[c] = self.random_component(c, len(components[c]))

    # --- parameter changes (reference §9.3) -----------------------------------------------------

    def alter(self, instruction: Instruction) -> Instruction:
        """The instruction with one address or one data field changed; a no-op stays."""
        op = OPS[instruction.op]
        rand = self.rng.random
        if op.out is None:
            return instruction
        if op.data is not None:
            if rand() < 0.5:
                return instruction._replace(out=self.random_out(op.out))
            return instruction._replace(data=alter_data(op, instruction.data, self.rng))
        if op.arity == 1:
            if rand() < 0.5:
                return instruction._replace(in1=self.random_in(op.ins[0]))
            return instruction._replace(out=self.random_out(op.out))
        which = int(rand() * 3)
        if which == 0:
            return instruction._replace(in1=self.random_in(op.ins[0]))
        if which == 1:
            return instruction._replace(in2=self.random_in(op.ins[1]))
        return instruction._replace(out=self.random_out(op.out))
