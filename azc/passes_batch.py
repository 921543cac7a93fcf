"""The optimizer's pipeline on a whole batch of programs at once: canonical forms and hashes.

azc.passes_fused.canonicalize takes one Program at a time and spends ~35 us on a demo-size one.
Batch evolution holds its children as arrays (azc.mutate_batch's layout), so here the same
canonical form is computed for every row of those arrays together, with loops over instruction
slots and rounds but never over programs (~8 us a program in batches of 1,000 demo programs,
bench/optimize.py):

    records    per slot: bits written and read, draws, operand locations (3 * address + kind)
    repeat     remove dead code: liveness to the least fixed point over setup -> (predict ->
               learn)*, then dead draws kept when a live draw follows them in the stream
               fold constants: scalar state per address, the IEEE-exact ops applied elementwise
    until a fold changes nothing, or after as many rounds as the pass manager allows (a
               program is folded again only where a later fold could see a change)
    order      per component, the greedy topological order of azc.passes_order: at each step
               the ready instruction of least key (op, inputs, data bits, position)
    rename     operands of commutative ops ordered by first write, then addresses renumbered
               by first use (every location that only holds zero shares one name per kind)
    hash       azc.pack_batch.hash_rows over the canonical rows (`canonical_words`)

The canonical arrays convert (`to_programs`) to exactly canonicalize's programs, constants bit
for bit, so two rows hash alike exactly when canonicalize makes them equal bit for bit (up to
64-bit collisions; -0.0 and 0.0 differ, as in azc.hashing). The hash itself is not
azc.hashing's blake2b: `program_hashes` gives the same hashes for Programs.

Liveness sets are uint64 masks, so a row naming an address whose location passes 63 (above
s21, v20, m20) goes through canonicalize itself, and is hashed by the same words.

NOTE: a third statement of azc.passes, kept equal to azc.passes_fused by
tests/test_passes_batch.py: change a pass there, then here.
"""

import numpy as np

from azc.errors import ConfigError
from azc.ir import FEATURES, LABEL, PREDICTION, Instruction, Program
from azc.ops import DATA_SIZES, OPS, op_named
from azc.pack_batch import hash_rows
from azc.passes import _FIRST_FREE, _FOLD_ROLE, _OUTPUT, _RESET, _SLOTS
from azc.passes_fused import _ROUNDS, canonicalize

SINK = 64  # the location of an operand an instruction does not have
_WIDTH = 68  # locations 0-63, the sink, and one shared zero location per kind (65-67)
_SALT = 0xA2C_CA7E_B47C  # hash_rows' salt for canonical rows

# --- per-op tables -----------------------------------------------------------------------------

_OUT_KIND = np.array([s[0] for s in _SLOTS])
_IN1_KIND = np.array([s[1] for s in _SLOTS])
_IN2_KIND = np.array([s[2] for s in _SLOTS])
_COMMUTATIVE = np.array([s[3] for s in _SLOTS])
_PARTIAL = np.array([op.data in ("vindex", "mindex") for op in OPS])
_RANDOM = np.array([op.random for op in OPS])
_UNIFORM = np.array([op.data == "uniform" for op in OPS])
_DATA_SIZE = np.array([DATA_SIZES[op.data] for op in OPS])
_ROLE = np.array(_FOLD_ROLE)
_NOT_SCALAR, _CONSTANT, _FOLDABLE, _OTHER = range(4)  # the fold roles of azc.passes
_CONST_SET = op_named("SCALAR_CONST_SET").id
_FOLDS = tuple(op_named(name).id for name in (
    "SCALAR_SUM", "SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_DIVISION", "SCALAR_ABS",
    "SCALAR_RECIPROCAL", "SCALAR_HEAVYSIDE", "SCALAR_MIN", "SCALAR_MAX"))
assert {OPS[i].name for i in _FOLDS} == {op.name for op, r in zip(OPS, _ROLE, strict=True)
                                       if r == _FOLDABLE}

_BIT = np.array([1 << i for i in range(64)] + [0] * (_WIDTH - 64), dtype=np.uint64)
_KIND = np.array([i % 3 for i in range(64)] + [-1, 0, 1, 2])
_SCALAR_BITS = np.uint64(sum(1 << 3 * a for a in range(22)))
_KEEP = np.uint64(~_RESET & (2**64 - 1))
_RESET_OUTPUT = np.uint64(_RESET | _OUTPUT)
# Reserved locations: s0, s1, v0, with their order-key inputs, operand keys and names.
_RESERVED = (3 * LABEL, 3 * PREDICTION, 3 * FEATURES + 1)
_RESERVED_INPUT = np.full(_WIDTH, -1)
_RESERVED_INPUT[list(_RESERVED)] = (0, 1, 2)
_FREE_INPUT = 1 << 11  # order-key inputs: reserved 0-2 < 3 + producer's position < free
_NEVER = 1 << 62
# Per (op * _TABLE_ADDRESSES + address): the location of out, in1 and in2, or the sink. Higher
# addresses than the table holds pass 63 and go through canonicalize.
_TABLE_ADDRESSES = 22
_LOCATIONS = tuple(
    np.array([3 * a + k if k >= 0 and 3 * a + k < 64 else SINK if k < 0 else -1
              for k in kinds.tolist() for a in range(_TABLE_ADDRESSES)])
    for kinds in (_OUT_KIND, _IN1_KIND, _IN2_KIND))
_IS_FOLDABLE = _ROLE == _FOLDABLE
_FIRST_FREE_ARRAY = np.array(_FIRST_FREE)


class _Records:
    """Per slot (rows are slots, columns programs) what the passes read of an instruction."""

    FIELDS = ("op", "out", "in1", "in2", "d0", "d1", "d2", "outloc", "in1loc", "in2loc",
              "written", "read", "draws")

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def take(self, rows) -> "_Records":
        return _Records(**{f: getattr(self, f)[:, rows] for f in self.FIELDS})

    def put(self, rows, other: "_Records"):
        for f in self.FIELDS:
            getattr(self, f)[:, rows] = getattr(other, f)


def _records(codes, data, sizes, capacities) -> tuple[_Records, np.ndarray]:
    """Records of every slot (padding and no-ops write nothing), and rows that need 64+ bits.

    NOTE: one more slot follows the programs' own, always empty: a dead slot to pad with.
    """
    count, slots = codes.shape[:2]
    component = np.repeat(np.arange(3), capacities)
    index = np.arange(slots) - np.repeat(np.cumsum(capacities) - capacities, capacities)
    valid = np.zeros((slots + 1, count), bool)
    valid[:slots] = index[:, None] < sizes.T.take(component, axis=0)
    # (field, slot, program): slots are the outer loop of every pass
    fields = np.zeros((4, slots + 1, count), np.int64)
    fields[:, :slots] = codes.transpose(2, 1, 0)
    values = np.zeros((3, slots + 1, count))
    values[:, :slots] = data.transpose(2, 1, 0)
    op = np.where(valid, fields[0], 0)
    out, in1, in2 = fields[1:]
    size = _DATA_SIZE.take(op)
    d0, d1, d2 = (np.where(size > f, values[f], 0.0) for f in range(3))

    # Locations by table: (op, address) -> 3 * address + kind, or the sink.
    addresses = fields[1:]
    too_wide = np.zeros(len(codes), bool)
    if addresses.max(initial=0) >= _TABLE_ADDRESSES - 1 or addresses.min(initial=0) < 0:
        wide = np.zeros(op.shape, bool)
        for kinds, address in zip((_OUT_KIND, _IN1_KIND, _IN2_KIND), addresses, strict=True):
            location = 3 * address + kinds.take(op)
            wide |= (kinds.take(op) >= 0) & ((location > 63) | (location < 0))
        too_wide = wide.any(axis=0)
        op = np.where(too_wide, 0, op)  # those rows go through canonicalize: here, empty
        # unused fields may hold anything: the table is looked up at a harmless address
        addresses = np.where((addresses >= 0) & (addresses < _TABLE_ADDRESSES), addresses, 0)
    key = op * _TABLE_ADDRESSES
    outloc, in1loc, in2loc = (table.take(key + address) for table, address in zip(
        _LOCATIONS, addresses, strict=True))

    written = _BIT.take(outloc)
    read = _BIT.take(in1loc) | _BIT.take(in2loc)
    partial = _PARTIAL.take(op)
    if partial.any():
        read |= np.where(partial, written, 0)
    draws = _RANDOM.take(op)
    if draws.any():  # NOTE: a uniform draw with low >= high returns low without drawing
        draws &= ~_UNIFORM.take(op) | (d0 < d1)
    records = _Records(op=op, out=out, in1=in1, in2=in2, d0=d0, d1=d1, d2=d2, outloc=outloc,
                       in1loc=in1loc, in2loc=in2loc, written=written, read=read, draws=draws)
    records.locations = 3 * int(addresses.max(initial=0)) + 3  # bound on the locations used
    return records, too_wide


# --- dead code ---------------------------------------------------------------------------------


def _live_through(rec, keep, slots, live):
    """Strong liveness backwards through some slots; marks the useful ones in `keep`."""
    written, read = rec.written, rec.read
    for k in reversed(slots):
        hit = (written[k] & live) != 0
        keep[k] = hit
        live = np.where(hit, live & ~written[k] | read[k], live)
    return live


def _remove_dead(rec, spans):
    """Drop dead slots in place (their records then write, read and draw nothing).

    Returns per program the bits written by what stays (with s0, v0 and s1) and whether a
    foldable op stays. Liveness is azc.passes.live_outs's least fixed point; draws follow
    azc.passes._keep_draws.
    """
    setup, predict, learn = spans
    count = rec.op.shape[1]
    keep = np.zeros(rec.op.shape, bool)
    before_predict = before_learn = np.zeros(count, np.uint64)
    while True:
        live = _OUTPUT | (before_predict | before_learn) & _KEEP
        new_predict = _live_through(rec, keep, predict, live)
        carried = new_predict & _KEEP
        new_learn = _live_through(rec, keep, learn, carried)
        if (new_predict == before_predict).all() and (new_learn == before_learn).all():
            break
        before_predict, before_learn = new_predict, new_learn
    _live_through(rec, keep, setup, carried)

    if rec.draws.any():
        loop_draws = (keep[predict.start:] & rec.draws[predict.start:]).any(axis=0)
        for span in (learn, predict, setup):
            later = loop_draws
            for k in reversed(span):
                draws = rec.draws[k]
                kept = keep[k]
                keep[k] = kept | draws & later
                later = later | draws & kept

    np.multiply(rec.op, keep, out=rec.op)
    np.multiply(rec.written, keep, out=rec.written)
    np.multiply(rec.read, keep, out=rec.read)
    rec.draws &= keep
    written = np.bitwise_or.reduce(rec.written, axis=0) | _RESET_OUTPUT
    foldable = _IS_FOLDABLE.take(rec.op).any(axis=0)
    return written, foldable


# --- constant folding --------------------------------------------------------------------------


def _fold_values(op, a, b):
    """(result, defined) of the foldable ops, elementwise, as azc.passes_fused.FOLDS does."""
    result = np.zeros(len(op))
    defined = np.ones(len(op), bool)
    with np.errstate(all="ignore"):
        for fold in set(op.tolist()):
            i = _FOLDS.index(fold)
            if i == 0:
                value = a + b
            elif i == 1:
                value = a - b
            elif i == 2:
                value = a * b
            elif i == 3:
                value = a / b
                defined &= (op != fold) | (b != 0)
            elif i == 4:
                value = np.abs(a)
            elif i == 5:
                value = 1.0 / a
                defined &= (op != fold) | (a != 0)
            elif i == 6:
                value = np.where(a >= 0, 1.0, 0.0)
            elif i == 7:
                value = np.where(b < a, b, a)  # std::min: NaN in b gives a
            else:
                value = np.where(a < b, b, a)
            result = np.where(op == fold, value, result)
    return result, defined


def _fold_span(rec, slots, value, known, at, folds):
    """Fold some slots, given the scalar state at entry; the folds go into `folds`.

    `value` and `known` are flat (program p's scalar a at p * width + a, the last of each
    program a sink); `at` holds per slot the flat places of the scalar written, in1 and in2
    (the sink where there is none) and the fold roles.
    """
    out, in1, in2, role = at
    folded, folded_value = folds
    for k in slots:
        if not role.scalar[k]:
            continue
        constant = role.constant[k]
        where = out[k]
        new_value = np.where(constant, rec.d0[k], value.take(where))
        new_known = known.take(where) & role.kept[k] | constant
        rows = role.foldable[k]
        if rows is not None:
            a, b = in1[k].take(rows), in2[k].take(rows)
            unary = role.unary[k].take(rows)
            both = known.take(a) & (known.take(b) | unary)
            y = np.where(unary, 0.0, value.take(b))
            result, defined = _fold_values(rec.op[k].take(rows), value.take(a), y)
            done = both & defined & np.isfinite(result)
            new_value[rows] = result
            new_known[rows] = done
            folded[k, rows] = done
            folded_value[k, rows] = result
        value[where] = new_value
        known[where] = new_known


class _Roles:
    """Per slot, the fold role of each program's instruction (fixed while a fold runs)."""

    def __init__(self, op):
        role = _ROLE.take(op)
        self.constant = role == _CONSTANT
        self.kept = role != _OTHER  # whether the value known at the written scalar stays
        self.scalar_rows = role != _NOT_SCALAR
        self.scalar = self.scalar_rows.any(axis=1).tolist()
        self.unary = _IN2_KIND.take(op) < 0
        self.foldable = [np.flatnonzero(row) if row.any() else None
                         for row in role == _FOLDABLE]


def _fold(rec, spans, addresses: int) -> np.ndarray:
    """azc.passes.fold_constants in place on live slots; which programs changed.

    Known at Setup's start: every scalar (memory starts zeroed). In the loop: what Setup left
    in scalars the loop never writes, s0 = 0 in Predict, and what a component set itself.
    """
    setup, predict, learn = spans
    count = rec.op.shape[1]
    width = addresses + 1  # and a sink
    base = np.arange(count) * width
    role = _Roles(rec.op)
    sink = base + addresses
    at = (np.where(role.scalar_rows, base + rec.out, sink),
          np.where(role.scalar_rows, base + rec.in1, sink),
          np.where(role.unary, sink, base + rec.in2), role)
    folds = np.zeros(rec.op.shape, bool), np.zeros(rec.op.shape)
    value = np.zeros(count * width)
    known = np.ones(count * width, bool)
    _fold_span(rec, setup, value, known, at, folds)

    loop_written = np.zeros(count * width, bool)
    loop_written[at[0][predict.start:learn.stop].ravel()] = True
    loop_written[base + LABEL] = loop_written[base + PREDICTION] = True
    fixed = known & ~loop_written
    fixed[sink] = False

    known = fixed.copy()
    known[base + LABEL] = True
    label = value.copy()
    label[base + LABEL] = 0.0
    _fold_span(rec, predict, label, known, at, folds)
    _fold_span(rec, learn, value, fixed, at, folds)

    # Folded instructions become constant sets of their results.
    folded, result = folds
    changed = folded.any(axis=0)
    if changed.any():
        np.copyto(rec.op, _CONST_SET, where=folded)
        for field in (rec.in1, rec.in2, rec.d1, rec.d2, rec.read):
            np.copyto(field, 0, where=folded, casting="unsafe")
        np.copyto(rec.in1loc, SINK, where=folded)
        np.copyto(rec.in2loc, SINK, where=folded)
        np.copyto(rec.d0, result, where=folded)
    return changed


def _loop_scalars(rec, spans):
    """Bits of the scalars that Predict and Learn write (dead slots write nothing)."""
    loop = slice(spans[1].start, spans[2].stop)
    return np.bitwise_or.reduce(rec.written[loop], axis=0, initial=0) & _SCALAR_BITS


def _shrink(rec, spans, addresses: int):
    """Dead code and folding, repeated as azc.passes_fused.canonicalize does; `rec` in place.

    NOTE: a fold is repeated only where the dead-code removal after it changed which scalars
    Predict and Learn write. Folding is idempotent, and what else the removal drops cannot
    change what a later fold sees: an instruction whose value a live instruction reads is
    not dead. But a scalar the loop no longer writes keeps its value from Setup, which may be
    known.
    """
    count = rec.op.shape[1]
    written, foldable = _remove_dead(rec, spans)
    again = foldable
    for rounds in range(_ROUNDS + 1):
        rows = np.flatnonzero(again)
        if not rows.size:
            break
        part = rec.take(rows) if 2 * rows.size < count else rec
        folded = _fold(part, spans, addresses)
        if rounds < _ROUNDS:
            before = _loop_scalars(part, spans)
            part_written, part_foldable = _remove_dead(part, spans)
            dropped = _loop_scalars(part, spans) != before
            if part is rec:
                written, foldable = part_written, part_foldable
                again = folded & foldable & dropped & again
            else:
                written[rows], foldable[rows] = part_written, part_foldable
                again = np.zeros(count, bool)
                again[rows] = folded & part_foldable & dropped
        if part is not rec:
            rec.put(rows, part)
    return written


# --- canonical order ---------------------------------------------------------------------------


def _swap_bytes(x: np.ndarray) -> np.ndarray:
    """float64 bits as big-endian integers: their order is the order of their byte strings."""
    return x.view(np.uint64).byteswap()


def _order_span(rec, span) -> tuple[np.ndarray, np.ndarray]:
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
    fields = int(_DATA_SIZE.take(op).max(initial=0))
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
                    np.where(reserved >= 0, reserved, _FREE_INPUT + _KIND[location]))


# --- canonical names ---------------------------------------------------------------------------


def _rename(rec, program, slot, position, zeros):
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
    zero = (_BIT.take(uses) & zeros.take(user)) != 0
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


# --- the batch pipeline ------------------------------------------------------------------------


def _spans(capacities):
    starts = np.concatenate([[0], np.cumsum(capacities)]).tolist()
    return tuple(range(starts[c], starts[c + 1]) for c in range(3))


def canonical_arrays(codes, data, sizes, capacities):
    """The canonical form of each program (canonicalize's), as compact arrays.

    Takes programs in azc.mutate_batch's layout (codes (P, N, 4), data (P, N, 3), sizes (P, 3)
    in `capacities` slots per component); returns codes (P, T, 4), data (P, T, 3) and sizes
    (P, 3) with each program's components one after another from slot 0, zeros after.
    """
    codes, data = np.asarray(codes, np.int64), np.asarray(data, np.float64)
    sizes = np.asarray(sizes, np.int64)
    if codes.shape[1] >= _FREE_INPUT - 3:
        raise ConfigError(f"batch canonical forms hold at most {_FREE_INPUT - 4} instructions")
    spans = _spans(capacities)
    rec, too_wide = _records(codes, data, sizes, capacities)
    written = _shrink(rec, spans, addresses=22)

    orders, counts = zip(*(_order_span(rec, span) for span in spans), strict=True)
    order = np.concatenate(orders, axis=1)
    canonical_sizes = np.stack(counts, axis=1)
    totals = canonical_sizes.sum(axis=1)
    length = int(totals.max(initial=0))
    # live instructions flat, programs one after another, each in its canonical order
    program, column = np.nonzero(order >= 0)
    position = np.arange(len(program)) - np.repeat(np.cumsum(totals) - totals, totals)
    canonical_codes = np.zeros((len(codes), length, 4), np.int64)
    canonical_data = np.zeros((len(codes), length, 3))
    if len(program):
        canonical_codes[program, position], canonical_data[program, position] = _rename(
            rec, program, order[program, column], position, ~written)

    wide = np.flatnonzero(too_wide)
    if wide.size:
        return _with_fallback(codes, data, sizes, capacities, wide, canonical_codes,
                              canonical_data, canonical_sizes)
    return canonical_codes, canonical_data, canonical_sizes


def _with_fallback(codes, data, sizes, capacities, wide, canonical_codes, canonical_data,
                   canonical_sizes):
    """Rows too wide for 64-bit liveness, canonicalized one by one."""
    from azc.mutate_batch import arrays_to_program  # NOTE: late: mutate_batch imports a lot

    programs = [canonicalize(arrays_to_program(codes[p], data[p], capacities, sizes[p]))
                for p in wide.tolist()]
    extra_codes, extra_data, extra_sizes = program_arrays(programs)
    length = max(canonical_codes.shape[1], extra_codes.shape[1])
    canonical_codes = _pad(canonical_codes, length)
    canonical_data = _pad(canonical_data, length)
    canonical_codes[wide] = _pad(extra_codes, length)
    canonical_data[wide] = _pad(extra_data, length)
    canonical_sizes[wide] = extra_sizes
    return canonical_codes, canonical_data, canonical_sizes


def _pad(x, length):
    return np.concatenate([x, np.zeros((len(x), length - x.shape[1], x.shape[2]), x.dtype)],
                          axis=1)


def program_arrays(programs):
    """Programs as canonical_arrays lays them out (components one after another)."""
    length = max((len(p) for p in programs), default=0)
    codes = np.zeros((len(programs), length, 4), np.int64)
    data = np.zeros((len(programs), length, 3))
    sizes = np.zeros((len(programs), 3), np.int64)
    for p, program in enumerate(programs):
        sizes[p] = [len(c) for c in program.components()]
        for k, instruction in enumerate(program.instructions()):
            codes[p, k] = instruction[:4]
            data[p, k, :len(instruction.data)] = instruction.data
    return codes, data, sizes


def to_programs(codes, data, sizes) -> list[Program]:
    """Compact arrays (canonical_arrays' layout) back as Programs."""
    programs = []
    for c, d, n in zip(codes.tolist(), data.tolist(), sizes.tolist(), strict=True):
        instructions = [Instruction(*fields, tuple(values[:DATA_SIZES[OPS[fields[0]].data]]))
                        for fields, values in zip(c, d, strict=True)]
        setup, predict = n[0], n[0] + n[1]
        programs.append(Program(tuple(instructions[:setup]), tuple(instructions[setup:predict]),
                                tuple(instructions[predict:predict + n[2]])))
    return programs


def canonical_words(codes, data, sizes) -> np.ndarray:
    """The rows hashed: component sizes, then per instruction op | out | in1 | in2 (16 bits
    each) and its three data fields' bits. Zeros past the end add nothing to hash_rows."""
    packed = (codes[:, :, 0] | codes[:, :, 1] << 16 | codes[:, :, 2] << 32
              | codes[:, :, 3] << 48).astype(np.uint64)
    instructions = np.concatenate([packed[:, :, None], data.view(np.uint64)], axis=2)
    return np.concatenate([sizes.astype(np.uint64),
                           instructions.reshape(len(codes), 4 * codes.shape[1])], axis=1)


def structural_hashes(codes, data, sizes, capacities) -> np.ndarray:
    """A stable 64-bit hash per program, equal exactly when canonicalize makes the programs
    equal bit for bit (up to collisions); uint64 (P,)."""
    return hash_rows(canonical_words(*canonical_arrays(codes, data, sizes, capacities)), _SALT)


def program_hashes(programs) -> np.ndarray:
    """structural_hashes of Programs, one by one through canonicalize: the reference."""
    return hash_rows(canonical_words(*program_arrays([canonicalize(p) for p in programs])),
                     _SALT)
