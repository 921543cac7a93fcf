"""The optimizer's pipeline fused into one function over integer tables: the fast path.

azc.passes states each pass alone, run by the pass manager, so that each can be read, tested and
timed by itself. Evolution wants the canonical form of every child, and there the manager's
generality costs more than the passes: intermediate Program objects, the effects of every
instruction looked up once per pass, folds computed through NumPy scalars. `canonicalize`
computes the same program as PIPELINE.run without them:

    records  = per instruction its liveness bits and operand locations, cached by instruction
    repeat   remove dead code (liveness fixed point over setup -> (predict -> learn)*)
             fold constants with plain float arithmetic
    until a fold changes nothing, or after as many rounds as the pass manager allows
    order instructions (azc.passes.canonical_order), then the operands of commutative ops and
    rename addresses in one walk

NOTE: this is a second statement of azc.passes, kept equal to it by tests/test_passes_fused.py
on random programs over every op: change a pass there, then here.
"""

import math

from azc.ir import FEATURES, LABEL, PREDICTION, Instruction, Program
from azc.ops import OPS, op_named
from azc.passes import (
    _CONST_SET,
    _EXACT,
    _FACTS,
    _FIRST_FREE,
    _FOLD_ROLE,
    _OUTPUT,
    _RESET,
    _SLOTS,
    PIPELINE,
    canonical_order,
    needed,
)

_CONSTANT, _FOLDABLE, _OTHER = 1, 2, 3  # the fold roles of azc.passes
_KEEP = ~_RESET

# Folds of the IEEE-exact scalar ops on Python floats: bit for bit the op table's NumPy
# results for every input (tests/test_passes_fused.py checks them against `fn`). None stands
# for a division by zero, whose infinite or NaN result azc.passes does not fold either.
_PLAIN_FOLDS = {
    "SCALAR_SUM": lambda a, b: a + b,
    "SCALAR_DIFF": lambda a, b: a - b,
    "SCALAR_PRODUCT": lambda a, b: a * b,
    "SCALAR_DIVISION": lambda a, b: a / b if b else None,
    "SCALAR_ABS": lambda a, b: abs(a),
    "SCALAR_RECIPROCAL": lambda a, b: 1.0 / a if a else None,
    "SCALAR_HEAVYSIDE": lambda a, b: 1.0 if a >= 0 else 0.0,
    "SCALAR_MIN": lambda a, b: b if b < a else a,  # std::min: NaN in b gives a
    "SCALAR_MAX": lambda a, b: b if a < b else a,
}
FOLDS = {op_named(name).id: fold for name, fold in _PLAIN_FOLDS.items()}
assert set(FOLDS) == _EXACT, "every exact op of azc.passes needs a plain fold"

# Keys that order operands (azc.passes._address_keys, as integers): reserved s0, s1, v0 first,
# then written locations by position of first write, never-written locations last.
_RESERVED = {3 * LABEL: -3, 3 * PREDICTION: -2, 3 * FEATURES + 1: -1}
_NEVER = 1 << 62
_RESERVED_NAMES = {3 * LABEL: LABEL, 3 * PREDICTION: PREDICTION, 3 * FEATURES + 1: FEATURES}
_new = tuple.__new__  # NOTE: skips NamedTuple's Python-level __new__
_ROUNDS = PIPELINE.max_rounds

# --- per-instruction records -------------------------------------------------------------------
# A record: (bits written, bits read, draws, foldable op, location written, location of in1,
# location of in2, commutative op); locations are numbered 3 * address + kind index, as liveness
# bits are, and -1 stands for an operand the op does not have.

_OP_FACTS = tuple((*_SLOTS[op.id][:3], _FACTS[op.id][2], op.random, op.data == "uniform",
                   op.id in FOLDS, op.commutative) for op in OPS)
_NOTHING = (0, 0, False, False, -1, -1, -1, False)
_RECORDS: dict[Instruction, tuple] = {}
# Records by (op, out, in1, in2) for ops whose record ignores the data: an instruction with new
# constants (every fresh const set) then costs a lookup, not a computation.
_BY_FIELDS: dict[tuple, tuple] = {}
_CACHE_LIMIT = 1 << 16


def _remember(instruction: Instruction) -> tuple:
    """The record of an instruction (as azc.passes._effects computes its effects), cached."""
    fields = instruction[:4]
    record = _BY_FIELDS.get(fields)
    if record is None:
        record = _record(instruction)
        if not _OP_FACTS[instruction[0]][5]:  # a uniform draw's record depends on its data
            if len(_BY_FIELDS) >= _CACHE_LIMIT:
                _BY_FIELDS.clear()
            _BY_FIELDS[fields] = record
    if len(_RECORDS) >= _CACHE_LIMIT:
        _RECORDS.clear()
    _RECORDS[instruction] = record  # NOTE: exact, as azc.passes._EFFECTS explains
    return record


def _record(instruction: Instruction) -> tuple:
    op, out, in1, in2, data = instruction
    out_kind, in1_kind, in2_kind, partial, random, uniform, fold, commutative = _OP_FACTS[op]
    if out_kind < 0:
        return _NOTHING
    out = 3 * out + out_kind
    written = 1 << out
    read = written if partial else 0  # a partial write keeps the rest of the old value
    in1 = 3 * in1 + in1_kind if in1_kind >= 0 else -1
    in2 = 3 * in2 + in2_kind if in2_kind >= 0 else -1
    if in1 >= 0:
        read |= 1 << in1
    if in2 >= 0:
        read |= 1 << in2
    draws = random and (not uniform or data[0] < data[1])  # low >= high returns low, no draw
    return written, read, draws, fold, out, in1, in2, commutative


def _const_set(location: int, value: float) -> tuple:
    """(instruction, record) of `s = value`, for the scalar at `location`."""
    return (_new(Instruction, (_CONST_SET, location // 3, 0, 0, (value,))),
            (1 << location, 0, False, False, location, -1, -1, False))


# --- dead code ---------------------------------------------------------------------------------


def _remove_dead(components, records):
    """(live (instruction, record) pairs per component, bits written, any foldable op kept).

    Liveness is azc.passes.live_outs's least fixed point, reached in Gauss-Seidel order (the
    transfer functions are monotone, so any order reaches the same one); the last round, which
    changes nothing, also collects what Predict and Learn keep.
    """
    (setup, predict, learn), (setup_records, predict_records, learn_records) = components, records
    predict_reversed = tuple(zip(predict[::-1], predict_records[::-1], strict=True))
    learn_reversed = tuple(zip(learn[::-1], learn_records[::-1], strict=True))
    before_predict = before_learn = 0
    while True:
        live = _OUTPUT | (before_predict | before_learn) & _KEEP
        kept_predict, loop_written, foldable, dead_draw = [], 0, False, False
        for pair in predict_reversed:
            written, read, draws, fold, _, _, _, _ = pair[1]
            if written & live:
                live = live & ~written | read
                kept_predict.append(pair)
                loop_written |= written
                if fold:
                    foldable = True
            elif draws:
                dead_draw = True
        new_predict = live
        live &= _KEEP
        carried = live
        kept_learn = []
        for pair in learn_reversed:
            written, read, draws, fold, _, _, _, _ = pair[1]
            if written & live:
                live = live & ~written | read
                kept_learn.append(pair)
                loop_written |= written
                if fold:
                    foldable = True
            elif draws:
                dead_draw = True
        if new_predict == before_predict and live == before_learn:
            break
        before_predict, before_learn = new_predict, live

    live = carried
    kept_setup = []
    all_written = _RESET | _OUTPUT | loop_written
    for instruction, record in zip(setup[::-1], setup_records[::-1], strict=True):
        written, read, draws, fold, _, _, _, _ = record
        if written & live:
            live = live & ~written | read
            kept_setup.append((instruction, record))
            all_written |= written
            if fold:
                foldable = True
        elif draws:
            dead_draw = True
    if dead_draw:
        return _remove_dead_keeping_draws(components, records)
    kept_setup.reverse()
    kept_predict.reverse()
    kept_learn.reverse()
    return [kept_setup, kept_predict, kept_learn], all_written, foldable


def _unzip(kept):
    """(instructions, records) per component, from (instruction, record) pairs."""
    return ([[i for i, _ in c] for c in kept], [[r for _, r in c] for c in kept])


def _remove_dead_keeping_draws(components, records):
    """The general rule of azc.passes.needed, for programs with a dead draw (rare)."""
    flags = needed(Program(*map(tuple, components)))
    kept = [[pair for pair, k in zip(zip(c, r, strict=True), f, strict=True) if k]
            for c, r, f in zip(components, records, flags, strict=True)]
    all_written = _RESET | _OUTPUT
    foldable = False
    for component in kept:
        for _, record in component:
            all_written |= record[0]
            foldable = foldable or record[3]
    return kept, all_written, foldable


# --- constant folding --------------------------------------------------------------------------


def _fold_component(component: list, known: dict, default, zeros: int) -> bool:
    """Fold in place, given the scalar constants known at entry (by location); whether any."""
    folded = False
    for index, (instruction, record) in enumerate(component):
        role = _FOLD_ROLE[instruction[0]]
        if role == _CONSTANT:
            known[record[4]] = instruction[4][0]
        elif role == _FOLDABLE:
            out, in1, in2 = record[4:7]
            a = known[in1] if in1 in known else 0.0 if zeros >> in1 & 1 else default
            value = None
            if a is not None:
                if in2 >= 0:
                    b = known[in2] if in2 in known else 0.0 if zeros >> in2 & 1 else default
                    if b is not None:
                        value = FOLDS[instruction[0]](a, b)
                else:
                    value = FOLDS[instruction[0]](a, 0.0)
            if value is not None and math.isfinite(value):
                component[index] = _const_set(out, value)
                folded = True
            else:
                value = None
            known[out] = value
        elif role == _OTHER:
            known[record[4]] = None
    return folded


def _fold(kept, zeros: int) -> bool:
    """azc.passes.fold_constants in place on the component lists; whether anything folded."""
    setup, predict, learn = kept
    after_setup = {}
    folded = _fold_component(setup, after_setup, 0.0, zeros)

    # Scalars the loop never writes keep their value from Setup; s0 and s1 the executor writes.
    loop_written = {3 * LABEL, 3 * PREDICTION}
    for instruction, record in predict + learn:
        if _FOLD_ROLE[instruction[0]]:
            loop_written.add(record[4])
    fixed = {a: v for a, v in after_setup.items() if a not in loop_written}
    folded |= _fold_component(predict, {**fixed, 3 * LABEL: 0.0}, None, zeros)
    folded |= _fold_component(learn, fixed, None, zeros)
    return folded


# --- canonical names ---------------------------------------------------------------------------


def _rename(kept, zeros: int) -> Program:
    """azc.passes.order_instructions, order_operands and rename_addresses."""
    for c, component in enumerate(kept):
        if len(component) > 1:
            instructions, records = zip(*component, strict=True)
            order = canonical_order(instructions, records)
            kept[c] = [component[i] for i in order]

    keys = dict(_RESERVED)
    position = 0
    for component in kept:
        for _, record in component:
            position += 1
            if record[4] >= 0:
                keys.setdefault(record[4], position)

    names = dict(_RESERVED_NAMES)
    zero_names = [None, None, None]
    next_free = list(_FIRST_FREE)

    def new_name(location: int) -> int:
        kind = location % 3
        if zeros >> location & 1:  # every location that only holds zero gets one name
            name = zero_names[kind]
            if name is None:
                name = zero_names[kind] = next_free[kind]
                next_free[kind] += 1
        else:
            name = next_free[kind]
            next_free[kind] += 1
        names[location] = name
        return name

    name = names.get
    components = []
    for component in kept:
        renamed = []
        for (op, out, in1, in2, data), record in component:
            out, a, b, commutative = record[4:]
            if a >= 0:
                if b >= 0 and commutative and keys.get(b, _NEVER) < keys.get(a, _NEVER):
                    a, b = b, a
                in1 = name(a)  # NOTE: names go in order of use: in1, in2, then out
                if in1 is None:
                    in1 = new_name(a)
                if b >= 0:
                    in2 = name(b)
                    if in2 is None:
                        in2 = new_name(b)
            if out >= 0:
                location, out = out, name(out)
                if out is None:
                    out = new_name(location)
            renamed.append(_new(Instruction, (op, out, in1, in2, data)))
        components.append(tuple(renamed))
    return Program(*components)


def canonicalize(program: Program) -> Program:
    """The program PIPELINE.run returns (azc.passes.optimize), computed faster."""
    get = _RECORDS.get
    components = program.components()
    records = [[get(i) or _remember(i) for i in component] for component in components]
    kept, written, foldable = _remove_dead(components, records)
    rounds = 0
    while foldable and _fold(kept, ~written) and rounds < _ROUNDS:
        rounds += 1
        kept, written, foldable = _remove_dead(*_unzip(kept))
    return _rename(kept, ~written)
