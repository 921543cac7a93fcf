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
               by first use (every location that only holds zero shares one name per kind);
               these two in azc.passes_batch_order
    hash       azc.pack_batch.hash_rows over the canonical rows (`canonical_words`)

The canonical arrays convert (`to_programs`) to exactly canonicalize's programs, constants bit
for bit, so two rows hash alike exactly when canonicalize makes them equal bit for bit (up to
64-bit collisions; -0.0 and 0.0 differ, as in azc.hashing). The hash itself is not
azc.hashing's blake2b: `program_hashes` gives the same hashes for Programs.

Liveness sets are uint64 masks, so a row naming an address whose location passes 63 (above
s21, v20, m20) goes through canonicalize itself, and is hashed by the same words.

NOTE: batch evolution does not key a cache by these hashes. With an FEC, a fingerprint costs
less than the hash (~3 us against ~5 us a program); without one, looking children up by form
slowed the demo from 109,000 to 37,000 individuals per CPU second (2026-12-04: a demo
evaluation costs ~5 us, less than hashing the chunk), and the presets without an FEC have a
random op in nearly every program, which is evaluated afresh anyway.

NOTE: with azc.passes_batch_order, a third statement of azc.passes, kept equal to
azc.passes_fused by tests/test_passes_batch.py: change a pass there, then here.
"""

import numpy as np

from azc.errors import ConfigError
from azc.ir import LABEL, PREDICTION, Instruction, Program
from azc.ops import DATA_SIZES, OPS, op_named
from azc.pack_batch import hash_rows
from azc.passes import _FOLD_ROLE, _OUTPUT, _RESET, _SLOTS
from azc.passes_batch_order import BIT, DATA_SIZE, FREE_INPUT, SINK, order_span, rename
from azc.passes_fused import _ROUNDS, canonicalize

_SALT = 0xA2C_CA7E_B47C  # hash_rows' salt for canonical rows

# --- per-op tables -----------------------------------------------------------------------------

_OUT_KIND = np.array([s[0] for s in _SLOTS])
_IN1_KIND = np.array([s[1] for s in _SLOTS])
_IN2_KIND = np.array([s[2] for s in _SLOTS])
_PARTIAL = np.array([op.data in ("vindex", "mindex") for op in OPS])
_RANDOM = np.array([op.random for op in OPS])
_UNIFORM = np.array([op.data == "uniform" for op in OPS])
_ROLE = np.array(_FOLD_ROLE)
_NOT_SCALAR, _CONSTANT, _FOLDABLE, _OTHER = range(4)  # the fold roles of azc.passes
_CONST_SET = op_named("SCALAR_CONST_SET").id
_FOLDS = tuple(op_named(name).id for name in (
    "SCALAR_SUM", "SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_DIVISION", "SCALAR_ABS",
    "SCALAR_RECIPROCAL", "SCALAR_HEAVYSIDE", "SCALAR_MIN", "SCALAR_MAX"))
assert {OPS[i].name for i in _FOLDS} == {op.name for op, r in zip(OPS, _ROLE, strict=True)
                                       if r == _FOLDABLE}

_SCALAR_BITS = np.uint64(sum(1 << 3 * a for a in range(22)))
_KEEP = np.uint64(~_RESET & (2**64 - 1))
_RESET_OUTPUT = np.uint64(_RESET | _OUTPUT)
# Per (op * _TABLE_ADDRESSES + address): the location of out, in1 and in2, or the sink. Higher
# addresses than the table holds pass 63 and go through canonicalize.
_TABLE_ADDRESSES = 22
_LOCATIONS = tuple(
    np.array([3 * a + k if k >= 0 and 3 * a + k < 64 else SINK if k < 0 else -1
              for k in kinds.tolist() for a in range(_TABLE_ADDRESSES)])
    for kinds in (_OUT_KIND, _IN1_KIND, _IN2_KIND))
_IS_FOLDABLE = _ROLE == _FOLDABLE


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
    size = DATA_SIZE.take(op)
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

    written = BIT.take(outloc)
    read = BIT.take(in1loc) | BIT.take(in2loc)
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
    if codes.shape[1] >= FREE_INPUT - 3:
        raise ConfigError(f"batch canonical forms hold at most {FREE_INPUT - 4} instructions")
    spans = _spans(capacities)
    rec, too_wide = _records(codes, data, sizes, capacities)
    written = _shrink(rec, spans, addresses=22)

    orders, counts = zip(*(order_span(rec, span) for span in spans), strict=True)
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
        canonical_codes[program, position], canonical_data[program, position] = rename(
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
