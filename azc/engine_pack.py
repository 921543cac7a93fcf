"""Packing: programs as the compact records native evaluators read, checked on the way.

    codes, data, lengths = program_arrays(programs)     # ir.to_arrays of every component
    packed = pack(codes, data, lengths, memory, F)      # checked and decoded records

Packing checks op ids, addresses against the memory shape and const-set positions against F,
so whatever the program, generated code never reads or writes outside its memory; a bad
program is an AzcError naming it. Everything is vectorized over the batch.
"""

import struct
from dataclasses import dataclass

import numpy as np

from azc.engine_tier1 import RECORD
from azc.errors import AzcError
from azc.ir import MemoryShape, instruction_key
from azc.ops import OPS, M, S, V

_KIND = {None: 0, S: 1, V: 2, M: 3}
# Per op: kind codes of out, in1, in2 (0 = unused), and which const-set fields are positions.
_KINDS = np.array([[_KIND[op.out]] + [_KIND[k] for k in op.ins] + [0] * (2 - len(op.ins))
                   for op in OPS], dtype=np.int64)
_VINDEX = next(op.id for op in OPS if op.data == "vindex")
_MINDEX = next(op.id for op in OPS if op.data == "mindex")
_PARTIAL = np.array([op.data in ("vindex", "mindex") for op in OPS])
_RANDOM = np.array([op.random for op in OPS], dtype=np.int64)


def _liveness_facts(op, kinds, addresses, memory: MemoryShape) -> np.ndarray:
    """Per instruction: (bits written, bits overwritten whole, bits read, must keep).

    Every address of the memory is one bit; the native evaluator's dead-code pruning reads
    these. Partial writes (const sets of one element) also read their output; random draws are
    always kept, since removing one would shift every later draw of the stream.
    """
    facts = np.zeros((len(op), 4), dtype=np.int64)
    total = memory.scalars + memory.vectors + memory.matrices
    if total > 63:  # too many addresses for one mask: keep everything
        facts[:, 3] = 1
        return facts
    first = np.array([0, 0, memory.scalars, memory.scalars + memory.vectors])
    bits = np.where(kinds > 0, np.left_shift(1, first[kinds] + addresses), 0)
    partial = _PARTIAL[op]
    facts[:, 0] = bits[:, 0]
    facts[:, 1] = np.where(partial, 0, bits[:, 0])
    facts[:, 2] = bits[:, 1] | bits[:, 2] | np.where(partial, bits[:, 0], 0)
    facts[:, 3] = _RANDOM[op]
    return facts


@dataclass
class Packed:
    """Programs as tier-1 records and (programs, 4) int64 component starts and end.

    A record is 12 int64: op, out, in1, in2 (as lane-vector element offsets), index0, index1
    (const-set positions), value0, value1 (data as float64 bits), then the liveness facts
    written, overwritten, read (address bit masks) and keep.
    """

    records: np.ndarray
    offsets: np.ndarray

    def __len__(self):
        return len(self.offsets)


class _InstructionRows:
    """Each distinct instruction's codes and data row, made once: children share most of their
    instructions with their parents, and a dict lookup is cheaper than converting them again."""

    LIMIT = 1 << 16  # distinct instructions kept before starting afresh (each held alive)

    def __init__(self):
        self.index: dict = {}
        self.codes = np.zeros((1024, 4), dtype=np.int64)
        self.data = np.zeros((1024, 3))

    def rows(self, instructions) -> np.ndarray:
        """Row numbers of the instructions in `codes` and `data`, adding new ones."""
        if len(self.index) + len(instructions) > self.LIMIT:
            self.__init__()
        get = self.index.get
        rows = [get(instruction_key(i)) for i in instructions]
        if None in rows:
            for k, instruction in enumerate(instructions):
                if rows[k] is None:
                    rows[k] = self._add(instruction)
        return np.array(rows, dtype=np.int64)

    def _add(self, instruction) -> int:
        key = instruction_key(instruction)
        row = self.index.get(key)
        if row is None:
            row = self.index[key] = len(self.index)
            if row == len(self.codes):
                self.codes = np.concatenate([self.codes, np.zeros_like(self.codes)])
                self.data = np.concatenate([self.data, np.zeros_like(self.data)])
            self.codes[row] = instruction[:4]
            self.data[row, :len(instruction.data)] = instruction.data
        return row


_ROWS = _InstructionRows()


def program_arrays(programs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated ir.to_arrays of every component: codes (n, 4), data (n, 3), lengths (P, 3)."""
    instructions = [i for p in programs for c in (p.setup, p.predict, p.learn) for i in c]
    rows = _ROWS.rows(instructions)
    lengths = np.array([(len(p.setup), len(p.predict), len(p.learn)) for p in programs],
                       dtype=np.int64).reshape(-1, 3)
    return _ROWS.codes[rows], _ROWS.data[rows], lengths


class RecordCache:
    """Packing of Program objects for one (memory, F, allowed ops), remembered per component.

    Evolution packs the same components again and again: a child shares the component tuples
    its mutation did not touch, and most instructions of the one it did. So each instruction is
    checked and decoded once (by `pack`), each component tuple becomes a list of rows of that
    table once, and packing a batch is list concatenation plus one gather.

    Memory stays bounded over any number of programs: entries live in two generations. When the
    current one holds LIMIT components (or decoded instructions), it becomes the previous one,
    its rows compacted into a fresh table, and the older generation is dropped; a component
    found only in the previous generation moves back into the current one.
    """

    LIMIT = 1 << 12  # components (and decoded instructions) per generation

    def __init__(self, memory: MemoryShape, F: int, allowed=None):
        self.memory, self.F, self.allowed = memory, F, allowed
        self.table = np.zeros((1024, RECORD), dtype=np.int64)
        self.rows: dict = {}  # instruction_key -> row of `table`, or None for the no-op
        self.used = 0  # rows of `table` filled
        self.components: dict = {}  # id(component) -> (component, its rows)
        self.previous: dict = {}  # the last generation's components, same form
        self.bases: dict = {}  # (op, out, in1, in2) -> its record, data fields aside

    def pack(self, programs) -> Packed:
        """Same as pack(*program_arrays(programs), memory, F, allowed); AzcError alike."""
        if len(self.components) > self.LIMIT or len(self.rows) > self.LIMIT:
            self._next_generation()
        get = self.components.get
        missing = [c for p in programs for c in (p.setup, p.predict, p.learn)
                   if (get(id(c)) or (None,))[0] is not c]
        if missing:
            older, new = self.previous.get, []
            for component in missing:
                entry = older(id(component))
                if entry is not None and entry[0] is component:
                    self.components[id(component)] = entry
                else:
                    new.append(component)
            if new:
                self._add(new, programs)
        rows, offsets = [], []
        for program in programs:
            offsets.append(len(rows))
            for component in (program.setup, program.predict, program.learn):
                rows += get(id(component))[1]
                offsets.append(len(rows))
        offsets = np.array(offsets, dtype=np.int64).reshape(-1, 4)
        return Packed(self.table[np.array(rows, dtype=np.int64)], offsets)

    def _next_generation(self):
        """Keep the current generation as the previous one, in a compacted table."""
        kept = sorted({row for _, rows in self.components.values() for row in rows})
        renumber = dict(zip(kept, range(len(kept)), strict=True))
        table = np.zeros((max(1024, 2 * len(kept)), RECORD), dtype=np.int64)
        table[:len(kept)] = self.table[np.array(kept, dtype=np.int64)]
        self.previous = {key: (component, [renumber[row] for row in rows])
                         for key, (component, rows) in self.components.items()}
        self.table, self.used, self.components, self.rows = table, len(kept), {}, {}
        if len(self.bases) > 4 * self.LIMIT:
            self.bases = {}

    def _add(self, components, programs):
        """Remember new components, decoding their new instructions in one `pack`."""
        known = self.rows
        new = {}
        keys = [[instruction_key(i) for i in component] for component in components]
        for component, component_keys in zip(components, keys, strict=True):
            for instruction, key in zip(component, component_keys, strict=True):
                if key not in known:
                    new[key] = instruction
        if new:
            self._decode(list(new.values()), programs)
        for component, component_keys in zip(components, keys, strict=True):
            # an entry keeps `component` alive, so ids stay unique
            rows = [known[key] for key in component_keys]
            self.components[id(component)] = (component, [r for r in rows if r is not None])

    def _decode(self, instructions, programs):
        """Check and decode new instructions into table rows (no-ops get none).

        A record is its addressing part (op, operands, liveness facts), checked and decoded by
        `pack` once per distinct (op, out, in1, in2), plus its data as float64 bits; ops whose
        data holds const-set positions go through `pack` whole.
        """
        records, slow = [], []
        for instruction in instructions:
            if instruction.op == 0:
                continue
            base = self.bases.get(instruction[:4])
            if base is None:
                slow.append((len(records), instruction))
                records.append(None)
                continue
            data = instruction.data
            records.append(base[:6] + [_bits(data[0]) if data else 0,
                                       _bits(data[1]) if len(data) > 1 else 0] + base[8:])
        if slow:
            decoded = self._pack([instruction for _, instruction in slow], programs)
            for (k, instruction), record in zip(slow, decoded, strict=True):
                records[k] = record
                if not _PARTIAL[instruction.op]:
                    self.bases[instruction[:4]] = record

        start = self.used
        while start + len(records) > len(self.table):
            self.table = np.concatenate([self.table, np.zeros_like(self.table)])
        if records:
            self.table[start:start + len(records)] = records
        for instruction in instructions:
            row = None
            if instruction.op != 0:
                row, self.used = self.used, self.used + 1
            self.rows[instruction_key(instruction)] = row

    def _pack(self, instructions, programs) -> list[list[int]]:
        codes = np.array([i[:4] for i in instructions], dtype=np.int64)
        data = np.zeros((len(instructions), 3))
        for k, instruction in enumerate(instructions):
            data[k, :len(instruction.data)] = instruction.data
        try:
            packed = pack(codes, data, [[len(instructions), 0, 0]], self.memory, self.F,
                          self.allowed)
        except AzcError:  # name the program at fault, as packing the batch would
            pack(*program_arrays(programs), self.memory, self.F, self.allowed)
            raise
        return packed.records.tolist()


def _bits(value: float) -> int:
    """The float64's bits as a signed 64-bit integer (a record's data fields)."""
    return int.from_bytes(struct.pack("<d", value), "little", signed=True)


def pack(codes, data, lengths, memory: MemoryShape, F: int, allowed=None) -> Packed:
    """Check and decode compact arrays into tier-1 records; AzcError names what is wrong."""
    codes = np.asarray(codes, dtype=np.int64).reshape(-1, 4)
    data = np.asarray(data, dtype=np.float64).reshape(-1, 3)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1, 3)
    op = codes[:, 0]
    program_of = np.repeat(np.arange(len(lengths)), lengths.sum(axis=1))

    def fail(rows, what):
        first = int(np.flatnonzero(rows)[0])
        raise AzcError(f"program {int(program_of[first])} of the batch: instruction "
                       f"{tuple(int(x) for x in codes[first])} {what}")

    if ((op < 0) | (op >= len(OPS))).any():
        fail((op < 0) | (op >= len(OPS)), "has an unknown op id")
    if allowed is not None:
        bad = ~np.isin(op, np.fromiter(allowed, np.int64)) & (op != 0)
        if bad.any():
            fail(bad, "uses an op this evaluator was not built for")
    kinds = _KINDS[op]
    F2 = F * F
    sizes = np.array([1, memory.scalars, memory.vectors, memory.matrices])
    bases = np.array([0, 0, memory.scalars, memory.scalars + memory.vectors * F])
    strides = np.array([0, 1, F, F2])
    addresses = codes[:, 1:]
    outside = (kinds > 0) & ((addresses < 0) | (addresses >= sizes[kinds]))
    if outside.any():
        fail(outside.any(axis=1), f"reads or writes outside memory {memory}")
    elements = np.where(kinds > 0, bases[kinds] + addresses * strides[kinds], 0)

    # Const-set positions, as ops.index computes them: trunc(float32(fraction) * float32(F)).
    with np.errstate(all="ignore"):
        scaled = data[:, :2].astype(np.float32) * np.float32(F)
        finite = np.isfinite(scaled)
        positions = np.where(finite, scaled, -1).astype(np.int64)
    uses = np.stack([(op == _VINDEX) | (op == _MINDEX), op == _MINDEX], axis=1)
    bad = uses & (~finite | (positions < 0) | (positions >= F))
    if bad.any():
        fail(bad.any(axis=1), f"sets a position outside 0..{F - 1}")
    positions = np.where(uses, positions, 0)
    value0 = np.where(op == _VINDEX, data[:, 1], np.where(op == _MINDEX, data[:, 2], data[:, 0]))

    keep = op != 0
    records = np.empty((int(keep.sum()), RECORD), dtype=np.int64)
    records[:, 0] = op[keep]
    records[:, 1:4] = elements[keep]
    records[:, 4:6] = positions[keep]
    records[:, 6] = value0[keep].view(np.int64)
    records[:, 7] = data[keep, 1].view(np.int64)
    records[:, 8:] = _liveness_facts(op, kinds, addresses, memory)[keep]

    component_of = np.repeat(np.arange(lengths.size), lengths.reshape(-1))
    kept_lengths = np.bincount(component_of[keep], minlength=lengths.size)
    starts = np.concatenate([[0], np.cumsum(kept_lengths)]).astype(np.int64)
    per_program = starts[:-1].reshape(-1, 3)
    offsets = np.empty((len(lengths), 4), dtype=np.int64)
    offsets[:, :3] = per_program
    offsets[:, 3] = starts[3::3]
    return Packed(np.ascontiguousarray(records), offsets)
