"""The canonical order and names of azc.passes_batch: a batch's live instructions, vectorized.

    order   per component, canonical_order's greedy topological order (azc.passes_order),
            with its shortcuts: a chain keeps its order, independent instructions sort by key
    rename  operands of commutative ops by first write, then addresses by first use

Programs are columns of slot records (azc.passes_batch._Records): a record's locations number
3 * address + kind as liveness bits do, SINK standing for an operand the op does not have.
"""

import numpy as np

from azc.ir import FEATURES, LABEL, PREDICTION
from azc.ops import DATA_SIZES, OPS
from azc.passes import _FIRST_FREE, _SLOTS

SINK = 64  # the location of an operand an instruction does not have
_WIDTH = 68  # locations 0-63, the sink, and one shared zero location per kind (65-67)
BIT = np.array([1 << i for i in range(64)] + [0] * (_WIDTH - 64), dtype=np.uint64)
_KIND = np.array([i % 3 for i in range(64)] + [-1, 0, 1, 2])
_COMMUTATIVE = np.array([s[3] for s in _SLOTS])
DATA_SIZE = np.array([DATA_SIZES[op.data] for op in OPS])
# Reserved locations: s0, s1, v0, with their order-key inputs, operand keys and names.
_RESERVED = (3 * LABEL, 3 * PREDICTION, 3 * FEATURES + 1)
_RESERVED_INPUT = np.full(_WIDTH, -1)
_RESERVED_INPUT[list(_RESERVED)] = (0, 1, 2)
FREE_INPUT = 1 << 11  # order-key inputs: reserved 0-2 < 3 + producer's position < free
_NEVER = 1 << 62
_FIRST_FREE_ARRAY = np.array(_FIRST_FREE)


def _swap_bytes(x: np.ndarray) -> np.ndarray:
    """float64 bits as big-endian integers: their order is the order of their byte strings."""
    return x.view(np.uint64).byteswap()


def order_span(rec, span) -> tuple[np.ndarray, np.ndarray]:
    """Per program, its live slots of one component in canonical order (azc.passes_order), as
    slot indices padded with -1; and how many there are."""
    alive = rec.op[span] != 0
    counts = alive.sum(axis=0)
    width = int(counts.max(initial=0))
    # live slots first, in their order, then the records' empty slot
    first = np.full((width, alive.shape[1]), rec.op.shape[0] - 1)
    slot, program = np.nonzero(alive)
    first[np.cumsum(alive, axis=0)[slot, program] - 1, program] = slot + span.start
    order = np.where(np.arange(width)[:, None] < counts, first, -1).T.copy()
    rows = np.flatnonzero(counts >= 2)
    if rows.size:
        order[rows] = _order_rows(rec, rows, first[:, rows].T, counts[rows])
    return order, counts


def _order_rows(rec, programs, slots, counts):
    """canonical_order for some programs whose live slots are `slots` (m, n), `counts` of
    them, in their order; slots past a program's count are dead."""
    m, n = slots.shape
    at = slots * rec.op.shape[1] + programs[:, None]

    def field(name):
        return getattr(rec, name).ravel().take(at)

    written, read, draws = field("written"), field("read"), field("draws")
    if rec.locations <= 32:  # half the bytes for the dependence matrix
        written, read = written.astype(np.uint32), read.astype(np.uint32)
    if not draws.any():
        draws = None
    alive = np.arange(n) < counts[:, None]

    # NOTE: canonical_order's shortcuts: a chain keeps its order; when no instruction needs
    # another, the keys just sort (nothing is produced in the component).
    needs_previous = _follows(written[:, :-1], read[:, :-1], written[:, 1:], read[:, 1:],
                              None if draws is None else (draws[:, :-1], draws[:, 1:]))
    needs_previous |= ~alive[:, 1:]
    rows = np.flatnonzero(~needs_previous.all(axis=1))
    order = slots.copy()
    if not rows.size:
        return np.where(alive, order, -1)
    written, read = written[rows, :, None], read[rows, :, None]
    depends = _follows(written, read, written.transpose(0, 2, 1), read.transpose(0, 2, 1),
                       None if draws is None else (draws[rows, :, None], draws[rows, None, :]))
    depends &= np.triu(np.ones((n, n), bool), 1)
    free = ~depends.any(axis=(1, 2))
    if free.any():
        some = rows[free]
        order[some] = _sorted(rec, slots[some], at[some], alive[some])
    if not free.all():
        some = ~free
        order[rows[some]] = _greedy(rec, slots[rows[some]], at[rows[some]],
                                    counts[rows[some]], depends[some])
    return np.where(alive, order, -1)


def _follows(written, read, later_written, later_read, draws=None):
    """Whether a later instruction must follow an earlier one: the earlier writes what the
    later reads or writes, or reads what it writes, or both draw (the stream's order; `draws`
    is the pair of draw flags, None when nothing draws)."""
    follows = (written & (later_written | later_read) | read & later_written) != 0
    if draws is not None:
        follows |= draws[0] & draws[1]
    return follows


def _key_parts(rec, at):
    """The parts of order keys that never change: op and data (as `op << 40 | rank`, the
    rank of (op, data bits, position) in the component), input codes with no producer,
    whether the op is commutative, and the input locations.

    NOTE: (op, inputs, rank) orders as canonical_order's (op, inputs, data bits, position):
    the rank compares data bits, then position, exactly where op and inputs are equal.
    """
    m, n = at.shape
    op, in1loc, in2loc = (getattr(rec, f).ravel().take(at) for f in ("op", "in1loc", "in2loc"))
    # NOTE: the sort is stable, so equal data keep their order: by position
    fields = int(DATA_SIZE.take(op).max(initial=0))
    data = [_swap_bytes(getattr(rec, f).ravel().take(at)).ravel()
            for f in ("d2", "d1", "d0")[3 - fields:]]
    ranked = np.lexsort((*data, (np.arange(m)[:, None] * 128 + op).ravel()))
    rank = np.empty(m * n, np.int64)
    rank[ranked] = np.tile(np.arange(n), m)
    fixed = op.astype(np.int64) << 40 | rank.reshape(m, n)
    return (fixed, _static_input(in1loc), _static_input(in2loc), _COMMUTATIVE.take(op),
            in1loc, in2loc)


def _input_key(fixed, input1, input2, commutative):
    low = np.where(commutative, np.minimum(input1, input2), input1)
    high = np.where(commutative, np.maximum(input1, input2), input2)
    return fixed | low << 28 | high << 16


def _sorted(rec, slots, at, alive):
    """Order of components whose instructions are all independent: by key."""
    fixed, input1, input2, commutative, _, _ = _key_parts(rec, at)
    key = np.where(alive, _input_key(fixed, input1, input2, commutative), np.int64(1) << 62)
    return np.take_along_axis(slots, np.argsort(key, axis=1), axis=1)


def _greedy(rec, slots, at, counts, depends):
    """canonical_order's greedy placement: the ready instruction of least key goes next."""
    m, n = slots.shape
    alive = np.arange(n) < counts[:, None]
    fixed, input1, input2, commutative, in1loc, in2loc = _key_parts(rec, at)

    # An input produced in the component is keyed by its producer's new position, set when
    # the producer is placed (before the instruction is ready).
    outloc = rec.outloc.ravel().take(at)
    producer1 = np.full((m, n), -1)
    producer2 = np.full((m, n), -1)
    last = np.full(m * _WIDTH, -1)
    base = np.arange(m) * _WIDTH
    for j in range(n):
        producer1[:, j] = last.take(base + in1loc[:, j])
        producer2[:, j] = last.take(base + in2loc[:, j])
        last[base + outloc[:, j]] = j

    # Placed and dead instructions wait for ever; others for the instructions they follow.
    order = np.full((m, n), -1)
    top = np.int64(1) << 62
    waiting = np.where(alive, np.count_nonzero(depends, axis=1), top)
    rows = np.arange(m)
    for step in range(n):
        key = np.where(waiting == 0, _input_key(fixed, input1, input2, commutative), top)
        best = key.argmin(axis=1)  # NOTE: a finished program "places" a placed one again
        order[:, step] = slots[rows, best]
        waiting -= depends[rows, best]
        waiting[rows, best] = top
        input1 = np.where(producer1 == best[:, None], 3 + step, input1)
        input2 = np.where(producer2 == best[:, None], 3 + step, input2)
    return order


def _static_input(location):
    """Order-key input of a location with no producer: its reserved index, else its kind."""
    reserved = _RESERVED_INPUT[location]
    return np.where(location == SINK, 0,
                    np.where(reserved >= 0, reserved, FREE_INPUT + _KIND[location]))


# --- canonical names ---------------------------------------------------------------------------


def rename(rec, program, slot, position, zeros):
    """Canonical codes and data of ordered instructions: commutative operands by first write,
    then addresses renumbered by first use (azc.passes_fused._rename's second half).

    Instructions come flat, programs one after another, each instruction as its `program`,
    its `slot` in the records and its `position` in the canonical program.
    """
    at = slot * rec.op.shape[1] + program
    op, outloc, in1loc, in2loc = (getattr(rec, f).ravel().take(at)
                                  for f in ("op", "outloc", "in1loc", "in2loc"))
    # Per program, a table of the locations the batch may use (s0, s1 and v0 at least), then
    # the sink and one shared zero location per kind.
    sink = min(SINK, max(4, rec.locations))
    width = sink + 4
    compact = np.r_[np.arange(sink), np.full(SINK - sink, -1), sink, sink + 1 + np.arange(3)]
    count = len(zeros)
    base = program * width
    reserved = (np.arange(count)[:, None] * width + np.array(_RESERVED)).ravel()

    # Operand keys: reserved first, then by position of first write (from 1), never last.
    keys = np.full(count * width, _NEVER)
    np.minimum.at(keys, base + compact.take(outloc), position + 1)
    keys[reserved] = np.tile((-3, -2, -1), count)
    swap = _COMMUTATIVE.take(op) & (in2loc != SINK) & (
        keys.take(base + compact.take(in2loc)) < keys.take(base + compact.take(in1loc)))
    in1loc, in2loc = np.where(swap, in2loc, in1loc), np.where(swap, in1loc, in2loc)

    # Names in order of use (in1, in2, out); a location that only holds zero is its kind's
    # shared zero location.
    uses = np.stack([in1loc, in2loc, outloc], axis=1).ravel()
    user = np.repeat(program, 3)
    kind = _KIND.take(uses)
    zero = (BIT.take(uses) & zeros.take(user)) != 0
    uses = np.where(zero, 65 + kind, uses)
    at_use = np.repeat(base, 3) + compact.take(uses)
    order = np.arange(len(uses))
    first_use = np.full(count * width, len(uses))
    np.minimum.at(first_use, at_use, order)
    first = np.flatnonzero((first_use.take(at_use) == order) & (uses != SINK)
                           & (_RESERVED_INPUT.take(uses) < 0))

    # A first use's name: its kind's first free address + how many names of its kind its
    # program gave before (a running count per kind, less its value where the program begins)
    kind, owner = kind.take(first), user.take(first)
    fresh = kind[:, None] == np.arange(3)
    seen = np.cumsum(fresh, axis=0)
    begins = np.flatnonzero(np.r_[len(owner) > 0, owner[1:] != owner[:-1]])
    before = np.zeros((count, 3), np.int64)
    before[owner.take(begins)] = (seen - fresh).take(begins, axis=0)
    rank = seen[np.arange(len(first)), kind] - before[owner, kind]
    names = np.zeros(count * width, np.int64)
    names[reserved] = np.tile((LABEL, PREDICTION, FEATURES), count)
    names[at_use.take(first)] = _FIRST_FREE_ARRAY.take(kind) - 1 + rank
    named = names.take(at_use).reshape(-1, 3)

    codes = np.empty((len(op), 4), np.int64)
    codes[:, 0] = op
    for column, location, name, field in ((1, outloc, 2, rec.out), (2, in1loc, 0, rec.in1),
                                          (3, in2loc, 1, rec.in2)):
        codes[:, column] = np.where(location != SINK, named[:, name], field.ravel().take(at))
    data = np.empty((len(op), 3))
    for column, field in enumerate((rec.d0, rec.d1, rec.d2)):
        data[:, column] = field.ravel().take(at)
    return codes, data
