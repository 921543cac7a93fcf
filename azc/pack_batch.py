"""Arrays of fixed-size programs into the native engine's inputs, and its errors into keys.

    table = RecordTable(memory, F, ops)          # once per evaluator shape
    packed = table.pack(codes, data, lengths)    # == engine_pack.pack of the same programs
    train, valid = recorded_errors(fingerprinter, packed)
    keys = hash_rows(words, salt)

engine_pack.pack decodes every instruction from scratch. Here the part of a record that
depends only on (op, out, in1, in2) (element offsets and liveness facts) is looked up in a
table made once by engine_pack.pack itself, so only the data fields are computed per batch.
Instructions the table does not hold (an op or address outside the memory) go through
engine_pack.pack, which names the fault.
"""

import numpy as np

from azc.engine_pack import Packed, pack
from azc.errors import ConfigError
from azc.ops import OPS

_VINDEX = next(op.id for op in OPS if op.data == "vindex")
_MINDEX = next(op.id for op in OPS if op.data == "mindex")
_PARTIAL = np.array([op.data in ("vindex", "mindex") for op in OPS])
# The data column whose bits a record's value field holds (engine_pack.pack's value0).
_VALUE = np.array([{_VINDEX: 1, _MINDEX: 2}.get(op.id, 0) for op in OPS])
_MIXERS = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)  # splitmix64's multipliers
# Odd multipliers of the row hash, one per column (a fixed stream: keys are stable).
_MULTIPLIERS = np.random.Generator(np.random.PCG64(0x5EED_FEC)).integers(
    0, 2**63, 4096, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


class RecordTable:
    """Packing for one (memory, F, allowed ops): addressing parts looked up, data computed."""

    LIMIT = 1 << 18  # table rows; larger memories pack through engine_pack.pack

    def __init__(self, memory, F: int, allowed=None):
        self.memory, self.F, self.allowed = memory, F, allowed
        ops = sorted({op.id for op in OPS} if allowed is None else set(allowed)) or [0]
        ops = [o for o in ops if o != 0]
        self.width = max(memory.scalars, memory.vectors, memory.matrices, 1)
        self.op_index = np.full(len(OPS), -1, dtype=np.int64)
        self.op_index[ops] = np.arange(len(ops))
        self.table = self.filled = None
        if len(ops) * self.width ** 3 <= self.LIMIT and ops:
            self._build(ops)

    def _build(self, ops):
        """Every in-memory (op, out, in1, in2) of the allowed ops, decoded by engine_pack."""
        sizes = {None: 1, "s": self.memory.scalars, "v": self.memory.vectors,
                 "m": self.memory.matrices}
        codes = []
        for op_id in ops:
            op = OPS[op_id]
            kinds = [op.out] + list(op.ins) + [None] * (2 - len(op.ins))
            grid = np.meshgrid(*(np.arange(sizes[kind]) for kind in kinds), indexing="ij")
            addresses = np.stack([g.reshape(-1) for g in grid], axis=1)
            codes.append(np.column_stack([np.full(len(addresses), op_id), addresses]))
        codes = np.concatenate(codes)
        if not len(codes):
            return
        records = pack(codes, np.zeros((len(codes), 3)), [[len(codes), 0, 0]], self.memory,
                       self.F, self.allowed).records
        w = self.width
        rows = len(ops) * w ** 3
        self.table = np.zeros((rows, records.shape[1]), dtype=np.int64)
        self.filled = np.zeros(rows, bool)
        keys = self._keys(codes)
        self.table[keys] = records
        self.filled[keys] = True

    def _keys(self, codes: np.ndarray) -> np.ndarray:
        w = self.width
        return ((self.op_index[codes[:, 0]] * w + codes[:, 1]) * w + codes[:, 2]) * w + codes[:, 3]

    def pack(self, codes: np.ndarray, data: np.ndarray, lengths) -> Packed:
        """Records of programs (B, N, 4) codes and (B, N, 3) data with components `lengths`."""
        count = len(codes)
        flat_codes, flat_data = codes.reshape(-1, 4), data.reshape(-1, 3)
        lengths = np.asarray(lengths, dtype=np.int64)
        if self.table is None:
            return self._slow(flat_codes, flat_data, count, lengths)
        instructions, values = flat_codes, flat_data
        if not flat_codes[:, 0].all():  # no-ops get no record
            kept = np.flatnonzero(flat_codes[:, 0])
            instructions, values = flat_codes[kept], flat_data[kept]
        op = instructions[:, 0]
        if len(op) and (instructions.min() < 0 or op.max() >= len(OPS)
                        or instructions[:, 1:].max() >= self.width
                        or self.op_index[op].min() < 0):
            return self._slow(flat_codes, flat_data, count, lengths)
        keys = self._keys(instructions)
        if not self.filled[keys].all():
            return self._slow(flat_codes, flat_data, count, lengths)

        records = np.take(self.table, keys, axis=0)
        records[:, 6] = values[:, 0].view(np.int64)
        records[:, 7] = values[:, 1].view(np.int64)
        partial = np.flatnonzero(_PARTIAL[op])
        if partial.size:  # const-set positions, as engine_pack.pack computes them
            records[partial, 6] = values[partial, _VALUE[op[partial]]].view(np.int64)
            with np.errstate(all="ignore"):
                scaled = values[partial, :2].astype(np.float32) * np.float32(self.F)
            positions = np.where(np.isfinite(scaled), scaled, -1).astype(np.int64)
            positions[op[partial] != _MINDEX, 1] = 0  # a vector's second field is its value
            if (positions < 0).any() or (positions >= self.F).any():
                return self._slow(flat_codes, flat_data, count, lengths)
            records[partial, 4:6] = positions

        # Per program, where each component's records start, and where its last ends.
        present = codes[:, :, 0] != 0
        ends = np.cumsum(lengths)
        per_component = np.stack([present[:, :end].sum(axis=1) for end in ends], axis=1)
        totals = per_component[:, -1]
        starts = np.concatenate([[0], np.cumsum(totals)[:-1]])
        offsets = np.empty((count, 4), dtype=np.int64)
        offsets[:, 0] = starts
        offsets[:, 1:] = starts[:, None] + per_component
        return Packed(records, offsets)

    def _slow(self, codes, data, count, lengths) -> Packed:
        return pack(codes, data, np.broadcast_to(lengths, (count, 3)), self.memory, self.F,
                    self.allowed)


def subset(packed: Packed, programs: np.ndarray) -> Packed:
    """The packed records of some programs only, in the given order."""
    starts, ends = packed.offsets[programs, 0], packed.offsets[programs, 3]
    sizes = ends - starts
    new_starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rows = np.repeat(starts - new_starts, sizes) + np.arange(int(sizes.sum()))
    offsets = packed.offsets[programs] - (starts - new_starts)[:, None]
    return Packed(np.ascontiguousarray(packed.records[rows]), offsets)


def recorded_errors(fingerprinter, packed: Packed) -> tuple[np.ndarray, np.ndarray]:
    """Per program, its recorded train and validation errors over all tasks, as rows.

    As azc.engine's `fingerprints`, on records already packed: errors past an early stop are
    NaN, and -0.0 is 0.0 (the original's std::hash<double> maps both alike).
    """
    groups = fingerprinter.groups
    train_cap = max(g.recorded_steps for g in groups)
    valid_cap = max(g.valid_steps for g in groups)
    if any(g.recorded_steps != train_cap or g.valid_steps != valid_cap for g in groups):
        raise ConfigError("fingerprints need tasks of equal epoch and validation sizes")
    count, tasks = len(packed), len(fingerprinter.tasks)
    split = count * tasks * train_cap
    errors = np.empty(count * tasks * (train_cap + valid_cap))
    counts = np.zeros(2 * count * tasks, np.int64)
    at, counted = errors.ctypes.data, counts.ctypes.data
    record = np.array([at, counted, at + split * 8, counted + count * tasks * 8], np.int64)
    fingerprinter.task_fitness_packed(packed, fingerprinter.memory, record)

    rows = []
    for part, cap, part_counts in ((errors[:split], train_cap, counts[:count * tasks]),
                                   (errors[split:], valid_cap, counts[count * tasks:])):
        part = part.reshape(count * tasks, cap)
        short = np.flatnonzero(part_counts < cap)  # stopped early: few
        part[short[:, None], np.arange(cap)] = np.where(
            np.arange(cap) >= part_counts[short, None], np.nan, part[short])
        part += 0.0  # -0.0 becomes 0.0, NaN stays
        rows.append(part.reshape(count, tasks * cap))
    return rows[0], rows[1]


def hash_rows(words: np.ndarray, salt: int) -> np.ndarray:
    """A 64-bit hash of each row of a uint64 matrix, with `salt` mixed in (stable everywhere).

    Each word is xor-shifted (so that high bits reach the low ones: float errors often end in
    zero bits), multiplied by its column's odd constant and xor-shifted again, a bijection per
    column; the row's sum is then mixed with the salt by splitmix64's finalizer.
    """
    with np.errstate(over="ignore"):
        z = words >> np.uint64(29)
        z ^= words
        z *= _MULTIPLIERS[:words.shape[1]]
        z ^= z >> np.uint64(32)
        total = z.sum(axis=1, dtype=np.uint64) ^ np.uint64(salt & (2**64 - 1))
        for shift, mixer in zip((30, 27), _MIXERS, strict=True):
            total ^= total >> np.uint64(shift)
            total *= np.uint64(mixer)
        total ^= total >> np.uint64(31)
    return total
