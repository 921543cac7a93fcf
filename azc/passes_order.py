"""Canonical instruction order: one topological order of a component's dependences.

Instructions that do not depend on each other may run in either order with the same numbers
(every op is a function of the addresses it reads, writing one address), so programs differing
only in their order are one algorithm. azc.passes.order_instructions puts every component in
the order `canonical_order` chooses, before operands are ordered and addresses renamed.
"""

import struct

from azc.ir import FEATURES, LABEL, PREDICTION, Instruction
from azc.ops import OPS, M, S, V

_KIND_INDEX = {S: 0, V: 1, M: 2}
# Per op: (out kind index or -1, in1 kind index or -1, in2 kind index or -1, commutative).
SLOTS = tuple((_KIND_INDEX.get(op.out, -1),
               *(_KIND_INDEX[k] for k in op.ins), *(-1,) * (2 - op.arity), op.commutative)
              for op in OPS)
_RESERVED_INDEX = {3 * LABEL: 0, 3 * PREDICTION: 1, 3 * FEATURES + 1: 2}
_DATA_BITS = tuple(struct.Struct(f"<{n}d") for n in range(4))
_PRODUCED, _FREE = 1 << 32, 1 << 62


def canonical_order(component, effects) -> list[int]:
    """A canonical topological order of a component's instructions, as indices into it;
    `effects[j]` begins (bits written, bits read, draws), as azc.passes.effects_of gives them.

    Instruction j must follow an earlier i when i writes what j reads or writes, j writes what
    i reads, or both draw random numbers (the stream's order is part of the meaning). Among
    the instructions free to go next, the smallest key goes first:

        key = (op, its inputs, its data's bits, position in the component)

    where an input is the reserved address it is (s0, s1, v0), else the position in the new
    order of the instruction that produced it in this component, else only its kind. Keys
    never name free addresses, so renamed programs order alike; the position breaks ties
    (which makes the order of an ordered component itself).
    """
    n = len(component)
    if n < 2:
        return list(range(n))
    follows = [0] * n  # bitmask of the earlier instructions each one must follow
    chain, free = True, True
    for j in range(1, n):
        written, read, draws = effects[j][0], effects[j][1], effects[j][2]
        touched = written | read
        mask = 0
        for i in range(j):
            earlier = effects[i]
            if earlier[0] & touched or earlier[1] & written or draws and earlier[2]:
                mask |= 1 << i
        follows[j] = mask
        chain = chain and mask >> (j - 1) & 1
        free = free and not mask
    # NOTE: common shortcuts: when each instruction needs the one before it the order is fixed;
    # when none needs another, nothing is produced in the component and the keys just sort.
    if chain:
        return list(range(n))
    if free:
        return sorted(range(n), key=lambda j: (*_order_key(component[j], {}), j))

    # NOTE: a ready instruction's key never changes: every earlier writer of its inputs is
    # placed, and no later one can be before it. So each key is computed once, when needed.
    produced: dict[int, int] = {}  # location -> position in the new order of its last writer
    order: list[int] = []
    keys: list[tuple | None] = [None] * n
    remaining = list(range(n))  # stays sorted: on equal keys the earlier instruction goes
    placed = 0
    while remaining:
        best = -1
        for j in remaining:
            if follows[j] & ~placed:
                continue
            if best < 0:
                best = j
                continue
            if keys[best] is None:
                keys[best] = _order_key(component[best], produced)
            if keys[j] is None:
                keys[j] = _order_key(component[j], produced)
            if keys[j] < keys[best]:
                best = j
        remaining.remove(best)
        out_kind = SLOTS[component[best].op][0]
        if out_kind >= 0:
            produced[3 * component[best].out + out_kind] = len(order)
        order.append(best)
        placed |= 1 << best
    return order


def _order_key(instruction: Instruction, produced: dict) -> tuple:
    """(op, inputs, data bits) of an instruction, free of the names of free addresses."""
    op, _, in1, in2, data = instruction
    _, in1_kind, in2_kind, commutative = SLOTS[op]
    inputs = ()
    if in1_kind >= 0:
        a = _input(3 * in1 + in1_kind, in1_kind, produced)
        if in2_kind >= 0:
            b = _input(3 * in2 + in2_kind, in2_kind, produced)
            inputs = (b, a) if commutative and b < a else (a, b)
        else:
            inputs = (a,)
    return op, inputs, _DATA_BITS[len(data)].pack(*data) if data else b""


def _input(location: int, kind: int, produced: dict) -> int:
    """An input as a number: reserved address (0-2) < producer's position < kind of a free one."""
    position = produced.get(location)
    if position is not None:
        return _PRODUCED + position
    reserved = _RESERVED_INDEX.get(location)
    return _FREE + kind if reserved is None else reserved
