"""IR passes: shrink a program to the smallest equivalent one and put it in canonical form.

A program runs as Setup once, then Predict and Learn alternating over every training example
and epoch, then Predict alone over the validation examples; memory persists throughout. Before
every Predict the executor sets v0 = features and s0 = 0, before every Learn v0 = features and
s0 = label; fitness reads only s1 after Predict (on accuracy tasks training replaces s1 by
sigmoid(s1), a read-then-write of s1 that keeps it live). The passes, in pipeline order:

    eliminate_dead_code  keep an instruction only if a value it writes can reach s1 after a
                         Predict, found by liveness over setup -> (predict -> learn)* as a
                         least fixed point (dead cycles, such as a counter nothing reads, go too)
    fold_constants       replace a scalar instruction whose inputs are known constants by a
                         constant set, using only IEEE-exact ops (+ - * / abs 1/x heaviside
                         min max) so every engine agrees bit for bit
    order_instructions   put each component's instructions in a canonical topological order of
                         their dependences, so programs differing only in the order of
                         independent instructions agree
    order_operands       put the operands of exactly-commutative ops in a name-independent order
    rename_addresses     renumber free addresses in order of first use; every address that is
                         read but never written holds zero forever and so becomes one address

Equivalence means *same numbers*: the optimized program's fitness equals the original's bit for
bit on every task, seed and engine, random ops included. Programs draw from one stream per
(seed, task) (azc/rng.py), so deleting a dead draw would shift every later draw; a dead random op
is therefore kept (as a draw whose value is never read) when a live draw follows it in the
stream, and removed otherwise. "Same distribution" would merge more programs, but would make the
fitness of a cached canonical form differ from the program's own, and would break the engines'
oracle tests, which compare optimized against original runs exactly.

azc.passes_fused computes the same pipeline in one function, faster, for hashing every child.

NOTE: the optimized program is smaller, so its compute cost is lower: the train budget
(reference §13) must be decided on the program as evolved, and caches keyed by the structural
hash must include the budgeted number of train examples (see azc/fec.py).
"""

import logging
import os
import time
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain
from operator import itemgetter, or_

import numpy as np

from azc.ir import FEATURES, LABEL, PREDICTION, Instruction, Program
from azc.ops import OPS, M, S, V, op_named
from azc.passes_order import SLOTS as _SLOTS
from azc.passes_order import canonical_order

log = logging.getLogger("azc")

_KIND_INDEX = {S: 0, V: 1, M: 2}
_CONST_SET = op_named("SCALAR_CONST_SET").id

# Ops whose float64 result is exactly specified by IEEE 754, hence identical in NumPy and LLVM.
_EXACT = frozenset(op_named(name).id for name in (
    "SCALAR_SUM", "SCALAR_DIFF", "SCALAR_PRODUCT", "SCALAR_DIVISION", "SCALAR_ABS",
    "SCALAR_RECIPROCAL", "SCALAR_HEAVYSIDE", "SCALAR_MIN", "SCALAR_MAX"))


def bit(kind: str, address: int) -> int:
    """The liveness bit of one memory location; kinds interleave so any address fits."""
    return 1 << (3 * address + _KIND_INDEX[kind])


# Locations the executor overwrites before every Predict and every Learn.
_RESET = bit(S, LABEL) | bit(V, FEATURES)
_OUTPUT = bit(S, PREDICTION)


def _op_facts(op):
    """(write kind index or -1, read kind indices, partial write, draws at all) for one op."""
    out = -1 if op.out is None else _KIND_INDEX[op.out]
    # NOTE: ops with index data write one entry: the rest of the old value survives, so they
    # read their output as well as writing it.
    partial = op.data in ("vindex", "mindex")
    return out, tuple(_KIND_INDEX[kind] for kind in op.ins), partial, op.random


_FACTS = tuple(_op_facts(op) for op in OPS)


def _effects(instruction: Instruction) -> tuple[int, int, bool]:
    """(bit written, bits read, draws random numbers) of one instruction."""
    out, ins, partial, random = _FACTS[instruction.op]
    if out < 0:
        return 0, 0, False
    written = 1 << (3 * instruction.out + out)
    read = written if partial else 0
    if ins:
        read |= 1 << (3 * instruction.in1 + ins[0])
        if len(ins) > 1:
            read |= 1 << (3 * instruction.in2 + ins[1])
    if random and instruction.spec.data == "uniform":
        low, high = instruction.data
        random = low < high  # an empty interval returns its lower bound without drawing
    return written, read, random


_OP, _WRITTEN, _DRAWS = itemgetter(0), itemgetter(0), itemgetter(2)

# Effects of instructions seen recently: children share most instructions with their parents.
# NOTE: equal instructions always have equal effects (0.0 == -0.0 compare alike in `low < high`,
# and instructions holding NaN are never equal to another object), so the cache is exact.
_EFFECTS: dict[Instruction, tuple[int, int, bool]] = {}
_CACHE_LIMIT = 1 << 16


def effects_of(component) -> list[tuple[int, int, bool]]:
    """The effects of each instruction of a component."""
    cache = _EFFECTS
    effects = []
    for instruction in component:
        known = cache.get(instruction)
        if known is None:
            known = _effects(instruction)
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[instruction] = known
        effects.append(known)
    return effects


# --- dead-code removal -------------------------------------------------------------------------


def _live_before(effects, live: int) -> int:
    """Strong liveness backwards through a component: only useful instructions make reads live."""
    for written, read, _ in reversed(effects):
        if written & live:
            live = live & ~written | read  # a partial write reads its output: it stays live
    return live


def live_outs(effects) -> tuple[int, int, int]:
    """Locations live after Setup, Predict and Learn: the least fixed point of the cycle.

        after_learn   = before_predict - {s0, v0}
        after_predict = {s1} | (before_learn - {s0, v0}) | (before_predict - {s0, v0})
        after_setup   = before_predict - {s0, v0}
    """
    _, predict, learn = effects
    before_predict = before_learn = 0
    while True:
        carried = before_predict & ~_RESET
        after_predict = _OUTPUT | carried | (before_learn & ~_RESET)
        new_learn = _live_before(learn, carried)
        new_predict = _live_before(predict, after_predict)
        if new_learn == before_learn and new_predict == before_predict:
            return carried, after_predict, carried
        before_learn, before_predict = new_learn, new_predict


def _useful(effects, live: int) -> list[bool]:
    """Which instructions of a component write something live, given what is live after it."""
    useful = [False] * len(effects)
    for i in range(len(effects) - 1, -1, -1):
        written, read, _ = effects[i]
        if written & live:
            useful[i] = True
            live = live & ~written | read
    return useful


def eliminate_dead_code(program: Program) -> Program:
    """Drop every instruction whose writes cannot reach the prediction; no-ops included."""
    keep = needed(program)
    if all(map(all, keep)):
        return program
    return Program(*(tuple([i for i, k in zip(component, flags, strict=True) if k])
                     for component, flags in zip(program.components(), keep, strict=True)))


def needed(program: Program) -> list[list[bool]]:
    """Per component, whether each instruction must stay: it writes something live, or it
    draws random numbers that a live draw after it depends on."""
    effects = (effects_of(program.setup), effects_of(program.predict), effects_of(program.learn))
    keep = [_useful(e, live) for e, live in zip(effects, live_outs(effects), strict=True)]
    if any(map(_DRAWS, chain.from_iterable(effects))):
        _keep_draws(effects, keep)
    return keep


def _keep_draws(effects, keep):
    """Keep a dead draw when a live draw comes after it in the stream (see module docstring)."""
    loop_draws = any(k and e[2] for c in (1, 2) for k, e in zip(keep[c], effects[c], strict=True))
    for c in (2, 1, 0):
        later = loop_draws
        for i in range(len(effects[c]) - 1, -1, -1):
            if effects[c][i][2]:
                if keep[c][i]:
                    later = True
                elif later:
                    keep[c][i] = True


# --- constant folding --------------------------------------------------------------------------

_NOT_SCALAR, _CONSTANT, _FOLDABLE, _OTHER = range(4)
_FOLD_ROLE = tuple(_NOT_SCALAR if op.out != S else _CONSTANT if op.id == _CONST_SET
                   else _FOLDABLE if op.id in _EXACT else _OTHER for op in OPS)
_ZERO = np.float64(0.0)


def _never_written(program: Program) -> int:
    """Bits of free locations no instruction writes: they hold zero for the whole run."""
    written = _RESET | _OUTPUT  # the executor writes s0, v0 and (on accuracy tasks) s1
    for component in program.components():
        written = reduce(or_, map(_WRITTEN, effects_of(component)), written)
    return ~written


def _fold_component(component, known: dict, default, zeros: int):
    """Fold one component given the scalar constants known at its entry; (tuple, known after)."""
    folded = []
    for instruction in component:
        role = _FOLD_ROLE[instruction.op]
        if role == _CONSTANT:
            known[instruction.out] = instruction.data[0]
        elif role == _FOLDABLE:
            op = OPS[instruction.op]
            a = _known(instruction.in1, known, default, zeros)
            b = _known(instruction.in2, known, default, zeros) if op.arity > 1 else _ZERO
            value = None
            if a is not None and b is not None:
                with np.errstate(all="ignore"):
                    result = float(op.fn(a, b, None, (), 0, None))
                if np.isfinite(result):  # NOTE: inf and nan have no constant-set spelling
                    value = result
                    instruction = Instruction(_CONST_SET, instruction.out, data=(value,))
            known[instruction.out] = value
        elif role == _OTHER:
            known[instruction.out] = None
        folded.append(instruction)
    return tuple(folded), known


def _known(address, known, default, zeros):
    if address in known:
        return known[address]
    return _ZERO if zeros >> (3 * address) & 1 else default


def fold_constants(program: Program) -> Program:
    """Turn scalar arithmetic on known constants into constant sets.

    Known are: every scalar during Setup (memory starts zeroed), s0 = 0 in Predict, scalars
    never written anywhere (always zero), scalars that only Setup writes (their value at its
    end), and whatever a component set earlier in itself.
    """
    if _EXACT.isdisjoint(map(_OP, chain(program.setup, program.predict, program.learn))):
        return program
    zeros = _never_written(program)
    setup, after_setup = _fold_component(program.setup, {}, _ZERO, zeros)

    # Scalars the loop never writes keep their value from Setup; s0 and s1 the executor writes.
    loop_written = {LABEL, PREDICTION}
    for instruction in program.predict + program.learn:
        if _FOLD_ROLE[instruction.op] != _NOT_SCALAR:
            loop_written.add(instruction.out)
    fixed = {a: v for a, v in after_setup.items() if a not in loop_written}
    predict, _ = _fold_component(program.predict, {**fixed, LABEL: _ZERO}, None, zeros)
    learn, _ = _fold_component(program.learn, dict(fixed), None, zeros)
    if (setup, predict, learn) == program.components():
        return program
    return Program(setup, predict, learn)


# --- canonical form ----------------------------------------------------------------------------

def order_instructions(program: Program) -> Program:
    """Put each component's instructions in their canonical order (see canonical_order)."""
    changed = False
    components = []
    for component in program.components():
        order = canonical_order(component, effects_of(component))
        if any(i != k for k, i in enumerate(order)):
            component = tuple(component[i] for i in order)
            changed = True
        components.append(component)
    return Program(*components) if changed else program


_COMMUTATIVE = frozenset(op.id for op in OPS if op.commutative)
_RESERVED_KEYS = {3 * LABEL + 0: (0, 0), 3 * PREDICTION + 0: (0, 1), 3 * FEATURES + 1: (0, 2)}


def _address_keys(program: Program) -> dict:
    """A name-independent key per location: reserved first, then by first write, zeros last.

    Locations are numbered 3 * address + kind index, as liveness bits are.
    """
    keys = dict(_RESERVED_KEYS)
    position = 0
    for instruction in program.instructions():
        position += 1
        out = _SLOTS[instruction.op][0]
        if out >= 0:
            keys.setdefault(3 * instruction.out + out, (1, position))
    return keys


def order_operands(program: Program) -> Program:
    """Order the two operands of each commutative op by their address keys."""
    if _COMMUTATIVE.isdisjoint(map(_OP, chain(program.setup, program.predict, program.learn))):
        return program
    keys = _address_keys(program)
    never = (2, 0)
    changed = False
    components = []
    for component in program.components():
        ordered = list(component)
        for i, instruction in enumerate(component):
            _, kind, _, commutative = _SLOTS[instruction.op]
            if commutative:
                first = keys.get(3 * instruction.in1 + kind, never)
                if keys.get(3 * instruction.in2 + kind, never) < first:
                    ordered[i] = Instruction(instruction.op, instruction.out, instruction.in2,
                                             instruction.in1, instruction.data)
                    changed = True
        components.append(ordered)
    return Program(*map(tuple, components)) if changed else program


_FIRST_FREE = (PREDICTION + 1, FEATURES + 1, 0)  # per kind index: s2, v1, m0
# Per op: the (field, kind index) pairs to rename, in order of use: in1, in2, then out.
_RENAMED = tuple(tuple((f, slots[f - 1]) for f in (2, 3, 1) if slots[f - 1] >= 0)
                 for slots in _SLOTS)
_new_instruction = tuple.__new__  # NOTE: skips NamedTuple's Python-level __new__


def rename_addresses(program: Program) -> Program:
    """Renumber free addresses per kind in order of first use (in1, in2, then out).

    Reserved s0, s1 and v0 keep their numbers. Addresses read but never written all hold zero,
    so they share one new address per kind: programs reading different zero addresses agree.
    """
    zeros = _never_written(program)
    names = {3 * LABEL: LABEL, 3 * PREDICTION: PREDICTION, 3 * FEATURES + 1: FEATURES}
    zero_names = [None, None, None]
    next_free = list(_FIRST_FREE)
    components = []
    changed = False
    for component in program.components():
        renamed = []
        for instruction in component:
            fields = list(instruction)
            for slot, kind in _RENAMED[fields[0]]:
                location = 3 * fields[slot] + kind
                name = names.get(location)
                if name is None:
                    if zeros >> location & 1:
                        name = zero_names[kind]
                        if name is None:
                            name = zero_names[kind] = next_free[kind]
                            next_free[kind] += 1
                    else:
                        name = next_free[kind]
                        next_free[kind] += 1
                    names[location] = name
                fields[slot] = name
            if fields[1] != instruction[1] or fields[2] != instruction[2] or (
                    fields[3] != instruction[3]):
                instruction = _new_instruction(Instruction, fields)
                changed = True
            renamed.append(instruction)
        components.append(renamed)
    return Program(*map(tuple, components)) if changed else program


# --- the pass manager --------------------------------------------------------------------------


@dataclass(frozen=True)
class Pass:
    """A named rewrite Program -> Program that returns its input object when nothing changed."""

    name: str
    run: object
    repeat_from: str | None = None  # when this pass changes the program, rerun from that pass


@dataclass
class PassRecord:
    name: str
    changed: bool
    seconds: float


@dataclass
class PassManager:
    """Runs passes in order; records which changed the program and how long each took.

    With the "azc" logger at DEBUG it logs each pass, and dumps the program after the passes
    named in `dump_after` (or in the environment variable AZC_DUMP_AFTER, comma-separated).
    """

    passes: tuple[Pass, ...]
    dump_after: frozenset = field(default_factory=lambda: frozenset(
        filter(None, os.environ.get("AZC_DUMP_AFTER", "").split(","))))
    max_rounds: int = 4

    def __post_init__(self):
        index = {p.name: i for i, p in enumerate(self.passes)}
        self._restart = [index.get(p.repeat_from) for p in self.passes]

    def run(self, program: Program, records: list | None = None) -> Program:
        """The program after every pass; appends a PassRecord per pass run to `records`."""
        timed = records is not None or log.isEnabledFor(logging.DEBUG)
        passes, restart = self.passes, self._restart
        i, rounds = 0, 0
        while i < len(passes):
            start = time.perf_counter() if timed else 0.0
            result = passes[i].run(program)
            changed = result is not program
            if timed:
                self._record(passes[i].name, changed, time.perf_counter() - start, result,
                             records)
            program = result
            if changed and restart[i] is not None and rounds < self.max_rounds:
                i, rounds = restart[i], rounds + 1
            else:
                i += 1
        return program

    def _record(self, name, changed, seconds, program, records):
        if records is not None:
            records.append(PassRecord(name, changed, seconds))
        if log.isEnabledFor(logging.DEBUG):
            log.debug("pass %s: %s in %.1f us", name, "changed" if changed else "unchanged",
                      seconds * 1e6)
            if name in self.dump_after:
                log.debug("program after %s:\n%s", name, _text(program))


def _text(program: Program) -> str:
    from azc.printer import format_program  # NOTE: imported late: the printer is for dumps only

    return format_program(program)


PIPELINE = PassManager((
    Pass("eliminate_dead_code", eliminate_dead_code),
    Pass("fold_constants", fold_constants, repeat_from="eliminate_dead_code"),
    Pass("order_instructions", order_instructions),
    Pass("order_operands", order_operands),
    Pass("rename_addresses", rename_addresses),
))


def optimize(program: Program) -> Program:
    """The smallest equivalent program in canonical form (same fitness, bit for bit).

    Idempotent. The result never needs more memory than the original (renaming packs
    addresses), but may need less: evaluate it in the experiment's memory shape so that an
    engine compiled per shape is not rebuilt.
    """
    return PIPELINE.run(program)
